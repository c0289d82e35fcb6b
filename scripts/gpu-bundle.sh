#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on a GPU machine that has no Rust
# toolchain and no network (the `device` tool's H200: nvcc 13, driver 580,
# PyTorch with CUDA 13): the CUDA build's binaries, stripped (cnncost, the
# parity tests and the train_speed bench; cnncost and the bench also built with
# cuDNN), ../shared's fixtures, its CIFAR-10
# binary batches (4,000 training and 1,000 test images) and the PyTorch
# baseline's models, as one .gpu/bundle.tar.xz (about 30 MB of the 64 MiB a
# call may carry).
#
#   scripts/gpu-bundle.sh            # here: builds (minutes), then packs
#   then, on the GPU machine, from the checkout's root:
#   scripts/gpu-check.sh             # reads .gpu/bundle.tar.xz, writes $OUT/gpu-check.log
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${CNNCOST_SHARED:-../shared}
eval "$(scripts/cuda-toolkit.sh --env)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
newest() { ls -t "$CARGO_TARGET_DIR"/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/shared/fixtures" "$stage/shared/bench" "$stage/shared/data/cifar10-bin"
# Two builds: `cuda` (candle's own conv kernels) and `cudnn` (its conv forward
# through cuDNN), for the speed table; the parity tests run on the first.
for features in cudnn cuda; do
    suffix=$([ $features = cuda ] || echo "-$features")
    cargo build --release --features $features --bin cnncost
    cargo bench --features $features --bench train_speed --no-run
    cp "$CARGO_TARGET_DIR/release/cnncost" "$stage/bin/cnncost$suffix"
    cp "$(newest train_speed)" "$stage/bin/train_speed$suffix"
done
cargo test --release --features cuda --test parity --no-run
cp "$(newest parity)" "$stage/bin/parity"
strip "$stage"/bin/*
# The system libraries the binaries link (fontconfig and freetype for the plots,
# and theirs), in case the GPU machine's image lacks one: gpu-check.sh puts them
# last on the library path. glibc's own stay behind.
mkdir -p "$stage/lib"
ldd "$stage/bin/cnncost" | awk '/=> \// {print $3}' \
    | grep -Ev '/(libc|libm|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -r cp -L -t "$stage/lib/"
cp "$shared"/fixtures/*.safetensors "$stage/shared/fixtures/"
cp "$shared/bench/torch_baseline.py" "$stage/shared/bench/"
cifar="$shared/data/cifar10-bin"
cp "$cifar"/*.bin "$cifar/batches.meta.txt" "$stage/shared/data/cifar10-bin/"
mkdir -p .gpu
tar -C "$stage" -cf - . | xz -6 -T0 > .gpu/bundle.tar.xz
ls -l .gpu/bundle.tar.xz
echo "carry .gpu (in the device tool's carry), and run scripts/gpu-check.sh there"
