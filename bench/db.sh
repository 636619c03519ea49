#!/usr/bin/env bash
# Benchmark: rcbackup dbbackup / dbrestore against the bare pipes they wrap,
# on the same PostgreSQL database and the same local-folder remote, in one run.
#
#   bench/db.sh                 pgbench scale 30 (about 450 MB), 3 rounds
#   SCALE=50 ROUNDS=5 bench/db.sh
#
# Prints the median wall time of each side, their ratio (target <= 1.05), and
# rcbackup's own peak RSS (target < 32 MiB; children such as pg_dump and
# rclone are not counted), at a small and at the full size to show it is flat.
# Needs scripts/setup.sh to have run (PostgreSQL on 127.0.0.1, role rcbackup).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-30}
ROUNDS=${ROUNDS:-3}
export PGPASSWORD=rcbackup-test-pw PGHOST=127.0.0.1 PGUSER=rcbackup
export RCBACKUP_BENCH_PW=$PGPASSWORD
OUT=$PWD/bench/out
BIN=$PWD/target/release/rcbackup
rm -rf "$OUT" && mkdir -p "$OUT/remote"
cargo build --release -q -p rcbackup

make_db() { # name scale
  dropdb --if-exists "$1"; createdb "$1"
  pgbench -q -i -s "$2" "$1" >/dev/null 2>&1
}
cat > "$OUT/rcbackup.toml" <<TOML
remote = "$OUT/remote/rcbackup"
[databases.small]
engine = "postgresql"
name = "rcbackup_bench_small"
host = "127.0.0.1"
user = "rcbackup"
password_env = "RCBACKUP_BENCH_PW"
[databases.default]
engine = "postgresql"
name = "rcbackup_bench"
host = "127.0.0.1"
user = "rcbackup"
password_env = "RCBACKUP_BENCH_PW"
[databases.target]
engine = "postgresql"
name = "rcbackup_bench_target"
host = "127.0.0.1"
user = "rcbackup"
password_env = "RCBACKUP_BENCH_PW"
TOML
export RCBACKUP_CONFIG=$OUT/rcbackup.toml

echo "building databases (pgbench scale 1 and $SCALE)..."
make_db rcbackup_bench_small 1
make_db rcbackup_bench "$SCALE"
dropdb --if-exists rcbackup_bench_target; createdb rcbackup_bench_target
echo "database size: $(psql -qtAc "select pg_size_pretty(pg_database_size('rcbackup_bench'))" -d postgres)"

# timed SIDE KIND CMD...: appends "wall cpu" (cpu = user+sys of the command
# and all its children: less disturbed by a busy machine than wall time).
timed() {
  local side=$1 kind=$2; shift 2
  /usr/bin/time -f "%e %U %S" -o "$OUT/t" "$@"
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$OUT/t" >> "$OUT/${side}_${kind}"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Alternate which side goes first so caches favour neither.
order() { [ $(($1 % 2)) -eq 1 ] && echo "bare rc" || echo "rc bare"; }
rss_of() { grep -o 'peak_rss_kib=[0-9]*' "$1" | tail -1 | cut -d= -f2; }

: > "$OUT/rss"
for round in $(seq "$ROUNDS"); do
  for side in $(order "$round"); do
    if [ $side = bare ]; then
      timed bare backup bash -c "pg_dump --format=custom --no-password --dbname rcbackup_bench | rclone rcat '$OUT/remote/bare/bench.dump' 2>/dev/null"
    else
      timed rc backup bash -c "'$BIN' -v dbbackup 2> '$OUT/rc_backup.log'"
      rss_of "$OUT/rc_backup.log" >> "$OUT/rss"
    fi
  done
  name=$("$BIN" listbackups -d default --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
  for side in $(order "$round"); do
    if [ $side = bare ]; then
      timed bare restore bash -c "rclone cat '$OUT/remote/bare/bench.dump' 2>/dev/null | pg_restore --no-owner --no-acl --clean --if-exists --no-password --dbname rcbackup_bench_target"
    else
      timed rc restore bash -c "'$BIN' -v dbrestore -d target -i '$name' --noinput 2> '$OUT/rc_restore.log'"
      rss_of "$OUT/rc_restore.log" >> "$OUT/rss"
    fi
  done
  echo "round $round done"
done
"$BIN" -v dbbackup -d small 2> "$OUT/small.log"
small_rss=$(rss_of "$OUT/small.log")
"$BIN" -v dbrestore -d small --noinput 2> "$OUT/small_restore.log"
small_restore_rss=$(rss_of "$OUT/small_restore.log")

col() { cut -d' ' -f"$1" "$OUT/$2" | median; }
row() { # kind: wall and cpu medians of both sides, and their ratios
  local bw rw bc rc
  bw=$(col 1 "bare_$1"); rw=$(col 1 "rc_$1"); bc=$(col 2 "bare_$1"); rc=$(col 2 "rc_$1")
  printf '%-8s %10.3f %10.3f %7.3f   %10.3f %10.3f %7.3f   %s\n' "$1" "$bw" "$rw" "$(echo "$rw / $bw" | bc -l)" \
    "$bc" "$rc" "$(echo "$rc / $bc" | bc -l)" "<=1.05"
}
peak=$(sort -n "$OUT/rss" | tail -1)
printf '\n%-8s %10s %10s %7s   %10s %10s %7s   %s\n' "" "bare wall" "rc wall" "ratio" "bare cpu" "rc cpu" "ratio" "target"
row backup
row restore
printf '(medians of %s rounds, seconds; cpu = user+sys of the whole pipeline including children)\n' "$ROUNDS"
printf '\nrcbackup peak RSS: %s KiB at scale %s (max of all rounds), %s / %s KiB (backup / restore) at scale 1; target < 32768 KiB\n' \
  "$peak" "$SCALE" "$small_rss" "$small_restore_rss"
printf 'raw "wall cpu" pairs in %s/{bare,rc}_{backup,restore}\n' "$OUT"
