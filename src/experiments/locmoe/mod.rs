//! LocMoE and LocMoE+ (Expert-Token Resonance): GrAP affinity routing and its capacity
//! bounds, checked by Monte Carlo (mode theory) and in three small trained models against
//! Switch, GShard, expert choice, BASE and hash routing, with controls that drop at random or
//! by score at the same capacity (modes pmoe, zipf, charlm); mode routing times the routers.
//!
//! Papers: LocMoE, J. Li et al., arXiv:2401.13920 (IJCAI-24), and LocMoE+ / Expert-Token
//! Resonance, J. Li et al., arXiv:2406.00023 (v1 abstract; v2/v3 body). Notes:
//! `../shared/papers/locmoe.md`. The dynamic capacity, the GrAP gate values that carry
//! gradients, the smoothed locality target and every training setting are ours (labelled
//! "reconstructed" where they appear).

pub mod claims;
pub mod data;
mod figures;
pub mod metrics;
pub mod model;
pub mod routing;
pub mod spec;
pub mod theory;
mod verify;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use self::data::{Corpus, Group, Pmoe, Zipf};
use self::model::{Adam, Arch, Batch, Head, Losses, Pass};
use self::routing::{Capacity, Dispatch, Drop, RouterName, Scores, capacity_of};
use self::spec::{Bound, Dynamic, LocmoeSpec, Mode};
use crate::contract::{ColumnKind, ColumnSpec, Ctx, Experiment, Interrupted, Job, Report, Valid};
use crate::input_error;
use crate::table::Cell;

pub struct LocmoeExperiment;

/// How one run sets its capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// C = ceil(cf k T / E) (0: dropless).
    Factor(f64),
    /// BASE: exactly ceil(T / E).
    Balanced,
    /// locmoe_plus: recomputed every step.
    Dynamic(Dynamic),
    /// locmoe: Theorem 1's bound from the first batch, then fixed.
    Bound,
}

impl Plan {
    /// The `capacity` key of the rows: the factor, `dropless`, `balanced`, `bound`, or the
    /// dynamic reading's name.
    pub fn label(self) -> String {
        match self {
            Plan::Factor(0.0) => "dropless".into(),
            Plan::Factor(cf) => crate::table::format_real(cf),
            Plan::Balanced => "balanced".into(),
            Plan::Dynamic(Dynamic::Corollary6) => "corollary6".into(),
            Plan::Dynamic(Dynamic::Remark7) => "remark7".into(),
            Plan::Dynamic(_) => "schedule".into(),
            Plan::Bound => "bound".into(),
        }
    }
}

/// The (router, capacity) arms of a spec, in row order.
pub fn arms(spec: &LocmoeSpec) -> Vec<(RouterName, Plan)> {
    let mut out = Vec::new();
    for &r in &spec.router {
        if r == RouterName::Base {
            out.push((r, Plan::Balanced));
            continue;
        }
        for &cf in &spec.capacity {
            out.push((r, Plan::Factor(cf)));
        }
        if r == RouterName::LocmoePlus {
            for &rule in &spec.dynamic_capacity {
                if rule != Dynamic::None {
                    out.push((r, Plan::Dynamic(rule)));
                }
            }
        }
        if r == RouterName::Locmoe && spec.locmoe_bound == Bound::FirstBatch {
            out.push((r, Plan::Bound));
        }
    }
    out
}

/// A histogram of cos(token, gate) at the end of training: the first-choice expert's
/// against every other expert's (LocMoE Fig. 9).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AffinityHistogram {
    pub router: String,
    pub capacity: String,
    /// Bin edges from -1 to 1.
    pub bins: usize,
    pub assigned: Vec<u64>,
    pub others: Vec<u64>,
}

/// The median time of one router in mode routing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RouterTiming {
    pub router: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocmoeSummary {
    pub data: Option<String>,
    /// Trained parameters per router (the same projection, experts and head for every arm).
    pub parameters: Option<Vec<(String, usize)>>,
    pub reconstructed: Option<String>,
    /// Median seconds per training step (forward, backward, Adam) per router, over every
    /// run of it (runs go in parallel, so each is slowed by the others when jobs > 1).
    pub step_seconds: Option<Vec<(String, f64)>>,
    pub histograms: Option<Vec<AffinityHistogram>>,
    /// locmoe's capacity from Theorem 1's bound on the first batch, per seed.
    pub bound_capacity: Option<Vec<usize>>,
    pub routing_seconds: Option<Vec<RouterTiming>>,
    /// zipf: the clusters' probabilities.
    pub cluster_frequencies: Option<Vec<f64>>,
    /// charlm, generated text: bits per character of the true chains with the topic known.
    pub oracle_bits: Option<f64>,
}

