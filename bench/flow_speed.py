"""Time lab against numpy/scipy on the gradient-flow work of issue 4 and print the ratios.

    cargo build --release
    python3 bench/flow_speed.py

1. Deep linear network (4, 1, 2, 3), s = (3, 2, 1), balanced start of norm 0.05: gradient
   flow over [0, 20] with 401 output times at rtol 1e-10, atol 1e-12. lab (Dormand-Prince
   5(4), src/flow/dopri5.rs, outputs from its continuous extension) against scipy's
   solve_ivp(RK45), from the same Z and start (read from lab's manifest). Both are checked
   against a DOP853 reference at rtol 1e-13, and scipy is also timed at the rtol where its
   output error matches lab's.
2. Sparse linear landscape: 200 starts of gradient descent (eta 0.05, until the gradient
   norm is below 1e-9) on the disjoint-mask network (4, 2, 3), whitened data, lab (rayon,
   2 cores) against a numpy loop, on the same problem (read from lab's manifest); the starts
   differ (ChaCha8 against PCG64), so both print how many reached the optimum. lab's time
   includes the dense comparison set it also runs, so the ratio is conservative.
Two ratios each: the computations alone (lab's integration time from its `wall_s` column,
its descent time from the manifest), and lab's whole process (start-up, CSV, manifest, PNG
and SVG plots included) against numpy's computation alone.
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
import flow_numpy  # noqa: E402


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.path.join(HERE, "..", "target", "release", "lab"))
    parser.add_argument("--repeat", type=int, default=3, help="lab runs (the best is kept)")
    args = parser.parse_args()
    if not os.path.exists(args.lab):
        sys.exit(f"{args.lab} not found: run `cargo build --release` first")
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Deep linear flow.
        out = os.path.join(tmp, "dl")
        settings = ["widths=4,1,2,3", "spectrum=3,2,1", "init_scale=0.05", "t_end=20",
                    "outputs=400", "rtol=1e-10", "atol=1e-12"]
        lab_flow, lab_integration = float("inf"), float("inf")
        for _ in range(args.repeat):
            lab_flow = min(lab_flow, timed([args.lab, "run", "deeplinear", *settings, "--out",
                                            out, "--force", "-q"]))
            with open(out + ".csv") as f:
                last = f.read().strip().splitlines()[-1].split(",")
            lab_integration = min(lab_integration, float(last[-1]))
        with open(out + ".run.json") as f:
            summary = json.load(f)["summary"]
        z = np.array(summary["z"])
        theta0 = np.array(summary["start"])
        times = np.linspace(0.0, 20.0, 401)
        start = time.perf_counter()
        sol, loss = flow_numpy.deep_linear_flow([4, 1, 2, 3], z, theta0, times, 1e-10, 1e-12)
        scipy_flow = time.perf_counter() - start
        with open(out + ".csv") as f:
            last = f.read().strip().splitlines()[-1].split(",")
        lab_gap = float(last[3])
        scipy_gap = loss - summary["optimal_loss"]
        print("deep linear flow, (4,1,2,3), t in [0, 20], 401 outputs, rtol 1e-10:")
        lab_evaluations = summary["limits"]["flow"]["evaluations"]
        print(f"  scipy solve_ivp(RK45) {scipy_flow:.3f} s ({sol.nfev} evaluations), "
              f"lab whole process {lab_flow:.3f} s (best of {args.repeat}, "
              f"{lab_evaluations} evaluations)")
        print(f"  final loss gap: lab {lab_gap:.3e}, scipy {scipy_gap:.3e}")
        print(f"  lab integration alone (wall_s: the flow, the reduced ODE beside it and each "
              f"output row's SVD) {lab_integration * 1e3:.2f} ms (best of {args.repeat})")
        print(f"  ratio scipy / lab: {scipy_flow / lab_integration:.1f}x on the integration, "
              f"{scipy_flow / lab_flow:.1f}x against lab's whole process")
        # The same accuracy: both interpolate their outputs, scipy with a quartic, lab with a
        # quintic bootstrapped from DOPRI5's quartic (two more evaluations in a step holding
        # an output), so at equal rtol lab's outputs are more accurate. Errors of the loss at
        # the outputs against a DOP853 reference at rtol 1e-13, and scipy at the rtol that
        # matches lab's error.
        ref, ref_loss = flow_numpy.deep_linear_flow([4, 1, 2, 3], z, theta0, times, 1e-13,
                                                    1e-16, method="DOP853", all_losses=True)
        ref_sv1 = flow_numpy.top_singular_values([4, 1, 2, 3], ref.y)
        with open(out + ".csv") as f:
            lines = f.read().strip().splitlines()
        head = lines[0].split(",")
        rows = [line.split(",") for line in lines[1:]]
        lab_losses = np.array([float(r[head.index("loss")]) for r in rows])
        lab_sv1 = np.array([float(r[head.index("sv_1")]) for r in rows])
        print(f"  output error against a DOP853 reference at rtol 1e-13: lab loss "
              f"{np.max(np.abs(lab_losses - ref_loss)):.1e}, sv_1 "
              f"{np.max(np.abs(lab_sv1 - ref_sv1)):.1e}")
        for rtol in (1e-10, 1e-11):
            start = time.perf_counter()
            sol, losses = flow_numpy.deep_linear_flow([4, 1, 2, 3], z, theta0, times, rtol,
                                                      rtol * 1e-2, all_losses=True)
            spent = time.perf_counter() - start
            sv1 = flow_numpy.top_singular_values([4, 1, 2, 3], sol.y)
            print(f"  scipy at rtol {rtol:g}: error loss {np.max(np.abs(losses - ref_loss)):.1e}, "
                  f"sv_1 {np.max(np.abs(sv1 - ref_sv1)):.1e}; {spent:.3f} s, "
                  f"{spent / lab_integration:.1f}x lab's integration")

        # lab at a tighter rtol: where both its errors are below those of the old
        # integration to every output time (loss 1.4e-10, sv_1 4.0e-10 at rtol 1e-10).
        tight = os.path.join(tmp, "dl-tight")
        tight_settings = [x for x in settings if not x.startswith(("rtol", "atol"))]
        tight_seconds = float("inf")
        for _ in range(args.repeat):
            subprocess.run([args.lab, "run", "deeplinear", *tight_settings, "rtol=3e-11",
                            "atol=3e-13", "--out", tight, "--force", "-q"], check=True)
            with open(tight + ".csv") as f:
                rows = [line.split(",") for line in f.read().strip().splitlines()[1:]]
            tight_seconds = min(tight_seconds, float(rows[-1][head.index("wall_s")]))
        tight_loss = np.array([float(r[head.index("loss")]) for r in rows])
        tight_sv1 = np.array([float(r[head.index("sv_1")]) for r in rows])
        print(f"  lab at rtol 3e-11: error loss {np.max(np.abs(tight_loss - ref_loss)):.1e}, sv_1 "
              f"{np.max(np.abs(tight_sv1 - ref_sv1)):.1e}; {tight_seconds * 1e3:.2f} ms (best of "
              f"{args.repeat}), scipy at "
              f"rtol 1e-11 / lab = {spent / tight_seconds:.1f}x")

        # 2. Sparse landscape sweep.
        out = os.path.join(tmp, "sl")
        settings = ["widths=4,2,3", "mask=disjoint", "correlation=0", "starts=200",
                    "eta=0.05", "grad_tol=1e-9", "iterations=20000"]
        lab_sweep = min(timed([args.lab, "run", "sparselinear", *settings, "--out", out,
                               "--force", "-q"]) for _ in range(args.repeat))
        with open(out + ".run.json") as f:
            summary = json.load(f)["summary"]
        problem = summary["problem"]
        sparse = summary["landscape"]["sparse"]
        start = time.perf_counter()
        losses = flow_numpy.sparse_sweep(
            [4, 2, 3], np.array(problem["first_mask"]), np.array(problem["sigma"]),
            np.array(problem["c"]), problem["k0"], 200, 0.5, 0.05, 20000, 1e-9, 0)
        numpy_sweep = time.perf_counter() - start
        at_opt = int(np.sum(np.abs(losses - sparse["optimum"]) <= 1e-7))
        print("sparse linear landscape, (4,2,3) disjoint, whitened, 200 starts of GD:")
        print(f"  numpy {numpy_sweep:.2f} s ({at_opt}/200 at the optimum), lab whole process "
              f"{lab_sweep:.3f} s ({sparse['starts_at_optimum']}/200; plus the dense set)")
        lab_descent = sparse["descent_seconds"]
        print(f"  lab's 200 sparse starts alone {lab_descent:.3f} s (2 cores)")
        print(f"  ratio numpy / lab: {numpy_sweep / lab_descent:.1f}x on the starts, "
              f"{numpy_sweep / lab_sweep:.1f}x against lab's whole process")


if __name__ == "__main__":
    main()
