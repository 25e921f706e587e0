"""Time lab's routers and one pmoe training step against the same written in PyTorch (CPU).

    cargo build --release
    pip install torch numpy
    python3 bench/locmoe_speed.py                 # T = 4096, d = 128, E = 16, 2 threads

Routing: lab runs `lab run --spec experiments/locmoe-routing.toml` (the gate scores and the
dispatch of every router on T random tokens, median of 20 calls, one thread) and reports the
medians in its summary; PyTorch computes the same per router, as a researcher would write it
from the DeepSpeed / V-MoE code (softmax gate, cumsum positions for first-come dropping,
a sort by importance for priority dropping, random importance for the random control,
top-2 with the second choices queued after the first, expert choice as a top-C per expert,
hash as a table lookup, GrAP cosines as block sums over the token norm), median of 20 calls
after 3 warm-ups, with torch.set_num_threads(THREADS). BASE (greedy balanced assignment) is a
Python loop in the reference and is printed apart from the summary ratio.

Same work: both sides route isotropic Gaussian tokens at capacity factor 1.1; the inputs are
different draws, so the script checks that the processed slot counts agree within 3% (drop
rates of isotropic tokens are a property of the router, not of the draw).

Training step: lab runs `lab run locmoe mode=pmoe router=switch capacity=1.1 seeds=1` (one
job, so its products may use both threads) and reports the median step (forward, backward,
Adam) in its summary; PyTorch trains the same model (projection, softmax router with
Switch's aux loss, 8 ReLU experts, mean pooling, linear classifier; T = 512, d = 32, h = 32)
on the same data model with torch.optim.Adam, f32 (lab computes in f64).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def lab_summary(lab, args, out):
    cmd = [lab, "run", *args, "--out", out, "-q", "--force", "--format", "svg"]
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"lab failed: {' '.join(cmd)}")
    with open(out + ".run.json") as f:
        run = json.load(f)
    rows = []
    with open(out + ".csv") as f:
        header = f.readline().strip().split(",")
        for line in f:
            rows.append(dict(zip(header, line.strip().split(","))))
    return run["summary"], rows


def capacity(cf, k, t, e):
    return min(t, max(1, math.ceil(cf * k * t / e)))


def position_keep(choice, e, c):
    """First come: a token's place in its expert's queue is the running count (cumsum)."""
    mask = F.one_hot(choice, e)
    location = torch.cumsum(mask, 0) - 1
    return (location * mask).sum(1) < c


def priority_keep(choice, importance, e, c):
    """Batch-prioritized: queue places by decreasing importance (V-MoE BPR)."""
    order = torch.argsort(importance, descending=True)
    mask = F.one_hot(choice[order], e)
    location = torch.cumsum(mask, 0) - 1
    keep_sorted = (location * mask).sum(1) < c
    keep = torch.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


def grap_cosines(h, e):
    t, d = h.shape
    return h.view(t, e, d // e).sum(-1) * math.sqrt(e / d) / h.norm(dim=1, keepdim=True)


def scores(name, h, wg, e):
    """The scores the router ranks: GrAP cosines, a softmax gate, or none (hash)."""
    if name in ("locmoe", "locmoe_plus"):
        return grap_cosines(h, e)
    if name == "hash":
        return None
    return torch.softmax(h @ wg.T, dim=1)


def dispatch(name, score, t, e, cf, ids, gen):
    """Returns the number of processed (token, expert) slots."""
    if name in ("switch", "locmoe"):
        top, choice = score.max(1)
        return int(position_keep(choice, e, capacity(cf, 1, t, e)).sum())
    if name in ("switch_priority", "locmoe_plus"):
        top, choice = score.max(1)
        return int(priority_keep(choice, top, e, capacity(cf, 1, t, e)).sum())
    if name == "switch_random":
        _, choice = score.max(1)
        return int(priority_keep(choice, torch.rand(t, generator=gen), e, capacity(cf, 1, t, e)).sum())
    if name == "gshard":
        c = capacity(cf, 2, t, e)
        top2 = score.topk(2, dim=1).indices
        m1, m2 = F.one_hot(top2[:, 0], e), F.one_hot(top2[:, 1], e)
        loc1 = torch.cumsum(m1, 0) - 1
        loc2 = torch.cumsum(m2, 0) - 1 + m1.sum(0, keepdim=True)
        return int(((loc1 * m1).sum(1) < c).sum() + ((loc2 * m2).sum(1) < c).sum())
    if name == "expert_choice":
        c = capacity(cf, 1, t, e)
        picked = score.T.topk(c, dim=1).indices
        return int(picked.numel())
    if name == "hash":
        table = torch.randperm(t, generator=gen) % e  # a fixed balanced table
        return int(position_keep(table[ids], e, capacity(cf, 1, t, e)).sum())
    if name == "base":
        c = -(-t // e)
        order = torch.argsort(score.flatten(), descending=True).tolist()
        owner = [-1] * t
        load = [0] * e
        left = t
        for p in order:
            tok, ex = divmod(p, e)
            if owner[tok] < 0 and load[ex] < c:
                owner[tok] = ex
                load[ex] += 1
                left -= 1
                if left == 0:
                    break
        return t
    raise ValueError(name)


def time_torch_routing(routers, t, d, e, cf, threads, repeats):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(t, d, generator=gen)
    wg = torch.randn(e, d, generator=gen) / math.sqrt(d)
    ids = torch.arange(t)
    out = {}
    median = lambda v: sorted(v)[len(v) // 2]
    for name in routers:
        with torch.no_grad():
            for _ in range(3):
                dispatch(name, scores(name, h, wg, e), t, e, cf, ids, gen)
            total, only = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                score = scores(name, h, wg, e)
                scored = time.perf_counter()
                slots = dispatch(name, score, t, e, cf, ids, gen)
                end = time.perf_counter()
                total.append(end - start)
                only.append(end - scored)
        out[name] = (median(total), median(only), slots)
    return out


class Pmoe(torch.nn.Module):
    def __init__(self, d, e, hidden, classes):
        super().__init__()
        self.proj = torch.nn.Linear(d, d)
        self.gate = torch.nn.Linear(d, e, bias=False)
        self.w1 = torch.nn.ModuleList(torch.nn.Linear(d, hidden) for _ in range(e))
        self.w2 = torch.nn.ModuleList(torch.nn.Linear(hidden, d) for _ in range(e))
        self.head = torch.nn.Linear(d, classes)
        self.e = e

    def forward(self, x, s, cf):
        t, d = x.shape
        h = self.proj(x)
        p = torch.softmax(self.gate(h), dim=1)
        gate, choice = p.max(1)
        keep = position_keep(choice, self.e, capacity(cf, 1, t, self.e))
        z = h.clone()
        for i in range(self.e):
            idx = torch.nonzero((choice == i) & keep).squeeze(1)
            if idx.numel():
                y = self.w2[i](F.relu(self.w1[i](h[idx])))
                z = z.index_add(0, idx, gate[idx, None] * y)
        f = F.one_hot(choice, self.e).float().mean(0)
        aux = 0.01 * self.e * (f * p.mean(0)).sum()
        return self.head(z.view(t // s, s, d).mean(1)), aux


def pmoe_batch(t, s, d, classes, patterns, gen):
    x = torch.randn(t, d, generator=gen) * (0.5 / math.sqrt(d))
    b = t // s
    y = torch.randint(0, classes, (b,), generator=gen)
    at = torch.randint(0, s, (b,), generator=gen)
    other = torch.randint(0, classes, (t,), generator=gen)
    strength = torch.ones(t)
    cls = other.clone()
    rows = torch.arange(b) * s + at
    cls[rows] = y
    strength[rows] = 3.0
    return x + strength[:, None] * patterns[cls], y


def time_torch_step(threads, steps, t=512, s=32, d=32, e=8, hidden=32):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    patterns = torch.linalg.qr(torch.randn(d, e, generator=gen))[0].T.contiguous()
    model = Pmoe(d, e, hidden, e)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    times = []
    for step in range(steps + 10):
        x, y = pmoe_batch(t, s, d, e, patterns, gen)
        start = time.perf_counter()
        logits, aux = model(x, s, 1.1)
        loss = F.cross_entropy(logits, y) + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 10:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], float(loss.detach())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lab", default=os.path.join(ROOT, "target/release/lab"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        summary, rows = lab_summary(
            args.lab, ["--spec", os.path.join(ROOT, "experiments/locmoe-routing.toml")], tmp + "/routing")
        lab_times = {r["router"]: float(r["seconds"]) for r in rows}
        lab_dispatch = {r["router"]: float(r["dispatch_seconds"]) for r in rows}
        lab_slots = {r["router"]: int(r["processed_slots"]) for r in rows}
        step_summary, _ = lab_summary(
            args.lab, ["locmoe", "mode=pmoe", "router=switch", "capacity=1.1", "seeds=1",
                       f"steps={args.steps}", "dynamic_capacity=none", "locmoe_bound=none"], tmp + "/step")
    t, d, e, cf = 4096, 128, 16, 1.1
    ref = time_torch_routing(list(lab_times), t, d, e, cf, args.threads, args.repeats)
    print(f"# torch {torch.__version__}, {args.threads} threads; routing T = {t}, d = {d}, "
          f"E = {e}, cf = {cf}")
    print(f"{'router':16} {'lab ms':>8} {'torch ms':>8} {'ratio':>7}   {'dispatch: lab':>13} "
          f"{'torch':>7} {'ratio':>7}   {'slots: lab':>10} {'torch':>6}")
    ratios, dispatch_ratios, mismatch = [], [], []
    for name, sec in lab_times.items():
        tsec, tdisp, tslots = ref[name]
        ratio, dratio = tsec / sec, tdisp / lab_dispatch[name]
        if name != "base":
            ratios.append(ratio)
            dispatch_ratios.append(dratio)
        if abs(lab_slots[name] - tslots) > 0.03 * tslots:
            mismatch.append(name)
        print(f"{name:16} {sec * 1e3:8.3f} {tsec * 1e3:8.3f} {ratio:6.1f}x   "
              f"{lab_dispatch[name] * 1e3:13.3f} {tdisp * 1e3:7.3f} {dratio:6.1f}x   "
              f"{lab_slots[name]:10} {tslots:6}")
    geo = lambda v: math.exp(sum(math.log(r) for r in v) / len(v))
    print(f"routing (scores and dispatch), every router but base: torch / lab = "
          f"{min(ratios):.1f}x to {max(ratios):.1f}x, geometric mean {geo(ratios):.1f}x (target 5x)")
    print(f"dispatch alone (given the scores): torch / lab = {min(dispatch_ratios):.1f}x to "
          f"{max(dispatch_ratios):.1f}x, geometric mean {geo(dispatch_ratios):.1f}x")
    if mismatch:
        sys.exit(f"processed slots differ by more than 3% for {', '.join(mismatch)}")
    lab_step = dict(step_summary["step_seconds"])["switch"]
    torch_step, _ = time_torch_step(args.threads, args.steps)
    print(f"pmoe training step (T = 512, d = 32, E = 8, h = 32): lab {lab_step * 1e3:.3f} ms, "
          f"torch {torch_step * 1e3:.3f} ms: torch / lab = {torch_step / lab_step:.1f}x (target >= 1)")


if __name__ == "__main__":
    main()
