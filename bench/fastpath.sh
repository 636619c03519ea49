#!/usr/bin/env bash
# Benchmark of issue 9, "the fast path": every target of the issue printed
# beside its baseline, both measured in the same run.
#
# How to run (from anywhere; needs scripts/setup.sh to have run: PostgreSQL
# with pgbench and MariaDB on 127.0.0.1 with role rcbackup, rclone, sqlite3,
# zstd, python3, bc, /usr/bin/time):
#
#   bench/fastpath.sh                  pgbench scale 30 (~456 MB), 320 MiB of random
#                                      bytea, 5 rounds: about 15 minutes on 2 busy cores
#                                      (3 minutes for a binary without compression: no
#                                      random-bytea jobs), plus the build
#   QUICK=1 bench/fastpath.sh          scale 2, 24 MiB random, 1 round: under a minute
#   SCALE=.. ROUNDS=.. RANDOM_MB=.. LIST_RUNS=..   override any of those
#   RCBACKUP_BIN=/path/to/rcbackup     measure that binary (default: cargo build
#                                      --release, then target/release/rcbackup)
#
# It needs about SCALE*110 MB + RANDOM_MB*3.2 MB of free disk (4.5 GB at the
# defaults; a run at the defaults used about 3.5 GB) and refuses to start with
# less. Wall times on a shared machine vary by 30% or more from round to round:
# the medians and the CPU lines are the figures to trust. Everything it writes is under
# bench/out/fastpath/ (gitignored); the databases (PostgreSQL rcb_fastpath_*,
# MariaDB rcb_fastpath, a SQLite file) and the remote's contents are removed
# at the end, whatever ends the run. Kept: table.txt (the result), t_<job>
# (one "wall cpu" line per round), rss_<job>, log/ (rcbackup -v of each job).
#
# Method: each round runs every job once, in the opposite order from the
# round before, so caches and a busy machine favour no side; the table shows
# medians of ROUNDS. wall = elapsed seconds; cpu = user+sys seconds of the
# whole process tree: rcbackup with its rclone server and dump/restore tools,
# or the bare pipe's tools (database servers' own CPU is not counted on
# either side). The remote is a local folder. The MariaDB and SQLite
# databases hold the same pgbench tables, exported with psql \copy.
#
# The table: job, baseline, rcbackup, ratio (rcbackup / baseline), target,
# and ok / MISSED (or "-" for lines that only inform):
#   pgbench dbbackup --clean (engine)     dbbackup --clean with compression = "engine" (pg_dump's
#                                         own zlib, today's behaviour) vs pg_dump -Fc | rclone rcat;
#                                         target <= 1.05, wall and cpu
#   pgbench dbbackup --clean (zstd)       the same with compression = "zstd" (the new default):
#                                         no slower than the bare pipe (wall <= 1.00), cpu <= 1.05
#   pgbench stored bytes (zstd)           zstd object vs pg_dump -Fc's file: at least 2x smaller
#   pgbench dbrestore (engine|zstd)       dbrestore vs rclone cat | [zstd -d |] pg_restore with
#                                         rcbackup's pg_restore options, same stored object; <= 1.02
#   random bytea dbbackup (zstd)          RANDOM_MB of incompressible bytea: dbbackup --clean vs
#                                         pg_dump -Fc | rclone rcat; at least 3x faster (<= 0.333)
#   mariadb|sqlite dbbackup --clean       zstd vs "engine" (today: uncompressed), wall <= 1.10,
#                                         stored bytes at least 4x smaller (<= 0.25)
#   listbackups of 100 backups            wall of `rcbackup listbackups`, rclone server mode
#                                         (baseline column: one rclone process per call); < 0.100 s
#   mode: ...                             per-call (RCBACKUP_RCLONE_MODE=per-call, baseline) vs
#                                         server (rcbackup), engine compression; informative
#   rcbackup peak RSS                     rcbackup's own peak RSS (its -v "peak_rss_kib", children
#                                         not counted) at two sizes of the same kind of data, to show
#                                         it flat (<= 1.25x): pgbench scale 1 vs SCALE (backups and
#                                         restores), random bytea RANDOM_SMALL_MB (16) vs RANDOM_MB;
#                                         and the largest of all runs < 64 MiB (baseline column: the
#                                         largest with compression = "engine")
# A binary without compression support (it refuses the `compression` key)
# gets "n/a (no compression support)" on the zstd lines; one without the
# rclone server ignores RCBACKUP_RCLONE_MODE, so both mode columns are equal.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

