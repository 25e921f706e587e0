//! The landscape of sparse linear networks: where gradient descent from many random starts
//! ends, against the optimum the notes compute in closed form.
//!
//! Paper: D. Lin, R. Sun, Z. Zhang, "Landscape of Sparse Linear Network: A Brief
//! Investigation" (later "On the Landscape of One-hidden-layer Sparse Networks and Beyond"),
//! arXiv:2009.07439. Notes: `../shared/papers/nn_theory.md` (c). The three claims are in
//! the abstracts (verified); the oracles (restricted least squares, the separable rank-one
//! optimum) and the counterexample search are the notes' (derived).

pub mod claims;
mod figures;
pub mod model;
pub mod spec;
pub mod verify;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use ndarray::Array2;
use rand::Rng;
use rayon::prelude::*;

use self::model::{SparseLinear, ar1_covariance, columns};
use self::spec::{MaskKind, SparseLinearSpec};
use super::deeplinear::model::singular_values;
use super::{ClaimDoc, Experiment, PreparedRun, RunData};
use crate::claims::ClaimResult;
use crate::flow::{Objective, gradient_descent};
use crate::input_error;
use crate::plot::Figure;
use crate::run::standard_normal as normal;
use crate::run::{ColumnKind, ColumnSpec, RunContext, component_rng};
use crate::table::{Cell, Table};

pub struct SparseLinearExperiment;

pub fn parse_spec(spec: &toml::Table) -> Result<SparseLinearSpec> {
    crate::spec::typed("sparselinear", spec)
}

fn check(spec: &SparseLinearSpec) -> Result<()> {
    let w = &spec.widths;
    if w.len() < 3 {
        return Err(input_error!(
            "widths = {w:?}: expected at least 2 layers (3 widths)"
        ));
    }
    let first = w[0] * w[1];
    match spec.mask {
        MaskKind::Custom if spec.first_mask.len() != first => Err(input_error!(
            "mask = custom needs first_mask with d_1 x d_0 = {first} zeros and ones: got {}",
            spec.first_mask.len()
        )),
        MaskKind::Disjoint if w[1] > w[0] => Err(input_error!(
            "mask = disjoint gives each of d_1 = {} hidden units a block of the d_0 = {} \
             inputs: expected d_1 <= d_0",
            w[1],
            w[0]
        )),
        _ if spec.mask != MaskKind::Custom && !spec.first_mask.is_empty() => Err(input_error!(
            "first_mask is set but mask = {:?}: expected mask = custom (or first_mask = [])",
            spec.mask
        )),
        _ => Ok(()),
    }
}

/// The first layer's mask of a spec.
pub fn first_mask(spec: &SparseLinearSpec) -> Array2<f64> {
    let (d0, d1) = (spec.widths[0], spec.widths[1]);
    match spec.mask {
        MaskKind::Dense => Array2::ones((d1, d0)),
        MaskKind::Random => {
            let mut rng = component_rng(spec.seed, "mask");
            Array2::from_shape_fn((d1, d0), |_| {
                f64::from(u8::from(rng.random_bool(spec.density)))
            })
        }
        MaskKind::Disjoint => {
            Array2::from_shape_fn((d1, d0), |(h, i)| f64::from(u8::from(i * d1 / d0 == h)))
        }
        MaskKind::Custom => Array2::from_shape_vec(
            (d1, d0),
            spec.first_mask.iter().map(|&m| m as f64).collect(),
        )
        .expect("length checked"),
    }
}

/// The network of a spec with the given first-layer mask.
pub fn network(spec: &SparseLinearSpec, first: Array2<f64>) -> SparseLinear {
    let w = &spec.widths;
    let (d0, dn) = (w[0], w[w.len() - 1]);
    let sigma = ar1_covariance(d0, spec.correlation);
    let mut rng = component_rng(spec.seed, "teacher");
    let a = Array2::from_shape_fn((dn, d0), |_| normal(&mut rng) / (d0 as f64).sqrt());
    let mut masks = vec![first];
    for j in 2..w.len() {
        masks.push(Array2::ones((w[j], w[j - 1])));
    }
    SparseLinear {
        widths: w.clone(),
        masks,
        c: a.dot(&sigma),
        k0: 0.5 * (a.dot(&sigma) * &a).sum() + 0.5 * spec.noise * spec.noise * dn as f64,
        sigma,
    }
}

