//! Claims of notes section 2.6, checked on a run's rows. All are reconstructed: the paper's
//! body could not be read, so its statements are the abstract's and the update rule, the
//! measures and the thresholds are ours.

use anyhow::{Result, bail};

use super::BpsvrgExperiment;
use super::spec::Method;
use crate::claims::{Check, ClaimDoc, ClaimResult, Provenance, Verdict, result};
use crate::contract::{Claims, RunData};
use crate::table::Table;

pub const BP_BEATS_B: ClaimDoc = ClaimDoc {
    id: "bpsvrg.bp_beats_b",
    statement: "BP-SVRG's final test accuracy is at least B-SVRG's: the mean over seeds of the \
                paired difference (same start, same batches) is >= 0 (FAIL if its 95% t \
                interval lies below 0, INCONCLUSIVE if it is below 0 within the interval)",
    provenance: Provenance::Reconstructed(
        "C-b1: the abstract of arXiv:1908.06395 says BP-SVRG generalizes better than B-SVRG; \
         the BP-SVRG update (the sign switch) and the paired test are ours",
    ),
};

pub const BP_BEATS_SGD: ClaimDoc = ClaimDoc {
    id: "bpsvrg.bp_beats_sgd",
    statement: "BP-SVRG's final test accuracy is at least SGD's (the same paired test); the \
                abstract claims it only in some settings",
    provenance: Provenance::Reconstructed(
        "C-b2: the abstract says \"even SGD in some scenarios\"; the update and the test are ours",
    ),
};

pub const DIRECTION_VARIANCE: ClaimDoc = ClaimDoc {
    id: "bpsvrg.direction_variance",
    statement: "At every epoch's end, the variance over mini-batches of BP-SVRG's direction is \
                above SGD's at the same point and batch size, and B-SVRG's below: computed \
                exactly from per-sample gradients at w and the snapshot (eval mode)",
    provenance: Provenance::Reconstructed(
        "C-b4, ours: v = g_S(w) + c (g_S(w~) - mu~) has variance k (Var g + 2c Cov(g, g~) + \
         c^2 Var g~), above Var g for c = +1 while Cov > -Var g~ / 2 and below it for c = -1 \
         while Cov > Var g~ / 2; exact without batch norm, an eval-mode stand-in with it",
    ),
};

pub const SVRG_REDUCES_VARIANCE: ClaimDoc = ClaimDoc {
    id: "bpsvrg.svrg_reduces_variance",
    statement: "At every epoch's end, SVRG's direction (one sample) has a lower variance than \
                SGD's with one sample at the same point (the premise of variance reduction)",
    provenance: Provenance::Reconstructed(
        "Johnson & Zhang 2013 reduce the variance near the snapshot; with Cov(g, g~) < Var g~ / \
         2, far from it, the variance grows instead (our derivation, as for the claim above)",
    ),
};

pub const FLATNESS_ORDERS_GAP: ClaimDoc = ClaimDoc {
    id: "bpsvrg.flatness_orders_gap",
    statement: "The average per-sample gradient norm orders the methods as their \
                generalization gaps (test minus train loss) do: Spearman rho > 0 between the \
                methods' mean final values (rho of the norm of the mean gradient reported)",
    provenance: Provenance::Reconstructed(
        "C-b5: the abstract proposes both metrics as flatness and generalization indicators; \
         the direction (larger norm, larger gap) and the test are ours",
    ),
};

/// The final value of `column` of each seed of `method`, in seed order.
pub fn finals(rows: &Table, method: &str, column: &str) -> Result<Vec<f64>> {
    let (Some(m), Some(seed), Some(epoch), Some(v)) = (
        rows.text("method"),
        rows.num("seed"),
        rows.num("epoch"),
        rows.num(column),
    ) else {
        bail!("the rows have no method, seed, epoch or {column} column");
    };
    let mut last: Vec<(f64, f64, f64)> = Vec::new();
    for i in 0..m.len() {
        if m[i] != method {
            continue;
        }
        match last.iter_mut().find(|(s, _, _)| *s == seed[i]) {
            Some(entry) if epoch[i] >= entry.1 => *entry = (seed[i], epoch[i], v[i]),
            Some(_) => {}
            None => last.push((seed[i], epoch[i], v[i])),
        }
    }
    last.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(last.into_iter().map(|(_, _, v)| v).collect())
}

/// Two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean and 95% t interval half-width (NaN width for one value).
pub fn mean_ci95(x: &[f64]) -> (f64, f64) {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T95.get(n - 2).copied().unwrap_or(1.96);
    (mean, t * (var / n as f64).sqrt())
}

