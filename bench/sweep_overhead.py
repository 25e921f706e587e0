#!/usr/bin/env python3
"""What a sweep costs beyond its runs, and how fast `lab runs` reads many manifests.

1. A 200-point pmd sweep (default settings, eta log-spaced from 1e-2 to 1e2), one point at a
   time (-j 1). A point's own work is its manifest's wall_seconds: the run itself, its claims
   and figures, exactly what `lab run` does. Overhead per point = (the sweep's wall time - the
   sum of the points' own work) / 200: process start, grid and validation, resume checks,
   preparing, locking, sweep.csv rewrites. Target: under 20 ms.
   For comparison, the same 200 points as a shell loop of `lab run` (one process each).
2. `lab runs` over 10,000 manifests (the 200 copied into 50 folders). Target: under 1 s.

Usage: cargo build --release && python3 bench/sweep_overhead.py
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

LAB = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "target", "release", "lab"))
POINTS = 200


def timed(args, cwd):
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def own_work(directory):
    total = 0.0
    for path in glob.glob(os.path.join(directory, "*.run.json")):
        with open(path) as f:
            total += json.load(f)["wall_seconds"]
    return total


def main():
    if not os.path.exists(LAB):
        sys.exit(f"build lab first: cargo build --release ({LAB} is missing)")
    work = tempfile.mkdtemp(prefix="lab-sweep-bench-")
    try:
        axis = f"eta=1e-2..1e2:log:{POINTS}"
        print(f"lab sweep pmd {axis} -j 1 (default pmd settings otherwise)")
        best = None
        for attempt in range(3):
            out = os.path.join(work, f"s{attempt}")
            wall = timed([LAB, "sweep", "pmd", axis, "-j", "1", "-q", "--out", out], work)
            runs = own_work(out)
            overhead = (wall - runs) / POINTS
            print(f"  run {attempt + 1}: wall {wall:.2f} s, points' own work {runs:.2f} s, "
                  f"overhead {1000 * overhead:.1f} ms per point")
            best = overhead if best is None else min(best, overhead)
        print(f"overhead per point (best of 3): {1000 * best:.1f} ms (target < 20 ms)")

        wall2 = timed([LAB, "sweep", "pmd", axis, "-j", "2", "-q", "--out",
                       os.path.join(work, "j2")], work)
        print(f"the same sweep with -j 2: {wall2:.2f} s")

        etas = [1e-2 * 10 ** (4 * i / (POINTS - 1)) for i in range(POINTS)]
        loop_dir = os.path.join(work, "loop")
        os.makedirs(loop_dir)
        start = time.perf_counter()
        for i, eta in enumerate(etas):
            subprocess.run([LAB, "run", "pmd", "--eta", f"{eta:.4g}", "-q",
                            "--out", os.path.join(loop_dir, f"p{i}")], check=True)
        loop = time.perf_counter() - start
        loop_overhead = (loop - own_work(loop_dir)) / POINTS
        print(f"a shell loop of {POINTS} `lab run`: {loop:.2f} s, overhead "
              f"{1000 * loop_overhead:.1f} ms per point; loop / sweep (-j 1) = "
              f"{loop / wall:.2f}x")

        many = os.path.join(work, "many")
        for copy in range(50):
            shutil.copytree(os.path.join(work, "s0"), os.path.join(many, f"c{copy:02d}"))
        count = len(glob.glob(os.path.join(many, "*", "*.run.json")))
        times = [timed([LAB, "runs", many, "--csv"], work) for _ in range(3)]
        print(f"lab runs over {count} manifests: best {min(times):.3f} s of "
              f"{', '.join(f'{t:.3f}' for t in times)} (target < 1 s)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
