//! Directional convergence of networks learning a linear separator from spherically
//! symmetric data.
//!
//! Paper: D. Lin, Z. Zhang, "Directional Convergence Analysis under Spherically Symmetric
//! Distribution", arXiv:2105.03879. Notes: `../shared/papers/nn_theory.md` (b). Only the
//! abstract could be read: the setting (x spherically symmetric, y = sign(w*^T x), zero
//! margin, population logistic or exponential loss) is inferred, and the rates checked here
//! are the notes' *derived* control rates, not the paper's theorems.
//!
//! The loss is the population one, by quadrature in the plane of w* and the predictor
//! (`population.rs`): a fixed sample has a positive margin, and GD on it would converge to
//! the sample's max-margin direction, not to w* (Soudry et al. 2018). Online fresh batches
//! are the stochastic counterpart.

pub mod claims;
mod figures;
pub mod model;
pub mod population;
pub mod spec;
pub mod verify;

use std::f64::consts::PI;
use std::time::Instant;

use anyhow::Result;
use ndarray::Array1;

use self::model::{Network, PopulationObjective, angle_to_axis};
use self::population::{Law, Loss, Population, RadialTable};
use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use self::spec::{DirectionalSpec, Init, LawName, LossName, Method, Model, SecondLayer, Spacing};
use crate::contract::{Cancel, ColumnKind, ColumnSpec, Ctx, Experiment, Report, Valid};
use crate::flow::{Objective, Tolerances, gradient_descent, gradient_flow_until};
use crate::random::standard_normal;
use crate::table::Cell;

pub struct DirectionalExperiment;

pub fn network(spec: &DirectionalSpec) -> Network {
    match spec.model {
        Model::Linear => {
            let mut widths = vec![spec.dim];
            widths.extend(std::iter::repeat_n(spec.width, spec.depth - 1));
            widths.push(1);
            Network::Linear { widths }
        }
        Model::TwoNode => Network::TwoNode {
            dim: spec.dim,
            train_second: spec.second_layer == SecondLayer::Trained,
        },
    }
}

pub fn population(spec: &DirectionalSpec) -> Population {
    let law = match spec.law {
        LawName::Gaussian => Law::Gaussian,
        LawName::Sphere => Law::Sphere { dim: spec.dim },
    };
    let loss = match spec.loss {
        LossName::Logistic => Loss::Logistic,
        LossName::Exponential => Loss::Exponential,
    };
    Population::new(law, loss)
}

/// The derived control rates of the notes for a linear network of depth N (reconstructed,
/// not the paper's): radial gradient ~ -K / r^2 with K = 2 p(0) int m (-l'(m)) dm, tangential
/// gradient ~ tau sin(theta) with tau = -2 l'(0) E[rho] / pi; balanced flow
/// r ~ ((N+2) K t)^(N/(N+2)) and -d log(theta)/dt ~ tau r^(1-2/N), so
/// log(theta) ~ -c t^p with p = 2N/(N+2), c = tau ((N+2) K)^((N-2)/(N+2)) (N+2)/(2N).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Theory {
    pub marginal_at_zero: f64,
    pub mean_radius: f64,
    pub k: f64,
    pub tau: f64,
    pub depth: usize,
    pub norm_exponent: f64,
    pub angle_exponent: f64,
    pub angle_coefficient: f64,
}

impl Theory {
    pub fn new(population: &Population, depth: usize) -> Theory {
        let n = depth as f64;
        let k = 2.0 * population.law.marginal_density(0.0) * population.loss.tail_moment();
        let tau = -2.0 * population.loss.slope(0.0) * population.mean_radius() / PI;
        Theory {
            marginal_at_zero: population.law.marginal_density(0.0),
            mean_radius: population.mean_radius(),
            k,
            tau,
            depth,
            norm_exponent: n / (n + 2.0),
            angle_exponent: 2.0 * n / (n + 2.0),
            angle_coefficient: tau * ((n + 2.0) * k).powf((n - 2.0) / (n + 2.0)) * (n + 2.0)
                / (2.0 * n),
        }
    }

    /// The predicted -d log(theta)/dt at norm r.
    pub fn angle_rate(&self, r: f64) -> f64 {
        self.tau * r.powf(1.0 - 2.0 / self.depth as f64)
    }
}

/// The output times: t = 0, then `outputs` times evenly or log-spaced up to t_end.
pub fn output_times(spec: &DirectionalSpec) -> Vec<f64> {
    let n = spec.outputs;
    let mut times = vec![0.0];
    for k in 1..=n {
        let f = k as f64 / n as f64;
        times.push(match spec.spacing {
            Spacing::Linear => spec.t_end * f,
            Spacing::Log => spec.t_end * 1e-3f64.powf(1.0 - f),
        });
    }
    times
}

