"""Reference PMD in numpy, written the way a researcher would: dense P (S, A, S),
np.linalg.solve for exact policy evaluation, a vectorized sort-based simplex projection.

Usage: python3 bench/pmd_numpy.py MDP_FILE GAMMA ETA ITERATIONS
Reads a `lab-mdp 1` file (from `lab run pmd --export-mdp FILE`), finds V* by policy iteration,
runs Euclidean PMD with a constant step from the uniform policy, and prints one JSON line:
the final ||V* - V^pi_k||_inf, the hitting iteration and the seconds spent (file reading
excluded, so the comparison favours numpy).
"""
import json
import sys
import time

import numpy as np


def read_mdp(path):
    with open(path) as f:
        lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
    assert lines[0] == ["lab-mdp", "1"], "not a lab-mdp 1 file"
    S, A = int(lines[1][1]), int(lines[2][1])
    P = np.zeros((S, A, S))
    r = np.zeros((S, A))
    for parts in lines[3:]:
        if parts[0] == "r":
            r[int(parts[1]), int(parts[2])] = float(parts[3])
        else:
            P[int(parts[1]), int(parts[2]), int(parts[3])] = float(parts[4])
    return P, r


def evaluate(P, r, pi, gamma):
    S = P.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.sum(pi * r, axis=1)
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)


def q_values(P, r, v, gamma):
    return r + gamma * P @ v


def project_rows_to_simplex(V):
    # Held-Wolfe-Crowder / Duchi et al.: sort, cumulative sums, threshold.
    S, A = V.shape
    U = -np.sort(-V, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    ind = np.arange(1, A + 1)
    cond = U - css / ind > 0
    rho = A - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(S), rho - 1] / rho
    return np.maximum(V - theta[:, None], 0.0)


def main():
    path, gamma, eta, iterations = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    P, r = read_mdp(path)
    S, A = r.shape
    start = time.perf_counter()
    pi0 = np.full((S, A), 1.0 / A)
    # V* by policy iteration from the greedy policy of Q^{pi_0}.
    v = evaluate(P, r, pi0, gamma)
    actions = np.argmax(q_values(P, r, v, gamma), axis=1)
    while True:
        pi = np.eye(A)[actions]
        v = evaluate(P, r, pi, gamma)
        q = q_values(P, r, v, gamma)
        best = np.argmax(q, axis=1)
        improve = q[np.arange(S), best] > q[np.arange(S), actions] + 1e-12
        if not improve.any():
            break
        actions = np.where(improve, best, actions)
    v_star = v
    q_star = q_values(P, r, v_star, gamma)
    optimal = q_star >= q_star.max(axis=1, keepdims=True) - 1e-10 / (1 - gamma)
    pi = pi0
    v = evaluate(P, r, pi, gamma)
    gaps, hit = [], None
    for k in range(iterations + 1):
        gaps.append(float(np.max(v_star - v)))
        if hit is None and not np.any(pi[~optimal] > 0):
            hit = k
        if k == iterations:
            break
        q = q_values(P, r, v, gamma)
        pi = project_rows_to_simplex(pi + eta * (q - q.max(axis=1, keepdims=True)))
        v = evaluate(P, r, pi, gamma)
    seconds = time.perf_counter() - start
    print(json.dumps({"final_gap": gaps[-1], "hitting_iteration": hit, "seconds": seconds}))


if __name__ == "__main__":
    main()
