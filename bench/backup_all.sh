#!/usr/bin/env bash
# Benchmark of issue 10, "hundreds of tenants on one machine": backup-all
# against one rcbackup process per tenant (what a cron loop does), in one run.
#
# How to run (from anywhere; needs rclone, sqlite3, bc; scripts/setup.sh
# installs them):
#
#   bench/backup_all.sh                  200 tenants, one SQLite database of about
#                                        3 MB each: 5-10 minutes on 2 busy cores,
#                                        plus the release build
#   QUICK=1 bench/backup_all.sh          20 tenants (memory at 5 and 20): a quick look
#   DRY=1 bench/backup_all.sh            no rcbackup at all: a stand-in script plays
#                                        its part, to check this script's own setup
#                                        (databases, config, counting, the table)
#   TENANTS=.. SMALL=.. ROWS=.. ROUNDS=.. WINDOW_HOURS=..   override any of those
#   RCBACKUP_BIN=/path/to/rcbackup       measure that binary (default: cargo build
#                                        --release, then target/release/rcbackup)
#
# The binary needs tenants (`tenants_dir`, `--tenant`) and `backup-all`; the
# script says so and stops if it lacks either.
#
# What it measures, on TENANTS tenants each with one SQLite database (ROWS
# orders with their customers and products: realistic rows, not a blob),
# one config with tenants_dir and a local folder remote:
#   (a) TENANTS separate `rcbackup --tenant T dbbackup -d main`, one after another
#   (b) `rcbackup backup-all --jobs 1`
#   (c) `rcbackup backup-all --jobs 2`      target: at least 4x the throughput of (a)
#   (d) `rcbackup backup-all --jobs 4`
#   (e) TENANTS x `sqlite3 DB .dump > /dev/null`, one after another: the
#       dump tool alone, no rcbackup, no rclone, no compression
# each printed as seconds, backups per second and the ratio of its throughput
# to (a)'s; from (e), the ceiling of any --jobs 2 on this machine: (a)'s
# seconds over (e)'s spread on 2 cores, what backup-all would reach if
# rcbackup, zstd and rclone cost nothing; rcbackup's own peak memory (VmHWM of the rcbackup process, read
# from /proc while it runs; children such as rclone and sqlite3 are not
# counted) for backup-all --jobs 2 at SMALL (50) and at TENANTS tenants,
# target: flat (ratio <= 1.25); and how many tenants fit a WINDOW_HOURS (6)
# hour nightly window at (c)'s rate, assuming every database is like these.
# GNU time's "maximum resident set size" is not used: it is the largest of
# the whole process tree (rclone's, if larger), not rcbackup's.
#
# Each run starts from an empty remote and is checked: exit 0 and exactly one
# new backup per tenant, under that tenant's folder. With ROUNDS > 1 the runs
# alternate their order from round to round and the table shows medians.
# Everything is under bench/out/backup_all/ (gitignored): table.txt (the
# result), t_<run> (seconds per round), rss_<run> (KiB), log/ (stderr of each
# run). The databases and the remote are removed at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

if [ -n "${DRY:-}" ]; then
  TENANTS=${TENANTS:-12} SMALL=${SMALL:-4} ROWS=${ROWS:-2000}
elif [ -n "${QUICK:-}" ]; then
  TENANTS=${TENANTS:-20} SMALL=${SMALL:-5} ROWS=${ROWS:-25000}
fi
TENANTS=${TENANTS:-200}
SMALL=${SMALL:-50}
ROWS=${ROWS:-25000}
ROUNDS=${ROUNDS:-1}
WINDOW_HOURS=${WINDOW_HOURS:-6}
OUT=$PWD/bench/out/backup_all
unset RCBACKUP_CONFIG RCBACKUP_LOG RCBACKUP_METRICS_FILE

exec 3>&2 # the terminal, for fail() inside a redirected run
fail() { echo "backup_all.sh: $*" >&3; exit 1; }
for tool in sqlite3 rclone bc; do
  command -v "$tool" >/dev/null || fail "needs $tool: run scripts/setup.sh first"
