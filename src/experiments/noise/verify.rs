//! `lab verify noise`: the claims of notes (d) on small instances. The tests call the same
//! cases.

use anyhow::Result;

use super::NoiseExperiment;
use crate::claims::ClaimResult;
use crate::experiments::{Case, case_claims};

/// The cases: the default teacher (k = p = 6, its spurious point a minimum) with every method
/// and the paper's schedule, then with 5x longer epochs and a 3x larger step (where the
/// perturbed methods escape), and two small teachers whose spurious points are saddles.
pub const CASES: &[(&str, &[&str])] = &[
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

pub fn run_case(settings: &[&str]) -> Result<Case> {
    crate::experiments::run_case(&NoiseExperiment, settings)
}

pub fn verify() -> Result<Vec<ClaimResult>> {
    let mut out = Vec::new();
    for (label, settings) in CASES {
        out.extend(case_claims(&NoiseExperiment, label, settings)?);
    }
    Ok(out)
}
