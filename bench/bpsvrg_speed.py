"""Time lab's training epoch and per-sample gradient norms against PyTorch's and print ratios.

    cargo build --release
    pip install torch --index-url https://download.pytorch.org/whl/cpu   # bench only, never CI
    python3 bench/bpsvrg_speed.py [--threads 2]

The same work in both, on Fashion-MNIST (Debian's dataset-fashion-mnist): one epoch of plain
SGD (step 0.1, batch 64) over the 60,000 training images for the MLP 784-256-10 and for the
CNN of `model = "cnn"` (conv 8 - BN - ReLU - conv 16 stride 2 - BN - ReLU - max pool - dense),
f32, on the same number of threads; then the per-sample gradient norms of 10,000 training
images (lab: its metric pass, which also computes the loss, accuracy and mean gradient;
PyTorch: torch.func vmap(grad), BN in eval mode). The batches' order differs (lab's ChaCha8
permutation, numpy's for PyTorch): the work does not. lab's times are its manifest's
(`epoch_seconds`: training steps only; `metric_pass_seconds`), PyTorch's from
bench/bpsvrg_torch.py, each excluding data loading. Also lab's peak resident memory over the
whole CNN run (process: data, training, metrics).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def lab_run(lab, model, threads):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, model)
        cmd = ["/usr/bin/time", "-f", "%M", lab, "run", "bpsvrg", "dataset=fashion",
               "train_size=0", "test_size=0", f"model={model}", "hidden=256", "batch=64",
               "lr=0.1", "method=sgd", "seeds=1", "epochs=1", "metric_samples=10000",
               "landscape_points=0", "--out", out, "-q"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        done = subprocess.run(cmd, check=True, env=env, stderr=subprocess.PIPE, text=True)
        peak_kb = int(done.stderr.strip().splitlines()[-1])
        with open(out + ".run.json") as f:
            summary = json.load(f)["summary"]
    return summary["epoch_seconds"], summary["metric_pass_seconds"], peak_kb / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default=os.path.join(HERE, "..", "target", "release", "lab"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not os.path.exists(args.lab):
        sys.exit(f"{args.lab} not found: run `cargo build --release` first")
    torch = subprocess.run([sys.executable, os.path.join(HERE, "bpsvrg_torch.py"),
                            "--threads", str(args.threads)],
                           check=True, stdout=subprocess.PIPE, text=True).stdout
    ref = {m.group(1): float(m.group(2))
           for m in re.finditer(r"^torch (\S+) ([0-9.e+-]+)", torch, re.M)}
    print(f"Fashion-MNIST, {args.threads} threads, one epoch of SGD (60,000 images, batch 64) "
          "and per-sample gradient norms of 10,000 images:")
    for model in ["mlp", "cnn"]:
        epoch, norms, peak = lab_run(args.lab, model, args.threads)
        t_epoch = ref[f"{model}_epoch_seconds"]
        t_norms = ref[f"{model}_per_sample_norms_seconds_10000"]
        print(f"  {model}: epoch lab {epoch:.3f} s, torch {t_epoch:.3f} s: torch / lab = "
              f"{t_epoch / epoch:.2f}x")
        print(f"  {model}: per-sample norms lab {norms:.3f} s, torch {t_norms:.3f} s: "
              f"torch / lab = {t_norms / norms:.1f}x")
        print(f"  {model}: lab peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