if [ -n "${QUICK:-}" ]; then
  SCALE=${SCALE:-2} ROUNDS=${ROUNDS:-1} RANDOM_MB=${RANDOM_MB:-24} RANDOM_SMALL_MB=${RANDOM_SMALL_MB:-4} LIST_RUNS=${LIST_RUNS:-3}
fi
SCALE=${SCALE:-30}
ROUNDS=${ROUNDS:-5}
RANDOM_MB=${RANDOM_MB:-320}
RANDOM_SMALL_MB=${RANDOM_SMALL_MB:-16}
LIST_RUNS=${LIST_RUNS:-9}
OUT=$PWD/bench/out/fastpath
P=rcb_fastpath # prefix of every database made here
export PGPASSWORD=rcbackup-test-pw PGHOST=127.0.0.1 PGUSER=rcbackup
export MYSQL_PWD=$PGPASSWORD RCBACKUP_BENCH_PW=$PGPASSWORD
unset RCBACKUP_CONFIG RCBACKUP_RCLONE_MODE RCBACKUP_LOG
MY=(mariadb --host=127.0.0.1 --user=rcbackup)

for tool in pg_dump pg_restore pgbench psql createdb dropdb mariadb sqlite3 rclone zstd python3 bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "fastpath.sh: needs $tool: run scripts/setup.sh first" >&2; exit 1; }
done
need_mb=$(( SCALE * 110 + (RANDOM_MB + RANDOM_SMALL_MB) * 32 / 10 + 200 ))
mkdir -p bench/out
free_mb=$(df -Pm bench/out | awk 'NR == 2 {print $4}')
if [ "$free_mb" -lt "$need_mb" ]; then
  echo "fastpath.sh: needs about $need_mb MB free under bench/out, has $free_mb MB: free some, or lower SCALE / RANDOM_MB" >&2
  exit 1
fi

if [ -n "${RCBACKUP_BIN:-}" ]; then
  BIN=$RCBACKUP_BIN
else
  cargo build --release -q -p rcbackup
  BIN=$PWD/target/release/rcbackup
fi