/// The global optimum in closed form where one is known, with its name, for a network whose
/// first layer has the mask `kind`.
pub fn oracle(
    spec: &SparseLinearSpec,
    net: &SparseLinear,
    kind: MaskKind,
) -> Option<(f64, &'static str)> {
    let w = &spec.widths;
    let dn = w[w.len() - 1];
    if dn == 1 {
        // Any beta supported on the reachable inputs S is realizable: restricted least
        // squares, L* = k0 - c_S Sigma_SS^{-1} c_S^T / 2.
        let s = net.reachable_inputs(0);
        if s.is_empty() {
            return Some((
                net.k0,
                "restricted least squares (no input reaches the output)",
            ));
        }
        let sigma_ss = net
            .sigma
            .select(ndarray::Axis(0), &s)
            .select(ndarray::Axis(1), &s);
        let c_s = columns(&net.c, &s);
        let m = faer::Mat::<f64>::from_fn(s.len(), s.len(), |i, j| sigma_ss[(i, j)]);
        let llt = m.llt(faer::Side::Lower).ok()?;
        let mut rhs = faer::Mat::<f64>::from_fn(s.len(), 1, |i, _| c_s[(0, i)]);
        use faer::linalg::solvers::Solve;
        llt.solve_in_place(rhs.as_mut());
        let quad: f64 = (0..s.len()).map(|i| c_s[(0, i)] * rhs[(i, 0)]).sum();
        return Some((net.k0 - 0.5 * quad, "restricted least squares"));
    }
    if kind == MaskKind::Dense {
        return reduced_rank_optimum(net).map(|l| (l, "reduced-rank regression"));
    }
    let two_layers = w.len() == 3;
    if two_layers && kind == MaskKind::Disjoint && spec.correlation == 0.0 {
        // Whitened: L = ||W - A||^2/2 + noise term, and hidden unit h only reaches its block
        // S_h: the best is the rank-one fit of each block.
        let a = &net.c; // C = A Sigma = A.
        let noise = net.k0 - 0.5 * (a * a).sum();
        let mut lost = 0.0;
        let (d0, d1) = (w[0], w[1]);
        for h in 0..d1 {
            let block: Vec<usize> = (0..d0).filter(|&i| i * d1 / d0 == h).collect();
            let sub = columns(a, &block);
            let s1 = singular_values(&sub).first().copied().unwrap_or(0.0);
            lost += (&sub * &sub).sum() - s1 * s1;
        }
        return Some((noise + 0.5 * lost, "separable rank-one optimum"));
    }
    None
}

/// A dense network can realize exactly the products of rank <= r (r its narrowest hidden
/// width), so L* = L(A) + 1/2 sum_{i > r} sigma_i(A Sigma^(1/2))^2 (reduced-rank regression;
/// L(A) is the noise term).
fn reduced_rank_optimum(net: &SparseLinear) -> Option<f64> {
    let d0 = net.widths[0];
    let r = net.widths[1..net.widths.len() - 1].iter().copied().min()?;
    let sigma = faer::Mat::<f64>::from_fn(d0, d0, |i, j| net.sigma[(i, j)]);
    let eigen = sigma.self_adjoint_eigen(faer::Side::Lower).ok()?;
    let (u, s) = (eigen.U(), eigen.S());
    // A = C Sigma^-1, so M = A Sigma^(1/2) = C Sigma^(-1/2).
    let inv_root = faer::Mat::<f64>::from_fn(d0, d0, |i, j| {
        (0..d0)
            .map(|k| u[(i, k)] / s[k].max(1e-300).sqrt() * u[(j, k)])
            .sum()
    });
    let dn = net.c.nrows();
    let m = ndarray::Array2::from_shape_fn((dn, d0), |(i, j)| {
        (0..d0).map(|k| net.c[(i, k)] * inv_root[(k, j)]).sum()
    });
    let sv = singular_values(&m);
    let noise = net.k0 - 0.5 * sv.iter().map(|x| x * x).sum::<f64>();
    Some(noise + 0.5 * sv.iter().skip(r).map(|x| x * x).sum::<f64>())
}

/// Where one start ends.
#[derive(Debug, Clone)]
pub struct StartResult {
    pub theta: Vec<f64>,
    pub loss: f64,
    pub grad_norm: f64,
    pub steps: usize,
}

