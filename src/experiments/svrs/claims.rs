//! The checkable claims of notes section 8, checked on a run's rows and summary.
//!
//! All are *reconstructed*: the paper's abstract gives the SVRS and AccSVRS complexity
//! bounds, but the update rules, the constants and the baselines' bounds come from the notes'
//! reconstruction (section 0), so every comparison below is a consequence of that
//! reconstruction, checked numerically, not a statement read in the paper.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::methods::{End, Method};
use super::spec::AccegDelta;
use super::{Cost, Svrs, SvrsSummary};
use crate::claims::{
    Check, ClaimDoc, ClaimResult, Provenance, Verdict, least_squares_slope, result,
};
use crate::contract::{Claims, RunData};
use crate::table::Table;

pub const LINEAR: ClaimDoc = ClaimDoc {
    id: "svrs.linear",
    statement: "Every method converges linearly in communications: the second half of the \
                decades of error (from sqrt(e_end) down to e_end) costs between 1/3 and 3 \
                times the first half, for every seed",
    provenance: Provenance::Reconstructed(
        "notes section 8 claim 1: every bound has the form C log(1/eps); the SVRS and AccSVRS \
         bounds are in the abstract, the update rules and the baselines' bounds reconstructed",
    ),
};

pub const EPOCH_RATE: ClaimDoc = ClaimDoc {
    id: "svrs.epoch_rate",
    statement: "SVRS with the theory theta = sqrt(p)/(4 delta_avg) decays at least as fast as \
                the per-epoch factor 1/(1 + mu theta / p), an epoch costing n + (n-1)/(n p) \
                communications in expectation",
    provenance: Provenance::Reconstructed(
        "notes section 2: one-epoch inequality of the OLGA paper (Lemma 1) with one sampled \
         client; the paper's own constant is unverified",
    ),
};

pub const BEATS_SVRP: ClaimDoc = ClaimDoc {
    id: "svrs.beats_svrp_above",
    statement: "Well above the crossover (delta_avg/mu >= 2 sqrt(n)) SVRS needs fewer \
                communications than SVRP to reach tol",
    provenance: Provenance::Reconstructed(
        "notes sections 1 and 8 claim 2: (n + sqrt(n) delta/mu) against (n + delta^2/mu^2); \
         SVRP's bound and update rule reconstructed from memory [U]",
    ),
};

pub const SVRP_BELOW: ClaimDoc = ClaimDoc {
    id: "svrs.svrp_wins_below",
    statement: "Below the crossover (delta_avg/mu <= sqrt(n)) SVRP needs no more \
                communications than SVRS to reach tol",
    provenance: Provenance::Reconstructed("notes section 8 claim 3 (the crossover)"),
};

pub const ACCSVRS_COMMS: ClaimDoc = ClaimDoc {
    id: "accsvrs.beats_acceg",
    statement: "Well above the crossover (delta_avg/mu >= 2 sqrt(n)) AccSVRS needs fewer \
                communications than AccEG with L_p = delta_max",
    provenance: Provenance::Reconstructed(
        "notes section 8 claim 4: n^(3/4) sqrt(delta/mu) against n sqrt(delta/mu); AccSVRS \
         parameters reconstructed (Katyusha X pattern), AccEG cross-checked by the notes",
    ),
};

pub const ACCEG_ROUNDS: ClaimDoc = ClaimDoc {
    id: "acceg.fewer_rounds",
    statement: "AccEG needs fewer rounds than AccSVRS to reach tol",
    provenance: Provenance::Reconstructed(
        "notes sections 1 and 8 claim 4: AccEG is optimal in rounds, AccSVRS loses in rounds",
    ),
};

pub const SCALING: ClaimDoc = ClaimDoc {
    id: "svrs.scaling",
    statement: "Over a sweep of delta/mu above sqrt(n) at fixed n, the communications to tol \
                grow like (delta/mu)^1 for SVRS and (delta/mu)^(1/2) for AccSVRS: fitted \
                log-log slopes within 0.2 of 1 and of 1/2",
    provenance: Provenance::Reconstructed(
        "notes section 8 claim 5, from the bounds of the abstract; the exponents are \
         asymptotic, so the fit is done where sqrt(n) delta/mu dominates n",
    ),
};

