"""Reference implementations for bench/flow_speed.py, written as a researcher would with
numpy and scipy:

* the gradient flow of a deep linear network, L = ||Z - W_N...W_1||^2 / 2, integrated by
  scipy's solve_ivp (RK45 = Dormand-Prince 5(4)) with the same rtol/atol and output times;
* the sparse-linear landscape sweep: gradient descent from many Gaussian starts on the
  masked network's population loss until the gradient norm is below grad_tol.
"""
import numpy as np
from scipy.integrate import solve_ivp


def deep_linear_flow(widths, z, theta0, times, rtol, atol, method="RK45", all_losses=False):
    shapes = [(widths[j], widths[j - 1]) for j in range(1, len(widths))]
    sizes = [r * c for r, c in shapes]
    cuts = np.cumsum([0] + sizes)

    def layers(theta):
        return [theta[cuts[j]:cuts[j + 1]].reshape(shapes[j]) for j in range(len(shapes))]

    def rhs(_t, theta):
        ws = layers(theta)
        prefix = [np.eye(widths[0])]
        for w in ws:
            prefix.append(w @ prefix[-1])
        suffix = [np.eye(widths[-1])] * (len(ws) + 1)
        for j in range(len(ws) - 1, -1, -1):
            suffix[j] = suffix[j + 1] @ ws[j]
        err = prefix[-1] - z
        return -np.concatenate([(suffix[j + 1].T @ err @ prefix[j].T).ravel()
                                for j in range(len(ws))])

    sol = solve_ivp(rhs, (times[0], times[-1]), theta0, method=method, t_eval=times,
                    rtol=rtol, atol=atol)

    def loss(theta):
        ws = layers(theta)
        w = ws[0]
        for layer in ws[1:]:
            w = layer @ w
        return 0.5 * np.sum((z - w) ** 2)

    if all_losses:
        return sol, np.array([loss(sol.y[:, k]) for k in range(sol.y.shape[1])])
    return sol, loss(sol.y[:, -1])


def top_singular_values(widths, states):
    """The largest singular value of the product W_N ... W_1 at each column of `states`."""
    shapes = [(widths[j], widths[j - 1]) for j in range(1, len(widths))]
    cuts = np.cumsum([0] + [r * c for r, c in shapes])
    out = []
    for k in range(states.shape[1]):
        w = np.eye(widths[0])
        for j, shape in enumerate(shapes):
            w = states[cuts[j]:cuts[j + 1], k].reshape(shape) @ w
        out.append(np.linalg.svd(w, compute_uv=False)[0])
    return np.array(out)


def sparse_sweep(widths, mask, sigma, c, k0, starts, init_scale, eta, iterations, grad_tol,
                 seed):
    rng = np.random.default_rng(seed)
    shapes = [(widths[j], widths[j - 1]) for j in range(1, len(widths))]
    masks = [mask] + [np.ones(s) for s in shapes[1:]]
    losses = []
    for _ in range(starts):
        ws = [init_scale * rng.standard_normal(s) * m for s, m in zip(shapes, masks)]
        for _step in range(iterations):
            prefix = [np.eye(widths[0])]
            for w in ws:
                prefix.append(w @ prefix[-1])
            suffix = [np.eye(widths[-1])] * (len(ws) + 1)
            for j in range(len(ws) - 1, -1, -1):
                suffix[j] = suffix[j + 1] @ ws[j]
            g = prefix[-1] @ sigma - c
            grads = [(suffix[j + 1].T @ g @ prefix[j].T) * masks[j] for j in range(len(ws))]
            if np.sqrt(sum(np.sum(x * x) for x in grads)) <= grad_tol:
                break
            ws = [w - eta * x for w, x in zip(ws, grads)]
        w = ws[0]
        for layer in ws[1:]:
            w = layer @ w
        losses.append(0.5 * np.sum((w @ sigma) * w) - np.sum(w * c) + k0)
    return np.array(losses)
