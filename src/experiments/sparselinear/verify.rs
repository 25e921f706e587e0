//! `lab verify sparselinear`: each claim on a small instance. The tests call the same cases.

use super::SparseLinearExperiment;
use crate::contract::{Verify, VerifyCase};

pub const CASES: &[VerifyCase] = &[
    (
        "scalar output, random mask, correlated",
        &[
            "widths=6,3,1",
            "mask=random",
            "correlation=0.7",
            "starts=100",
        ],
    ),
    ("disjoint first layer, whitened", &["starts=100"]),
    (
        "interleaved first layer, correlated, 3 outputs",
        &[
            "mask=custom",
            "first_mask=1,0,1,0,0,1,0,1",
            "correlation=0.6",
            "starts=100",
            "seed=8",
        ],
    ),
];

impl Verify for SparseLinearExperiment {
    const CASES: &'static [VerifyCase] = CASES;
}