impl Report for LocmoeSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(d) = &self.data {
            lines.push(format!("data: {d}"));
        }
        if let Some(p) = &self.parameters {
            let text: Vec<String> = p.iter().map(|(r, n)| format!("{r} {n}")).collect();
            lines.push(format!("trained parameters: {}", text.join(", ")));
        }
        if let Some(s) = &self.step_seconds {
            let text: Vec<String> = s
                .iter()
                .map(|(r, t)| format!("{r} {:.2} ms", t * 1e3))
                .collect();
            lines.push(format!("median step: {}", text.join(", ")));
        }
        if let Some(r) = &self.routing_seconds {
            let text: Vec<String> = r
                .iter()
                .map(|t| format!("{} {:.3} ms", t.router, t.seconds * 1e3))
                .collect();
            lines.push(format!("routing one group: {}", text.join(", ")));
        }
        lines
    }
}

const THEORY_COLUMNS: [&str; 5] = ["monte_carlo", "mc_se", "exact", "lower", "upper"];

fn theory_columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    let mut c = vec![
        ColumnSpec::new("check", Key),
        ColumnSpec::new("dim", Key),
        ColumnSpec::new("param", Key),
        ColumnSpec::new("x", Axis),
    ];
    c.extend(THEORY_COLUMNS.iter().map(|n| ColumnSpec::new(n, Metric)));
    c
}

/// The metric columns of a training mode, before the per-expert loads.
pub fn metric_names(mode: Mode) -> Vec<&'static str> {
    let mut names = vec!["loss", "eval_loss", "eval_loss_causal"];
    match mode {
        Mode::Pmoe => names.push("accuracy"),
        Mode::Charlm => names.extend(["bpc", "bpc_causal"]),
        _ => {}
    }
    names.extend([
        "balance_loss",
        "locality_loss",
        "capacity_slots",
        "cv",
        "max_violation",
        "gini",
        "drop_rate",
        "zero_expert",
        "multi_expert",
        "processed_slots",
        "padded_slots",
        "ch_index",
        "input_cosine",
        "mean_top1_affinity",
        "a2a_inter",
        "a2a_bytes_inter",
        "a2a_time",
    ]);
    match mode {
        Mode::Pmoe => names.extend(["success_rate", "noise_beats_signal", "capacity_99"]),
        Mode::Zipf | Mode::Charlm => names.extend(["nmi", "dead_experts"]),
        _ => {}
    }
    names
}

/// `load_0`, `load_1`, ...: tokens routed to each expert (leaked once per name: at most 256).
fn load_name(e: usize) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        (0..256)
            .map(|k| &*Box::leak(format!("load_{k}").into_boxed_str()))
            .collect()
    })[e]
}

fn training_columns(spec: &LocmoeSpec) -> Vec<ColumnSpec> {
    use ColumnKind::*;
    let mut c = vec![
        ColumnSpec::new("router", Key),
        ColumnSpec::new("capacity", Key),
        ColumnSpec::new("seed", Axis),
        ColumnSpec::new("step", Axis),
    ];
    for name in metric_names(spec.mode) {
        let col = ColumnSpec::new(name, Metric);
        let headline = matches!(name, "eval_loss" | "processed_slots" | "cv" | "drop_rate");
        c.push(if headline { col.headline() } else { col });
    }
    for e in 0..spec.experts {
        c.push(ColumnSpec::new(load_name(e), Metric));
    }
    c
}

fn routing_columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    vec![
        ColumnSpec::new("router", Key),
        ColumnSpec::new("seconds", Metric).headline(),
        ColumnSpec::new("score_seconds", Metric),
        ColumnSpec::new("dispatch_seconds", Metric),
        ColumnSpec::new("tokens_per_second", Metric),
        ColumnSpec::new("processed_slots", Metric),
    ]
}

