//! Claims of notes (d), checked on a run's summary.

use anyhow::{Context, Result};

use super::spec::Method;
use super::{NoiseExperiment, Outcomes, Share, SpuriousPoint};
use crate::claims::{Check, ClaimDoc, ClaimResult, Provenance, Verdict, result};
use crate::contract::{Claims, RunData};

pub const GD_STUCK: ClaimDoc = ClaimDoc {
    id: "noise.gd_stuck",
    statement: "Where the spurious point is a local minimum, gradient descent (plain or weight \
                normalized) ends there in a fraction of starts bounded away from 0 and 1 (95% \
                Wilson interval inside [0.05, 0.95])",
    provenance: Provenance::Verified(
        "abstract of Du et al. 2018 (arXiv:1712.00779): GD converges to the spurious local \
         minimum with constant probability; the notes measured 42-50% (weight normalized)",
    ),
};

pub const NOISE_ESCAPES: ClaimDoc = ClaimDoc {
    id: "noise.noise_escapes",
    statement: "Perturbed GD with noise annealing, and perturbed mini-batch SGD, reach the \
                global minimum in at least 95% of starts",
    provenance: Provenance::Verified(
        "abstract of Zhou et al. 2019 (arXiv:1909.03172): both converge to the global optimum \
         from arbitrary initialization; the 95% threshold is ours",
    ),
};

pub const SIGN_RULE: ClaimDoc = ClaimDoc {
    id: "noise.sign_rule",
    statement: "Under weight-normalized GD the angle phi to w* decreases exactly when \
                a^T a* > 0, at every step of every start",
    provenance: Provenance::Reconstructed(
        "notes (d): for unit w, dL/dphi = -(pi - phi) sin(phi) a^T a* / 2 pi (derived)",
    ),
};

pub const SPURIOUS_KIND: ClaimDoc = ClaimDoc {
    id: "noise.spurious_kind",
    statement: "The spurious point (w = -w*, a_sp) is a local minimum exactly when \
                a_sp^T a* < 0, and a saddle otherwise: a lower loss is found (the profile \
                min_a L(phi, a) as phi leaves pi, or 4000 random points at distance 1e-3) \
                exactly for the saddles",
    provenance: Provenance::Reconstructed(
        "notes (d), spurious point (derived; k = 2, 3 gave saddles, larger k minima)",
    ),
};

pub const NOISE_HELPS: ClaimDoc = ClaimDoc {
    id: "noise.noise_helps",
    statement: "Perturbed GD reaches the global minimum more often than weight-normalized GD \
                from the same starts (95% Wilson intervals disjoint)",
    provenance: Provenance::Reconstructed(
        "a weaker form of the abstract's claim, ours: it holds where the 95% rate is not met",
    ),
};

pub fn check_helps(noisy: &Outcomes, plain: &Outcomes) -> Check {
    let (f, lo, c, n) = (
        noisy.global.fraction,
        noisy.global.ci95[0],
        noisy.global.count,
        noisy.starts,
    );
    let (g, hi, d, m) = (
        plain.global.fraction,
        plain.global.ci95[1],
        plain.global.count,
        plain.starts,
    );
    (
        Verdict::from_bool(lo > hi),
        format!(
            "{c}/{n} ({f:.3}, lower bound {lo:.3}) against {d}/{m} ({g:.3}, upper bound {hi:.3})"
        ),
    )
}

fn share_text(s: &Share, starts: usize, at: &str) -> String {
    format!(
        "{} of {starts} starts at the {at} ({:.3}, 95% CI [{:.3}, {:.3}])",
        s.count, s.fraction, s.ci95[0], s.ci95[1]
    )
}

pub fn check_stuck(entry: &Outcomes) -> Check {
    let s = &entry.spurious;
    (
        Verdict::from_bool(s.ci95[0] > 0.05 && s.ci95[1] < 0.95),
        share_text(s, entry.starts, "spurious minimum"),
    )
}

pub fn check_escapes(entry: &Outcomes) -> Check {
    (
        Verdict::from_bool(entry.global.fraction >= 0.95),
        share_text(&entry.global, entry.starts, "global minimum"),
    )
}

pub fn check_sign_rule(entry: &Outcomes) -> Check {
    let (checked, violations) = entry
        .sign_rule
        .as_ref()
        .map_or((0, 0), |r| (r.checked_steps, r.violations));
    if checked == 0 {
        return (Verdict::Inconclusive, "no step with a resolved sign".into());
    }
    (
        Verdict::from_bool(violations == 0),
        format!("{violations} violation(s) in {checked} steps"),
    )
}

pub fn check_kind(point: &SpuriousPoint) -> Check {
    let (by_sign, descent) = (point.minimum_by_sign_test, point.perturbation_finds_descent);
    (
        Verdict::from_bool(by_sign != descent),
        format!(
            "a_sp^T a* = {:.4} ({}); {}",
            point.a_sp_dot_a_star,
            if by_sign { "a minimum" } else { "a saddle" },
            match (&point.descent_found_by, descent) {
                (Some(by), true) => format!("a lower point found by {by}"),
                (None, true) => "the profile or random points found a lower point".into(),
                (_, false) => "neither the profile nor random points found a lower point".into(),
            }
        ),
    )
}

impl Claims for NoiseExperiment {
    const CLAIMS: &'static [ClaimDoc] = &[
        GD_STUCK,
        NOISE_ESCAPES,
        NOISE_HELPS,
        SIGN_RULE,
        SPURIOUS_KIND,
    ];

    fn check_claims(run: &RunData<NoiseExperiment>) -> Result<Vec<ClaimResult>> {
        let spec = &run.spec;
        let on = format!("k={}, p={}, seed={}", spec.k, spec.p, spec.seed);
        let point = run
            .summary
            .spurious_point
            .as_ref()
            .context("the summary has no spurious point")?;
        let mut out = vec![result(&SPURIOUS_KIND, &on, check_kind(point))];
        let counts = run
            .summary
            .outcomes
            .as_ref()
            .context("the summary has no outcomes")?;
        for method in &spec.method {
            let entry = counts
                .get(method.name())
                .with_context(|| format!("the summary has no outcomes of {}", method.name()))?;
            let here = format!("{on}, {}", method.name());
            match method {
                Method::Gd | Method::WnGd if point.minimum_by_sign_test => {
                    out.push(result(&GD_STUCK, &here, check_stuck(entry)));
                }
                Method::Pgd | Method::Psgd => {
                    let mode = format!("{here}, {}", spec.noise_mode.name());
                    out.push(result(&NOISE_ESCAPES, &mode, check_escapes(entry)));
                }
                _ => {}
            }
            if *method == Method::WnGd {
                out.push(result(&SIGN_RULE, &here, check_sign_rule(entry)));
            }
            if let (Method::Pgd | Method::Psgd, Some(plain)) = (method, counts.get("wn_gd")) {
                let mode = format!("{here} against wn_gd, {}", spec.noise_mode.name());
                out.push(result(&NOISE_HELPS, &mode, check_helps(entry, plain)));
            }
        }
        Ok(out)
    }
}
