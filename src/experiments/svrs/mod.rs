//! SVRS and AccSVRS: distributed finite-sum optimization under average second-order
//! similarity, against GD, AGD, DANE, the composite gradient method, AccEG, SVRP and
//! Catalyzed SVRP, every method counted in communications.
//!
//! Paper: D. Lin, Y. Han, H. Ye, Z. Zhang, "Stochastic Distributed Optimization under Average
//! Second-order Similarity: Algorithms and Analysis", NeurIPS 2023, arXiv:2304.07504.
//! Notes: `../shared/papers/svrs.md`. The update rules and parameters of SVRS and AccSVRS are
//! *reconstructed* there (from the OLGA paper and Katyusha X), not read in the paper.
//!
//! A run: load or draw the data, shuffle it into n iid nodes (views of one CSR matrix),
//! compute x*, f*, mu, L, delta_avg, delta_max exactly, then run every (method, seed) pair in
//! parallel, each with its own ChaCha8 stream, streaming rows in a fixed order.

pub mod claims;
pub mod data;
mod figures;
pub mod local;
pub mod methods;
pub mod problem;
pub mod spec;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use self::data::{Dataset, SyntheticShape, read_libsvm, synthetic};
use self::methods::{Meter, Method, Outcome, Parameters, Record, Reference, Setup, Stopping};
use self::problem::{Constants, Loss, Problem, constants, solve_optimum};
use self::spec::{AccegDelta, ProblemKind, SvrsSpec};
use crate::contract::{ColumnKind, ColumnSpec, Ctx, Experiment, Report, Valid};
use crate::input_error;
use crate::random::Streams;
use crate::table::Cell;
use crate::vector::norm2;

pub struct Svrs;

/// Dense d x d matrices alive at once at the peak: the Hessian, a node's H_i - H and the
/// eigensolver's work space for the exact constants, the Cholesky factor and the master's
/// inverse (measured peaks stay below this on a8a and w8a).
const DENSE_MATRICES_AT_PEAK: f64 = 8.0;

/// The data of a spec: synthetic from the `data` stream, a named LIBSVM set, or a file.
/// Refuses a problem that could not fit in memory: synthetic data before it is drawn, read
/// data (held at its exact CSR size) before the dense d x d matrices are allocated.
fn load(spec: &SvrsSpec, streams: Streams) -> Result<Dataset> {
    let dense = |d: f64| DENSE_MATRICES_AT_PEAK * d * d * 8.0;
    let data = match spec.data.as_str() {
        "synthetic" => {
            let (rows, d) = (spec.samples as f64, spec.features as f64);
            // CSR: a value (8 bytes) and an index (4) per entry, a row pointer and a label.
            let csr = rows * d * 12.0 + rows * 16.0;
            crate::memory::check_fits(
                csr + dense(d),
                &format!("{rows} x {d} synthetic rows and {d} x {d} matrices"),
            )?;
            synthetic(
                &SyntheticShape {
                    rows: spec.samples,
                    features: spec.features,
                    decay: spec.decay,
                    heterogeneity: spec.heterogeneity,
                    noise: spec.noise,
                    nodes: spec.nodes,
                    classification: spec.problem == ProblemKind::Logistic,
                },
                &mut streams.rng("data"),
            )
        }
        "file" => read_libsvm(Path::new(&spec.data_file))?,
        name => {
            let set = crate::data::libsvm_set(name)
                .ok_or_else(|| input_error!("data = {name}: not a LIBSVM set lab knows"))?;
            read_libsvm(&set.locate(name)?)?
        }
    };
    let (rows, d) = (data.features.rows(), data.features.cols);
    if spec.data != "synthetic" {
        crate::memory::check_fits(
            data.features.bytes() as f64 + dense(d as f64),
            &format!("{d} features: dense {d} x {d} Hessians for the exact constants"),
        )?;
    }
    if spec.nodes > rows {
        return Err(input_error!(
            "nodes = {} but the data has {rows} rows: expected nodes <= {rows}",
            spec.nodes
        ));
    }
    Ok(data)
}

