#!/usr/bin/env python3
"""PyTorch CPU inference baseline for the ImageNet-size cases of cnncost's
benchmark: torchvision's AlexNet at 224x224, batch 16, and VGG-16, batch 8
(random weights, eval mode, no_grad), in torch_baseline.py's JSON format and
timing (median over timed batches after untimed warm-up ones).

    python3 bench/torch_imagenet_infer.py [--threads 2] [--cases alexnet,vgg16] [--iters 8]

bench/vs_pytorch.sh runs it beside cnncost's own benchmark.
"""
import argparse, json, os, statistics, time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--cases", default="alexnet,vgg16")
ap.add_argument("--iters", type=int, default=8)
ap.add_argument("--channels-last", action="store_true")
args = ap.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import torch, torchvision  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)


def timed(f, warm, iters):
    for _ in range(warm):
        f()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


BATCH = {"alexnet": 16, "vgg16": 8}
fmt = torch.channels_last if args.channels_last else torch.contiguous_format
for case in args.cases.split(","):
    model = getattr(torchvision.models, case)(weights=None).eval().to(memory_format=fmt)
    x = torch.randn(BATCH[case], 3, 224, 224).contiguous(memory_format=fmt)
    with torch.no_grad():
        s = timed(lambda: model(x), 2, max(3, args.iters // 2))
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "case": case, "mode": "infer",
                      "batch": BATCH[case], "images_per_s": BATCH[case] / s}), flush=True)
