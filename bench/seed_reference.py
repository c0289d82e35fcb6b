#!/usr/bin/env python3
"""PyTorch reference for the seed study in docs/training.md ("Defaults that
learn"): cnncost's default training recipe for LeNet-5 on MNIST, one epoch,
seeds 0..9, with no warmup and with the default 0.2-epoch warmup, and the
test accuracy of each run. The question it answers is how often the recipe
itself fails (a seed stuck at chance), independently of cnncost's code; the
draws cannot match cnncost's (its RNG is its own ChaCha8), so seed S here is
not seed S there.

Run it by hand, outside the project (CI only reads the committed JSON):

    /work/torchenv/bin/python bench/seed_reference.py --out tests/reference/pytorch_seeds.json

(any Python with torch, torchvision and numpy; `--data DIR` points at the
MNIST IDX files, by default ../shared/data/mnist beside the repository root;
`--seeds 0,1` and `--warmups 0` run a part of the study.)

What each element mirrors in cnncost:

- Architecture: zoo/lenet5.net. conv1 6 k=5 p=2 | relu, maxpool k=2 (s=k,
  docs/language.md), conv2 16 k=5 | relu, maxpool k=2, flatten (C,H,W order),
  fc1 120 | relu, fc2 84 | relu, fc3 10; every conv and linear with a bias
  (`bias=true` default, docs/language.md).
- Initialisation: runtime/src/init.rs `initial_value`, `init=kaiming` (the
  default): weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is
  PyTorch's own nn.Conv2d/nn.Linear reset_parameters; so the modules are
  left at their default init, drawn after torch.manual_seed(seed).
- Data: data/src/idx.rs (all 60,000 training and 10,000 test images, gzipped
  IDX). Normalisation: data/src/stats.rs `Normalization::of`, the population
  mean and std of every training pixel on the [0, 1] scale (pixel/255),
  computed exactly from a histogram in f64 and stored as f32; applied to
  both splits as (pixel/255 - mean)/std in f32 (data/src/augment.rs
  `make_batch_bytes` lookup table), test split with the training statistics
  (runtime/src/train.rs `Trainer::new`, runtime/src/evaluate.rs).
- Augmentation: none (data/src/augment_config.rs: `AugmentConfig` derives
  Default, every step off; `cnncost train` without --config uses
  `TrainConfig::default()`, src/common.rs `config_file`).
- Batches: batch_size 128 (runtime/src/config.rs `TrainConfig::default`),
  the training split reshuffled every epoch (a permutation of all indices),
  the last partial batch kept (96 images: 469 steps per epoch):
  runtime/src/train.rs `run_epoch` calls `data::Loader::new(.., shuffle
  true, drop_last false, ..)` and `per_epoch = num_batches(n, bs, false)`
  (data/src/loader.rs `num_batches`: ceil(n / bs)).
- Loss: runtime/src/loss.rs `cross_entropy`: mean over the batch of
  -log_softmax at the label, label_smoothing 0 (default), no aux heads
  (LeNet-5 has none).
- Optimiser: runtime/src/optim.rs + runtime/src/kernels/update.rs, defaults
  from runtime/src/config.rs: SGD, momentum 0.9, nesterov false, dampening
  none, L2 weight decay 5e-4 added to the gradient of every parameter
  (biases included, one parameter group); the momentum buffer starts as the
  first gradient; p -= lr * buf. That is torch.optim.SGD(lr, momentum=0.9,
  weight_decay=5e-4) exactly.
- Learning rate: runtime/src/schedule.rs `Schedule::lr_at`, evaluated every
  step (0-based step s of total T = 469 * epochs): cosine
  min_lr + (lr - min_lr) * (1 + cos(pi * s / T)) / 2 with lr 0.1 and
  min_lr 0 (config.rs `TrainConfig::lr`, `min_lr`); the warmup multiplies
  it by (s + 1) / W for s < W, W = round(warmup_epochs * steps_per_epoch)
  (0.2 epochs -> W = round(93.8) = 94 steps: the first step runs at
  lr_cos(0)/94, linear from there, no warmup start value other than
  1/W of the rate). warmup_epochs default: config.rs DEFAULT_WARMUP_EPOCHS
  (0.2; 0 for the "warmup 0" recipe, `warmup_epochs: 0`). The rate is set
  in the parameter group before each step.
- Gradient clipping: none (clip_grad_norm null); EMA: none.
- Training loss of the epoch: runtime/src/train.rs `EpochTally`: the mean of
  each batch's loss weighted by its size (so per image), as trained.
- Test accuracy: runtime/src/evaluate.rs `evaluate`: top-1 over all 10,000
  test images in eval mode (no BN or dropout in LeNet-5, so the same
  function), batches of eval_batch_size 256.
- Stuck at chance: runtime/src/train.rs `stuck_at_chance` (the mean loss of
  the epoch's last tenth of steps within 3% of ln 10) is recorded beside
  this study's flag, test accuracy below 20%, and so is what the epoch's
  mean loss would have said (the rule before: it missed runs whose first
  steps blew the loss up).
- Precision: f32 weights and activations (src/common.rs `lower`, DType::F32).

Not mirrored: cnncost's random streams (ChaCha8 from the seed for the
initial weights, the epoch's data order); torch.manual_seed(seed) drives
both here, the initial weights first, then torch.randperm for the order.
The arithmetic is PyTorch's CPU kernels, not cnncost's own, so rounding
differs. cnncost stops a run whose loss, gradients or weights become
non-finite; here such a run is recorded as diverged and its accuracy as
whatever the evaluation gives.
"""
import argparse, datetime, gzip, hashlib, json, math, os, platform, shlex, sys, time