/// Builds the problem of a spec (data, iid split from the `split` stream).
pub fn build_problem(spec: &SvrsSpec, streams: Streams) -> Result<Problem> {
    let data = load(spec, streams)?;
    let loss = match spec.problem {
        ProblemKind::Ridge => Loss::Ridge,
        ProblemKind::Logistic => Loss::Logistic,
    };
    Ok(Problem::split(
        data,
        loss,
        spec.lambda,
        spec.nodes,
        &mut streams.rng("split"),
    ))
}

/// Everything fixed for a run: x*, f*, the constants and the theory parameters.
pub struct Solved {
    pub reference: Reference,
    pub constants: Constants,
    /// L used by GD/AGD: the exact L for ridge, lambda_max(data)/4 + lambda for logistic.
    pub l_global: f64,
    pub parameters: Parameters,
    pub newton_steps: usize,
    pub grad_scale: f64,
    pub master_factor: Option<std::sync::Arc<local::Factor>>,
}

pub fn solve(problem: &Problem, spec: &SvrsSpec) -> Result<Solved> {
    let (x_star, newton_steps) = solve_optimum(problem)?;
    let constants = constants(problem, &x_star)?;
    if constants.delta_avg.is_nan() || constants.delta_avg <= 0.0 {
        return Err(input_error!(
            "every node has the same Hessian (delta = 0): expected nodes that differ \
             (more than one distinct row per node)"
        ));
    }
    let l_global = match problem.loss {
        Loss::Ridge => constants.l,
        Loss::Logistic => {
            // sigma' <= 1/4: a quarter of the data Gram matrix bounds every data Hessian.
            let gram = problem.data_hessian(None);
            let top = problem::eigenvalues(&gram)?.last().copied().unwrap_or(0.0);
            0.25 * top + problem.lambda
        }
    };
    let acceg_lp = match spec.acceg_delta {
        AccegDelta::Max => constants.delta_max,
        AccegDelta::Master => constants.delta_master,
    };
    let parameters = Parameters::new(
        &constants,
        l_global,
        problem.nodes(),
        spec.theta_scale,
        acceg_lp,
    );
    let x0 = vec![0.0; problem.dim()];
    let grad_scale = methods::gradient_scale(problem, &x0);
    let f_star = problem.value(&x_star);
    let hessian = (problem.loss == Loss::Ridge).then(|| {
        let h = problem.hessian(&x_star);
        let d = problem.dim();
        (0..d * d).map(|k| h[(k / d, k % d)]).collect()
    });
    let master_factor = local::LocalSolver::master_factor(problem, 1.0 / parameters.theta)?;
    Ok(Solved {
        reference: Reference {
            x_star,
            f_star,
            x0,
            hessian,
        },
        constants,
        l_global,
        parameters,
        newton_steps,
        grad_scale,
        master_factor,
    })
}

/// One (method, seed) pair; deterministic methods have the single seed 0.
#[derive(Debug, Clone, Copy)]
pub struct MethodSeed {
    pub method: Method,
    pub seed: usize,
}

pub fn jobs(spec: &SvrsSpec) -> Vec<MethodSeed> {
    spec.method
        .iter()
        .flat_map(|&method| {
            let seeds = if method.stochastic() { spec.seeds } else { 1 };
            (0..seeds).map(move |seed| MethodSeed { method, seed })
        })
        .collect()
}

/// The random stream of a job: one per (method, seed), so results do not depend on which
/// thread runs it or on the other jobs.
pub fn job_stream(job: MethodSeed) -> String {
    format!("method/{}/{}", job.method.name(), job.seed)
}

