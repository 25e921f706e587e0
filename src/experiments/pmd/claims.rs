//! The PMD claims of section 6 of the notes, as functions of a run's rows.
//!
//! Single-run claims are checked for every run (and written to its manifest); the claims that
//! compare runs (hitting time against eta, Tsallis 2 against Euclidean, a huge step against
//! policy iteration) are checked by `lab verify pmd` in `verify.rs`.

use anyhow::{Context, Result};

use super::Pmd;
use super::mirror::Divergence;
use super::spec::Schedule;
pub use crate::claims::{Check, result};
use crate::claims::{ClaimDoc, ClaimResult, Provenance, Verdict, least_squares_slope};
use crate::contract::{Claims, RunData};
use crate::table::Table;

pub const MONOTONE: ClaimDoc = ClaimDoc {
    id: "pmd.monotone",
    statement: "V^{pi_{k+1}}(s) >= V^{pi_k}(s) for every state s and step k, any divergence and step size",
    provenance: Provenance::Verified("Xiao 2022, Lemma 7"),
};
pub const XIAO_THM8: ClaimDoc = ClaimDoc {
    id: "pmd.xiao_thm8",
    statement: "constant eta: delta_k <= (D*_0/((1-gamma) eta) + R/(1-gamma)^2) / k for k >= 1",
    provenance: Provenance::Reconstructed(
        "Xiao 2022 Thm 8: prose and conditions verified, the formula reconstructed in the notes; \
         R (reward range) generalizes Xiao's rewards in [0, 1] by our rescaling argument",
    ),
};
pub const XIAO_THM10: ClaimDoc = ClaimDoc {
    id: "pmd.xiao_thm10",
    statement: "geometric eta_k = eta_0/gamma^k (or eta = inf): \
                delta_k <= (1 - 1/theta_rho)^k (delta_0 + D*_0/((theta_rho - 1) eta_0))",
    provenance: Provenance::Reconstructed(
        "Xiao 2022 Thm 10 and section 4.4: conditions verified, the form reconstructed in the notes",
    ),
};
pub const JOHNSON: ClaimDoc = ClaimDoc {
    id: "pmd.johnson_rate",
    statement: "adaptive eta_k: ||V* - V^{pi_k}||_inf <= gamma^k (||V* - V^{pi_0}||_inf \
                + c0 gamma (1 - gamma^k)/(1-gamma)^2)",
    provenance: Provenance::Verified(
        "Johnson, Pike-Burke & Rebeschini 2023, as restated by Protopapas & Barakat 2024 Thm 4.1 (h = 1)",
    ),
};
pub const FINITE_STEP: ClaimDoc = ClaimDoc {
    id: "pmd.finite_step",
    statement: "Euclidean (and Tsallis q > 1) PMD reaches an exactly optimal policy (zero mass off \
                A*_s) after finitely many steps and stays there",
    provenance: Provenance::Verified(
        "Lin & Zhang abstract (Euclidean); Liu et al. 2025 (PQA, any constant step). \
         The Tsallis q > 1 case and the mechanism are reconstructed (notes section 5)",
    ),
};
pub const NEVER_EXACT: ClaimDoc = ClaimDoc {
    id: "pmd.never_exact",
    statement: "KL, Burg and Tsallis q < 1 PMD never reach the optimal face: the non-optimal mass \
                stays > 0 (measured in log domain)",
    provenance: Provenance::Reconstructed(
        "KL iterates stay interior: Xiao 2022 section 4.1 (verified); Burg and Tsallis q < 1 by \
         the same barrier argument (notes section 5, reconstructed)",
    ),
};
pub const KL_TAIL: ClaimDoc = ClaimDoc {
    id: "pmd.kl_tail_ratio",
    statement: "KL with constant eta: the non-optimal mass shrinks by exp(-eta Delta) per step \
                asymptotically",
    provenance: Provenance::Reconstructed("notes section 5 item 4 (ratio argument)"),
};
pub const KL_SUPERLINEAR: ClaimDoc = ClaimDoc {
    id: "pmd.kl_superlinear",
    statement: "KL with geometric eta_k = eta_0/gamma^k: -log m_k grows like gamma^{-k} \
                (superlinear convergence of the policy)",
    provenance: Provenance::Reconstructed(
        "notes section 5 item 4; Li et al. (HPMD) prove superlinear convergence for their variant",
    ),
};
pub const POLYNOMIAL: ClaimDoc = ClaimDoc {
    id: "pmd.polynomial_decay",
    statement: "Burg and Tsallis q < 1 with constant eta: the non-optimal mass decays like \
                k^{-1/(1-q)} (Burg: slope -1, Tsallis 1/2: slope -2 on log-log axes)",
    provenance: Provenance::Reconstructed("notes section 5 item 4"),
};
pub const HITTING_TIME: ClaimDoc = ClaimDoc {
    id: "pmd.hitting_time_inverse_eta",
    statement: "Euclidean, constant eta: the first iteration K with an exactly optimal policy \
                shrinks like 1/eta (log-log slope of K against eta near -1)",
    provenance: Provenance::Reconstructed(
        "notes section 5 item 3 heuristic K - K_0 = O(1/(eta Delta))",
    ),
};
pub const GEOMETRIC_FASTER: ClaimDoc = ClaimDoc {
    id: "pmd.geometric_faster",
    statement: "Euclidean: geometric steps eta_0/gamma^k reach the optimal policy sooner than the \
                constant step eta_0",
    provenance: Provenance::Reconstructed("notes section 6 item 5"),
};
pub const TSALLIS_TWO: ClaimDoc = ClaimDoc {
    id: "pmd.tsallis2_is_euclidean",
    statement: "Tsallis q = 2 with step eta produces the iterates of Euclidean PMD with step eta/2",
    provenance: Provenance::Reconstructed("notes section 2 (D_2(p, q) = ||p - q||^2)"),
};
pub const PI_LIMIT: ClaimDoc = ClaimDoc {
    id: "pmd.pi_limit",
    statement: "the eta -> inf limit of the PMD step (schedule = pi) reproduces the iterates of \
                policy iteration, for every divergence",
    provenance: Provenance::Verified(
        "Xiao 2022 section 4.4; Protopapas & Barakat 2024 section 3.1",
    ),
};
pub const HUGE_CONSTANT_STEP: ClaimDoc = ClaimDoc {
    id: "pmd.huge_constant_step",
    statement: "a huge constant step (eta = 1e12) reproduces policy iteration when phi' is bounded \
                on [0, 1] (Euclidean, Tsallis q > 1), but not for KL, whose iterate is the greedy \
                policy of the sum of all past Q-values",
    provenance: Provenance::Reconstructed(
        "our observation from the KKT form: log pi_k = log pi_0 + sum_t eta Q_t - const for KL",
    ),
};

