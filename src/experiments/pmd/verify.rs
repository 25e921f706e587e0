//! `lab verify pmd`: every claim of section 6 of the notes on small instances, including the
//! claims that compare runs. The tests call the same cases.

use anyhow::Result;
use rayon::prelude::*;

use super::Pmd;
use super::claims::{self, Check, result};
use crate::claims::{ClaimResult, Verdict};
use crate::contract::{Claims, RunData, Verify};
use crate::table::Table;

/// The small Garnet all cases share (Delta ~ 1e-2, so every phenomenon shows within a few
/// hundred iterations).
const BASE: &[&str] = &[
    "states=20",
    "actions=4",
    "branching=3",
    "gamma=0.9",
    "seed=3",
];

/// A run of the default spec with `BASE` and `settings` applied.
pub fn run_case(settings: &[&str]) -> Result<RunData<Pmd>> {
    let overrides: Vec<&str> = BASE.iter().chain(settings).copied().collect();
    crate::contract::run_case(&overrides)
}

/// The single-run claims of a case, as its manifest would list them, labelled with the case.
pub fn single_run(settings: &[&str]) -> Result<Vec<ClaimResult>> {
    let run = run_case(settings)?;
    let case: Vec<&str> = settings
        .iter()
        .copied()
        .filter(|s| {
            !["divergence=", "iterations=", "tsallis_q="]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .collect();
    let mut results = Pmd::check_claims(&run)?;
    for r in &mut results {
        r.on = format!("{}, {}", r.on, case.join(" "));
    }
    Ok(results)
}

/// Hitting iteration K of a Euclidean run, if it reaches the optimum.
fn hitting(settings: &[&str]) -> Result<Option<usize>> {
    Ok(claims::hitting_iteration(&run_case(settings)?.rows))
}

/// K(eta) for Euclidean PMD with constant steps: log-log slope of K against eta.
pub fn hitting_time_slope() -> Result<Check> {
    let etas = [0.25, 0.5, 1.0, 2.0];
    let mut ks = Vec::new();
    for eta in etas {
        let eta_setting = format!("eta={eta}");
        match hitting(&["divergence=euclidean", &eta_setting, "iterations=3000"])? {
            Some(k) => ks.push(k as f64),
            None => {
                return Ok((
                    Verdict::Inconclusive,
                    format!("eta = {eta}: not optimal within 3000 iterations"),
                ));
            }
        }
    }
    let x: Vec<f64> = etas.iter().map(|e: &f64| e.ln()).collect();
    let y: Vec<f64> = ks.iter().map(|k| k.ln()).collect();
    let s = crate::claims::least_squares_slope(&x, &y);
    Ok((
        Verdict::from_bool((-1.25..=-0.75).contains(&s)),
        format!("K = {ks:?} for eta = {etas:?}: log-log slope {s:.3}"),
    ))
}

/// Geometric steps from eta_0 reach the optimum before the constant step eta_0.
pub fn geometric_faster() -> Result<Check> {
    let constant = hitting(&["divergence=euclidean", "eta=0.25", "iterations=3000"])?;
    let geometric = hitting(&[
        "divergence=euclidean",
        "eta=0.25",
        "schedule=geometric",
        "iterations=3000",
    ])?;
    Ok(match (constant, geometric) {
        (Some(c), Some(g)) => (
            Verdict::from_bool(g < c),
            format!("K = {g} (geometric) vs {c} (constant), eta_0 = 0.25"),
        ),
        _ => (
            Verdict::Inconclusive,
            format!("hitting times {constant:?} (constant), {geometric:?} (geometric)"),
        ),
    })
}

/// Largest difference between two runs' columns.
fn max_difference(a: &Table, b: &Table, columns: &[&str]) -> f64 {
    columns
        .iter()
        .flat_map(|c| {
            let (x, y) = (a.num(c).unwrap_or(&[]), b.num(c).unwrap_or(&[]));
            x.iter()
                .zip(y)
                .map(|(p, q)| if p == q { 0.0 } else { (p - q).abs() })
        })
        .fold(0.0, f64::max)
}

/// Tsallis q = 2 with step eta against Euclidean with eta/2.
pub fn tsallis_two_is_euclidean() -> Result<Check> {
    let tsallis = run_case(&[
        "divergence=tsallis",
        "tsallis_q=2",
        "eta=2",
        "iterations=200",
    ])?
    .rows;
    let euclid = run_case(&["divergence=euclidean", "eta=1", "iterations=200"])?.rows;
    let diff = max_difference(
        &tsallis,
        &euclid,
        &["value_gap_inf", "value_gap_rho", "nonopt_mass", "optimal"],
    );
    Ok((
        Verdict::from_bool(diff <= 1e-12),
        format!("max difference of value gaps and masses over 200 iterations: {diff:.1e}"),
    ))
}

/// Largest |gap_PMD(k) - gap_PI(k)| per divergence, against policy iteration from the same
/// start (its value gap stays 0 once it stops).
fn distance_to_pi(settings: &[&str]) -> Result<(Vec<(String, f64)>, usize)> {
    let run = run_case(settings)?;
    let pi = run.summary.pi_trace.unwrap_or_default();
    let distances = run
        .rows
        .groups(&["divergence"])
        .into_iter()
        .map(|(label, part)| {
            let gaps = part.num("value_gap_inf").unwrap_or(&[]);
            let worst = gaps
                .iter()
                .enumerate()
                .map(|(k, gap)| (gap - pi.get(k).copied().unwrap_or(0.0)).abs())
                .fold(0.0, f64::max);
            (label, worst)
        })
        .collect();
    Ok((distances, pi.len().saturating_sub(1)))
}

/// The eta = inf step reproduces policy iteration, for every divergence.
pub fn pi_limit() -> Result<Check> {
    let (distances, pi_iterations) = distance_to_pi(&[
        "divergence=euclidean,kl,tsallis,burg",
        "schedule=pi",
        "iterations=12",
    ])?;
    let worst = distances.iter().map(|d| d.1).fold(0.0, f64::max);
    Ok((
        Verdict::from_bool(worst <= 1e-9 && pi_iterations > 0),
        format!("PI took {pi_iterations} iterations; max |gap_PMD - gap_PI| = {worst:.1e}"),
    ))
}

/// A constant step of 1e12 reproduces PI for Euclidean and Tsallis 1.5, and not for KL.
pub fn huge_constant_step() -> Result<Check> {
    let (distances, _) = distance_to_pi(&[
        "divergence=euclidean,tsallis,kl",
        "eta=1e12",
        "iterations=12",
    ])?;
    let of = |name: &str| {
        distances
            .iter()
            .find(|d| d.0 == format!("divergence={name}"))
            .map_or(f64::NAN, |d| d.1)
    };
    let (euclid, tsallis, kl) = (of("euclidean"), of("tsallis"), of("kl"));
    Ok((
        Verdict::from_bool(euclid <= 1e-9 && tsallis <= 1e-9 && kl > 1e-6),
        format!(
            "max |gap_PMD - gap_PI|: euclidean {euclid:.1e}, tsallis(1.5) {tsallis:.1e}, kl {kl:.1e}"
        ),
    ))
}

impl Verify for Pmd {
    /// Every claim, each case run in parallel (cases are independent, so the verdicts do not
    /// depend on the thread count).
    fn verify() -> Result<Vec<ClaimResult>> {
        type CaseFn = fn() -> Result<Vec<ClaimResult>>;
        let cases: Vec<CaseFn> = vec![
            || single_run(&["divergence=euclidean,kl,tsallis", "eta=5", "iterations=600"]),
            || {
                single_run(&[
                    "divergence=tsallis",
                    "tsallis_q=3",
                    "eta=5",
                    "iterations=600",
                ])
            },
            || {
                single_run(&[
                    "divergence=euclidean,kl",
                    "schedule=geometric",
                    "eta=0.1",
                    "iterations=150",
                ])
            },
            || {
                single_run(&[
                    "divergence=euclidean,kl,tsallis",
                    "schedule=adaptive",
                    "c0=1",
                    "iterations=300",
                ])
            },
            || single_run(&["divergence=euclidean,kl", "schedule=pi", "iterations=10"]),
            || {
                single_run(&[
                    "divergence=burg,tsallis",
                    "tsallis_q=0.5",
                    "eta=5",
                    "iterations=4000",
                ])
            },
            || {
                Ok(vec![result(
                    &claims::HITTING_TIME,
                    "divergence=euclidean",
                    hitting_time_slope()?,
                )])
            },
            || {
                Ok(vec![result(
                    &claims::GEOMETRIC_FASTER,
                    "divergence=euclidean",
                    geometric_faster()?,
                )])
            },
            || {
                Ok(vec![result(
                    &claims::TSALLIS_TWO,
                    "eta=2 vs eta=1",
                    tsallis_two_is_euclidean()?,
                )])
            },
            || {
                Ok(vec![result(
                    &claims::PI_LIMIT,
                    "all divergences",
                    pi_limit()?,
                )])
            },
            || {
                Ok(vec![result(
                    &claims::HUGE_CONSTANT_STEP,
                    "eta=1e12",
                    huge_constant_step()?,
                )])
            },
        ];
        let results: Result<Vec<Vec<ClaimResult>>> = cases.par_iter().map(|case| case()).collect();
        Ok(results?.into_iter().flatten().collect())
    }
}
