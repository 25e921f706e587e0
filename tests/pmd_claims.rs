//! Each claim of section 6 of the PMD notes as a test on a small instance. The cases are those of
//! `lab verify pmd`; the checks are the functions the manifests use.

use lab::claims::{ClaimResult, Verdict};
use lab::contract::Claims;
use lab::experiments::pmd::verify::{self, run_case, single_run};
use lab::experiments::pmd::{Pmd, claims};

/// The results of `claim` among a case's single-run claims; at least one, all passing.
fn assert_passes(results: &[ClaimResult], claim: &str, expected_series: usize) {
    let matching: Vec<&ClaimResult> = results.iter().filter(|r| r.id == claim).collect();
    assert_eq!(matching.len(), expected_series, "{claim}: {results:#?}");
    for r in matching {
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{claim} on {}: {}",
            r.on,
            r.measured
        );
    }
}

#[test]
fn value_improves_monotonically_for_every_divergence_and_schedule() {
    for settings in [
        &[
            "divergence=euclidean,kl,tsallis,burg",
            "eta=0.5",
            "iterations=100",
        ][..],
        &[
            "divergence=euclidean,kl",
            "schedule=geometric",
            "eta=0.1",
            "iterations=80",
        ],
        &[
            "divergence=euclidean,kl,tsallis",
            "schedule=adaptive",
            "iterations=80",
        ],
    ] {
        let results = single_run(settings).unwrap();
        let series = settings[0].split(',').count();
        assert_passes(&results, "pmd.monotone", series);
    }
}

#[test]
fn xiao_theorem_8_bounds_constant_steps() {
    let results =
        single_run(&["divergence=euclidean,kl,tsallis", "eta=5", "iterations=300"]).unwrap();
    assert_passes(&results, "pmd.xiao_thm8", 3);
}

#[test]
fn xiao_theorem_10_bounds_geometric_steps_and_the_pi_limit() {
    let results = single_run(&[
        "divergence=euclidean,kl",
        "schedule=geometric",
        "eta=0.1",
        "iterations=150",
    ])
    .unwrap();
    assert_passes(&results, "pmd.xiao_thm10", 2);
    let results = single_run(&["divergence=euclidean,kl", "schedule=pi", "iterations=10"]).unwrap();
    assert_passes(&results, "pmd.xiao_thm10", 2);
}

#[test]
fn adaptive_steps_converge_at_the_gamma_rate_of_johnson_et_al() {
    let results = single_run(&[
        "divergence=euclidean,kl,tsallis",
        "schedule=adaptive",
        "c0=1",
        "iterations=300",
    ])
    .unwrap();
    assert_passes(&results, "pmd.johnson_rate", 3);
    // The bound is tight at the start and the error then follows gamma^k: the value gap after
    // 100 steps is within the bound and far below the initial gap.
    let rows = run_case(&["divergence=kl", "schedule=adaptive", "iterations=100"])
        .unwrap()
        .rows;
    let gaps = rows.num("value_gap_inf").unwrap();
    assert!(
        gaps[100] < 0.9f64.powi(100) * gaps[0] * 10.0,
        "{} vs {}",
        gaps[100],
        gaps[0]
    );
}

#[test]
fn euclidean_and_tsallis_above_one_reach_an_exactly_optimal_policy() {
    let results = single_run(&["divergence=euclidean,tsallis", "eta=5", "iterations=600"]).unwrap();
    assert_passes(&results, "pmd.finite_step", 2);
    let results = single_run(&[
        "divergence=tsallis",
        "tsallis_q=3",
        "eta=5",
        "iterations=600",
    ])
    .unwrap();
    assert_passes(&results, "pmd.finite_step", 1);
    let results = single_run(&[
        "divergence=euclidean",
        "schedule=geometric",
        "eta=0.1",
        "iterations=150",
    ])
    .unwrap();
    assert_passes(&results, "pmd.finite_step", 1);
}