done
[ "$SMALL" -le "$TENANTS" ] && [ "$SMALL" -ge 1 ] || fail "SMALL ($SMALL) must be between 1 and TENANTS ($TENANTS)"
need_mb=$(( TENANTS * (ROWS / 2500 + 1) * 2 + 100 ))
mkdir -p bench/out
free_mb=$(df -Pm bench/out | awk 'NR == 2 {print $4}')
[ "$free_mb" -ge "$need_mb" ] || fail "needs about $need_mb MB free under bench/out, has $free_mb MB: lower TENANTS or ROWS"

cleanup() { rm -rf "$OUT/dbs" "$OUT/remote"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$OUT" && mkdir -p "$OUT/dbs" "$OUT/remote" "$OUT/log" "$OUT/etc/tenants" "$OUT/etc-small/tenants"
START=$SECONDS

# --- the binary --------------------------------------------------------------
if [ -n "${DRY:-}" ]; then
  # A stand-in that does what the runs need of rcbackup (one file per backup
  # in the tenant's folder), so that everything else here runs for real.
  BIN=$OUT/stand-in-rcbackup
  cat > "$BIN" <<'STANDIN'
#!/usr/bin/env bash
# DRY=1's stand-in for rcbackup: `--tenant T dbbackup -d main` and
# `backup-all --jobs N`, by copying each tenant's database to the remote.
set -euo pipefail
etc=$(dirname "$RCBACKUP_CONFIG")
remote=$(sed -n 's/^remote = "\(.*\)"$/\1/p' "$RCBACKUP_CONFIG")
one() { # TENANT
  local db; db=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$etc/tenants/$1.toml")
  mkdir -p "$remote/tenants/$1/db"
  cp "$db" "$remote/tenants/$1/db/main-$(date +%Y-%m-%d-%H%M%S%N).sqlite3"
}
tenant= jobs=1
while [ $# -gt 0 ]; do
  case $1 in
    --tenant) tenant=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    dbbackup) cmd=one; shift ;;
    backup-all) cmd=all; shift ;;
    *) shift ;;
  esac
done
if [ "$cmd" = one ]; then one "$tenant"; exit 0; fi
sleep 0.3 # long enough for the memory sampler
export -f one; export etc remote
ls "$etc/tenants" | sed 's/\.toml$//' | xargs -P "$jobs" -I{} bash -c 'one {}'
STANDIN
  chmod +x "$BIN"
  VERSION="DRY RUN: a stand-in script, not rcbackup; the figures mean nothing"
else
  if [ -n "${RCBACKUP_BIN:-}" ]; then
    BIN=$RCBACKUP_BIN
  else
    cargo build --release -q -p rcbackup
    BIN=$PWD/target/release/rcbackup
  fi
  "$BIN" --version > /dev/null 2>&1 || fail "$BIN does not run"
  VERSION="$BIN ($("$BIN" --version 2>&1 | head -1))"
  "$BIN" backup-all --help > /dev/null 2> "$OUT/log/probe.log" \
    || fail "$BIN has no backup-all command (issue 10), which this benchmark measures: $(head -1 "$OUT/log/probe.log")"
fi

# --- tenants -------------------------------------------------------------------
width=3; [ "$TENANTS" -gt 1000 ] && width=${#TENANTS}
tenant() { printf "t%0${width}d" "$1"; } # INDEX: the tenant's name
customers=$(( ROWS / 5 + 1 ))
# One shop per tenant: customers, products and orders with names, e-mail
# addresses, dates, amounts and notes drawn at random (every tenant's differ).
make_db() { # FILE
  sqlite3 -bail "$1" > /dev/null <<SQL
PRAGMA journal_mode = DELETE;
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
  city TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
  price_cents INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id),
  product_id INTEGER NOT NULL REFERENCES products (id), quantity INTEGER NOT NULL,
  total_cents INTEGER NOT NULL, status TEXT NOT NULL, placed_at TEXT NOT NULL, note TEXT);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX orders_by_date ON orders (placed_at);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $customers)
