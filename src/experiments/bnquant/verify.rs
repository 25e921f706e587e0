//! `lab verify bnquant`: the claims on small instances (layer level; the network runs are
//! spec files). The tests call the same cases.

use super::BnquantExperiment;
use crate::contract::{Deviation, Finding, Verify, VerifyCase};

/// Random channels on int8 and uint8 codes, 8 and 4 output bits, both rounding rules; and
/// int16 codes.
pub const CASES: &[VerifyCase] = &[
    ("int8 half-up", &["channels=300", "curve_max_n=0"]),
    (
        "uint8 unsigned half-even",
        &[
            "channels=300",
            "input=uint8",
            "output=unsigned",
            "rounding=half-even",
            "curve_max_n=0",
        ],
    ),
    (
        "int16",
        &["channels=20", "input=int16", "bits=8", "curve_max_n=0"],
    ),
];

pub const DEVIATIONS: &[Deviation] = &[];

pub const FINDINGS: &[Finding] = &[];

impl Verify for BnquantExperiment {
    const CASES: &'static [VerifyCase] = CASES;
    const DEVIATIONS: &'static [Deviation] = DEVIATIONS;
    const FINDINGS: &'static [Finding] = FINDINGS;
}
