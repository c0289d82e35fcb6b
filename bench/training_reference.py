#!/usr/bin/env python3
"""PyTorch reference figures for cnncost's static *training* cost predictions:
forward/backward FLOPs (torch.utils.flop_counter.FlopCounterMode) and the
bytes autograd saves for backward (saved_tensors_hooks), for torchvision
models with random weights in training mode, on the CPU.

Run it by hand, outside the project (CI only reads the committed JSON):

    python3 -m venv V && V/bin/pip install torch torchvision
    V/bin/python bench/training_reference.py --out tests/reference/pytorch_training.json

--by-node also prints, per network, the saved bytes grouped by the autograd
node that saved them (not written to the JSON).
"""
import argparse, collections, datetime, json, os, platform, shlex, sys

import torch, torchvision
from torch.utils.flop_counter import FlopCounterMode

TV = torchvision.models
# zoo name -> (constructor string, constructor, batch); input is INPUT for all
NETS = {
    "alexnet_torchvision": ("torchvision.models.alexnet()", lambda: TV.alexnet(weights=None), 2),
    "vgg16": ("torchvision.models.vgg16()", lambda: TV.vgg16(weights=None), 2),
    "resnet18": ("torchvision.models.resnet18()", lambda: TV.resnet18(weights=None), 2),
    "resnet50": ("torchvision.models.resnet50()", lambda: TV.resnet50(weights=None), 2),
    "googlenet": ("torchvision.models.googlenet(aux_logits=True, init_weights=True)",
                  lambda: TV.googlenet(weights=None, aux_logits=True, init_weights=True), 2),
    "googlenet_noaux": ("torchvision.models.googlenet(aux_logits=False, init_weights=True)",
                        lambda: TV.googlenet(weights=None, aux_logits=False, init_weights=True), 2),
    "squeezenet1_0": ("torchvision.models.squeezenet1_0()", lambda: TV.squeezenet1_0(weights=None), 2),
    "densenet121": ("torchvision.models.densenet121()", lambda: TV.densenet121(weights=None), 2),
    "resnext50_32x4d": ("torchvision.models.resnext50_32x4d()", lambda: TV.resnext50_32x4d(weights=None), 2),
    "mobilenet_v2": ("torchvision.models.mobilenet_v2()", lambda: TV.mobilenet_v2(weights=None), 2),
    "resnet18@8": ("torchvision.models.resnet18()", lambda: TV.resnet18(weights=None), 8),
    "alexnet_torchvision@8": ("torchvision.models.alexnet()", lambda: TV.alexnet(weights=None), 8),
}
CORRECTED = {"mobilenet_v2", "resnext50_32x4d"}
INPUT = [3, 224, 224]

NOTES = (
    "One entry per network: the torchvision model built with weights=None, in training mode "
    "(model.train()), torch.manual_seed(0) before building it and before drawing the input "
    "x = torch.randn(batch, *input) (no requires_grad), float32, CPU, contiguous. "
    "forward_flops: FlopCounterMode(display=False) total around out = model(x). "
    "backward_flops: a separate FlopCounterMode around loss.backward(), loss being the sum of "
    ".sum() of every output tensor (GoogLeNet with aux_logits returns main + two aux outputs); "
    "backward_flops_by_op is that mode's get_flop_counts()['Global'] as {op: flops}; ops without "
    "a FLOP formula (batch norm, relu, pooling, sums, ...) count 0 and do not appear. A FLOP is "
    "one multiply or one add (a multiply-accumulate counts 2). The first conv gets no grad-input "
    "FLOPs since x does not require grad. backward_flops_corrected (mobilenet_v2, "
    "resnext50_32x4d): FlopCounterMode's conv-backward formula counts a grouped conv's "
    "weight-gradient as if it were ungrouped (groups times too many); this is backward_flops - "
    "sum over grouped convs of 2*(g-1)*N*Cout*(Cin/g)*kh*kw*Ho*Wo. "
    "saved_bytes: in a separate forward (no FLOP counter), torch.autograd.graph."
    "saved_tensors_hooks(pack, unpack) around out = model(x); pack records each saved tensor's "
    "storage (t.untyped_storage().data_ptr() -> .nbytes()), deduplicated by storage, leaving "
    "out storages of the model's parameters and buffers (a view of one, e.g. weight.t() saved "
    "by addmm, or BN running stats, is left out too); the input x is counted when saved (by "
    "the first conv). nbytes is the whole storage, not the view. saved_tensors: number of "
    "distinct storages counted; saved_by_dtype: saved_bytes split by the saved tensor's dtype "
    "(int64: max-pool indices; there is no bool: on the CPU, dropout is input * noise and saves "
    "a float32 mask of the input's size, via aten.mul; an in-place ReLU6 (hardtanh_) saves a "
    "copy of its input, an in-place ReLU its output). params / trainable_params: number of "
    "parameter elements (all / requires_grad). grouped_convs: every nn.Conv2d with groups > 1, "
    "with its output spatial size from a forward hook."
)