fn column<'a>(rows: &'a Table, name: &str) -> &'a [f64] {
    rows.num(name).unwrap_or(&[])
}

/// Monotone improvement: every min_s (V_{k+1} - V_k)(s) >= -tol.
pub fn monotone(rows: &Table, tol: f64) -> Check {
    let worst = column(rows, "min_improvement")
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f64::INFINITY, f64::min);
    (
        Verdict::from_bool(worst >= -tol),
        format!("min_k min_s (V_k+1 - V_k)(s) = {worst:.3e} (tolerance -{tol:.0e})"),
    )
}

/// `metric <= bound` wherever the bound is defined; `None` if it is defined nowhere.
pub fn bound_holds(rows: &Table, metric: &str, bound: &str) -> Option<Check> {
    let values = column(rows, metric);
    let bounds = column(rows, bound);
    let iters = column(rows, "iter");
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    let mut ok = true;
    for ((&v, &b), &k) in values.iter().zip(bounds).zip(iters) {
        if b.is_nan() {
            continue;
        }
        checked += 1;
        ok &= v <= b * (1.0 + 1e-9) + 1e-12;
        // At k = 0 the bounds hold with equality by construction; the ratio says more after.
        if b > 0.0 && k >= 1.0 {
            worst = worst.max(v / b);
        }
    }
    (checked > 0).then(|| {
        (
            Verdict::from_bool(ok),
            format!("max over k >= 1 of {metric}/bound = {worst:.3} ({checked} rows)"),
        )
    })
}

/// Row index from which every row is exactly optimal, if the run ends optimal.
fn optimal_tail_start(rows: &Table) -> Option<usize> {
    let optimal = column(rows, "optimal");
    if optimal.last() != Some(&1.0) {
        return None;
    }
    Some(optimal.iter().rposition(|&o| o != 1.0).map_or(0, |i| i + 1))
}

