"""Time lab against numpy on the 200-start experiment of `lab run noise` and print the ratio.

    cargo build --release
    python3 bench/noise_speed.py

Both run the four methods (gd, wn_gd, pgd with the perturbed-point noise, psgd with batches of
4) from 200 starts with the paper's schedule (20 epochs x 400 iterations) on the same teacher
(read from lab's manifest). numpy is vectorized over the starts, single-threaded; lab runs the
(method, start) jobs on 2 cores. The starts and noise differ (ChaCha8 against PCG64), so both
print their success counts (angle to w* below 0.1) with 95% Wilson intervals: the two
differ by sampling alone when the intervals overlap. Two ratios: lab's training alone (its
manifest's `train_seconds`) and lab's whole process. `cargo bench --bench noise_floor`
compares lab's whole process with drawing the same normals alone.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import noise_numpy  # noqa: E402


def wilson(successes, n, z=1.96):
    """The 95% Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def share(successes, n):
    lo, hi = wilson(successes, n)
    return f"{successes}/{n} [{lo:.2f}, {hi:.2f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.path.join(HERE, "..", "target", "release", "lab"))
    args = parser.parse_args()
    if not os.path.exists(args.lab):
        sys.exit(f"{args.lab} not found: run `cargo build --release` first")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "n")
        start = time.perf_counter()
        subprocess.run([args.lab, "run", "noise", "--out", out, "-q"], check=True)
        lab_process = time.perf_counter() - start
        with open(out + ".run.json") as f:
            summary = json.load(f)["summary"]
    ws, as_ = np.array(summary["teacher"]["w"]), np.array(summary["teacher"]["a"])
    lab_train = summary["train_seconds"]
    total = 0.0
    print("two-layer CNN, k = p = 6, 200 starts x 4 methods x 8000 steps:")
    for method in ["gd", "wn_gd", "pgd", "psgd"]:
        start = time.perf_counter()
        w, _ = noise_numpy.run(method, ws, as_, 200)
        spent = time.perf_counter() - start
        total += spent
        cos = (w @ ws) / (np.linalg.norm(w, axis=1) * np.linalg.norm(ws))
        numpy_global = int(np.sum(np.arccos(np.clip(cos, -1, 1)) < 0.1))
        lab_global = summary["outcomes"][method]["global"]["count"]
        print(f"  {method:6s} numpy {spent:6.2f} s, global: numpy {share(numpy_global, 200)}, "
              f"lab {share(lab_global, 200)}")
    print(f"  numpy {total:.2f} s; lab training {lab_train:.2f} s (2 cores), whole process "
          f"{lab_process:.2f} s")
    print(f"  ratio numpy / lab: {total / lab_train:.1f}x on the training, "
          f"{total / lab_process:.1f}x against lab's whole process")


if __name__ == "__main__":
    main()
