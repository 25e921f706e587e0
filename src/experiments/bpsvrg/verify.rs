//! `lab verify bpsvrg`: the claims on small instances. The tests call the same cases.

use super::BpsvrgExperiment;
use crate::contract::{Deviation, Verify, VerifyCase};

/// The cases: softmax regression (convex: the direction variances are exact there) and the
/// default MLP, both on the procedural images, 5 seeds.
pub const CASES: &[VerifyCase] = &[
    (
        "softmax regression",
        &[
            "model=softmax",
            "epochs=4",
            "landscape_points=0",
            "train_size=1000",
            "test_size=500",
        ],
    ),
    (
        "mlp",
        &[
            "epochs=4",
            "landscape_points=0",
            "train_size=1000",
            "test_size=500",
        ],
    ),
];

pub const DEVIATIONS: &[Deviation] = &[];

impl Verify for BpsvrgExperiment {
    const CASES: &'static [VerifyCase] = CASES;
    const DEVIATIONS: &'static [Deviation] = DEVIATIONS;
}
