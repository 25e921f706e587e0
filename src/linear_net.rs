//! Linear networks: their widths, products of layers and the chain rule through them, and
//! singular values, shared by the deep linear (nn_theory (a)), sparse linear (nn_theory (c))
//! and directional (nn_theory (b)) experiments.

use anyhow::Result;
use ndarray::Array2;

/// Widths d_0, ..., d_N of a network of at least two layers (a spec's `widths`).
pub fn check_widths(widths: &[usize]) -> Result<()> {
    if widths.len() < 3 {
        return Err(crate::input_error!(
            "widths = {widths:?} has {} layer(s): expected at least 2 layers (3 widths)",
            widths.len().saturating_sub(1)
        ));
    }
    Ok(())
}

/// The number of weights of layers W_j in R^{d_j x d_{j-1}} for widths d_0, ..., d_N.
pub fn parameter_count(widths: &[usize]) -> usize {
    widths.windows(2).map(|p| p[0] * p[1]).sum()
}

/// Singular values of a small matrix, descending.
pub fn singular_values(w: &Array2<f64>) -> Vec<f64> {
    let (r, c) = w.dim();
    let m = faer::Mat::<f64>::from_fn(r, c, |i, j| w[(i, j)]);
    m.singular_values().unwrap_or_default()
}

/// The layers W_1, ..., W_N stored one after the other in `theta`, each row-major.
pub fn unpack(widths: &[usize], theta: &[f64]) -> Vec<Array2<f64>> {
    let mut at = 0;
    widths
        .windows(2)
        .map(|p| {
            let (rows, cols) = (p[1], p[0]);
            let block = theta[at..at + rows * cols].to_vec();
            at += rows * cols;
            Array2::from_shape_vec((rows, cols), block).expect("the widths fit the parameters")
        })
        .collect()
}

/// W = W_N ... W_1 (layers[0] is W_1).
pub fn product(layers: &[Array2<f64>]) -> Array2<f64> {
    let mut w = layers[0].clone();
    for layer in &layers[1..] {
        w = layer.dot(&w);
    }
    w
}

/// The gradient of a loss of the product W = W_N ... W_1 with respect to every layer, on the
/// layers stored flat as in [`unpack`]: grad_{W_j} = (W_N ... W_{j+1})^T G (W_{j-1} ... W_1)^T,
/// where `g(W, G)` writes the loss's gradient G in W (both d_N x d_0, row-major). The
/// products are formed once (P_j = W_j ... W_1) and G is carried back through the layers
/// (B_N = G, B_{j-1} = W_j^T B_j, grad_{W_j} = B_j P_{j-1}^T), with one scratch allocation:
/// the flows call this at every stage of every step, on layers of a few units.
pub fn chain_rule(
    widths: &[usize],
    theta: &[f64],
    g: impl FnOnce(&[f64], &mut [f64]),
    out: &mut [f64],
) {
    let n = widths.len() - 1;
    let d0 = widths[0];
    let widest = widths.iter().max().copied().unwrap_or(0) * d0;
    // P_1..P_N (d_j x d_0 each), then two buffers for B.
    let prefix_len: usize = widths[1..].iter().map(|d| d * d0).sum();
    let mut scratch = vec![0.0; prefix_len + 2 * widest];
    let (prefixes, rest) = scratch.split_at_mut(prefix_len);
    let (mut b, mut b_next) = rest.split_at_mut(widest);
    // Offsets of the layers in theta and of the prefixes in `prefixes`.
    let mut layer_at = Vec::with_capacity(n + 1);
    let mut prefix_at = Vec::with_capacity(n + 1);
    let (mut l, mut p) = (0, 0);
    for j in 1..=n {
        layer_at.push(l);
        prefix_at.push(p);
        l += widths[j] * widths[j - 1];
        p += widths[j] * d0;
    }
    for j in 1..=n {
        let (rows, inner) = (widths[j], widths[j - 1]);
        let w = &theta[layer_at[j - 1]..layer_at[j - 1] + rows * inner];
        let (before, this) = prefixes.split_at_mut(prefix_at[j - 1]);
        let this = &mut this[..rows * d0];
        if j == 1 {
            this.copy_from_slice(w);
            continue;
        }
        let previous = &before[prefix_at[j - 2]..prefix_at[j - 2] + inner * d0];
        for r in 0..rows {
            let row = &mut this[r * d0..(r + 1) * d0];
            row.fill(0.0);
            for k in 0..inner {
                let a = w[r * inner + k];
                for (o, x) in row.iter_mut().zip(&previous[k * d0..(k + 1) * d0]) {
                    *o += a * x;
                }
            }
        }
    }
    let dn = widths[n];
    g(
        &prefixes[prefix_at[n - 1]..prefix_at[n - 1] + dn * d0],
        &mut b[..dn * d0],
    );
    for j in (1..=n).rev() {
        let (rows, inner) = (widths[j], widths[j - 1]);
        let grad = &mut out[layer_at[j - 1]..layer_at[j - 1] + rows * inner];
        let bj = &b[..rows * d0];
        if j == 1 {
            grad.copy_from_slice(bj);
            break;
        }
        // grad_{W_j}[r][c] = sum_k B_j[r][k] P_{j-1}[c][k].
        let previous = &prefixes[prefix_at[j - 2]..prefix_at[j - 2] + inner * d0];
        for r in 0..rows {
            let b_row = &bj[r * d0..(r + 1) * d0];
            for c in 0..inner {
                grad[r * inner + c] = b_row
                    .iter()
                    .zip(&previous[c * d0..(c + 1) * d0])
                    .map(|(x, y)| x * y)
                    .sum();
            }
        }
        // B_{j-1} = W_j^T B_j.
        let w = &theta[layer_at[j - 1]..layer_at[j - 1] + rows * inner];
        let next = &mut b_next[..inner * d0];
        next.fill(0.0);
        for r in 0..rows {
            let b_row = &bj[r * d0..(r + 1) * d0];
            for c in 0..inner {
                let a = w[r * inner + c];
                for (o, x) in next[c * d0..(c + 1) * d0].iter_mut().zip(b_row) {
                    *o += a * x;
                }
            }
        }
        std::mem::swap(&mut b, &mut b_next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_rule_matches_finite_differences() {
        // L(theta) = sum_ij W_ij^3 / 3 of the product: G = W .^ 2, through four layers of
        // mixed widths.
        let widths = [3, 2, 4, 1, 2];
        let dim = parameter_count(&widths);
        let theta: Vec<f64> = (0..dim)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 6.0)
            .collect();
        let loss = |theta: &[f64]| {
            let w = product(&unpack(&widths, theta));
            w.iter().map(|x| x.powi(3) / 3.0).sum::<f64>()
        };
        let mut grad = vec![0.0; dim];
        chain_rule(
            &widths,
            &theta,
            |w, g| {
                for (g, w) in g.iter_mut().zip(w) {
                    *g = w * w;
                }
            },
            &mut grad,
        );
        let eps = 1e-6;
        for i in 0..dim {
            let (mut plus, mut minus) = (theta.clone(), theta.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps);
            assert!(
                (grad[i] - numeric).abs() < 1e-8,
                "{i}: {} vs {numeric}",
                grad[i]
            );
        }
    }
}
