//! Dense vector arithmetic on slices, shared by the experiments that keep their parameters
//! in flat vectors (noise, directional, svrs). Inlined where called: these sit in the hot
//! loops of other modules.

/// a^T b, summed left to right (the order every experiment's outputs were recorded with).
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ||a||^2.
#[inline]
pub fn norm2(a: &[f64]) -> f64 {
    dot(a, a)
}

/// ||a||.
#[inline]
pub fn norm(a: &[f64]) -> f64 {
    norm2(a).sqrt()
}
