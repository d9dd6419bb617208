#!/usr/bin/python3
"""PyTorch side of the benchmarks: images/s of a forward (eval, no grad) or a
full SGD training step, for one backbone. Prints one JSON line."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torch_models import create  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--arch", default="resnet56")
p.add_argument("--mode", choices=["train", "forward"], default="train")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--size", type=int, default=32)
p.add_argument("--channels", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--channels-last", action="store_true")
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
fmt = torch.channels_last if a.channels_last else torch.contiguous_format
model = create(a.arch, 10, a.channels).to(memory_format=fmt)
x = torch.randn(a.batch, a.channels, a.size, a.size).contiguous(memory_format=fmt)
y = torch.randint(0, 10, (a.batch,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def step():
    if a.mode == "forward":
        with torch.no_grad():
            model(x)
    else:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()


model.train(a.mode == "train")
times = []
for i in range(a.warmup + a.iters):
    t0 = time.perf_counter()
    step()
    if i >= a.warmup:
        times.append(time.perf_counter() - t0)
print(json.dumps({"arch": a.arch, "mode": a.mode, "times": times, "batch": a.batch}))
