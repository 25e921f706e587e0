//! The settings of a bpsvrg run: the typed spec and its field table.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetName {
    Blobs,
    Mnist,
    Fashion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    Softmax,
    Mlp,
    Cnn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Sgd,
    Svrg,
    Bsvrg,
    Bpsvrg,
    Csvrg,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Sgd => "sgd",
            Method::Svrg => "svrg",
            Method::Bsvrg => "bsvrg",
            Method::Bpsvrg => "bpsvrg",
            Method::Csvrg => "csvrg",
        }
    }

    /// The coefficient c of v = g_S(w) + c (g_S(w~) - mu~): none for SGD.
    pub fn coefficient(self, c: f64) -> Option<f64> {
        match self {
            Method::Sgd => None,
            Method::Svrg | Method::Bsvrg => Some(-1.0),
            Method::Bpsvrg => Some(1.0),
            Method::Csvrg => Some(c),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    Step,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BpsvrgSpec {
    pub dataset: DatasetName,
    pub train_size: usize,
    pub test_size: usize,
    pub model: ModelName,
    pub hidden: usize,
    pub method: Vec<Method>,
    pub c: f64,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub lr_schedule: Schedule,
    pub snapshot_epochs: usize,
    pub weight_decay: f64,
    pub seeds: usize,
    pub metric_samples: usize,
    pub landscape_points: usize,
    pub landscape_radius: f64,
    pub landscape_samples: usize,
    pub seed: u64,
}

impl Default for BpsvrgSpec {
    fn default() -> Self {
        BpsvrgSpec {
            dataset: DatasetName::Blobs,
            train_size: 2000,
            test_size: 1000,
            model: ModelName::Mlp,
            hidden: 64,
            method: vec![Method::Sgd, Method::Svrg, Method::Bsvrg, Method::Bpsvrg],
            c: 0.5,
            epochs: 8,
            batch: 32,
            lr: 0.05,
            lr_schedule: Schedule::Constant,
            snapshot_epochs: 1,
            weight_decay: 0.0,
            seeds: 5,
            metric_samples: 0,
            landscape_points: 15,
            landscape_radius: 1.0,
            landscape_samples: 500,
            seed: 0,
        }
    }
}

impl Settings for BpsvrgSpec {
    const FIELDS: &'static [Field] = FIELDS;

    fn validate(&self) -> Result<()> {
        if self.method.contains(&Method::Svrg) && self.model == ModelName::Cnn {
            // Batch norm with one sample per step normalizes each image by its own statistics.
            return Err(input_error!(
                "method svrg (one sample per step) with model cnn: batch norm over a batch of one \
                 is degenerate; use bsvrg, or model mlp or softmax"
            ));
        }
        let per_epoch: u64 = match self.model {
            ModelName::Softmax => 8,
            ModelName::Mlp => 2 * self.hidden as u64,
            ModelName::Cnn => 600,
        };
        let work = per_epoch * self.epochs as u64 * self.seeds as u64 * self.method.len() as u64;
        if work > 200_000_000 {
            return Err(input_error!(
                "epochs x seeds x methods x model size = {work}: expected at most 2e8 (e.g. \
                 fewer epochs or seeds); lab keeps a run to minutes"
            ));
        }
        Ok(())
    }
}

const DATA: &str = "data";
const MODEL: &str = "model";
const TRAINING: &str = "training";
const METRICS: &str = "metrics";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "dataset",
        group: DATA,
        doc: "blobs: procedural 28x28 images of 10 classes (Gaussian bumps from a shared pool,\n\
              shifted, dimmed, noisy; the same for every seed), no download; mnist: MNIST's\n\
              10,000-image test set from $LAB_DATA/mnist, split 8,000 train / 2,000 test (every\n\
              fifth image is a test image); fashion: Fashion-MNIST, 60,000 / 10,000, from Debian's\n\
              dataset-fashion-mnist or $LAB_DATA/fashion-mnist.",
        domain: Domain::Choice(&["blobs", "mnist", "fashion"]),
    },
    Field {
        key: "train_size",
        group: DATA,
        doc: "Training images used: the first train_size of the training set (0: all; blobs\n\
              draws exactly this many, 0 meaning 10,000).",
        domain: Domain::Int {
            min: 0,
            max: 1_000_000,
        },
    },
    Field {
        key: "test_size",
        group: DATA,
        doc: "Test images used: the first test_size of the test set (0: all; blobs: 0 means 2,000).",
        domain: Domain::Int {
            min: 0,
            max: 1_000_000,
        },
    },
    Field {
        key: "model",
        group: MODEL,
        doc: "softmax: softmax regression (convex); mlp: 784-hidden-10 with ReLU; cnn: conv 3x3\n\
              (8 maps) - batch norm - ReLU - conv 3x3 stride 2 (16 maps) - batch norm - ReLU -\n\
              max pool 2 - dense to 10. He initialization, f32 parameters.",
        domain: Domain::Choice(&["softmax", "mlp", "cnn"]),
    },
    Field {
        key: "hidden",
        group: MODEL,
        doc: "Hidden units of the MLP.",
        domain: Domain::Int { min: 1, max: 4096 },
    },
    Field {
        key: "method",
        group: TRAINING,
        doc: "sgd: w -= lr g_S(w); svrg: Johnson & Zhang, one sample per step, v = g_i(w) -\n\
              g_i(w~) + mu~; bsvrg: mini-batch SVRG, v = g_S(w) - g_S(w~) + mu~ (the same S at both\n\
              points); bpsvrg: the sign switch, v = g_S(w) + g_S(w~) - mu~ (reconstructed: the\n\
              paper's body could not be read); csvrg: v = g_S(w) + c (g_S(w~) - mu~). w~ is the\n\
              snapshot, mu~ the full gradient there (in chunks of `batch`, batch norm in train mode).",
        domain: Domain::ChoiceList(&["sgd", "svrg", "bsvrg", "bpsvrg", "csvrg"]),
    },
    Field {
        key: "c",
        group: TRAINING,
        doc: "The coefficient of csvrg (-1 is bsvrg, 0 sgd, +1 bpsvrg).",
        domain: Domain::Real {
            min: -10.0,
            max: 10.0,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "epochs",
        group: TRAINING,
        doc: "Passes over the training set (a pass is train_size / batch steps).",
        domain: Domain::Int {
            min: 1,
            max: 10_000,
        },
    },
    Field {
        key: "batch",
        group: TRAINING,
        doc: "Mini-batch size of sgd, bsvrg, bpsvrg and csvrg (svrg uses 1).",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "lr",
        group: TRAINING,
        doc: "Step size.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "lr_schedule",
        group: TRAINING,
        doc: "constant; or step: x0.1 after 50% and again after 75% of the epochs.",
        domain: Domain::Choice(&["constant", "step"]),
    },
    Field {
        key: "snapshot_epochs",
        group: TRAINING,
        doc: "Epochs between snapshots w~ (and full gradients mu~) of the SVRG-type methods.",
        domain: Domain::Int {
            min: 1,
            max: 10_000,
        },
    },
    Field {
        key: "weight_decay",
        group: TRAINING,
        doc: "L2 coefficient lambda: every step adds lambda w to the direction (not to the\n\
              metrics, which are of the data loss).",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "seeds",
        group: TRAINING,
        doc: "Seeds per method (streams `init/S` and `order/S`, shared by the methods, so the\n\
              methods of one seed start from the same weights and see the same batches).",
        domain: Domain::Int { min: 1, max: 1000 },
    },
    Field {
        key: "metric_samples",
        group: METRICS,
        doc: "Images of each set the per-epoch metrics use (the first ones; 0: all). The\n\
              gradient metrics are per-sample gradients in eval mode (batch norm with running\n\
              statistics: in train mode samples are coupled and have no per-sample gradient).",
        domain: Domain::Int {
            min: 0,
            max: 1_000_000,
        },
    },
    Field {
        key: "landscape_points",
        group: METRICS,
        doc: "Points per axis of the loss landscape around the first seed's final weights (1-D\n\
              slice and 2-D grid along filter-normalized random directions, Li et al. 2018; the\n\
              same directions for every method); 0: none.",
        domain: Domain::Int { min: 0, max: 101 },
    },
    Field {
        key: "landscape_radius",
        group: METRICS,
        doc: "The slices run from -radius to +radius times the filter-normalized directions.",
        domain: Domain::positive_real(),
    },
    Field {
        key: "landscape_samples",
        group: METRICS,
        doc: "Training and test images the landscape losses average over (the first ones).",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Root seed of the streams `init/S`, `order/S` and `landscape`.",
        domain: Domain::seed(),
    },
];
