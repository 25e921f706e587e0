//! The settings of a directional-convergence run: the typed spec and its field table.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Linear,
    TwoNode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondLayer {
    Fixed,
    Trained,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawName {
    Gaussian,
    Sphere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    Logistic,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Balanced,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    Linear,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Flow,
    Gd,
    Online,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Flow => "flow",
            Method::Gd => "gd",
            Method::Online => "online",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionalSpec {
    pub model: Model,
    pub dim: usize,
    pub depth: usize,
    pub width: usize,
    pub second_layer: SecondLayer,
    pub law: LawName,
    pub loss: LossName,
    pub init: Init,
    pub init_scale: f64,
    pub init_angle: f64,
    pub method: Vec<Method>,
    pub eta: f64,
    pub batch: usize,
    pub t_end: f64,
    pub outputs: usize,
    pub spacing: Spacing,
    pub rtol: f64,
    pub atol: f64,
    pub seed: u64,
}

impl Default for DirectionalSpec {
    fn default() -> Self {
        DirectionalSpec {
            model: Model::Linear,
            dim: 5,
            depth: 1,
            width: 1,
            second_layer: SecondLayer::Fixed,
            law: LawName::Gaussian,
            loss: LossName::Logistic,
            init: Init::Balanced,
            init_scale: 0.5,
            init_angle: 1.0,
            method: vec![Method::Flow],
            eta: 0.05,
            batch: 64,
            t_end: 10_000.0,
            outputs: 400,
            spacing: Spacing::Log,
            rtol: 1e-10,
            atol: 1e-300,
            seed: 0,
        }
    }
}

/// Most parameters a run may have.
const MAX_PARAMETERS: usize = 200_000;

impl Settings for DirectionalSpec {
    const FIELDS: &'static [Field] = FIELDS;

    /// Cross-field checks the field table cannot express.
    fn validate(&self) -> Result<()> {
        if self.law == LawName::Sphere && self.dim < 3 {
            return Err(input_error!(
                "law = sphere needs dim >= 3 (the 2-D projection of a circle has no density): got \
                 dim = {}",
                self.dim
            ));
        }
        let network = super::network(self);
        if network.dim() > MAX_PARAMETERS {
            return Err(input_error!(
                "dim, depth and width give {} parameters: expected at most {MAX_PARAMETERS}",
                network.dim()
            ));
        }
        if self.method.iter().any(|m| *m != Method::Flow) && self.eta > self.t_end {
            return Err(input_error!(
                "eta = {} exceeds t_end = {}: expected at least one step",
                self.eta,
                self.t_end
            ));
        }
        Ok(())
    }
}

const MODEL: &str = "model and data";
const START: &str = "initialization";
const DYNAMICS: &str = "dynamics";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "model",
        group: MODEL,
        doc: "linear: f(x) = W_N...W_1 x, widths [dim, width, ..., width, 1] (depth = 1: the\n\
              linear predictor); two_node: f(x) = v_1 relu(w_1^T x) + v_2 relu(w_2^T x), our\n\
              choice of form (the paper's exact two-node form is unverified).",
        domain: Domain::Choice(&["linear", "two_node"]),
    },
    Field {
        key: "dim",
        group: MODEL,
        doc: "Input dimension d (at least 3 for law = sphere).",
        domain: Domain::Int {
            min: 2,
            max: 10_000,
        },
    },
    Field {
        key: "depth",
        group: MODEL,
        doc: "N, the number of layers of the linear network.",
        domain: Domain::Int { min: 1, max: 12 },
    },
    Field {
        key: "width",
        group: MODEL,
        doc: "Width of the hidden layers of a linear network with depth >= 2. Above 1, rounding\n\
              leaves parts of the hidden layers off the rank-one path; they are conserved and\n\
              floor the angle near 1e-33 (measured, depth 2, width 3).",
        domain: Domain::Int { min: 1, max: 200 },
    },
    Field {
        key: "second_layer",
        group: MODEL,
        doc: "two_node: fixed v = (1, -1), or trained (starting from v_k = +-||w_k||, so\n\
              ||w_k||^2 - v_k^2 = 0 is conserved).",
        domain: Domain::Choice(&["fixed", "trained"]),
    },
    Field {
        key: "law",
        group: MODEL,
        doc: "Law of x: gaussian N(0, I), or sphere: uniform on the sphere of radius sqrt(dim)\n\
              (spherically symmetric, not Gaussian). Labels y = sign(w*^T x), w* = e_1.",
        domain: Domain::Choice(&["gaussian", "sphere"]),
    },
    Field {
        key: "loss",
        group: MODEL,
        doc: "logistic log(1 + e^-m) or exponential e^-m of the margin m = y f(x), in\n\
              population (quadrature in the plane of w* and the predictor).",
        domain: Domain::Choice(&["logistic", "exponential"]),
    },
    Field {
        key: "init",
        group: START,
        doc: "balanced: W_j = c q_j q_{j-1}^T (every D_j = 0), the predictor init_scale long at\n\
              init_angle from w*; random: Gaussian entries of standard deviation init_scale.\n\
              A two-node start is random in the plane of w* and e_2 (where its population flow\n\
              stays), whatever init says.",
        domain: Domain::Choice(&["balanced", "random"]),
    },
    Field {
        key: "init_scale",
        group: START,
        doc: "Norm of the balanced start's predictor, or the entries' standard deviation.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "init_angle",
        group: START,
        doc: "Angle (radians) of the balanced start's predictor to w*, in (0, pi).",
        domain: Domain::Real {
            min: 0.0,
            max: std::f64::consts::PI,
            min_open: true,
            max_open: true,
        },
    },
    Field {
        key: "method",
        group: DYNAMICS,
        doc: "flow: gradient flow of the population loss (Dormand-Prince 5(4), rtol/atol); gd:\n\
              gradient descent on it with step eta; online: SGD on fresh batches of `batch`\n\
              points with step eta (time k eta after k steps).",
        domain: Domain::ChoiceList(&["flow", "gd", "online"]),
    },
    Field {
        key: "eta",
        group: DYNAMICS,
        doc: "Step of gd and online.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "batch",
        group: DYNAMICS,
        doc: "Fresh points per online step.",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
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
        doc: "Rows per method: the state at t = 0 and at `outputs` times up to t_end.",
        domain: Domain::Int {
            min: 2,
            max: 100_000,
        },
    },
    Field {
        key: "spacing",
        group: DYNAMICS,
        doc: "Output times evenly spaced, or log-spaced from t_end/1000 (rates over decades).",
        domain: Domain::Choice(&["linear", "log"]),
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
        doc: "Absolute tolerance of the flow integrator. Tiny by default, so the control is\n\
              relative: the components across w* shrink like the angle (to 1e-100 and below)\n\
              and must keep their relative accuracy.",
        domain: Domain::up_to(1e-3),
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed: random starts (`init`) and online batches (`data`) draw from their own\n\
              ChaCha8 streams.",
        domain: Domain::seed(),
    },
];
