#!/usr/bin/env bash
# Runs the whole test suite on this machine: installs and starts what the
# tests need (scripts/setup.sh, safe to run again), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --no-fail-fast
