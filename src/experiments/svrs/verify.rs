//! `lab verify svrs`: the claims of notes section 8 on small synthetic instances, including
//! the scaling claim that needs a sweep. The tests call the same cases.

use anyhow::Result;
use rayon::prelude::*;

use super::Svrs;
use super::claims::{self, SCALING};
use crate::claims::{ClaimResult, result};
use crate::contract::{Verify, VerifyCase, run_case, verify_cases};

/// Below the crossover: the first instance of the notes' table (delta/mu ~ 7 < sqrt(n) = 10).
pub const BELOW: &[&str] = &[
    "samples=5000",
    "nodes=100",
    "features=20",
    "decay=0.5",
    "lambda=1e-3",
    "method=gd,agd,dane,cgm,acceg,svrp,catalyzed_svrp,svrs,accsvrs",
];

/// Above the crossover: 1000 rows per node keep delta small against L (delta/mu ~ 370 >
/// 2 sqrt(n) = 20); SVRP would need millions of communications, so the budget stops it.
pub const ABOVE: &[&str] = &[
    "samples=100000",
    "nodes=100",
    "features=20",
    "decay=1.5",
    "lambda=1e-5",
    "method=acceg,svrp,svrs,accsvrs",
    "max_comms=600000",
];

/// The sweep of the scaling claim: fixed data with n = 16, lambda moves mu and so delta/mu
/// from about 27 to 175 (all above 4 sqrt(n) = 16, where the delta/mu terms dominate).
pub const SWEEP_BASE: &[&str] = &[
    "samples=32000",
    "nodes=16",
    "features=20",
    "decay=1.5",
    "method=svrs,accsvrs",
];
pub const SWEEP_LAMBDAS: &[&str] = &["1e-3", "5e-4", "2.5e-4", "1.2e-4", "5e-5"];

/// (delta/mu, median communications to tol) points of one method.
pub type CostPoints = Vec<(f64, f64)>;

/// The cost points of SVRS and AccSVRS over the sweep.
pub fn sweep() -> Result<(CostPoints, CostPoints)> {
    // The points run in parallel as a sweep would, each parallel over its own jobs too.
    let runs: Vec<_> = SWEEP_LAMBDAS
        .par_iter()
        .map(|lambda| {
            let setting = format!("lambda={lambda}");
            let settings: Vec<&str> = SWEEP_BASE
                .iter()
                .copied()
                .chain([setting.as_str()])
                .collect();
            run_case::<Svrs>(&settings)
        })
        .collect::<Result<_>>()?;
    let mut svrs = Vec::new();
    let mut accsvrs = Vec::new();
    for run in &runs {
        let ratio = run.summary.delta_over_mu.unwrap_or(f64::NAN);
        let costs = run.summary.cost_to_tol.as_ref();
        let comms = |m: &str| Some(costs?.get(m)?.as_ref()?.comms);
        if let Some(c) = comms("svrs") {
            svrs.push((ratio, c));
        }
        if let Some(c) = comms("accsvrs") {
            accsvrs.push((ratio, c));
        }
    }
    let by_ratio = |a: &(f64, f64), b: &(f64, f64)| a.0.total_cmp(&b.0);
    svrs.sort_by(by_ratio);
    accsvrs.sort_by(by_ratio);
    Ok((svrs, accsvrs))
}

impl Verify for Svrs {
    const CASES: &'static [VerifyCase] = &[("below", BELOW), ("above", ABOVE)];

    /// Below and above the crossover, then the sweep of the scaling claim.
    fn verify() -> Result<Vec<ClaimResult>> {
        let mut results = verify_cases::<Self>()?;
        // Above the crossover SVRP is only the comparator, stopped by the budget on purpose
        // (it would need millions of communications); its linear rate is checked below.
        let svrp = |r: &ClaimResult| r.on.starts_with("above") && r.on.ends_with("method=svrp");
        results.retain(|r| !(r.id == claims::LINEAR.id && svrp(r)));
        let (svrs, accsvrs) = sweep()?;
        results.push(result(
            &SCALING,
            "sweep of lambda, n = 16",
            claims::scaling(&svrs, &accsvrs),
        ));
        Ok(results)
    }
}