/// The data of a training mode: built per seed from the streams `data/S`.
enum Task {
    Pmoe(Pmoe),
    Zipf(Zipf),
    Charlm(std::sync::Arc<Corpus>),
}

impl Experiment for LocmoeExperiment {
    type Spec = LocmoeSpec;
    type Summary = LocmoeSummary;
    /// charlm's text file, read and checked before the run starts.
    type Inputs = Option<std::sync::Arc<Corpus>>;

    const NAME: &'static str = "locmoe";
    const TITLE: &'static str = "LocMoE / LocMoE+: affinity routing and capacity bounds against \
                                 Switch, GShard, expert choice, BASE and hash routing";
    const PAPER: &'static str = "J. Li et al., LocMoE: A Low-overhead MoE for Large Language Model \
                                 Training, arXiv:2401.13920 (IJCAI-24); J. Li et al., LocMoE+ / \
                                 Expert-Token Resonance, arXiv:2406.00023";

    fn prepare(spec: &Valid<Self>) -> Result<Self::Inputs> {
        if spec.mode != Mode::Charlm || spec.corpus.is_empty() {
            return Ok(None);
        }
        let corpus = data::file_corpus(Path::new(&spec.corpus), spec.context)?;
        if corpus.train.len() <= spec.context + 1 || corpus.held_out.len() <= spec.context + 1 {
            return Err(input_error!(
                "corpus {}: too short for context = {}",
                spec.corpus,
                spec.context
            ));
        }
        Ok(Some(std::sync::Arc::new(corpus)))
    }

    fn run(spec: &Valid<Self>, corpus: Self::Inputs, ctx: &mut Ctx<Self>) -> Result<()> {
        match spec.mode {
            Mode::Theory => run_theory(spec, ctx),
            Mode::Routing => run_routing(spec, ctx),
            _ => run_training(spec, corpus, ctx),
        }
    }
}

fn run_theory(spec: &LocmoeSpec, ctx: &mut Ctx<LocmoeExperiment>) -> Result<()> {
    ctx.begin(&theory_columns())?;
    let n = spec.experts;
    let mut parts: Vec<(String, usize)> = Vec::new();
    for &d in &spec.theory_dims {
        parts.push((format!("sphere/{d}"), d as usize));
    }
    parts.push(("lemma2".into(), 0));
    parts.push(("tcr".into(), 0));
    for (k, _) in spec.ecr_q.iter().enumerate() {
        parts.push((format!("ecr/{k}"), k));
    }
    ctx.progress().set_total(parts.len() as u64);
    let samples = spec.theory_samples;
    let points = ctx.jobs(&parts, |(name, arg), job| {
        let mut rng = job.rng(name);
        let out = if name.starts_with("sphere/") {
            let mut p = theory::sphere_checks(*arg, n, samples, &mut rng);
            if arg.is_multiple_of(n) {
                p.extend(theory::lemma1(*arg, n, samples, &mut rng));
            }
            p
        } else if name == "lemma2" {
            theory::lemma2(spec.d, n, &[64, 256, 1024, 4096], samples * 4, &mut rng)
        } else if name == "tcr" {
            theory::theorem5_tcr(spec.theory_tokens, n, spec.tcr_p, samples, &mut rng)
        } else {
            theory::theorem5_ecr(spec.theory_tokens, spec.ecr_q[*arg], samples, &mut rng)
        };
        for p in &out {
            job.emit(p.cells())?;
        }
        job.check_cancel()?;
        Ok(())
    })?;
    drop(points);
    Ok(())
}

