//! Claims of notes (b), checked on a run's rows. The paper's theorems could not be read: the
//! rates here are the notes' *derived* control rates for population logistic (and
//! exponential) loss, not the paper's, and the two-node form is our choice.

use super::model::Network;
use anyhow::Result;

use super::spec::{Init, Method, Model};
use super::{DirectionalExperiment, Theory, network, population};
use crate::claims::{
    Check, ClaimDoc, ClaimResult, Provenance, Verdict, least_squares_slope, result,
};
use crate::contract::{Claims, RunData};
use crate::table::Table;

pub const CONVERGES: ClaimDoc = ClaimDoc {
    id: "directional.converges",
    statement: "The direction converges to w*: the angle falls below 1e-3 of its start and \
                decreases over the second half of the run (linear networks, or both units of \
                the two-node network, each to sign(v_k) w*)",
    provenance: Provenance::Verified(
        "abstract of arXiv:2105.03879: directional convergence for two-node and (deep) \
         linear networks; checked here on our population setting",
    ),
};

pub const ANGLE_RATE: ClaimDoc = ClaimDoc {
    id: "directional.angle_rate",
    statement: "Late in the flow of a balanced linear network, -d log(theta)/dt = \
                tau r^(1-2/N) with tau = -2 l'(0) E[rho] / pi (median ratio over the last \
                quarter within 1% of 1)",
    provenance: Provenance::Reconstructed(
        "notes (b), derived baseline rates (tangential gradient ~ theta/sqrt(2 pi) for \
         Gaussian logistic; end-to-end flow of Arora et al.)",
    ),
};

pub const NORM_EXPONENT: ClaimDoc = ClaimDoc {
    id: "directional.norm_exponent",
    statement: "The predictor's norm grows like ((N+2) K t)^(N/(N+2)): over the last half of \
                the flow the log-log slope of r is within 0.03 of N/(N+2) and r^((N+2)/N) \
                grows at (N+2) K within 2%",
    provenance: Provenance::Reconstructed(
        "notes (b), derived: r ~ ((N+2) K t)^(N/(N+2)), K = 2 p(0) int m (-l'(m)) dm",
    ),
};

pub const ANGLE_LAW: ClaimDoc = ClaimDoc {
    id: "directional.angle_law",
    statement: "log(theta) ~ -c t^(2N/(N+2)) with c = tau ((N+2) K)^((N-2)/(N+2)) (N+2)/(2N): \
                c = 0.477 for the Gaussian logistic linear predictor, exp(-t/sqrt(2 pi)) at \
                depth 2; the coefficient fitted over the last half within 5%",
    provenance: Provenance::Reconstructed(
        "notes (b), derived baseline rates (N = 1: theta ~ exp(-0.477 t^(2/3)); N = 2: \
         exponential; N >= 3: super-exponential)",
    ),
};

pub const CONSERVED: ClaimDoc = ClaimDoc {
    id: "directional.conserved",
    statement: "The flow conserves the layer balance D_j of a linear network and ||w_k||^2 - \
                v_k^2 of a two-node network with a trained second layer (drift below 1e-6 of \
                the final norm squared)",
    provenance: Provenance::Reconstructed(
        "notes, shared facts: conservation law of homogeneous networks (Du, Hu & Lee 2018)",
    ),
};

/// The flow rows of a run (or gd/online rows when asked).
fn rows_of(rows: &Table, method: Method) -> Option<Table> {
    let methods = rows.text("method")?;
    let keep: Vec<bool> = methods.iter().map(|m| m == method.name()).collect();
    let picked = rows.filter(|i| keep[i]);
    (picked.len() >= 8).then_some(picked)
}

fn column<'a>(rows: &'a Table, name: &str) -> &'a [f64] {
    rows.num(name).unwrap_or(&[])
}

/// The rows from fraction `from` of the run on whose angle is still resolved (above 1e-280,
/// before underflow) and positive time.
fn late(rows: &Table, from: f64) -> Vec<(f64, f64, f64)> {
    let (t, angle, norm) = (
        column(rows, "t"),
        column(rows, "angle"),
        column(rows, "norm"),
    );
    let t_end = t.last().copied().unwrap_or(0.0);
    t.iter()
        .zip(angle)
        .zip(norm)
        .filter(|((t, a), _)| **t >= from * t_end && **t > 0.0 && **a > 1e-280)
        .map(|((t, a), r)| (*t, *a, *r))
        .collect()
}

