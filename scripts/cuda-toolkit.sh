#!/usr/bin/env bash
# Installs what `cargo build --features cuda` needs on a machine with no GPU and
# no system CUDA: nvcc, its NVVM back end and the CUDA headers, from PyPI
# (NVIDIA's own wheels, CUDA 13.0), into target/cuda-toolkit. Nothing else is
# touched. The CUDA libraries themselves (cuBLAS, cuRAND, NVRTC, cuDNN) are not
# needed to build: the binary opens them when it first uses a GPU, from the
# machine it runs on (docs/training.md, "Training on a GPU").
#
#   scripts/cuda-toolkit.sh            # install (about 100 MB; once)
#   eval "$(scripts/cuda-toolkit.sh --env)"
#   cargo build --release --features cuda
#
# The kernels are compiled for CUDA_COMPUTE_CAP (default 90: H100, H200).
#
# --env prints the exports only (installing first if needed), for eval.
set -euo pipefail
cd "$(dirname "$0")/.."
version=13.0
home=${CNNCOST_CUDA_TOOLKIT:-$PWD/target/cuda-toolkit}
root=$home/nvidia/cu13
python=${PYTHON:-python3}

if [ ! -x "$root/bin/nvcc" ] || [ ! -x "$root/nvvm/bin/cicc" ]; then
    echo "installing nvcc $version and the CUDA headers from PyPI into $home" >&2
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$home" --upgrade \
        "nvidia-cuda-nvcc==$version.*" "nvidia-nvvm==$version.*" \
        "nvidia-cuda-crt==$version.*" "nvidia-cuda-runtime==$version.*" \
        "nvidia-cuda-cccl==$version.*" >&2
    # The wheels keep the toolkit's layout under nvidia/cu13, but their lib
    # folder is lib, where some build scripts look for lib64.
    [ -e "$root/lib64" ] || ln -s lib "$root/lib64"
fi

# With no GPU to ask, the kernels are compiled for CUDA_COMPUTE_CAP: 90 (H100,
# H200) unless set; `nvidia-smi --query-gpu=compute_cap` tells a GPU's (8.6 -> 86).
cap=${CUDA_COMPUTE_CAP:-90}
exports="export CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root NVCC=$root/bin/nvcc CUDA_COMPUTE_CAP=$cap PATH=$root/bin:\$PATH"
if [ "${1:-}" = "--env" ]; then
    echo "$exports"
else
    "$root/bin/nvcc" --version | tail -2 >&2
    echo "done; before cargo build --features cuda run:" >&2
    echo "  eval \"\$(scripts/cuda-toolkit.sh --env)\"" >&2
fi