/// Gradient descent from a start until the gradient norm is below grad_tol.
pub fn descend(net: &SparseLinear, theta0: &[f64], spec: &SparseLinearSpec) -> StartResult {
    descend_until(net, theta0, spec, &AtomicBool::new(false))
}

/// [`descend`] that gives up (as unconverged) when `cancel` is set, checked every 500 steps.
pub fn descend_until(
    net: &SparseLinear,
    theta0: &[f64],
    spec: &SparseLinearSpec,
    cancel: &AtomicBool,
) -> StartResult {
    // In chunks, so a converged start stops early.
    let chunk = 500.min(spec.iterations);
    let mut theta = theta0.to_vec();
    let mut steps = 0;
    let mut grad = vec![0.0; theta.len()];
    loop {
        net.gradient(&theta, &mut grad);
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if !norm.is_finite() {
            // Diverged (the step is too large for this start): reported as infinite.
            return StartResult {
                loss: f64::INFINITY,
                grad_norm: f64::INFINITY,
                steps,
                theta,
            };
        }
        if norm <= spec.grad_tol || steps >= spec.iterations || cancel.load(Ordering::Relaxed) {
            return StartResult {
                loss: net.loss(&theta),
                grad_norm: norm,
                steps,
                theta,
            };
        }
        let n = chunk.min(spec.iterations - steps);
        let path = gradient_descent(net, &theta, spec.eta, n, |k| k == n);
        theta = path.states.into_iter().next().expect("the last state");
        steps += n;
    }
}

/// The starts of a run (the `start/K` streams).
pub fn starting_points(spec: &SparseLinearSpec, dim: usize) -> Vec<Vec<f64>> {
    (0..spec.starts)
        .map(|k| {
            let mut rng = component_rng(spec.seed, &format!("start/{k}"));
            (0..dim)
                .map(|_| spec.init_scale * normal(&mut rng))
                .collect()
        })
        .collect()
}

/// Whether perturbed restarts from a candidate ever end lower (false: a confirmed minimum).
pub fn perturbation_lowers(
    net: &SparseLinear,
    candidate: &StartResult,
    spec: &SparseLinearSpec,
    tol: f64,
) -> (bool, f64) {
    let size = 0.01
        * candidate
            .theta
            .iter()
            .map(|t| t * t)
            .sum::<f64>()
            .sqrt()
            .max(1e-3);
    let lowest = (0..spec.perturbations)
        .into_par_iter()
        .map(|k| {
            let mut rng = component_rng(spec.seed, &format!("perturb/{k}"));
            let start: Vec<f64> = candidate
                .theta
                .iter()
                .map(|t| t + size * normal(&mut rng) / (candidate.theta.len() as f64).sqrt())
                .collect();
            descend(net, &start, spec).loss
        })
        .reduce(|| f64::INFINITY, f64::min);
    (lowest < candidate.loss - tol, lowest)
}

/// The second-order picture at a point: the eigenvalues of the Hessian (central differences
/// of the gradient over the unmasked weights), the number of zero modes (|lambda| <= 1e-7
/// lambda_max) and the number the network's symmetries force (one rescaling per hidden
/// unit between two layers). A minimum has no negative eigenvalue below the zero band.
pub struct Curvature {
    pub most_negative: f64,
    pub smallest_positive: f64,
    pub zero_modes: usize,
    pub symmetries: usize,
}

pub fn curvature(net: &SparseLinear, theta: &[f64]) -> Curvature {
    let mask: Vec<f64> = net.masks.iter().flat_map(|m| m.iter().copied()).collect();
    let free: Vec<usize> = (0..theta.len()).filter(|&i| mask[i] != 0.0).collect();
    let n = free.len();
    let mut columns = vec![vec![0.0; n]; n];
    let (mut plus, mut minus) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
    for (c, &i) in free.iter().enumerate() {
        let h = 1e-6 * (1.0 + theta[i].abs());
        let mut point = theta.to_vec();
        point[i] += h;
        net.gradient(&point, &mut plus);
        point[i] -= 2.0 * h;
        net.gradient(&point, &mut minus);
        for (r, &j) in free.iter().enumerate() {
            columns[c][r] = (plus[j] - minus[j]) / (2.0 * h);
        }
    }
    let hessian = faer::Mat::from_fn(n, n, |r, c| 0.5 * (columns[c][r] + columns[r][c]));
    let eigenvalues = hessian
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .unwrap_or_default();
    let largest = eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let band = 1e-7 * largest.max(1e-300);
    Curvature {
        most_negative: eigenvalues.iter().copied().fold(0.0, f64::min),
        smallest_positive: eigenvalues
            .iter()
            .copied()
            .filter(|v| *v > band)
            .fold(f64::INFINITY, f64::min),
        zero_modes: eigenvalues.iter().filter(|v| v.abs() <= band).count(),
        symmetries: net.widths[1..net.widths.len() - 1].iter().sum(),
    }
}

