# Sourced by scripts/*: where the project-local venv keeps libtorch and ONNX Runtime.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SITE="$VENV/lib/python3.11/site-packages"
export LIBTORCH="$SITE/torch"
export LIBTORCH_BYPASS_VERSION_CHECK=0
export ORT_DYLIB_PATH="$SITE/onnxruntime/capi/libonnxruntime.so.1.31.1"
export LD_LIBRARY_PATH="$SITE/torch/lib:$SITE/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
