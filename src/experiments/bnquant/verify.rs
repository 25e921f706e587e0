//! `lab verify bnquant`: the claims on small instances. The tests call the same cases.

use super::BnquantExperiment;
use crate::contract::{Deviation, Finding, Verify, VerifyCase};

/// Random channels on int8 and uint8 codes, 8 and 4 output bits, both rounding rules; and
/// int16 codes; the small CNN on the procedural images, 8- and 4-bit activations.
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
    (
        NETWORK,
        &[
            "source=blobs",
            "output=unsigned",
            "train_size=2000",
            "epochs=1",
            "curve_max_n=0",
        ],
    ),
];

/// The recorded finding (docs/bnquant.md): on a network's int32 accumulators (ranges of
/// 2^15 to 2^20 codes, |A| about 1e-3) the minimal n exceeds log2 of the range by a median 5
/// to 10 bits, not "a few": the shift grows with the range and with 1 / |A| as well.
pub const DEVIATIONS: &[Deviation] = &[(NETWORK, "bnquant.small_shift", WIDE)];

const NETWORK: &str = "network on blobs";
const WIDE: &str = "accumulator ranges need more than log2(range) + 6 bits (docs/bnquant.md)";

/// The same finding on every network spec file.
pub const FINDINGS: &[Finding] = &[
    ("bnquant-mnist", "bnquant.small_shift", WIDE),
    ("bnquant-fashion", "bnquant.small_shift", WIDE),
];

impl Verify for BnquantExperiment {
    const CASES: &'static [VerifyCase] = CASES;
    const DEVIATIONS: &'static [Deviation] = DEVIATIONS;
    const FINDINGS: &'static [Finding] = FINDINGS;
}
