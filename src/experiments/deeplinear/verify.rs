//! `lab verify deeplinear`: the claims of notes (a) on small instances, including the
//! plateau scaling that needs a sweep of sigma_0. The tests call the same cases.

use anyhow::Result;

use super::DeepLinearExperiment;
use super::claims::{self, PLATEAU};
use crate::claims::{ClaimResult, result};
use crate::contract::{Verify, VerifyCase, run_case, verify_cases};

/// The cases: (label, settings). Each exercises the claims its start predicts.
pub const CASES: &[VerifyCase] = &[
    ("N=3 balanced", &[]),
    (
        "N=2 scalar chain",
        &["widths=1,1,1", "spectrum=2", "init_scale=0.01", "t_end=6"],
    ),
    // The invariant set is unstable: rounding errors grow like exp(1.26 t) near the second
    // saddle and would carry the run to the global minimum after t ~ 30.
    ("invariant set", &["init=invariant", "t_end=15"]),
    (
        "N=3 scalar, wrong sign",
        &[
            "widths=1,1,1,1",
            "spectrum=2",
            "init_sign=negative",
            "init_scale=0.1",
            "t_end=10000",
            "outputs=200",
        ],
    ),
    (
        "N=3 scalar, unbalanced",
        &[
            "widths=1,1,1,1",
            "spectrum=2",
            "init=custom",
            "init_weights=0.5,0.6,-0.45",
        ],
    ),
];

/// sigma_0 of the plateau sweep (N = 3 scalar chain, z = 1).
pub const PLATEAU_SCALES: &[&str] = &["1e-3", "1e-4", "1e-5", "1e-6"];

/// (sigma_0, escape time) over the plateau sweep.
pub fn plateau_points() -> Result<Vec<(f64, f64)>> {
    let mut points = Vec::new();
    for scale in PLATEAU_SCALES {
        let setting = format!("init_scale={scale}");
        let settings = [
            "widths=1,1,1,1",
            "spectrum=1",
            "t_end=150",
            "outputs=15000",
            setting.as_str(),
        ];
        let summary = run_case::<DeepLinearExperiment>(&settings)?.summary;
        let escape = summary.escape_time.and_then(|e| e.get("flow").copied());
        if let Some(Some(t)) = escape {
            points.push((scale.parse::<f64>()?, t));
        }
    }
    Ok(points)
}

impl Verify for DeepLinearExperiment {
    const CASES: &'static [VerifyCase] = CASES;

    /// Each start's claims, then the plateau sweep.
    fn verify() -> Result<Vec<ClaimResult>> {
        let mut results = verify_cases::<Self>()?;
        results.push(result(
            &PLATEAU,
            "N=3 scalar chain, sigma_0 = 1e-3..1e-6",
            claims::plateau(&plateau_points()?, 3.0),
        ));
        Ok(results)
    }
}
