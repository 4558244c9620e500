#!/usr/bin/env bash
# The main job: set up if needed, then the full loop on the embedded default
# config (local files under runs/default, CPU). Extra arguments go to
# `selfplay`, e.g. scripts/run.sh --set mcts.num_simulations=64.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
exec "$ROOT/target/release/selfplay" --config "$ROOT/pipelines/default.toml" run "$@"