/// PASS within `tolerance`; outside it, INCONCLUSIVE when the estimate over the last quarter
/// is nearer the prediction than over the last half by a tenth of the tolerance (still
/// approaching: run longer), FAIL otherwise.
fn approach(
    half_error: f64,
    quarter_error: f64,
    tolerance: f64,
    measured: String,
    quarter: String,
) -> Check {
    if half_error.abs() < tolerance {
        (Verdict::Pass, measured)
    } else if quarter_error.abs() < half_error.abs() - 0.1 * tolerance {
        (
            Verdict::Inconclusive,
            format!("{measured}; still approaching (last quarter: {quarter}): run longer"),
        )
    } else {
        (Verdict::Fail, measured)
    }
}

pub fn check_converges(rows: &Table) -> Check {
    let angle = column(rows, "angle");
    let t = column(rows, "t");
    if angle.len() < 4 {
        return (Verdict::Inconclusive, "fewer than 4 rows".into());
    }
    let (first, last) = (angle[0], angle[angle.len() - 1]);
    let half = t[t.len() - 1] / 2.0;
    let second: Vec<f64> = t
        .iter()
        .zip(angle)
        .filter(|(t, _)| **t >= half)
        .map(|(_, a)| *a)
        .collect();
    let increases = second
        .windows(2)
        .filter(|w| w[1] > w[0] * (1.0 + 1e-9))
        .count();
    let ratio = last / first;
    let measured = format!(
        "angle {first:.3e} -> {last:.3e} rad (ratio {ratio:.2e}); {increases} increase(s) \
         over the second half"
    );
    (Verdict::from_bool(ratio < 1e-3 && increases == 0), measured)
}

