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

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use self::evaluation::{EvalMethod, Evaluator, LU_MAX_STATES, Optimum, solve_optimum};
use self::mdp::Mdp;
use self::mirror::{Divergence, greedy_set, log_sum_exp};
use self::spec::{EvalChoice, InitPolicy, MdpKind, PmdSpec, Schedule};
use crate::contract::{ColumnKind, ColumnSpec, Ctx, Experiment, Export, Report, Valid};
use crate::input_error;
use crate::table::Cell;

pub struct Pmd;

/// Largest dense evaluation matrix we agree to factor (S^2 doubles).
const LU_STATE_LIMIT: usize = 10_000;

/// Builds the MDP of a spec (deterministic: the `mdp` stream of the seed).
pub fn build_mdp(spec: &Valid<Pmd>) -> Result<Mdp> {
    let mut rng = spec.streams().rng("mdp");
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

/// pi_0: uniform, or uniform on each state's simplex (normalized exponentials, drawn from
/// the `init_policy` stream).
pub fn initial_policy(spec: &PmdSpec, mdp: &Mdp, mut rng: ChaCha8Rng) -> Array2<f64> {
    let (s, a) = (mdp.states, mdp.actions);
    match spec.init_policy {
        InitPolicy::Uniform => Array2::from_elem((s, a), 1.0 / a as f64),
        InitPolicy::Random => {
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
fn export_mdp(spec: &Valid<Pmd>, path: &Path) -> Result<String> {
    let mdp = build_mdp(spec)?;
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

/// The size of the MDP a run solved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MdpSize {
    pub states: usize,
    pub actions: usize,
    pub transitions: usize,
    pub reward_range: f64,
}

/// What a PMD run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PmdSummary {
    pub mdp: Option<MdpSize>,
    /// `lu`, or `iterative (tol ...)`.
    pub evaluation: Option<String>,
    /// Delta = min_s min_{a not in A*_s} (V*(s) - Q*(s, a)); absent once policy iteration has
    /// run when every action is optimal.
    pub gap_delta: Option<f64>,
    pub v_star_rho: Option<f64>,
    pub states_with_several_optimal_actions: Option<usize>,
    /// A*_s for every state (MDPs of at most 50 states).
    pub optimal_actions: Option<Vec<Vec<usize>>>,
    pub theta_rho: Option<f64>,
    pub pi_iterations: Option<usize>,
    /// ||V* - V^{pi_k}||_inf along policy iteration.
    pub pi_trace: Option<Vec<f64>>,
    /// Per divergence, the iteration from which the policy is exactly optimal (null: never).
    pub hitting_iteration: Option<BTreeMap<String, Option<usize>>>,
}

impl Report for PmdSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(pi) = self.pi_iterations {
            let delta = self
                .gap_delta
                .map_or("none (every action optimal)".into(), |d| format!("{d:.4e}"));
            lines.push(format!(
                "action gap Delta = {delta}, policy iteration took {pi} iterations"
            ));
        }
        if let Some(hits) = &self.hitting_iteration {
            let parts: Vec<String> = hits
                .iter()
                .map(|(d, k)| match k {
                    Some(k) => format!("{d} from iteration {k}"),
                    None => format!("{d} not reached"),
                })
                .collect();
            lines.push(format!("exactly optimal policy: {}", parts.join(", ")));
        }
        lines
    }
}

impl Experiment for Pmd {
    type Spec = PmdSpec;
    type Summary = PmdSummary;
    /// The MDP and how its policies are evaluated.
    type Inputs = (Mdp, EvalMethod);

    const NAME: &'static str = "pmd";
    const TITLE: &'static str =
        "Unregularized policy mirror descent with Bregman divergences: convergence of the policy";
    const PAPER: &'static str = "D. Lin, Z. Zhang, On the Convergence of Policy in \
                                 Unregularized Policy Mirror Descent, arXiv:2205.08176; bounds \
                                 of L. Xiao (JMLR 2022) and Johnson et al. (NeurIPS 2023)";
    const EXPORT: Option<Export<Self>> = Some(Export {
        flag: "export-mdp",
        help: "Write the MDP of these settings to FILE (lab-mdp format) instead of running",
        write: export_mdp,
    });

    fn prepare(spec: &Valid<Self>) -> Result<Self::Inputs> {
        let mdp = build_mdp(spec)?;
        let method = eval_method(spec, mdp.states)?;
        Ok((mdp, method))
    }

    fn run(spec: &Valid<Self>, (mdp, method): Self::Inputs, ctx: &mut Ctx<Self>) -> Result<()> {
        PmdRun { spec, mdp, method }.run(ctx)
    }
}

struct PmdRun<'s> {
    spec: &'s PmdSpec,
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
        ColumnSpec::new("value_gap_inf", Metric).headline(),
        ColumnSpec::new("value_gap_rho", Metric).headline(),
        ColumnSpec::new("nonopt_mass", Metric).headline(),
        ColumnSpec::new("log_nonopt_mass", MetricMayBeInfinite),
        ColumnSpec::new("kl_to_optimal", MetricMayBeInfinite),
        ColumnSpec::new("optimal", Metric).headline(),
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

impl PmdRun<'_> {
    fn run_divergence(
        &self,
        ctx: &mut Ctx<Pmd>,
        divergence: Divergence,
        pi0: &Array2<f64>,
        eval: &Evaluator,
        reference: &Reference,
    ) -> Result<Option<usize>> {
        let spec = self.spec;
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

impl PmdRun<'_> {
    fn run(&self, ctx: &mut Ctx<Pmd>) -> Result<()> {
        let spec = self.spec;
        let mdp = &self.mdp;
        let eval = Evaluator::new(mdp, spec.gamma, self.method);
        ctx.summary.mdp = Some(MdpSize {
            states: mdp.states,
            actions: mdp.actions,
            transitions: mdp.nnz(),
            reward_range: mdp.reward_range(),
        });
        ctx.summary.evaluation = Some(match self.method {
            EvalMethod::Lu => "lu".to_string(),
            EvalMethod::Iterative { tol } => format!("iterative (tol {tol:e})"),
        });
        ctx.progress().phase("policy iteration for V*");
        let pi0 = initial_policy(spec, mdp, ctx.rng("init_policy"));
        let opt = solve_optimum(&eval, pi0.view());
        let rho = Array1::from_elem(mdp.states, 1.0 / mdp.states as f64);
        let occupancy = eval.occupancy(opt.policy.view(), &rho);
        let theta = occupancy
            .iter()
            .zip(&rho)
            .map(|(d, r)| d / r)
            .fold(0.0, f64::max)
            / (1.0 - spec.gamma);
        let summary = &mut ctx.summary;
        summary.gap_delta = opt.gap.is_finite().then_some(opt.gap);
        summary.v_star_rho = opt.v.mean();
        summary.states_with_several_optimal_actions = Some(
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
            summary.optimal_actions = Some(sets);
        }
        summary.theta_rho = Some(theta);
        summary.pi_iterations = Some(opt.pi_trace.len() - 1);
        summary.pi_trace = Some(opt.pi_trace.clone());
        let reference = Reference {
            opt: &opt,
            occupancy,
            theta,
        };
        ctx.begin(&columns(mdp.states == 2))?;
        let divergences = spec.divergences();
        ctx.progress()
            .set_total(((spec.iterations + 1) * divergences.len()) as u64);
        for divergence in divergences {
            ctx.progress().phase(divergence.name());
            let hit = self.run_divergence(ctx, divergence, &pi0, &eval, &reference)?;
            ctx.summary
                .hitting_iteration
                .get_or_insert_with(BTreeMap::new)
                .insert(divergence.name().to_string(), hit);
        }
        Ok(())
    }
}