/// Ranks (1-based, ties averaged).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = rank;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson's of the ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// The paired comparison of final test accuracies: a minus b, per seed.
pub fn check_at_least(a: &[f64], b: &[f64], names: (&str, &str)) -> Check {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (mean, half) = mean_ci95(&diff);
    let (ma, _) = mean_ci95(a);
    let (mb, _) = mean_ci95(b);
    let verdict = if mean >= 0.0 {
        Verdict::Pass
    } else if mean + half < 0.0 {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    (
        verdict,
        format!(
            "test accuracy {} {ma:.4} against {} {mb:.4}: difference {mean:+.4} (95% CI \
             [{:+.4}, {:+.4}], {} seeds)",
            names.0,
            names.1,
            mean - half,
            mean + half,
            diff.len()
        ),
    )
}

/// Rows after epoch 0 where the method's direction variance is on the wrong side of SGD's.
pub fn check_direction(rows: &Table, method: &str, above: bool) -> Result<Check> {
    let (Some(m), Some(epoch), Some(dir), Some(sgd)) = (
        rows.text("method"),
        rows.num("epoch"),
        rows.num("dir_var"),
        rows.num("dir_var_sgd"),
    ) else {
        bail!("the rows have no dir_var or dir_var_sgd column");
    };
    let (mut checked, mut wrong, mut ratios) = (0, 0, Vec::new());
    for i in 0..m.len() {
        if m[i] != method || epoch[i] < 1.0 || !dir[i].is_finite() {
            continue;
        }
        checked += 1;
        ratios.push(dir[i] / sgd[i]);
        if (dir[i] > sgd[i]) != above {
            wrong += 1;
        }
    }
    if checked == 0 {
        return Ok((
            Verdict::Inconclusive,
            "no epoch after the first snapshot".into(),
        ));
    }
    ratios.sort_by(f64::total_cmp);
    Ok((
        Verdict::from_bool(wrong == 0),
        format!(
            "{} in {wrong} of {checked} epoch ends; its variance / SGD's: median {:.3}, range \
             [{:.3}, {:.3}]",
            if above { "not above" } else { "not below" },
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        ),
    ))
}

impl Claims for BpsvrgExperiment {
    const CLAIMS: &'static [ClaimDoc] = &[
        BP_BEATS_B,
        BP_BEATS_SGD,
        DIRECTION_VARIANCE,
        SVRG_REDUCES_VARIANCE,
        FLATNESS_ORDERS_GAP,
    ];

    fn check_claims(run: &RunData<BpsvrgExperiment>) -> Result<Vec<ClaimResult>> {
        let spec = &run.spec;
        let on = format!(
            "{:?}, {:?}, batch {}, lr {} {:?}, {} epochs",
            spec.dataset, spec.model, spec.batch, spec.lr, spec.lr_schedule, spec.epochs
        )
        .to_lowercase();
        let has = |m: Method| spec.method.contains(&m);
        let acc = |m: Method| finals(&run.rows, m.name(), "test_acc");
        let mut out = Vec::new();
        if has(Method::Bpsvrg) && has(Method::Bsvrg) {
            let check = check_at_least(
                &acc(Method::Bpsvrg)?,
                &acc(Method::Bsvrg)?,
                ("bpsvrg", "bsvrg"),
            );
            out.push(result(&BP_BEATS_B, &on, check));
        }
        if has(Method::Bpsvrg) && has(Method::Sgd) {
            let check =
                check_at_least(&acc(Method::Bpsvrg)?, &acc(Method::Sgd)?, ("bpsvrg", "sgd"));
            out.push(result(&BP_BEATS_SGD, &on, check));
        }
        for (m, above, claim) in [
            (Method::Bpsvrg, true, &DIRECTION_VARIANCE),
            (Method::Bsvrg, false, &DIRECTION_VARIANCE),
            (Method::Svrg, false, &SVRG_REDUCES_VARIANCE),
        ] {
            if has(m) {
                let check = check_direction(&run.rows, m.name(), above)?;
                out.push(result(claim, &format!("{on}, {}", m.name()), check));
            }
        }
        if spec.method.len() >= 3 {
            let mut norm = Vec::new();
            let mut mean_grad = Vec::new();
            let mut gap = Vec::new();
            for m in &spec.method {
                norm.push(mean_ci95(&finals(&run.rows, m.name(), "mean_norm")?).0);
                mean_grad.push(mean_ci95(&finals(&run.rows, m.name(), "norm_mean")?).0);
                gap.push(mean_ci95(&finals(&run.rows, m.name(), "gap_loss")?).0);
            }
            let rho = spearman(&norm, &gap);
            let rho2 = spearman(&mean_grad, &gap);
            out.push(result(
                &FLATNESS_ORDERS_GAP,
                &on,
                (
                    Verdict::from_bool(rho > 0.0),
                    format!(
                        "rho(average per-sample gradient norm, gap) = {rho:.2}; rho(norm of the \
                         average gradient, gap) = {rho2:.2}; over {} methods",
                        spec.method.len()
                    ),
                ),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_maps_is_one_and_ties_average() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn the_t_interval_matches_a_hand_computation() {
        // Mean 2, sample sd 1, n = 5: half-width 2.776 / sqrt(5).
        let (m, h) = mean_ci95(&[1.0, 2.0, 3.0, 1.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12);
        assert!((h - 2.776 * 1.0 / 5f64.sqrt()).abs() < 1e-12);
    }
}
