"""Time lab against the numpy reference on the same PMD work and print the ratio.

    cargo build --release
    python3 bench/pmd_speed.py            # Garnet S=2000, A=10, b=10, 50 Euclidean iterations
    python3 bench/pmd_speed.py --large    # also lab alone on Garnet S=100,000 (s per iteration)

Both sides find V* by policy iteration, then run 50 Euclidean PMD iterations with eta = 10 from
the uniform policy on the same MDP (lab exports it; numpy reads it). lab's time is the whole
`lab run` process (MDP generation, CSV, manifest and plots included); numpy's time excludes
reading the file. The final value gaps must agree to 1e-9.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def lab_run(lab, out, settings):
    start = time.perf_counter()
    subprocess.run([lab, "run", "pmd", "--out", out, "--force", "-q", *settings], check=True)
    return time.perf_counter() - start


def last_row(csv_path):
    with open(csv_path) as f:
        return list(csv.DictReader(f))[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.path.join(HERE, "..", "target", "release", "lab"))
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="lab runs (the best is kept)")
    parser.add_argument("--large", action="store_true", help="also time lab on S = 100,000")
    args = parser.parse_args()
    if not os.path.exists(args.lab):
        sys.exit(f"{args.lab} not found: run `cargo build --release` first")

    settings = [f"states={args.states}", "actions=10", "branching=10", "gamma=0.9",
                "divergence=euclidean", "eta=10", f"iterations={args.iterations}"]
    with tempfile.TemporaryDirectory() as tmp:
        mdp = os.path.join(tmp, "garnet.mdp")
        subprocess.run([args.lab, "run", "pmd", *settings, "--export-mdp", mdp], check=True,
                       stdout=subprocess.DEVNULL)
        out = os.path.join(tmp, "run")
        lab_seconds = min(lab_run(args.lab, out, settings) for _ in range(args.repeat))
        lab_gap = float(last_row(out + ".csv")["value_gap_inf"])
        ref = subprocess.run([sys.executable, os.path.join(HERE, "pmd_numpy.py"), mdp, "0.9", "10",
                              str(args.iterations)], check=True, capture_output=True, text=True)
        numpy = json.loads(ref.stdout)
        agree = abs(numpy["final_gap"] - lab_gap) <= 1e-9
        print(f"Garnet S={args.states}, A=10, b=10, {args.iterations} Euclidean PMD iterations")
        print(f"  lab   {lab_seconds:8.3f} s  (whole process, best of {args.repeat})")
        print(f"  numpy {numpy['seconds']:8.3f} s  (algorithm only)")
        print(f"  final ||V* - V^pi||_inf: lab {lab_gap:.6e}, numpy {numpy['final_gap']:.6e}"
              f" -> {'agree' if agree else 'DISAGREE'}")
        print(f"  ratio numpy / lab = {numpy['seconds'] / lab_seconds:.1f}x")
        if args.large:
            big = ["states=100000", "actions=10", "branching=10", "gamma=0.9",
                   "divergence=euclidean", "eta=10", "iterations=20", "evaluation=iterative"]
            seconds = lab_run(args.lab, out, big)
            rows = list(csv.DictReader(open(out + ".csv")))
            per_iteration = (float(rows[-1]["wall_s"]) - float(rows[0]["wall_s"])) / (len(rows) - 1)
            print("Garnet S=100000, A=10, b=10, 20 iterations, lab alone")
            print(f"  {seconds:.2f} s in all, {per_iteration:.3f} s per PMD iteration")
        if not agree:
            sys.exit(1)


if __name__ == "__main__":
    main()
