"""Reference SVRS and AccSVRS in numpy/scipy, written as a researcher would: scipy.sparse
node matrices, a Cholesky factor of H_1 + I/theta from scipy, the same update rules and
theory parameters as lab (notes section 2 and 3; reconstructed), the same stopping rule
||x - x*||^2 / ||x*||^2 <= tol from x0 = 0.

    python3 bench/svrs_numpy.py $LAB_DATA/libsvm/a8a --nodes 100 --lam 0.01

Run by bench/svrs_speed.py; prints a JSON line per method.
"""
import argparse
import json
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp


def read_libsvm(path):
    labels, rows, cols, vals = [], [], [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            r = len(labels)
            labels.append(1.0 if float(parts[0]) == 1.0 else -1.0)
            for item in parts[1:]:
                j, v = item.split(":")
                rows.append(r)
                cols.append(int(j) - 1)
                vals.append(float(v))
    a = sp.csr_matrix((vals, (rows, cols)), shape=(len(labels), max(cols) + 1))
    return a, np.array(labels)


class Ridge:
    """f_i(x) = ||A_i x - b_i||^2 / (2 m_i) + lam ||x||^2 / 2 on an iid split."""

    def __init__(self, a, b, nodes, lam, seed):
        order = np.random.default_rng(seed).permutation(a.shape[0])
        bounds = [i * a.shape[0] // nodes for i in range(nodes + 1)]
        self.a = [a[order[bounds[i]:bounds[i + 1]]] for i in range(nodes)]
        self.b = [b[order[bounds[i]:bounds[i + 1]]] for i in range(nodes)]
        self.n, self.d, self.lam = nodes, a.shape[1], lam

    def grad(self, i, x):
        a, b = self.a[i], self.b[i]
        return a.T @ (a @ x - b) / a.shape[0] + self.lam * x

    def full_grad(self, x):
        return sum(self.grad(i, x) for i in range(self.n)) / self.n

    def hessian(self, i):
        a = self.a[i]
        return (a.T @ a).toarray() / a.shape[0] + self.lam * np.eye(self.d)


def setup(problem):
    hs = [problem.hessian(i) for i in range(problem.n)]
    h = sum(hs) / problem.n
    rhs = sum(problem.a[i].T @ problem.b[i] / problem.a[i].shape[0] for i in range(problem.n))
    x_star = np.linalg.solve(h, rhs / problem.n)
    ev = np.linalg.eigvalsh(h)
    norms = [np.abs(np.linalg.eigvalsh(hi - h)).max() for hi in hs]
    return x_star, ev[0], float(np.sqrt(np.mean(np.square(norms)))), hs[0]


def svrs_epoch(problem, factor, theta, p, rng, w, gw, x, counts):
    """Until a coin with probability p stops it: sample i, v = grad_i(x) - grad_i(w) + gw,
    x <- x - (H_1 + I/theta)^{-1} v."""
    while True:
        i = rng.integers(problem.n)
        v = problem.grad(i, x) - problem.grad(i, w) + gw
        counts["comms"] += i != 0
        x = x - sla.cho_solve(factor, v)
        yield x
        if rng.random() < p:
            return


def svrs(problem, x_star, mu, delta, h1, tol, seed, budget):
    n, p = problem.n, 1.0 / problem.n
    theta = np.sqrt(p) / (4 * delta)
    factor = sla.cho_factor(h1 + np.eye(problem.d) / theta)
    rng = np.random.default_rng(seed)
    counts = {"comms": 0}
    x = np.zeros(problem.d)
    scale = x_star @ x_star
    while counts["comms"] < budget:
        w = x.copy()
        gw = problem.full_grad(w)
        counts["comms"] += n
        for x in svrs_epoch(problem, factor, theta, p, rng, w, gw, x, counts):
            if (x - x_star) @ (x - x_star) <= tol * scale:
                return counts["comms"]
    return None


def accsvrs(problem, x_star, mu, delta, h1, tol, seed, budget):
    n, p = problem.n, 1.0 / problem.n
    theta = np.sqrt(p) / (4 * delta)
    tau = min(np.sqrt(mu * theta / p) / 4, 0.25)
    alpha = theta / (8 * p * tau)
    factor = sla.cho_factor(h1 + np.eye(problem.d) / theta)
    rng = np.random.default_rng(seed)
    counts = {"comms": 0}
    y = np.zeros(problem.d)
    z = y.copy()
    scale = x_star @ x_star
    while counts["comms"] < budget:
        x = tau * z + (1 - tau) * y
        gx = problem.full_grad(x)
        counts["comms"] += n
        for y_new in svrs_epoch(problem, factor, theta, p, rng, x, gx, x.copy(), counts):
            pass
        gy = problem.full_grad(y_new)
        counts["comms"] += n
        g = p * ((problem.grad(0, x) - gx) - (problem.grad(0, y_new) - gy) + (x - y_new) / theta)
        z = (z + alpha * mu * y_new - alpha * g) / (1 + alpha * mu)
        y = y_new
        if (y - x_star) @ (y - x_star) <= tol * scale:
            return counts["comms"]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--lam", type=float, default=0.01)
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=2e6)
    args = parser.parse_args()
    a, b = read_libsvm(args.data)
    problem = Ridge(a, b, args.nodes, args.lam, args.seed)
    x_star, mu, delta, h1 = setup(problem)
    for name, method in [("svrs", svrs), ("accsvrs", accsvrs)]:
        start = time.perf_counter()
        comms = method(problem, x_star, mu, delta, h1, args.tol, args.seed, args.budget)
        seconds = time.perf_counter() - start
        comms = None if comms is None else int(comms)
        print(json.dumps({"method": name, "comms": comms, "seconds": seconds,
                          "delta_over_mu": delta / mu}))


if __name__ == "__main__":
    main()
