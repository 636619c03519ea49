#!/usr/bin/env bash
# Benchmark of issue 9, "the fast path": every target beside its baseline,
# measured in the same run, interleaved (the order alternates each round),
# medians of ROUNDS. CPU is user+sys of the whole process tree (rcbackup, its
# rclone server, the dump/restore tools; the same tools on the bare side),
# so a busy machine disturbs it less than wall time.
#
#   bench/fastpath.sh                    pgbench scale 30 (~450 MB), 3 rounds, ~15 min
#   SCALE=5 ROUNDS=1 RANDOM_MB=60 bench/fastpath.sh    a quick look (~2 min)
#
# Needs scripts/setup.sh (PostgreSQL, MariaDB on 127.0.0.1, role rcbackup,
# rclone, sqlite3, zstd, pgbench). Databases made here are dropped at the end.
#
# Lines of the table:
#   backup --clean     rcbackup dbbackup --clean (zstd, the default) vs pg_dump -Fc | rclone rcat
#   backup --clean eng the same with compression = "engine" (pg_dump -Fc itself): rcbackup's own cost
#   restore            rcbackup dbrestore vs rclone cat | zstd -d | pg_restore (same stored object)
#   restore eng        rcbackup dbrestore of an engine backup vs rclone cat | pg_restore
#   random backup      dbbackup of RANDOM_MB of random bytea vs pg_dump -Fc | rclone rcat (target: 3x faster)
#   listbackups 100    wall of `rcbackup listbackups` over 100 backups (target < 0.1 s), both rclone modes
#   mode: backup       dbbackup --clean with one rclone server vs one rclone process per call
# and the sizes: pgbench stored by zstd vs pg_dump -Fc (target 2x smaller), MariaDB and SQLite dumps of the
# same tables with zstd vs uncompressed (target 4x smaller at <= 1.1x the wall time), and rcbackup's own
# peak RSS with zstd at two database sizes (target: flat, < 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-30}
ROUNDS=${ROUNDS:-3}
RANDOM_MB=${RANDOM_MB:-320}
export PGPASSWORD=rcbackup-test-pw PGHOST=127.0.0.1 PGUSER=rcbackup
export RCBACKUP_BENCH_PW=$PGPASSWORD
OUT=$PWD/bench/out-fastpath
BIN=$PWD/target/release/rcbackup
MY="mariadb -h 127.0.0.1 -u rcbackup -p$PGPASSWORD"
rm -rf "$OUT" && mkdir -p "$OUT/remote"
cargo build --release -q -p rcbackup

