//! The settings of a PMD run: the typed spec and the field table behind `lab show pmd`,
//! the flags of `lab run pmd` and the range checks.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::mirror::Divergence;
use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MdpKind {
    Garnet,
    Dense,
    Chain,
    TwoState,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceName {
    Euclidean,
    Kl,
    Tsallis,
    Burg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    Geometric,
    Adaptive,
    Pi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitPolicy {
    Uniform,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalChoice {
    Auto,
    Lu,
    Iterative,
}

/// A PMD run, as resolved from defaults, spec file, flags and overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PmdSpec {
    pub mdp: MdpKind,
    pub states: usize,
    pub actions: usize,
    pub branching: usize,
    pub chain_gap: f64,
    pub mdp_file: String,
    pub gamma: f64,
    pub divergence: Vec<DivergenceName>,
    pub tsallis_q: f64,
    pub schedule: Schedule,
    pub eta: f64,
    pub c0: f64,
    pub iterations: usize,
    pub init_policy: InitPolicy,
    pub evaluation: EvalChoice,
    pub eval_tol: f64,
    pub seed: u64,
}

impl Default for PmdSpec {
    fn default() -> Self {
        PmdSpec {
            mdp: MdpKind::Garnet,
            states: 50,
            actions: 10,
            branching: 5,
            chain_gap: 0.01,
            mdp_file: String::new(),
            gamma: 0.9,
            divergence: vec![DivergenceName::Euclidean],
            tsallis_q: 1.5,
            schedule: Schedule::Constant,
            eta: 10.0,
            c0: 1.0,
            iterations: 100,
            init_policy: InitPolicy::Uniform,
            evaluation: EvalChoice::Auto,
            eval_tol: 1e-12,
            seed: 0,
        }
    }
}

impl PmdSpec {
    pub fn divergences(&self) -> Vec<Divergence> {
        self.divergence
            .iter()
            .map(|d| match d {
                DivergenceName::Euclidean => Divergence::Euclidean,
                DivergenceName::Kl => Divergence::Kl,
                DivergenceName::Tsallis => Divergence::Tsallis(self.tsallis_q),
                DivergenceName::Burg => Divergence::Burg,
            })
            .collect()
    }

    /// The step eta_k of the fixed schedules (the adaptive one depends on the iterate).
    pub fn fixed_step(&self, k: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.eta,
            // Xiao (55): eta_k = eta_0 / gamma^k. Overflow to inf is the PI limit.
            Schedule::Geometric => self.eta / self.gamma.powi(k as i32),
            Schedule::Pi => f64::INFINITY,
            Schedule::Adaptive => f64::NAN,
        }
    }
}

/// Largest number of stored transitions (12 bytes each).
const MAX_TRANSITIONS: usize = 200_000_000;

impl Settings for PmdSpec {
    const FIELDS: &'static [Field] = FIELDS;

    /// Cross-field checks that the field table cannot express.
    fn validate(&self) -> Result<()> {
        let transitions = match self.mdp {
            MdpKind::Garnet => {
                if self.branching > self.states {
                    return Err(input_error!(
                        "branching = {} exceeds states = {}: expected 1 <= branching <= states",
                        self.branching,
                        self.states
                    ));
                }
                self.states * self.actions * self.branching
            }
            MdpKind::Dense => self.states * self.actions * self.states,
            MdpKind::Chain => {
                if self.chain_gap * (self.actions as f64 - 1.0) > 1.0 {
                    return Err(input_error!(
                        "chain_gap = {} is too large for actions = {}: rewards 1 - a * chain_gap \
                         must stay >= 0, expected chain_gap <= {}",
                        self.chain_gap,
                        self.actions,
                        1.0 / (self.actions as f64 - 1.0)
                    ));
                }
                self.states * self.actions
            }
            MdpKind::TwoState | MdpKind::File => 0,
        };
        if transitions > MAX_TRANSITIONS {
            return Err(input_error!(
                "this MDP would store {transitions} transitions: expected at most {MAX_TRANSITIONS} \
                 (fewer states, actions or branching)"
            ));
        }
        if self.mdp == MdpKind::File && self.mdp_file.is_empty() {
            return Err(input_error!(
                "mdp = file needs mdp_file = PATH (a `lab-mdp 1` file)"
            ));
        }
        if self.mdp != MdpKind::File && !self.mdp_file.is_empty() {
            return Err(input_error!(
                "mdp_file = {:?} is set but mdp = {}: expected mdp = file (or mdp_file = \"\")",
                self.mdp_file,
                toml::Value::try_from(self.mdp).map_or(String::new(), |v| v.to_string())
            ));
        }
        let has = |d: DivergenceName| self.divergence.contains(&d);
        if has(DivergenceName::Tsallis) && self.tsallis_q == 1.0 {
            return Err(input_error!(
                "tsallis_q = 1 is the KL divergence: expected tsallis_q != 1 (or divergence = kl)"
            ));
        }
        if self.schedule == Schedule::Adaptive && has(DivergenceName::Burg) {
            return Err(input_error!(
                "schedule = adaptive with divergence = burg: the Burg distance to the greedy face is \
                 infinite, so the adaptive step would be infinite; expected another schedule or \
                 divergence"
            ));
        }
        Ok(())
    }
}

const MDP: &str = "MDP";
const PMD: &str = "policy mirror descent";
const EVAL: &str = "policy evaluation";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "mdp",
        group: MDP,
        doc: "Which MDP: garnet (sparse random, Garnet(states, actions, branching)),\n\
              dense (every transition probability random), chain (a chain whose gap Delta is\n\
              chain_gap exactly), two_state (the fixed 2-state MDP of the value-polytope plot),\n\
              file (read mdp_file, format `lab-mdp 1`, see docs/pmd.md).",
        domain: Domain::Choice(&["garnet", "dense", "chain", "two_state", "file"]),
    },
    Field {
        key: "states",
        group: MDP,
        doc: "Number of states S (garnet, dense, chain).",
        domain: Domain::Int {
            min: 1,
            max: 10_000_000,
        },
    },
    Field {
        key: "actions",
        group: MDP,
        doc: "Number of actions A (garnet, dense, chain).",
        domain: Domain::Int {
            min: 2,
            max: 10_000,
        },
    },
    Field {
        key: "branching",
        group: MDP,
        doc: "Garnet branching b: next states reachable from each (s, a); at most states.",
        domain: Domain::Int {
            min: 1,
            max: 10_000_000,
        },
    },
    Field {
        key: "chain_gap",
        group: MDP,
        doc: "Chain: action a >= 1 loses a * chain_gap per step against moving on, so the gap\n\
              Delta equals chain_gap; needs chain_gap * (actions - 1) <= 1.",
        domain: Domain::up_to(1.0),
    },
    Field {
        key: "mdp_file",
        group: MDP,
        doc: "MDP file for mdp = file (write one from numpy, or with --export-mdp).",
        domain: Domain::Path,
    },
    Field {
        key: "gamma",
        group: MDP,
        doc: "Discount factor gamma.",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: true,
            max_open: true,
        },
    },
    Field {
        key: "divergence",
        group: PMD,
        doc: "Bregman divergence(s) of the mirror step; several run one after the other in the\n\
              same run, one `divergence` value per series. euclidean: projected Q-ascent;\n\
              kl: natural policy gradient (computed in log domain); tsallis: Tsallis entropy of\n\
              index tsallis_q; burg: log-barrier (Itakura-Saito).",
        domain: Domain::ChoiceList(&["euclidean", "kl", "tsallis", "burg"]),
    },
    Field {
        key: "tsallis_q",
        group: PMD,
        doc: "Index q of the Tsallis divergence: q > 1 reaches faces (finite-step), q < 1 is a\n\
              barrier; q = 2 is Euclidean with half the step; q = 1 would be KL.",
        domain: Domain::up_to(100.0),
    },
    Field {
        key: "schedule",
        group: PMD,
        doc: "Step sizes: constant (eta_k = eta), geometric (eta_k = eta / gamma^k, Xiao (55)),\n\
              adaptive (Johnson et al. 2023: eta_k = max_s min_{p on the greedy face}\n\
              D(p, pi_k(s)) / c_k, c_k = c0 gamma^(2(k+1))), pi (eta = infinity: policy iteration).",
        domain: Domain::Choice(&["constant", "geometric", "adaptive", "pi"]),
    },
    Field {
        key: "eta",
        group: PMD,
        doc: "Step size eta (constant), or eta_0 (geometric).",
        domain: Domain::positive_real(),
    },
    Field {
        key: "c0",
        group: PMD,
        doc: "c0 of the adaptive schedule.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "iterations",
        group: PMD,
        doc: "PMD iterations; the CSV has a row for the initial policy and one per iteration.",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
    },
    Field {
        key: "init_policy",
        group: PMD,
        doc: "Initial policy pi_0: uniform, or random (uniform on each state's simplex, from\n\
              the seed); both in the interior, as Xiao's analysis assumes.",
        domain: Domain::Choice(&["uniform", "random"]),
    },
    Field {
        key: "evaluation",
        group: EVAL,
        doc: "How V^pi is computed: lu (dense LU, exact to round-off), iterative (warm-started\n\
              sweeps with MacQueen bounds, error <= eval_tol), auto (lu up to 200 states).",
        domain: Domain::Choice(&["auto", "lu", "iterative"]),
    },
    Field {
        key: "eval_tol",
        group: EVAL,
        doc: "Absolute error of the iterative evaluation.",
        domain: Domain::up_to(1e-6),
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed: the MDP and the random initial policy each draw from their own\n\
              ChaCha8 stream derived from it.",
        domain: Domain::seed(),
    },
];
