//! The settings of a noise run: the typed spec and its field table.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Gd,
    WnGd,
    Pgd,
    Psgd,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Gd => "gd",
            Method::WnGd => "wn_gd",
            Method::Pgd => "pgd",
            Method::Psgd => "psgd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseMode {
    PerturbedPoint,
    Additive,
}

impl NoiseMode {
    pub fn name(self) -> &'static str {
        match self {
            NoiseMode::PerturbedPoint => "perturbed_point",
            NoiseMode::Additive => "additive",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    pub k: usize,
    pub p: usize,
    pub method: Vec<Method>,
    pub noise_mode: NoiseMode,
    pub starts: usize,
    pub epochs: usize,
    pub iterations: usize,
    pub lr: f64,
    pub lr_decay: f64,
    pub noise_w: f64,
    pub noise_a: f64,
    pub noise_decay: f64,
    pub batch: usize,
    pub init_a: f64,
    pub record_every: usize,
    pub seed: u64,
}

impl Default for NoiseSpec {
    fn default() -> Self {
        NoiseSpec {
            k: 6,
            p: 6,
            method: vec![Method::Gd, Method::WnGd, Method::Pgd, Method::Psgd],
            noise_mode: NoiseMode::PerturbedPoint,
            starts: 200,
            epochs: 20,
            iterations: 400,
            lr: 0.1,
            lr_decay: 0.8,
            noise_w: 36.0,
            noise_a: 1.0,
            noise_decay: 0.4,
            batch: 4,
            init_a: 0.1,
            record_every: 100,
            seed: 0,
        }
    }
}

impl Settings for NoiseSpec {
    const FIELDS: &'static [Field] = FIELDS;

    /// Cross-field checks the field table cannot express.
    fn validate(&self) -> Result<()> {
        let steps = self.epochs as u64 * self.iterations as u64;
        let work = steps * self.starts as u64 * self.method.len() as u64;
        if steps > 100_000_000 || work > 20_000_000_000 {
            return Err(input_error!(
                "epochs x iterations x starts x methods = {work} steps: expected at most 2e10 \
                 (and 1e8 per start)"
            ));
        }
        if self.record_every as u64 > steps {
            return Err(input_error!(
                "record_every = {} exceeds the {steps} steps of a start",
                self.record_every
            ));
        }
        Ok(())
    }
}

const MODEL: &str = "teacher";
const TRAINING: &str = "training";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "k",
        group: MODEL,
        doc: "Number of non-overlapping patches (and of second-layer weights a_j).",
        domain: Domain::Int { min: 2, max: 1000 },
    },
    Field {
        key: "p",
        group: MODEL,
        doc: "Patch size: w, w* in R^p. The teacher: w* uniform on the unit sphere, a* ~ N(0, I)\n\
              (stream `teacher`).",
        domain: Domain::Int { min: 1, max: 1000 },
    },
    Field {
        key: "method",
        group: TRAINING,
        doc: "gd: gradient descent on (w, a) with step lr; wn_gd: with weight normalization\n\
              (f uses w / ||w||, Du et al. 2018); pgd: perturbed GD with noise annealing (Zhou et\n\
              al., Algorithm 1, epoch schedule below); psgd: its mini-batch SGD variant.",
        domain: Domain::ChoiceList(&["gd", "wn_gd", "pgd", "psgd"]),
    },
    Field {
        key: "noise_mode",
        group: TRAINING,
        doc: "How the noise enters (the paper's Algorithm 1 could not be read):\n\
              perturbed_point: the gradient at (w + xi, a + eps), GD on a smoothed loss;\n\
              additive: (xi, eps) added to the gradient. xi, eps Gaussian of norm ~ noise_w,\n\
              noise_a.",
        domain: Domain::Choice(&["perturbed_point", "additive"]),
    },
    Field {
        key: "starts",
        group: TRAINING,
        doc: "Random starts per method (w ~ N(0, I_p), a uniform in [-init_a, init_a]^k), run in\n\
              parallel, each with its own ChaCha8 streams (`init/K`, `METHOD/K`).",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "epochs",
        group: TRAINING,
        doc: "Epochs of the schedule (every method runs epochs x iterations steps).",
        domain: Domain::Int {
            min: 1,
            max: 10_000,
        },
    },
    Field {
        key: "iterations",
        group: TRAINING,
        doc: "Iterations per epoch.",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
    },
    Field {
        key: "lr",
        group: TRAINING,
        doc: "Step size (gd and wn_gd keep it; pgd and psgd start with it).",
        domain: Domain::positive_real(),
    },
    Field {
        key: "lr_decay",
        group: TRAINING,
        doc: "Per-epoch factor of the step of pgd and psgd.",
        domain: Domain::up_to(1.0),
    },
    Field {
        key: "noise_w",
        group: TRAINING,
        doc: "Initial noise level rho_w on w (norm of xi).",
        domain: Domain::Real {
            min: 0.0,
            max: 1e6,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "noise_a",
        group: TRAINING,
        doc: "Initial noise level rho_a on a (norm of eps).",
        domain: Domain::Real {
            min: 0.0,
            max: 1e6,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "noise_decay",
        group: TRAINING,
        doc: "Per-epoch factor of both noise levels.",
        domain: Domain::up_to(1.0),
    },
    Field {
        key: "batch",
        group: TRAINING,
        doc: "Fresh samples per psgd step.",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "init_a",
        group: TRAINING,
        doc: "Half-width of the uniform start of a.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "record_every",
        group: RUN,
        doc: "Iterations between rows of a start.",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed of the streams `teacher`, `init/K` and `METHOD/K`.",
        domain: Domain::seed(),
    },
];
