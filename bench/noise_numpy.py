"""Reference implementation for bench/noise_speed.py, written as a researcher would with numpy:
the 200-start experiment of `lab run noise` (GD, weight-normalized GD, perturbed GD and its
mini-batch SGD variant on the two-layer CNN of Du et al., closed-form population gradients,
the paper's epoch schedule), vectorized over the starts.
"""
import numpy as np

PI = np.pi


def kernel(phi):
    return np.sin(phi) + (PI - phi) * np.cos(phi)


def population_gradient(w, a, ws, as_):
    """Gradients of L at every start: w (S, p), a (S, k); teacher ws (p,), as_ (k,)."""
    nw = np.linalg.norm(w, axis=1)
    ns = np.linalg.norm(ws)
    along = w @ ws / ns
    across = np.linalg.norm(w - np.outer(along, ws / ns), axis=1)
    phi = np.arctan2(across, along)
    g = kernel(phi)
    sa, sb = a.sum(axis=1), as_.sum()
    aa = a @ as_
    quad = (PI - 1) * np.sum(a * a, axis=1) + sa ** 2
    ga = (nw[:, None] ** 2 * ((PI - 1) * a + sa[:, None])
          - (nw * ns)[:, None] * ((g - 1)[:, None] * as_ + sb)) / (2 * PI)
    wh = w / nw[:, None]
    radial = nw * quad - ns * ((g - 1) * aa + sa * sb)
    gw = (radial[:, None] * wh
          - (ns * (PI - phi) * aa)[:, None] * (ws / ns - np.cos(phi)[:, None] * wh)) / (2 * PI)
    return gw, ga


def batch_gradient(w, a, ws, as_, z):
    """Mean squared-loss gradient over a batch z (S, B, k, p) at every start."""
    pre = np.einsum("sbkp,sp->sbk", z, w)
    act = np.maximum(pre, 0.0)
    f = np.einsum("sbk,sk->sb", act, a)
    fs = np.einsum("sbk,k->sb", np.maximum(np.einsum("sbkp,p->sbk", z, ws), 0.0), as_)
    r = f - fs
    b = z.shape[1]
    ga = np.einsum("sb,sbk->sk", r, act) / b
    mask = (pre > 0) * a[:, None, :]
    gw = np.einsum("sb,sbk,sbkp->sp", r, mask, z) / b
    return gw, ga


def normalized(w, a, ws, as_, z=None):
    n = np.linalg.norm(w, axis=1)
    unit = w / n[:, None]
    gw, ga = population_gradient(unit, a, ws, as_) if z is None else \
        batch_gradient(unit, a, ws, as_, z)
    gw = (gw - np.sum(gw * unit, axis=1)[:, None] * unit) / n[:, None]
    return gw, ga


def run(method, ws, as_, starts, epochs=20, iterations=400, lr=0.1, lr_decay=0.8, rho_w=36.0,
        rho_a=1.0, noise_decay=0.4, batch=4, init_a=0.1, seed=0):
    rng = np.random.default_rng(seed)
    p, k = ws.size, as_.size
    w = rng.standard_normal((starts, p))
    a = rng.uniform(-init_a, init_a, (starts, k))
    for t in range(epochs * iterations):
        e = t // iterations
        if method in ("gd", "wn_gd"):
            step = lr
            gw, ga = population_gradient(w, a, ws, as_) if method == "gd" else \
                normalized(w, a, ws, as_)
        else:
            step = lr * lr_decay ** e
            xi = rng.standard_normal((starts, p)) * rho_w * noise_decay ** e / np.sqrt(p)
            eps = rng.standard_normal((starts, k)) * rho_a * noise_decay ** e / np.sqrt(k)
            z = None if method == "pgd" else rng.standard_normal((starts, batch, k, p))
            gw, ga = normalized(w + xi, a + eps, ws, as_, z)
        w = w - step * gw
        a = a - step * ga
    if method != "gd":
        w = w / np.linalg.norm(w, axis=1)[:, None]
    return w, a
