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

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use self::model::{SparseLinear, ar1_covariance, columns};
use self::spec::{MaskKind, SparseLinearSpec};
use crate::contract::{
    Attachment, Cancel, ColumnKind, ColumnSpec, Ctx, Experiment, Interrupted, Report, Valid,
};
use crate::flow::{Objective, gradient_descent};
use crate::linear_net::singular_values;
use crate::random::{Streams, standard_normal as normal};
use crate::table::Cell;

pub struct SparseLinearExperiment;

/// The first layer's mask of a spec (a random one from the `mask` stream).
pub fn first_mask(spec: &SparseLinearSpec, streams: Streams) -> Array2<f64> {
    let (d0, d1) = (spec.widths[0], spec.widths[1]);
    match spec.mask {
        MaskKind::Dense => Array2::ones((d1, d0)),
        MaskKind::Random => {
            let mut rng = streams.rng("mask");
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

/// The network of a spec with the given first-layer mask (the teacher from the `teacher`
/// stream).
pub fn network(spec: &SparseLinearSpec, streams: Streams, first: Array2<f64>) -> SparseLinear {
    let w = &spec.widths;
    let (d0, dn) = (w[0], w[w.len() - 1]);
    let sigma = ar1_covariance(d0, spec.correlation);
    let mut rng = streams.rng("teacher");
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
    descend_until(net, theta0, spec, Cancel::new(&AtomicBool::new(false)))
}

/// [`descend`] that gives up (as unconverged) when `cancel` is set, checked every 500 steps.
pub fn descend_until(
    net: &SparseLinear,
    theta0: &[f64],
    spec: &SparseLinearSpec,
    cancel: Cancel,
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
        if norm <= spec.grad_tol || steps >= spec.iterations || cancel.is_set() {
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

/// The weights as the network uses them: masked entries set to 0. Descent never moves them
/// (their gradient is masked), so they keep their random start values, which mean nothing.
fn masked(net: &SparseLinear, theta: &[f64]) -> Vec<f64> {
    let mask = net.masks.iter().flat_map(|m| m.iter().copied());
    theta.iter().zip(mask).map(|(t, m)| t * m).collect()
}

/// Start K of a run, from its `start/K` stream.
pub fn starting_point(spec: &SparseLinearSpec, dim: usize, mut rng: ChaCha8Rng) -> Vec<f64> {
    (0..dim)
        .map(|_| spec.init_scale * normal(&mut rng))
        .collect()
}

/// Whether perturbed restarts from a candidate ever end lower (false: a confirmed minimum).
pub fn perturbation_lowers(
    net: &SparseLinear,
    candidate: &StartResult,
    spec: &SparseLinearSpec,
    streams: Streams,
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
            let mut rng = streams.rng(&format!("perturb/{k}"));
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

/// One row per start, written as the start ends. Where it ended against the optimum (the
/// outcome and the gap) is known only once every start has: those go to `NAME.outcomes.csv`.
fn columns_spec() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("mask", Key),
        ColumnSpec::new("start", Axis),
        // A diverged start has an infinite loss (never NaN).
        ColumnSpec::new("final_loss", MetricMayBeInfinite).headline(),
        ColumnSpec::new("grad_norm", MetricMayBeInfinite).headline(),
        ColumnSpec::new("steps", Axis),
    ]
}

/// A candidate for a spurious minimum: a level above the optimum where starts converged,
/// with what the perturbed restarts and the Hessian say of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub loss: f64,
    pub confirmed_minimum: bool,
    /// None without perturbations (or when every perturbed restart diverged).
    pub lowest_after_perturbation: Option<f64>,
    pub hessian_most_negative: f64,
    /// None when no eigenvalue is above the zero band.
    pub hessian_smallest_positive: Option<f64>,
    pub hessian_zero_modes: usize,
    pub symmetries: usize,
    /// The weights: W1 row by row (masked entries included, as 0), then the other layers.
    pub point: Option<Vec<f64>>,
}

/// Where the starts of one mask set ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetSummary {
    /// L* in closed form, where the notes give one.
    pub optimum: Option<f64>,
    pub optimum_from: Option<String>,
    /// The lowest final loss (None if every start diverged).
    pub best_found: Option<f64>,
    /// Final losses within this of the reference (L*, or the best found) are at it (absent
    /// from manifests of lab 0.1 before the outcomes table: the figures do not need it).
    #[serde(default)]
    pub tolerance: f64,
    pub starts_at_optimum: usize,
    pub starts: usize,
    pub descent_seconds: f64,
    pub spurious_candidates: Vec<Candidate>,
    /// A start at the reference, for the slice through both minima (small networks).
    pub global_point: Option<Vec<f64>>,
}

impl SetSummary {
    /// The loss the gaps are measured from: L*, or the best loss found.
    pub fn reference(&self) -> Option<f64> {
        self.optimum.or(self.best_found)
    }

    /// Where a start ended (global, spurious, unconverged, other, diverged).
    pub fn outcome(&self, loss: f64, grad_norm: f64, grad_tol: f64) -> &'static str {
        let near = |level: f64| (level - loss).abs() <= self.tolerance;
        if loss.is_infinite() {
            "diverged"
        } else if self.reference().is_some_and(near) {
            "global"
        } else if self
            .spurious_candidates
            .iter()
            .any(|c| c.confirmed_minimum && near(c.loss))
        {
            "spurious"
        } else if grad_norm > grad_tol {
            "unconverged"
        } else {
            "other"
        }
    }
}

/// The problem itself, so another tool can redo the same sweep (small runs only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProblemData {
    pub sigma: Vec<Vec<f64>>,
    pub c: Vec<Vec<f64>>,
    pub k0: f64,
    pub first_mask: Vec<Vec<f64>>,
}

