//! The settings of a locmoe run: the typed spec and its field table.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::routing::RouterName;
use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Theory,
    Pmoe,
    Zipf,
    Charlm,
    Routing,
}

impl Mode {
    pub fn trains(self) -> bool {
        matches!(self, Mode::Pmoe | Mode::Zipf | Mode::Charlm)
    }
}

/// The readings of LocMoE+'s dynamic capacity (notes section 6.1; ours, the papers give no
/// per-step formula).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dynamic {
    None,
    Corollary6,
    Remark7,
    Schedule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    None,
    FirstBatch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocmoeSpec {
    pub mode: Mode,
    pub theory_dims: Vec<i64>,
    pub theory_samples: usize,
    pub theory_tokens: usize,
    pub tcr_p: f64,
    pub ecr_q: Vec<f64>,
    pub d: usize,
    pub experts: usize,
    pub expert_hidden: usize,
    pub router: Vec<RouterName>,
    pub top_k: usize,
    pub capacity: Vec<f64>,
    pub dynamic_capacity: Vec<Dynamic>,
    pub locmoe_bound: Bound,
    pub gate_temperature: f64,
    pub aux: f64,
    pub locality: f64,
    pub nodes: usize,
    pub bandwidth_ratio: f64,
    pub tokens: usize,
    pub sample_tokens: usize,
    pub signal: f64,
    pub distractor: f64,
    pub noise: f64,
    pub zipf_exponent: f64,
    pub spread: f64,
    pub topics: usize,
    pub context: usize,
    pub embedding: usize,
    pub corpus: String,
    pub corpus_chars: usize,
    pub steps: usize,
    pub lr: f64,
    pub seeds: usize,
    pub eval_every: usize,
    pub eval_tokens: usize,
    pub repeats: usize,
    pub seed: u64,
}

impl Default for LocmoeSpec {
    fn default() -> Self {
        LocmoeSpec {
            mode: Mode::Theory,
            theory_dims: vec![16, 64, 256],
            theory_samples: 20_000,
            theory_tokens: 512,
            tcr_p: 0.5,
            ecr_q: vec![0.02, 0.1],
            d: 32,
            experts: 8,
            expert_hidden: 32,
            router: RouterName::ALL.to_vec(),
            top_k: 2,
            capacity: vec![1.1],
            dynamic_capacity: vec![Dynamic::Schedule],
            locmoe_bound: Bound::FirstBatch,
            gate_temperature: 0.1,
            aux: 0.01,
            locality: 0.01,
            nodes: 2,
            bandwidth_ratio: 0.25,
            tokens: 512,
            sample_tokens: 32,
            signal: 3.0,
            distractor: 1.0,
            noise: 0.5,
            zipf_exponent: 1.0,
            spread: 0.5,
            topics: 4,
            context: 4,
            embedding: 8,
            corpus: String::new(),
            corpus_chars: 100_000,
            steps: 400,
            lr: 0.01,
            seeds: 3,
            eval_every: 25,
            eval_tokens: 2048,
            repeats: 20,
            seed: 0,
        }
    }
}

impl LocmoeSpec {
    /// The tokens the MoE layer routes per step (one routing group).
    pub fn group_tokens(&self) -> usize {
        self.tokens
    }

    /// The router input width of the model (charlm's concatenated embeddings are projected
    /// to it, as every mode's inputs are).
    pub fn input_width(&self) -> usize {
        match self.mode {
            Mode::Charlm => self.context * self.embedding,
            _ => self.d,
        }
    }
}

impl Settings for LocmoeSpec {
    const FIELDS: &'static [Field] = FIELDS;

