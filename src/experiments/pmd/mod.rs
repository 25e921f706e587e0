//! Unregularized policy mirror descent (PMD) with general Bregman divergences.
//!
//! Paper: D. Lin, Z. Zhang, "On the Convergence of Policy in Unregularized Policy Mirror
//! Descent", arXiv:2205.08176; value bounds from L. Xiao (JMLR 2022) and Johnson,
//! Pike-Burke & Rebeschini (NeurIPS 2023). Notes: `../shared/papers/pmd.md`.
//!
//! A run: build the MDP, find V*, A*_s and Delta by policy iteration, then for each divergence
//! iterate pi_{k+1}(.|s) = argmax_p { eta_k <Q^{pi_k}(s, .), p> - D(p, pi_k(.|s)) } with exact
//! evaluation, emitting one row per iterate.

pub mod claims;
pub mod evaluation;
mod figures;
pub mod mdp;
pub mod mirror;
pub mod spec;
pub mod theory;
pub mod verify;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ndarray::{Array1, Array2};
use rand::Rng;
use rayon::prelude::*;

use self::evaluation::{EvalMethod, Evaluator, LU_MAX_STATES, Optimum, solve_optimum};
use self::mdp::Mdp;
use self::mirror::{Divergence, greedy_set, log_sum_exp};
use self::spec::{EvalChoice, InitPolicy, MdpKind, PmdSpec, Schedule};
use super::{ClaimDoc, Experiment, Exporter, PreparedRun, RunData};
use crate::claims::ClaimResult;
use crate::input_error;
use crate::plot::Figure;
use crate::run::{ColumnKind, ColumnSpec, RunContext, component_rng};
use crate::table::{Cell, Table};

pub struct Pmd;

/// The resolved spec as the typed struct (the field table has checked types and ranges).
pub fn parse_spec(spec: &toml::Table) -> Result<PmdSpec> {
    crate::spec::typed("pmd", spec)
}

/// Largest dense evaluation matrix we agree to factor (S^2 doubles).
const LU_STATE_LIMIT: usize = 10_000;
/// Largest number of stored transitions (12 bytes each).
const MAX_TRANSITIONS: usize = 200_000_000;

/// Cross-field checks that the field table cannot express.
fn check(spec: &PmdSpec) -> Result<()> {
    let transitions = match spec.mdp {
        MdpKind::Garnet => {
            if spec.branching > spec.states {
                return Err(input_error!(
                    "branching = {} exceeds states = {}: expected 1 <= branching <= states",
                    spec.branching,
                    spec.states
                ));
            }
            spec.states * spec.actions * spec.branching
        }
        MdpKind::Dense => spec.states * spec.actions * spec.states,
        MdpKind::Chain => {
            if spec.chain_gap * (spec.actions as f64 - 1.0) > 1.0 {
                return Err(input_error!(
                    "chain_gap = {} is too large for actions = {}: rewards 1 - a * chain_gap \
                     must stay >= 0, expected chain_gap <= {}",
                    spec.chain_gap,
                    spec.actions,
                    1.0 / (spec.actions as f64 - 1.0)
                ));
            }
            spec.states * spec.actions
        }
        MdpKind::TwoState | MdpKind::File => 0,
    };
    if transitions > MAX_TRANSITIONS {
        return Err(input_error!(
            "this MDP would store {transitions} transitions: expected at most {MAX_TRANSITIONS} \
             (fewer states, actions or branching)"
        ));
    }
    if spec.mdp == MdpKind::File && spec.mdp_file.is_empty() {
        return Err(input_error!(
            "mdp = file needs mdp_file = PATH (a `lab-mdp 1` file)"
        ));
    }
    if spec.mdp != MdpKind::File && !spec.mdp_file.is_empty() {
        return Err(input_error!(
            "mdp_file = {:?} is set but mdp = {}: expected mdp = file (or mdp_file = \"\")",
            spec.mdp_file,
            toml::Value::try_from(spec.mdp).map_or(String::new(), |v| v.to_string())
        ));
    }
    let has = |d: spec::DivergenceName| spec.divergence.contains(&d);
    if has(spec::DivergenceName::Tsallis) && spec.tsallis_q == 1.0 {
        return Err(input_error!(
            "tsallis_q = 1 is the KL divergence: expected tsallis_q != 1 (or divergence = kl)"
        ));
    }
    if spec.schedule == Schedule::Adaptive && has(spec::DivergenceName::Burg) {
        return Err(input_error!(
            "schedule = adaptive with divergence = burg: the Burg distance to the greedy face is \
             infinite, so the adaptive step would be infinite; expected another schedule or \
             divergence"
        ));
    }
    Ok(())
}

