//! `lab verify directional`: the claims of notes (b) on small instances, each a few seconds.
//! The tests call the same cases.

use super::DirectionalExperiment;
use crate::contract::{Verify, VerifyCase};

/// The cases: (label, settings). Each instance is long enough for its rates to settle: the
/// angle underflows after t ~ 1700 at depth 2 and t ~ 400 at depth 3.
pub const CASES: &[VerifyCase] = &[
    ("linear, gaussian logistic", &[]),
    ("linear, sphere d=3", &["law=sphere", "dim=3"]),
    ("linear, gaussian exponential", &["loss=exponential"]),
    ("depth 2", &["depth=2", "t_end=1000"]),
    (
        "depth 3, sphere d=5",
        &["depth=3", "t_end=300", "law=sphere"],
    ),
    (
        "two-node, fixed v",
        &[
            "model=two_node",
            "t_end=100",
            "spacing=linear",
            "outputs=100",
        ],
    ),
    (
        "two-node, trained v",
        &[
            "model=two_node",
            "second_layer=trained",
            "t_end=100",
            "spacing=linear",
            "outputs=100",
        ],
    ),
];

impl Verify for DirectionalExperiment {
    const CASES: &'static [VerifyCase] = CASES;
}
