//! Claims of notes (a), checked on a run's rows. All are *reconstructed*: the notes derive
//! them (and check them numerically) because the paper's theorems could not be read; the
//! paper's abstract only states convergence to the global minimizer, a saddle or the origin,
//! with rates "by stages".

use anyhow::Result;

use super::DeepLinearExperiment;
use super::spec::{DeepLinearSpec, Dynamics, Init, Sign};
use crate::claims::{
    Check, ClaimDoc, ClaimResult, Provenance, Verdict, least_squares_slope, result,
};
use crate::contract::{Claims, RunData};
use crate::table::Table;

pub const BALANCE: ClaimDoc = ClaimDoc {
    id: "deeplinear.balance_conserved",
    statement: "Along gradient flow every D_j = W_{j+1}^T W_{j+1} - W_j W_j^T stays constant \
                (drift below 1e-6)",
    provenance: Provenance::Reconstructed(
        "notes, shared facts: conservation law of homogeneous networks (Du, Hu & Lee 2018)",
    ),
};

pub const REDUCED: ClaimDoc = ClaimDoc {
    id: "deeplinear.reduced_ode",
    statement: "From a balanced start the product stays rank one and its singular value \
                follows the reduced ODE sigma' = N sigma^(2-2/N) (u^T Z v - sigma) with \
                u, v on their spheres (difference below 1e-6 s_1)",
    provenance: Provenance::Reconstructed("notes (a), closed-form reference 1 (derived)"),
};

pub const CHAIN: ClaimDoc = ClaimDoc {
    id: "deeplinear.chain_closed_form",
    statement: "The balanced two-layer scalar chain follows p(t) = z / (1 + (z/p0 - 1) \
                exp(-2 z t)) (difference below 1e-7 z)",
    provenance: Provenance::Reconstructed("notes (a), closed-form reference 2 (Saxe et al. 2014)"),
};

pub const LIMIT: ClaimDoc = ClaimDoc {
    id: "deeplinear.limit",
    statement: "The flow ends where the start predicts: a generic start at the global minimum \
                s_1 u_1 v_1^T, a start on {u_1^T a = 0, v_1^T b = 0} at the second saddle (in \
                floating point only until rounding, amplified by the saddle's unstable \
                direction, carries it off: keep t_end short), a balanced scalar chain of the \
                wrong sign at the origin",
    provenance: Provenance::Reconstructed(
        "notes (a), limit points and items 4; the abstract names the three kinds of limit",
    ),
};

pub const FINAL_RATE: ClaimDoc = ClaimDoc {
    id: "deeplinear.final_rate",
    statement: "The final phase is linear: the loss gap decays at rate \
                min(2 N s_1^(2-2/N), 2 s_1^(1-2/N) (s_1 - s_2)) (fitted within 10%)",
    provenance: Provenance::Reconstructed(
        "notes (a), stage rates: the singular value's and the direction's rates, whichever \
         is slower (the notes give both; the min is ours)",
    ),
};

pub const ORIGIN_RATE: ClaimDoc = ClaimDoc {
    id: "deeplinear.origin_rate",
    statement: "A balanced scalar chain of the wrong sign decays to 0 like \
                ((N-2) |z| t)^(-N/(N-2)) for N >= 3 (within 5% at the end), exponentially at \
                rate 2|z| for N = 2",
    provenance: Provenance::Reconstructed("notes (a), item 4 (derived)"),
};

pub const PLATEAU: ClaimDoc = ClaimDoc {
    id: "deeplinear.plateau",
    statement: "The escape time from a small balanced start grows like sigma_0^-(1-2/N) \
                (log-log slope within 0.05), N >= 3",
    provenance: Provenance::Reconstructed("notes (a), stage rates: escape (derived)"),
};

pub const UNBALANCED_ESCAPES: ClaimDoc = ClaimDoc {
    id: "deeplinear.unbalanced_escapes",
    statement: "A scalar chain of the wrong sign whose smallest |w_j| is unique and not \
                balanced crosses zero and reaches the global minimum p = z",
    provenance: Provenance::Reconstructed("notes (a), item 4 (checked: N=3, (0.5, 0.6, -0.45))"),
};

fn flow_rows(rows: &Table) -> Table {
    rows.filter(|i| rows.text("method").is_some_and(|m| m[i] == "flow"))
}

fn col<'a>(rows: &'a Table, name: &str) -> &'a [f64] {
    rows.num(name).unwrap_or(&[])
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The limit a start predicts (None when the notes predict nothing for it).
pub fn predicted_limit(spec: &DeepLinearSpec) -> Option<&'static str> {
    let scalar = spec.widths.iter().all(|&w| w == 1);
    match spec.init {
        Init::Invariant => Some("saddle_2"),
        Init::Balanced if scalar && spec.init_sign == Sign::Negative => Some("origin"),
        Init::Balanced | Init::Random => Some("global"),
        Init::Custom if scalar => custom_scalar_limit(&spec.init_weights),
        Init::Custom => None,
    }
}

