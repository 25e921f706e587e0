//! The networks of a directional run, their population objective and online batches.
//!
//! Parameters are one flat vector: a linear network's layers W_1 (h x d), ..., W_N (1 x h),
//! each row-major; the two-node network's (w_1, w_2, v_1, v_2) with w_k in R^d.

use ndarray::Array2;
use rand_chacha::ChaCha8Rng;

use super::population::{Population, RadialTable, labelled_sample, norm, two_node};
use crate::flow::Objective;
use crate::linear_net::{chain_rule, parameter_count, product, unpack};
use crate::vector::dot;

#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// f(x) = W_N ... W_1 x with widths [d, h, ..., h, 1]; N = 1 is the linear predictor.
    Linear { widths: Vec<usize> },
    /// f(x) = v_1 relu(w_1^T x) + v_2 relu(w_2^T x); v = (1, -1) fixed unless trained.
    TwoNode { dim: usize, train_second: bool },
}

impl Network {
    pub fn dim(&self) -> usize {
        match self {
            Network::Linear { widths } => parameter_count(widths),
            Network::TwoNode { dim, .. } => 2 * dim + 2,
        }
    }

    /// Input dimension d.
    pub fn input(&self) -> usize {
        match self {
            Network::Linear { widths } => widths[0],
            Network::TwoNode { dim, .. } => *dim,
        }
    }

    /// N, the number of layers.
    pub fn depth(&self) -> usize {
        match self {
            Network::Linear { widths } => widths.len() - 1,
            Network::TwoNode { .. } => 2,
        }
    }

    pub fn layers(&self, theta: &[f64]) -> Vec<Array2<f64>> {
        match self {
            Network::Linear { widths } => unpack(widths, theta),
            Network::TwoNode { .. } => Vec::new(),
        }
    }

    /// The end-to-end predictor beta = W_N ... W_1 of a linear network.
    pub fn predictor(&self, theta: &[f64]) -> Vec<f64> {
        match self {
            Network::Linear { .. } => product(&self.layers(theta)).row(0).to_vec(),
            Network::TwoNode { .. } => Vec::new(),
        }
    }

