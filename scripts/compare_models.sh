#!/usr/bin/env bash
# Compares the model architectures on the same self-play budget, in one run
# on this machine: each setting of pipelines/compare/*.toml is run once per
# architecture (`selfplay run --set model.arch=<arch>`), then one Markdown
# table is written to OUT/compare.md (and printed).
#
#   scripts/compare_models.sh [OUT] [ARCH...]    (default: runs/compare, every arch)
#   SETTINGS="mixed connect4" scripts/compare_models.sh   (a subset of settings)
#
# Columns: parameters; held-out success per family of the last iteration's
# model (and its score against rollout MCTS for two-player families, wins
# plus half the draws); the last iteration's smoothed training losses (how
# well the network fits the search's targets); the mean self-play episode
# length of the first and last iteration (on Sudoku: cells placed before
# the episode ends); wall time per iteration; network rows/s during
# self-play (ONNX Runtime, the play stage's evals_per_s averaged over
# iterations).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
OUT="${1:-$ROOT/runs/compare}"
shift || true
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(mlp resnet trm hrm)
SETTINGS="${SETTINGS:-mixed sudoku_raw connect4}"
BIN="$ROOT/target/release/selfplay"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
mkdir -p "$OUT"

for setting in $SETTINGS; do
  for arch in "${ARCHS[@]}"; do
    dir="$OUT/$setting/$arch"
    if [ -f "$dir/done.json" ]; then
      echo "== $setting / $arch: done already ($dir)"
      continue
    fi
    rm -rf "$dir"
    echo "== $setting / $arch"
    start=$(date +%s.%N)
    "$BIN" --out "$dir" run --config "$ROOT/pipelines/compare/$setting.toml" \
      --set "model.arch=$arch" 2>&1 | tail -n 4
    end=$(date +%s.%N)
    python3 -c "import json,sys; json.dump({'seconds': float(sys.argv[2]) - float(sys.argv[1])}, open(sys.argv[3], 'w'))" \
      "$start" "$end" "$dir/done.json"
  done
done

"$ROOT/.venv/bin/python" - "$OUT" $SETTINGS <<'PY'
import json, struct, sys, glob, os
import duckdb

out, settings = sys.argv[1], sys.argv[2:]

def params(run):
    """Parameters of the newest model, from its safetensors header."""
    models = sorted(glob.glob(f"{run}/models/iteration=*/weights.safetensors"))
    with open(models[-1], "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    total = 0
    for name, t in header.items():
        if name == "__metadata__" or "running_" in name:
            continue
        size = 1
        for d in t["shape"]:
            size *= d
        total += size
    return total

lines = ["| setting | arch | parameters | held-out success (last model) | vs rollout MCTS | last policy / value loss | self-play moves per episode, first -> last iteration | s / iteration | net rows/s in play |",
         "|---|---|---|---|---|---|---|---|---|"]
for setting in settings:
    for run in sorted(glob.glob(f"{out}/{setting}/*/done.json")):
        run = os.path.dirname(run)
        arch = os.path.basename(run)
        ev = f"read_parquet('{run}/evals/**/*.parquet', hive_partitioning=true)"
        last = duckdb.sql(f"select max(iteration) from {ev}").fetchall()[0][0]
        succ = duckdb.sql(f"""select family, sum(wins)::double / sum(games), sum(games) from {ev}
            where iteration = {last} and bucket = 'all' and agent = 'candidate' and opponent = 'none'
            group by family order by family""").fetchall()
        vs = duckdb.sql(f"""select family, (sum(wins) + 0.5 * sum(draws))::double / sum(games), sum(games) from {ev}
            where iteration = {last} and bucket = 'all' and agent = 'candidate' and opponent = 'mcts_rollout'
            group by family order by family""").fetchall()
        mt = f"read_parquet('{run}/metrics/**/*.parquet', hive_partitioning=true)"
        rows = duckdb.sql(f"select avg(detail.evals_per_s) from {mt} where stage = 'play'").fetchall()[0][0]
        iters = duckdb.sql(f"select count(distinct iteration) from {mt} where stage = 'play'").fetchall()[0][0]
        pl, vl = duckdb.sql(f"""select detail.policy_loss, detail.value_loss from {mt}
            where stage = 'train' order by iteration desc limit 1""").fetchall()[0]
        ep = f"read_parquet('{run}/episodes/**/*.parquet', hive_partitioning=true)"
        lengths = duckdb.sql(f"""select avg(length) from {ep} group by iteration order by iteration""").fetchall()
        secs = json.load(open(f"{run}/done.json"))["seconds"]
        fmt = lambda xs: ", ".join(f"{f} {100 * r:.1f}% (n={n})" for f, r, n in xs) or "-"
        lines.append(f"| {setting} | {arch} | {params(run):,} | {fmt(succ)} | {fmt(vs)} | {pl:.3f} / {vl:.3f} | "
                     f"{lengths[0][0]:.1f} -> {lengths[-1][0]:.1f} | "
                     f"{secs / max(iters, 1):.1f} | {rows:,.0f} |")
table = "\n".join(lines)
print(table)
open(f"{out}/compare.md", "w").write(table + "\n")
PY