/// A scalar chain from custom weights: positive product -> global; negative product with a
/// unique smallest |w_j| -> the smallest crosses and the chain reaches the global minimum.
fn custom_scalar_limit(w: &[f64]) -> Option<&'static str> {
    let product: f64 = w.iter().product();
    if product > 0.0 {
        return Some("global");
    }
    let mut mags: Vec<f64> = w.iter().map(|x| x.abs()).collect();
    mags.sort_by(f64::total_cmp);
    (mags.len() >= 2 && mags[0] < mags[1]).then_some("global")
}

impl Claims for DeepLinearExperiment {
    const CLAIMS: &'static [ClaimDoc] = &[
        BALANCE,
        REDUCED,
        CHAIN,
        LIMIT,
        FINAL_RATE,
        ORIGIN_RATE,
        PLATEAU,
        UNBALANCED_ESCAPES,
    ];

    fn check_claims(run: &RunData<DeepLinearExperiment>) -> Result<Vec<ClaimResult>> {
        let (spec, rows) = (&run.spec, &run.rows);
        let mut results = Vec::new();
        if !spec.method.contains(&Dynamics::Flow) {
            return Ok(results);
        }
        let flow = flow_rows(rows);
        anyhow::ensure!(!flow.is_empty(), "no flow rows in a run of the flow");
        let s1 = spec.spectrum[0];
        let n = (spec.widths.len() - 1) as f64;
        let scalar = spec.widths.iter().all(|&w| w == 1);
        let drift = col(&flow, "balance_drift")
            .iter()
            .copied()
            .fold(0.0, f64::max);
        results.push(result(
            &BALANCE,
            "method=flow",
            (
                Verdict::from_bool(drift <= 1e-6),
                format!("max drift {drift:.2e}"),
            ),
        ));
        let balanced = spec.init == Init::Balanced || spec.init == Init::Invariant;
        if balanced {
            let diff = max_abs_diff(col(&flow, "sv_1"), col(&flow, "sv_reduced"));
            results.push(result(
                &REDUCED,
                "method=flow",
                (
                    Verdict::from_bool(diff <= 1e-6 * s1),
                    format!("max |sv_1 - sigma_reduced| = {diff:.2e}"),
                ),
            ));
        }
        if scalar && balanced && spec.widths.len() == 3 {
            let p0 = match spec.init_sign {
                Sign::Positive => spec.init_scale,
                Sign::Negative => -spec.init_scale,
            };
            let exact: Vec<f64> = col(&flow, "t")
                .iter()
                .map(|t| s1 / (1.0 + (s1 / p0 - 1.0) * (-2.0 * s1 * t).exp()))
                .collect();
            let diff = max_abs_diff(col(&flow, "align_1"), &exact);
            results.push(result(
                &CHAIN,
                "method=flow",
                (
                    Verdict::from_bool(diff <= 1e-7 * s1),
                    format!("max |p - closed form| = {diff:.2e}"),
                ),
            ));
        }
        let observed = run
            .summary
            .limits
            .as_ref()
            .and_then(|l| l.get("flow"))
            .map(|l| l.limit.clone());
        if let Some(expected) = predicted_limit(spec) {
            let check = match &observed {
                Some(o) if o == expected => (Verdict::Pass, format!("ended at {o}")),
                Some(o) if o.starts_with("not converged") => (
                    Verdict::Inconclusive,
                    format!("{o} by t = {}: run longer", spec.t_end),
                ),
                Some(o) => (Verdict::Fail, format!("ended at {o}, expected {expected}")),
                None => (Verdict::Inconclusive, "no limit in the summary".into()),
            };
            let id = if spec.init == Init::Custom && scalar {
                &UNBALANCED_ESCAPES
            } else {
                &LIMIT
            };
            results.push(result(
                id,
                &format!("init={:?}", spec.init).to_lowercase(),
                check,
            ));
        }
        if observed.as_deref() == Some("global") && !scalar {
            results.push(result(&FINAL_RATE, "method=flow", final_rate(spec, &flow)));
        }
        if scalar && spec.init == Init::Balanced && spec.init_sign == Sign::Negative {
            results.push(result(
                &ORIGIN_RATE,
                "method=flow",
                origin_rate(n, s1, &flow),
            ));
        }
        Ok(results)
    }
}

/// The predicted final-phase rate of the loss gap.
pub fn predicted_final_rate(spectrum: &[f64], depth: f64) -> f64 {
    let s1 = spectrum[0];
    let sigma_rate = 2.0 * depth * s1.powf(2.0 - 2.0 / depth);
    match spectrum.get(1) {
        Some(&s2) => sigma_rate.min(2.0 * s1.powf(1.0 - 2.0 / depth) * (s1 - s2)),
        None => sigma_rate,
    }
}

