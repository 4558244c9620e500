#!/usr/bin/env bash
# Installs what is missing, idempotently: a project-local venv with the pinned
# wheels that carry libtorch 2.11.0 (for tch 0.24.0) and ONNX Runtime 1.31.1
# (for ort 2.0.0-rc.15, load-dynamic), the DejaVu font `report --plot` draws
# its labels with, then builds the release binary. Everything comes from
# PyPI, crates.io and the Debian archive (the font); nothing else is downloaded.
#
# Flags: --test also installs the independent store readers the tests use,
# the validators of the Kubernetes and Argo manifests (pipelines/k8s/), and
# what --scheduler installs; --scheduler installs Snakemake and its Slurm
# executor plugin into .venv (pipelines/Snakefile; the Slurm daemons come
# from Debian packages through scripts/slurm-up.sh);
# --cuda installs torch with its CUDA 13 wheels (several GB) and builds with
# libtorch CUDA linked, for `--device cuda` training on an NVIDIA GPU, and
# ONNX Runtime's GPU build (onnxruntime-gpu, CUDA 13) into .venv/ort-gpu,
# for `infer.device = "cuda"`; its CUDA libraries are torch's wheels.
set -euo pipefail
TEST=0 CUDA=0 SCHED=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 SCHED=1 ;;
    --scheduler) SCHED=1 ;;
    --cuda) CUDA=1 ;;
    *) echo "setup: unknown flag '$arg'; expected --test, --scheduler or --cuda" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PINS=(torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 onnxruntime==1.31.1)
STAMP=.venv/.selfplay-pins

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "setup: installing ${PINS[*]} into .venv (CPU: no CUDA dependencies)" >&2
  .venv/bin/pip install --quiet --no-deps "${PINS[@]}"
  echo "${PINS[*]}" > "$STAMP"
fi
CUDA_STAMP=.venv/.selfplay-cuda
ORT_GPU=onnxruntime-gpu==1.31.1
if [ "$CUDA" = 1 ] && [ "$(cat "$CUDA_STAMP" 2>/dev/null)" != "${PINS[0]} $ORT_GPU" ]; then
  echo "setup: installing ${PINS[0]} with its CUDA wheels into .venv (for --device cuda)" >&2
  .venv/bin/pip install --quiet "${PINS[0]}"
  # A folder of its own: the GPU build's Python package is also `onnxruntime`.
  echo "setup: installing $ORT_GPU into .venv/ort-gpu (for infer.device = \"cuda\")" >&2
  rm -rf .venv/ort-gpu
  .venv/bin/pip install --quiet --no-deps --target .venv/ort-gpu "$ORT_GPU"
  echo "${PINS[0]} $ORT_GPU" > "$CUDA_STAMP"
fi


# Independent Parquet readers for the tests (the stores must open in them).
TEST_PINS=(pyarrow==26.0.1 duckdb==2.0.1 polars==2.1.0 datasets==5.2.0 onnx==1.23.2)
TEST_STAMP=.venv/.selfplay-test-pins
if [ "$TEST" = 1 ] && [ "$(cat "$TEST_STAMP" 2>/dev/null)" != "${TEST_PINS[*]}" ]; then
  echo "setup: installing ${TEST_PINS[*]} into .venv (test readers)" >&2
  .venv/bin/pip install --quiet "${TEST_PINS[@]}"
  echo "${TEST_PINS[*]}" > "$TEST_STAMP"
fi

# Snakemake and its Slurm executor (pipelines/Snakefile, pipelines/profiles/).
SCHED_PINS=(snakemake==9.27.1 snakemake-executor-plugin-slurm==2.8.0)
SCHED_STAMP=.venv/.selfplay-sched-pins
if [ "$SCHED" = 1 ] && [ "$(cat "$SCHED_STAMP" 2>/dev/null)" != "${SCHED_PINS[*]}" ]; then
  echo "setup: installing ${SCHED_PINS[*]} into .venv (scheduler tests)" >&2
  .venv/bin/python -m pip install --quiet "${SCHED_PINS[@]}"
  echo "${SCHED_PINS[*]}" > "$SCHED_STAMP"
fi

# Offline validators of pipelines/k8s/ (tests/k8s_manifests.py): the
# Kubernetes JSON schemas (strict variants: unknown fields fail) bundled in
# kubernetes-validate, and Argo Workflows' spec as the pydantic models hera
# generates from Argo's OpenAPI schema.
K8S_PINS=(kubernetes-validate==1.37.0 hera==7.1.0 pydantic==2.14.4)
K8S_STAMP=.venv/.selfplay-k8s-pins
if [ "$TEST" = 1 ] && [ "$(cat "$K8S_STAMP" 2>/dev/null)" != "${K8S_PINS[*]}" ]; then
  echo "setup: installing ${K8S_PINS[*]} into .venv (manifest validators)" >&2
  .venv/bin/python -m pip install --quiet "${K8S_PINS[@]}"
  echo "${K8S_PINS[*]}" > "$K8S_STAMP"
fi

# The font of `report --plot`'s labels, read at run time (src/stages/plot.rs).
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ ! -f "$FONT" ]; then
  echo "setup: installing fonts-dejavu-core (for $FONT)" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-dejavu-core
fi

source scripts/env.sh
if [ ! -f "$ORT_DYLIB_PATH" ] || [ ! -d "$LIBTORCH/lib" ]; then
  echo "setup: expected $ORT_DYLIB_PATH and $LIBTORCH/lib after install" >&2
  exit 1
fi
if [ "${SELFPLAY_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet
fi
