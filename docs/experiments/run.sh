#!/usr/bin/env bash
# Reproduces docs/experiments.md: four 4-epoch cifar_small runs (one per
# augmentation row, EMA evaluated in each), the 3-model ensemble, flip and
# multiscale TTA, and the five-class transfer experiment. About 75 minutes on
# 2 cores. Writes under runs/experiments (or $1).
#
#   docs/experiments/run.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/experiments}"
cargo build --release -q
bin=target/release/cnncost
data=folder:../shared/data/cifar10-jpeg
net=zoo/cifar_small.net
mkdir -p "$out"
timed() { # name, command...: logs to OUT/name.log, wall time to OUT/times.txt
    local name=$1 start
    shift
    start=$(date +%s)
    "$@" >"$out/$name.log" 2>&1
    echo "$name $(($(date +%s) - start)) s" | tee -a "$out/times.txt"
}
for row in baseline flip_crop cutout mixup; do
    timed "$row" $bin train $net --data $data --config docs/experiments/$row.yaml --out "$out/$row"
done
timed ensemble $bin ensemble $net --data $data \
    --weights "$out"/{flip_crop,cutout,mixup}/checkpoint.safetensors
for row in baseline flip_crop cutout mixup; do
    timed "tta_flip_$row" $bin eval $net --data $data --weights "$out/$row/checkpoint.safetensors" --tta flip
done
timed tta_multiscale_flip_crop $bin eval $net --data $data \
    --weights "$out/flip_crop/checkpoint.safetensors" --tta multiscale
# Transfer: source task = the first five classes, target = the other five with
# 10% of their training images.
timed source $bin train $net --data "$data?classes=airplane,automobile,bird,cat,deer" \
    --config docs/experiments/flip_crop.yaml --out "$out/source"
target="$data?classes=dog,frog,horse,ship,truck&train=0.1"
cfg=docs/experiments/transfer_target.yaml
src="$out/source/checkpoint.safetensors"
timed scratch $bin train $net --data "$target" --config $cfg --out "$out/scratch"
timed finetune $bin train $net --data "$target" --config $cfg --init "$src" --replace-head \
    --backbone-lr-scale 0.1 --out "$out/finetune"
timed probe $bin train $net --data "$target" --config $cfg --init "$src" --replace-head \
    --freeze stage1,stage2,stage3 --out "$out/probe"
