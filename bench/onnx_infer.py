#!/usr/bin/env python3
"""ONNX Runtime CPU inference for cnncost's benchmark (issue 18): the same
models as the PyTorch baselines, exported from PyTorch and run by ONNX
Runtime with 2 intra-op threads, in torch_baseline.py's JSON format and
timing (median over timed batches after untimed warm-up ones).

    python3 bench/onnx_infer.py [--threads 2] [--cases resnet20,resnet18_cifar,alexnet,vgg16] [--iters 8]

ResNet-20 and ResNet-18-CIFAR are ../shared/bench/torch_baseline.py's own
definitions (read from that file, not copied); AlexNet and VGG-16 are
torchvision's at 224. Batches as the other baselines: 256 for the CIFAR
networks, 16 for AlexNet, 8 for VGG-16. Needs torch, torchvision, onnx,
onnxscript and onnxruntime (pip); bench/vs_pytorch.sh runs it.
"""
import argparse, ast, json, os, statistics, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--cases", default="resnet20,resnet18_cifar,alexnet,vgg16")
ap.add_argument("--iters", type=int, default=8)
args = ap.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch, torch.nn as nn, torch.nn.functional as F, torchvision  # noqa: E402

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "..", "..", "shared", "bench", "torch_baseline.py")


def cifar_models():
    """torch_baseline.py's model definitions, without running its benchmark."""
    tree = ast.parse(open(BASELINE).read())
    wanted = {"ShortcutA", "BasicA", "resnet_cifar", "resnet18_cifar"}
    body = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in wanted]
    scope = {"nn": nn, "F": F, "torchvision": torchvision, "torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), BASELINE, "exec"), scope)
    return {"resnet20": scope["resnet_cifar"], "resnet18_cifar": scope["resnet18_cifar"]}


def timed(f, warm, iters):
    for _ in range(warm):
        f()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


CASES = {"resnet20": (256, 32), "resnet18_cifar": (256, 32), "alexnet": (16, 224), "vgg16": (8, 224)}
cifar = cifar_models()
for case in args.cases.split(","):
    batch, size = CASES[case]
    model = (cifar[case]() if case in cifar else getattr(torchvision.models, case)(weights=None)).eval()
    x = torch.randn(batch, 3, size, size)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{case}.onnx")
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    s = timed(lambda: sess.run(None, {"x": xn}), 2, max(3, args.iters // 2))
    print(json.dumps({"framework": f"onnxruntime {ort.__version__}", "case": case, "mode": "infer",
                      "batch": batch, "images_per_s": batch / s}), flush=True)