/// What a sparse linear run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SparseLinearSummary {
    pub problem: Option<ProblemData>,
    /// Per mask set: `sparse` (the spec's mask) and `dense` (the same teacher, every weight).
    pub landscape: Option<BTreeMap<String, SetSummary>>,
}

impl Report for SparseLinearSummary {
    fn describe(&self) -> Vec<String> {
        self.landscape
            .iter()
            .flatten()
            .map(|(name, s)| {
                let confirmed = s
                    .spurious_candidates
                    .iter()
                    .filter(|c| c.confirmed_minimum)
                    .count();
                format!(
                    "{name}: {} of {} starts at the optimum {:.6e} ({}); {confirmed} spurious \
                     minimum level(s) confirmed",
                    s.starts_at_optimum,
                    s.starts,
                    s.reference().unwrap_or(f64::NAN),
                    s.optimum_from.as_deref().unwrap_or("best found"),
                )
            })
            .collect()
    }
}

impl Experiment for SparseLinearExperiment {
    type Spec = SparseLinearSpec;
    type Summary = SparseLinearSummary;
    type Inputs = ();

    const NAME: &'static str = "sparselinear";
    const TITLE: &'static str =
        "Landscape of sparse linear networks: where gradient descent from many starts ends";
    const PAPER: &'static str = "D. Lin, R. Sun, Z. Zhang, Landscape of Sparse Linear Network: \
                                 A Brief Investigation (On the Landscape of One-hidden-layer \
                                 Sparse Networks and Beyond), arXiv:2009.07439";

    fn prepare(_: &Valid<Self>) -> Result<()> {
        Ok(())
    }

