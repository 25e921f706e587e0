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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use rayon::prelude::*;

use self::data::{Dataset, SyntheticShape, read_libsvm, synthetic};
use self::methods::{Meter, Method, Outcome, Parameters, Record, Reference, Setup, Stopping};
use self::problem::{Constants, Loss, Problem, constants, solve_optimum};
use self::spec::{AccegDelta, ProblemKind, SvrsSpec};
use super::{ClaimDoc, Experiment, PreparedRun, RunData};
use crate::claims::ClaimResult;
use crate::input_error;
use crate::plot::Figure;
use crate::run::{ColumnKind, ColumnSpec, RunContext, component_rng};
use crate::table::{Cell, Table};

pub struct Svrs;

/// The resolved spec as the typed struct (the field table has checked types and ranges).
pub fn parse_spec(spec: &toml::Table) -> Result<SvrsSpec> {
    crate::spec::typed("svrs", spec)
}

/// Where a named LIBSVM data set lives: `$LAB_DATA/libsvm/NAME` (or `NAME.gz`).
pub fn named_dataset_path(name: &str) -> Result<PathBuf> {
    let Some(root) = std::env::var_os("LAB_DATA") else {
        return Err(input_error!(
            "data = {name} needs LAB_DATA: expected LAB_DATA=DIR with the file DIR/libsvm/{name} \
             (LIBSVM binary data sets page), or data = synthetic"
        ));
    };
    let base = Path::new(&root).join("libsvm").join(name);
    let gz = base.with_file_name(format!("{name}.gz"));
    match (base.exists(), gz.exists()) {
        (true, _) => Ok(base),
        (false, true) => Ok(gz),
        _ => Err(input_error!(
            "data = {name}: {} does not exist: expected the LIBSVM file there (plain or .gz)",
            base.display()
        )),
    }
}

/// Cross-field checks and data loading; every failure is an input error.
fn load(spec: &SvrsSpec) -> Result<Dataset> {
    if spec.data == "file" && spec.data_file.is_empty() {
        return Err(input_error!(
            "data = file needs data_file = PATH (a LIBSVM file)"
        ));
    }
    if spec.data != "file" && !spec.data_file.is_empty() {
        return Err(input_error!(
            "data_file = {:?} is set but data = {}: expected data = file (or data_file = \"\")",
            spec.data_file,
            spec.data
        ));
    }
    let data = match spec.data.as_str() {
        "synthetic" => synthetic(
            &SyntheticShape {
                rows: spec.samples,
                features: spec.features,
                decay: spec.decay,
                heterogeneity: spec.heterogeneity,
                noise: spec.noise,
                nodes: spec.nodes,
                classification: spec.problem == ProblemKind::Logistic,
            },
            &mut component_rng(spec.seed, "data"),
        ),
        "file" => read_libsvm(Path::new(&spec.data_file))?,
        name => read_libsvm(&named_dataset_path(name)?)?,
    };
    let rows = data.features.rows();
    if spec.nodes > rows {
        return Err(input_error!(
            "nodes = {} but the data has {rows} rows: expected nodes <= {rows}",
            spec.nodes
        ));
    }
    Ok(data)
}

