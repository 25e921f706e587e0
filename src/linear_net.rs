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

/// The inverse of [`unpack`], written into `out` (the flow's gradient buffer).
pub fn pack_into(layers: &[Array2<f64>], out: &mut [f64]) {
    for (o, x) in out.iter_mut().zip(layers.iter().flat_map(|w| w.iter())) {
        *o = *x;
    }
}

/// W = W_N ... W_1 (layers[0] is W_1).
pub fn product(layers: &[Array2<f64>]) -> Array2<f64> {
    let mut w = layers[0].clone();
    for layer in &layers[1..] {
        w = layer.dot(&w);
    }
    w
}

/// The gradient of a loss of the product with respect to every layer:
/// grad_{W_j} = (W_N ... W_{j+1})^T G (W_{j-1} ... W_1)^T, where `g(W)` is the loss's
/// gradient in W. `input` and `output` are d_0 and d_N.
pub fn layer_gradients(
    layers: &[Array2<f64>],
    input: usize,
    output: usize,
    g: impl FnOnce(&Array2<f64>) -> Array2<f64>,
) -> Vec<Array2<f64>> {
    let n = layers.len();
    // prefix[j] = W_j ... W_1 (prefix[0] = I); suffix[j] = W_N ... W_{j+1}.
    let mut prefix = vec![Array2::eye(input)];
    for layer in layers {
        let next = layer.dot(prefix.last().expect("non-empty"));
        prefix.push(next);
    }
    let mut suffix = vec![Array2::eye(output); n + 1];
    for j in (0..n).rev() {
        suffix[j] = suffix[j + 1].dot(&layers[j]);
    }
    let grad = g(&prefix[n]);
    (0..n)
        .map(|j| suffix[j + 1].t().dot(&grad).dot(&prefix[j].t()))
        .collect()
}