/// Times every router of the spec on one group of random tokens (mode routing): the gate
/// scores (a learned d x E softmax gate, or GrAP cosines) and the routing itself.
fn run_routing(spec: &LocmoeSpec, ctx: &mut Ctx<LocmoeExperiment>) -> Result<()> {
    ctx.begin(&routing_columns())?;
    let (t, d, e) = (spec.tokens, spec.d, spec.experts);
    let mut rng = ctx.rng("routing");
    let mut h = vec![0.0; t * d];
    crate::random::fill_standard_normal(&mut rng, &mut h);
    let mut wg = vec![0.0; e * d];
    crate::random::fill_standard_normal(&mut rng, &mut wg);
    wg.iter_mut().for_each(|v| *v /= (d as f64).sqrt());
    let ids: Vec<usize> = (0..t).collect();
    let cf = spec.capacity.first().copied().unwrap_or(1.1);
    let mut timings = Vec::new();
    ctx.progress().set_total(spec.router.len() as u64);
    for &r in &spec.router {
        let router = r.router(spec.top_k);
        let capacity = capacity_of(cf, r.slots_per_token(spec.top_k), t, e);
        let mut drop_rng = ctx.rng("drop");
        let mut times = Vec::with_capacity(spec.repeats);
        let mut score_times = Vec::with_capacity(spec.repeats);
        let mut slots = 0;
        for _ in 0..spec.repeats {
            let start = Instant::now();
            let score = model::router_scores(r.gate_kind(), r.gate_rule(), &h, &wg, d, e);
            let scored = start.elapsed().as_secs_f64();
            let dispatch = router.route(
                &Scores {
                    tokens: t,
                    experts: e,
                    score: &score,
                    ids: &ids,
                },
                capacity,
                &mut drop_rng,
            );
            times.push(start.elapsed().as_secs_f64());
            score_times.push(scored);
            slots = dispatch.slots.len();
            ctx.check_cancel()?;
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (total, scoring) = (median(times), median(score_times));
        ctx.emit(vec![
            Cell::Text(r.name().into()),
            Cell::Real(total),
            Cell::Real(scoring),
            Cell::Real(total - scoring),
            Cell::Real(t as f64 / total),
            Cell::Int(slots as i64),
        ])?;
        let median = total;
        timings.push(RouterTiming {
            router: r.name().into(),
            seconds: median,
        });
        ctx.progress().advance(1);
    }
    ctx.summary.routing_seconds = Some(timings);
    Ok(())
}

fn arch(spec: &LocmoeSpec, router: RouterName, vocab: usize) -> Arch {
    let head = match spec.mode {
        Mode::Pmoe => Head::Pool {
            tokens: spec.sample_tokens,
        },
        Mode::Zipf => Head::Regression,
        _ => Head::NextChar {
            vocab,
            context: spec.context,
            embedding: spec.embedding,
        },
    };
    Arch {
        d_in: spec.input_width(),
        d: spec.d,
        experts: spec.experts,
        hidden: spec.expert_hidden,
        outputs: match head {
            Head::Pool { .. } => spec.experts,
            Head::Regression => 1,
            Head::NextChar { vocab, .. } => vocab,
        },
        head,
        gate: router.gate_kind(),
        rule: router.gate_rule(),
        temperature: spec.gate_temperature,
    }
}

/// What a training job returns.
struct JobEnd {
    step_seconds: Vec<f64>,
    histogram: Option<AffinityHistogram>,
    bound: Option<usize>,
}

fn run_training(
    spec: &Valid<LocmoeExperiment>,
    file: Option<std::sync::Arc<Corpus>>,
    ctx: &mut Ctx<LocmoeExperiment>,
) -> Result<()> {
    // The corpus (generated from its own stream when no file is given: one text per run).
    let corpus = match (spec.mode, file) {
        (Mode::Charlm, Some(c)) => Some(c),
        (Mode::Charlm, None) => Some(std::sync::Arc::new(data::generated_corpus(
            spec.corpus_chars,
            spec.topics,
            &mut ctx.rng("corpus"),
        ))),
        _ => None,
    };
    let vocab = corpus.as_ref().map_or(0, |c| c.alphabet.len());
    ctx.summary.oracle_bits = corpus.as_ref().and_then(|c| c.oracle_bits);
    ctx.summary.data = Some(match (spec.mode, &corpus) {
        (Mode::Pmoe, _) => format!(
            "pmoe: {} classes, {} tokens per sample (one carries {} o_y, the others {} o_c), noise norm {}, d = {}",
            spec.experts, spec.sample_tokens, spec.signal, spec.distractor, spec.noise, spec.d
        ),
        (Mode::Zipf, _) => format!(
            "zipf: {} clusters, exponent {}, center norm {} x noise {}, d = {}",
            spec.experts, spec.zipf_exponent, spec.spread, spec.noise, spec.d
        ),
        (_, Some(c)) => c.description.clone(),
        _ => String::new(),
    });
    if spec.mode == Mode::Zipf {
        let z = Zipf::new(
            spec.d,
            spec.experts,
            spec.zipf_exponent,
            spec.spread,
            spec.noise,
            spec.nodes,
            &mut ctx.rng("data/0"),
        );
        ctx.summary.cluster_frequencies = Some(z.frequencies());
    }
    ctx.summary.parameters = Some(
        spec.router
            .iter()
            .map(|&r| {
                (
                    r.name().to_string(),
                    arch(spec, r, vocab).trained_parameters(),
                )
            })
            .collect(),
    );
    ctx.summary.reconstructed = Some(
        "ours: the gate values of the GrAP arms (locmoe softmax(ReLU(omega h)), locmoe_plus \
         softmax(delta / temperature)), the dynamic capacity readings, the smoothed locality \
         target, greedy balanced assignment for BASE, the models, data and training settings"
            .into(),
    );
    ctx.begin(&training_columns(spec))?;
    let jobs: Vec<(RouterName, Plan, usize)> = arms(spec)
        .into_iter()
        .flat_map(|(r, p)| (0..spec.seeds).map(move |s| (r, p, s)))
        .collect();
    ctx.progress().set_total(jobs.len() as u64);
    let single = jobs.len() == 1;
    let ends = ctx.jobs(&jobs, |&(router, plan, seed), job| {
        let task = match spec.mode {
            Mode::Pmoe => Task::Pmoe(Pmoe::new(
                spec.d,
                spec.experts,
                spec.sample_tokens,
                spec.signal,
                spec.distractor,
                spec.noise,
                spec.nodes,
                &mut job.rng(&format!("data/{seed}")),
            )),
            Mode::Zipf => Task::Zipf(Zipf::new(
                spec.d,
                spec.experts,
                spec.zipf_exponent,
                spec.spread,
                spec.noise,
                spec.nodes,
                &mut job.rng(&format!("data/{seed}")),
            )),
            _ => Task::Charlm(corpus.clone().expect("charlm has a corpus")),
        };
        let work = || train(spec, &task, vocab, router, plan, seed, job);
        if single {
            work()
        } else {
            crate::nn::single_threaded_products(work)
        }
    })?;
    let mut per_router: Vec<(String, Vec<f64>)> = Vec::new();
    let mut histograms = Vec::new();
    let mut bounds = Vec::new();
    for ((router, _, _), end) in jobs.iter().zip(ends) {
        match per_router.iter_mut().find(|(r, _)| r == router.name()) {
            Some((_, v)) => v.extend(end.step_seconds),
            None => per_router.push((router.name().into(), end.step_seconds)),
        }
        histograms.extend(end.histogram);
        bounds.extend(end.bound);
    }
    ctx.summary.step_seconds = Some(
        per_router
            .into_iter()
            .map(|(r, mut v)| {
                v.sort_by(f64::total_cmp);
                (r, v.get(v.len() / 2).copied().unwrap_or(f64::NAN))
            })
            .collect(),
    );
    if !histograms.is_empty() {
        ctx.summary.histograms = Some(histograms);
    }
    if !bounds.is_empty() {
        ctx.summary.bound_capacity = Some(bounds);
    }
    Ok(())
}

/// Draws one routing group of the task.
fn draw(spec: &LocmoeSpec, task: &Task, held_out: Option<usize>, rng: &mut ChaCha8Rng) -> Group {
    let t = spec.tokens;
    match task {
        Task::Pmoe(p) => p.group(t, rng),
        Task::Zipf(z) => z.group(t, rng),
        Task::Charlm(c) => {
            let positions = match held_out {
                // Evaluation: random held-out positions (from the eval stream), as training
                // draws random training positions, so that groups mix documents alike.
                Some(_) => (0..t)
                    .map(|_| rng.random_range(spec.context..c.held_out.len()))
                    .collect(),
                None => c.random_positions(t, spec.context, rng),
            };
            c.group(held_out.is_some(), &positions, spec.context, spec.nodes)
        }
    }
}

fn batch(g: &Group) -> Batch<'_> {
    Batch {
        tokens: g.tokens,
        dense: &g.dense,
        chars: &g.chars,
        classes: &g.classes,
        values: &g.values,
        ids: &g.ids,
        origin: &g.origin,
    }
}

