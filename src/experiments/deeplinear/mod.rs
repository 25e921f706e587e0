//! Deep linear networks with a one-neuron layer under gradient flow.
//!
//! Paper: K. Chen, D. Lin, Z. Zhang, "Global Convergence Analysis of Deep Linear Networks
//! with A One-neuron Layer", arXiv:2201.02761. Notes: `../shared/papers/nn_theory.md` (a).
//! The paper's theorems could not be read; the limit points, the reduced rank-one ODE, the
//! scalar-chain solutions and the stage rates below are *derived* in the notes and checked
//! numerically there, not quoted from the paper.
//!
//! A run: Z = U diag(s) V^T from the seed, a start, then gradient flow (Dormand-Prince 5(4))
//! and/or gradient descent, one row per output time: the loss gap, the product's singular
//! values, its alignment with each u_i v_i^T and the drift of the balance matrices. A balanced
//! flow also integrates the reduced rank-one ODE to compare.

pub mod claims;
mod figures;
pub mod model;
pub mod spec;
pub mod verify;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use self::model::{DeepLinear, ReducedRankOne, Target, orthonormal};
use self::spec::{DeepLinearSpec, Dynamics, Init, Sign};
use crate::contract::{ColumnKind, ColumnSpec, Ctx, Experiment, Report, Valid};
use crate::flow::{Dopri5, Objective, Tolerances, gradient_descent, gradient_flow_each};
use crate::linear_net::singular_values;
use crate::random::standard_normal as normal;
use crate::table::Cell;

pub struct DeepLinearExperiment;

/// The target of a spec: U, V orthonormal from the `target` stream.
pub fn target(spec: &Valid<DeepLinearExperiment>) -> Target {
    let mut rng = spec.streams().rng("target");
    let (d0, dn) = (spec.widths[0], spec.widths[spec.widths.len() - 1]);
    let r = spec.spectrum.len();
    Target {
        u: orthonormal(dn, r, &mut rng),
        v: orthonormal(d0, r, &mut rng),
        s: spec.spectrum.clone(),
    }
}

/// A random unit vector, orthogonal to `avoid` if given (positive first entry in dimension 1).
fn unit(d: usize, avoid: Option<Array1<f64>>, rng: &mut rand_chacha::ChaCha8Rng) -> Array1<f64> {
    loop {
        let mut v: Array1<f64> = (0..d).map(|_| normal(rng)).collect();
        if let Some(a) = &avoid {
            let c = a.dot(&v);
            v -= &(a * c);
        }
        let norm = v.dot(&v).sqrt();
        if norm > 1e-8 {
            v /= norm;
            if d == 1 {
                v.mapv_inplace(f64::abs);
            }
            return v;
        }
    }
}

/// The start of a run and, for balanced starts, the reduced state (sigma, u, v).
pub fn start(spec: &Valid<DeepLinearExperiment>, target: &Target) -> (Vec<f64>, Option<Vec<f64>>) {
    let mut rng = spec.streams().rng("init");
    let w = &spec.widths;
    let n = w.len() - 1;
    match spec.init {
        Init::Random => {
            let dim = crate::linear_net::parameter_count(w);
            let theta = (0..dim)
                .map(|_| spec.init_scale * normal(&mut rng))
                .collect();
            (theta, None)
        }
        Init::Custom => (spec.init_weights.clone(), None),
        Init::Balanced | Init::Invariant => {
            let invariant = spec.init == Init::Invariant;
            let first = |m: &Array2<f64>| m.column(0).to_owned();
            let q0 = unit(w[0], invariant.then(|| first(&target.v)), &mut rng);
            let qn = unit(w[n], invariant.then(|| first(&target.u)), &mut rng);
            let mut q: Vec<Array1<f64>> = vec![q0];
            for &d in &w[1..n] {
                q.push(unit(d, None, &mut rng));
            }
            q.push(qn);
            let c = spec.init_scale.powf(1.0 / n as f64);
            let sign = match spec.init_sign {
                Sign::Positive => 1.0,
                Sign::Negative => -1.0,
            };
            let layers: Vec<Array2<f64>> = (1..=n)
                .map(|j| {
                    let outer = q[j]
                        .view()
                        .insert_axis(ndarray::Axis(1))
                        .dot(&q[j - 1].view().insert_axis(ndarray::Axis(0)));
                    let scale = if j == 1 { sign * c } else { c };
                    outer * scale
                })
                .collect();
            let mut reduced = vec![sign * spec.init_scale];
            reduced.extend(q[n].iter());
            reduced.extend(q[0].iter());
            (DeepLinear::pack(&layers), Some(reduced))
        }
    }
}