fn columns_spec() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("mask", Key),
        ColumnSpec::new("outcome", Key),
        ColumnSpec::new("start", Axis),
        // A diverged start has an infinite loss (never NaN).
        ColumnSpec::new("final_loss", MetricMayBeInfinite),
        ColumnSpec::new("gap", MetricMayBeInfinite),
        ColumnSpec::new("grad_norm", MetricMayBeInfinite),
        ColumnSpec::new("steps", Axis),
    ]
}

struct SparseLinearRun {
    spec: SparseLinearSpec,
}

impl PreparedRun for SparseLinearRun {
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()> {
        let spec = &self.spec;
        let sparse = network(spec, first_mask(spec));
        let mut sets = vec![("sparse", sparse, spec.mask)];
        if spec.mask != MaskKind::Dense {
            let dense_first = Array2::ones((spec.widths[1], spec.widths[0]));
            sets.push(("dense", network(spec, dense_first), MaskKind::Dense));
        } else {
            sets[0].0 = "dense";
        }
        // The problem itself, so another tool can redo the same sweep (small runs only).
        let problem = &sets[0].1;
        if problem.sigma.len() + problem.c.len() <= 10_000 {
            let rows = |m: &Array2<f64>| -> Vec<Vec<f64>> {
                m.rows().into_iter().map(|r| r.to_vec()).collect()
            };
            ctx.summarize(
                "problem",
                serde_json::json!({
                    "sigma": rows(&problem.sigma),
                    "c": rows(&problem.c),
                    "k0": problem.k0,
                    "first_mask": rows(&problem.masks[0]),
                }),
            );
        }
        ctx.begin(&columns_spec())?;
        ctx.progress().set_total((sets.len() * spec.starts) as u64);
        let mut summary = serde_json::Map::new();
        for (name, net, kind) in &sets {
            ctx.check_cancel()?;
            ctx.progress().phase(name);
            let started = std::time::Instant::now();
            let starts = starting_points(spec, net.dim());
            let cancel = ctx.cancel_flag();
            let results: Vec<StartResult> = starts
                .par_iter()
                .map(|t| descend_until(net, t, spec, cancel))
                .collect();
            // Interrupted: the rows would describe half-finished starts; keep what is done.
            ctx.check_cancel()?;
            let descent_seconds = started.elapsed().as_secs_f64();
            let best = results.iter().map(|r| r.loss).fold(f64::INFINITY, f64::min);
            let optimum = oracle(spec, net, *kind);
            let reference = optimum.map_or(best, |o| o.0);
            let tol = 1e-7 * reference.abs().max(1.0);
            // Candidates: converged starts above the reference, one per distinct loss level.
            let mut levels: Vec<&StartResult> = Vec::new();
            for r in results
                .iter()
                .filter(|r| r.grad_norm <= spec.grad_tol && r.loss > reference + tol)
            {
                if !levels.iter().any(|l| (l.loss - r.loss).abs() <= tol) {
                    levels.push(r);
                }
            }
            levels.sort_by(|a, b| a.loss.total_cmp(&b.loss));
            let mut spurious = Vec::new();
            let small = net.dim() <= 1000;
            for candidate in levels.iter().take(5) {
                let (lowers, lowest) = perturbation_lowers(net, candidate, spec, tol);
                // Perturbations decide (the notes: Hessians may be degenerate); the Hessian
                // is reported beside them, and a negative eigenvalue below the zero band
                // vetoes.
                let curv = curvature(net, &candidate.theta);
                let band = 1e-7 * curv.smallest_positive.max(curv.most_negative.abs());
                spurious.push(serde_json::json!({
                    "loss": candidate.loss,
                    "confirmed_minimum": !lowers && curv.most_negative >= -band,
                    "lowest_after_perturbation": lowest,
                    "hessian_most_negative": curv.most_negative,
                    "hessian_smallest_positive": curv.smallest_positive,
                    "hessian_zero_modes": curv.zero_modes,
                    "symmetries": curv.symmetries,
                    "point": small.then(|| candidate.theta.clone()),
                }));
            }
            // A start at the reference, for the slice through both minima.
            let global_point = results
                .iter()
                .find(|r| (r.loss - reference).abs() <= tol)
                .filter(|_| small)
                .map(|r| r.theta.clone());
            let confirmed: Vec<f64> = spurious
                .iter()
                .filter(|s| s["confirmed_minimum"] == true)
                .filter_map(|s| s["loss"].as_f64())
                .collect();
            for (k, r) in results.iter().enumerate() {
                let outcome = if r.loss.is_infinite() {
                    "diverged"
                } else if (r.loss - reference).abs() <= tol {
                    "global"
                } else if confirmed.iter().any(|l| (l - r.loss).abs() <= tol) {
                    "spurious"
                } else if r.grad_norm > spec.grad_tol {
                    "unconverged"
                } else {
                    "other"
                };
                ctx.emit(vec![
                    Cell::Text((*name).into()),
                    Cell::Text(outcome.into()),
                    Cell::Int(k as i64),
                    Cell::Real(r.loss),
                    Cell::Real(r.loss - reference),
                    Cell::Real(r.grad_norm),
                    Cell::Int(r.steps as i64),
                ])?;
                ctx.progress().advance(1);
            }
            let at_reference = results
                .iter()
                .filter(|r| (r.loss - reference).abs() <= tol)
                .count();
            summary.insert(
                (*name).into(),
                serde_json::json!({
                    "optimum": optimum.map(|o| o.0),
                    "optimum_from": optimum.map(|o| o.1),
                    "best_found": best,
                    "starts_at_optimum": at_reference,
                    "starts": spec.starts,
                    "descent_seconds": descent_seconds,
                    "spurious_candidates": spurious,
                    "global_point": global_point,
                }),
            );
            ctx.summarize("landscape", &summary);
        }
        Ok(())
    }
}

