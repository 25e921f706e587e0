"""PyTorch CPU reference timings for the lab experiments on Fashion-MNIST.

Measures, on the 60k training images (pixels / 255, fixed order from a
numpy seed-0 permutation, batch 64, plain SGD without momentum):

  * one training epoch of an MLP 784-256-10 (ReLU, cross-entropy);
  * one training epoch of a small CNN:
    Conv(1,8,3,p1)-BN-ReLU-Conv(8,16,3,s2,p1)-BN-ReLU-MaxPool2-Linear(784,10);
  * the per-sample gradient L2 norms (over all parameters) of the first
    10,000 training images, via torch.func (functional_call + vmap(grad)),
    for the MLP and for the CNN with BatchNorm in eval mode.

Data loading is excluded from every timing. Prints one line per
measurement ("torch <name> <value>") and the peak resident memory.
If the IDX files are missing, random data of the same shape is used.

Usage: python bench/bpsvrg_torch.py --data /usr/share/datasets/fashion-mnist --threads 2
"""
import argparse
import gzip
import os
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


def load_idx(data_dir):
    """Return (images uint8 [60000,28,28], labels int64 [60000]) or None if missing."""
    img = os.path.join(data_dir, "train-images-idx3-ubyte.gz")
    lab = os.path.join(data_dir, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(img) and os.path.exists(lab)):
        return None
    with gzip.open(img) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(lab) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(784, 10),
    )


def train_epoch(model, x, y, batch, lr, max_steps=None):
    """One pass of plain SGD over (x, y) in the given order; returns seconds."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    t = time.perf_counter()
    for step, i in enumerate(range(0, len(x), batch)):
        if max_steps is not None and step >= max_steps:
            break
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()
    return time.perf_counter() - t


def per_sample_grad_norms(model, x, y, chunk=1000):
    """L2 norm over all parameters of each sample's loss gradient; returns (norms, seconds)."""
    model.eval()  # BatchNorm uses running statistics, so samples are independent
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            g = per_sample(params, x[i:i + chunk], y[i:i + chunk])
            sq = sum(v.pow(2).flatten(1).sum(1) for v in g.values())
            norms.append(sq.sqrt())
    return torch.cat(norms), time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    data = load_idx(args.data)
    if data is None:
        print(f"# no IDX files in {args.data}: using random data of the same shape")
        rng = np.random.default_rng(1)
        data = (rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
                rng.integers(0, 10, 60000).astype(np.int64))
    images, labels = data
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(images)} images, batch {args.batch}, lr {args.lr}")

    perm = np.random.default_rng(0).permutation(len(images))
    x = torch.from_numpy(images[perm].astype(np.float32) / 255.0).unsqueeze(1)  # [N,1,28,28]
    y = torch.from_numpy(labels[perm])
    x10k = torch.from_numpy(images[:10000].astype(np.float32) / 255.0).unsqueeze(1)
    y10k = torch.from_numpy(labels[:10000])

    for name, make in (("mlp", mlp), ("cnn", cnn)):
        model = make()
        train_epoch(model, x, y, args.batch, args.lr, max_steps=20)  # warm-up
        for _ in range(args.epochs):
            print(f"torch {name}_epoch_seconds {train_epoch(model, x, y, args.batch, args.lr):.3f}")
        print(f"# peak RSS so far {peak_rss_mib():.0f} MiB")
        per_sample_grad_norms(model, x10k[:100], y10k[:100], chunk=100)  # warm-up
        norms, secs = per_sample_grad_norms(model, x10k, y10k)
        print(f"torch {name}_per_sample_norms_seconds_10000 {secs:.3f}")
        print(f"# {name} per-sample grad norm mean {norms.mean():.4f} max {norms.max():.4f}")

    print(f"torch peak_rss_mib {peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