/// Builds the MDP of a spec (deterministic: the `mdp` stream of the seed).
pub fn build_mdp(spec: &PmdSpec) -> Result<Mdp> {
    let mut rng = component_rng(spec.seed, "mdp");
    Ok(match spec.mdp {
        MdpKind::Garnet => Mdp::garnet(spec.states, spec.actions, spec.branching, &mut rng),
        MdpKind::Dense => Mdp::dense_random(spec.states, spec.actions, &mut rng),
        MdpKind::Chain => Mdp::chain(spec.states, spec.actions, spec.chain_gap),
        MdpKind::TwoState => Mdp::two_state(),
        MdpKind::File => Mdp::read(Path::new(&spec.mdp_file))?,
    })
}

fn eval_method(spec: &PmdSpec, states: usize) -> Result<EvalMethod> {
    let lu = match spec.evaluation {
        EvalChoice::Lu => true,
        EvalChoice::Iterative => false,
        EvalChoice::Auto => states <= LU_MAX_STATES,
    };
    if lu && states > LU_STATE_LIMIT {
        return Err(input_error!(
            "evaluation = lu with {states} states needs a dense {states} x {states} matrix: \
             expected at most {LU_STATE_LIMIT} states, or evaluation = iterative"
        ));
    }
    Ok(if lu {
        EvalMethod::Lu
    } else {
        EvalMethod::Iterative { tol: spec.eval_tol }
    })
}

/// pi_0: uniform, or uniform on each state's simplex (normalized exponentials).
pub fn initial_policy(spec: &PmdSpec, mdp: &Mdp) -> Array2<f64> {
    let (s, a) = (mdp.states, mdp.actions);
    match spec.init_policy {
        InitPolicy::Uniform => Array2::from_elem((s, a), 1.0 / a as f64),
        InitPolicy::Random => {
            let mut rng = component_rng(spec.seed, "init_policy");
            let mut pi = Array2::from_shape_fn((s, a), |_| -(1.0 - rng.random::<f64>()).ln());
            for mut row in pi.rows_mut() {
                let total = row.sum();
                row /= total;
            }
            pi
        }
    }
}

/// Writes the MDP of a spec to a `lab-mdp 1` file (`lab run pmd --export-mdp FILE`).
pub fn export_mdp(spec: &toml::Table, path: &Path) -> Result<String> {
    let spec = parse_spec(spec)?;
    check(&spec)?;
    let mdp = build_mdp(&spec)?;
    std::fs::write(path, mdp.to_text())
        .map_err(|e| input_error!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "wrote {} ({} states, {} actions, {} transitions)",
        path.display(),
        mdp.states,
        mdp.actions,
        mdp.nnz()
    ))
}

