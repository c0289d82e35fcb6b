#!/usr/bin/env bash
# Time to accuracy (issue 18): the 10-epoch ResNet-20 recipe of
# bench/resnet20_onecycle.yaml, trained by PyTorch (bench/resnet20_onecycle.py)
# and by cnncost (`cnncost train ... --config bench/resnet20_onecycle.yaml`), one
# after the other in this script, each on 2 threads under the same glibc malloc
# settings. Prints each run's test accuracy, wall time (from the start of the
# process to its last evaluation; data decoding included on both sides) and
# peak resident memory, then the ratio of the wall times.
#
#   bench/time_to_accuracy.sh [PYTHON_WITH_TORCH] [--epochs N]
#
# About 40 minutes on two cores. PYTHON_WITH_TORCH as in bench/vs_pytorch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${TORCH_PYTHON:-../torchenv/bin/python}"
if [[ $# -gt 0 && "$1" != --* ]]; then py="$1"; shift; fi
epochs=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    *) echo "unknown argument $1 (expected --epochs N)" >&2; exit 2 ;;
  esac
done
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
cargo build -q --release
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads"

# Peak resident memory in MB from GNU time's -f %M (kilobytes).
peak_mb() { awk '{printf "%.0f", $1 / 1024}' "$1"; }

echo "== PyTorch =="
/usr/bin/time -f %M -o "$runs/torch.rss" \
  "$py" bench/resnet20_onecycle.py --threads 2 --epochs "$epochs" | tee "$runs/torch.log"
torch_s=$(tail -1 "$runs/torch.log" | sed 's/.*"wall_seconds": \([0-9.]*\).*/\1/')
torch_acc=$(tail -1 "$runs/torch.log" | sed 's/.*"test_accuracy": \([0-9.]*\).*/\1/')

echo "== cnncost =="
start=$(date +%s.%N)
/usr/bin/time -f %M -o "$runs/ours.rss" \
  target/release/cnncost train zoo/resnet20.net --data folder:../shared/data/cifar10-jpeg \
  --config bench/resnet20_onecycle.yaml --epochs "$epochs" --out "$runs/ours" --quiet
ours_s=$(echo "$(date +%s.%N) - $start" | bc)
ours_acc=$(tail -1 "$runs/ours/metrics.jsonl" | sed 's/.*"test_acc": *\([0-9.]*\).*/\1/')

printf '\n| run | test accuracy %% | wall s | peak RSS MB |\n|---|---:|---:|---:|\n'
printf '| PyTorch %s | %s | %s | %s |\n' "$("$py" -c 'import torch; print(torch.__version__)')" \
  "$torch_acc" "$torch_s" "$(peak_mb "$runs/torch.rss")"
printf '| cnncost | %s | %.1f | %s |\n' "$ours_acc" "$ours_s" "$(peak_mb "$runs/ours.rss")"
printf 'cnncost / PyTorch wall time: %.2fx (the goal: 0.6x or less at 83%% or more)\n' \
  "$(echo "$ours_s / $torch_s" | bc -l)"
