//! The settings of a sparse linear network run.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    Dense,
    Random,
    Disjoint,
    Custom,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseLinearSpec {
    pub widths: Vec<usize>,
    pub mask: MaskKind,
    pub density: f64,
    pub first_mask: Vec<usize>,
    pub correlation: f64,
    pub noise: f64,
    pub starts: usize,
    pub init_scale: f64,
    pub eta: f64,
    pub iterations: usize,
    pub grad_tol: f64,
    pub perturbations: usize,
    pub seed: u64,
}

impl Default for SparseLinearSpec {
    fn default() -> Self {
        SparseLinearSpec {
            widths: vec![4, 2, 3],
            mask: MaskKind::Disjoint,
            density: 0.5,
            first_mask: Vec::new(),
            correlation: 0.0,
            noise: 0.1,
            starts: 200,
            init_scale: 0.5,
            eta: 0.05,
            iterations: 20_000,
            grad_tol: 1e-9,
            perturbations: 20,
            seed: 0,
        }
    }
}

impl Settings for SparseLinearSpec {
    const FIELDS: &'static [Field] = FIELDS;

    /// Cross-field checks the field table cannot express.
    fn validate(&self) -> Result<()> {
        let w = &self.widths;
        crate::linear_net::check_widths(w)?;
        let first = w[0] * w[1];
        match self.mask {
            MaskKind::Custom if self.first_mask.len() != first => Err(input_error!(
                "mask = custom needs first_mask with d_1 x d_0 = {first} zeros and ones: got {}",
                self.first_mask.len()
            )),
            MaskKind::Disjoint if w[1] > w[0] => Err(input_error!(
                "mask = disjoint gives each of d_1 = {} hidden units a block of the d_0 = {} \
                 inputs: expected d_1 <= d_0",
                w[1],
                w[0]
            )),
            _ if self.mask != MaskKind::Custom && !self.first_mask.is_empty() => Err(input_error!(
                "first_mask is set but mask = {:?}: expected mask = custom (or first_mask = [])",
                self.mask
            )),
            _ => Ok(()),
        }
    }
}

const NETWORK: &str = "network and data";
const SEARCH: &str = "random starts";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "widths",
        group: NETWORK,
        doc: "Layer widths d_0 (inputs), ..., d_N (outputs), N >= 2.",
        domain: Domain::IntList { min: 1, max: 200 },
    },
    Field {
        key: "mask",
        group: NETWORK,
        doc: "Mask of the first layer (the others are dense): dense; random (each weight kept\n\
              with probability density, from the seed); disjoint (hidden unit h sees a\n\
              contiguous block of inputs, the blocks partition them); custom (first_mask).\n\
              A sparse run also runs the dense network from the same starts, to compare.",
        domain: Domain::Choice(&["dense", "random", "disjoint", "custom"]),
    },
    Field {
        key: "density",
        group: NETWORK,
        doc: "mask = random: probability of keeping a first-layer weight.",
        domain: Domain::up_to(1.0),
    },
    Field {
        key: "first_mask",
        group: NETWORK,
        doc: "mask = custom: the first layer's 0/1 mask, d_1 x d_0, row-major.",
        domain: Domain::IntList { min: 0, max: 1 },
    },
    Field {
        key: "correlation",
        group: NETWORK,
        doc: "Input covariance Sigma_ij = correlation^|i-j|; 0 is whitened data.",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: false,
            max_open: true,
        },
    },
    Field {
        key: "noise",
        group: NETWORK,
        doc: "Label noise of the teacher y = A x + noise: adds noise^2 d_y / 2 to every loss.",
        domain: Domain::Real {
            min: 0.0,
            max: 1e3,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "starts",
        group: SEARCH,
        doc: "Random starts (Gaussian weights of std init_scale), run in parallel, one ChaCha8\n\
              stream each.",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "init_scale",
        group: SEARCH,
        doc: "Standard deviation of the starting weights.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "eta",
        group: SEARCH,
        doc: "Gradient descent step.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "iterations",
        group: SEARCH,
        doc: "Most gradient descent steps per start.",
        domain: Domain::Int {
            min: 1,
            max: 100_000_000,
        },
    },
    Field {
        key: "grad_tol",
        group: SEARCH,
        doc: "A start stops when its gradient norm is below this.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "perturbations",
        group: SEARCH,
        doc: "Restarts from random perturbations (1% of the weights' norm) of a candidate\n\
              spurious minimum; it is confirmed only if none of them descends lower.",
        domain: Domain::Int {
            min: 1,
            max: 10_000,
        },
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed: the teacher, the random mask and every start draw from their own\n\
              ChaCha8 streams.",
        domain: Domain::seed(),
    },
];
