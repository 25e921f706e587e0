//! Masked deep linear networks f(x) = (M_N . W_N) ... (M_1 . W_1) x with fixed 0/1 masks,
//! squared loss over a population with covariance Sigma and teacher A:
//! L(W) = 1/2 tr(W Sigma W^T) - tr(W C^T) + k0, C = A Sigma, k0 = 1/2 tr(A Sigma A^T) + 1/2
//! noise^2 d_y, for the product W (notes `nn_theory.md` (c), "Model").

use ndarray::{Array2, Axis};

use crate::flow::Objective;
use crate::linear_net;

pub struct SparseLinear {
    /// d_0 (inputs), ..., d_N (outputs).
    pub widths: Vec<usize>,
    /// masks[j] has the shape of layer j+1.
    pub masks: Vec<Array2<f64>>,
    pub sigma: Array2<f64>,
    pub c: Array2<f64>,
    pub k0: f64,
}

impl SparseLinear {
    /// The masked layers M_j . W_j.
    pub fn layers(&self, theta: &[f64]) -> Vec<Array2<f64>> {
        linear_net::unpack(&self.widths, theta)
            .into_iter()
            .zip(&self.masks)
            .map(|(w, m)| w * m)
            .collect()
    }

    pub fn product(layers: &[Array2<f64>]) -> Array2<f64> {
        linear_net::product(layers)
    }

    /// The loss of a product W.
    pub fn loss_of_product(&self, w: &Array2<f64>) -> f64 {
        0.5 * (w.dot(&self.sigma) * w).sum() - (w * &self.c).sum() + self.k0
    }

    /// Inputs with an unmasked path to output k (the support a scalar output can use).
    pub fn reachable_inputs(&self, output: usize) -> Vec<usize> {
        let mut reach = self.masks[self.masks.len() - 1]
            .row(output)
            .mapv(|m| f64::from(u8::from(m != 0.0)));
        for mask in self.masks[..self.masks.len() - 1].iter().rev() {
            reach = reach.dot(mask).mapv(|v| f64::from(u8::from(v > 0.0)));
        }
        (0..reach.len()).filter(|&i| reach[i] > 0.0).collect()
    }
}

impl Objective for SparseLinear {
    fn dim(&self) -> usize {
        linear_net::parameter_count(&self.widths)
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        self.loss_of_product(&Self::product(&self.layers(theta)))
    }

    /// grad_{W_j} L = M_j . (S_j^T G P_{j-1}^T) with G = W Sigma - C the gradient in W.
    fn gradient(&self, theta: &[f64], out: &mut [f64]) {
        let masks = || self.masks.iter().flat_map(|m| m.iter());
        let masked: Vec<f64> = theta.iter().zip(masks()).map(|(t, m)| t * m).collect();
        let d0 = self.widths[0];
        let sigma = self
            .sigma
            .as_slice()
            .expect("Sigma is standard (row-major)");
        let c = self.c.as_slice().expect("C is standard (row-major)");
        linear_net::chain_rule(
            &self.widths,
            &masked,
            |w, g| {
                // G = W Sigma - C.
                for (r, w_row) in w.chunks(d0).enumerate() {
                    for j in 0..d0 {
                        let column = (0..d0).map(|k| w_row[k] * sigma[k * d0 + j]);
                        g[r * d0 + j] = column.sum::<f64>() - c[r * d0 + j];
                    }
                }
            },
            out,
        );
        for (o, m) in out.iter_mut().zip(masks()) {
            *o *= m;
        }
    }
}

/// Sigma_ij = rho^|i - j| (AR(1)); rho = 0 is whitened data.
pub fn ar1_covariance(d: usize, rho: f64) -> Array2<f64> {
    Array2::from_shape_fn((d, d), |(i, j)| rho.powi((i as i32 - j as i32).abs()))
}

/// Rows of `m` restricted to the columns `cols`.
pub fn columns(m: &Array2<f64>, cols: &[usize]) -> Array2<f64> {
    m.select(Axis(1), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;
    use crate::random::standard_normal as normal;

    #[test]
    fn gradient_matches_finite_differences_and_respects_the_masks() {
        let mut rng = Streams::new(2).rng("t");
        let widths = vec![4, 3, 2];
        let masks = vec![
            Array2::from_shape_fn((3, 4), |(i, j)| f64::from(u8::from((i + j) % 2 == 0))),
            Array2::from_elem((2, 3), 1.0),
        ];
        let sigma = ar1_covariance(4, 0.6);
        let a = Array2::from_shape_fn((2, 4), |_| normal(&mut rng));
        let model = SparseLinear {
            widths,
            masks,
            c: a.dot(&sigma),
            sigma,
            k0: 1.0,
        };
        let theta: Vec<f64> = (0..model.dim()).map(|_| normal(&mut rng)).collect();
        let mut g = vec![0.0; theta.len()];
        model.gradient(&theta, &mut g);
        for k in 0..theta.len() {
            let (mut p, mut m) = (theta.clone(), theta.clone());
            p[k] += 1e-6;
            m[k] -= 1e-6;
            let fd = (model.loss(&p) - model.loss(&m)) / 2e-6;
            assert!((g[k] - fd).abs() < 1e-7, "{k}: {} vs {fd}", g[k]);
        }
        // Masked-out weights get no gradient (and the finite difference agrees: 0).
        assert_eq!(g[1], 0.0);
    }

    #[test]
    fn reachable_inputs_follow_unmasked_paths() {
        let masks = vec![
            Array2::from_shape_vec((2, 4), vec![1., 1., 0., 0., 0., 0., 1., 0.]).unwrap(),
            Array2::from_shape_vec((1, 2), vec![0., 1.]).unwrap(),
        ];
        let model = SparseLinear {
            widths: vec![4, 2, 1],
            masks,
            sigma: Array2::eye(4),
            c: Array2::zeros((1, 4)),
            k0: 0.0,
        };
        assert_eq!(model.reachable_inputs(0), vec![2]);
    }
}
