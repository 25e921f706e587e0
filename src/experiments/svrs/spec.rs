//! The settings of an SVRS run: the typed spec and the field table behind `lab show svrs`,
//! the flags of `lab run svrs` and the range checks.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::methods::Method;
use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Ridge,
    Logistic,
}

/// Which similarity constant AccEG takes as the smoothness L_p of f - f_1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccegDelta {
    /// delta_max, as under max-similarity (the notes' choice).
    Max,
    /// ||H_1 - H||_2, the exact smoothness of f - f_1 for ridge.
    Master,
}

/// An SVRS run, as resolved from defaults, spec file, flags and overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvrsSpec {
    pub problem: ProblemKind,
    pub data: String,
    pub data_file: String,
    pub samples: usize,
    pub features: usize,
    pub decay: f64,
    pub heterogeneity: f64,
    pub noise: f64,
    pub nodes: usize,
    pub lambda: f64,
    pub method: Vec<Method>,
    pub seeds: usize,
    pub theta_scale: f64,
    pub acceg_delta: AccegDelta,
    pub tol: f64,
    pub max_comms: u64,
    pub record_every: u64,
    pub seed: u64,
}

impl Default for SvrsSpec {
    fn default() -> Self {
        SvrsSpec {
            problem: ProblemKind::Ridge,
            data: "synthetic".into(),
            data_file: String::new(),
            samples: 12_800,
            features: 20,
            decay: 1.0,
            heterogeneity: 0.0,
            noise: 0.5,
            nodes: 64,
            lambda: 1e-4,
            method: vec![
                Method::Agd,
                Method::Acceg,
                Method::Svrp,
                Method::Svrs,
                Method::Accsvrs,
            ],
            seeds: 3,
            theta_scale: 1.0,
            acceg_delta: AccegDelta::Max,
            tol: 1e-10,
            max_comms: 2_000_000,
            record_every: 0,
            seed: 0,
        }
    }
}

impl Settings for SvrsSpec {
    const FIELDS: &'static [Field] = FIELDS;

    fn validate(&self) -> Result<()> {
        match (self.data.as_str(), self.data_file.is_empty()) {
            ("file", true) => Err(input_error!(
                "data = file needs data_file = PATH (a LIBSVM file)"
            )),
            (data, false) if data != "file" => Err(input_error!(
                "data_file = {:?} is set but data = {data}: expected data = file (or \
                 data_file = \"\")",
                self.data_file
            )),
            _ => Ok(()),
        }
    }
}

const DATA: &str = "data";
const PROBLEM: &str = "problem";
const METHODS: &str = "methods";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "problem",
        group: PROBLEM,
        doc: "ridge: f_i(x) = (1/2m) ||A_i x - b_i||^2 + (lambda/2) ||x||^2, local problems\n\
              solved exactly (cached Cholesky). logistic: mean log(1 + exp(-b a.x)) + L2 term,\n\
              local problems solved by Newton to relative accuracy 1e-3 (see docs/svrs.md).",
        domain: Domain::Choice(&["ridge", "logistic"]),
    },
    Field {
        key: "data",
        group: DATA,
        doc: "synthetic (drawn from the seed, see samples..noise), a LIBSVM file by name\n\
              (a8a, a9a, a9a.t, w8a, looked up as $LAB_DATA/libsvm/NAME), or file (data_file).",
        domain: Domain::Choice(&["synthetic", "a8a", "a9a", "a9a.t", "w8a", "file"]),
    },
    Field {
        key: "data_file",
        group: DATA,
        doc: "LIBSVM file (plain or gzip; labels +1/-1 or 0/1) for data = file.",
        domain: Domain::Path,
    },
    Field {
        key: "samples",
        group: DATA,
        doc: "Synthetic: number of rows, split evenly over the nodes.",
        domain: Domain::Int {
            min: 2,
            max: 100_000_000,
        },
    },
    Field {
        key: "features",
        group: DATA,
        doc: "Synthetic: dimension d (dense rows).",
        domain: Domain::Int { min: 1, max: 2000 },
    },
    Field {
        key: "decay",
        group: DATA,
        doc: "Synthetic: feature j is scaled by (j+1)^-decay, which sets the spectrum (and L/mu).",
        domain: Domain::Real {
            min: 0.0,
            max: 10.0,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "heterogeneity",
        group: DATA,
        doc: "Synthetic: the similarity knob. Node i scales feature j by 1 + heterogeneity u_ij,\n\
              u_ij uniform on [-1, 1], so delta grows with it; at 0 the nodes differ only by\n\
              sampling. The delta actually obtained is computed and reported.",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: false,
            max_open: true,
        },
    },
    Field {
        key: "noise",
        group: DATA,
        doc: "Synthetic: standard deviation of the label noise.",
        domain: Domain::Real {
            min: 0.0,
            max: 1e6,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "nodes",
        group: PROBLEM,
        doc: "Number of nodes n (node 1 is the master); the rows are shuffled from the seed and\n\
              split into n iid shards.",
        domain: Domain::Int {
            min: 2,
            max: 1_000_000,
        },
    },
    Field {
        key: "lambda",
        group: PROBLEM,
        doc: "L2 regularization lambda; for ridge delta does not depend on it and\n\
              mu = lambda + lambda_min(data), so it moves delta/mu.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "method",
        group: METHODS,
        doc: "Methods to run: gd, agd (Nesterov), dane, cgm (composite gradient, server-only),\n\
              acceg (Kovalev et al. 2022), svrp, catalyzed_svrp (Khaled and Jin), svrs,\n\
              accsvrs (Lin et al.). Each stochastic one runs once per seed.",
        domain: Domain::ChoiceList(&[
            "gd",
            "agd",
            "dane",
            "cgm",
            "acceg",
            "svrp",
            "catalyzed_svrp",
            "svrs",
            "accsvrs",
        ]),
    },
    Field {
        key: "seeds",
        group: METHODS,
        doc: "Runs per stochastic method (svrp, catalyzed_svrp, svrs, accsvrs); each has its own\n\
              ChaCha8 stream. Plots show the median and the min-max band.",
        domain: Domain::Int { min: 1, max: 1000 },
    },
    Field {
        key: "theta_scale",
        group: METHODS,
        doc: "Multiplier of the theory step theta = sqrt(p) / (4 delta_avg) of svrs and accsvrs\n\
              (and of cgm's 1/(2 delta_master)); 1 is the theory value (reconstructed).",
        domain: Domain::positive_real(),
    },
    Field {
        key: "acceg_delta",
        group: METHODS,
        doc: "L_p of AccEG (and its theta = 1/(2 L_p)): max = delta_max, as under the\n\
              max-similarity assumption (the notes); master = ||H_1 - H||, the smoothness of\n\
              f - f_1 itself, a smaller constant that makes AccEG faster.",
        domain: Domain::Choice(&["max", "master"]),
    },
    Field {
        key: "tol",
        group: RUN,
        doc: "Stop a method when ||x - x*||^2 / ||x0 - x*||^2 <= tol; its cost then is the\n\
              cost-to-tol of the claims.",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: true,
            max_open: true,
        },
    },
    Field {
        key: "max_comms",
        group: RUN,
        doc: "Budget: stop a method after this many communications.",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000_000_000,
        },
    },
    Field {
        key: "record_every",
        group: RUN,
        doc: "Write a row each time a method has made this many more communications; 0: after\n\
              n more or 1% more communications, whichever is later.",
        domain: Domain::seed(),
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed: the synthetic data, the split and every (method, seed) run draw from\n\
              their own ChaCha8 streams derived from it.",
        domain: Domain::seed(),
    },
];