    /// The units (w_k, v_k) of a two-node network.
    pub fn units<'a>(&self, theta: &'a [f64]) -> [(&'a [f64], f64); 2] {
        let d = self.input();
        [
            (&theta[..d], theta[2 * d]),
            (&theta[d..2 * d], theta[2 * d + 1]),
        ]
    }

    /// Whether a two-node state lies in the plane of w* = e_1 and e_2, where its population
    /// loss is computed (online SGD leaves it; linear networks are always covered).
    pub fn population_covers(&self, theta: &[f64]) -> bool {
        match self {
            Network::Linear { .. } => true,
            Network::TwoNode { dim, .. } => self
                .units(theta)
                .iter()
                .all(|(w, _)| w[2..*dim].iter().all(|x| *x == 0.0)),
        }
    }

    /// The network's output at x.
    pub fn output(&self, theta: &[f64], x: &[f64]) -> f64 {
        match self {
            Network::Linear { .. } => dot(&self.predictor(theta), x),
            Network::TwoNode { .. } => self
                .units(theta)
                .iter()
                .map(|(w, v)| v * dot(w, x).max(0.0))
                .sum(),
        }
    }

    /// Conserved by the flow: the balance matrices D_j = W_{j+1}^T W_{j+1} - W_j W_j^T of a
    /// linear network, or ||w_k||^2 - v_k^2 of a two-node network with a trained second
    /// layer (flattened).
    pub fn conserved(&self, theta: &[f64]) -> Vec<f64> {
        match self {
            Network::Linear { .. } => {
                let layers = self.layers(theta);
                layers
                    .windows(2)
                    .flat_map(|p| {
                        let d = p[1].t().dot(&p[1]) - p[0].dot(&p[0].t());
                        d.into_iter().collect::<Vec<_>>()
                    })
                    .collect()
            }
            Network::TwoNode { train_second, .. } => {
                if !*train_second {
                    return Vec::new();
                }
                self.units(theta)
                    .iter()
                    .map(|(w, v)| dot(w, w) - v * v)
                    .collect()
            }
        }
    }

    /// Chain rule from a gradient g in beta to every layer of a linear network.
    fn linear_gradient(&self, theta: &[f64], g: &[f64], out: &mut [f64]) {
        let Network::Linear { widths } = self else {
            unreachable!("the chain rule of a linear network")
        };
        chain_rule(widths, theta, |_, grad| grad.copy_from_slice(g), out);
    }

    /// The gradient of the mean loss of a batch of (y, x).
    pub fn batch_gradient(
        &self,
        population: &Population,
        theta: &[f64],
        batch: &[(f64, Vec<f64>)],
        out: &mut [f64],
    ) {
        let n = batch.len() as f64;
        let d = self.input();
        match self {
            Network::Linear { .. } => {
                let beta = self.predictor(theta);
                let mut g = vec![0.0; d];
                for (y, x) in batch {
                    let slope = population.loss.slope(y * dot(&beta, x));
                    for (gi, xi) in g.iter_mut().zip(x) {
                        *gi += slope * y * xi / n;
                    }
                }
                self.linear_gradient(theta, &g, out);
            }
            Network::TwoNode { train_second, .. } => {
                out.iter_mut().for_each(|o| *o = 0.0);
                let units = self.units(theta);
                for (y, x) in batch {
                    let f = self.output(theta, x);
                    let slope = population.loss.slope(y * f) * y / n;
                    for (k, (w, v)) in units.iter().enumerate() {
                        let z = dot(w, x);
                        if z > 0.0 {
                            for (o, xi) in out[k * d..(k + 1) * d].iter_mut().zip(x) {
                                *o += slope * v * xi;
                            }
                            if *train_second {
                                out[2 * d + k] += slope * z;
                            }
                        }
                    }
                }
            }
        }
    }

    /// A fresh batch of `size` labelled points.
    pub fn draw_batch(
        population: &Population,
        dim: usize,
        size: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<(f64, Vec<f64>)> {
        (0..size)
            .map(|_| labelled_sample(&population.law, dim, rng))
            .collect()
    }
}

/// The angle between u and +-e_1 (w* = e_1), accurate however small: atan2 of the norm of
/// the other coordinates and the first.
pub fn angle_to_axis(u: &[f64], sign: f64) -> f64 {
    let across = norm(&u[1..]);
    across.atan2(sign * u[0])
}

/// The population loss of a network as an [`Objective`] for the flow and gradient descent.
pub struct PopulationObjective<'a> {
    pub network: &'a Network,
    pub population: Population,
    /// The radial table of a two-node network.
    pub table: Option<&'a RadialTable>,
}

impl PopulationObjective<'_> {
    /// The loss, filling `out` with the gradient.
    pub fn evaluate(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        match self.network {
            Network::Linear { .. } => {
                let beta = self.network.predictor(theta);
                let mut g = vec![0.0; beta.len()];
                let loss = self.population.linear(&beta, &mut g);
                self.network.linear_gradient(theta, &g, out);
                loss
            }
            Network::TwoNode { dim, train_second } => {
                let table = self
                    .table
                    .expect("a two-node objective has its radial table");
                let d = *dim;
                let units = self.network.units(theta);
                let plane = |w: &[f64]| [w[0], w[1]];
                let (mut gw, mut gv) = ([[0.0; 2]; 2], [0.0; 2]);
                let loss = two_node(
                    table,
                    [plane(units[0].0), plane(units[1].0)],
                    [units[0].1, units[1].1],
                    &mut gw,
                    &mut gv,
                );
                out.iter_mut().for_each(|o| *o = 0.0);
                for k in 0..2 {
                    out[k * d] = gw[k][0];
                    out[k * d + 1] = gw[k][1];
                    if *train_second {
                        out[2 * d + k] = gv[k];
                    }
                }
                loss
            }
        }
    }
}

impl Objective for PopulationObjective<'_> {
    fn dim(&self) -> usize {
        self.network.dim()
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        let mut scratch = vec![0.0; theta.len()];
        self.evaluate(theta, &mut scratch)
    }

    fn gradient(&self, theta: &[f64], out: &mut [f64]) {
        self.evaluate(theta, out);
    }
}