/// The (comms, rel_error) path of each seed of a method.
fn paths(rows: &Table, method: &str) -> Vec<Vec<(f64, f64)>> {
    let (Some(names), Some(seeds), Some(comms), Some(errors)) = (
        rows.text("method"),
        rows.num("seed"),
        rows.num("comms"),
        rows.num("rel_error"),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
    for i in 0..names.len() {
        if names[i] != method {
            continue;
        }
        match out.iter_mut().find(|(s, _)| *s == seeds[i]) {
            Some((_, path)) => path.push((comms[i], errors[i])),
            None => out.push((seeds[i], vec![(comms[i], errors[i])])),
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

/// Second half of the decades over the first half, for one path; `Err` says why it does not
/// decide (too few decades, too few records).
pub fn half_decade_ratio(path: &[(f64, f64)]) -> Result<f64, String> {
    let &(c_end, e_end) = path.last().ok_or("no rows")?;
    if e_end > 1e-4 {
        return Err(format!("the error only reached {e_end:.1e}"));
    }
    let middle = e_end.sqrt();
    let k = path
        .iter()
        .position(|&(_, e)| e <= middle)
        .ok_or("no middle")?;
    if k < 5 {
        return Err(format!(
            "{k} rows before the middle of the decades: record more often (record_every)"
        ));
    }
    let c_mid = path[k].0;
    Ok((c_end - c_mid) / c_mid)
}

/// svrs.linear for one method.
pub fn linear(rows: &Table, summary: &SvrsSummary, method: &str) -> Check {
    let diverged = summary
        .runs
        .iter()
        .flatten()
        .any(|r| r.method == method && r.outcome.end == End::Diverged);
    if diverged {
        return (Verdict::Fail, "diverged".into());
    }
    let mut ratios = Vec::new();
    for path in paths(rows, method) {
        match half_decade_ratio(&path) {
            Ok(r) => ratios.push(r),
            Err(why) => return (Verdict::Inconclusive, why),
        }
    }
    if ratios.is_empty() {
        return (Verdict::Inconclusive, "no rows".into());
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &r| (a.min(r), b.max(r)));
    let ok = lo >= 1.0 / 3.0 && hi <= 3.0;
    (
        Verdict::from_bool(ok),
        format!(
            "second/first half cost {lo:.2}..{hi:.2} over {} seed(s)",
            ratios.len()
        ),
    )
}

/// svrs.epoch_rate: observed ln(1/e) per communication against ln(1 + mu theta/p) / epoch.
pub fn epoch_rate(rows: &Table, summary: &SvrsSummary) -> Result<Check> {
    let mu = summary.constants.as_ref().context("no constants")?.mu;
    let parameters = summary.parameters.as_ref().context("no parameters")?;
    let (theta, p) = (parameters.theta, parameters.p);
    let sqrt_n = summary.sqrt_n.context("no sqrt(n)")?;
    let n = sqrt_n * sqrt_n;
    let epoch = n + (n - 1.0) / (n * p);
    let bound = (mu * theta / p).ln_1p() / epoch;
    let observed: Vec<f64> = paths(rows, "svrs")
        .iter()
        .filter_map(|p| p.last())
        .filter(|(c, e)| *c > 0.0 && *e > 0.0)
        .map(|(c, e)| -e.ln() / c)
        .collect();
    if observed.is_empty() {
        return Ok((Verdict::Inconclusive, "no svrs rows".into()));
    }
    let slowest = observed.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((
        Verdict::from_bool(slowest >= bound),
        format!(
            "slowest seed {slowest:.3e} per communication vs bound {bound:.3e} (x{:.2})",
            slowest / bound
        ),
    ))
}

/// What a cost counts.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Comms,
    Rounds,
}

/// Median cost of a method: Some(Some(c)) reached, Some(None) did not reach tol (more than
/// the budget), None not run.
fn cost(
    costs: &BTreeMap<String, Option<Cost>>,
    method: &str,
    what: Counted,
) -> Option<Option<f64>> {
    let entry = costs.get(method)?.as_ref();
    Some(entry.map(|c| match what {
        Counted::Comms => c.comms,
        Counted::Rounds => c.rounds,
    }))
}

/// Whether `a` costs less than `b` (`or_equal`: no more than).
fn cheaper(
    costs: &BTreeMap<String, Option<Cost>>,
    a: &str,
    b: &str,
    what: Counted,
    or_equal: bool,
) -> Check {
    let (Some(ca), Some(cb)) = (cost(costs, a, what), cost(costs, b, what)) else {
        return (Verdict::Inconclusive, format!("{a} or {b} not run"));
    };
    let show = |c: Option<f64>| c.map_or("not reached".to_string(), |v| format!("{v:.0}"));
    let unit = match what {
        Counted::Comms => "comms",
        Counted::Rounds => "rounds",
    };
    let measured = format!("{unit}: {a} {}, {b} {}", show(ca), show(cb));
    let verdict = match (ca, cb) {
        (Some(x), Some(y)) => Verdict::from_bool(if or_equal { x <= y } else { x < y }),
        (Some(_), None) => Verdict::Pass,
        (None, Some(_)) => Verdict::Fail,
        (None, None) => Verdict::Inconclusive,
    };
    (verdict, measured)
}

impl Claims for Svrs {
    const CLAIMS: &'static [ClaimDoc] = &[
        LINEAR,
        EPOCH_RATE,
        BEATS_SVRP,
        SVRP_BELOW,
        ACCSVRS_COMMS,
        ACCEG_ROUNDS,
        SCALING,
    ];

    fn check_claims(run: &RunData<Svrs>) -> Result<Vec<ClaimResult>> {
        let (spec, rows, summary) = (&run.spec, &run.rows, &run.summary);
        let mut results = Vec::new();
        let has = |m: Method| spec.method.contains(&m);
        for &method in &spec.method {
            let on = format!("method={}", method.name());
            results.push(result(&LINEAR, &on, linear(rows, summary, method.name())));
        }
        if has(Method::Svrs) && spec.theta_scale == 1.0 {
            let check = epoch_rate(rows, summary).context("svrs.epoch_rate: the summary")?;
            results.push(result(&EPOCH_RATE, "method=svrs", check));
        }
        let ratio = summary
            .delta_over_mu
            .context("the summary has no delta/mu")?;
        let sqrt_n = summary.sqrt_n.context("the summary has no sqrt(n)")?;
        let costs = summary
            .cost_to_tol
            .as_ref()
            .context("the summary has no costs to tol")?;
        let regime = format!("delta/mu = {ratio:.1}, sqrt(n) = {sqrt_n:.1}");
        let above = ratio >= 2.0 * sqrt_n;
        if has(Method::Svrs) && has(Method::Svrp) {
            if above {
                let check = cheaper(costs, "svrs", "svrp", Counted::Comms, false);
                results.push(result(&BEATS_SVRP, &regime, check));
            } else if ratio <= sqrt_n {
                let check = cheaper(costs, "svrp", "svrs", Counted::Comms, true);
                results.push(result(&SVRP_BELOW, &regime, check));
            }
        }
        if has(Method::Accsvrs) && has(Method::Acceg) {
            if above && spec.acceg_delta == AccegDelta::Max {
                let check = cheaper(costs, "accsvrs", "acceg", Counted::Comms, false);
                results.push(result(&ACCSVRS_COMMS, &regime, check));
            }
            let check = cheaper(costs, "acceg", "accsvrs", Counted::Rounds, false);
            results.push(result(&ACCEG_ROUNDS, &regime, check));
        }
        Ok(results)
    }
}

/// Fitted log-log slope of cost against delta/mu.
pub fn fitted_slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().map(|(a, b)| (a.ln(), b.ln())).unzip();
    Some(least_squares_slope(&x, &y))
}

/// svrs.scaling from (delta/mu, median comms) points of SVRS and AccSVRS.
pub fn scaling(svrs: &[(f64, f64)], accsvrs: &[(f64, f64)]) -> Check {
    let (Some(a), Some(b)) = (fitted_slope(svrs), fitted_slope(accsvrs)) else {
        return (
            Verdict::Inconclusive,
            "fewer than 3 runs that reached tol".into(),
        );
    };
    (
        Verdict::from_bool((a - 1.0).abs() <= 0.2 && (b - 0.5).abs() <= 0.2),
        format!(
            "slopes: svrs {a:.2} (theory 1), accsvrs {b:.2} (theory 0.5), over delta/mu {:.0}..{:.0}",
            svrs.first().map_or(0.0, |p| p.0),
            svrs.last().map_or(0.0, |p| p.0)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometric(rate: f64, every: f64, until: f64) -> Vec<(f64, f64)> {
        let mut path = Vec::new();
        let mut c = 0.0;
        loop {
            let e = (-rate * c).exp();
            path.push((c, e));
            if e <= until {
                return path;
            }
            c += every;
        }
    }

    #[test]
    fn linear_paths_pass_and_sublinear_ones_fail() {
        let linear = geometric(1e-3, 50.0, 1e-10);
        let r = half_decade_ratio(&linear).unwrap();
        assert!((r - 1.0).abs() < 0.05, "{r}");
        // e = 1/(1 + c)^2: sublinear; the second half of the decades costs far more.
        let sublinear: Vec<(f64, f64)> = (0..200_000)
            .step_by(10)
            .map(|c| (c as f64, 1.0 / (1.0 + c as f64).powi(2)))
            .collect();
        assert!(half_decade_ratio(&sublinear).unwrap() > 3.0);
        // A path that barely moved decides nothing.
        assert!(half_decade_ratio(&geometric(1e-3, 50.0, 1e-2)).is_err());
    }

    #[test]
    fn slopes_are_fitted_on_log_log_axes() {
        let line: Vec<(f64, f64)> = [10.0, 20.0, 40.0, 80.0]
            .iter()
            .map(|&k: &f64| (k, 3.0 * k.powf(0.7)))
            .collect();
        assert!((fitted_slope(&line).unwrap() - 0.7).abs() < 1e-12);
        let svrs: Vec<(f64, f64)> = line.iter().map(|&(k, _)| (k, 100.0 * k)).collect();
        let acc: Vec<(f64, f64)> = line.iter().map(|&(k, _)| (k, 100.0 * k.sqrt())).collect();
        assert_eq!(scaling(&svrs, &acc).0, Verdict::Pass);
        assert_eq!(scaling(&acc, &svrs).0, Verdict::Fail);
    }

    #[test]
    fn comparisons_treat_a_missed_tolerance_as_more_than_the_budget() {
        let comms = |c: f64| {
            Some(Cost {
                comms: c,
                rounds: c,
                local_grads: c,
                seeds: 1,
            })
        };
        let costs: BTreeMap<String, Option<Cost>> = [
            ("svrs".to_string(), comms(10.0)),
            ("svrp".to_string(), None),
            ("acceg".to_string(), comms(5.0)),
        ]
        .into_iter()
        .collect();
        let verdict = |a, b, or_equal| cheaper(&costs, a, b, Counted::Comms, or_equal).0;
        assert_eq!(verdict("svrs", "svrp", false), Verdict::Pass);
        assert_eq!(verdict("svrp", "svrs", true), Verdict::Fail);
        assert_eq!(verdict("svrs", "acceg", false), Verdict::Fail);
        assert_eq!(verdict("svrs", "accsvrs", false), Verdict::Inconclusive);
    }
}