#[test]
fn barrier_divergences_never_reach_the_face() {
    let results = single_run(&[
        "divergence=kl,burg,tsallis",
        "tsallis_q=0.5",
        "eta=5",
        "iterations=600",
    ])
    .unwrap();
    assert_passes(&results, "pmd.never_exact", 3);
    // In probability space KL's mass underflows to 0 under geometric steps; in log domain it
    // stays finite, which is what the claim reads.
    let rows = run_case(&[
        "divergence=kl",
        "schedule=geometric",
        "eta=0.1",
        "iterations=150",
    ])
    .unwrap()
    .rows;
    assert_eq!(*rows.num("nonopt_mass").unwrap().last().unwrap(), 0.0);
    assert!(
        rows.num("log_nonopt_mass")
            .unwrap()
            .iter()
            .all(|l| l.is_finite())
    );
}

#[test]
fn kl_tail_ratio_is_exp_minus_eta_delta() {
    let results = single_run(&["divergence=kl", "eta=5", "iterations=600"]).unwrap();
    assert_passes(&results, "pmd.kl_tail_ratio", 1);
}

#[test]
fn kl_with_geometric_steps_is_superlinear() {
    let results = single_run(&[
        "divergence=kl",
        "schedule=geometric",
        "eta=0.1",
        "iterations=150",
    ])
    .unwrap();
    assert_passes(&results, "pmd.kl_superlinear", 1);
}

#[test]
fn burg_and_tsallis_half_decay_polynomially() {
    let results = single_run(&[
        "divergence=burg,tsallis",
        "tsallis_q=0.5",
        "eta=5",
        "iterations=4000",
    ])
    .unwrap();
    assert_passes(&results, "pmd.polynomial_decay", 2);
}

#[test]
fn hitting_time_shrinks_like_one_over_eta() {
    let (verdict, measured) = verify::hitting_time_slope().unwrap();
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn geometric_steps_hit_the_optimum_sooner() {
    let (verdict, measured) = verify::geometric_faster().unwrap();
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn tsallis_two_is_euclidean_with_half_the_step() {
    let (verdict, measured) = verify::tsallis_two_is_euclidean().unwrap();
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn the_infinite_step_is_policy_iteration() {
    let (verdict, measured) = verify::pi_limit().unwrap();
    assert_eq!(verdict, Verdict::Pass, "{measured}");
    let (verdict, measured) = verify::huge_constant_step().unwrap();
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn the_chain_gap_is_recovered_and_kl_follows_it() {
    // The chain's Delta is chain_gap by construction: an oracle for the gap computation and
    // for the KL tail ratio exp(-eta Delta).
    let run = run_case(&[
        "mdp=chain",
        "states=15",
        "actions=3",
        "chain_gap=0.004",
        "divergence=kl",
        "eta=10",
        "iterations=800",
    ])
    .unwrap();
    let delta = run.summary.gap_delta.unwrap();
    assert!((delta - 0.004).abs() < 1e-12, "{delta}");
    let (verdict, measured) = claims::kl_tail_ratio(&run.rows, 10.0, 0.004);
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

/// A gap so small (Delta = 1e-7) that 300 KL steps never reach the tail: the tail ratio is
/// undecided (INCONCLUSIVE, saying why), not a failure of the claim.
#[test]
fn a_run_that_never_reaches_the_tail_is_inconclusive() {
    let run = run_case(&[
        "mdp=chain",
        "states=15",
        "actions=3",
        "chain_gap=1e-7",
        "divergence=kl",
        "eta=10",
        "iterations=300",
    ])
    .unwrap();
    let results = Pmd::check_claims(&run).unwrap();
    let tail = results
        .iter()
        .find(|r| r.id == "pmd.kl_tail_ratio")
        .unwrap();
    assert_eq!(tail.verdict, Verdict::Inconclusive, "{}", tail.measured);
    assert!(
        tail.measured.contains("not in the tail"),
        "{}",
        tail.measured
    );
}

#[test]
fn verify_reports_every_claim_and_passes() {
    let results = lab::experiments::find("pmd").unwrap().verify().unwrap();
    for doc in Pmd::CLAIMS {
        assert!(
            results.iter().any(|r| r.id == doc.id),
            "{} not checked by verify",
            doc.id
        );
    }
    for r in &results {
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{} on {}: {}",
            r.id,
            r.on,
            r.measured
        );
    }
}