    /// For the spec's mask and (for a sparse one) the dense mask: every start in parallel,
    /// then the optimum, the candidates for spurious minima and each start's outcome.
    fn run(spec: &Valid<Self>, _: (), ctx: &mut Ctx<Self>) -> Result<()> {
        let streams = ctx.streams();
        let sparse = network(spec, streams, first_mask(spec, streams));
        let mut sets = vec![("sparse", sparse, spec.mask)];
        if spec.mask != MaskKind::Dense {
            let dense_first = Array2::ones((spec.widths[1], spec.widths[0]));
            sets.push((
                "dense",
                network(spec, streams, dense_first),
                MaskKind::Dense,
            ));
        } else {
            sets[0].0 = "dense";
        }
        let problem = &sets[0].1;
        if problem.sigma.len() + problem.c.len() <= 10_000 {
            let rows = |m: &Array2<f64>| -> Vec<Vec<f64>> {
                m.rows().into_iter().map(|r| r.to_vec()).collect()
            };
            ctx.summary.problem = Some(ProblemData {
                sigma: rows(&problem.sigma),
                c: rows(&problem.c),
                k0: problem.k0,
                first_mask: rows(&problem.masks[0]),
            });
        }
        ctx.begin(&columns_spec())?;
        ctx.progress().set_total((sets.len() * spec.starts) as u64);
        let mut outcomes = Vec::new();
        for (name, net, kind) in &sets {
            ctx.check_cancel()?;
            ctx.progress().phase(name);
            let started = std::time::Instant::now();
            let starts: Vec<usize> = (0..spec.starts).collect();
            let results = ctx.jobs(&starts, |&k, job| {
                let theta0 = starting_point(spec, net.dim(), job.rng(&format!("start/{k}")));
                let r = descend_until(net, &theta0, spec, job.cancel());
                // A start cut short by Ctrl-C has not ended anywhere: no row for it.
                if job.cancel().is_set() {
                    return Err(Interrupted.into());
                }
                job.emit(vec![
                    Cell::Text((*name).into()),
                    Cell::Int(k as i64),
                    Cell::Real(r.loss),
                    Cell::Real(r.grad_norm),
                    Cell::Int(r.steps as i64),
                ])?;
                Ok(r)
            });
            let results = results?;
            let descent_seconds = started.elapsed().as_secs_f64();
            let set = landscape(spec, streams, net, *kind, &results, descent_seconds);
            for (k, r) in results.iter().enumerate() {
                let outcome = set.outcome(r.loss, r.grad_norm, spec.grad_tol);
                let gap = set
                    .reference()
                    .map_or(Cell::Missing, |l| Cell::Real(r.loss - l));
                outcomes.push(vec![
                    Cell::Text((*name).into()),
                    Cell::Int(k as i64),
                    Cell::Text(outcome.into()),
                    gap,
                ]);
            }
            ctx.summary
                .landscape
                .get_or_insert_with(BTreeMap::new)
                .insert((*name).into(), set);
            // After each set, so a run stopped in the next keeps this one's outcomes.
            ctx.attach(Attachment {
                suffix: ".outcomes".into(),
                header: ["mask", "start", "outcome", "gap"]
                    .map(String::from)
                    .to_vec(),
                rows: outcomes.clone(),
            });
        }
        Ok(())
    }
}

/// The optimum of a set, the levels where starts converged above it (up to five, each tested
/// by perturbed restarts and the Hessian), and a start at the optimum.
fn landscape(
    spec: &SparseLinearSpec,
    streams: Streams,
    net: &SparseLinear,
    kind: MaskKind,
    results: &[StartResult],
    descent_seconds: f64,
) -> SetSummary {
    let best = results.iter().map(|r| r.loss).fold(f64::INFINITY, f64::min);
    let optimum = oracle(spec, net, kind);
    let reference = optimum.map_or(best, |o| o.0);
    // Every start diverged and no optimum is known: nothing is near the (infinite) reference.
    let tol = if reference.is_finite() {
        1e-7 * reference.abs().max(1.0)
    } else {
        0.0
    };
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
    let small = net.dim() <= 1000;
    let finite = |x: f64| x.is_finite().then_some(x);
    let spurious_candidates = levels
        .iter()
        .take(5)
        .map(|candidate| {
            let (lowers, lowest) = perturbation_lowers(net, candidate, spec, streams, tol);
            // Perturbations decide (the notes: Hessians may be degenerate); the Hessian is
            // reported beside them, and a negative eigenvalue below the zero band vetoes.
            let curv = curvature(net, &candidate.theta);
            let band = 1e-7 * curv.smallest_positive.max(curv.most_negative.abs());
            Candidate {
                loss: candidate.loss,
                confirmed_minimum: !lowers && curv.most_negative >= -band,
                lowest_after_perturbation: finite(lowest),
                hessian_most_negative: curv.most_negative,
                hessian_smallest_positive: finite(curv.smallest_positive),
                hessian_zero_modes: curv.zero_modes,
                symmetries: curv.symmetries,
                point: small.then(|| masked(net, &candidate.theta)),
            }
        })
        .collect();
    SetSummary {
        optimum: optimum.map(|o| o.0),
        optimum_from: optimum.map(|o| o.1.to_string()),
        best_found: finite(best),
        tolerance: tol,
        starts_at_optimum: results
            .iter()
            .filter(|r| (r.loss - reference).abs() <= tol)
            .count(),
        starts: spec.starts,
        descent_seconds,
        spurious_candidates,
        global_point: results
            .iter()
            .find(|r| (r.loss - reference).abs() <= tol)
            .filter(|_| small)
            .map(|r| masked(net, &r.theta)),
    }
}