impl Experiment for Pmd {
    fn name(&self) -> &'static str {
        "pmd"
    }

    fn title(&self) -> &'static str {
        "Unregularized policy mirror descent with Bregman divergences: convergence of the policy"
    }

    fn paper(&self) -> &'static str {
        "D. Lin, Z. Zhang, On the Convergence of Policy in Unregularized Policy Mirror Descent, \
         arXiv:2205.08176; bounds of L. Xiao (JMLR 2022) and Johnson et al. (NeurIPS 2023)"
    }

    fn fields(&self) -> &'static [crate::spec::Field] {
        spec::FIELDS
    }

    fn default_spec(&self) -> toml::Table {
        toml::Table::try_from(PmdSpec::default()).expect("the default spec serializes")
    }

    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = parse_spec(spec)?;
        check(&spec)?;
        let mdp = build_mdp(&spec)?;
        let method = eval_method(&spec, mdp.states)?;
        Ok(Box::new(PmdRun { spec, mdp, method }))
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
        &["value_gap_inf", "value_gap_rho", "nonopt_mass", "optimal"]
    }

    fn exporter(&self) -> Option<Exporter> {
        Some(Exporter {
            flag: "export-mdp",
            help: "Write the MDP of these settings to FILE (lab-mdp format) instead of running",
            write: export_mdp,
        })
    }

    fn describe_summary(
        &self,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(delta) = summary.get("gap_delta") {
            let delta = delta
                .as_f64()
                .map_or("none (every action optimal)".into(), |d| format!("{d:.4e}"));
            let pi = summary.get("pi_iterations").map_or(String::new(), |p| {
                format!(", policy iteration took {p} iterations")
            });
            lines.push(format!("action gap Delta = {delta}{pi}"));
        }
        if let Some(hits) = summary.get("hitting_iteration").and_then(|h| h.as_object()) {
            let parts: Vec<String> = hits
                .iter()
                .map(|(d, k)| match k.as_u64() {
                    Some(k) => format!("{d} from iteration {k}"),
                    None => format!("{d} not reached"),
                })
                .collect();
            lines.push(format!("exactly optimal policy: {}", parts.join(", ")));
        }
        lines
    }
}

struct PmdRun {
    spec: PmdSpec,
    mdp: Mdp,
    method: EvalMethod,
}

/// The columns of a PMD run. Row k describes pi_k; `eta` is the step taken from it.
fn columns(two_states: bool) -> Vec<ColumnSpec> {
    use ColumnKind::*;
    let mut columns = vec![
        ColumnSpec::new("divergence", Key),
        ColumnSpec::new("iter", Axis),
        ColumnSpec::new("eta", MetricMayBeInfinite),
        ColumnSpec::new("value_gap_inf", Metric),
        ColumnSpec::new("value_gap_rho", Metric),
        ColumnSpec::new("nonopt_mass", Metric),
        ColumnSpec::new("log_nonopt_mass", MetricMayBeInfinite),
        ColumnSpec::new("kl_to_optimal", MetricMayBeInfinite),
        ColumnSpec::new("optimal", Metric),
        ColumnSpec::new("min_improvement", Metric),
        ColumnSpec::new("bound_xiao_thm8", Metric),
        ColumnSpec::new("bound_xiao_thm10", Metric),
        ColumnSpec::new("bound_johnson", Metric),
    ];
    if two_states {
        columns.push(ColumnSpec::new("v_0", Metric));
        columns.push(ColumnSpec::new("v_1", Metric));
    }
    columns.push(ColumnSpec::new("wall_s", Time));
    columns
}

/// What the bounds need from the optimum, fixed for the run.
struct Reference<'a> {
    opt: &'a Optimum,
    /// d_rho(pi*) for the deterministic optimal policy, rho uniform.
    occupancy: Array1<f64>,
    /// theta_rho = ||d_rho(pi*)/rho||_inf / (1 - gamma).
    theta: f64,
}

/// Per-iterate policy metrics: log of the non-optimal mass and -log of the optimal mass,
/// both maximized over states and computed from log-probabilities (exact for KL).
fn policy_metrics(log_policy: &Array2<f64>, optimal: &Array2<bool>) -> (f64, f64) {
    let actions = log_policy.ncols();
    let logs = log_policy.as_slice().expect("contiguous");
    let marks = optimal.as_slice().expect("contiguous");
    logs.par_chunks(actions)
        .zip(marks.par_chunks(actions))
        .map(|(row, is_opt)| {
            let pick = |optimal: bool| -> Vec<f64> {
                row.iter()
                    .zip(is_opt)
                    .filter(|(_, o)| **o == optimal)
                    .map(|(l, _)| *l)
                    .collect()
            };
            (log_sum_exp(&pick(false)), -log_sum_exp(&pick(true)))
        })
        .reduce(
            || (f64::NEG_INFINITY, f64::NEG_INFINITY),
            |a, b| (a.0.max(b.0), a.1.max(b.1)),
        )
}