/// LocMoE+'s dynamic capacity from one group's affinities (our readings; see the spec).
pub fn dynamic_capacity(rule: Dynamic, scores: &Scores, d: usize) -> usize {
    let (t, e) = (scores.tokens, scores.experts);
    let ceiling = (1.1 * t as f64 / e as f64).ceil();
    let top: Vec<(usize, f64)> = (0..t).map(|k| scores.best(k)).collect();
    let c = match rule {
        Dynamic::Corollary6 => {
            let tau = 3.0 / (d as f64).sqrt();
            let mut strong = vec![0usize; e];
            for &(arg, v) in &top {
                if v >= tau {
                    strong[arg] += 1;
                }
            }
            strong.sort_unstable();
            2.0 * strong[e / 2] as f64
        }
        Dynamic::Remark7 => {
            let a = top
                .iter()
                .map(|p| p.1)
                .fold(f64::NEG_INFINITY, f64::max)
                .clamp(0.0, 1.0);
            theory::capacity_exp(e, d, a)
        }
        Dynamic::Schedule => ceiling * (1.0 - scores.mean_best().clamp(0.0, 1.0)),
        Dynamic::None => ceiling,
    };
    c.ceil().clamp(1.0, ceiling) as usize
}

/// LocMoE's Theorem 1 capacity 1 / (E p_delta) with delta the group's mean top-1 affinity.
pub fn bound_capacity(scores: &Scores, d: usize) -> usize {
    let (t, e) = (scores.tokens, scores.experts);
    let mean = scores.mean_best();
    let c = 1.0 / (e as f64 * theory::p_delta(d, mean.clamp(0.0, 1.0)));
    if c.is_finite() {
        c.ceil().clamp(1.0, t as f64) as usize
    } else {
        t
    }
}