/// Builds the problem of a spec (data, iid split from the `split` stream).
pub fn build_problem(spec: &SvrsSpec) -> Result<Problem> {
    let data = load(spec)?;
    let loss = match spec.problem {
        ProblemKind::Ridge => Loss::Ridge,
        ProblemKind::Logistic => Loss::Logistic,
    };
    Ok(Problem::split(
        data,
        loss,
        spec.lambda,
        spec.nodes,
        &mut component_rng(spec.seed, "split"),
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
pub struct Job {
    pub method: Method,
    pub seed: usize,
}

pub fn jobs(spec: &SvrsSpec) -> Vec<Job> {
    spec.method
        .iter()
        .flat_map(|&method| {
            let seeds = if method.stochastic() { spec.seeds } else { 1 };
            (0..seeds).map(move |seed| Job { method, seed })
        })
        .collect()
}

/// The random stream of a job: one per (method, seed), so results do not depend on which
/// thread runs it or on the other jobs.
pub fn job_rng(root: u64, job: Job) -> rand_chacha::ChaCha8Rng {
    component_rng(root, &format!("method/{}/{}", job.method.name(), job.seed))
}

/// Runs one job, handing each record to `sink`.
pub fn run_job(
    problem: &Problem,
    solved: &Solved,
    stopping: Stopping,
    job: Job,
    root_seed: u64,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(Record),
) -> Result<Outcome> {
    let setup = Setup {
        problem,
        constants: &solved.constants,
        parameters: &solved.parameters,
        grad_scale: solved.grad_scale,
        master_factor: solved.master_factor.clone(),
    };
    let mut tracker = methods::Tracker::new(problem, &solved.reference, stopping, cancel, sink);
    let mut rng = job_rng(root_seed, job);
    methods::run(
        job.method,
        &setup,
        &mut tracker,
        &mut rng,
        &solved.reference.x0,
    )?;
    Ok(tracker.outcome())
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("method", Key),
        ColumnSpec::new("seed", Axis),
        ColumnSpec::new("comms", Axis),
        ColumnSpec::new("rounds", Axis),
        ColumnSpec::new("local_grads", Axis),
        ColumnSpec::new("rel_error", Metric),
        ColumnSpec::new("f_gap", Metric),
        ColumnSpec::new("wall_s", Time),
    ]
}

fn row(job: Job, record: &Record) -> Vec<Cell> {
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

enum Message {
    Row(usize, Record),
    Done(usize, Result<Outcome>),
}

struct SvrsRun {
    spec: SvrsSpec,
    problem: Problem,
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

/// Per method: the median cost-to-tol over its seeds, or null when a seed did not get there.
fn cost_summary(jobs: &[Job], outcomes: &[Option<Outcome>]) -> serde_json::Value {
    let mut by_method = serde_json::Map::new();
    let mut methods: Vec<Method> = jobs.iter().map(|j| j.method).collect();
    methods.dedup();
    for method in methods {
        let reached: Vec<Option<Meter>> = jobs
            .iter()
            .zip(outcomes)
            .filter(|(j, _)| j.method == method)
            .map(|(_, o)| o.as_ref().and_then(|o| o.reached))
            .collect();
        let value = if reached.iter().all(Option::is_some) {
            let pick = |f: fn(&Meter) -> u64| {
                let mut v: Vec<f64> = reached.iter().flatten().map(|m| f(m) as f64).collect();
                median(&mut v)
            };
            serde_json::json!({
                "comms": pick(|m| m.comms),
                "rounds": pick(|m| m.rounds),
                "local_grads": pick(|m| m.local_grads),
                "seeds": reached.len(),
            })
        } else {
            serde_json::Value::Null
        };
        by_method.insert(method.name().into(), value);
    }
    serde_json::Value::Object(by_method)
}

impl PreparedRun for SvrsRun {
    /// Runs the jobs on the rayon pool from a helper thread while this thread streams their
    /// rows; so it must not itself be called from a rayon worker (it would wait on work
    /// queued behind itself).
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()> {
        anyhow::ensure!(
            rayon::current_thread_index().is_none(),
            "internal: an svrs run was started from a rayon worker thread"
        );
        let spec = &self.spec;
        let problem = &self.problem;
        let features = &problem.data.features;
        ctx.summarize(
            "data",
            serde_json::json!({
                "rows": features.rows(),
                "features": features.cols,
                "nnz": features.nnz(),
                "csr_bytes": features.bytes(),
                "rows_per_node": features.rows() / problem.nodes(),
            }),
        );
        ctx.progress().phase("x*, f*, mu, L, delta");
        let solved = solve(problem, spec)?;
        let c = &solved.constants;
        ctx.summarize("constants", c);
        ctx.summarize("l_global", solved.l_global);
        ctx.summarize("delta_over_mu", c.delta_avg / c.mu);
        ctx.summarize("sqrt_n", (problem.nodes() as f64).sqrt());
        ctx.summarize("kappa", solved.l_global / c.mu);
        ctx.summarize("f_star", solved.reference.f_star);
        ctx.summarize(
            "x_star_norm",
            problem::norm2(&solved.reference.x_star).sqrt(),
        );
        ctx.summarize("newton_steps", solved.newton_steps);
        ctx.summarize("ridge_gradients_from_gram", problem.uses_gram());
        ctx.summarize("parameters", &solved.parameters);
        ctx.begin(&columns())?;
        let jobs = jobs(spec);
        ctx.progress().set_total(jobs.len() as u64);
        let stopping = Stopping {
            tol: spec.tol,
            max_comms: spec.max_comms,
            record_every: spec.record_every,
        };
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<Message>();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        let mut first_error: Option<anyhow::Error> = None;
        std::thread::scope(|scope| {
            let (jobs, solved, stop) = (&jobs, &solved, &stop);
            scope.spawn(move || {
                jobs.par_iter()
                    .enumerate()
                    .for_each_with(tx, |tx, (k, &job)| {
                        let mut sink = |record: Record| {
                            let _ = tx.send(Message::Row(k, record));
                        };
                        let result =
                            run_job(problem, solved, stopping, job, spec.seed, stop, &mut sink);
                        let _ = tx.send(Message::Done(k, result));
                    });
            });
            // Rows go out in job order: the lowest unfinished job streams, later ones wait.
            let mut buffered: Vec<Vec<Record>> = vec![Vec::new(); jobs.len()];
            let mut done = vec![false; jobs.len()];
            let mut current = 0;
            let emit = |ctx: &mut RunContext, k: usize, record: &Record, error: &mut Option<_>| {
                if let Err(e) = ctx.emit(row(jobs[k], record)) {
                    error.get_or_insert(e);
                    stop.store(true, Ordering::Relaxed);
                }
            };
            loop {
                let message = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if ctx.cancelled() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                if ctx.cancelled() {
                    stop.store(true, Ordering::Relaxed);
                }
                match message {
                    Message::Row(k, record) if k == current => {
                        emit(ctx, k, &record, &mut first_error)
                    }
                    Message::Row(k, record) => buffered[k].push(record),
                    Message::Done(k, result) => {
                        done[k] = true;
                        match result {
                            Ok(outcome) => outcomes[k] = Some(outcome),
                            Err(e) => {
                                first_error.get_or_insert(e);
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        ctx.progress().advance(1);
                        while current < jobs.len() && done[current] {
                            current += 1;
                            if current < jobs.len() {
                                for record in std::mem::take(&mut buffered[current]) {
                                    emit(ctx, current, &record, &mut first_error);
                                }
                            }
                        }
                    }
                }
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        let per_job: Vec<serde_json::Value> = jobs
            .iter()
            .zip(&outcomes)
            .map(|(job, o)| {
                serde_json::json!({
                    "method": job.method.name(),
                    "seed": job.seed,
                    "outcome": o,
                })
            })
            .collect();
        ctx.summarize("runs", per_job);
        ctx.summarize("cost_to_tol", cost_summary(&jobs, &outcomes));
        ctx.check_cancel()?;
        Ok(())
    }
}

impl Experiment for Svrs {
    fn name(&self) -> &'static str {
        "svrs"
    }

    fn title(&self) -> &'static str {
        "SVRS / AccSVRS: distributed optimization under average second-order similarity, \
         counted in communications"
    }

    fn paper(&self) -> &'static str {
        "D. Lin, Y. Han, H. Ye, Z. Zhang, Stochastic Distributed Optimization under Average \
         Second-order Similarity: Algorithms and Analysis, NeurIPS 2023, arXiv:2304.07504"
    }

    fn fields(&self) -> &'static [crate::spec::Field] {
        spec::FIELDS
    }

    fn default_spec(&self) -> toml::Table {
        toml::Table::try_from(SvrsSpec::default()).expect("the default spec serializes")
    }

    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = parse_spec(spec)?;
        let problem = build_problem(&spec)?;
        Ok(Box::new(SvrsRun { spec, problem }))
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
        &["comms", "rel_error"]
    }

    fn describe_summary(
        &self,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(c), Some(ratio), Some(sqrt_n)) = (
            summary.get("constants"),
            summary.get("delta_over_mu").and_then(|v| v.as_f64()),
            summary.get("sqrt_n").and_then(|v| v.as_f64()),
        ) {
            let get = |k: &str| c.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            lines.push(format!(
                "mu = {:.3e}, L = {:.3e}, delta_avg = {:.3e}, delta_max = {:.3e}; \
                 delta_avg/mu = {ratio:.1} {} sqrt(n) = {sqrt_n:.1}",
                get("mu"),
                get("l"),
                get("delta_avg"),
                get("delta_max"),
                if ratio > sqrt_n { ">" } else { "<=" }
            ));
        }
        if let Some(costs) = summary.get("cost_to_tol").and_then(|v| v.as_object()) {
            let parts: Vec<String> = costs
                .iter()
                .map(|(m, c)| match c.get("comms").and_then(|v| v.as_f64()) {
                    Some(comms) => format!("{m} {comms:.0}"),
                    None => format!("{m} not reached"),
                })
                .collect();
            lines.push(format!("communications to tol: {}", parts.join(", ")));
        }
        lines
    }
}