impl PmdRun {
    fn run_divergence(
        &self,
        ctx: &mut RunContext,
        divergence: Divergence,
        pi0: &Array2<f64>,
        eval: &Evaluator,
        reference: &Reference,
    ) -> Result<Option<usize>> {
        let spec = &self.spec;
        let (gamma, actions) = (spec.gamma, self.mdp.actions);
        let opt = reference.opt;
        let started = Instant::now();
        let mut policy = pi0.clone();
        let mut log_policy = pi0.mapv(f64::ln);
        let mut v = eval.evaluate(policy.view(), None);
        let rho_gap = |v: &Array1<f64>| (&opt.v - v).mean().expect("states > 0");
        let (e0, delta0) = (evaluation::sup_distance(&opt.v, &v), rho_gap(&v));
        // D*_0 = E_{s ~ d_rho(pi*)} D(pi*(s), pi_0(s)) for the deterministic optimal policy.
        let d_star0: f64 = (0..self.mdp.states)
            .map(|s| {
                let star = opt.policy.row(s).to_vec();
                reference.occupancy[s] * divergence.bregman(&star, &pi0.row(s).to_vec())
            })
            .sum();
        let mut min_improvement = None;
        let mut optimal_since: Option<usize> = None;
        let mut next_policy = policy.clone();
        let mut next_log = log_policy.clone();
        for k in 0..=spec.iterations {
            ctx.check_cancel()?;
            let q = eval.q_values(&v);
            let eta = match spec.schedule {
                Schedule::Adaptive => self.adaptive_step(k, divergence, &policy, &log_policy, &q),
                _ => spec.fixed_step(k),
            };
            let (log_mass, kl_to_opt) = policy_metrics(&log_policy, &opt.optimal);
            let is_optimal = log_mass == f64::NEG_INFINITY;
            optimal_since = match (is_optimal, optimal_since) {
                (true, None) => Some(k),
                (true, since) => since,
                (false, _) => None,
            };
            let bound = |b: Option<f64>| b.map_or(Cell::Missing, Cell::Real);
            let thm8 = (spec.schedule == Schedule::Constant)
                .then(|| {
                    theory::xiao_theorem8(k, spec.eta, d_star0, gamma, self.mdp.reward_range())
                })
                .flatten();
            let thm10 = match spec.schedule {
                Schedule::Geometric => {
                    theory::xiao_theorem10(k, spec.eta, d_star0, delta0, reference.theta)
                }
                Schedule::Pi => {
                    theory::xiao_theorem10(k, f64::INFINITY, d_star0, delta0, reference.theta)
                }
                _ => None,
            };
            let johnson = (spec.schedule == Schedule::Adaptive)
                .then(|| theory::johnson_adaptive(k, spec.c0, e0, gamma));
            let mut row = vec![
                Cell::Text(divergence.name().into()),
                Cell::Int(k as i64),
                Cell::Real(eta),
                Cell::Real(evaluation::sup_distance(&opt.v, &v)),
                Cell::Real(rho_gap(&v)),
                Cell::Real(log_mass.exp()),
                Cell::Real(log_mass),
                Cell::Real(kl_to_opt),
                Cell::Int(i64::from(is_optimal)),
                min_improvement.map_or(Cell::Missing, Cell::Real),
                bound(thm8),
                bound(thm10),
                bound(johnson),
            ];
            if self.mdp.states == 2 {
                row.push(Cell::Real(v[0]));
                row.push(Cell::Real(v[1]));
            }
            row.push(Cell::Real(started.elapsed().as_secs_f64()));
            ctx.emit(row)?;
            ctx.progress().advance(1);
            if k == spec.iterations {
                break;
            }
            // The mirror step, independently in every state (in parallel; no shared state,
            // so the result does not depend on the thread count).
            let (p_now, l_now, q_all) = (
                policy.as_slice().expect("contiguous"),
                log_policy.as_slice().expect("contiguous"),
                q.as_slice().expect("contiguous"),
            );
            next_policy
                .as_slice_mut()
                .expect("contiguous")
                .par_chunks_mut(actions)
                .zip(
                    next_log
                        .as_slice_mut()
                        .expect("contiguous")
                        .par_chunks_mut(actions),
                )
                .enumerate()
                .for_each(|(s, (p, lp))| {
                    let range = s * actions..(s + 1) * actions;
                    divergence.step(
                        &p_now[range.clone()],
                        &l_now[range.clone()],
                        &q_all[range],
                        eta,
                        p,
                        lp,
                    );
                });
            std::mem::swap(&mut policy, &mut next_policy);
            std::mem::swap(&mut log_policy, &mut next_log);
            let v_next = eval.evaluate(policy.view(), Some(&v));
            min_improvement = Some(
                v_next
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a - b)
                    .fold(f64::INFINITY, f64::min),
            );
            v = v_next;
        }
        Ok(optimal_since)
    }

    /// Johnson et al. (2023): eta_k = max_s min_{p on the greedy face} D(p, pi_k(s)) / c_k.
    fn adaptive_step(
        &self,
        k: usize,
        divergence: Divergence,
        policy: &Array2<f64>,
        log_policy: &Array2<f64>,
        q: &Array2<f64>,
    ) -> f64 {
        let actions = self.mdp.actions;
        let worst = (0..self.mdp.states)
            .into_par_iter()
            .map(|s| {
                let face = greedy_set(q.row(s).as_slice().expect("contiguous"), 0.0);
                let (mut p, mut lp) = (vec![0.0; actions], vec![0.0; actions]);
                divergence.project_to_face(
                    policy.row(s).as_slice().expect("contiguous"),
                    log_policy.row(s).as_slice().expect("contiguous"),
                    &face,
                    &mut p,
                    &mut lp,
                )
            })
            .reduce(|| 0.0, f64::max);
        worst / theory::adaptive_c(k, self.spec.c0, self.spec.gamma)
    }
}

