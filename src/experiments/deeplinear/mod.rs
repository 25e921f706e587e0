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

use std::time::Instant;

use anyhow::Result;
use ndarray::{Array1, Array2};

use self::model::{DeepLinear, ReducedRankOne, Target, orthonormal, singular_values};
use self::spec::{DeepLinearSpec, Dynamics, Init, Sign};
use super::{ClaimDoc, Experiment, PreparedRun, RunData};
use crate::claims::ClaimResult;
use crate::flow::{Objective, Tolerances, gradient_descent, gradient_flow_until, integrate_until};
use crate::input_error;
use crate::plot::Figure;
use crate::run::standard_normal as normal;
use crate::run::{ColumnKind, ColumnSpec, RunContext, component_rng};
use crate::table::{Cell, Table};

pub struct DeepLinearExperiment;

pub fn parse_spec(spec: &toml::Table) -> Result<DeepLinearSpec> {
    crate::spec::typed("deeplinear", spec)
}

/// Most parameters a run may have (the flow keeps a few copies of them per output).
const MAX_PARAMETERS: usize = 200_000;

/// Cross-field checks the field table cannot express.
fn check(spec: &DeepLinearSpec) -> Result<()> {
    let w = &spec.widths;
    if w.len() < 3 {
        return Err(input_error!(
            "widths = {w:?} has {} layer(s): expected at least 2 layers (3 widths)",
            w.len().saturating_sub(1)
        ));
    }
    if !w.contains(&1) {
        return Err(input_error!(
            "widths = {w:?} has no width 1: expected a one-neuron layer (some d_j = 1)"
        ));
    }
    let (d0, dn) = (w[0], w[w.len() - 1]);
    let s = &spec.spectrum;
    if s.is_empty() || s.len() > d0.min(dn) {
        return Err(input_error!(
            "spectrum has {} values: expected 1 to min(d_0, d_N) = {}",
            s.len(),
            d0.min(dn)
        ));
    }
    if s.iter().any(|&x| x <= 0.0) || s.windows(2).any(|p| p[1] > p[0]) {
        return Err(input_error!(
            "spectrum = {s:?}: expected positive values in non-increasing order"
        ));
    }
    let dim = crate::linear_net::parameter_count(w);
    if dim > MAX_PARAMETERS {
        return Err(input_error!(
            "widths = {w:?} give {dim} weights: expected at most {MAX_PARAMETERS}"
        ));
    }
    match spec.init {
        Init::Invariant if s.len() < 2 || d0 < 2 || dn < 2 => Err(input_error!(
            "init = invariant needs a second singular value and d_0, d_N >= 2 (u and v \
             orthogonal to u_1, v_1): expected spectrum with 2 values and wider ends"
        )),
        Init::Custom if spec.init_weights.len() != dim => Err(input_error!(
            "init = custom needs init_weights with {dim} values (widths {w:?}): got {}",
            spec.init_weights.len()
        )),
        _ if spec.init != Init::Custom && !spec.init_weights.is_empty() => Err(input_error!(
            "init_weights is set but init = {:?}: expected init = custom (or init_weights = [])",
            spec.init
        )),
        _ => Ok(()),
    }
}

/// The target of a spec: U, V orthonormal from the `target` stream.
pub fn target(spec: &DeepLinearSpec) -> Target {
    let mut rng = component_rng(spec.seed, "target");
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
pub fn start(spec: &DeepLinearSpec, target: &Target) -> (Vec<f64>, Option<Vec<f64>>) {
    let mut rng = component_rng(spec.seed, "init");
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
        ColumnSpec::new("t", Metric),
        ColumnSpec::new("loss", Metric),
        ColumnSpec::new("loss_gap", Metric),
        ColumnSpec::new("sv_1", Metric),
        ColumnSpec::new("sv_2", Metric),
        ColumnSpec::new("sv_reduced", Metric),
        ColumnSpec::new("align_1", Metric),
        ColumnSpec::new("align_2", Metric),
        ColumnSpec::new("align_3", Metric),
        ColumnSpec::new("balance_drift", Metric),
        ColumnSpec::new("wall_s", Time),
    ]
}

struct DeepLinearRun {
    spec: DeepLinearSpec,
}

