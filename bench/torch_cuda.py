#!/usr/bin/env python3
"""PyTorch eager on a CUDA GPU: the peer of scripts/gpu-check.sh's speed table.

Cases (issue 19), synthetic data, SGD momentum 0.9 and weight decay 5e-4 as the
CPU benches: ResNet-20 and ResNet-18-CIFAR training at batch 128 (the models of
../shared/bench/torch_baseline.py, read from that file), ResNet-50 (torchvision)
at 224 with batch 64, training and inference. Prints one JSON line per case and
mode in the format of benches/train_speed.rs: images/s, the median of timed
batches, each ended by torch.cuda.synchronize().

    python3 bench/torch_cuda.py [--baseline PATH/torch_baseline.py] [--iters 20]
        [--cases resnet20,resnet18_cifar,resnet50] [--channels-last]
"""
import argparse, ast, json, os, statistics, time

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--baseline", default=os.path.join(HERE, "..", "..", "shared", "bench", "torch_baseline.py"))
ap.add_argument("--cases", default="resnet20,resnet18_cifar,resnet50")
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--channels-last", action="store_true")
ap.add_argument("--device", default="cuda", help="cpu: a dry run of scripts/gpu-check.sh")
args = ap.parse_args()

import torch, torch.nn as nn, torch.nn.functional as F, torchvision  # noqa: E402

torch.manual_seed(0)
dev = torch.device(args.device)
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)


def cifar_model(name):
    """torch_baseline.py's ResNet-20 or ResNet-18-CIFAR, without running its benchmark."""
    tree = ast.parse(open(args.baseline).read())
    wanted = {"ShortcutA", "BasicA", "resnet_cifar", "resnet18_cifar"}
    body = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in wanted]
    scope = {"nn": nn, "F": F, "torchvision": torchvision, "torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), args.baseline, "exec"), scope)
    return scope["resnet_cifar"]() if name == "resnet20" else scope["resnet18_cifar"]()


def timed(fn, warm, iters):
    for _ in range(warm):
        fn()
    sync()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


CASES = {  # side, train batch, infer batch (None: not timed)
    "resnet20": (32, 128, None),
    "resnet18_cifar": (32, 128, None),
    "resnet50": (224, 64, 64),
}
fmt = torch.channels_last if args.channels_last else torch.contiguous_format
name = "pytorch cuda" + (" channels-last" if args.channels_last else "")
for case in args.cases.split(","):
    side, train_batch, infer_batch = CASES[case]
    model = cifar_model(case) if case != "resnet50" else torchvision.models.resnet50(num_classes=1000)
    model = model.to(dev).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    classes = 1000 if case == "resnet50" else 10
    x = torch.randn(train_batch, 3, side, side, device=dev).to(memory_format=fmt)
    y = torch.randint(0, classes, (train_batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    s = timed(step, 5, args.iters)
    print(json.dumps({"framework": name, "case": case, "mode": "train", "batch": train_batch,
                      "images_per_s": round(train_batch / s, 2)}), flush=True)
    if infer_batch:
        model.eval()
        xi = torch.randn(infer_batch, 3, side, side, device=dev).to(memory_format=fmt)
        with torch.no_grad():
            s = timed(lambda: model(xi), 5, args.iters)
        print(json.dumps({"framework": name, "case": case, "mode": "infer", "batch": infer_batch,
                          "images_per_s": round(infer_batch / s, 2)}), flush=True)