impl Experiment for SparseLinearExperiment {
    fn name(&self) -> &'static str {
        "sparselinear"
    }

    fn title(&self) -> &'static str {
        "Landscape of sparse linear networks: where gradient descent from many starts ends"
    }

    fn paper(&self) -> &'static str {
        "D. Lin, R. Sun, Z. Zhang, Landscape of Sparse Linear Network: A Brief Investigation \
         (On the Landscape of One-hidden-layer Sparse Networks and Beyond), arXiv:2009.07439"
    }

    fn fields(&self) -> &'static [crate::spec::Field] {
        spec::FIELDS
    }

    fn default_spec(&self) -> toml::Table {
        toml::Table::try_from(SparseLinearSpec::default()).expect("the default spec serializes")
    }

    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = parse_spec(spec)?;
        check(&spec)?;
        Ok(Box::new(SparseLinearRun { spec }))
    }

    fn claim_docs(&self) -> Vec<ClaimDoc> {
        claims::docs()
    }

    fn check_claims(
        &self,
        spec: &toml::Table,
        _rows: &Table,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<ClaimResult> {
        match parse_spec(spec) {
            Ok(spec) => claims::check_run(&spec, summary),
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
        &["final_loss", "gap"]
    }

    fn describe_summary(
        &self,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let Some(sets) = summary.get("landscape").and_then(|l| l.as_object()) else {
            return Vec::new();
        };
        sets.iter()
            .map(|(name, s)| {
                let confirmed = s["spurious_candidates"].as_array().map_or(0, |c| {
                    c.iter().filter(|x| x["confirmed_minimum"] == true).count()
                });
                format!(
                    "{name}: {} of {} starts at the optimum {:.6e} ({}); {confirmed} spurious \
                     minimum level(s) confirmed",
                    s["starts_at_optimum"],
                    s["starts"],
                    s["optimum"]
                        .as_f64()
                        .or(s["best_found"].as_f64())
                        .unwrap_or(f64::NAN),
                    s["optimum_from"].as_str().unwrap_or("best found"),
                )
            })
            .collect()
    }
}