/// The first iteration from which every row is exactly optimal, if the run ends optimal.
pub fn hitting_iteration(rows: &Table) -> Option<usize> {
    optimal_tail_start(rows).map(|i| column(rows, "iter")[i] as usize)
}

/// Finite-step convergence: optimal from some K on, with zero value gap there.
pub fn finite_step(rows: &Table, value_tol: f64) -> Check {
    let optimal = column(rows, "optimal");
    match optimal_tail_start(rows) {
        Some(start) => {
            let worst = column(rows, "value_gap_inf")[start..]
                .iter()
                .copied()
                .fold(0.0, f64::max);
            (
                Verdict::from_bool(worst <= value_tol),
                format!(
                    "exactly optimal from K = {} on; max value gap there {worst:.1e}",
                    column(rows, "iter")[start]
                ),
            )
        }
        None if optimal.contains(&1.0) => (
            Verdict::Fail,
            "reached an optimal policy, then left it".into(),
        ),
        None => (
            Verdict::Inconclusive,
            format!(
                "not exactly optimal within {} iterations (non-optimal mass {:.2e}); run longer",
                optimal.len().saturating_sub(1),
                column(rows, "nonopt_mass")
                    .last()
                    .copied()
                    .unwrap_or(f64::NAN)
            ),
        ),
    }
}

/// Barrier divergences: log of the non-optimal mass stays finite (while eta is finite).
pub fn never_exact(rows: &Table) -> Check {
    let logs = column(rows, "log_nonopt_mass");
    let etas = column(rows, "eta");
    let considered: Vec<f64> = logs
        .iter()
        .zip(etas)
        .take_while(|(_, e)| e.is_finite())
        .map(|(l, _)| *l)
        .collect();
    let smallest = considered.iter().copied().fold(f64::INFINITY, f64::min);
    (
        Verdict::from_bool(considered.iter().all(|l| l.is_finite())),
        format!(
            "smallest log non-optimal mass {smallest:.4e} (never -inf) over {} iterations",
            considered.len()
        ),
    )
}

/// The per-step decay rate -(log m_{k+1} - log m_k) at the end of the run, and the same a
/// window earlier (to tell whether the run is in its asymptotic regime).
fn tail_rates(logs: &[f64], window: usize) -> Option<(f64, f64)> {
    let n = logs.len();
    if n < 2 * window + 2 {
        return None;
    }
    let rate = |i: usize| -(logs[i] - logs[i - 1]);
    Some((rate(n - 1), rate(n - 1 - window)))
}

/// KL, constant eta: m_{k+1}/m_k -> exp(-eta Delta).
///
/// The ratio is the asymptotic one only in the tail, where the Q-values have settled: since
/// |Q^{pi_k} - Q*| <= gamma ||V* - V^{pi_k}||_inf, a sup-norm value gap below Delta/100 keeps
/// the per-step rate within about 2% of eta Delta. A run that ends before that (a tiny Delta
/// on a large MDP) has not reached the tail: INCONCLUSIVE, whatever the ratio says.
pub fn kl_tail_ratio(rows: &Table, eta: f64, delta: f64) -> Check {
    let predicted = eta * delta;
    let Some((last, earlier)) = tail_rates(column(rows, "log_nonopt_mass"), 10) else {
        return (Verdict::Inconclusive, "too few iterations".into());
    };
    let figure = format!(
        "tail ratio {:.6} vs exp(-eta Delta) = {:.6}",
        (-last).exp(),
        (-predicted).exp()
    );
    let gap = column(rows, "value_gap_inf")
        .last()
        .copied()
        .unwrap_or(f64::INFINITY);
    if gap > 0.01 * delta {
        return (
            Verdict::Inconclusive,
            format!(
                "{figure}; not in the tail yet: the value gap {gap:.2e} is not below \
                 Delta/100 = {:.2e}, run longer",
                0.01 * delta
            ),
        );
    }
    if (last / predicted - 1.0).abs() <= 0.01 {
        (Verdict::Pass, figure)
    } else if (last / earlier - 1.0).abs() > 0.001 {
        (
            Verdict::Inconclusive,
            format!("{figure}; still changing, run longer"),
        )
    } else {
        (Verdict::Fail, figure)
    }
}