    fn validate(&self) -> Result<()> {
        let (t, e) = (self.tokens, self.experts);
        if self.dynamic_capacity.len() > 1 && self.dynamic_capacity.contains(&Dynamic::None) {
            return Err(input_error!(
                "dynamic_capacity lists none with other readings: expected none alone, or readings"
            ));
        }
        let grap = self.router.iter().any(|r| r.uses_grap());
        if grap && !self.d.is_multiple_of(e) {
            return Err(input_error!(
                "d = {} is not a multiple of experts = {e}: the GrAP gates of locmoe and \
                 locmoe_plus average d / experts contiguous coordinates each (choose d = {})",
                self.d,
                (self.d / e).max(1) * e
            ));
        }
        if self.router.contains(&RouterName::Gshard) && self.top_k > e {
            return Err(input_error!(
                "top_k = {} exceeds experts = {e}: a token cannot take more experts than exist",
                self.top_k
            ));
        }
        for (key, repeated) in [
            ("capacity", repeated(&self.capacity)),
            ("theory_dims", repeated(&self.theory_dims)),
            ("ecr_q", repeated(&self.ecr_q)),
        ] {
            if let Some(v) = repeated {
                return Err(input_error!(
                    "{key} lists {v} twice: expected each value once"
                ));
            }
        }
        if self.mode == Mode::Theory {
            if !self.d.is_multiple_of(e) {
                return Err(input_error!(
                    "d = {} is not a multiple of experts = {e}: Lemma 2 routes isotropic tokens \
                     through GrAP gates of d / experts coordinates each",
                    self.d
                ));
            }
            for &q in &self.ecr_q {
                if !(q > 0.0 && q < 1.0) {
                    return Err(input_error!(
                        "ecr_q = {q}: expected probabilities strictly between 0 and 1"
                    ));
                }
            }
            if self.experts < 2 {
                return Err(input_error!(
                    "experts = 1: the theory checks need at least 2"
                ));
            }
            return Ok(());
        }
        for &cf in &self.capacity {
            if cf == 0.0 {
                continue; // dropless
            }
            // BASE balances at ceil(T / E) whatever the factor.
            for r in self.router.iter().filter(|r| **r != RouterName::Base) {
                let k = r.slots_per_token(self.top_k) as f64;
                let c = cf * k * t as f64 / e as f64;
                if c < 1.0 {
                    return Err(input_error!(
                        "capacity = {cf} gives {c:.3} token slots per expert for {} ({t} tokens, \
                         {e} experts): below 1; expected at least {:.4} (0 means dropless)",
                        r.name(),
                        e as f64 / (k * t as f64)
                    ));
                }
                if c.ceil() > t as f64 {
                    return Err(input_error!(
                        "capacity = {cf} gives {} token slots per expert for {}: above the {t} \
                         tokens of a step; expected at most {:.4} (0 means dropless)",
                        c.ceil(),
                        r.name(),
                        e as f64 / k
                    ));
                }
            }
        }
        if self.mode == Mode::Pmoe && t % self.sample_tokens != 0 {
            return Err(input_error!(
                "tokens = {t} is not a multiple of sample_tokens = {}: a step routes whole samples",
                self.sample_tokens
            ));
        }
        if self.nodes > e {
            return Err(input_error!(
                "nodes = {} exceeds experts = {e}: every virtual node holds at least one expert",
                self.nodes
            ));
        }
        if self.mode.trains() {
            let per_step =
                (t * (self.d * self.input_width() + 3 * self.d * self.expert_hidden)) as u64;
            let runs = (self.router.len() * (self.capacity.len() + 2) * self.seeds) as u64;
            let work = per_step * self.steps as u64 * runs;
            if work > 4_000_000_000_000 {
                return Err(input_error!(
                    "tokens x steps x width x routers x capacities x seeds = {work:.2e} \
                     multiply-adds: expected at most 4e12 (fewer steps, seeds or capacities); \
                     lab keeps a run to minutes"
                ));
            }
        }
        Ok(())
    }
}

/// The first value a list holds twice, as text.
fn repeated<T: PartialEq + std::fmt::Display>(values: &[T]) -> Option<String> {
    values
        .iter()
        .enumerate()
        .find(|(i, v)| values[..*i].contains(v))
        .map(|(_, v)| v.to_string())
}

const THEORY: &str = "theory (mode = theory)";
const MODEL: &str = "model";
const ROUTING: &str = "routing";
const DATA: &str = "data";
const TRAINING: &str = "training";
const RUN: &str = "run";

const fn int(min: i64, max: i64) -> Domain {
    Domain::Int { min, max }
}

const fn real(min: f64, max: f64) -> Domain {
    Domain::Real {
        min,
        max,
        min_open: false,
        max_open: false,
    }
}

