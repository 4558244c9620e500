#!/usr/bin/env bash
# The tests: set up if needed, then formatting, lints, and every test
# (unit, integration with the smoke run of the whole loop, tch/ONNX parity).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SELFPLAY_SKIP_BUILD=1 scripts/setup.sh --test
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release "$@"
