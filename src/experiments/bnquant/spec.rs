//! The settings of a bnquant run: the typed spec and its field table.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::exact::{Codes, MAX_CODE, MAX_MAGNITUDE, Rounding};
use crate::contract::Settings;
use crate::input_error;
use crate::spec::{Domain, Field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Random,
    File,
    Blobs,
    Mnist,
    Fashion,
}

impl Source {
    pub fn is_network(self) -> bool {
        matches!(self, Source::Blobs | Source::Mnist | Source::Fashion)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Int8,
    Uint8,
    Int16,
    Int32,
    Range,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Signed,
    Unsigned,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnquantSpec {
    pub source: Source,
    pub channels: usize,
    pub a_min: f64,
    pub a_max: f64,
    pub b_min: f64,
    pub b_max: f64,
    pub negative: f64,
    pub file: PathBuf,
    pub input: Input,
    pub input_lo: i64,
    pub input_hi: i64,
    pub bits: Vec<u32>,
    pub output: Output,
    pub rounding: Rounding,
    pub preshift: u32,
    pub curve_max_n: u32,
    pub train_size: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub calibration: usize,
    pub seed: u64,
}

impl Default for BnquantSpec {
    fn default() -> Self {
        BnquantSpec {
            source: Source::Random,
            channels: 2000,
            a_min: 0.01,
            a_max: 4.0,
            b_min: -64.0,
            b_max: 64.0,
            negative: 0.1,
            file: PathBuf::new(),
            input: Input::Int8,
            input_lo: 0,
            input_hi: 255,
            bits: vec![8, 4],
            output: Output::Signed,
            rounding: Rounding::HalfUp,
            preshift: 8,
            curve_max_n: 24,
            train_size: 0,
            epochs: 2,
            batch: 64,
            lr: 0.05,
            calibration: 1000,
            seed: 0,
        }
    }
}

impl BnquantSpec {
    /// The input codes of layer-level channels (a network's are its accumulators).
    pub fn codes(&self) -> Codes {
        match self.input {
            Input::Int8 => Codes::INT8,
            Input::Uint8 => Codes::UINT8,
            Input::Int16 => Codes::INT16,
            Input::Int32 => Codes::INT32,
            Input::Range => Codes {
                lo: self.input_lo,
                hi: self.input_hi,
            },
        }
    }
}

impl Settings for BnquantSpec {
    const FIELDS: &'static [Field] = FIELDS;

    fn validate(&self) -> Result<()> {
        if self.bits.is_empty() {
            return Err(input_error!(
                "bits is empty: expected one or more output widths"
            ));
        }
        if let Some(k) = self
            .bits
            .iter()
            .find(|k| self.bits.iter().filter(|j| j == k).count() > 1)
        {
            return Err(input_error!(
                "bits lists {k} twice: expected each output width once"
            ));
        }
        if self.input == Input::Range && self.input_lo > self.input_hi {
            return Err(input_error!(
                "input_lo = {} > input_hi = {}: expected a code range with lo <= hi",
                self.input_lo,
                self.input_hi
            ));
        }
        if self.a_min > self.a_max || self.b_min > self.b_max {
            return Err(input_error!(
                "a_min..a_max = {}..{}, b_min..b_max = {}..{}: expected each min <= max",
                self.a_min,
                self.a_max,
                self.b_min,
                self.b_max
            ));
        }
        if self.source == Source::File && self.file.as_os_str().is_empty() {
            return Err(input_error!(
                "source = \"file\" needs file = PATH (a channels CSV)"
            ));
        }
        if self.source.is_network() && self.output == Output::Signed {
            return Err(input_error!(
                "source = {:?}: the network folds its ReLU into the clamp of an unsigned \
                 output; set output = \"unsigned\"",
                self.source
            ));
        }
        // The baselines run on ranges checked code by code; there, tflite_pre must fit int32.
        let p = self.preshift;
        let codes = self.codes();
        let widest = codes.lo.abs().max(codes.hi.abs());
        if !self.source.is_network()
            && codes.count() <= super::analysis::EXHAUSTIVE_MAX
            && p > 0
            && (widest << p) >= 1 << 31
        {
            return Err(input_error!(
                "preshift = {p} with codes up to {widest}: the pre-shifted accumulator leaves \
                 int32; expected preshift <= {}",
                (31 - (64 - widest.leading_zeros()) as i64).max(0)
            ));
        }
        Ok(())
    }
}

const CHANNELS: &str = "channels";
const CODES: &str = "codes";
const NETWORK: &str = "network";
const METHODS: &str = "methods";
const RUN: &str = "run";

pub const FIELDS: &[Field] = &[
    Field {
        key: "source",
        group: CHANNELS,
        doc: "random: `channels` random channels (layer level); file: the channels of a CSV\n\
              (`file`); blobs, mnist, fashion: every batch-norm channel of the small CNN\n\
              trained here on the procedural images (no download; 2,000 test images), MNIST or\n\
              Fashion-MNIST, requantizing its int32 convolution accumulators, and the whole\n\
              network run on integers over the test images.",
        domain: Domain::Choice(&["random", "file", "blobs", "mnist", "fashion"]),
    },
    Field {
        key: "channels",
        group: CHANNELS,
        doc: "Random channels drawn (source = random).",
        domain: Domain::Int {
            min: 1,
            max: 1_000_000,
        },
    },
    Field {
        key: "a_min",
        group: CHANNELS,
        doc: "Smallest |A| of a random channel, for an 8-bit output (|A| is log-uniform in\n\
              [a_min, a_max]; a k-bit output multiplies A and B by 2^(k-8)).",
        domain: Domain::Real {
            min: 1e-12,
            max: MAX_MAGNITUDE / 256.0,
            min_open: false,
            max_open: true,
        },
    },
    Field {
        key: "a_max",
        group: CHANNELS,
        doc: "Largest |A| of a random channel (8-bit output).",
        domain: Domain::Real {
            min: 1e-12,
            max: MAX_MAGNITUDE / 256.0,
            min_open: false,
            max_open: true,
        },
    },
    Field {
        key: "b_min",
        group: CHANNELS,
        doc: "Smallest B of a random channel (uniform in [b_min, b_max]; 8-bit output, before\n\
              the output zero point).",
        domain: Domain::Real {
            min: -1e9,
            max: 1e9,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "b_max",
        group: CHANNELS,
        doc: "Largest B of a random channel.",
        domain: Domain::Real {
            min: -1e9,
            max: 1e9,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "negative",
        group: CHANNELS,
        doc: "Share of random channels with A < 0 (a negative gamma).",
        domain: Domain::Real {
            min: 0.0,
            max: 1.0,
            min_open: false,
            max_open: false,
        },
    },
    Field {
        key: "file",
        group: CHANNELS,
        doc: "The channels CSV of source = file: columns layer, channel and either a, b (the\n\
              folded channel for an 8-bit output, without its zero point) or gamma, beta,\n\
              mean, var, eps, scale_in, zero_in, scale_out (batch norm between the input\n\
              codes and an 8-bit output); other columns are ignored.",
        domain: Domain::Path,
    },
    Field {
        key: "input",
        group: CODES,
        doc: "The input codes x of random and file channels, checked exhaustively: int8\n\
              [-128, 127], uint8 [0, 255], int16 [-32768, 32767], int32 (the whole\n\
              accumulator range, certified from the staircase's runs; baselines not compared),\n\
              or range [input_lo, input_hi].",
        domain: Domain::Choice(&["int8", "uint8", "int16", "int32", "range"]),
    },
    Field {
        key: "input_lo",
        group: CODES,
        doc: "Lowest code of input = range.",
        domain: Domain::Int {
            min: -MAX_CODE,
            max: MAX_CODE,
        },
    },
    Field {
        key: "input_hi",
        group: CODES,
        doc: "Highest code of input = range.",
        domain: Domain::Int {
            min: -MAX_CODE,
            max: MAX_CODE,
        },
    },
    Field {
        key: "bits",
        group: CODES,
        doc: "Output bits k, one pass each (1 to 16).",
        domain: Domain::IntList { min: 1, max: 16 },
    },
    Field {
        key: "output",
        group: CODES,
        doc: "signed: outputs in [-2^(k-1), 2^(k-1) - 1], zero point 0; unsigned: [0, 2^k - 1],\n\
              zero point 2^(k-1) for random and file channels, 0 for a network (its ReLU is\n\
              the clamp at 0).",
        domain: Domain::Choice(&["signed", "unsigned"]),
    },
    Field {
        key: "rounding",
        group: CODES,
        doc: "The rounding of the float reference round(A x + B): half-up (ties toward\n\
              +infinity, floor(v + 1/2)) or half-even. Stated in every output.",
        domain: Domain::Choice(&["half-up", "half-even"]),
    },
    Field {
        key: "preshift",
        group: METHODS,
        doc: "p of the pre-shifted TFLite baseline: acc = x 2^p + round(2^p (B - z_y) / |A|),\n\
              then the multiplier |A| / 2^p (p = 0 is the TFLite baseline itself).",
        domain: Domain::Int { min: 0, max: 30 },
    },
    Field {
        key: "curve_max_n",
        group: METHODS,
        doc: "The mismatch-rate curves run n (naive) and p (pre-shifted TFLite) from 0 to this\n\
              (0: no curves).",
        domain: Domain::Int { min: 0, max: 40 },
    },
    Field {
        key: "train_size",
        group: NETWORK,
        doc: "Training images of the network (the first ones; 0: all; blobs: 0 means 8,000).",
        domain: Domain::Int {
            min: 0,
            max: 1_000_000,
        },
    },
    Field {
        key: "epochs",
        group: NETWORK,
        doc: "Epochs of SGD for the network (batch norm in train mode, f32).",
        domain: Domain::Int { min: 1, max: 100 },
    },
    Field {
        key: "batch",
        group: NETWORK,
        doc: "Mini-batch size of the network's training.",
        domain: Domain::Int { min: 2, max: 4096 },
    },
    Field {
        key: "lr",
        group: NETWORK,
        doc: "SGD step size of the network's training.",
        domain: Domain::up_to(10.0),
    },
    Field {
        key: "calibration",
        group: NETWORK,
        doc: "Training images whose activations set each layer's output scale (the largest\n\
              value after batch norm and ReLU, over 2^k - 1).",
        domain: Domain::Int {
            min: 1,
            max: 100_000,
        },
    },
    Field {
        key: "seed",
        group: RUN,
        doc: "Seed of the random channels, the network's initialization and its batch order.",
        domain: Domain::Int {
            min: 0,
            max: i64::MAX,
        },
    },
];
