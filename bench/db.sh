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

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss_of() { grep -o 'peak_rss_kib=[0-9]*' "$1" | tail -1 | cut -d= -f2; }

: > "$OUT/bare_backup"; : > "$OUT/rc_backup"; : > "$OUT/bare_restore"; : > "$OUT/rc_restore"; : > "$OUT/rss"
for round in $(seq "$ROUNDS"); do
  # Alternate which side goes first so caches favour neither.
  for side in bare rc; do
    [ $((round % 2)) -eq 0 ] && side=$([ $side = bare ] && echo rc || echo bare)
    t0=$(now)
    if [ $side = bare ]; then
      pg_dump --format=custom --no-password --dbname rcbackup_bench | rclone rcat "$OUT/remote/bare/bench.dump" 2>/dev/null
    else
      "$BIN" -v dbbackup 2> "$OUT/rc_backup.log"
      rss_of "$OUT/rc_backup.log" >> "$OUT/rss"
    fi
    echo "$(now) - $t0" | bc >> "$OUT/${side}_backup"
  done
  name=$("$BIN" listbackups -d default --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
  for side in bare rc; do
    [ $((round % 2)) -eq 0 ] && side=$([ $side = bare ] && echo rc || echo bare)
    t0=$(now)
    if [ $side = bare ]; then
      rclone cat "$OUT/remote/bare/bench.dump" 2>/dev/null \
        | pg_restore --no-owner --no-acl --clean --if-exists --no-password --dbname rcbackup_bench_target
    else
      "$BIN" -v dbrestore -d target -i "$name" --noinput 2> "$OUT/rc_restore.log"
      rss_of "$OUT/rc_restore.log" >> "$OUT/rss"
    fi
    echo "$(now) - $t0" | bc >> "$OUT/${side}_restore"
  done
  echo "round $round done"
done
"$BIN" -v dbbackup -d small 2> "$OUT/small.log"
small_rss=$(rss_of "$OUT/small.log")
"$BIN" -v dbrestore -d small --noinput 2> "$OUT/small_restore.log"
small_restore_rss=$(rss_of "$OUT/small_restore.log")

bb=$(median < "$OUT/bare_backup"); rb=$(median < "$OUT/rc_backup")
br=$(median < "$OUT/bare_restore"); rr=$(median < "$OUT/rc_restore")
peak=$(sort -n "$OUT/rss" | tail -1)
printf '\n%-10s %22s %14s %8s %8s\n' "" "bare pipe (median s)" "rcbackup (s)" "ratio" "target"
printf '%-10s %22.3f %14.3f %8.3f %8s\n' backup "$bb" "$rb" "$(echo "$rb / $bb" | bc -l)" "<=1.05"
printf '%-10s %22.3f %14.3f %8.3f %8s\n' restore "$br" "$rr" "$(echo "$rr / $br" | bc -l)" "<=1.05"
printf '\nrcbackup peak RSS: %s KiB at scale %s (max of all rounds), %s / %s KiB (backup / restore) at scale 1; target < 32768 KiB\n' \
  "$peak" "$SCALE" "$small_rss" "$small_restore_rss"
printf 'rounds: %s; raw seconds in %s/{bare,rc}_{backup,restore}\n' "$ROUNDS" "$OUT"
