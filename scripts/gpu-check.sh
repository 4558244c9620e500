#!/usr/bin/env bash
# The GPU path, measured (issue 14): on a machine with an NVIDIA GPU, the
# reference search bench with the network on ONNX Runtime's CUDA provider
# and on the CPU, then the default config's first play, train and eval stages on
# the GPU and on the CPU, each figure under the device's name. Build on any
# x86_64 host, run where the GPU is (no cargo needed there):
#
#   scripts/gpu-check.sh --build   # setup.sh --cuda, then the binaries into target/gpu-check/
#   scripts/gpu-check.sh           # on the GPU machine, with target/gpu-check/ carried
#   scripts/gpu-check.sh --stages --config pipelines/connect4.toml --set games_per_iteration=500
#                                  # the stages alone, of any config, on cuda then cpu
#   scripts/gpu-check.sh --profile --config pipelines/connect4.toml --set games_per_iteration=200
#                                  # cuda play under each cuDNN search, profiled
#
# A GPU machine with no network and a cap on what one transfer carries (the
# CUDA provider alone is 284 MB): `--pack [SIZE]` builds, then writes the
# binaries and ONNX Runtime's GPU build, xz-compressed (about 200 MB), as
# target/gpu-check/pack/part.NN of at most SIZE (default 48M) with their
# SHA256SUMS; carry the parts in as many transfers as needed, then
# `--unpack DIR` there checks and unpacks them into target/gpu-check/.
#
# It needs, first found: ONNX Runtime's GPU build (ORT_DYLIB_PATH,
# target/gpu-check/ort from --unpack, .venv/ort-gpu from `setup.sh --cuda`,
# or the system Python's onnxruntime-gpu) and libtorch with CUDA (.venv's
# torch, or the system Python's). A missing one is one line naming it and exit 2; the stages
# themselves refuse a missing provider, so the CPU is never measured in
# the GPU's place.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USER_ORT="${ORT_DYLIB_PATH:-}"
source "$ROOT/scripts/env.sh"
BIN="$ROOT/target/gpu-check"
die() {
  echo "gpu-check: $*" >&2
  exit 2
}

build() {
  "$ROOT/scripts/setup.sh" --cuda
  source "$ROOT/scripts/env.sh"  # again: now with the CUDA stamp
  cd "$ROOT"
  local bench
  bench=$(cargo bench --bench reference --no-run 2>&1 | grep -o 'target/release/deps/reference-[0-9a-f]*' | tail -n 1)
  [ -x "$bench" ] || die "cargo bench --no-run gave no reference bench binary"
  mkdir -p "$BIN"
  cp target/release/selfplay "$BIN/selfplay"
  cp "$bench" "$BIN/reference"
  echo "gpu-check: built $BIN/selfplay and $BIN/reference; run scripts/gpu-check.sh where the GPU is"
}

ORT_FILES=(libonnxruntime.so.1.31.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)

pack() {
  build
  local dir="$BIN/pack"
  rm -rf "$dir" && mkdir -p "$dir"
  # ONNX Runtime's files go in as ort/..., where find_ort looks after --unpack.
  # xz -2: two minutes on 2 cores for 200 MB; -9 saves 10 MB (one part
  # fewer of five) and took over 15 minutes beside a run.
  tar -cf - -C "$BIN" selfplay reference -C "$(dirname "$ORT_GPU_LIB")" \
    --transform 's,^libonnxruntime,ort/libonnxruntime,' "${ORT_FILES[@]}" |
    xz -T0 -2 | split -b "${1:-48M}" -d - "$dir/part."
  (cd "$dir" && sha256sum part.* >SHA256SUMS)
  echo "gpu-check: $(ls "$dir" | grep -c '^part') parts in $dir; carry them, then scripts/gpu-check.sh --unpack DIR"
}

unpack() {
  [ -f "$1/SHA256SUMS" ] || die "expected $1/SHA256SUMS and its part.NN from scripts/gpu-check.sh --pack"
  (cd "$1" && sha256sum --check --quiet SHA256SUMS) || die "$1: a part does not match SHA256SUMS"
  mkdir -p "$BIN"
  cat "$1"/part.* | xz -dc | tar -xf - -C "$BIN"
  echo "gpu-check: unpacked into $BIN; run scripts/gpu-check.sh"
}

# The folder of a Python package: .venv's first, then the system Python's.
package_dir() {
  if [ -n "$SITE" ] && [ -d "$SITE/$1" ]; then
    echo "$SITE/$1"
  else
    python3 -c "import os, $1; print(os.path.dirname($1.__file__))" 2>/dev/null || true
  fi
}