import numpy as np
import torch, torchvision
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# runtime/src/config.rs TrainConfig::default(), TrainConfig::lr(), weight_decay().
EPOCHS = 1
BATCH_SIZE = 128
EVAL_BATCH_SIZE = 256
LR = 0.1
MIN_LR = 0.0
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
DEFAULT_WARMUP_EPOCHS = 0.2  # runtime/src/config.rs DEFAULT_WARMUP_EPOCHS
THREADS = 2

RECIPES = {"warmup 0": 0.0, "warmup 0.2 epochs": DEFAULT_WARMUP_EPOCHS}

# docs/training.md, "Defaults that learn": cnncost's own figures, for comparison.
CNNCOST_DOCS = {
    "warmup 0": [97.93, 11.35, 96.45, 98.37, 97.42, 97.57, 96.93, 97.78, 96.86, 98.24],
    "warmup 0.2 epochs": [97.90, 98.41, 98.18, 94.28, 98.19, 97.67, 98.06, 97.89, 98.22, 94.58],
}


def read_idx(path):
    """An IDX file, gzipped or not (by content, as data/src/idx.rs)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = int.from_bytes(raw[:4], "big")
    if magic == 2051:
        n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        a = np.frombuffer(raw, dtype=np.uint8, offset=16)
        assert a.size == n * rows * cols, f"{path}: truncated"
        return a.reshape(n, 1, rows, cols)
    if magic == 2049:
        n = int.from_bytes(raw[4:8], "big")
        a = np.frombuffer(raw, dtype=np.uint8, offset=8)
        assert a.size == n, f"{path}: truncated"
        return a.astype(np.int64)
    raise ValueError(f"{path}: magic number {magic} is not IDX images (2051) or labels (2049)")


def idx_path(d, name):
    for p in (os.path.join(d, name), os.path.join(d, name + ".gz")):
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{d}: no {name} or {name}.gz")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_mnist(d):
    files = {k: idx_path(d, f"{k}-idx{3 if 'images' in k else 1}-ubyte")
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    data = {k: read_idx(p) for k, p in files.items()}
    assert len(data["train-images"]) == len(data["train-labels"])
    assert len(data["t10k-images"]) == len(data["t10k-labels"])
    return data, {os.path.basename(p): sha256(p) for p in files.values()}


def normalization(train_images):
    """data/src/stats.rs Normalization::of: exact population moments from a
    histogram in f64 on the [0,1] scale, stored as f32."""
    hist = np.bincount(train_images.reshape(-1), minlength=256).astype(np.float64)
    v = np.arange(256, dtype=np.float64)
    n = hist.sum()
    m = float((v * hist).sum()) / n / 255.0
    var = float((((v / 255.0 - m) ** 2) * hist).sum()) / n
    s = math.sqrt(var)
    return np.float32(m), np.float32(s if s > 0 else 1.0)


def normalize(images, mean, std):
    """data/src/augment.rs make_batch_bytes: a per-value lookup table in f32,
    (v as f32 / 255.0 - m) / s."""
    lut = (np.arange(256, dtype=np.float32) / np.float32(255.0) - mean) / std
    return torch.from_numpy(lut[images])


def lenet5():
    # zoo/lenet5.net; PyTorch's default init is cnncost's init=kaiming (runtime/src/init.rs).
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def lr_at(step, per_epoch, total, warmup_epochs):
    """runtime/src/schedule.rs Schedule::lr_at for schedule: cosine."""
    per_epoch, total = max(per_epoch, 1), max(total, 1)
    t = min(step / total, 1.0)
    base = MIN_LR + (LR - MIN_LR) * (1.0 + math.cos(math.pi * t)) / 2.0
    warmup = float(lr_warmup_steps(warmup_epochs, per_epoch))
    if warmup > 0 and step < warmup:
        return base * (step + 1.0) / warmup
    return base


def evaluate(model, x, y):
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for lo in range(0, len(y), EVAL_BATCH_SIZE):
            out = model(x[lo:lo + EVAL_BATCH_SIZE])
            t = y[lo:lo + EVAL_BATCH_SIZE]
            loss_sum += F.cross_entropy(out, t, reduction="sum").item()
            correct += (out.argmax(1) == t).sum().item()
    model.train()
    return 100.0 * correct / len(y), loss_sum / len(y)


def run(seed, warmup_epochs, train_x, train_y, test_x, test_y):
    torch.manual_seed(seed)
    model = lenet5()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY, nesterov=False)
    n = len(train_y)
    per_epoch = -(-n // BATCH_SIZE)  # drop_last false
    total = per_epoch * EPOCHS
    step, started = 0, time.time()
    diverged = None
    for epoch in range(EPOCHS):
        order = torch.randperm(n)
        loss_sum, correct, seen = 0.0, 0, 0
        step_losses = []
        for b in range(per_epoch):
            idx = order[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
            x, y = train_x[idx], train_y[idx]
            lr = lr_at(step, per_epoch, total, warmup_epochs)
            for g in opt.param_groups:
                g["lr"] = lr
            out = model(x)
            loss = F.cross_entropy(out, y)
            lv = loss.item()
            if not math.isfinite(lv) and diverged is None:
                diverged = f"loss {lv} at step {step + 1}"
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += lv * len(y)
            step_losses.append(lv)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            step += 1
    train_loss = loss_sum / seen
    test_acc, test_loss = evaluate(model, test_x, test_y)
    chance = math.log(10)
    tail = step_losses[len(step_losses) - -(-len(step_losses) // 10):]
    tail_loss = sum(tail) / len(tail)
    return {
        "seed": seed,
        "test_acc": round(test_acc, 2),
        "test_loss": round(test_loss, 4),
        "train_loss": round(train_loss, 4),
        "last_tenth_train_loss": round(tail_loss, 4),
        "train_acc": round(100.0 * correct / seen, 2),
        "last_lr": lr,
        "below_20_percent": test_acc < 20.0,
        "stuck_at_chance": 0.97 * chance <= tail_loss <= 1.03 * chance,
        "epoch_mean_at_chance": 0.97 * chance <= train_loss <= 1.03 * chance,
        "diverged": diverged,
        "seconds": round(time.time() - started, 1),
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist")))
    ap.add_argument("--out", default="tests/reference/pytorch_seeds.json")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--warmups", default=",".join(RECIPES), help="recipe names, comma-separated")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    recipes = args.warmups.split(",")
    for r in recipes:
        if r not in RECIPES:
            sys.exit(f"unknown recipe {r!r}: use {', '.join(RECIPES)}")

    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    data, hashes = load_mnist(args.data)
    mean, std = normalization(data["train-images"])
    train_x = normalize(data["train-images"], mean, std)
    test_x = normalize(data["t10k-images"], mean, std)
    train_y = torch.from_numpy(data["train-labels"])
    test_y = torch.from_numpy(data["t10k-labels"])
    per_epoch = -(-len(train_y) // BATCH_SIZE)

    results = {}
    for name in recipes:
        w = RECIPES[name]
        rows = []
        for seed in seeds:
            r = run(seed, w, train_x, train_y, test_x, test_y)
            flag = "  <-- below 20%" if r["below_20_percent"] else ""
            print(f"{name:18s} seed {seed}: test acc {r['test_acc']:6.2f}%  train loss "
                  f"{r['train_loss']:.4f}  ({r['seconds']} s){flag}", file=sys.stderr, flush=True)
            rows.append(r)
        accs = [r["test_acc"] for r in rows]
        results[name] = {
            "warmup_epochs": w,
            "warmup_steps": int(lr_warmup_steps(w, per_epoch)),
            "seeds": rows,
            "failed_seeds": [r["seed"] for r in rows if r["below_20_percent"]],
            "failures": f"{sum(r['below_20_percent'] for r in rows)} of {len(rows)}",
            "mean_test_acc": round(sum(accs) / len(accs), 2),
            "min_test_acc": min(accs),
        }

    doc = {
        "generated_by": "bench/seed_reference.py",
        "command": shlex.join([sys.executable] + sys.argv),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "threads": THREADS,
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "data": {"dir": args.data, "sha256": hashes, "train_images": len(train_y),
                 "test_images": len(test_y), "mean": float(mean), "std": float(std)},
        "recipe": {
            "network": "zoo/lenet5.net: conv 6 k=5 p=2 | relu, maxpool k=2, conv 16 k=5 | relu, "
                       "maxpool k=2, flatten, linear 120 | relu, linear 84 | relu, linear 10",
            "init": "PyTorch default (U(+-1/sqrt(fan_in)) weights and biases) = cnncost init=kaiming "
                    "(runtime/src/init.rs)",
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "steps_per_epoch": per_epoch,
            "drop_last": False,
            "shuffle": "a fresh permutation of the training split every epoch (torch.randperm)",
            "normalization": "(pixel/255 - mean)/std, population mean and std of the training pixels",
            "augmentation": "none",
            "optimizer": {"kind": "sgd", "lr": LR, "momentum": MOMENTUM, "nesterov": False,
                          "dampening": 0, "weight_decay": WEIGHT_DECAY,
                          "weight_decay_on": "every parameter, biases included (L2 added to the gradient)"},
            "schedule": "cosine per step from lr to min_lr 0 over all steps; warmup multiplies step s "
                        "(0-based) by (s+1)/W for s < W, W = round(warmup_epochs * steps_per_epoch)",
            "loss": "mean cross-entropy, label_smoothing 0",
            "eval_batch_size": EVAL_BATCH_SIZE,
            "dtype": "float32",
            "seed": "torch.manual_seed(seed) before building the model; the data order from the same generator",
            "sources": "see the docstring of bench/seed_reference.py",
        },
        "not_mirrored": [
            "cnncost's ChaCha8 random streams (initial weights, data order): seed S here is not seed S there",
            "cnncost's own CPU kernels (rounding differs from PyTorch's)",
            "cnncost stops a run on a non-finite loss, gradient or weight; here it is only recorded (diverged)",
        ],
        "flag": "below_20_percent: test accuracy below 20% (chance is 10%); stuck_at_chance: "
                "runtime/src/train.rs stuck_at_chance (the mean loss of the epoch's last tenth of steps "
                "within 3% of ln 10); epoch_mean_at_chance: the epoch's mean loss within 3% of ln 10",
        "runs": results,
        "cnncost_docs_table": {"source": "docs/training.md, Defaults that learn", **CNNCOST_DOCS},
    }
    out = os.path.join(ROOT, args.out) if not os.path.isabs(args.out) else args.out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {out}", file=sys.stderr)


def lr_warmup_steps(warmup_epochs, per_epoch):
    x = warmup_epochs * per_epoch
    return math.floor(x + 0.5)  # Rust f64::round for x >= 0


if __name__ == "__main__":
    main()