cleanup() {
  for d in small bench random randsmall target; do dropdb --if-exists "${P}_$d" 2>/dev/null || true; done
  "${MY[@]}" -e "DROP DATABASE IF EXISTS $P" 2>/dev/null || true
  rm -rf "$OUT/remote" "$OUT"/*.sqlite3 "$OUT"/*.csv "$OUT/time.tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$OUT" && mkdir -p "$OUT/remote" "$OUT/log"
START=$SECONDS

exec 3>&2 # the terminal, for fail() inside a redirected job
fail() { echo "fastpath.sh: $*" >&3; exit 1; }

# --- what the binary can do ---------------------------------------------------
# Compression: a binary that predates it refuses the key (exit 2, naming it).
printf 'remote = "%s/remote/probe"\ncompression = "zstd"\n[databases.probe]\nengine = "sqlite"\nname = "%s/probe.sqlite3"\n' \
  "$OUT" "$OUT" > "$OUT/probe.toml"
if RCBACKUP_CONFIG=$OUT/probe.toml "$BIN" listbackups -d probe > /dev/null 2> "$OUT/log/probe.log"; then
  ZSTD=1
elif grep -q compression "$OUT/log/probe.log"; then
  ZSTD=0
else
  fail "$BIN does not run: $(cat "$OUT/log/probe.log")"
fi
NA="n/a (no compression support)"

# --- configs -----------------------------------------------------------------
pg_db() { printf '[databases.%s]\nengine = "postgresql"\nname = "%s_%s"\nhost = "127.0.0.1"\nuser = "rcbackup"\npassword_env = "RCBACKUP_BENCH_PW"\n' "$1" "$P" "$1"; }
config() { # NAME COMPRESSION: $OUT/NAME.toml, remote $OUT/remote/NAME; no compression key when COMPRESSION is empty
  {
    printf 'remote = "%s/remote/%s"\ndb_cleanup_keep = 1\n' "$OUT" "$1"
    if [ -n "$2" ]; then printf 'compression = "%s"\n' "$2"; fi
    pg_db small; pg_db bench; pg_db random; pg_db randsmall; pg_db target
    printf '[databases.my]\nengine = "mariadb"\nname = "%s"\nhost = "127.0.0.1"\nuser = "rcbackup"\npassword_env = "RCBACKUP_BENCH_PW"\n' "$P"
    printf '[databases.lite]\nengine = "sqlite"\nname = "%s/bench.sqlite3"\n' "$OUT"
  } > "$OUT/$1.toml"
}
if [ $ZSTD = 1 ]; then config engine engine; config zstd zstd; else config engine ""; fi
# The 100-backup catalog for listbackups: a one-row SQLite database, default settings.
printf 'remote = "%s/remote/list"\n[databases.tiny]\nengine = "sqlite"\nname = "%s/tiny.sqlite3"\n' "$OUT" "$OUT" > "$OUT/list.toml"

# --- databases ---------------------------------------------------------------
echo "building databases: pgbench scale 1 and $SCALE$([ $ZSTD = 1 ] && echo ", $RANDOM_MB MB of random bytea"), MariaDB and SQLite copies..."
for d in small bench target random randsmall; do dropdb --if-exists "${P}_$d" 2>/dev/null; done
for d in small bench target; do createdb "${P}_$d"; done
pgbench -q -i -s 1 "${P}_small" > "$OUT/log/pgbench.log" 2>&1 || fail "pgbench -i failed: $(tail -3 "$OUT/log/pgbench.log")"
pgbench -q -i -s "$SCALE" "${P}_bench" > "$OUT/log/pgbench.log" 2>&1 || fail "pgbench -i failed: $(tail -3 "$OUT/log/pgbench.log")"
random_db() { # NAME MIB: a table of MIB rows of 1 MiB from os.urandom, sent as hex text (~10 s per 100 MB)
  createdb "$1"
  psql -q -v ON_ERROR_STOP=1 -d "$1" -c "CREATE TABLE blobs (id int PRIMARY KEY, b bytea NOT NULL); ALTER TABLE blobs ALTER b SET STORAGE EXTERNAL"
  python3 - "$2" <<'PY' | psql -q -v ON_ERROR_STOP=1 -d "$1" -c "COPY blobs FROM STDIN"
import os, sys
for i in range(int(sys.argv[1])):
    sys.stdout.write("%d\t\\\\x%s\n" % (i, os.urandom(1 << 20).hex()))
PY
}
if [ $ZSTD = 1 ]; then random_db "${P}_random" "$RANDOM_MB"; random_db "${P}_randsmall" "$RANDOM_SMALL_MB"; fi
# The same tables in MariaDB and SQLite, through CSV.
tables="pgbench_branches pgbench_tellers pgbench_accounts pgbench_history"
for t in $tables; do psql -q -v ON_ERROR_STOP=1 -d "${P}_bench" -c "\\copy $t TO '$OUT/$t.csv' CSV"; done
schema="CREATE TABLE pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, filler char(88));
CREATE TABLE pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime datetime, filler char(22));"
"${MY[@]}" -e "DROP DATABASE IF EXISTS $P; CREATE DATABASE $P"
"${MY[@]}" --local-infile=1 "$P" -e "$schema $(for t in $tables; do
  printf "LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"';" "$OUT/$t.csv" "$t"; done)"
rm -f "$OUT/bench.sqlite3"
imports=(); for t in $tables; do imports+=(".import --csv $OUT/$t.csv $t"); done
sqlite3 -bail "$OUT/bench.sqlite3" "$schema" "${imports[@]}"
rm -f "$OUT"/*.csv
accounts=$((SCALE * 100000))
for check in "$("${MY[@]}" -N "$P" -e 'SELECT count(*) FROM pgbench_accounts')" \
             "$(sqlite3 "$OUT/bench.sqlite3" 'SELECT count(*) FROM pgbench_accounts')"; do
  [ "$check" = "$accounts" ] || fail "the MariaDB/SQLite copy of pgbench_accounts has $check rows, not $accounts"
done
pg_size() { psql -qtAc "SELECT pg_database_size('$1')" -d postgres; }
echo "pgbench database: $(pg_size "${P}_bench") bytes$([ $ZSTD = 1 ] && echo ", random: $(pg_size "${P}_random") bytes"), SQLite: $(stat -c %s "$OUT/bench.sqlite3") bytes ($((SECONDS - START)) s)"

# --- measuring ---------------------------------------------------------------
# timed JOB CMD...: runs CMD, appends "wall cpu" to $OUT/t_JOB.
timed() {
  local job=$1 t0 t1 st=0; shift
  t0=$EPOCHREALTIME
  /usr/bin/time -f "%U %S" -o "$OUT/time.tmp" "$@" || st=$?
  t1=$EPOCHREALTIME
  [ $st = 0 ] || fail "job $job failed (exit $st): $* (log: $OUT/log/$job.log)"
  awk -v w="$(echo "$t1 - $t0" | bc)" '/^[0-9.]+ [0-9.]+$/ {printf "%.3f %.3f\n", w, $1 + $2}' "$OUT/time.tmp" >> "$OUT/t_$job"
}
# bare JOB PIPELINE: a shell pipeline, failing if any part fails.
bare() { timed "$1" bash -c "set -o pipefail; $2" 2> "$OUT/log/$1.log"; }
# rc JOB CONFIG MODE ARGS...: rcbackup -v ARGS with $OUT/CONFIG.toml, RCBACKUP_RCLONE_MODE=MODE; records its peak RSS.
rc() {
  local job=$1 cfg=$2 mode=$3; shift 3
  timed "$job" env RCBACKUP_CONFIG="$OUT/$cfg.toml" RCBACKUP_RCLONE_MODE="$mode" "$BIN" -v "$@" 2> "$OUT/log/$job.log"
  { grep -o 'peak_rss_kib=[0-9]*' "$OUT/log/$job.log" || true; } | tail -1 | cut -d= -f2 >> "$OUT/rss_$job"
}
# order ROUND SIDE...: the sides, reversed in even rounds.
order() { local r=$1; shift; if [ $((r % 2)) = 1 ]; then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi; }
newest() { # CONFIG ALIAS: the name of the newest backup
  RCBACKUP_CONFIG=$OUT/$1.toml "$BIN" listbackups -d "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])'
}
stored() { stat -c %s "$OUT/remote/$1/db/$(newest "$1" "$2")"; }
pg_restore_into_target="pg_restore --no-owner --no-acl --clean --if-exists --single-transaction --no-password --dbname=${P}_target"
mkdir -p "$OUT/remote/bare"
z() { [ $ZSTD = 1 ] && echo "$@" || true; } # words that exist only with compression support

for round in $(seq "$ROUNDS"); do
  for side in $(order "$round" bare engine per-call $(z zstd)); do
    case $side in
      bare) bare pg_backup_bare "pg_dump --format=custom --no-password --dbname=${P}_bench | rclone rcat '$OUT/remote/bare/bench.dump'" ;;
      engine) rc pg_backup_engine engine server dbbackup -d bench --clean ;;
      per-call) rc pg_backup_engine_percall engine per-call dbbackup -d bench --clean ;;
      zstd) rc pg_backup_zstd zstd server dbbackup -d bench --clean ;;
    esac
  done
  eobj=$OUT/remote/engine/db/$(newest engine bench)
  [ $ZSTD = 1 ] && zobj=$OUT/remote/zstd/db/$(newest zstd bench)
  for side in $(order "$round" bare engine $(z bare-zstd zstd)); do
    case $side in
      bare) bare pg_restore_bare "rclone cat '$eobj' | $pg_restore_into_target" ;;
      engine) rc pg_restore_engine engine server dbrestore -d target -i "$(basename "$eobj")" --noinput ;;
      bare-zstd) bare pg_restore_bare_zstd "rclone cat '$zobj' | zstd -dcq | $pg_restore_into_target" ;;
      zstd) rc pg_restore_zstd zstd server dbrestore -d target -i "$(basename "$zobj")" --noinput ;;
    esac
  done
  for side in $(order "$round" $(z bare zstd small)); do
    case $side in
      bare) bare random_backup_bare "pg_dump --format=custom --no-password --dbname=${P}_random | rclone rcat '$OUT/remote/bare/random.dump'" ;;
      zstd) rc random_backup_zstd zstd server dbbackup -d random --clean ;;
      small) rc randsmall_backup_zstd zstd server dbbackup -d randsmall --clean ;; # for the RSS only
    esac
  done
  for db in my lite; do
    for cfg in $(order "$round" engine $(z zstd)); do rc "${db}_backup_$cfg" "$cfg" server dbbackup -d $db --clean; done
  done
  for side in $(order "$round" bare engine per-call $(z zstd)); do
    case $side in
      bare) bare small_backup_bare "pg_dump --format=custom --no-password --dbname=${P}_small | rclone rcat '$OUT/remote/bare/small.dump'" ;;
      engine) rc small_backup_engine engine server dbbackup -d small --clean ;;
      per-call) rc small_backup_engine_percall engine per-call dbbackup -d small --clean ;;
      zstd) rc small_backup_zstd zstd server dbbackup -d small --clean ;;
    esac
  done
  echo "round $round of $ROUNDS done ($((SECONDS - START)) s)"
done
restored=$(psql -qtAc "SELECT count(*) FROM pgbench_accounts" -d "${P}_target")
[ "$restored" = "$accounts" ] || fail "the restored database has $restored rows in pgbench_accounts, not $accounts"
# The restore's RSS at scale 1: restore the small database over itself.
codec=$([ $ZSTD = 1 ] && echo zstd || echo engine)
rc small_restore_$codec $codec server dbrestore -d small --noinput

# listbackups over 100 backups: one backup of a one-row SQLite database, then
# 99 copies of its data object and record under other names and times.
sqlite3 "$OUT/tiny.sqlite3" "CREATE TABLE t (x); INSERT INTO t VALUES (1)"
RCBACKUP_CONFIG=$OUT/list.toml RCBACKUP_RCLONE_MODE=server "$BIN" -vv dbbackup -d tiny 2> "$OUT/log/list_setup.log" \
  || fail "the backup for listbackups failed: see $OUT/log/list_setup.log"
if grep -q 'rclone rcd' "$OUT/log/list_setup.log"; then SERVER=1; else SERVER=0; fi
python3 - "$OUT/remote/list/db" "$(newest list tiny)" <<'PY'
import json, os, shutil, sys
d, name = sys.argv[1], sys.argv[2]
rec = json.loads(open(f"{d}/.rcbackup/records/{name}.json").readline())
stem, dot, ext = name.partition(".")
for i in range(1, 100):
    n = f"tiny-2025-01-01-{i:06d}.{ext}"
    shutil.copyfile(f"{d}/{name}", f"{d}/{n}")
    t = f"2025-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
    with open(f"{d}/.rcbackup/records/{n}.json", "w") as f:
        f.write(json.dumps(dict(rec, name=n, created=t, finished=t)) + "\n")
PY
count=$(RCBACKUP_CONFIG=$OUT/list.toml "$BIN" listbackups -d tiny --json | python3 -c 'import json,sys; b=json.load(sys.stdin); print(sum(1 for x in b if x["status"] == "ok"))')
[ "$count" = 100 ] || fail "listbackups shows $count intact backups, not the 100 made for it"
for i in $(seq "$LIST_RUNS"); do
  for mode in $(order "$i" server per-call); do
    timed "list_$mode" env RCBACKUP_CONFIG="$OUT/list.toml" RCBACKUP_RCLONE_MODE=$mode "$BIN" listbackups -d tiny > /dev/null 2> "$OUT/log/list_$mode.log"
  done
done

# --- the table ---------------------------------------------------------------
set +e # a value that is missing shows as a blank, the rest of the table still prints
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
wall() { cut -d' ' -f1 "$OUT/t_$1" | median; }
cpu() { cut -d' ' -f2 "$OUT/t_$1" | median; }
maxrss() { { cat "$@" 2>/dev/null || true; } | sort -n | tail -1; }
ok() { # VALUE OP LIMIT: ok or MISSED
  if [ "$(echo "$1 $2 $3" | bc -l)" = 1 ]; then echo ok; else echo MISSED; fi
}
hdr() { printf '%-52s %12s %12s %7s  %-18s %s\n' job baseline rcbackup ratio target result; }
# row JOB BASE RC OP LIMIT [TARGET-TEXT]: ratio RC/BASE checked against OP LIMIT; OP "-" only informs.
row() {
  local r; r=$(echo "$3 / $2" | bc -l)
  if [ "$4" = - ]; then printf '%-52s %12s %12s %7.3f  %-18s %s\n' "$1" "$2" "$3" "$r" "(informs)" -
  else printf '%-52s %12s %12s %7.3f  %-18s %s\n' "$1" "$2" "$3" "$r" "${6:-ratio $4 $5}" "$(ok "$r" "$4" "$5")"; fi
}
# absrow JOB BASE RC OP LIMIT TARGET-TEXT: RC itself checked against OP LIMIT.
absrow() { printf '%-52s %12s %12s %7.3f  %-18s %s\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)" "$6" "$(ok "$3" "$4" "$5")"; }
na() { printf '%-52s %12s %12s  %s\n' "$1" "${2:--}" - "$NA"; } # JOB [BASELINE]
zrow() { if [ $ZSTD = 1 ]; then row "$@"; else na "$1" "$2"; fi; }

rss_small=$(maxrss "$OUT"/rss_small_backup_$codec "$OUT"/rss_small_restore_$codec)
rss_big=$(maxrss "$OUT"/rss_pg_backup_$codec "$OUT"/rss_pg_restore_$codec)
rss_engine=$(maxrss "$OUT"/rss_*_engine "$OUT"/rss_*_engine_percall)
rss_all=$(maxrss "$OUT"/rss_*_$codec)
{
  echo
  echo "rcbackup: $BIN ($("$BIN" --version 2>&1 | head -1)); compression: $([ $ZSTD = 1 ] && echo yes || echo "no (zstd lines n/a)");" \
    "rclone server: $([ $SERVER = 1 ] && echo yes || echo "no (RCBACKUP_RCLONE_MODE ignored)")"
  echo "pgbench scale $SCALE, random bytea $RANDOM_MB MiB, medians of $ROUNDS rounds ($LIST_RUNS runs for listbackups); seconds, bytes, KiB"
  hdr
  row "pgbench dbbackup --clean (engine), wall s" "$(wall pg_backup_bare)" "$(wall pg_backup_engine)" "<=" 1.05
  row "pgbench dbbackup --clean (engine), cpu s" "$(cpu pg_backup_bare)" "$(cpu pg_backup_engine)" "<=" 1.05
  zrow "pgbench dbbackup --clean (zstd), wall s" "$(wall pg_backup_bare)" "$(wall pg_backup_zstd 2>/dev/null)" "<=" 1.00
  zrow "pgbench dbbackup --clean (zstd), cpu s" "$(cpu pg_backup_bare)" "$(cpu pg_backup_zstd 2>/dev/null)" "<=" 1.05
  zrow "pgbench stored bytes (zstd vs pg_dump -Fc)" "$(stat -c %s "$OUT/remote/bare/bench.dump")" "$([ $ZSTD = 1 ] && stored zstd bench)" "<=" 0.5 "ratio <= 0.5 (2x)"
  row "pgbench dbrestore (engine), wall s" "$(wall pg_restore_bare)" "$(wall pg_restore_engine)" "<=" 1.02
  row "pgbench dbrestore (engine), cpu s" "$(cpu pg_restore_bare)" "$(cpu pg_restore_engine)" "<=" 1.02
  zrow "pgbench dbrestore (zstd; base | zstd -d), wall s" "$(wall pg_restore_bare_zstd 2>/dev/null)" "$(wall pg_restore_zstd 2>/dev/null)" "<=" 1.02
  zrow "pgbench dbrestore (zstd; base | zstd -d), cpu s" "$(cpu pg_restore_bare_zstd 2>/dev/null)" "$(cpu pg_restore_zstd 2>/dev/null)" "<=" 1.02
  zrow "random bytea dbbackup --clean (zstd), wall s" "$(wall random_backup_bare 2>/dev/null)" "$(wall random_backup_zstd 2>/dev/null)" "<=" 0.3334 "ratio <= 0.333 (3x)"
  zrow "random bytea dbbackup --clean (zstd), cpu s" "$(cpu random_backup_bare 2>/dev/null)" "$(cpu random_backup_zstd 2>/dev/null)" -
  for db in my lite; do
    label=$([ $db = my ] && echo mariadb || echo sqlite)
    if [ $ZSTD = 1 ]; then
      row "$label dbbackup --clean (zstd vs engine), wall s" "$(wall ${db}_backup_engine)" "$(wall ${db}_backup_zstd)" "<=" 1.10
      row "$label dbbackup --clean (zstd vs engine), cpu s" "$(cpu ${db}_backup_engine)" "$(cpu ${db}_backup_zstd)" -
      row "$label stored bytes (zstd vs engine)" "$(stored engine $db)" "$(stored zstd $db)" "<=" 0.25 "ratio <= 0.25 (4x)"
    else
      na "$label dbbackup --clean (zstd vs engine), wall s" "$(wall ${db}_backup_engine)"
      na "$label dbbackup --clean (zstd vs engine), cpu s" "$(cpu ${db}_backup_engine)"
      na "$label stored bytes (zstd vs engine)" "$(stored engine $db)"
    fi
  done
  absrow "listbackups of 100 backups, wall s" "$(wall list_per-call)" "$(wall list_server)" "<" 0.1 "rcbackup < 0.100"
  row "mode: listbackups of 100, cpu s" "$(cpu list_per-call)" "$(cpu list_server)" -
  row "mode: pgbench dbbackup --clean (engine), wall s" "$(wall pg_backup_engine_percall)" "$(wall pg_backup_engine)" -
  row "mode: pgbench dbbackup --clean (engine), cpu s" "$(cpu pg_backup_engine_percall)" "$(cpu pg_backup_engine)" -
  row "mode: scale 1 dbbackup --clean (engine), wall s" "$(wall small_backup_engine_percall)" "$(wall small_backup_engine)" -
  row "mode: scale 1 dbbackup --clean (engine), cpu s" "$(cpu small_backup_engine_percall)" "$(cpu small_backup_engine)" -
  row "scale 1 dbbackup --clean (engine) vs bare, wall s" "$(wall small_backup_bare)" "$(wall small_backup_engine)" -
  row "rcbackup peak RSS KiB ($codec), pgbench scale 1 vs $SCALE" "$rss_small" "$rss_big" "<=" 1.25 "ratio <= 1.25 (flat)"
  zrow "rcbackup peak RSS KiB (zstd), random $RANDOM_SMALL_MB vs $RANDOM_MB MiB" "$(maxrss "$OUT"/rss_randsmall_backup_zstd)" \
    "$(maxrss "$OUT"/rss_random_backup_zstd)" "<=" 1.25 "ratio <= 1.25 (flat)"
  absrow "rcbackup peak RSS KiB, max of all runs (engine/$codec)" "$rss_engine" "$rss_all" "<" 65536 "rcbackup < 65536"
  echo "(baseline: the bare pipe; for mode lines one rclone process per call; for mariadb/sqlite compression = \"engine\";"
  echo " for RSS the smaller size, or all runs with engine compression. Raw \"wall cpu\" per round: $OUT/t_<job>.)"
  echo "whole run: $((SECONDS - START)) s"
} | tee "$OUT/table.txt"
