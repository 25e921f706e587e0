//! Deep linear networks W = W_N ... W_1 with W_j in R^{d_j x d_{j-1}} and whitened data
//! (X X^T = I), so the loss is L = 1/2 ||Z - W||_F^2 up to a constant, Z = Y X^T (notes
//! `nn_theory.md` (a), "Model and loss"). Parameters are the layers' entries, row-major,
//! layer 1 first.

use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;

use crate::flow::{Objective, VectorField};
use crate::linear_net;
use crate::random::standard_normal as normal;

pub struct DeepLinear {
    /// d_0 (input), d_1, ..., d_N (output).
    pub widths: Vec<usize>,
    pub z: Array2<f64>,
}

impl DeepLinear {
    /// N, the number of layers.
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }

    pub fn layers(&self, theta: &[f64]) -> Vec<Array2<f64>> {
        linear_net::unpack(&self.widths, theta)
    }

    pub fn pack(layers: &[Array2<f64>]) -> Vec<f64> {
        layers.iter().flat_map(|w| w.iter().copied()).collect()
    }

    /// W = W_N ... W_1.
    pub fn product(layers: &[Array2<f64>]) -> Array2<f64> {
        linear_net::product(layers)
    }

    /// D_j = W_{j+1}^T W_{j+1} - W_j W_j^T, j = 1..N-1: constant along gradient flow.
    pub fn balance(layers: &[Array2<f64>]) -> Vec<Array2<f64>> {
        (0..layers.len() - 1)
            .map(|j| layers[j + 1].t().dot(&layers[j + 1]) - layers[j].dot(&layers[j].t()))
            .collect()
    }
}

impl Objective for DeepLinear {
    fn dim(&self) -> usize {
        linear_net::parameter_count(&self.widths)
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        let w = Self::product(&self.layers(theta));
        0.5 * (&self.z - &w).mapv(|e| e * e).sum()
    }

    /// grad_{W_j} L = (W_N ... W_{j+1})^T (W - Z) (W_{j-1} ... W_1)^T.
    fn gradient(&self, theta: &[f64], out: &mut [f64]) {
        linear_net::chain_rule(
            &self.widths,
            theta,
            |w, g| {
                // Z in row-major order whatever its layout (a rank-one Z = u s v^T is stored
                // column-major).
                for ((g, w), z) in g.iter_mut().zip(w).zip(self.z.iter()) {
                    *g = w - z;
                }
            },
            out,
        );
    }
}

/// A random matrix with orthonormal columns (Gram-Schmidt of Gaussian columns), each column
/// signed so that its first non-negligible entry is positive.
pub fn orthonormal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let mut q = Array2::<f64>::zeros((rows, cols));
    let mut k = 0;
    while k < cols {
        let mut v: Array1<f64> = (0..rows).map(|_| normal(rng)).collect();
        for i in 0..k {
            let c = q.column(i).dot(&v);
            v -= &(&q.column(i) * c);
        }
        let norm = v.dot(&v).sqrt();
        if norm < 1e-8 {
            continue;
        }
        v /= norm;
        if v.iter().find(|x| x.abs() > 1e-12).is_some_and(|x| *x < 0.0) {
            v.mapv_inplace(|x| -x);
        }
        q.column_mut(k).assign(&v);
        k += 1;
    }
    q
}

/// Z = U diag(s) V^T with U (d_N x r) and V (d_0 x r) orthonormal.
pub struct Target {
    pub u: Array2<f64>,
    pub v: Array2<f64>,
    pub s: Vec<f64>,
}

impl Target {
    pub fn z(&self) -> Array2<f64> {
        let scaled = &self.u * &Array1::from(self.s.clone());
        scaled.dot(&self.v.t())
    }

    /// L* = 1/2 sum_{i >= 2} s_i^2: the best rank-one fit (a one-neuron layer caps the rank).
    pub fn optimal_loss(&self) -> f64 {
        0.5 * self.s[1..].iter().map(|x| x * x).sum::<f64>()
    }
}

/// The balanced rank-one dynamics W = sigma u v^T (notes (a), item 1):
/// sigma' = N sigma^(2-2/N) (u^T Z v - sigma), u' = sigma^(1-2/N) (I - u u^T) Z v,
/// v' = sigma^(1-2/N) (I - v v^T) Z^T u. State: (sigma, u, v).
pub struct ReducedRankOne<'a> {
    pub z: &'a Array2<f64>,
    pub depth: usize,
}

impl VectorField for ReducedRankOne<'_> {
    fn velocity(&self, x: &[f64], out: &mut [f64]) {
        let (dn, d0) = self.z.dim();
        let n = self.depth as f64;
        let sigma = x[0];
        let (u, v) = (&x[1..1 + dn], &x[1 + dn..1 + dn + d0]);
        // Z v and Z^T u go straight into the velocities' slots, then get projected.
        let (_, rest) = out.split_at_mut(1);
        let (du, dv) = rest.split_at_mut(dn);
        for (i, o) in du.iter_mut().enumerate() {
            *o = self.z.row(i).iter().zip(v).map(|(z, v)| z * v).sum();
        }
        for (j, o) in dv.iter_mut().enumerate() {
            *o = self.z.column(j).iter().zip(u).map(|(z, u)| z * u).sum();
        }
        let uzv: f64 = u.iter().zip(du.iter()).map(|(u, zv)| u * zv).sum();
        let a = sigma.abs().powf(1.0 - 2.0 / n);
        for (o, u) in du.iter_mut().zip(u) {
            *o = (*o - u * uzv) * a;
        }
        for (o, v) in dv.iter_mut().zip(v) {
            *o = (*o - v * uzv) * a;
        }
        out[0] = n * sigma.abs().powf(2.0 - 2.0 / n) * (uzv - sigma);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Streams::new(3).rng("test");
        let widths = vec![3, 2, 1, 2];
        // A general Z, and a rank-one target's (stored column-major by ndarray).
        let general = Array2::from_shape_fn((2, 3), |_| normal(&mut rng));
        let rank_one = Target {
            u: orthonormal(2, 1, &mut rng),
            v: orthonormal(3, 1, &mut rng),
            s: vec![2.0],
        }
        .z();
        assert!(rank_one.as_slice().is_none(), "the layout this case is for");
        for z in [general, rank_one] {
            let model = DeepLinear {
                widths: widths.clone(),
                z,
            };
            let theta: Vec<f64> = (0..model.dim()).map(|_| normal(&mut rng)).collect();
            let mut g = vec![0.0; theta.len()];
            model.gradient(&theta, &mut g);
            for k in 0..theta.len() {
                let (mut plus, mut minus) = (theta.clone(), theta.clone());
                plus[k] += 1e-6;
                minus[k] -= 1e-6;
                let fd = (model.loss(&plus) - model.loss(&minus)) / 2e-6;
                assert!((g[k] - fd).abs() < 1e-7, "{k}: {} vs {fd}", g[k]);
            }
        }
    }

    #[test]
    fn orthonormal_columns_are_orthonormal() {
        let q = orthonormal(5, 3, &mut Streams::new(1).rng("q"));
        let gram = q.t().dot(&q);
        for i in 0..3 {
            for j in 0..3 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((gram[(i, j)] - expected).abs() < 1e-12);
            }
        }
    }
}
