#!/usr/bin/env bash
# Runs the whole test suite on this machine: installs and starts what the
# tests need (scripts/setup.sh, safe to run again), then every test, and
# ends with one line totalling all test binaries: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' \
  <(sed 's/;//g' "$log")
exit "$status"