pub const FIELDS: &[Field] = &[
    Field {
        key: "mode",
        group: RUN,
        doc: "theory: the LocMoE and LocMoE+ lemmas and theorems by Monte Carlo against their\n\
              closed forms (no training, seconds); pmoe: the papers' data model (one class\n\
              token among noise tokens per sample), classification; zipf: regression on\n\
              clustered tokens with Zipf-skewed cluster sizes; charlm: a character language\n\
              model on a corpus of topic Markov chains; routing: times every router on random\n\
              tokens (the speed bench's lab side).",
        domain: Domain::Choice(&["theory", "pmoe", "zipf", "charlm", "routing"]),
    },
    Field {
        key: "theory_dims",
        group: THEORY,
        doc: "Dimensions d of the sphere checks (Lemma 1, Lemma 3, Theorem 1).",
        domain: Domain::IntList {
            min: 3,
            max: 100_000,
        },
    },
    Field {
        key: "theory_samples",
        group: THEORY,
        doc: "Monte Carlo draws per point (tokens on the sphere, trials of Theorem 5).",
        domain: int(100, 10_000_000),
    },
    Field {
        key: "theory_tokens",
        group: THEORY,
        doc: "Tokens s per sample in Theorem 5 (one discriminative, s - 1 noise).",
        domain: int(2, 4096),
    },
    Field {
        key: "tcr_p",
        group: THEORY,
        doc: "Theorem 5: the probability p that token choice sends the discriminative token to\n\
              its class's expert (p_i = p for every class; the theorem assumes p >= 1/n).",
        domain: real(0.0, 1.0),
    },
    Field {
        key: "ecr_q",
        group: THEORY,
        doc: "Theorem 5: false-positive rates q (a noise token's affinity to the expert beats\n\
              the discriminative token's), one curve each, each strictly between 0 and 1.",
        domain: Domain::RealList { min: 0.0, max: 1.0 },
    },
    Field {
        key: "d",
        group: MODEL,
        doc: "Width of the router input (the learnable projection's output) and of the MoE\n\
              layer; the GrAP routers need a multiple of experts.",
        domain: int(2, 4096),
    },
    Field {
        key: "experts",
        group: MODEL,
        doc: "Experts E of the MoE layer (pmoe: also the number of classes).",
        domain: int(1, 256),
    },
    Field {
        key: "expert_hidden",
        group: MODEL,
        doc: "Hidden units h of each expert, a d-h-d ReLU MLP.",
        domain: int(1, 4096),
    },
    Field {
        key: "router",
        group: ROUTING,
        doc: "The arms (every one behind the same projection; see docs/locmoe.md): switch\n\
              (top-1 softmax, aux loss, position dropping), switch_priority and switch_random\n\
              (the controls: the same, dropping by gate probability or at random), gshard\n\
              (top_k softmax, gates renormalized), expert_choice (each expert takes its C\n\
              highest-probability tokens), base (balanced assignment, greedy), hash (a fixed\n\
              balanced table of token ids), locmoe (GrAP top-1, aux and locality losses),\n\
              locmoe_plus (GrAP cosine affinity top-1, then each expert keeps its C tokens of\n\
              highest affinity).",
        domain: Domain::ChoiceList(&[
            "switch",
            "switch_priority",
            "switch_random",
            "gshard",
            "expert_choice",
            "base",
            "hash",
            "locmoe",
            "locmoe_plus",
        ]),
    },
    Field {
        key: "top_k",
        group: ROUTING,
        doc: "Experts per token of gshard (2 in GShard).",
        domain: int(1, 256),
    },
    Field {
        key: "capacity",
        group: ROUTING,
        doc: "Capacity factors cf, one training run per router, factor and seed: C = ceil(cf k\n\
              T / E) token slots per expert (k = top_k for gshard, else 1); 0: dropless (C =\n\
              the largest load). base is balanced at ceil(T / E) whatever cf, hash and\n\
              expert_choice take C as given.",
        domain: Domain::RealList {
            min: 0.0,
            max: 256.0,
        },
    },
    Field {
        key: "dynamic_capacity",
        group: ROUTING,
        doc: "Adds a locmoe_plus run per reading whose C is recomputed every step (its capacity\n\
              key is the reading's name); our readings, the papers give no formula: corollary6:\n\
              C = 2 x the median over experts of their assigned tokens with affinity >= 3 /\n\
              sqrt(d); remark7: C = exp(d a^2 / (2 - a^2)) / E with a the group's largest top-1\n\
              affinity; schedule: C = 1.1 (T / E) (1 - mean top-1 affinity); each clamped to [1,\n\
              ceil(1.1 T / E)]. none (alone): no such run.",
        domain: Domain::ChoiceList(&["none", "corollary6", "remark7", "schedule"]),
    },
    Field {
        key: "locmoe_bound",
        group: ROUTING,
        doc: "first_batch: adds a locmoe run whose C is LocMoE's Theorem 1 bound 1 / (E p_delta)\n\
              with delta the first batch's mean top-1 affinity, then fixed (capacity `bound`),\n\
              as LocMoE+'s authors ran LocMoE; none: no such run.",
        domain: Domain::Choice(&["none", "first_batch"]),
    },
    Field {
        key: "gate_temperature",
        group: ROUTING,
        doc: "locmoe_plus's gate value softmax(delta / temperature) that multiplies the expert\n\
              output (ours: the papers do not say how gradients reach a fixed-weight router).",
        domain: Domain::up_to(100.0),
    },
    Field {
        key: "aux",
        group: ROUTING,
        doc: "Coefficient alpha of Switch's balance loss alpha E sum_i f_i P_i (switch and its\n\
              controls, gshard, locmoe; 0.01 in both papers).",
        domain: real(0.0, 10.0),
    },
    Field {
        key: "locality",
        group: ROUTING,
        doc: "Coefficient mu of LocMoE's locality loss mu KL(D_c || D_l) (locmoe only; D_l\n\
              smoothed: 0.9 on the token's node's experts, 0.1 spread over all; ours).",
        domain: real(0.0, 10.0),
    },
    Field {
        key: "nodes",
        group: ROUTING,
        doc: "Virtual nodes of the simulated all-to-all: experts split evenly in order; a\n\
              token's origin node is its sample (pmoe), cluster (zipf) or topic (charlm) modulo\n\
              nodes.",
        domain: int(1, 256),
    },
    Field {
        key: "bandwidth_ratio",
        group: ROUTING,
        doc: "Inter-node over intra-node bandwidth of the simulated all-to-all time.",
        domain: Domain::up_to(1.0),
    },
    Field {
        key: "tokens",
        group: DATA,
        doc: "Tokens T routed per step (one routing group; pmoe: T / sample_tokens samples).",
        domain: int(2, 1_000_000),
    },
    Field {
        key: "sample_tokens",
        group: DATA,
        doc: "pmoe: tokens s per sample (one carries the class pattern).",
        domain: int(2, 100_000),
    },
    Field {
        key: "signal",
        group: DATA,
        doc: "pmoe: norm of the class pattern o_y in the discriminative token.",
        domain: real(0.0, 1000.0),
    },
    Field {
        key: "distractor",
        group: DATA,
        doc: "pmoe: norm of the class pattern o_c (c uniform) in each class-irrelevant token\n\
              (ours: the mean over a sample then hides the class from a linear read-out).",
        domain: real(0.0, 1000.0),
    },
    Field {
        key: "noise",
        group: DATA,
        doc: "pmoe and zipf: expected norm of a token's Gaussian noise (sd noise / sqrt(d) per\n\
              coordinate).",
        domain: real(0.0, 1000.0),
    },
    Field {
        key: "zipf_exponent",
        group: DATA,
        doc: "zipf: cluster k is drawn with probability proportional to 1 / k^exponent (0:\n\
              uniform); as many clusters as experts.",
        domain: real(0.0, 10.0),
    },
    Field {
        key: "spread",
        group: DATA,
        doc: "zipf: the norm of a cluster's center relative to its noise (larger: better\n\
              separated clusters).",
        domain: real(0.0, 1000.0),
    },
    Field {
        key: "topics",
        group: DATA,
        doc: "charlm: topics of the generated corpus, each an order-2 character Markov chain.",
        domain: int(1, 64),
    },
    Field {
        key: "context",
        group: DATA,
        doc: "charlm: characters before the predicted one that the model sees.",
        domain: int(1, 64),
    },
    Field {
        key: "embedding",
        group: DATA,
        doc: "charlm: width of a character's learned embedding (the input is context x\n\
              embedding wide).",
        domain: int(1, 256),
    },
    Field {
        key: "corpus",
        group: DATA,
        doc: "charlm: a UTF-8 text file to train on instead of the generated corpus (its\n\
              characters are the alphabet; the last tenth is held out); empty: generated.",
        domain: Domain::Path,
    },
    Field {
        key: "corpus_chars",
        group: DATA,
        doc: "charlm: characters of the generated corpus (the last tenth held out).",
        domain: int(1000, 100_000_000),
    },
    Field {
        key: "steps",
        group: TRAINING,
        doc: "Adam steps of each (router, capacity, seed) run.",
        domain: int(1, 1_000_000),
    },
    Field {
        key: "lr",
        group: TRAINING,
        doc: "Adam's step size (betas 0.9, 0.999).",
        domain: Domain::up_to(10.0),
    },
    Field {
        key: "seeds",
        group: TRAINING,
        doc: "Seeds per (router, capacity): streams `data/S` and `init/S` are shared by the\n\
              arms, so the arms of one seed see the same data from the same weights.",
        domain: int(1, 1000),
    },
    Field {
        key: "eval_every",
        group: TRAINING,
        doc: "Steps between rows (and the first and last step); each row evaluates held-out data.",
        domain: int(1, 1_000_000),
    },
    Field {
        key: "eval_tokens",
        group: TRAINING,
        doc: "Held-out tokens per evaluation (in routing groups of `tokens`, rounded up).",
        domain: int(1, 10_000_000),
    },
    Field {
        key: "repeats",
        group: RUN,
        doc: "mode = routing: timed calls per router (the median is reported).",
        domain: int(1, 100_000),
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed of every stream.",
        domain: Domain::seed(),
    },
];
