#!/usr/bin/env bash
# The GPU checks of issue 19, as one script for a lent GPU machine (the
# `device` tool: no Rust toolchain, no network). Prepare here with
# scripts/gpu-bundle.sh, carry .gpu, and run this from the checkout's root:
#
#   1. parity: PyTorch's fixtures (outputs, gradients, BN statistics, optimizer
#      steps) on the GPU, at the CPU tolerances (tests/parity.rs);
#   2. training: resnet20 on the CIFAR-10 binary batches for 2 epochs, top-1
#      reported; its checkpoint evaluated on the GPU and on the CPU (the same
#      top-1 within 0.1 point);
#   3. speed: benches/train_speed.rs against PyTorch eager CUDA
#      (bench/torch_cuda.py) in this script: ResNet-20 and ResNet-18-CIFAR
#      training at batch 128, ResNet-50 at 224, batch 64, training and inference.
#
# Everything goes to $OUT/gpu-check.log (or ./gpu-check.log), and a summary
# (one JSON line per check) to $OUT/gpu-check.jsonl. A failed step is reported
# and the next one runs.
#
# A dry run of the script itself on a machine without a GPU:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_CASES=resnet20 GPU_CHECK_EPOCHS=1 scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
log=$out/gpu-check.log
summary=$out/gpu-check.jsonl
: > "$summary"
exec > >(tee "$log") 2>&1
work=${GPU_CHECK_DIR:-/tmp/cnncost-gpu}
dev=${GPU_CHECK_DEVICE:-cuda}
cases=${GPU_CHECK_CASES:-resnet20,resnet18_cifar,resnet50}
epochs=${GPU_CHECK_EPOCHS:-2}
rm -rf "$work" && mkdir -p "$work"
xz -dc .gpu/bundle.tar.xz | tar -C "$work" -xf - || { echo "no .gpu/bundle.tar.xz: run scripts/gpu-bundle.sh first and carry .gpu"; exit 2; }
bin=$work/bin
export CNNCOST_ROOT=$PWD CNNCOST_SHARED=$work/shared
# cudarc opens the CUDA libraries at run time: those of the machine's PyTorch.
nv=$(python3 - <<'PY'
import os
try:
    import nvidia
    dirs = sorted({r for p in nvidia.__path__ for r, _, fs in os.walk(p) if any(".so" in f for f in fs)})
    print(":".join(dirs))
except Exception:
    pass
PY
)
export LD_LIBRARY_PATH=${nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}:$work/lib
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" || true
record() { echo "{\"check\": \"$1\", \"ok\": $2, \"seconds\": $3${4:+, $4}}" | tee -a "$summary"; }

echo "== 1. parity on the GPU"
t=$SECONDS
CNNCOST_TEST_DEVICE=$dev "$bin/parity" --test-threads 1
rc=$?
record parity "$([ $rc = 0 ] && echo true || echo false)" $((SECONDS - t))

echo "== 2. resnet20, $epochs epochs of CIFAR-10 on $dev"
t=$SECONDS
data=cifar10:$work/shared/data/cifar10-bin
run=$work/run
"$bin/cnncost" train zoo/resnet20.net --data "$data" --epochs "$epochs" --batch-size 128 \
    --device "$dev" --out "$run" --quiet
rc=$?
train_s=$((SECONDS - t))
top1() { "$bin/cnncost" eval zoo/resnet20.net --weights "$run" --data "$data" --format json --device "$1" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])"; }
gpu=$(top1 "$dev"); cpu=$(top1 cpu)
echo "top-1 of the GPU-trained checkpoint: evaluated on the GPU $gpu%, on the CPU $cpu%"
ok=$(python3 -c "print('true' if $rc == 0 and abs(float('${gpu:-nan}') - float('${cpu:-nan}')) <= 0.1 and float('${gpu:-0}') > 20 else 'false')" 2>/dev/null || echo false)
record train "$ok" $train_s "\"top1_gpu\": ${gpu:-null}, \"top1_cpu\": ${cpu:-null}"

echo "== 3. speed against PyTorch eager CUDA"
t=$SECONDS
speed=$work/speed.jsonl
: > "$speed"
for round in 1 2; do
  "$bin/train_speed" --device "$dev" --cases "$cases" --iters 20 \
    | sed "s/^{/{\"round\": $round, /" | tee -a "$speed"
  "$bin/train_speed-cudnn" --device "$dev" --cases "$cases" --iters 20 \
    | sed "s/^{\"framework\": \"cnncost\"/{\"round\": $round, \"framework\": \"cnncost cudnn\"/" | tee -a "$speed"
  python3 bench/torch_cuda.py --device "$dev" --cases "$cases" --baseline "$work/shared/bench/torch_baseline.py" --iters 20 \
    | sed "s/^{/{\"round\": $round, /" | tee -a "$speed"
done
python3 - "$speed" <<'PY' | tee -a "$summary"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}  # (case, mode, batch) -> framework -> round -> images/s
for r in rows:
    by.setdefault((r["case"], r["mode"], r["batch"]), {}).setdefault(r["framework"], {})[r["round"]] = r["images_per_s"]
print("| case | mode | batch | build | cnncost img/s | PyTorch CUDA img/s | ratio per round | median |", file=sys.stderr)
print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
for k in sorted(by):
    peer = by[k].get("pytorch cuda")
    if not peer:
        continue
    for build in ("cnncost", "cnncost cudnn"):
        ours = by[k].get(build)
        if not ours:
            continue
        ratios = [ours[r] / peer[r] for r in sorted(peer) if r in ours]
        print(f"| {k[0]} | {k[1]} | {k[2]} | {build} | {statistics.median(ours.values()):.0f} | "
              f"{statistics.median(peer.values()):.0f} | {', '.join(f'{x:.2f}' for x in ratios)} | "
              f"{statistics.median(ratios):.2f}x |", file=sys.stderr)
        print(json.dumps({"check": "speed", "case": k[0], "mode": k[1], "batch": k[2], "build": build,
                          "ratio": round(statistics.median(ratios), 3)}))
PY
echo "speed: $((SECONDS - t)) s"
echo "== summary"
cat "$summary"
