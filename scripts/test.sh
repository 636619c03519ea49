#!/usr/bin/env bash
# Runs the whole test suite on this machine: installs and starts what the
# tests need (scripts/setup.sh, safe to run again), then every test twice
# over the ways rcbackup reaches rclone: first with one `rclone rcd` per run
# (the default), then the end-to-end tests again with one rclone process per
# call (RCBACKUP_RCLONE_MODE=per-call, the fallback). Ends with one line
# totalling all test binaries of both passes: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "== pass 1 of 2: one rclone server per run"
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
echo "== pass 2 of 2: one rclone process per call (RCBACKUP_RCLONE_MODE=per-call)"
RCBACKUP_RCLONE_MODE=per-call cargo test -p rcbackup --no-fail-fast --test '*' 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' \
  <(sed 's/;//g' "$log")
exit "$status"
