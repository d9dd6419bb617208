#!/usr/bin/python3
"""Parity fixtures for the engine, written with Debian's python3-torch.

Each case records its inputs, keyword arguments, the forward output and the
gradient of sum(output * w) for a fixed random w with respect to every input
that requires a gradient. test/tensor/parity.test.ts replays every case
through ztw and compares. Run: /usr/bin/python3 tools/make_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
cases = []


def enc(t):
    t = t.detach()
    dtype = {torch.float32: "float32", torch.int64: "int64", torch.bool: "bool", torch.float64: "float64"}[t.dtype]
    vals = t.reshape(-1).tolist()
    if dtype == "bool":
        vals = [int(v) for v in vals]
    return {"shape": list(t.shape), "dtype": dtype, "data": vals}


def case(name, op, inputs, fn, grad=None, **kwargs):
    """inputs: list of tensors; grad: indices of inputs to differentiate (default: all float)."""
    if grad is None:
        grad = [i for i, t in enumerate(inputs) if t.dtype == torch.float32]
    leaves = [t.clone().requires_grad_(i in grad) for i, t in enumerate(inputs)]
    out = fn(*leaves, **kwargs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    entry = {"name": name, "op": op, "kwargs": kwargs, "inputs": [enc(t) for t in inputs], "outputs": [enc(o) for o in outs]}
    float_outs = [o for o in outs if o.dtype == torch.float32 and o.requires_grad]
    if grad and float_outs:
        ws = [torch.randn(o.shape) for o in float_outs]
        loss = sum((o * w).sum() for o, w in zip(float_outs, ws))
        loss.backward()
        entry["weights"] = [enc(w) for w in ws]
        entry["grads"] = {str(i): enc(leaves[i].grad) for i in grad}
    cases.append(entry)


r = lambda *s: torch.randn(*s)
pos = lambda *s: torch.rand(*s) + 0.5

# Elementwise
case("add", "add", [r(3, 4), r(4)], lambda a, b: a + b)
case("add_alpha", "add", [r(3, 4), r(3, 4)], lambda a, b, alpha: torch.add(a, b, alpha=alpha), alpha=2.5)
case("sub", "sub", [r(2, 3), r(2, 3)], lambda a, b: a - b)
case("mul", "mul", [r(2, 3), r(2, 1)], lambda a, b: a * b)
case("div", "div", [r(2, 3), pos(2, 3)], lambda a, b: a / b)
case("pow", "pow", [pos(2, 3), r(2, 3)], lambda a, b: a ** b)
case("maximum", "maximum", [r(5), r(5)], lambda a, b: torch.maximum(a, b))
case("exp", "exp", [r(2, 3)], torch.exp)
case("log", "log", [pos(2, 3)], torch.log)
case("sqrt", "sqrt", [pos(2, 3)], torch.sqrt)
case("sigmoid", "sigmoid", [r(2, 3)], torch.sigmoid)
case("tanh", "tanh", [r(2, 3)], torch.tanh)
case("relu", "relu", [r(3, 4)], F.relu)
case("clamp", "clamp", [r(3, 4)], lambda a, min, max: torch.clamp(a, min, max), min=-0.5, max=0.7)
case("where", "where", [r(3, 4) > 0, r(3, 4), r(3, 4)], lambda c, a, b: torch.where(c, a, b), grad=[1, 2])
case("gt", "gt", [r(3, 4), r(3, 4)], lambda a, b: a > b, grad=[])
case("eq_scalar", "eq", [torch.tensor([1.0, 2.0, 3.0])], lambda a, other: a == other, grad=[], other=2.0)

# Linear algebra and layers
case("matmul", "matmul", [r(3, 4), r(4, 5)], torch.matmul)
case("matmul_batched", "matmul", [r(2, 3, 4), r(4, 2)], torch.matmul)
case("linear", "linear", [r(4, 6), r(3, 6), r(3)], F.linear)
case("conv2d", "conv2d", [r(2, 3, 7, 7), r(4, 3, 3, 3), r(4)], F.conv2d, stride=1, padding=1, dilation=1, groups=1)
case("conv2d_stride_pad", "conv2d", [r(1, 2, 8, 8), r(3, 2, 3, 3), r(3)], F.conv2d, stride=2, padding=1, dilation=1, groups=1)
case("conv2d_dilation", "conv2d", [r(1, 2, 9, 9), r(2, 2, 3, 3), r(2)], F.conv2d, stride=1, padding=2, dilation=2, groups=1)
case("conv2d_groups", "conv2d", [r(2, 4, 6, 6), r(6, 2, 3, 3), r(6)], F.conv2d, stride=1, padding=1, dilation=1, groups=2)
case("conv2d_depthwise", "conv2d", [r(2, 4, 6, 6), r(4, 1, 3, 3), r(4)], F.conv2d, stride=2, padding=1, dilation=1, groups=4)


def bn_train(x, w, b, rm, rv):
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    return [y, rm, rv]


def bn_eval(x, w, b, rm, rv):
    return F.batch_norm(x, rm, rv, w, b, training=False, momentum=0.1, eps=1e-5)


case("batch_norm_train", "batchNormTrain", [r(4, 3, 5, 5), pos(3), r(3), r(3), pos(3)], bn_train, grad=[0, 1, 2])
case("batch_norm_eval", "batchNormEval", [r(4, 3, 5, 5), pos(3), r(3), r(3), pos(3)], bn_eval, grad=[0, 1, 2])
case("layer_norm", "layerNorm", [r(4, 6), pos(6), r(6)], lambda x, w, b: F.layer_norm(x, [6], w, b, 1e-5))
case("max_pool2d", "maxPool2d", [r(2, 3, 8, 8)], F.max_pool2d, kernel_size=2, stride=2, padding=0)
case("max_pool2d_pad", "maxPool2d", [r(1, 2, 7, 7)], F.max_pool2d, kernel_size=3, stride=2, padding=1)
case("avg_pool2d", "avgPool2d", [r(2, 3, 8, 8)], F.avg_pool2d, kernel_size=2, stride=2, padding=0)
case("adaptive_avg_pool2d", "adaptiveAvgPool2d", [r(2, 3, 7, 7)], F.adaptive_avg_pool2d, output_size=3)
case("softmax", "softmax", [r(3, 5)], F.softmax, dim=1)
case("log_softmax", "logSoftmax", [r(3, 5)], F.log_softmax, dim=1)
case("cross_entropy", "crossEntropy", [r(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])], F.cross_entropy, grad=[0])
case("cross_entropy_sum", "crossEntropy", [r(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])], F.cross_entropy, grad=[0], reduction="sum")
case("nll_loss", "nllLoss", [F.log_softmax(r(4, 3), 1), torch.tensor([0, 2, 1, 1])], F.nll_loss, grad=[0])
case("kl_div", "klDiv", [F.log_softmax(r(4, 3), 1), F.softmax(r(4, 3), 1)], F.kl_div, reduction="batchmean")

# Reductions
case("sum_all", "sum", [r(3, 4)], lambda a: a.sum())
case("sum_dim", "sum", [r(3, 4, 2)], lambda a, dims, keepdim: a.sum(dims, keepdim=keepdim), dims=[1], keepdim=True)
case("mean_dims", "mean", [r(3, 4, 2)], lambda a, dims, keepdim: a.mean(dims, keepdim=keepdim), dims=[0, 2], keepdim=False)
case("max_dim", "maxDim", [r(3, 5)], lambda a, dim: list(torch.max(a, dim)), dim=1)
case("argmax", "argmax", [r(3, 5)], lambda a, dim: a.argmax(dim), dim=1, grad=[])
case("logsumexp", "logsumexp", [r(3, 5)], lambda a, dims: torch.logsumexp(a, dims), dims=[1])
case("var", "var", [r(3, 5)], lambda a, dims: a.var(dims), dims=[1])

# Shape and indexing
case("cat", "cat", [r(2, 3), r(1, 3)], lambda a, b: torch.cat([a, b], 0))
case("stack", "stack", [r(2, 3), r(2, 3)], lambda a, b: torch.stack([a, b], 1))
case("split", "split", [r(5, 3)], lambda a, sizes: list(torch.split(a, sizes, 0)), sizes=[2, 3])
case("index_select", "indexSelect", [r(5, 3), torch.tensor([4, 0, 2])], lambda a, i: torch.index_select(a, 0, i), grad=[0])
case("gather", "gather", [r(3, 4), torch.tensor([[0], [3], [1]])], lambda a, i: torch.gather(a, 1, i), grad=[0])
case("masked_select", "maskedSelect", [r(3, 4), r(3, 4) > 0], torch.masked_select, grad=[0])
case("narrow", "narrow", [r(4, 6)], lambda a: a.narrow(1, 2, 3))
case("view", "view", [r(4, 6)], lambda a: a.view(2, 12))
case("permute", "permute", [r(2, 3, 4)], lambda a: a.permute(2, 0, 1))
case("flip", "flip", [r(2, 3, 4)], lambda a: a.flip([2]))
case("pad", "pad", [r(1, 2, 3, 3)], lambda a: F.pad(a, [1, 2, 0, 1], value=0.5))


# Random streams: libtorch's CPU generator is PyTorch's, so seeded draws agree.
def seeded(fn):
    torch.manual_seed(7)
    return fn()


random = {
    "rand": enc(seeded(lambda: torch.rand(6))),
    "randn": enc(seeded(lambda: torch.randn(6))),
    "randperm": enc(seeded(lambda: torch.randperm(10))),
    "randint": enc(seeded(lambda: torch.randint(0, 100, (6,)))),
}

# Optimizers: three steps from the same parameters and gradients.
torch.manual_seed(99)
p0 = torch.randn(5)
grads = [torch.randn(5) for _ in range(3)]


def run_opt(make):
    p = p0.clone().requires_grad_(True)
    opt = make([p])
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return enc(p)


optim = {
    "p0": enc(p0),
    "grads": [enc(g) for g in grads],
    "sgd": run_opt(lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd_momentum_wd": run_opt(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2)),
    "sgd_nesterov": run_opt(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    "adam": run_opt(lambda ps: torch.optim.Adam(ps, lr=1e-2)),
    "adam_wd": run_opt(lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99))),
}

out = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "engine-parity.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "random": random, "optim": optim}, f)
print(f"wrote {len(cases)} cases to {out}")