/// Fitted decay rate of the loss gap over its final phase (gaps in [1e-11, 1e-5] relative
/// to the start), against the prediction.
pub fn final_rate(spec: &DeepLinearSpec, flow: &Table) -> Check {
    let n = (spec.widths.len() - 1) as f64;
    let predicted = predicted_final_rate(&spec.spectrum, n);
    let gaps = col(flow, "loss_gap");
    let times = col(flow, "t");
    let g0 = gaps.first().copied().unwrap_or(1.0);
    let (x, y): (Vec<f64>, Vec<f64>) = times
        .iter()
        .zip(gaps)
        .filter(|(_, g)| **g > 1e-11 * g0 && **g < 1e-5 * g0)
        .map(|(t, g)| (*t, g.ln()))
        .unzip();
    if x.len() < 5 {
        return (
            Verdict::Inconclusive,
            format!(
                "{} rows in the final phase: run longer or with more outputs",
                x.len()
            ),
        );
    }
    let rate = -least_squares_slope(&x, &y);
    (
        Verdict::from_bool((rate / predicted - 1.0).abs() <= 0.1),
        format!("fitted rate {rate:.4} vs predicted {predicted:.4}"),
    )
}

/// |p(t_end)| against ((N-2)|z|t)^(-N/(N-2)) (N >= 3), or the fitted exponential rate (N = 2).
pub fn origin_rate(n: f64, z: f64, flow: &Table) -> Check {
    let times = col(flow, "t");
    let p = col(flow, "align_1");
    let (Some(&t), Some(&pt)) = (times.last(), p.last()) else {
        return (Verdict::Inconclusive, "no rows".into());
    };
    if n >= 3.0 {
        let predicted = ((n - 2.0) * z * t).powf(-n / (n - 2.0));
        let ratio = pt.abs() / predicted;
        (
            Verdict::from_bool((ratio - 1.0).abs() <= 0.05),
            format!(
                "|p({t})| = {:.4e} vs {predicted:.4e} (ratio {ratio:.4})",
                pt.abs()
            ),
        )
    } else {
        let (x, y): (Vec<f64>, Vec<f64>) = times
            .iter()
            .zip(p)
            .filter(|(t0, v)| **t0 > 0.5 * t && v.abs() > 1e-300)
            .map(|(t0, v)| (*t0, v.abs().ln()))
            .unzip();
        if x.len() < 5 {
            return (Verdict::Inconclusive, "too few rows".into());
        }
        let rate = -least_squares_slope(&x, &y);
        (
            Verdict::from_bool((rate / (2.0 * z) - 1.0).abs() <= 0.05),
            format!("fitted rate {rate:.4} vs 2|z| = {:.4}", 2.0 * z),
        )
    }
}

/// deeplinear.plateau from (sigma_0, escape time) points.
pub fn plateau(points: &[(f64, f64)], depth: f64) -> Check {
    if points.len() < 3 {
        return (Verdict::Inconclusive, "fewer than 3 escapes".into());
    }
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().map(|(s, t)| (s.ln(), t.ln())).unzip();
    let slope = least_squares_slope(&x, &y);
    let predicted = -(1.0 - 2.0 / depth);
    (
        Verdict::from_bool((slope - predicted).abs() <= 0.05),
        format!("log-log slope {slope:.4} vs {predicted:.4}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_rate_is_the_slower_of_the_two() {
        // s = (3, 2, 1), N = 3: the direction's rate 2 * 3^(1/3) * 1 beats 6 * 3^(4/3).
        let r = predicted_final_rate(&[3.0, 2.0, 1.0], 3.0);
        assert!((r - 2.0 * 3f64.powf(1.0 / 3.0)).abs() < 1e-12);
        assert!((predicted_final_rate(&[2.0], 2.0) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn plateau_slopes_are_checked() {
        let pts: Vec<(f64, f64)> = [1e-2, 1e-3, 1e-4]
            .iter()
            .map(|&s: &f64| (s, 5.0 * s.powf(-1.0 / 3.0)))
            .collect();
        assert_eq!(plateau(&pts, 3.0).0, Verdict::Pass);
        assert_eq!(plateau(&pts, 4.0).0, Verdict::Fail);
    }

    #[test]
    fn custom_scalar_chains_predict_their_limit() {
        assert_eq!(custom_scalar_limit(&[0.5, 0.6, -0.45]), Some("global"));
        assert_eq!(custom_scalar_limit(&[0.5, -0.5]), None);
        assert_eq!(custom_scalar_limit(&[1.0, 2.0]), Some("global"));
    }
}
