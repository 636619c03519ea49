#!/usr/bin/env bash
# Benchmark of the WebAssembly policy runtime, in one run:
#  1. cold compile vs cached load of the keep-last policy;
#  2. per-call retention time over 10 / 1,000 / 10,000 backups (cached module,
#     fresh instance per call) beside the built-in native rule;
#  3. `dbbackup --clean` of a small SQLite database to a local remote holding
#     20 backups, with the built-in rule vs the wasm keep-last (same keep).
# Targets: cached load + one call over 1,000 backups < 5 ms; dbbackup --clean
# with wasm at most 20 ms slower than built-in.
#   bench/policy.sh            ROUNDS=15 bench/policy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-11}
OUT=$PWD/bench/out/policy
rm -rf "$OUT" && mkdir -p "$OUT/remote"
cargo build --release -q -p rcbackup --bins --example policy_bench
(cd policies && cargo build -q --target wasm32-wasip2 --release)
WASM=$PWD/policies/target/wasm32-wasip2/release/keep_last.wasm
BIN=$PWD/target/release/rcbackup

echo "== policy runtime"
target/release/examples/policy_bench "$WASM"

echo "== dbbackup --clean (SQLite, local remote, keep 10 of 20 after each run)"
export RCBACKUP_CACHE_DIR=$OUT/cache
sqlite3 "$OUT/app.sqlite3" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
base="remote = \"$OUT/remote\"
db_cleanup_keep = 10
[databases.default]
engine = \"sqlite\"
name = \"$OUT/app.sqlite3\""
printf '%s\n' "$base" > "$OUT/builtin.toml"
printf '%s\n[policies.retention]\nmodule = "%s"\nconfig = { keep = 10 }\n' "$base" "$WASM" > "$OUT/wasm.toml"
"$BIN" -q policy compile "$WASM" >/dev/null
for _ in $(seq 20); do "$BIN" -q --config "$OUT/builtin.toml" dbbackup; done

run() { # config -> median ms of ROUNDS runs of dbbackup --clean
  local t=()
  for _ in $(seq "$ROUNDS"); do
    local s e
    s=$(date +%s%N)
    "$BIN" -q --config "$1" dbbackup --clean
    e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk -v n="$ROUNDS" 'NR == int(n/2)+1 { printf "%.1f", $1/1000 }'
}
# Interleave so that both sides see the same machine load.
b1=$(run "$OUT/builtin.toml"); w1=$(run "$OUT/wasm.toml")
b2=$(run "$OUT/builtin.toml"); w2=$(run "$OUT/wasm.toml")
echo "  built-in keep-last: ${b1} ms, ${b2} ms (median of $ROUNDS, two passes)"
echo "  wasm keep-last:     ${w1} ms, ${w2} ms"
awk -v b="$b1" -v w="$w1" -v b2="$b2" -v w2="$w2" 'BEGIN { printf "  wasm - built-in:    %.1f ms, %.1f ms (target <= 20 ms)\n", w-b, w2-b2 }'