/// Minus the least-squares slope of ln(column) against iter, over values above `floor`
/// (below it round-off takes over); `None` with fewer than 5 such rows.
pub fn decay_rate(rows: &Table, name: &str, floor: f64) -> Option<f64> {
    let (x, y): (Vec<f64>, Vec<f64>) = column(rows, "iter")
        .iter()
        .zip(column(rows, name))
        .filter(|(_, v)| **v > floor)
        .map(|(k, v)| (*k, v.ln()))
        .unzip();
    (x.len() >= 5).then(|| -least_squares_slope(&x, &y))
}

/// KL, geometric steps: log(-log m_k) grows with slope -log gamma in k.
pub fn kl_superlinear(rows: &Table, gamma: f64) -> Check {
    let logs = column(rows, "log_nonopt_mass");
    let etas = column(rows, "eta");
    let iters = column(rows, "iter");
    // Rows with finite eta and a mass below 1/e, where log(-log m) is defined and growing.
    let points: Vec<(f64, f64)> = iters
        .iter()
        .zip(logs)
        .zip(etas)
        .filter(|((_, l), e)| e.is_finite() && l.is_finite() && **l < -1.0)
        .map(|((k, l), _)| (*k, (-l).ln()))
        .collect();
    if points.len() < 20 {
        return (
            Verdict::Inconclusive,
            "fewer than 20 usable iterations".into(),
        );
    }
    let fit = |p: &[(f64, f64)]| {
        let (x, y): (Vec<f64>, Vec<f64>) = p.iter().copied().unzip();
        least_squares_slope(&x, &y)
    };
    let n = points.len();
    let last = fit(&points[n - 10..]);
    let earlier = fit(&points[n - 20..n - 10]);
    let predicted = -gamma.ln();
    let figure = format!("slope of log(-log m_k) = {last:.4} vs -log gamma = {predicted:.4}");
    if (last / predicted - 1.0).abs() <= 0.05 {
        (Verdict::Pass, figure)
    } else if (last / earlier - 1.0).abs() > 0.02 {
        (
            Verdict::Inconclusive,
            format!("{figure}; still changing, run longer"),
        )
    } else {
        (Verdict::Fail, figure)
    }
}

/// Burg / Tsallis q < 1: log-log slope of m_k against k over the second half of the run.
pub fn polynomial_decay(rows: &Table, predicted: f64) -> Check {
    let logs = column(rows, "log_nonopt_mass");
    let iters = column(rows, "iter");
    let n = logs.len();
    if n < 40 {
        return (Verdict::Inconclusive, "fewer than 40 iterations".into());
    }
    let fit = |range: std::ops::Range<usize>| {
        let x: Vec<f64> = iters[range.clone()].iter().map(|k| k.ln()).collect();
        least_squares_slope(&x, &logs[range])
    };
    let last = fit(n / 2..n);
    let earlier = fit(n / 4..n / 2);
    let figure = format!(
        "log-log slope {last:.3} (k in [{}, {}]) vs {predicted:.3}",
        n / 2,
        n - 1
    );
    if (last - predicted).abs() <= 0.1 * predicted.abs() {
        (Verdict::Pass, figure)
    } else if (last - earlier).abs() > 0.05 * predicted.abs() {
        (
            Verdict::Inconclusive,
            format!("{figure}; slope still drifting (was {earlier:.3}), run longer"),
        )
    } else {
        (Verdict::Fail, figure)
    }
}

