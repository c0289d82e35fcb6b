#!/usr/bin/env bash
# Peak resident memory of a training step (issue 18), cnncost's against PyTorch's,
# on the training cases of bench/vs_pytorch.sh (ResNet-20 and ResNet-18-CIFAR at
# batch 128): each framework's own bench, training only (inference at batch 1),
# three timed steps after its warm-up ones, under GNU time (-f %M: the process's
# peak RSS). PyTorch's figure includes what importing torch maps (printed apart,
# measured as a process that only imports torch).
#
#   bench/peak_memory.sh [PYTHON_WITH_TORCH]
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-${TORCH_PYTHON:-../torchenv/bin/python}}"
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
cargo bench -q --bench train_speed --no-run
rss=$(mktemp)
trap 'rm -f "$rss"' EXIT
# Peak RSS in MB of the command given.
peak() { /usr/bin/time -f %M -o "$rss" "$@" > /dev/null; awk '{printf "%.0f", $1 / 1024}' "$rss"; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads"
import_mb=$(peak "$py" -c "import torch, torchvision")
printf '| case | cnncost MB | PyTorch NCHW MB | PyTorch channels-last MB | cnncost / best PyTorch |\n|---|---:|---:|---:|---:|\n'
for case in resnet20 resnet18_cifar; do
  ours=$(peak cargo bench -q --bench train_speed -- --cases "$case" --iters 3 --infer-batch 1)
  nchw=$(peak "$py" ../shared/bench/torch_baseline.py --cases "$case" --iters 3 --infer-batch 1)
  cl=$(peak "$py" ../shared/bench/torch_baseline.py --cases "$case" --iters 3 --infer-batch 1 --channels-last)
  best=$(( nchw < cl ? nchw : cl ))
  printf '| %s | %s | %s | %s | %.2fx |\n' "$case" "$ours" "$nchw" "$cl" "$(echo "$ours / $best" | bc -l)"
done
echo "(importing torch and torchvision alone: $import_mb MB)"
