//! Claims of notes (d), checked on a run's summary.

use serde_json::{Map, Value};

use super::spec::{Method, NoiseSpec};
use crate::claims::{Check, ClaimResult, Provenance, Verdict, result};
use crate::experiments::ClaimDoc;

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

pub fn docs() -> Vec<ClaimDoc> {
    vec![
        GD_STUCK,
        NOISE_ESCAPES,
        NOISE_HELPS,
        SIGN_RULE,
        SPURIOUS_KIND,
    ]
}

pub fn check_helps(noisy: &Value, plain: &Value) -> Check {
    let (f, lo, _, c, n) = fraction(noisy, "global");
    let (g, _, hi, d, m) = fraction(plain, "global");
    (
        Verdict::from_bool(lo > hi),
        format!(
            "{c}/{n} ({f:.3}, lower bound {lo:.3}) against {d}/{m} ({g:.3}, upper bound {hi:.3})"
        ),
    )
}

fn fraction(entry: &Value, outcome: &str) -> (f64, f64, f64, u64, u64) {
    let o = &entry[outcome];
    (
        o["fraction"].as_f64().unwrap_or(f64::NAN),
        o["ci95"][0].as_f64().unwrap_or(f64::NAN),
        o["ci95"][1].as_f64().unwrap_or(f64::NAN),
        o["count"].as_u64().unwrap_or(0),
        entry["starts"].as_u64().unwrap_or(0),
    )
}

pub fn check_stuck(entry: &Value) -> Check {
    let (f, lo, hi, c, n) = fraction(entry, "spurious");
    (
        Verdict::from_bool(lo > 0.05 && hi < 0.95),
        format!("{c} of {n} starts at the spurious minimum ({f:.3}, 95% CI [{lo:.3}, {hi:.3}])"),
    )
}

pub fn check_escapes(entry: &Value) -> Check {
    let (f, lo, hi, c, n) = fraction(entry, "global");
    (
        Verdict::from_bool(f >= 0.95),
        format!("{c} of {n} starts at the global minimum ({f:.3}, 95% CI [{lo:.3}, {hi:.3}])"),
    )
}

pub fn check_sign_rule(entry: &Value) -> Check {
    let rule = &entry["sign_rule"];
    let (checked, violations) = (
        rule["checked_steps"].as_u64().unwrap_or(0),
        rule["violations"].as_u64().unwrap_or(0),
    );
    if checked == 0 {
        return (Verdict::Inconclusive, "no step with a resolved sign".into());
    }
    (
        Verdict::from_bool(violations == 0),
        format!("{violations} violation(s) in {checked} steps"),
    )
}

pub fn check_kind(point: &Value) -> Check {
    let by_sign = point["minimum_by_sign_test"].as_bool().unwrap_or(false);
    let descent = point["perturbation_finds_descent"]
        .as_bool()
        .unwrap_or(false);
    (
        Verdict::from_bool(by_sign != descent),
        format!(
            "a_sp^T a* = {:.4} ({}); the profile and perturbations {} a lower point",
            point["a_sp_dot_a_star"].as_f64().unwrap_or(f64::NAN),
            if by_sign { "a minimum" } else { "a saddle" },
            if descent { "found" } else { "never found" }
        ),
    )
}

pub fn check_run(spec: &NoiseSpec, summary: &Map<String, Value>) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    let on = format!("k={}, p={}, seed={}", spec.k, spec.p, spec.seed);
    let Some(point) = summary.get("spurious_point") else {
        return out;
    };
    out.push(result(&SPURIOUS_KIND, &on, check_kind(point)));
    let minimum = point["minimum_by_sign_test"].as_bool().unwrap_or(false);
    let Some(counts) = summary.get("outcomes") else {
        return out;
    };
    for method in &spec.method {
        let Some(entry) = counts.get(method.name()) else {
            continue;
        };
        let here = format!("{on}, {}", method.name());
        match method {
            Method::Gd | Method::WnGd if minimum => {
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
    out
}