impl Claims for Pmd {
    const CLAIMS: &'static [ClaimDoc] = &[
        MONOTONE,
        XIAO_THM8,
        XIAO_THM10,
        JOHNSON,
        FINITE_STEP,
        NEVER_EXACT,
        KL_TAIL,
        KL_SUPERLINEAR,
        POLYNOMIAL,
        HITTING_TIME,
        GEOMETRIC_FASTER,
        TSALLIS_TWO,
        PI_LIMIT,
        HUGE_CONSTANT_STEP,
    ];

    /// The single-run claims that apply to a run's settings, one result per divergence.
    fn check_claims(run: &RunData<Pmd>) -> Result<Vec<ClaimResult>> {
        let (spec, rows, summary) = (&run.spec, &run.rows, &run.summary);
        let range = summary
            .mdp
            .as_ref()
            .context("the summary has no MDP size")?
            .reward_range;
        summary
            .pi_iterations
            .context("the summary has no optimum: policy iteration did not finish")?;
        let scale = (range / (1.0 - spec.gamma)).max(f64::MIN_POSITIVE);
        // Each evaluation is exact to round-off (LU) or to eval_tol (sweeps).
        let value_tol = 1e-10 * scale + 2.0 * spec.eval_tol;
        // No gap Delta when every action is optimal.
        let delta = summary.gap_delta.unwrap_or(f64::INFINITY);
        let mut results = Vec::new();
        for divergence in spec.divergences() {
            let on = match divergence {
                Divergence::Tsallis(q) => format!("divergence=tsallis, tsallis_q={q}"),
                other => format!("divergence={}", other.name()),
            };
            let name = divergence.name();
            let part = rows.filter(|i| rows.text("divergence").is_some_and(|d| d[i] == name));
            if part.is_empty() {
                continue;
            }
            results.push(result(&MONOTONE, &on, monotone(&part, value_tol)));
            let (bound_doc, metric, bound) = match spec.schedule {
                Schedule::Constant => (&XIAO_THM8, "value_gap_rho", "bound_xiao_thm8"),
                Schedule::Geometric | Schedule::Pi => {
                    (&XIAO_THM10, "value_gap_rho", "bound_xiao_thm10")
                }
                Schedule::Adaptive => (&JOHNSON, "value_gap_inf", "bound_johnson"),
            };
            // No bound column values: D*_0 is infinite (Burg), so the bound says nothing.
            if let Some(mut check) = bound_holds(&part, metric, bound) {
                if spec.schedule == Schedule::Adaptive
                    && let Some(rate) = decay_rate(&part, "value_gap_inf", 1e-12 * scale)
                {
                    // The notes expect a slope near log gamma; we report what the run shows.
                    check.1 += &format!(
                        "; observed decay rate {rate:.3} per step vs the bound's -log gamma = {:.3}",
                        -spec.gamma.ln()
                    );
                }
                results.push(result(bound_doc, &on, check));
            }
            if !delta.is_finite() {
                continue; // every action optimal: nothing to converge to
            }
            // Finite-step convergence needs sum eta_k = inf with eta_k not shrinking with the
            // distance to the face, which the adaptive rule does not promise.
            if divergence.reaches_faces() && spec.schedule != Schedule::Adaptive {
                let mut doc = FINITE_STEP;
                if matches!(divergence, Divergence::Tsallis(_)) {
                    doc.provenance = Provenance::Reconstructed(
                        "finite-step for Tsallis q > 1: reconstructed from the KKT mechanism (notes section 5)",
                    );
                }
                results.push(result(&doc, &on, finite_step(&part, value_tol)));
            } else if !divergence.reaches_faces() && spec.schedule != Schedule::Pi {
                results.push(result(&NEVER_EXACT, &on, never_exact(&part)));
            }
            match (divergence, spec.schedule) {
                (Divergence::Kl, Schedule::Constant) => {
                    results.push(result(&KL_TAIL, &on, kl_tail_ratio(&part, spec.eta, delta)));
                }
                (Divergence::Kl, Schedule::Geometric) => {
                    results.push(result(
                        &KL_SUPERLINEAR,
                        &on,
                        kl_superlinear(&part, spec.gamma),
                    ));
                }
                (Divergence::Burg, Schedule::Constant) => {
                    results.push(result(&POLYNOMIAL, &on, polynomial_decay(&part, -1.0)));
                }
                (Divergence::Tsallis(q), Schedule::Constant) if q < 1.0 => {
                    results.push(result(
                        &POLYNOMIAL,
                        &on,
                        polynomial_decay(&part, -1.0 / (1.0 - q)),
                    ));
                }
                _ => {}
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    //! The checks on synthetic rows with known answers: each one can fail.
    use super::*;
    use crate::table::Cell;

    fn table(columns: &[&str], rows: &[Vec<f64>]) -> Table {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut t = Table::with_columns(&names, &vec![false; names.len()]);
        for row in rows {
            t.push(&row.iter().map(|x| Cell::Real(*x)).collect::<Vec<_>>());
        }
        t
    }

    #[test]
    fn monotone_catches_a_decrease() {
        let ok = table(
            &["min_improvement"],
            &[vec![f64::NAN], vec![0.0], vec![1e-3]],
        );
        assert_eq!(monotone(&ok, 1e-10).0, Verdict::Pass);
        let bad = table(&["min_improvement"], &[vec![f64::NAN], vec![-1e-6]]);
        assert_eq!(monotone(&bad, 1e-10).0, Verdict::Fail);
    }

    #[test]
    fn bounds_are_checked_where_defined() {
        let cols = ["iter", "gap", "bound"];
        let ok = table(&cols, &[vec![0.0, 1.0, f64::NAN], vec![1.0, 0.5, 0.6]]);
        assert_eq!(bound_holds(&ok, "gap", "bound").unwrap().0, Verdict::Pass);
        let bad = table(&cols, &[vec![0.0, 1.0, f64::NAN], vec![1.0, 0.7, 0.6]]);
        assert_eq!(bound_holds(&bad, "gap", "bound").unwrap().0, Verdict::Fail);
        let none = table(&cols, &[vec![0.0, 1.0, f64::NAN]]);
        assert!(bound_holds(&none, "gap", "bound").is_none());
    }

    #[test]
    fn finite_step_needs_to_reach_and_stay() {
        let cols = ["iter", "optimal", "value_gap_inf", "nonopt_mass"];
        let rows = |opt: &[f64]| -> Vec<Vec<f64>> {
            opt.iter()
                .enumerate()
                .map(|(k, &o)| vec![k as f64, o, if o == 1.0 { 0.0 } else { 0.1 }, 1.0 - o])
                .collect()
        };
        let hit = table(&cols, &rows(&[0.0, 0.0, 1.0, 1.0]));
        assert_eq!(finite_step(&hit, 1e-9).0, Verdict::Pass);
        assert_eq!(hitting_iteration(&hit), Some(2));
        let left = table(&cols, &rows(&[0.0, 1.0, 0.0]));
        assert_eq!(finite_step(&left, 1e-9).0, Verdict::Fail);
        let never = table(&cols, &rows(&[0.0, 0.0]));
        assert_eq!(finite_step(&never, 1e-9).0, Verdict::Inconclusive);
    }

    #[test]
    fn rates_are_compared_with_the_prediction() {
        // log m_k = -0.03 k: ratio exp(-0.03) per step, in the tail (value gap 1e-6).
        let geometric: Vec<Vec<f64>> = (0..100).map(|k| vec![-0.03 * k as f64, 1e-6]).collect();
        let t = table(&["log_nonopt_mass", "value_gap_inf"], &geometric);
        assert_eq!(kl_tail_ratio(&t, 1.0, 0.03).0, Verdict::Pass);
        assert_eq!(kl_tail_ratio(&t, 1.0, 0.05).0, Verdict::Fail);
        // The same rows with the value gap still at Delta/10: not in the tail.
        let early: Vec<Vec<f64>> = (0..100).map(|k| vec![-0.03 * k as f64, 5e-3]).collect();
        let t = table(&["log_nonopt_mass", "value_gap_inf"], &early);
        let (verdict, measured) = kl_tail_ratio(&t, 1.0, 0.05);
        assert_eq!(verdict, Verdict::Inconclusive, "{measured}");
        assert!(measured.contains("not in the tail"), "{measured}");
        // m_k = k^-2.
        let power: Vec<Vec<f64>> = (1..200)
            .map(|k| vec![k as f64, -2.0 * (k as f64).ln()])
            .collect();
        let t = table(&["iter", "log_nonopt_mass"], &power);
        assert_eq!(polynomial_decay(&t, -2.0).0, Verdict::Pass);
        assert_eq!(polynomial_decay(&t, -1.0).0, Verdict::Fail);
        // -log m_k = 0.5 gamma^-k with gamma = 0.9.
        let superlinear: Vec<Vec<f64>> = (0..60)
            .map(|k| vec![k as f64, -0.5 * 0.9f64.powi(-k), 1.0])
            .collect();
        let t = table(&["iter", "log_nonopt_mass", "eta"], &superlinear);
        assert_eq!(kl_superlinear(&t, 0.9).0, Verdict::Pass);
        assert_eq!(kl_superlinear(&t, 0.8).0, Verdict::Fail);
        // gap_k = 0.9^k, cut off below 1e-12 as round-off would be.
        let linear: Vec<Vec<f64>> = (0..400)
            .map(|k| vec![k as f64, 0.9f64.powi(k).max(1e-14)])
            .collect();
        let t = table(&["iter", "value_gap_inf"], &linear);
        let rate = decay_rate(&t, "value_gap_inf", 1e-12).unwrap();
        assert!((rate + 0.9f64.ln()).abs() < 1e-12, "{rate}");
    }
}
