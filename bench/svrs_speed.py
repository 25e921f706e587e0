"""Time lab against the numpy reference on SVRS and AccSVRS, a8a ridge, n = 100, and measure
lab's peak memory on w8a with n = 500.

    cargo build --release
    LAB_DATA=../shared/data python3 bench/svrs_speed.py

Both sides: a8a (LIBSVM), iid split into 100 nodes, lambda = 0.01, x* by a direct solve,
delta_avg from the eigenvalues of every H_i - H, theory theta, stop at
||x - x*||^2 / ||x*||^2 <= 1e-10, one seed per method. The splits and random streams differ
(numpy's PCG64 against lab's ChaCha8), so the communication counts differ a little; both are
printed. Both sides run --repeat times, in turn; each pair's ratio is printed, and the
three headline ratios compare the best run of each side: algorithms alone on both sides
(lab's from the last `wall_s` of each job, summed: one core each), numpy's algorithms
alone against lab's whole process (loading, x*, exact constants, CSV, manifest, plots),
and whole process against whole process.
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


def timed(cmd, env=None):
    """Wall time and peak resident memory (KB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed")
    return seconds, usage.ru_maxrss, out.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.path.join(HERE, "..", "target", "release", "lab"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each side, in turn (the best of each is kept)")
    args = parser.parse_args()
    data = os.environ.get("LAB_DATA")
    if not data or not os.path.exists(os.path.join(data, "libsvm", "a8a")):
        sys.exit("set LAB_DATA=DIR with DIR/libsvm/a8a and DIR/libsvm/w8a")
    if not os.path.exists(args.lab):
        sys.exit(f"{args.lab} not found: run `cargo build --release` first")

    def run_numpy():
        seconds, _, out = timed([sys.executable, os.path.join(HERE, "svrs_numpy.py"),
                                 os.path.join(data, "libsvm", "a8a"),
                                 "--nodes", "100", "--lam", "0.01"])
        result = {r["method"]: r for r in map(json.loads, out.splitlines())}
        return seconds, result, sum(r["seconds"] for r in result.values())

    with tempfile.TemporaryDirectory() as tmp:
        settings = ["data=a8a", "nodes=100", "lambda=0.01", "method=svrs,accsvrs", "seeds=1"]

        def run_lab():
            seconds, _, _ = timed([args.lab, "run", "svrs", *settings, "--out",
                                   os.path.join(tmp, "a8a"), "--force", "-q"])
            # Each job's own time: its last wall_s (the jobs run in parallel, one core each).
            job_seconds = {}
            with open(os.path.join(tmp, "a8a.csv")) as f:
                for row in csv.DictReader(f):
                    job_seconds[row["method"]] = float(row["wall_s"])
            return seconds, sum(job_seconds.values())

        runs = []
        for k in range(args.repeat):
            whole_numpy, numpy, algorithms_numpy = run_numpy()
            whole_lab, algorithms_lab = run_lab()
            runs.append((whole_numpy, algorithms_numpy, whole_lab, algorithms_lab))
            print(f"  pair {k + 1}: numpy algorithms {algorithms_numpy:.2f} s, lab algorithms "
                  f"{algorithms_lab:.3f} s: {algorithms_numpy / algorithms_lab:.1f}x")
        whole_numpy = min(r[0] for r in runs)
        algorithms_numpy = min(r[1] for r in runs)
        best = min(r[2] for r in runs)
        algorithms_lab = min(r[3] for r in runs)
        with open(os.path.join(tmp, "a8a.run.json")) as f:
            summary = json.load(f)["summary"]
        lab_costs = summary["cost_to_tol"]

        memory_settings = ["data=w8a", "nodes=500", "lambda=0.01", "method=svrs,accsvrs",
                           "seeds=1"]
        w8a_seconds, peak_kb, _ = timed([args.lab, "run", "svrs", *memory_settings, "--out",
                                         os.path.join(tmp, "w8a"), "--force", "-q"])
        with open(os.path.join(tmp, "w8a.run.json")) as f:
            w8a = json.load(f)["summary"]

    print("a8a ridge, n = 100, lambda = 0.01, tol 1e-10 "
          f"(delta/mu: lab {summary['delta_over_mu']:.1f}, "
          f"numpy {numpy['svrs']['delta_over_mu']:.1f})")
    for method in ["svrs", "accsvrs"]:
        print(f"  {method:8s} communications: lab {lab_costs[method]['comms']:.0f}, "
              f"numpy {numpy[method]['comms']}; numpy {numpy[method]['seconds']:.2f} s")
    print(f"  numpy algorithms alone {algorithms_numpy:.2f} s, whole process {whole_numpy:.2f} s "
          f"(best of {args.repeat})")
    print(f"  lab whole process {best:.3f} s (best of {args.repeat}; "
          f"gradients from Gram matrices: {summary['ridge_gradients_from_gram']})")
    print(f"  lab algorithms alone {algorithms_lab:.3f} s (sum of the jobs' times, one core "
          f"each; best of {args.repeat})")
    print(f"  ratio numpy / lab, algorithms alone: {algorithms_numpy / algorithms_lab:.1f}x")
    print(f"  ratio numpy algorithms / lab whole process: {algorithms_numpy / best:.1f}x")
    print(f"  ratio numpy / lab, whole processes: {whole_numpy / best:.1f}x")
    csr = w8a["data"]["csr_bytes"]
    print(f"w8a ridge, n = 500: lab peak memory {peak_kb / 1024:.1f} MiB = "
          f"{peak_kb * 1024 / csr:.2f} x the CSR matrix ({csr / 2**20:.1f} MiB); "
          f"{w8a_seconds:.1f} s, gradients from Gram matrices: "
          f"{w8a['ridge_gradients_from_gram']}")


if __name__ == "__main__":
    main()