#[allow(clippy::too_many_arguments)]
fn train(
    spec: &LocmoeSpec,
    task: &Task,
    vocab: usize,
    router_name: RouterName,
    plan: Plan,
    seed: usize,
    job: &Job,
) -> Result<JobEnd> {
    let arch = arch(spec, router_name, vocab);
    let mut w = arch.init(&mut job.rng(&format!("init/{seed}")));
    let mut adam = Adam::new(w.len(), spec.lr);
    let mut grad = vec![0.0; w.len()];
    let mut batches = job.rng(&format!("batches/{seed}"));
    let mut drop_rng = job.rng(&format!(
        "drop/{}/{}/{seed}",
        router_name.name(),
        plan.label()
    ));
    let router = router_name.router(spec.top_k);
    let causal = router_name.causal_router(spec.top_k);
    let (t, e, d) = (spec.tokens, spec.experts, spec.d);
    let k = router_name.slots_per_token(spec.top_k);
    let losses = Losses {
        balance: if router_name.balance_loss() {
            spec.aux
        } else {
            0.0
        },
        locality: if router_name == RouterName::Locmoe {
            spec.locality
        } else {
            0.0
        },
        nodes: spec.nodes,
    };
    let eval_groups = spec.eval_tokens.div_ceil(t);
    let eval: Vec<Group> = {
        let mut rng = job.rng(&format!("eval/{seed}"));
        (0..eval_groups)
            .map(|g| draw(spec, task, Some(g), &mut rng))
            .collect()
    };
    let mut fixed: Option<usize> = None;
    // The capacity of a group under the plan (the bound is set by the first group).
    let capacity_for = |scores: &Scores, fixed: &mut Option<usize>| -> Capacity {
        match plan {
            Plan::Factor(cf) => capacity_of(cf, k, t, e),
            Plan::Balanced => Capacity::Slots(t.div_ceil(e)),
            Plan::Dynamic(rule) => Capacity::Slots(dynamic_capacity(rule, scores, d)),
            Plan::Bound => Capacity::Slots(*fixed.get_or_insert_with(|| bound_capacity(scores, d))),
        }
    };
    let drop_policy = match router_name {
        RouterName::SwitchPriority | RouterName::LocmoePlus => Some(Drop::Priority),
        RouterName::SwitchRandom => Some(Drop::Random),
        RouterName::ExpertChoice => None,
        _ => Some(Drop::Position),
    };
    let mut step_seconds = Vec::with_capacity(spec.steps);
    let mut histogram = None;
    for step in 0..=spec.steps {
        let group = draw(spec, task, None, &mut batches);
        let b = batch(&group);
        let record = step == spec.steps || step % spec.eval_every == 0;
        let started = Instant::now();
        grad.fill(0.0);
        let train_pass = {
            let mut route = |s: &Scores| {
                let c = capacity_for(s, &mut fixed);
                router.route(s, c, &mut drop_rng)
            };
            let g = (step < spec.steps).then_some(grad.as_mut_slice());
            model::pass(&arch, &w, &b, losses, &mut route, g, record)
        };
        let pass_seconds = started.elapsed().as_secs_f64();
        if !train_pass.loss.is_finite() {
            anyhow::bail!(
                "{} at capacity {} diverged at step {step} (seed {seed}): loss {}; lower lr",
                router_name.name(),
                plan.label(),
                train_pass.loss
            );
        }
        // The row describes the weights this step's gradient was taken at (step 0: the
        // initial ones), before the update.
        if record {
            // Evaluation drops from its own stream, so how often rows are written does not
            // change the training's random drops.
            let mut eval_drop = job.rng(&format!(
                "eval-drop/{}/{}/{seed}/{step}",
                router_name.name(),
                plan.label()
            ));
            let mut route = |s: &Scores| {
                let c = capacity_for(s, &mut fixed);
                router.route(s, c, &mut eval_drop)
            };
            let row = metrics_row(
                spec,
                &arch,
                &w,
                &eval,
                &group,
                &train_pass,
                &mut route,
                &*causal,
                drop_policy,
                losses,
            );
            let mut cells = vec![
                Cell::Text(router_name.name().into()),
                Cell::Text(plan.label()),
                Cell::Int(seed as i64),
                Cell::Int(step as i64),
            ];
            cells.extend(row);
            job.emit(cells)?;
        }
        if step < spec.steps {
            let started = Instant::now();
            adam.step(&mut w, &grad);
            step_seconds.push(pass_seconds + started.elapsed().as_secs_f64());
        }
        if step == spec.steps && seed == 0 && !train_pass.affinity.is_empty() {
            histogram = Some(affinity_histogram(router_name, plan, &train_pass, e));
        }
        if job.cancel().is_set() {
            return Err(Interrupted.into());
        }
    }
    Ok(JobEnd {
        step_seconds,
        histogram,
        bound: fixed.filter(|_| plan == Plan::Bound),
    })
}

