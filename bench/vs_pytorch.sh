#!/usr/bin/env bash
# cnncost's training and inference speed beside PyTorch's, in one run on the
# same machine state, as ratios (issue: a training benchmark): ResNet-20 and
# ResNet-18-CIFAR (train at batch 128, infer at 256; ../shared/bench/torch_baseline.py),
# AlexNet and VGG-16 at 224 (infer at batch 16 and 8; bench/torch_imagenet_infer.py).
#
#   bench/vs_pytorch.sh [PYTHON_WITH_TORCH] [--iters N]
#
# PYTHON_WITH_TORCH defaults to $TORCH_PYTHON, else ../torchenv/bin/python
# (install: python3 -m venv torchenv && torchenv/bin/pip install torch torchvision,
# in a folder outside the project; ../shared/bench/README.md). Both run under
# the same glibc malloc settings (no mmap per large buffer), which
# ../shared/bench/README.md prescribes for PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-${TORCH_PYTHON:-../torchenv/bin/python}}"
shift || true
iters=8
if [[ "${1:-}" == "--iters" ]]; then iters="$2"; fi
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
out=$(mktemp)
cargo bench -q --bench train_speed -- --iters "$iters" | tee -a "$out"
"$py" ../shared/bench/torch_baseline.py --iters "$iters" | tee -a "$out"
"$py" bench/torch_imagenet_infer.py --iters "$iters" | tee -a "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours = {(r["case"], r["mode"]): r for r in rows if r["framework"] == "cnncost"}
theirs = {(r["case"], r["mode"]): r for r in rows if r["framework"].startswith("pytorch")}
print()
print("| case | mode | batch | cnncost img/s | PyTorch img/s | ratio |")
print("|---|---|---|---|---|---|")
for key, r in ours.items():
    t = theirs.get(key)
    tp = f'{t["images_per_s"]:.1f}' if t else "-"
    ratio = f'{r["images_per_s"] / t["images_per_s"]:.2f}x' if t else "-"
    print(f'| {key[0]} | {key[1]} | {r["batch"]} | {r["images_per_s"]:.1f} | {tp} | {ratio} |')
PY
rm -f "$out"