pub fn check_angle_rate(rows: &Table, theory: &Theory) -> Check {
    let late = late(rows, 0.75);
    if late.len() < 4 {
        return (
            Verdict::Inconclusive,
            "fewer than 4 late rows with a resolved angle".into(),
        );
    }
    let mut ratios: Vec<f64> = late
        .windows(2)
        .map(|w| {
            let measured = -(w[1].1.ln() - w[0].1.ln()) / (w[1].0 - w[0].0);
            let r = (w[0].2 * w[1].2).sqrt();
            measured / theory.angle_rate(r)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    (
        Verdict::from_bool((median - 1.0).abs() < 0.01),
        format!(
            "-dlog(theta)/dt / (tau r^(1-2/N)) = {median:.5} (median of {}), tau = {:.5}",
            ratios.len(),
            theory.tau
        ),
    )
}

/// The log-log slope of r and the growth rate of r^((N+2)/N) from `from` of the run on.
fn norm_fits(rows: &Table, theory: &Theory, from: f64) -> Option<(f64, f64)> {
    let late = late(rows, from);
    if late.len() < 4 {
        return None;
    }
    let x: Vec<f64> = late.iter().map(|p| p.0.ln()).collect();
    let y: Vec<f64> = late.iter().map(|p| p.2.ln()).collect();
    let slope = least_squares_slope(&x, &y);
    // r^((N+2)/N) = (N+2) K t + C: the offset C left by the early phase biases the log-log
    // slope like C / t, but not this growth rate.
    let power = 1.0 / theory.norm_exponent;
    let t: Vec<f64> = late.iter().map(|p| p.0).collect();
    let grown: Vec<f64> = late.iter().map(|p| p.2.powf(power)).collect();
    Some((slope, least_squares_slope(&t, &grown)))
}

pub fn check_norm_exponent(rows: &Table, theory: &Theory) -> Check {
    let (Some((slope, rate)), Some((slope_q, rate_q))) =
        (norm_fits(rows, theory, 0.5), norm_fits(rows, theory, 0.75))
    else {
        return (Verdict::Inconclusive, "fewer than 4 late rows".into());
    };
    let predicted = (theory.depth as f64 + 2.0) * theory.k;
    // One error in units of each tolerance (0.03 on the slope, 2% on the rate).
    let error = |s: f64, r: f64| {
        ((s - theory.norm_exponent) / 0.03)
            .abs()
            .max(((r / predicted - 1.0) / 0.02).abs())
    };
    approach(
        error(slope, rate),
        error(slope_q, rate_q),
        1.0,
        format!(
            "log-log slope {slope:.4} against N/(N+2) = {:.4}; r^((N+2)/N) grows at {rate:.5} \
             against (N+2) K = {predicted:.5}",
            theory.norm_exponent
        ),
        format!("{slope_q:.4}, {rate_q:.5}"),
    )
}

fn angle_coefficient(rows: &Table, theory: &Theory, from: f64) -> Option<f64> {
    let late = late(rows, from);
    if late.len() < 4 {
        return None;
    }
    let x: Vec<f64> = late
        .iter()
        .map(|q| q.0.powf(theory.angle_exponent))
        .collect();
    let y: Vec<f64> = late.iter().map(|q| q.1.ln()).collect();
    Some(-least_squares_slope(&x, &y))
}

pub fn check_angle_law(rows: &Table, theory: &Theory) -> Check {
    let (Some(c), Some(c_q)) = (
        angle_coefficient(rows, theory, 0.5),
        angle_coefficient(rows, theory, 0.75),
    ) else {
        return (
            Verdict::Inconclusive,
            "fewer than 4 late rows with a resolved angle".into(),
        );
    };
    let relative = c / theory.angle_coefficient - 1.0;
    approach(
        relative,
        c_q / theory.angle_coefficient - 1.0,
        0.05,
        format!(
            "log(theta) against t^{:.4}: coefficient {c:.5} against {:.5} ({:+.2}%)",
            theory.angle_exponent,
            theory.angle_coefficient,
            100.0 * relative
        ),
        format!("{c_q:.5}"),
    )
}

pub fn check_conserved(rows: &Table) -> Check {
    let (drift, norm) = (column(rows, "drift"), column(rows, "norm"));
    let Some(worst) = drift
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .reduce(f64::max)
    else {
        return (Verdict::Inconclusive, "no conserved quantity".into());
    };
    let scale = norm.last().map_or(1.0, |r| r * r).max(1.0);
    (
        Verdict::from_bool(worst <= 1e-6 * scale),
        format!("largest drift {worst:.2e} (final norm^2 {scale:.3e})"),
    )
}

impl Claims for DirectionalExperiment {
    const CLAIMS: &'static [ClaimDoc] =
        &[CONVERGES, ANGLE_RATE, NORM_EXPONENT, ANGLE_LAW, CONSERVED];

    /// The claims that apply to a run: convergence of every method's flow rows, and the rate
    /// laws on the flow of a linear network from a balanced start (the end-to-end reduction
    /// needs balance).
    fn check_claims(run: &RunData<DirectionalExperiment>) -> Result<Vec<ClaimResult>> {
        let (spec, rows) = (&run.spec, &run.rows);
        let mut out = Vec::new();
        // The claims are about the flow: a run without it has none to check.
        if !spec.method.contains(&Method::Flow) {
            return Ok(out);
        }
        let on = |what: &str| format!("flow, {what}");
        let describe = match spec.model {
            Model::Linear => format!("depth {}, {:?} {:?}", spec.depth, spec.law, spec.loss),
            Model::TwoNode => format!("two-node, {:?} {:?}", spec.law, spec.loss),
        }
        .to_lowercase();
        let Some(flow) = rows_of(rows, Method::Flow) else {
            let few = (
                Verdict::Inconclusive,
                "fewer than 8 rows of the flow: run with more outputs".into(),
            );
            out.push(result(&CONVERGES, &on(&describe), few));
            return Ok(out);
        };
        out.push(result(&CONVERGES, &on(&describe), check_converges(&flow)));
        let conserves = match network(spec) {
            Network::Linear { widths } => widths.len() > 2,
            Network::TwoNode { train_second, .. } => train_second,
        };
        if conserves {
            out.push(result(&CONSERVED, &on(&describe), check_conserved(&flow)));
        }
        if spec.model == Model::Linear && (spec.init == Init::Balanced || spec.depth == 1) {
            let theory = Theory::new(&population(spec), spec.depth);
            out.push(result(
                &ANGLE_RATE,
                &on(&describe),
                check_angle_rate(&flow, &theory),
            ));
            out.push(result(
                &NORM_EXPONENT,
                &on(&describe),
                check_norm_exponent(&flow, &theory),
            ));
            out.push(result(
                &ANGLE_LAW,
                &on(&describe),
                check_angle_law(&flow, &theory),
            ));
        }
        Ok(out)
    }
}