# ONNX Runtime's library with the CUDA provider beside it.
find_ort() {
  local c
  for c in "$USER_ORT" "$BIN/ort/${ORT_FILES[0]}" "$ORT_GPU_LIB" \
    "$(package_dir onnxruntime)"/capi/libonnxruntime.so.*; do
    if [ -f "$c" ] && [ -f "$(dirname "$c")/libonnxruntime_providers_cuda.so" ]; then
      echo "$c"
      return
    fi
  done
}

libraries() {
  local ort torch
  ort=$(find_ort)
  [ -n "$ort" ] || die "no ONNX Runtime GPU build (libonnxruntime_providers_cuda.so): run scripts/setup.sh --cuda, or install onnxruntime-gpu"
  torch=$(package_dir torch)
  [ -f "$torch/lib/libtorch_cuda.so" ] || die "no libtorch with CUDA (libtorch_cuda.so) in .venv or the system Python: run scripts/setup.sh --cuda"
  export ORT_DYLIB_PATH="$ort"
  LD_LIBRARY_PATH="$torch/lib:$LD_LIBRARY_PATH"
  add_cuda_wheel_libs "$(dirname "$torch")"
  echo "gpu-check: ONNX Runtime $ort; libtorch $torch/lib"
}

# The first play, train and eval stages on `device`, timed; the other
# arguments go to selfplay before the command (a config, `--set`s).
stages() {
  local device=$1 out
  shift
  out=$(mktemp -d)
  local s=("$BIN/selfplay" "$@" --out "$out" --set "infer.device=$device" --set "train.device=$device")
  "${s[@]}" init >/dev/null 2>&1
  "${s[@]}" tasks --iteration 1 >/dev/null 2>&1
  echo "== play, iteration 1, network on $device ($GPU)"
  "${s[@]}" play --iteration 1 2>&1 | grep -E "episodes in"
  echo "== train, iteration 1, on $device ($GPU)"
  "${s[@]}" train --iteration 1 2>&1 | grep -E "steps in"
  echo "== eval, iteration 1, network on $device ($GPU)"
  "${s[@]}" eval --iteration 1 2>&1 | grep -E "games in"
  rm -rf "$out"
}

# The first play stage on CUDA under each of cuDNN's convolution algorithm
# choices, each with ONNX Runtime's profile summarised (scripts/ort-profile.py:
# which provider ran each node, Conv's time per call and batch size); the
# arguments go to selfplay as for `stages`.
profile() {
  local search out prof
  for search in heuristic default exhaustive; do
    out=$(mktemp -d)
    prof=$(mktemp -d)
    local s=("$BIN/selfplay" "$@" --out "$out" --set "infer.device=cuda")
    "${s[@]}" init >/dev/null 2>&1
    "${s[@]}" tasks --iteration 1 >/dev/null 2>&1
    echo "== play, iteration 1, network on cuda, cuDNN search $search ($GPU)"
    SELFPLAY_CUDNN_CONV_SEARCH=$search SELFPLAY_ORT_PROFILE="$prof/p" timeout 300 \
      "${s[@]}" play --iteration 1 2>&1 | grep -E "episodes in" || echo "(no play result within 300 s)"
    python3 "$ROOT/scripts/ort-profile.py" "$prof"/p_*.json || true
    rm -rf "$out" "$prof"
  done
}

# The GPU, the carried binaries and the libraries, or one line and exit 2.
preflight() {
  command -v nvidia-smi >/dev/null || die "no nvidia-smi: this machine has no NVIDIA driver"
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  [ -n "$GPU" ] || die "nvidia-smi lists no GPU"
  [ -x "$BIN/selfplay" ] && [ -x "$BIN/reference" ] ||
    die "expected $BIN/selfplay and $BIN/reference: run scripts/gpu-check.sh --build first"
  libraries
}

check() {
  preflight
  echo "== reference bench, network on cuda ($GPU)"
  REFERENCE_SET="infer.device=cuda" "$BIN/reference"
  echo "== reference bench, network on cpu (same machine, $(nproc) cores)"
  "$BIN/reference"
  stages cuda
  stages cpu
}

case "${1:-}" in
  --build) build ;;
  --pack) pack "${2:-48M}" ;;
  --unpack) unpack "${2:?gpu-check: --unpack needs the folder holding part.NN}" ;;
  --stages)
    shift
    preflight
    stages cuda "$@"
    stages cpu "$@"
    ;;
  --profile)
    shift
    preflight
    profile "$@"
    ;;
  "") check ;;
  *) die "unknown flag '$1'; expected --build, --pack [SIZE], --unpack DIR, --stages [SELFPLAY ARGS], --profile [SELFPLAY ARGS] or nothing" ;;
esac
