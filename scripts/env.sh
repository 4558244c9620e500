# Sourced by scripts/*: where the project-local venv keeps libtorch and ONNX Runtime.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# `|| true`: with no .venv (a GPU machine that only runs gpu-check.sh) a
# failing `ls` must not end a caller under `set -euo pipefail`.
SITE="$(ls -d "$VENV"/lib/python3*/site-packages 2>/dev/null | head -n 1 || true)"
export LIBTORCH="$SITE/torch"
export ORT_DYLIB_PATH="$SITE/onnxruntime/capi/libonnxruntime.so.1.31.1"
export LD_LIBRARY_PATH="$SITE/torch/lib:$SITE/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# `scripts/setup.sh --cuda` installed torch's CUDA wheels: link libtorch CUDA,
# load ONNX Runtime's GPU build (it also runs on the CPU), and find the CUDA
# libraries its CUDA provider opens (cuBLAS, cuDNN, cuFFT, cuRAND) in them.
ORT_GPU_LIB="$VENV/ort-gpu/onnxruntime/capi/libonnxruntime.so.1.31.1"
# Appends every lib folder of the CUDA wheels under site-packages $1.
add_cuda_wheel_libs() {
  local lib
  for lib in "$1"/nvidia/*/lib; do
    if [ -d "$lib" ]; then LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$lib"; fi
  done
  export LD_LIBRARY_PATH
}
if [ -f "$VENV/.selfplay-cuda" ]; then
  export SELFPLAY_TORCH_CUDA=1
  if [ -f "$ORT_GPU_LIB" ]; then export ORT_DYLIB_PATH="$ORT_GPU_LIB"; fi
  add_cuda_wheel_libs "$SITE"
fi