/// The start: a balanced rank-one chain at init_angle, Gaussian entries, or (two-node) a
/// random start in the plane of w* and e_2.
pub fn start(spec: &DirectionalSpec, network: &Network, mut rng: ChaCha8Rng) -> Vec<f64> {
    let d = spec.dim;
    match network {
        Network::TwoNode { train_second, .. } => {
            let mut theta = vec![0.0; network.dim()];
            for k in 0..2 {
                theta[k * d] = spec.init_scale * standard_normal(&mut rng);
                theta[k * d + 1] = spec.init_scale * standard_normal(&mut rng);
            }
            let norm = |k: usize| theta[k * d].hypot(theta[k * d + 1]);
            let (v1, v2) = if *train_second {
                (norm(0), -norm(1))
            } else {
                (1.0, -1.0)
            };
            theta[2 * d] = v1;
            theta[2 * d + 1] = v2;
            theta
        }
        Network::Linear { widths } => match spec.init {
            Init::Random => (0..network.dim())
                .map(|_| spec.init_scale * standard_normal(&mut rng))
                .collect(),
            Init::Balanced => {
                let n = widths.len() - 1;
                let c = spec.init_scale.powf(1.0 / n as f64);
                let mut q: Vec<Array1<f64>> = Vec::new();
                let mut first = Array1::zeros(d);
                first[0] = spec.init_angle.cos();
                first[1] = spec.init_angle.sin();
                q.push(first);
                for &h in &widths[1..n] {
                    let mut v: Array1<f64> = (0..h).map(|_| standard_normal(&mut rng)).collect();
                    let norm = v.dot(&v).sqrt();
                    v /= norm;
                    q.push(v);
                }
                q.push(Array1::ones(1));
                let mut theta = Vec::with_capacity(network.dim());
                for j in 1..=n {
                    for a in q[j].iter() {
                        for b in q[j - 1].iter() {
                            theta.push(c * a * b);
                        }
                    }
                }
                theta
            }
        },
    }
}

/// The angle of a state to w*: the predictor's (linear), or the larger of the units' angles
/// to sign(v_k) w* (two-node), with each unit's.
pub fn angles(network: &Network, theta: &[f64]) -> (f64, Option<[f64; 2]>) {
    match network {
        Network::Linear { .. } => (angle_to_axis(&network.predictor(theta), 1.0), None),
        Network::TwoNode { .. } => {
            let units = network.units(theta);
            let a = [
                angle_to_axis(units[0].0, units[0].1.signum()),
                angle_to_axis(units[1].0, units[1].1.signum()),
            ];
            (a[0].max(a[1]), Some(a))
        }
    }
}

/// The norm that grows: ||beta|| (linear) or ||(w_1, w_2)|| (two-node).
pub fn norm(network: &Network, theta: &[f64]) -> f64 {
    let v = match network {
        Network::Linear { .. } => network.predictor(theta),
        Network::TwoNode { dim, .. } => theta[..2 * dim].to_vec(),
    };
    population::norm(&v)
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("t", Metric),
        ColumnSpec::new("loss", Metric).headline(),
        ColumnSpec::new("angle", Metric).headline(),
        ColumnSpec::new("norm", Metric).headline(),
        ColumnSpec::new("angle_1", Metric),
        ColumnSpec::new("angle_2", Metric),
        ColumnSpec::new("drift", Metric),
        ColumnSpec::new("wall_s", Time),
    ]
}

/// Online SGD on fresh batches (from the `data` stream), keeping the states at the steps
/// nearest the output times.
fn online(
    spec: &DirectionalSpec,
    network: &Network,
    population: &Population,
    theta0: &[f64],
    times: &[f64],
    (mut rng, cancel): (ChaCha8Rng, Cancel),
) -> Vec<(f64, Vec<f64>)> {
    let steps = (spec.t_end / spec.eta).round() as usize;
    let keep = keep_steps(times, spec.eta, steps);
    let mut theta = theta0.to_vec();
    let mut grad = vec![0.0; theta.len()];
    let mut kept = Vec::new();
    let mut next = 0;
    for k in 0..=steps {
        while next < keep.len() && keep[next] == k {
            kept.push((k as f64 * spec.eta, theta.clone()));
            next += 1;
        }
        if k == steps || (k % 1000 == 0 && cancel.is_set()) {
            break;
        }
        let batch = Network::draw_batch(population, spec.dim, spec.batch, &mut rng);
        network.batch_gradient(population, &theta, &batch, &mut grad);
        for (t, g) in theta.iter_mut().zip(&grad) {
            *t -= spec.eta * g;
        }
    }
    kept
}

/// The step of each output time (rounded, distinct).
fn keep_steps(times: &[f64], eta: f64, steps: usize) -> Vec<usize> {
    let mut keep: Vec<usize> = times
        .iter()
        .map(|t| ((t / eta).round() as usize).min(steps))
        .collect();
    keep.dedup();
    keep
}

/// Where one method ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalState {
    pub t: f64,
    pub angle: f64,
    pub norm: f64,
}