/// Where the product ended: the nearest critical point s_i u_i v_i^T or the origin.
pub fn classify(w: &Array2<f64>, target: &Target) -> (String, f64) {
    let scale = target.s[0];
    let mut best = ("origin".to_string(), w.mapv(|x| x * x).sum().sqrt());
    for i in 0..target.s.len() {
        let u = target.u.column(i);
        let v = target.v.column(i);
        let critical = u
            .insert_axis(ndarray::Axis(1))
            .dot(&v.insert_axis(ndarray::Axis(0)))
            * target.s[i];
        let distance = (w - &critical).mapv(|x| x * x).sum().sqrt();
        if distance < best.1 {
            best = (
                if i == 0 {
                    "global".to_string()
                } else {
                    format!("saddle_{}", i + 1)
                },
                distance,
            );
        }
    }
    if best.1 > 1e-4 * scale {
        (format!("not converged (nearest: {})", best.0), best.1)
    } else {
        best
    }
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("t", Metric).headline(),
        ColumnSpec::new("loss", Metric),
        ColumnSpec::new("loss_gap", Metric).headline(),
        ColumnSpec::new("sv_1", Metric).headline(),
        ColumnSpec::new("sv_2", Metric),
        ColumnSpec::new("sv_reduced", Metric),
        ColumnSpec::new("align_1", Metric),
        ColumnSpec::new("align_2", Metric),
        ColumnSpec::new("align_3", Metric),
        ColumnSpec::new("balance_drift", Metric).headline(),
        ColumnSpec::new("wall_s", Time),
    ]
}

/// Where one dynamics ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limit {
    /// `global`, `saddle_i`, `origin`, or `not converged (nearest: ...)`.
    pub limit: String,
    pub distance: f64,
    pub steps: usize,
    pub evaluations: usize,
}

/// What a deep linear run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeepLinearSummary {
    pub optimal_loss: Option<f64>,
    pub spectrum: Option<Vec<f64>>,
    pub parameters: Option<usize>,
    /// Z and the start, so another tool can redo the same integration (small runs only).
    pub z: Option<Vec<Vec<f64>>>,
    pub start: Option<Vec<f64>>,
    /// Per dynamics (`flow`, `gd`).
    pub limits: Option<BTreeMap<String, Limit>>,
    /// Per dynamics, the first t with sigma_1 >= s_1 / 2 (null: never).
    pub escape_time: Option<BTreeMap<String, Option<f64>>>,
}

impl Report for DeepLinearSummary {
    fn describe(&self) -> Vec<String> {
        let Some(limits) = &self.limits else {
            return Vec::new();
        };
        let parts: Vec<String> = limits
            .iter()
            .map(|(m, l)| format!("{m} -> {}", l.limit))
            .collect();
        vec![format!("limit: {}", parts.join(", "))]
    }
}

impl Experiment for DeepLinearExperiment {
    type Spec = DeepLinearSpec;
    type Summary = DeepLinearSummary;
    type Inputs = ();

    const NAME: &'static str = "deeplinear";
    const TITLE: &'static str =
        "Deep linear networks with a one-neuron layer: gradient flow, its limits and stages";
    const PAPER: &'static str = "K. Chen, D. Lin, Z. Zhang, Global Convergence Analysis of Deep \
                                 Linear Networks with A One-neuron Layer, arXiv:2201.02761";

    fn prepare(_: &Valid<Self>) -> Result<()> {
        Ok(())
    }