INSERT INTO customers
SELECT i,
  rtrim(substr('Alice   Bob     Carol   Dave    Erin    Frank   Grace   Heidi   Ivan    Judy    Mallory Niaj    Olivia  Peggy   Rupert  Sybil   Trent   Victor  Walter  Yvonne  ', 1 + 8 * (abs(random()) % 20), 8))
    || ' ' || rtrim(substr('Smith    Jones    Taylor   Brown    Williams Wilson   Johnson  Davies   Robinson Wright   Thompson Evans    Walker   White    Roberts  Green    ', 1 + 9 * (abs(random()) % 16), 9)),
  'customer' || i || '.' || lower(hex(randomblob(3))) || '@example.' || substr('comorgnet', 1 + 3 * (abs(random()) % 3), 3),
  rtrim(substr('Berlin    Paris     Madrid    Rome      Vienna    Lisbon    Dublin    Oslo      Prague    Warsaw    ', 1 + 10 * (abs(random()) % 10), 10)),
  datetime(1577836800 + abs(random()) % 157680000, 'unixepoch')
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO products
SELECT i, printf('SKU-%06d', i),
  rtrim(substr('Classic Deluxe  Compact Organic Vintage Premium Travel  Family  ', 1 + 8 * (abs(random()) % 8), 8)) || ' '
    || rtrim(substr('mug       lamp      backpack  teapot    notebook  blanket   chair     kettle    ', 1 + 10 * (abs(random()) % 8), 10)),
  100 + abs(random()) % 20000
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO orders (id, customer_id, product_id, quantity, total_cents, status, placed_at, note)
SELECT i, 1 + abs(random()) % $customers, 1 + abs(random()) % 500, q, q * (100 + abs(random()) % 20000),
  rtrim(substr('paid     shipped  deliveredrefunded cancelled', 1 + 9 * (abs(random()) % 5), 9)),
  datetime(1609459200 + abs(random()) % 126144000, 'unixepoch'),
  CASE WHEN abs(random()) % 10 < 3 THEN
    'please ' || rtrim(substr('leave at the door    ring twice           gift wrap it         call before delivery no plastic please   ', 1 + 21 * (abs(random()) % 5), 21))
  END
FROM (SELECT i, 1 + abs(random()) % 5 AS q FROM n);
COMMIT;
SQL
}
echo "making $TENANTS tenants, one SQLite database of $ROWS orders each..."
printf 'remote = "%s/remote"\ntenants_dir = "tenants"\n' "$OUT" > "$OUT/etc/rcbackup.toml"
printf 'remote = "%s/remote"\ntenants_dir = "tenants"\n' "$OUT" > "$OUT/etc-small/rcbackup.toml"
for i in $(seq 0 $((TENANTS - 1))); do
  t=$(tenant "$i")
  make_db "$OUT/dbs/$t.sqlite3"
  printf '# tenant %s\n[databases.main]\nengine = "sqlite"\nname = "%s"\n' "$t" "$OUT/dbs/$t.sqlite3" > "$OUT/etc/tenants/$t.toml"
  if [ "$i" -lt "$SMALL" ]; then cp "$OUT/etc/tenants/$t.toml" "$OUT/etc-small/tenants/"; fi
done
[ "$(sqlite3 "$OUT/dbs/$(tenant 0).sqlite3" 'SELECT count(*) FROM orders')" = "$ROWS" ] || fail "tenant $(tenant 0)'s database lacks its $ROWS orders"
db_kib=$(( $(du -sk "$OUT/dbs" | cut -f1) / TENANTS ))
echo "made $TENANTS databases of $db_kib KiB on average ($((SECONDS - START)) s)"
if [ -z "${DRY:-}" ]; then
  RCBACKUP_CONFIG=$OUT/etc/rcbackup.toml "$BIN" --tenant "$(tenant 0)" listbackups -d main > /dev/null 2> "$OUT/log/probe.log" \
    || fail "$BIN does not take the benchmark's tenants (tenants_dir, --tenant; issue 10): $(tail -1 "$OUT/log/probe.log")"