fn affinity_histogram(router: RouterName, plan: Plan, pass: &Pass, e: usize) -> AffinityHistogram {
    let bins = 40;
    let mut assigned = vec![0u64; bins];
    let mut others = vec![0u64; bins];
    let bin = |c: f64| (((c + 1.0) / 2.0 * bins as f64) as usize).min(bins - 1);
    for t in 0..pass.dispatch.tokens {
        let first = pass.dispatch.chosen.first(t);
        for x in 0..e {
            let c = pass.affinity[t * e + x];
            if Some(x) == first {
                assigned[bin(c)] += 1;
            } else {
                others[bin(c)] += 1;
            }
        }
    }
    AffinityHistogram {
        router: router.name().into(),
        capacity: plan.label(),
        bins,
        assigned,
        others,
    }
}

/// The metric cells of a row: held-out losses in train-mode and causal-safe routing, the
/// routing statistics of the training group of this step, then (pmoe) the capacity metrics
/// over the held-out groups in train-mode routing.
#[allow(clippy::too_many_arguments)]
fn metrics_row(
    spec: &LocmoeSpec,
    arch: &Arch,
    w: &[f64],
    eval: &[Group],
    group: &Group,
    pass: &Pass,
    route: &mut dyn FnMut(&Scores) -> Dispatch,
    causal: &dyn routing::Router,
    drop: Option<Drop>,
    losses: Losses,
) -> Vec<Cell> {
    let e = spec.experts;
    let (mut loss, mut causal_loss, mut correct, mut predictions) = (0.0, 0.0, 0usize, 0usize);
    // The causal-safe router never draws.
    let mut unused: ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
    let mut counts = metrics::ClassCounts::default();
    for g in eval {
        let b = batch(g);
        let p = model::pass(arch, w, &b, losses, route, None, false);
        if spec.mode == Mode::Pmoe {
            metrics::class_routing(&mut counts, g, &p.dispatch, &p.score, e, drop);
        }
        loss += p.loss / eval.len() as f64;
        correct += p.correct;
        predictions += p.predictions;
        let mut free = |s: &Scores| causal.route(s, Capacity::Dropless, &mut unused);
        causal_loss +=
            model::pass(arch, w, &b, losses, &mut free, None, false).loss / eval.len() as f64;
    }
    let stats = pass.dispatch.stats();
    let mut cells = vec![
        Cell::Real(pass.loss),
        Cell::Real(loss),
        Cell::Real(causal_loss),
    ];
    let ln2 = std::f64::consts::LN_2;
    match spec.mode {
        Mode::Pmoe => cells.push(Cell::Real(correct as f64 / predictions.max(1) as f64)),
        Mode::Charlm => cells.extend([Cell::Real(loss / ln2), Cell::Real(causal_loss / ln2)]),
        _ => {}
    }
    // Tokens with a choice (expert choice leaves some unpicked: they join no group).
    let chose: Vec<usize> = (0..pass.dispatch.tokens)
        .filter(|&t| pass.dispatch.chosen.first(t).is_some())
        .collect();
    let first: Vec<usize> = chose
        .iter()
        .map(|&t| pass.dispatch.chosen.first(t).unwrap_or(0))
        .collect();
    let chosen_h: Vec<f64> = chose
        .iter()
        .flat_map(|&t| pass.h[t * spec.d..(t + 1) * spec.d].iter().copied())
        .collect();
    let truth: Vec<usize> = chose.iter().map(|&t| group.truth[t]).collect();
    let ch = metrics::calinski_harabasz(&chosen_h, spec.d, &first, e);
    let top1 = if pass.affinity.is_empty() {
        Cell::Missing
    } else {
        Cell::Real(
            Scores {
                tokens: group.tokens,
                experts: e,
                score: &pass.affinity,
                ids: &[],
            }
            .mean_best(),
        )
    };
    let (inter, time) = metrics::all_to_all(
        &pass.dispatch,
        &group.origin,
        spec.nodes,
        spec.bandwidth_ratio,
    );
    cells.extend([
        Cell::Real(pass.balance_loss),
        Cell::Real(pass.locality_loss),
        Cell::Int(pass.dispatch.capacity as i64),
        Cell::Real(stats.cv),
        Cell::Real(stats.max_violation),
        Cell::Real(stats.gini),
        Cell::Real(stats.drop_rate),
        Cell::Real(stats.zero_expert),
        Cell::Real(stats.multi_expert),
        Cell::Int(stats.processed_slots as i64),
        Cell::Int(stats.padded_slots as i64),
        ch.map_or(Cell::Missing, Cell::Real),
        finite(metrics::mean_pairwise_cosine(&pass.h, spec.d)),
        top1,
        Cell::Real(inter),
        // Each crossing slot sends d values out and back, 4 bytes each (f32 activations).
        Cell::Int((inter * pass.dispatch.slots.len() as f64).round() as i64 * 8 * spec.d as i64),
        Cell::Real(time),
    ]);
    match spec.mode {
        Mode::Pmoe => {
            let c = std::mem::take(&mut counts).finish();
            cells.extend([c.success, c.noise_beats_signal, c.capacity_99].map(finite));
        }
        Mode::Zipf | Mode::Charlm => {
            cells.push(finite(metrics::nmi(&truth, &first)));
            cells.push(Cell::Int(
                metrics::dead_experts(&pass.dispatch.routed) as i64
            ));
        }
        _ => {}
    }
    cells.extend(pass.dispatch.routed.iter().map(|&l| Cell::Int(l as i64)));
    cells
}

/// A real cell, or an empty one where the value is undefined (NaN: no class token reached
/// its expert, no gate to rank by).
fn finite(x: f64) -> Cell {
    if x.is_finite() {
        Cell::Real(x)
    } else {
        Cell::Missing
    }
}
