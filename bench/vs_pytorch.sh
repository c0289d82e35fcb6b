#!/usr/bin/env bash
# cnncost's training and inference speed beside its peers', as ratios (issues 6
# and 18): ResNet-20 and ResNet-18-CIFAR (train at batch 128, infer at 256;
# ../shared/bench/torch_baseline.py), AlexNet and VGG-16 at 224 (infer at batch 16
# and 8; bench/torch_imagenet_infer.py). The peers: PyTorch eager in NCHW and in
# channels-last, and for inference ONNX Runtime on models exported from PyTorch
# (bench/onnx_infer.py; skipped with a note when onnxruntime is not installed).
# The first table compares with the best peer of each round; the ones after it
# with each peer.
#
#   bench/vs_pytorch.sh [PYTHON_WITH_TORCH] [--iters N] [--rounds R] [--baseline BIN]
#
# --baseline BIN also runs BIN, an earlier build of the train_speed bench
# (copy target/release/deps/train_speed-* aside before a change, or build the
# old commit in a worktree with its own CARGO_TARGET_DIR: one sharing target/
# leaves libraries newer than this tree's sources, which cargo then keeps, and
# the bench reads the zoo from the worktree, so keep it until the run ends), right after
# ours in every round: a refactoring's before and after in one script, with
# the after/before ratio per round beside the ratio to PyTorch.
#
# The machines are noisy (±10% from one minute to the next), so each case runs
# ours and then PyTorch's back to back, R rounds over all cases (default 3); the
# table gives every round's ratio and their median.
#
# PYTHON_WITH_TORCH defaults to $TORCH_PYTHON, else ../torchenv/bin/python
# (install: python3 -m venv torchenv && torchenv/bin/pip install torch torchvision
# onnx onnxscript onnxruntime,
# in a folder outside the project; ../shared/bench/README.md). Both run under
# the same glibc malloc settings (no mmap per large buffer), which
# ../shared/bench/README.md prescribes for PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${TORCH_PYTHON:-../torchenv/bin/python}"
if [[ $# -gt 0 && "$1" != --* ]]; then py="$1"; shift; fi
iters=8
rounds=3
baseline=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iters) iters="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    *) echo "unknown argument $1 (expected --iters N, --rounds R, --baseline BIN)" >&2; exit 2 ;;
  esac
done
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
cargo bench -q --bench train_speed --no-run
out=$(mktemp)
onnx=1
"$py" -c "import onnxruntime, onnx" 2>/dev/null || { onnx=0; echo "note: no onnxruntime in $py: ONNX Runtime left out" >&2; }
cl='s/"framework": "pytorch /"framework": "pytorch channels-last /'
for round in $(seq "$rounds"); do
  for case in resnet20 resnet18_cifar alexnet vgg16; do
    cargo bench -q --bench train_speed -- --cases "$case" --iters "$iters" \
      | sed "s/^{/{\"round\": $round, /" | tee -a "$out"
    if [[ -n "$baseline" ]]; then
      "$baseline" --cases "$case" --iters "$iters" \
        | sed "s/^{\"framework\": \"cnncost\"/{\"round\": $round, \"framework\": \"baseline\"/" | tee -a "$out"
    fi
    if [[ "$case" == resnet* ]]; then torch=../shared/bench/torch_baseline.py; else torch=bench/torch_imagenet_infer.py; fi
    {
      "$py" "$torch" --cases "$case" --iters "$iters"
      "$py" "$torch" --cases "$case" --iters "$iters" --channels-last | sed "$cl"
      if [[ "$onnx" == 1 ]]; then "$py" bench/onnx_infer.py --cases "$case" --iters "$iters" 2>/dev/null; fi
    } | sed "s/^{/{\"round\": $round, /" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours, before, peers = {}, {}, {}
for r in rows:
    if r["framework"] in ("cnncost", "baseline"):
        side = ours if r["framework"] == "cnncost" else before
    else:
        # "pytorch 2.x", "pytorch channels-last 2.x", "onnxruntime 1.x": the peer without its version
        side = peers.setdefault(r["framework"].rsplit(" ", 1)[0], {})
    side.setdefault((r["case"], r["mode"]), {})[r["round"]] = r
# Per case, mode and round: the fastest peer's row, named.
best = {}
for name, side in peers.items():
    for key, by_round in side.items():
        for k, r in by_round.items():
            b = best.setdefault(key, {}).get(k)
            if b is None or r["images_per_s"] > b["images_per_s"]:
                best[key][k] = dict(r, framework=name)
def table(other, other_name, ratio_name):
    """Ours against `other`, round by round: each round's ratio and the medians."""
    print()
    print(f"| case | mode | batch | cnncost img/s | {other_name} img/s | {ratio_name} per round | median ratio |")
    print("|---|---|---|---|---|---|---|")
    for key, by_round in ours.items():
        pairs = [(o, other.get(key, {}).get(k)) for k, o in sorted(by_round.items())]
        pairs = [(o, t) for o, t in pairs if t]
        if not pairs:
            continue
        ratios = [o["images_per_s"] / t["images_per_s"] for o, t in pairs]
        med = statistics.median(ratios)
        o_med = statistics.median(o["images_per_s"] for o, _ in pairs)
        t_med = statistics.median(t["images_per_s"] for _, t in pairs)
        each = ", ".join(f"{x:.2f}" for x in ratios)
        print(f'| {key[0]} | {key[1]} | {pairs[0][0]["batch"]} | {o_med:.1f} | {t_med:.1f} | {each} | {med:.2f}x |')

table(best, "best peer", "ratio")
for key, by_round in best.items():
    print(f"best peer of {key[0]} {key[1]}, per round: " + ", ".join(r["framework"] for _, r in sorted(by_round.items())))
for name, side in peers.items():
    table(side, name, "ratio")
if before:
    table(before, "baseline", "after/before")
PY
rm -f "$out"
