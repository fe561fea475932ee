#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/install-deps.sh), checks
# formatting and lints, then runs every unit and end-to-end test against the
# real peers. Run from anywhere, as root on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never
jobs=$(nproc 2>/dev/null || echo 2)

cargo fmt --all --check
cargo clippy -j"$jobs" --workspace --all-targets -- -D warnings
cargo test -j"$jobs" --workspace --no-fail-fast