impl PreparedRun for PmdRun {
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()> {
        let spec = &self.spec;
        let mdp = &self.mdp;
        let eval = Evaluator::new(mdp, spec.gamma, self.method);
        ctx.summarize(
            "mdp",
            serde_json::json!({
                "states": mdp.states,
                "actions": mdp.actions,
                "transitions": mdp.nnz(),
                "reward_range": mdp.reward_range(),
            }),
        );
        ctx.summarize(
            "evaluation",
            match self.method {
                EvalMethod::Lu => "lu".to_string(),
                EvalMethod::Iterative { tol } => format!("iterative (tol {tol:e})"),
            },
        );
        ctx.progress().phase("policy iteration for V*");
        let pi0 = initial_policy(spec, mdp);
        let opt = solve_optimum(&eval, pi0.view());
        let rho = Array1::from_elem(mdp.states, 1.0 / mdp.states as f64);
        let occupancy = eval.occupancy(opt.policy.view(), &rho);
        let theta = occupancy
            .iter()
            .zip(&rho)
            .map(|(d, r)| d / r)
            .fold(0.0, f64::max)
            / (1.0 - spec.gamma);
        ctx.summarize("gap_delta", opt.gap);
        ctx.summarize("v_star_rho", opt.v.mean());
        ctx.summarize(
            "states_with_several_optimal_actions",
            opt.optimal
                .rows()
                .into_iter()
                .filter(|r| r.iter().filter(|o| **o).count() > 1)
                .count(),
        );
        if mdp.states <= 50 {
            let sets: Vec<Vec<usize>> = opt
                .optimal
                .rows()
                .into_iter()
                .map(|row| (0..row.len()).filter(|&a| row[a]).collect())
                .collect();
            ctx.summarize("optimal_actions", sets);
        }
        ctx.summarize("theta_rho", theta);
        ctx.summarize("pi_iterations", opt.pi_trace.len() - 1);
        ctx.summarize("pi_trace", &opt.pi_trace);
        let reference = Reference {
            opt: &opt,
            occupancy,
            theta,
        };
        ctx.begin(&columns(mdp.states == 2))?;
        let divergences = spec.divergences();
        ctx.progress()
            .set_total(((spec.iterations + 1) * divergences.len()) as u64);
        let mut hitting = serde_json::Map::new();
        for divergence in divergences {
            ctx.progress().phase(divergence.name());
            let hit = self.run_divergence(ctx, divergence, &pi0, &eval, &reference)?;
            hitting.insert(divergence.name().to_string(), serde_json::json!(hit));
            ctx.summarize("hitting_iteration", &hitting);
        }
        Ok(())
    }
}