impl PreparedRun for DeepLinearRun {
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()> {
        let spec = &self.spec;
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
        ctx.summarize("optimal_loss", optimal);
        ctx.summarize("spectrum", &spec.spectrum);
        ctx.summarize("parameters", model.dim());
        // Z and the start, so another tool can redo the same integration (small runs only).
        if model.dim() <= 1000 {
            let z: Vec<Vec<f64>> = model.z.rows().into_iter().map(|r| r.to_vec()).collect();
            ctx.summarize("z", z);
            ctx.summarize("start", &theta0);
        }
        // The reduced rank-one ODE of a balanced start, as a reference for the flow.
        let reduced = match &reduced0 {
            Some(x0) if spec.method.contains(&Dynamics::Flow) => {
                ctx.progress().phase("reduced rank-one ODE");
                let field = ReducedRankOne {
                    z: &model.z,
                    depth: model.depth(),
                };
                let cancel = ctx.cancel_flag();
                let stop = || cancel.load(std::sync::atomic::Ordering::Relaxed);
                Some(integrate_until(&field, x0, &times, tolerances, &stop)?)
            }
            _ => None,
        };
        ctx.begin(&columns())?;
        let d0 = DeepLinear::balance(&model.layers(&theta0));
        let mut limits = serde_json::Map::new();
        let mut escapes = serde_json::Map::new();
        for &method in &spec.method {
            ctx.check_cancel()?;
            ctx.progress().phase(method.name());
            let started = Instant::now();
            let trajectory = match method {
                Dynamics::Flow => {
                    let cancel = ctx.cancel_flag();
                    let stop = || cancel.load(std::sync::atomic::Ordering::Relaxed);
                    gradient_flow_until(&model, &theta0, &times, tolerances, &stop)?
                }
                Dynamics::Gd => {
                    let steps = (spec.t_end / spec.eta).round() as usize;
                    let every = (steps / n).max(1);
                    gradient_descent(&model, &theta0, spec.eta, steps, |k| {
                        k % every == 0 || k == steps
                    })
                }
            };
            let wall = started.elapsed().as_secs_f64();
            let mut escape = None;
            for (k, (t, theta)) in trajectory.times.iter().zip(&trajectory.states).enumerate() {
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
                let sv_reduced = match (&reduced, method) {
                    (Some(r), Dynamics::Flow) if k < r.states.len() => {
                        Cell::Real(r.states[k][0].abs())
                    }
                    _ => Cell::Missing,
                };
                let sv1 = sv.first().copied().unwrap_or(0.0);
                if escape.is_none() && sv1 >= 0.5 * target.s[0] {
                    escape = Some(*t);
                }
                ctx.emit(vec![
                    Cell::Text(method.name().into()),
                    Cell::Real(*t),
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
                ])?;
            }
            ctx.check_cancel()?;
            let last = trajectory.states.last().expect("one state at least");
            let (limit, distance) = classify(&DeepLinear::product(&model.layers(last)), &target);
            limits.insert(
                method.name().into(),
                serde_json::json!({"limit": limit, "distance": distance,
                                   "steps": trajectory.steps,
                                   "evaluations": trajectory.evaluations}),
            );
            escapes.insert(method.name().into(), serde_json::json!(escape));
            ctx.summarize("limits", &limits);
            ctx.summarize("escape_time", &escapes);
            ctx.progress().advance(1);
        }
        Ok(())
    }
}

impl Experiment for DeepLinearExperiment {
    fn name(&self) -> &'static str {
        "deeplinear"
    }

    fn title(&self) -> &'static str {
        "Deep linear networks with a one-neuron layer: gradient flow, its limits and stages"
    }

    fn paper(&self) -> &'static str {
        "K. Chen, D. Lin, Z. Zhang, Global Convergence Analysis of Deep Linear Networks with \
         A One-neuron Layer, arXiv:2201.02761"
    }

    fn fields(&self) -> &'static [crate::spec::Field] {
        spec::FIELDS
    }

    fn default_spec(&self) -> toml::Table {
        toml::Table::try_from(DeepLinearSpec::default()).expect("the default spec serializes")
    }

    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = parse_spec(spec)?;
        check(&spec)?;
        Ok(Box::new(DeepLinearRun { spec }))
    }

    fn claim_docs(&self) -> Vec<ClaimDoc> {
        claims::docs()
    }

    fn check_claims(
        &self,
        spec: &toml::Table,
        rows: &Table,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<ClaimResult> {
        match parse_spec(spec) {
            Ok(spec) => claims::check_run(&spec, rows, summary),
            Err(_) => Vec::new(),
        }
    }

    fn figures(&self, runs: &[RunData]) -> Result<Vec<(String, Figure)>> {
        figures::figures(runs)
    }

    fn verify(&self) -> Result<Vec<ClaimResult>> {
        verify::verify()
    }

    fn headline_columns(&self) -> &'static [&'static str] {
        &["t", "loss_gap", "sv_1", "balance_drift"]
    }

    fn describe_summary(
        &self,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(limits) = summary.get("limits").and_then(|l| l.as_object()) {
            let parts: Vec<String> = limits
                .iter()
                .map(|(m, l)| format!("{m} -> {}", l["limit"].as_str().unwrap_or("?")))
                .collect();
            lines.push(format!("limit: {}", parts.join(", ")));
        }
        lines
    }
}