/// What a directional run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DirectionalSummary {
    /// The derived rates of a linear network (reconstructed).
    pub theory: Option<Theory>,
    pub parameters: Option<usize>,
    /// The start, so another tool can redo the same integration (small runs only).
    pub start: Option<Vec<f64>>,
    /// Per method.
    #[serde(rename = "final")]
    pub finals: Option<BTreeMap<String, FinalState>>,
}

impl Report for DirectionalSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(theory) = &self.theory {
            lines.push(format!(
                "derived rates (reconstructed): norm ~ t^{:.4}, log(angle) ~ -{:.4} t^{:.4}",
                theory.norm_exponent, theory.angle_coefficient, theory.angle_exponent,
            ));
        }
        for (method, f) in self.finals.iter().flatten() {
            lines.push(format!(
                "{method}: angle to w* {:.3e} rad, norm {:.4} at t = {}",
                f.angle, f.norm, f.t
            ));
        }
        lines
    }
}

impl Experiment for DirectionalExperiment {
    type Spec = DirectionalSpec;
    type Summary = DirectionalSummary;
    type Inputs = ();

    const NAME: &'static str = "directional";
    const TITLE: &'static str = "Directional convergence to w* under spherically symmetric \
                                 data: linear, deep linear and two-node networks";
    const PAPER: &'static str = "D. Lin, Z. Zhang, Directional Convergence Analysis under \
                                 Spherically Symmetric Distribution, arXiv:2105.03879";

    fn prepare(_: &Valid<Self>) -> Result<()> {
        Ok(())
    }

    fn run(spec: &Valid<Self>, _: (), ctx: &mut Ctx<Self>) -> Result<()> {
        let network = network(spec);
        let population = population(spec);
        let table = matches!(network, Network::TwoNode { .. }).then(|| {
            ctx.progress().phase("radial table");
            RadialTable::new(population.clone())
        });
        let objective = PopulationObjective {
            network: &network,
            population: population.clone(),
            table: table.as_ref(),
        };
        let theta0 = start(spec, &network, ctx.rng("init"));
        let times = output_times(spec);
        if let Network::Linear { .. } = network {
            ctx.summary.theory = Some(Theory::new(&population, network.depth()));
        }
        ctx.summary.parameters = Some(network.dim());
        if network.dim() <= 1000 {
            ctx.summary.start = Some(theta0.clone());
        }
        ctx.begin(&columns())?;
        let c0 = network.conserved(&theta0);
        for &method in &spec.method {
            ctx.check_cancel()?;
            ctx.progress().phase(method.name());
            let started = Instant::now();
            let states: Vec<(f64, Vec<f64>)> = match method {
                Method::Flow => {
                    let cancel = ctx.cancel();
                    let tolerances = Tolerances {
                        rtol: spec.rtol,
                        atol: spec.atol,
                        max_steps: 10_000_000,
                    };
                    let stop = || cancel.is_set();
                    let path = gradient_flow_until(&objective, &theta0, &times, tolerances, &stop)?;
                    path.times.into_iter().zip(path.states).collect()
                }
                Method::Gd => {
                    let steps = (spec.t_end / spec.eta).round() as usize;
                    let keep = keep_steps(&times, spec.eta, steps);
                    let path = gradient_descent(&objective, &theta0, spec.eta, steps, |k| {
                        keep.binary_search(&k).is_ok()
                    });
                    path.times.into_iter().zip(path.states).collect()
                }
                Method::Online => {
                    let data = (ctx.rng("data"), ctx.cancel());
                    online(spec, &network, &population, &theta0, &times, data)
                }
            };
            let wall = started.elapsed().as_secs_f64();
            for (t, theta) in &states {
                let (angle, units) = angles(&network, theta);
                let drift = {
                    let c = network.conserved(theta);
                    if c.is_empty() {
                        Cell::Missing
                    } else {
                        Cell::Real(
                            c.iter()
                                .zip(&c0)
                                .map(|(a, b)| (a - b).abs())
                                .fold(0.0, f64::max),
                        )
                    }
                };
                let unit = |k: usize| units.map_or(Cell::Missing, |u| Cell::Real(u[k]));
                // The population loss of a two-node state off the plane of w* and e_2 (online
                // SGD) would need a 3-D quadrature: left empty.
                let loss = if network.population_covers(theta) {
                    Cell::Real(objective.loss(theta))
                } else {
                    Cell::Missing
                };
                ctx.emit(vec![
                    Cell::Text(method.name().into()),
                    Cell::Real(*t),
                    loss,
                    Cell::Real(angle),
                    Cell::Real(norm(&network, theta)),
                    unit(0),
                    unit(1),
                    drift,
                    Cell::Real(wall),
                ])?;
            }
            ctx.check_cancel()?;
            if let Some((t, theta)) = states.last() {
                let state = FinalState {
                    t: *t,
                    angle: angles(&network, theta).0,
                    norm: norm(&network, theta),
                };
                ctx.summary
                    .finals
                    .get_or_insert_with(BTreeMap::new)
                    .insert(method.name().into(), state);
            }
            ctx.progress().advance(1);
        }
        Ok(())
    }
}
