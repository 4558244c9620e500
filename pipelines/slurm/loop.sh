#!/usr/bin/env bash
# Submits selfplay's loop to Slurm as batch jobs chained with
# --dependency=afterok: init and the held-out sets, eval of model 0, then per
# iteration a job array of tasks shards, a job array of play shards (each
# array task takes its shard from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT),
# train, and eval --promote (the gate). The same stores as
# `selfplay run --num-shards SHARDS` with the same config.
#
#   pipelines/slurm/loop.sh --out DIR [--config FILE] [--iterations N]
#       [--shards N] [--bin PATH] [--name PREFIX] [--wait] [-- SBATCH_ARGS...]
#
# --out, --config, --iterations: as selfplay's (iterations default: the
# config's). --shards: tasks and play array size (default 1). --bin: the
# selfplay binary (default: this checkout's target/release/selfplay); it and
# --out must be on storage every node shares (README "Scaling out").
# --name: job name prefix (default selfplay). --wait: block until the last
# job ends, exit 0 only if every job succeeded. SBATCH_ARGS go to every
# sbatch (e.g. --partition=cpu --mem=4G --time=1:00:00).
#
# Prints one line per job (`<job id> <name>`). A failed job cancels the jobs
# that depend on it (--kill-on-invalid-dep=yes); rerun this script and the
# stages skip every shard already committed. Job logs go to OUT/.slurm/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() {
  echo "usage: pipelines/slurm/loop.sh --out DIR [--config FILE] [--iterations N] [--shards N] [--bin PATH] [--name PREFIX] [--wait] [-- SBATCH_ARGS...]" >&2
}
die() {
  echo "loop.sh: $*" >&2
  exit 2
}
positive() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 '$2': expected a positive integer"
}

OUT="" CONFIG="" ITERATIONS="" SHARDS=1 BIN="$ROOT/target/release/selfplay" NAME=selfplay WAIT=0
SBATCH_ARGS=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out|--config|--iterations|--shards|--bin|--name)
      [ "$#" -ge 2 ] || die "$1: expected a value"
      case "$1" in
        --out) OUT="$2" ;;
        --config) CONFIG="$2" ;;
        --iterations) positive "$1" "$2"; ITERATIONS="$2" ;;
        --shards) positive "$1" "$2"; SHARDS="$2" ;;
        --bin) BIN="$2" ;;
        --name) NAME="$2" ;;
      esac
      shift 2 ;;
    --wait) WAIT=1; shift ;;
    --) shift; SBATCH_ARGS=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument '$1'" ;;
  esac
done
[ -n "$OUT" ] || { usage; die "--out DIR is required"; }
[ -x "$BIN" ] || die "--bin $BIN: not an executable file (cargo build --release, or pass --bin)"
command -v sbatch >/dev/null 2>&1 || die "sbatch not found: run this on a Slurm submit host"
[[ "$NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name '$NAME': expected letters, digits, '_', '.' or '-'"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
SP=("$BIN" --out "$OUT")
if [ -n "$CONFIG" ]; then
  [ -f "$CONFIG" ] || die "--config $CONFIG: no such file"
  SP+=(--config "$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")")
fi
if [ -n "$ITERATIONS" ]; then
  SP+=(--iterations "$ITERATIONS")
fi
# The config is checked here, before anything is submitted.
resolved="$("${SP[@]}" config 2>&1)" || die "selfplay config: $(tail -n 1 <<<"$resolved")"
ITERATIONS="$(sed -n 's/^iterations = \([0-9]*\)$/\1/p' <<<"$resolved")"
[ -n "$ITERATIONS" ] || die "could not read iterations from 'selfplay config'"

LOGS="$OUT/.slurm"
mkdir -p "$LOGS"
# Consumers wait a little for parts another node committed (attribute caches
# of shared file systems); the dependency already says the jobs succeeded.
WAIT_INPUTS=(--wait-inputs 120)

# submit NAME DEPENDENCIES ARRAY_SIZE SELFPLAY_ARGS...: prints the job id.
submit() {
  local name="$1" deps="$2" array="$3"
  shift 3
  local args=(--parsable --job-name "$NAME-$name" --chdir "$OUT")
  if [ "$array" -gt 0 ]; then
    args+=(--array "0-$((array - 1))" --output "$LOGS/%x-%A_%a.out")
  else
    args+=(--output "$LOGS/%x-%j.out")
  fi
  if [ -n "$deps" ]; then
    args+=(--dependency "afterok:$deps" --kill-on-invalid-dep=yes)
  fi
  local cmd
  cmd="exec $(printf '%q ' "${SP[@]}" "$@")"
  local id
  id="$(sbatch "${args[@]}" "${SBATCH_ARGS[@]}" --wrap "$cmd")"
  id="${id%%;*}"
  echo "$id $NAME-$name" >&2
  echo "$id"
}

ALL=()
init="$(submit init "" 0 init)"
heldout="$(submit heldout "" 0 tasks --heldout)"
eval0="$(submit eval-0 "$init:$heldout" 0 "${WAIT_INPUTS[@]}" eval --iteration 0 --incumbent iteration=000000)"
ALL+=("$init" "$heldout" "$eval0")
gate="$init" parent="$init" last=""
for i in $(seq 1 "$ITERATIONS"); do
  tasks="$(submit "tasks-$i" "$heldout" "$SHARDS" tasks --iteration "$i")"
  play="$(submit "play-$i" "$tasks:$gate" "$SHARDS" "${WAIT_INPUTS[@]}" play --iteration "$i")"
  train="$(submit "train-$i" "$play:$parent" 0 "${WAIT_INPUTS[@]}" train --iteration "$i")"
  gate="$(submit "eval-$i" "$train:$gate" 0 "${WAIT_INPUTS[@]}" eval --iteration "$i" --promote)"
  parent="$train"
  ALL+=("$tasks" "$play" "$train" "$gate")
done

if [ "$WAIT" = 0 ]; then
  exit 0
fi
# Block on a last job after every other, which leaves a file behind: a
# failure anywhere cancels it (sbatch --wait says 0 for a job cancelled
# before it started, so the file is the verdict).
ok="$LOGS/$NAME-done.$$.$RANDOM.ok"
sbatch --wait --parsable --job-name "$NAME-done" --chdir "$OUT" --output "$LOGS/%x-%j.out" \
  --dependency "afterok:$(IFS=:; echo "${ALL[*]}")" --kill-on-invalid-dep=yes \
  "${SBATCH_ARGS[@]}" --wrap "touch $(printf '%q' "$ok")" >/dev/null &
waiter=$!
# Stopped while waiting: stop the waiting sbatch too (the jobs stay queued).
trap 'kill "$waiter" 2>/dev/null; exit 143' TERM INT HUP
set +e
wait "$waiter"
status=$?
set -e
trap - TERM INT HUP
if [ "$status" = 0 ] && [ ! -f "$ok" ]; then
  status=1
fi
rm -f "$ok"
if [ "$status" != 0 ]; then
  echo "loop.sh: the loop did not finish; job states:" >&2
  for id in "${ALL[@]}"; do
    scontrol show job "$id" 2>/dev/null | sed -n 's/^ *\(JobId=[0-9]*\).* JobName=\([^ ]*\).*/\1 \2/p;s/^ *\(JobState=[A-Z_]*\).*/  \1/p' >&2 || true
  done
  echo "loop.sh: logs in $LOGS" >&2
  exit 1
fi
echo "loop.sh: every job succeeded; stores under $OUT" >&2