fi

# --- measuring -------------------------------------------------------------------
# checked RUN COUNT: exactly one backup per tenant on the remote, COUNT in all.
checked() {
  local n per
  n=$(find "$OUT/remote/tenants" -path '*/.*' -prune -o -type f -path '*/db/*' -print 2>/dev/null | wc -l)
  [ "$n" = "$2" ] || fail "run $1 left $n backups on the remote, not $2 (log: $OUT/log/$1.log)"
  per=$(find "$OUT/remote/tenants" -path '*/.*' -prune -o -type f -path '*/db/*' -print | awk -F/ '{print $(NF-2)}' | sort | uniq -c | awk '$1 != 1' | head -1)
  [ -z "$per" ] || fail "run $1: a tenant has more than one backup: $per"
}
# timed RUN CONFIG CMD...: runs CMD with RCBACKUP_CONFIG=CONFIG from an empty
# remote, appends its seconds to t_RUN and the VmHWM of its process (CMD
# itself, sampled every 50 ms from /proc; the last sample before it exits)
# to rss_RUN.
timed() {
  local run=$1 cfg=$2 t0 t1 pid hwm=0 samples=0 st=0 k v
  shift 2
  rm -rf "$OUT/remote" && mkdir -p "$OUT/remote"
  t0=$EPOCHREALTIME
  RCBACKUP_CONFIG=$cfg "$@" 2> "$OUT/log/$run.log" > "$OUT/log/$run.out" &
  pid=$!
  while [ -r "/proc/$pid/status" ]; do
    local state=
    while read -r k v _; do
      case $k in VmHWM:) hwm=$v ;; State:) state=$v ;; esac
    done 2>/dev/null < "/proc/$pid/status" || true
    [ "$state" = Z ] && break
    samples=$((samples + 1))
    sleep 0.05
  done
  wait "$pid" || st=$?
  t1=$EPOCHREALTIME
  [ $st = 0 ] || fail "run $run failed (exit $st): $* (log: $OUT/log/$run.log)"
  echo "$t1 - $t0" | bc >> "$OUT/t_$run"
  # A run too short for 3 samples may have been seen only before its exec.
  if [ $samples -ge 3 ]; then echo "$hwm" >> "$OUT/rss_$run"; fi
}
loop_a() { # what a cron loop does: one process per tenant
  local i
  for i in $(seq 0 $((TENANTS - 1))); do "$BIN" -q --tenant "$(tenant "$i")" dbbackup -d main || return; done
}
loop_e() { # the dump tool alone, as rcbackup runs it
  local i
  for i in $(seq 0 $((TENANTS - 1))); do
    sqlite3 -bail -readonly "$OUT/dbs/$(tenant "$i").sqlite3" .dump > /dev/null || return
  done
}
order() { local r=$1; shift; if [ $((r % 2)) = 1 ]; then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi; }
cfg=$OUT/etc/rcbackup.toml
for round in $(seq "$ROUNDS"); do
  for run in $(order "$round" a b c d e small); do
    case $run in
      a) timed a "$cfg" bash -c "$(declare -f loop_a tenant); BIN='$BIN' TENANTS=$TENANTS width=$width; loop_a"; checked a "$TENANTS" ;;
      b) timed b "$cfg" "$BIN" -q backup-all --jobs 1; checked b "$TENANTS" ;;
      c) timed c "$cfg" "$BIN" -q backup-all --jobs 2; checked c "$TENANTS"
         stored_kib=$(( $(du -sk "$OUT/remote" | cut -f1) / TENANTS )) ;;
      d) timed d "$cfg" "$BIN" -q backup-all --jobs 4; checked d "$TENANTS" ;;
      e) timed e "$cfg" bash -c "$(declare -f loop_e tenant); OUT='$OUT' TENANTS=$TENANTS width=$width; loop_e" ;;
      small) timed small "$OUT/etc-small/rcbackup.toml" "$BIN" -q backup-all --jobs 2; checked small "$SMALL" ;;
    esac
    echo "round $round: run $run done ($((SECONDS - START)) s)"
  done
