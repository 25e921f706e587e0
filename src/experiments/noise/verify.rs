//! `lab verify noise`: the claims of notes (d) on small instances. The tests call the same
//! cases.

use super::NoiseExperiment;
use crate::contract::{Deviation, Verify, VerifyCase};

/// The cases: the default teacher (k = p = 6, its spurious point a minimum) with every method
/// and the paper's schedule, then with 5x longer epochs and a 3x larger step (where the
/// perturbed methods escape), and two small teachers whose spurious points are saddles.
pub const CASES: &[VerifyCase] = &[
    ("k=6, every method", &[]),
    (
        "k=6, longer schedule",
        &["method=wn_gd,pgd,psgd", "iterations=2000", "lr=0.3"],
    ),
    ("k=2, saddle", &["k=2", "p=2", "method=wn_gd", "starts=50"]),
    (
        "k=3, saddle",
        &["k=3", "p=3", "method=wn_gd", "starts=50", "seed=3"],
    ),
];

/// The recorded finding on the default teacher: under the paper's schedule as we read it
/// the perturbed methods reach the global minimum in about 71% of starts, not 95%
/// (docs/noise.md); the longer schedule of the second case reaches it.
pub const DEVIATIONS: &[Deviation] = &[(
    "k=6, every method",
    "noise.noise_escapes",
    "the paper's schedule as we read it reaches ~71%, not 95%; the longer schedule below does \
     (docs/noise.md)",
)];

impl Verify for NoiseExperiment {
    const CASES: &'static [VerifyCase] = CASES;
    const DEVIATIONS: &'static [Deviation] = DEVIATIONS;
}