cleanup() {
  for d in fp_small fp_bench fp_random fp_target; do dropdb --if-exists "$d" 2>/dev/null || true; done
  $MY -e "DROP DATABASE IF EXISTS fp_bench" 2>/dev/null || true
  rm -rf "$OUT/remote" "$OUT"/*.sqlite3 "$OUT"/*.csv
}
trap cleanup EXIT

pg_db() { # name: [databases.NAME] for PostgreSQL database fp_NAME
  printf '[databases.%s]\nengine = "postgresql"\nname = "fp_%s"\nhost = "127.0.0.1"\nuser = "rcbackup"\npassword_env = "RCBACKUP_BENCH_PW"\n' "$1" "$1"
}
config() { # file compression
  {
    printf 'remote = "%s/remote/%s"\ndb_cleanup_keep = 2\ncompression = "%s"\n' "$OUT" "$2" "$2"
    pg_db small; pg_db bench; pg_db random; pg_db target
    printf '[databases.my]\nengine = "mariadb"\nname = "fp_bench"\nhost = "127.0.0.1"\nuser = "rcbackup"\npassword_env = "RCBACKUP_BENCH_PW"\n'
    printf '[databases.lite]\nengine = "sqlite"\nname = "%s/bench.sqlite3"\n' "$OUT"
  } > "$1"
}
config "$OUT/zstd.toml" zstd
config "$OUT/engine.toml" engine
config "$OUT/none.toml" none

echo "building databases: pgbench scale 1 and $SCALE, $RANDOM_MB MB of random bytea, MariaDB and SQLite copies..."
for d in fp_small fp_bench fp_random fp_target; do dropdb --if-exists "$d"; createdb "$d"; done
pgbench -q -i -s 1 fp_small >/dev/null 2>&1
pgbench -q -i -s "$SCALE" fp_bench >/dev/null 2>&1
psql -q -d fp_random -c "CREATE TABLE blobs (id int PRIMARY KEY, b bytea NOT NULL)"
python3 - "$RANDOM_MB" <<'PY' | psql -q -d fp_random -c "COPY blobs FROM STDIN"
import os, sys
for i in range(int(sys.argv[1])):
    sys.stdout.write("%d\t\\\\x%s\n" % (i, os.urandom(1 << 20).hex()))
PY
# The same tables in MariaDB and SQLite (pgbench_accounts holds nearly all).
psql -q -d fp_bench -c "\\copy pgbench_accounts TO '$OUT/accounts.csv' CSV"
$MY -e "DROP DATABASE IF EXISTS fp_bench; CREATE DATABASE fp_bench"
$MY fp_bench -e "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84)); LOAD DATA LOCAL INFILE '$OUT/accounts.csv' INTO TABLE pgbench_accounts FIELDS TERMINATED BY ','" --local-infile=1
rm -f "$OUT/bench.sqlite3"
sqlite3 "$OUT/bench.sqlite3" "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler text);" ".mode csv" ".import $OUT/accounts.csv pgbench_accounts"
rm -f "$OUT/accounts.csv"
echo "pgbench database: $(psql -qtAc "select pg_size_pretty(pg_database_size('fp_bench'))" -d postgres), random: $(psql -qtAc "select pg_size_pretty(pg_database_size('fp_random'))" -d postgres)"

# timed KEY CMD...: appends "wall cpu" to $OUT/t_KEY.
timed() {
  local key=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$OUT/t" "$@"
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$OUT/t" >> "$OUT/t_$key"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { cut -d' ' -f"$1" "$OUT/t_$2" | median; }
flip() { [ $(($1 % 2)) -eq 1 ]; }
rc() { RCBACKUP_CONFIG=$OUT/$1.toml "$BIN" "${@:2}"; }
newest() { rc "$1" listbackups -d "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])'; }
stored_size() { stat -c %s "$OUT/remote/$1/db/$2"; }
rss_of() { grep -o 'peak_rss_kib=[0-9]*' "$1" | tail -1 | cut -d= -f2; }

bare_backup() { timed "$1" bash -c "pg_dump --format=custom --no-password --dbname $2 | rclone rcat '$OUT/remote/bare/$2.dump' 2>/dev/null"; }
: > "$OUT/rss_big"
for round in $(seq "$ROUNDS"); do
  for side in $(flip "$round" && echo "bare zstd engine" || echo "engine zstd bare"); do
    case $side in
      bare) bare_backup bare_backup fp_bench ;;
      zstd) timed zstd_backup bash -c "RCBACKUP_CONFIG=$OUT/zstd.toml '$BIN' -v dbbackup -d bench --clean 2> '$OUT/log'"
            rss_of "$OUT/log" >> "$OUT/rss_big" ;;
      engine) timed engine_backup bash -c "RCBACKUP_CONFIG=$OUT/engine.toml '$BIN' dbbackup -d bench --clean 2>/dev/null" ;;
    esac
  done
  zname=$(newest zstd bench); ename=$(newest engine bench)
  zobj="$OUT/remote/zstd/db/$zname"; eobj="$OUT/remote/engine/db/$ename"
  for side in $(flip "$round" && echo "bare rc" || echo "rc bare"); do
    if [ $side = bare ]; then
      timed bare_restore bash -c "rclone cat '$zobj' | zstd -dq | pg_restore --no-owner --no-acl --clean --if-exists --single-transaction --no-password --dbname fp_target"
      timed bare_restore_eng bash -c "rclone cat '$eobj' | pg_restore --no-owner --no-acl --clean --if-exists --single-transaction --no-password --dbname fp_target"
    else
      timed zstd_restore bash -c "RCBACKUP_CONFIG=$OUT/zstd.toml '$BIN' -v dbrestore -d target -i '$zname' --noinput 2> '$OUT/log'"
      rss_of "$OUT/log" >> "$OUT/rss_big"
      timed engine_restore bash -c "RCBACKUP_CONFIG=$OUT/engine.toml '$BIN' dbrestore -d target -i '$ename' --noinput 2>/dev/null"
    fi
  done
  for side in $(flip "$round" && echo "bare zstd" || echo "zstd bare"); do
    if [ $side = bare ]; then bare_backup bare_random fp_random
    else timed zstd_random bash -c "RCBACKUP_CONFIG=$OUT/zstd.toml '$BIN' -v dbbackup -d random --clean 2> '$OUT/log'"
      rss_of "$OUT/log" >> "$OUT/rss_big"; fi
  done
  for db in my lite; do
    for side in $(flip "$round" && echo "none zstd" || echo "zstd none"); do
      timed "${side}_$db" bash -c "RCBACKUP_CONFIG=$OUT/$side.toml '$BIN' dbbackup -d $db --clean 2>/dev/null"
    done
  done
  for mode in $(flip "$round" && echo "server per-call" || echo "per-call server"); do
    timed "mode_$mode" bash -c "RCBACKUP_RCLONE_MODE=$mode RCBACKUP_CONFIG=$OUT/zstd.toml '$BIN' dbbackup -d small --clean 2>/dev/null"
  done
  echo "round $round done"
done
zsize=$(stored_size zstd "$(newest zstd bench)"); bsize=$(stat -c %s "$OUT/remote/bare/fp_bench.dump")
my_z=$(stored_size zstd "$(newest zstd my)"); my_n=$(stored_size none "$(newest none my)")
lite_z=$(stored_size zstd "$(newest zstd lite)"); lite_n=$(stored_size none "$(newest none lite)")

# listbackups over 100 backups: copies of one small backup and its record.
small=$(rc zstd dbbackup -d small >/dev/null 2>&1; newest zstd small)
python3 - "$OUT/remote/zstd/db" "$small" <<'PY'
import json, os, shutil, sys
d, name = sys.argv[1], sys.argv[2]
rec = json.load(open(f"{d}/.rcbackup/records/{name}.json"))
for i in range(100):
    n = f"small-2025-01-01-{i:06d}.dump.zst"
    shutil.copy(f"{d}/{name}", f"{d}/{n}")
    r = dict(rec, name=n, database="small", created=f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
    open(f"{d}/.rcbackup/records/{n}.json", "w").write(json.dumps(r) + "\n")
PY
for i in $(seq 7); do
  for mode in server per-call; do
    timed "list_$mode" env RCBACKUP_RCLONE_MODE=$mode RCBACKUP_CONFIG=$OUT/zstd.toml "$BIN" listbackups -d small >/dev/null
  done
done
rc zstd -v dbbackup -d small 2> "$OUT/log"; rss_small=$(rss_of "$OUT/log")
rc zstd -v dbrestore -d small --noinput 2> "$OUT/log"; rss_small_restore=$(rss_of "$OUT/log")
rss_big=$(sort -n "$OUT/rss_big" | tail -1)

ratio() { echo "$1 / $2" | bc -l; }
verdict() { # value op target
  if [ "$(echo "$1 $2 $3" | bc -l)" = 1 ]; then echo ok; else echo MISSED; fi
}
row() { # label bare_key rc_key op target: wall and cpu, ratio rc/bare
  local bw rw bc rcc w c
  bw=$(col 1 "$2"); rw=$(col 1 "$3"); bc=$(col 2 "$2"); rcc=$(col 2 "$3")
  w=$(ratio "$rw" "$bw"); c=$(ratio "$rcc" "$bc")
  printf '%-22s %8.3f %8.3f %6.2f   %8.3f %8.3f %6.2f   %-9s %s/%s\n' "$1" "$bw" "$rw" "$w" "$bc" "$rcc" "$c" "$4 $5" \
    "$(verdict "$w" "$4" "$5")" "$(verdict "$c" "$4" "$5")"
}
echo
printf '%-22s %8s %8s %6s   %8s %8s %6s   %-9s %s\n' "job" "base wall" "rc wall" "ratio" "base cpu" "rc cpu" "ratio" "target" "wall/cpu"
row "backup --clean (zstd)" bare_backup zstd_backup "<=" 1.05
row "backup --clean eng" bare_backup engine_backup "<=" 1.05
row "restore (zstd)" bare_restore zstd_restore "<=" 1.02
row "restore eng" bare_restore_eng engine_restore "<=" 1.02
row "random backup (zstd)" bare_random zstd_random "<=" 0.3333
row "mariadb zstd vs none" none_my zstd_my "<=" 1.1
row "sqlite zstd vs none" none_lite zstd_lite "<=" 1.1
row "mode: server/per-call" mode_per-call mode_server "<=" 1.0
printf '(seconds, medians of %s rounds; base = the bare pipe, or the other setting named)\n\n' "$ROUNDS"
lw_s=$(col 1 list_server); lw_p=$(col 1 list_per-call)
printf 'listbackups of 100 backups: %.3f s wall (server), %.3f s (per-call); target < 0.100: %s\n' "$lw_s" "$lw_p" "$(verdict "$lw_s" "<" 0.1)"
printf 'pgbench stored: zstd %d bytes, pg_dump -Fc %d bytes: %.2fx smaller (target >= 2): %s\n' "$zsize" "$bsize" "$(ratio "$bsize" "$zsize")" "$(verdict "$(ratio "$bsize" "$zsize")" ">=" 2)"
printf 'MariaDB dump:  zstd %d bytes, none %d bytes: %.2fx smaller (target >= 4): %s\n' "$my_z" "$my_n" "$(ratio "$my_n" "$my_z")" "$(verdict "$(ratio "$my_n" "$my_z")" ">=" 4)"
printf 'SQLite dump:   zstd %d bytes, none %d bytes: %.2fx smaller (target >= 4): %s\n' "$lite_z" "$lite_n" "$(ratio "$lite_n" "$lite_z")" "$(verdict "$(ratio "$lite_n" "$lite_z")" ">=" 4)"
printf 'rcbackup peak RSS with zstd: %s KiB at scale %s and %s MB random (max of backups and restores), %s / %s KiB at scale 1 (backup / restore); target < 65536: %s\n' \
  "$rss_big" "$SCALE" "$RANDOM_MB" "$rss_small" "$rss_small_restore" "$(verdict "$rss_big" "<" 65536)"
printf 'raw "wall cpu" pairs: %s/t_*\n' "$OUT"