def outputs(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [o for o in out if isinstance(o, torch.Tensor)]


def build(ctor, batch):
    torch.manual_seed(0)
    model = ctor()
    model.train()
    x = torch.randn(batch, *INPUT)
    return model, x


def grouped_convs(model, x):
    found = []
    def hook(name):
        def f(m, _inp, out):
            found.append({"name": name, "groups": m.groups, "in": m.in_channels, "out": m.out_channels,
                          "kernel": list(m.kernel_size), "output_hw": list(out.shape[2:])})
        return f
    hs = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
          if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return found


def flops(model, x):
    with FlopCounterMode(display=False) as fwd:
        out = model(x)
    loss = sum(o.sum() for o in outputs(out))
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    by_op = {str(op): n for op, n in bwd.get_flop_counts()["Global"].items()}
    return fwd.get_total_flops(), bwd.get_total_flops(), by_op


def saved(model, x):
    """Saved-for-backward storages; also maps each to the autograd node that saved it first."""
    own = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    packed = []  # (storage ptr, nbytes, dtype, view nbytes) per pack call, in forward order

    def pack(t):
        s = t.untyped_storage()
        packed.append((s.data_ptr(), s.nbytes(), str(t.dtype), t.numel() * t.element_size()))
        return (len(packed) - 1, t)

    who, current = {}, [None]  # pack index -> name of the autograd node holding it
    def unpack(p):
        who[p[0]] = current[0]
        return p[1]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = model(x)
    # Which node saved what: walk the graph, unpacking each node's _saved_* attributes.
    roots = [o.grad_fn for o in outputs(out)]
    seen, stack = set(), list(roots)
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        current[0] = node.name()
        for attr in dir(node):
            if attr.startswith("_saved_"):
                getattr(node, attr)  # a saved tensor (list) goes through unpack above
        stack.extend(f for f, _ in node.next_functions)

    total, by_dtype, first = 0, collections.Counter(), {}
    for i, (ptr, nb, dt, _vb) in enumerate(packed):
        if ptr in own or ptr in first:
            continue
        first[ptr] = i
        total += nb
        by_dtype[dt] += nb
    del out
    return total, len(first), dict(by_dtype), packed, who, first, own


def by_node_report(name, packed, who, first, own):
    rows = collections.defaultdict(lambda: [0, 0, 0])  # node -> [storages first saved, bytes, also-saved count]
    for ptr, i in first.items():
        r = rows[who.get(i, "?unmapped")]
        r[0] += 1
        r[1] += packed[i][1]
    for i, (ptr, *_r) in enumerate(packed):
        if ptr not in own and first[ptr] != i:
            rows[who.get(i, "?unmapped")][2] += 1
    bigger = sum(1 for ptr, i in first.items() if packed[i][1] != packed[i][3])
    print(f"\n== {name}: saved bytes by first-saving autograd node "
          f"({len(packed)} pack calls, {sum(1 for p in packed if p[0] in own)} of params/buffers, "
          f"{bigger} storages larger than their saved view)", file=sys.stderr)
    for node, (n, nb, again) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        print(f"  {node:40s} {n:5d} storages {nb:14,d} B   (+{again} re-saves of storages already counted)",
              file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/reference/pytorch_training.json")
    ap.add_argument("--only", help="comma-separated zoo names (default: all)")
    ap.add_argument("--by-node", action="store_true", help="print saved bytes per autograd node to stderr")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(NETS)

    nets = {}
    for name in names:
        desc, ctor, batch = NETS[name]
        print(f"{name} ...", file=sys.stderr, flush=True)
        model, x = build(ctor, batch)
        gc = grouped_convs(model, x)
        sb, st, sd, packed, who, first, own = saved(model, x)
        if args.by_node:
            by_node_report(name, packed, who, first, own)
        model, x = build(ctor, batch)
        fwd, bwd, by_op = flops(model, x)
        e = {"torchvision": desc, "batch": batch, "input": INPUT, "forward_flops": fwd,
             "backward_flops": bwd, "backward_flops_by_op": by_op, "saved_bytes": sb,
             "saved_tensors": st, "saved_by_dtype": sd,
             "params": sum(p.numel() for p in model.parameters()),
             "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
             "grouped_convs": gc}
        if name in CORRECTED:
            e["backward_flops_corrected"] = bwd - sum(
                2 * (g["groups"] - 1) * batch * g["out"] * (g["in"] // g["groups"])
                * g["kernel"][0] * g["kernel"][1] * g["output_hw"][0] * g["output_hw"][1] for g in gc)
        nets[name] = e

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    doc = {"generated_by": "bench/training_reference.py",
           "command": shlex.join([sys.executable] + sys.argv),
           "torch": torch.__version__, "torchvision": torchvision.__version__,
           "python": platform.python_version(), "cpu": cpu,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "notes": NOTES, "networks": nets}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
