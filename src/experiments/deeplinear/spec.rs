//! The settings of a deep linear network run: the typed spec and its field table.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Balanced,
    Random,
    Invariant,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    Positive,
    Negative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Dynamics {
    Flow,
    Gd,
}

impl Dynamics {
    pub fn name(self) -> &'static str {
        match self {
            Dynamics::Flow => "flow",
            Dynamics::Gd => "gd",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepLinearSpec {
    pub widths: Vec<usize>,
    pub spectrum: Vec<f64>,
    pub init: Init,
    pub init_scale: f64,
    pub init_sign: Sign,
    pub init_weights: Vec<f64>,
    pub method: Vec<Dynamics>,
    pub eta: f64,
    pub t_end: f64,
    pub outputs: usize,
    pub rtol: f64,
    pub atol: f64,
    pub seed: u64,
}

impl Default for DeepLinearSpec {
    fn default() -> Self {
        DeepLinearSpec {
            widths: vec![4, 1, 2, 3],
            spectrum: vec![3.0, 2.0, 1.0],
            init: Init::Balanced,
            init_scale: 0.05,
            init_sign: Sign::Positive,
            init_weights: Vec::new(),
            method: vec![Dynamics::Flow],
            eta: 1e-3,
            t_end: 20.0,
            outputs: 400,
            rtol: 1e-10,
            atol: 1e-12,
            seed: 0,
        }
    }
}

/// Most parameters a run may have (the flow keeps a few copies of them per output).
const MAX_PARAMETERS: usize = 200_000;

impl Settings for DeepLinearSpec {
    const FIELDS: &'static [Field] = FIELDS;

    /// Cross-field checks the field table cannot express.
    fn validate(&self) -> Result<()> {
        let w = &self.widths;
        crate::linear_net::check_widths(w)?;
        if !w.contains(&1) {
            return Err(input_error!(
                "widths = {w:?} has no width 1: expected a one-neuron layer (some d_j = 1)"
            ));
        }
        let (d0, dn) = (w[0], w[w.len() - 1]);
        let s = &self.spectrum;
        if s.is_empty() || s.len() > d0.min(dn) {
            return Err(input_error!(
                "spectrum has {} values: expected 1 to min(d_0, d_N) = {}",
                s.len(),
                d0.min(dn)
            ));
        }
        if s.iter().any(|&x| x <= 0.0) || s.windows(2).any(|p| p[1] > p[0]) {
            return Err(input_error!(
                "spectrum = {s:?}: expected positive values in non-increasing order"
            ));
        }
        let dim = crate::linear_net::parameter_count(w);
        if dim > MAX_PARAMETERS {
            return Err(input_error!(
                "widths = {w:?} give {dim} weights: expected at most {MAX_PARAMETERS}"
            ));
        }
        match self.init {
            Init::Invariant if s.len() < 2 || d0 < 2 || dn < 2 => Err(input_error!(
                "init = invariant needs a second singular value and d_0, d_N >= 2 (u and v \
                 orthogonal to u_1, v_1): expected spectrum with 2 values and wider ends"
            )),
            Init::Custom if self.init_weights.len() != dim => Err(input_error!(
                "init = custom needs init_weights with {dim} values (widths {w:?}): got {}",
                self.init_weights.len()
            )),
            _ if self.init != Init::Custom && !self.init_weights.is_empty() => Err(input_error!(
                "init_weights is set but init = {:?}: expected init = custom (or init_weights = [])",
                self.init
            )),
            _ => Ok(()),
        }
    }
}

const NETWORK: &str = "network and data";
const START: &str = "initialization";
const DYNAMICS: &str = "dynamics";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "widths",
        group: NETWORK,
        doc: "Layer widths d_0 (input), d_1, ..., d_N (output); N >= 2 layers and at least one\n\
              width equal to 1 (the one-neuron layer).",
        domain: Domain::IntList { min: 1, max: 1000 },
    },
    Field {
        key: "spectrum",
        group: NETWORK,
        doc: "Singular values s_1 >= s_2 >= ... > 0 of Z = Y X^T (whitened data, X X^T = I, so\n\
              L = ||Z - W_N...W_1||^2 / 2 + const); at most min(d_0, d_N) of them. The singular\n\
              vectors are random orthonormal from the seed.",
        domain: Domain::RealList { min: 0.0, max: 1e6 },
    },
    Field {
        key: "init",
        group: START,
        doc: "balanced: W_j = c q_j q_{j-1}^T with random unit q_j, so every\n\
              D_j = W_{j+1}^T W_{j+1} - W_j W_j^T is 0 and the product is init_scale u v^T;\n\
              random: Gaussian entries of standard deviation init_scale (unbalanced);\n\
              invariant: balanced with u orthogonal to u_1 and v to v_1 (the invariant set that\n\
              flows to the second saddle); custom: init_weights.",
        domain: Domain::Choice(&["balanced", "random", "invariant", "custom"]),
    },
    Field {
        key: "init_scale",
        group: START,
        doc: "sigma_0: the product's norm at a balanced start, or the entries' standard deviation.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "init_sign",
        group: START,
        doc: "Sign of the balanced start's product (negative: the scalar chain starts on the\n\
              wrong side of the origin).",
        domain: Domain::Choice(&["positive", "negative"]),
    },
    Field {
        key: "init_weights",
        group: START,
        doc: "init = custom: every weight, layer 1 first, each layer row-major.",
        domain: Domain::RealList {
            min: -1e6,
            max: 1e6,
        },
    },
    Field {
        key: "method",
        group: DYNAMICS,
        doc: "flow: gradient flow by Dormand-Prince 5(4) under rtol/atol; gd: gradient descent\n\
              with step eta (time k eta after k steps). Both in one run compare them.",
        domain: Domain::ChoiceList(&["flow", "gd"]),
    },
    Field {
        key: "eta",
        group: DYNAMICS,
        doc: "Gradient descent step.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "t_end",
        group: DYNAMICS,
        doc: "Time horizon.",
        domain: Domain::up_to(1e9),
    },
    Field {
        key: "outputs",
        group: DYNAMICS,
        doc: "Rows per method: the state at outputs + 1 evenly spaced times in [0, t_end].",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
    },
    Field {
        key: "rtol",
        group: DYNAMICS,
        doc: "Relative tolerance of the flow integrator.",
        domain: Domain::up_to(1e-3),
    },
    Field {
        key: "atol",
        group: DYNAMICS,
        doc: "Absolute tolerance of the flow integrator.",
        domain: Domain::up_to(1e-3),
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed: the singular vectors (`target`) and the initialization (`init`) draw\n\
              from their own ChaCha8 streams.",
        domain: Domain::seed(),
    },
];