/// Runs one job from its stream, handing each record to `sink`.
pub fn run_job(
    problem: &Problem,
    solved: &Solved,
    stopping: Stopping,
    job: MethodSeed,
    rng: &mut rand_chacha::ChaCha8Rng,
    cancel: crate::contract::Cancel,
    sink: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<Outcome> {
    let setup = Setup {
        problem,
        constants: &solved.constants,
        parameters: &solved.parameters,
        grad_scale: solved.grad_scale,
        master_factor: solved.master_factor.clone(),
    };
    let mut tracker = methods::Tracker::new(problem, &solved.reference, stopping, cancel, sink);
    methods::run(job.method, &setup, &mut tracker, rng, &solved.reference.x0)?;
    match tracker.failure() {
        Some(e) => Err(e),
        None => Ok(tracker.outcome()),
    }
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("seed", Axis),
        ColumnSpec::new("comms", Axis).headline(),
        ColumnSpec::new("rounds", Axis),
        ColumnSpec::new("local_grads", Axis),
        ColumnSpec::new("rel_error", Metric).headline(),
        ColumnSpec::new("f_gap", Metric),
        ColumnSpec::new("wall_s", Time),
    ]
}

fn row(job: MethodSeed, record: &Record) -> Vec<Cell> {
    vec![
        Cell::Text(job.method.name().into()),
        Cell::Int(job.seed as i64),
        Cell::Int(record.meter.comms as i64),
        Cell::Int(record.meter.rounds as i64),
        Cell::Int(record.meter.local_grads as i64),
        Cell::Real(record.rel_error),
        Cell::Real(record.f_gap),
        Cell::Real(record.wall_s),
    ]
}

/// Median of a non-empty list.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let k = values.len();
    if k % 2 == 1 {
        values[k / 2]
    } else {
        0.5 * (values[k / 2 - 1] + values[k / 2])
    }
}

/// A method's median cost to tol over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    pub comms: f64,
    pub rounds: f64,
    pub local_grads: f64,
    pub seeds: usize,
}

/// Per method: the median cost-to-tol over its seeds, or none when a seed did not get there.
fn cost_summary(jobs: &[MethodSeed], outcomes: &[Outcome]) -> BTreeMap<String, Option<Cost>> {
    let mut by_method = BTreeMap::new();
    let mut methods: Vec<Method> = jobs.iter().map(|j| j.method).collect();
    methods.dedup();
    for method in methods {
        let reached: Vec<Option<Meter>> = jobs
            .iter()
            .zip(outcomes)
            .filter(|(j, _)| j.method == method)
            .map(|(_, o)| o.reached)
            .collect();
        let cost = reached.iter().all(Option::is_some).then(|| {
            let pick = |f: fn(&Meter) -> u64| {
                let mut v: Vec<f64> = reached.iter().flatten().map(|m| f(m) as f64).collect();
                median(&mut v)
            };
            Cost {
                comms: pick(|m| m.comms),
                rounds: pick(|m| m.rounds),
                local_grads: pick(|m| m.local_grads),
                seeds: reached.len(),
            }
        });
        by_method.insert(method.name().to_string(), cost);
    }
    by_method
}

/// The size of the data a run split over its nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSize {
    pub rows: usize,
    pub features: usize,
    pub nnz: usize,
    pub csr_bytes: usize,
    pub rows_per_node: usize,
}

/// How one (method, seed) job ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOutcome {
    pub method: String,
    pub seed: usize,
    pub outcome: Outcome,
}

/// What an SVRS run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SvrsSummary {
    pub data: Option<DataSize>,
    /// mu, L, delta_avg, delta_max, delta_master, exactly.
    pub constants: Option<Constants>,
    pub l_global: Option<f64>,
    pub delta_over_mu: Option<f64>,
    pub sqrt_n: Option<f64>,
    pub kappa: Option<f64>,
    pub f_star: Option<f64>,
    pub x_star_norm: Option<f64>,
    pub newton_steps: Option<usize>,
    pub ridge_gradients_from_gram: Option<bool>,
    pub parameters: Option<Parameters>,
    pub runs: Option<Vec<JobOutcome>>,
    /// Per method, the median cost to tol (null: a seed did not reach it).
    pub cost_to_tol: Option<BTreeMap<String, Option<Cost>>>,
}

