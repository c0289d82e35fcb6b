#!/usr/bin/env python3
"""PyTorch's run of bench/resnet20_onecycle.yaml (issue 18's time to accuracy):
ResNet-20 (option A, ../shared/bench/torch_baseline.py's own definition, read
from that file, not copied), 10 epochs on ../shared/data/cifar10-jpeg at batch
128, SGD with Nesterov momentum 0.9 and weight decay 5e-4, OneCycleLR to 0.2
over the first quarter (PyTorch's defaults otherwise: div_factor 25,
final_div_factor 1e4, momentum cycled 0.85-0.95, cosine), random crop with 4
pixels of zero padding and horizontal flips, per-channel normalisation with the
training split's own mean and standard deviation, PyTorch's default
initialisation. These are the settings `cnncost train` reads from the YAML.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \\
        python3 bench/resnet20_onecycle.py [--threads 2] [--epochs 10] [--data DIR]

As a careful PyTorch user writes it for a small dataset, and as cnncost's
folder loader does: the JPEGs are decoded once into memory (inside the timed
wall time) and every epoch's batches are augmented as tensors in the main
process, so no worker processes compete with the two compute threads.
Prints one line per epoch and a JSON line at the end: test accuracy (%) and
wall seconds from start (the imports excluded) to the last evaluation.
bench/time_to_accuracy.sh runs it beside cnncost's run.
"""
import argparse, ast, json, os, time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--seed", type=int, default=0)
HERE = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "cifar10-jpeg"))
ap.add_argument("--steps", type=int, default=0, help="stop each epoch after this many steps (a smoke test; 0: all)")
args = ap.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402
import torch, torch.nn as nn, torch.nn.functional as F, torchvision  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
BASELINE = os.path.join(HERE, "..", "..", "shared", "bench", "torch_baseline.py")


def resnet20():
    """torch_baseline.py's ResNet-20, without running its benchmark."""
    tree = ast.parse(open(BASELINE).read())
    wanted = {"ShortcutA", "BasicA", "resnet_cifar"}
    body = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in wanted]
    scope = {"nn": nn, "F": F, "torchvision": torchvision, "torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), BASELINE, "exec"), scope)
    return scope["resnet_cifar"]()


def load(split):
    """DIR/split/<class>/*.jpg as uint8 (N, 3, 32, 32) and int64 labels, classes sorted."""
    root = os.path.join(args.data, split)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    images, labels = [], []
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            with Image.open(os.path.join(root, c, f)) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


start = time.perf_counter()
train_x, train_y = load("train")
test_x, test_y = load("test")
scaled = train_x.float() / 255
mean = scaled.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
std = scaled.std(dim=(0, 2, 3)).view(1, 3, 1, 1)
del scaled


def normalise(x):
    return (x.float() / 255 - mean) / std


def augment(x):
    """Random 32x32 crops of the zero-padded (4 pixels) batch, then random horizontal flips."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,))
    dx = torch.randint(0, 9, (n,))
    rows = (dy.view(n, 1) + torch.arange(32)).view(n, 1, 32, 1).expand(n, 3, 32, 40)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(32)).view(n, 1, 1, 32).expand(n, 3, 32, 32)
    out = out.gather(3, cols)
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(3)
    return out


model = resnet20()
steps_per_epoch = (len(train_y) + args.batch - 1) // args.batch
if args.steps:
    steps_per_epoch = min(steps_per_epoch, args.steps)
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=args.epochs * steps_per_epoch, pct_start=0.25)
accuracy = 0.0
for epoch in range(1, args.epochs + 1):
    model.train()
    order = torch.randperm(len(train_y))
    seen, correct, loss_sum = 0, 0, 0.0
    for step in range(steps_per_epoch):
        idx = order[step * args.batch:(step + 1) * args.batch]
        x = normalise(augment(train_x[idx]))
        y = train_y[idx]
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(y)
        correct += (out.argmax(1) == y).sum().item()
        loss_sum += loss.item() * len(y)
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(test_y), 256):
            hits += (model(normalise(test_x[i:i + 256])).argmax(1) == test_y[i:i + 256]).sum().item()
    accuracy = 100.0 * hits / len(test_y)
    print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}, train acc {100.0 * correct / seen:.2f}%, "
          f"test acc {accuracy:.2f}%, {time.perf_counter() - start:.1f} s", flush=True)
print(json.dumps({"framework": f"pytorch {torch.__version__}", "case": "resnet20_onecycle", "epochs": args.epochs,
                  "threads": args.threads, "test_accuracy": accuracy,
                  "wall_seconds": round(time.perf_counter() - start, 1)}))