done

# --- the table -------------------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1; print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
secs() { median < "$OUT/t_$1"; }
rss() { { cat "$OUT/rss_$1" 2>/dev/null || true; } | sort -n | tail -1; } # empty if never sampled
ok() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo ok; else echo MISSED; fi; } # a bc comparison
sa=$(secs a)
row() { # LABEL RUN TARGET-TEXT [MIN]: its throughput's ratio to (a)'s, ok when >= MIN
  local s rate x result=-
  s=$(secs "$2"); rate=$(echo "$TENANTS / $s" | bc -l); x=$(echo "$sa / $s" | bc -l)
  if [ -n "${4:-}" ]; then result=$(ok "$x >= $4"); fi
  printf '%-46s %9.2f %10.2f %7.2fx  %-12s %s\n' "$1" "$s" "$rate" "$x" "$3" "$result"
}
rate_c=$(echo "$TENANTS / $(secs c)" | bc -l)
rss_small=$(rss small) rss_big=$(rss c)
rss_ratio=0 rss_result="n/a (a run too short to sample)"
if [ -n "$rss_small" ] && [ -n "$rss_big" ]; then
  rss_ratio=$(echo "$rss_big / $rss_small" | bc -l); rss_result=$(ok "$rss_ratio <= 1.25")
fi
{
  echo
  echo "rcbackup: $VERSION"
  echo "$TENANTS tenants, one SQLite database each ($ROWS orders; $db_kib KiB on disk, $stored_kib KiB stored on average);" \
    "local folder remote; $ROUNDS round(s)$([ "$ROUNDS" -gt 1 ] && echo ", medians")"
  printf '%-46s %9s %10s %8s  %-12s %s\n' run seconds backups/s "vs (a)" target result
  row "(a) $TENANTS x rcbackup --tenant T dbbackup" a "(baseline)"
  row "(b) rcbackup backup-all --jobs 1" b "(informs)"
  row "(c) rcbackup backup-all --jobs 2" c ">= 4x" 4
  row "(d) rcbackup backup-all --jobs 4" d "(informs)"
  row "(e) $TENANTS x sqlite3 .dump > /dev/null" e "(informs)"
  printf '%-46s %9s %10s %7.2fx  %s\n' "ceiling of --jobs 2 (dumps alone, on 2 cores)" - - \
    "$(echo "$sa / ($(secs e) / 2)" | bc -l)" "(what (c) would reach if rcbackup, zstd and rclone cost nothing)"
  echo
  printf '%-46s %9s %10s %8s  %-12s %s\n' "rcbackup peak RSS (VmHWM), backup-all --jobs 2" "$SMALL ten." "$TENANTS ten." ratio target result
  printf '%-46s %9s %10s %7.2fx  %-12s %s\n' "  KiB, rcbackup's own (children not counted)" "${rss_small:--}" "${rss_big:--}" "$rss_ratio" "<= 1.25x" \
    "$rss_result"
  echo
  printf 'nightly window: at (c)'"'"'s %.2f backups/s, a %s h window fits about %d tenants with one such database each\n' \
    "$rate_c" "$WINDOW_HOURS" "$(echo "$rate_c * $WINDOW_HOURS * 3600 / 1" | bc)"
  echo "  (assumes every database is like these, $db_kib KiB, on this machine and a remote as fast as a local folder;"
  echo "   for larger databases or a slower remote, time one night with backup-all --json and scale by that rate)"
  echo "raw figures: $OUT/t_<run> (seconds), $OUT/rss_<run> (KiB); whole run: $((SECONDS - START)) s"
} | tee "$OUT/table.txt"