    fn run(spec: &Valid<Self>, _: (), ctx: &mut Ctx<Self>) -> Result<()> {
        let target = target(spec);
        let model = DeepLinear {
            widths: spec.widths.clone(),
            z: target.z(),
        };
        let (theta0, reduced0) = start(spec, &target);
        let n = spec.outputs;
        let times: Vec<f64> = (0..=n).map(|k| spec.t_end * k as f64 / n as f64).collect();
        let tolerances = Tolerances {
            rtol: spec.rtol,
            atol: spec.atol,
            max_steps: 10_000_000,
        };
        let optimal = target.optimal_loss();
        ctx.summary.optimal_loss = Some(optimal);
        ctx.summary.spectrum = Some(spec.spectrum.clone());
        ctx.summary.parameters = Some(model.dim());
        if model.dim() <= 1000 {
            let z: Vec<Vec<f64>> = model.z.rows().into_iter().map(|r| r.to_vec()).collect();
            ctx.summary.z = Some(z);
            ctx.summary.start = Some(theta0.clone());
        }
        // The reduced rank-one ODE of a balanced start, integrated beside the flow as its
        // reference.
        let reduced_field = ReducedRankOne {
            z: &model.z,
            depth: model.depth(),
        };
        ctx.begin(&columns())?;
        let d0 = DeepLinear::balance(&model.layers(&theta0));
        // One row of a state: loss, singular values, alignments, balance drift.
        let row = |method: Dynamics, t: f64, theta: &[f64], sv_reduced: Cell, wall: f64| {
            let layers = model.layers(theta);
            let w = DeepLinear::product(&layers);
            let sv = singular_values(&w);
            let loss = model.loss(theta);
            let align = |i: usize| {
                if i < target.s.len() {
                    Cell::Real(target.u.column(i).dot(&w.dot(&target.v.column(i))))
                } else {
                    Cell::Missing
                }
            };
            let drift = DeepLinear::balance(&layers)
                .iter()
                .zip(&d0)
                .map(|(d, d_start)| (d - d_start).mapv(|x| x * x).sum().sqrt())
                .fold(0.0, f64::max);
            let sv1 = sv.first().copied().unwrap_or(0.0);
            let cells = vec![
                Cell::Text(method.name().into()),
                Cell::Real(t),
                Cell::Real(loss),
                Cell::Real(loss - optimal),
                Cell::Real(sv1),
                Cell::Real(sv.get(1).copied().unwrap_or(0.0)),
                sv_reduced,
                align(0),
                align(1),
                align(2),
                Cell::Real(drift),
                Cell::Real(wall),
            ];
            (cells, sv1)
        };
        for &method in &spec.method {
            ctx.check_cancel()?;
            ctx.progress().phase(method.name());
            let started = Instant::now();
            let mut escape = None;
            let (steps, evaluations, last) = match method {
                Dynamics::Flow => {
                    let cancel = ctx.cancel();
                    // The reduced ODE's own integration, asked for its state at each output.
                    let t_end = *times.last().expect("output times");
                    let mut reduced = reduced0.as_ref().map(|x| {
                        let integration = Dopri5::new(&reduced_field, x, 0.0, t_end, tolerances);
                        (integration, x.clone())
                    });
                    let done = gradient_flow_each(
                        &model,
                        &theta0,
                        &times,
                        tolerances,
                        &|| cancel.is_set(),
                        &mut |t, theta| {
                            let sv_reduced = match &mut reduced {
                                Some((integration, x)) => {
                                    integration.state_at(t, x)?;
                                    Cell::Real(x[0].abs())
                                }
                                None => Cell::Missing,
                            };
                            let wall = started.elapsed().as_secs_f64();
                            let (cells, sv1) = row(method, t, theta, sv_reduced, wall);
                            if escape.is_none() && sv1 >= 0.5 * target.s[0] {
                                escape = Some(t);
                            }
                            ctx.emit(cells)
                        },
                    )?;
                    (done.steps, done.evaluations, done.end)
                }
                Dynamics::Gd => {
                    let steps = (spec.t_end / spec.eta).round() as usize;
                    let every = (steps / n).max(1);
                    let mut path = gradient_descent(&model, &theta0, spec.eta, steps, |k| {
                        k % every == 0 || k == steps
                    });
                    let wall = started.elapsed().as_secs_f64();
                    for (t, theta) in path.times.iter().zip(&path.states) {
                        let (cells, sv1) = row(method, *t, theta, Cell::Missing, wall);
                        if escape.is_none() && sv1 >= 0.5 * target.s[0] {
                            escape = Some(*t);
                        }
                        ctx.emit(cells)?;
                    }
                    let last = path.states.pop().expect("one state at least");
                    (path.steps, path.evaluations, last)
                }
            };
            ctx.check_cancel()?;
            let (limit, distance) = classify(&DeepLinear::product(&model.layers(&last)), &target);
            let name = method.name().to_string();
            ctx.summary.limits.get_or_insert_with(BTreeMap::new).insert(
                name.clone(),
                Limit {
                    limit,
                    distance,
                    steps,
                    evaluations,
                },
            );
            ctx.summary
                .escape_time
                .get_or_insert_with(BTreeMap::new)
                .insert(name, escape);
            ctx.progress().advance(1);
        }
        Ok(())
    }
}