impl Report for SvrsSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(c), Some(ratio), Some(sqrt_n)) =
            (&self.constants, self.delta_over_mu, self.sqrt_n)
        {
            lines.push(format!(
                "mu = {:.3e}, L = {:.3e}, delta_avg = {:.3e}, delta_max = {:.3e}; \
                 delta_avg/mu = {ratio:.1} {} sqrt(n) = {sqrt_n:.1}",
                c.mu,
                c.l,
                c.delta_avg,
                c.delta_max,
                if ratio > sqrt_n { ">" } else { "<=" }
            ));
        }
        if let Some(costs) = &self.cost_to_tol {
            let parts: Vec<String> = costs
                .iter()
                .map(|(m, c)| match c {
                    Some(c) => format!("{m} {:.0}", c.comms),
                    None => format!("{m} not reached"),
                })
                .collect();
            lines.push(format!(
                "communications to tol (median over seeds): {}",
                parts.join(", ")
            ));
        }
        lines
    }
}

impl Experiment for Svrs {
    type Spec = SvrsSpec;
    type Summary = SvrsSummary;
    /// The data, split over the nodes.
    type Inputs = Problem;

    const NAME: &'static str = "svrs";
    const TITLE: &'static str = "SVRS / AccSVRS: distributed optimization under average \
                                 second-order similarity, counted in communications";
    const PAPER: &'static str = "D. Lin, Y. Han, H. Ye, Z. Zhang, Stochastic Distributed \
                                 Optimization under Average Second-order Similarity: Algorithms \
                                 and Analysis, NeurIPS 2023, arXiv:2304.07504";

    fn prepare(spec: &Valid<Self>) -> Result<Problem> {
        build_problem(spec, spec.streams())
    }

    /// x*, the constants and the parameters, then every (method, seed) job in parallel.
    fn run(spec: &Valid<Self>, problem: Problem, ctx: &mut Ctx<Self>) -> Result<()> {
        let features = &problem.data.features;
        ctx.summary.data = Some(DataSize {
            rows: features.rows(),
            features: features.cols,
            nnz: features.nnz(),
            csr_bytes: features.bytes(),
            rows_per_node: features.rows() / problem.nodes(),
        });
        ctx.progress().phase("x*, f*, mu, L, delta");
        let solved = solve(&problem, spec)?;
        let c = &solved.constants;
        let summary = &mut ctx.summary;
        summary.constants = Some(c.clone());
        summary.l_global = Some(solved.l_global);
        summary.delta_over_mu = Some(c.delta_avg / c.mu);
        summary.sqrt_n = Some((problem.nodes() as f64).sqrt());
        summary.kappa = Some(solved.l_global / c.mu);
        summary.f_star = Some(solved.reference.f_star);
        summary.x_star_norm = Some(norm2(&solved.reference.x_star).sqrt());
        summary.newton_steps = Some(solved.newton_steps);
        summary.ridge_gradients_from_gram = Some(problem.uses_gram());
        summary.parameters = Some(solved.parameters.clone());
        ctx.begin(&columns())?;
        let jobs = jobs(spec);
        ctx.progress().set_total(jobs.len() as u64);
        let stopping = Stopping {
            tol: spec.tol,
            max_comms: spec.max_comms,
            record_every: spec.record_every,
        };
        let outcomes = ctx.jobs(&jobs, |&pair, job| {
            let mut sink = |record: Record| job.emit(row(pair, &record));
            let mut rng = job.rng(&job_stream(pair));
            run_job(
                &problem,
                &solved,
                stopping,
                pair,
                &mut rng,
                job.cancel(),
                &mut sink,
            )
        })?;
        ctx.summary.runs = Some(
            jobs.iter()
                .zip(&outcomes)
                .map(|(pair, outcome)| JobOutcome {
                    method: pair.method.name().into(),
                    seed: pair.seed,
                    outcome: outcome.clone(),
                })
                .collect(),
        );
        ctx.summary.cost_to_tol = Some(cost_summary(&jobs, &outcomes));
        Ok(())
    }
}
