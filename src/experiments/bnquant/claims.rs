//! Claims of notes 1.8, checked on a run's rows and summary. Only C-a1 is the abstract's;
//! its formulation with a shared shift, and every other claim and threshold, are ours.

use anyhow::{Result, bail};

use super::{BASELINES, BnquantExperiment};
use crate::claims::{ClaimDoc, ClaimResult, Provenance, Verdict, result};
use crate::contract::{Claims, RunData};

pub const EXACT: ClaimDoc = ClaimDoc {
    id: "bnquant.exact",
    statement: "On every channel an integer (M, C, n) with clamp((M x + C) >> n) == \
                clamp(round(A x + B)) exists and is found: zero mismatching codes, checked code \
                by code (ranges up to 2^24 codes) and certified from the staircase's runs",
    provenance: Provenance::Verified(
        "C-a1: the abstract of arXiv:2008.13128 says the fixed-point BN keeps the same outputs; \
         the (M, C, n) form, the search and both checks are our reconstruction",
    ),
};

pub const MINIMAL: ClaimDoc = ClaimDoc {
    id: "bnquant.minimal",
    statement: "The shift n is minimal on every channel: at n - 1 no integer M admits a C, by \
                exact elimination of C over every pair of codes (independent of the search's \
                window), and the found M is admissible at n",
    provenance: Provenance::Reconstructed(
        "\"optimal\" read as the smallest shift (notes 1.3); the certificate is ours",
    ),
};

pub const SMALL_SHIFT: ClaimDoc = ClaimDoc {
    id: "bnquant.small_shift",
    statement: "The minimal n stays near log2 of the code range: the median over channels of \
                n - log2(codes) is at most 6 (histogram of n in the summary)",
    provenance: Provenance::Reconstructed(
        "C-a2, ours; the notes' pre-check found median n 12 for 256 codes (notes 1.7)",
    ),
};

pub const BASELINES_MISMATCH: ClaimDoc = ClaimDoc {
    id: "bnquant.baselines_mismatch",
    statement: "At the same shift n, naive separate rounding of A and B mismatches on some \
                channel, and so does TFLite requantization with the bias in input units \
                (mean mismatch rates of every baseline reported)",
    provenance: Provenance::Reconstructed(
        "C-a3, ours: the baselines (notes 1.5) applied to batch norm",
    ),
};

pub const NETWORK_IDENTICAL: ClaimDoc = ClaimDoc {
    id: "bnquant.network_identical",
    statement: "The integer-only network with the exact BN gives integer logits identical to \
                the reference network's (batch norm in exact arithmetic, then rounded) on every \
                image, at every activation width",
    provenance: Provenance::Reconstructed(
        "C-a4, ours: the abstract's \"same outputs\" carried through a network trained here",
    ),
};

impl Claims for BnquantExperiment {
    const CLAIMS: &'static [ClaimDoc] = &[
        EXACT,
        MINIMAL,
        SMALL_SHIFT,
        BASELINES_MISMATCH,
        NETWORK_IDENTICAL,
    ];

    fn check_claims(run: &RunData<Self>) -> Result<Vec<ClaimResult>> {
        let rows = &run.rows;
        let col = |name: &str| {
            rows.num(name)
                .ok_or_else(|| anyhow::anyhow!("the rows have no numeric {name} column"))
        };
        let bits = super::bits_of(rows);
        let (n, minimal, certified, mismatches, lo, hi) = (
            col("n")?,
            col("minimal")?,
            col("runs_certified")?,
            col("exact_mismatches")?,
            col("lo")?,
            col("hi")?,
        );
        if bits.is_empty() {
            bail!("the run has no channels");
        }
        let on = |b: f64| format!("{b} bits");
        let mut widths: Vec<f64> = bits.to_vec();
        widths.sort_by(f64::total_cmp);
        widths.dedup();
        let mut out = Vec::new();
        for &k in &widths {
            let idx: Vec<usize> = (0..bits.len()).filter(|&i| bits[i] == k).collect();
            let total = idx.len();
            // A missing count (NaN) is a range certified by its runs alone.
            let failed: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| n[i].is_nan() || certified[i] != 1.0 || mismatches[i] > 0.0)
                .collect();
            let checked = idx.iter().filter(|&&i| !mismatches[i].is_nan()).count();
            let by_runs = idx.iter().filter(|&&i| certified[i] == 1.0).count();
            out.push(result(
                &EXACT,
                &on(k),
                (
                    Verdict::from_bool(failed.is_empty()),
                    format!(
                        "{} of {total} channels exact ({checked} checked code by code, \
                         {by_runs} certified by runs)",
                        total - failed.len()
                    ),
                ),
            ));
            // Empty: too many runs for the O(runs^2) certificate.
            let not_minimal = idx.iter().filter(|&&i| minimal[i] == 0.0).count();
            let uncertified = idx.iter().filter(|&&i| minimal[i].is_nan()).count();
            out.push(result(
                &MINIMAL,
                &on(k),
                (
                    if not_minimal > 0 {
                        Verdict::Fail
                    } else if uncertified > 0 {
                        Verdict::Inconclusive
                    } else {
                        Verdict::Pass
                    },
                    format!(
                        "{} of {total} channels certified minimal, {uncertified} not certified \
                         (more than 4096 runs)",
                        total - not_minimal - uncertified
                    ),
                ),
            ));
            let mut excess: Vec<f64> = idx
                .iter()
                .filter(|&&i| !n[i].is_nan())
                .map(|&i| n[i] - (hi[i] - lo[i] + 1.0).log2())
                .collect();
            excess.sort_by(f64::total_cmp);
            let median = excess.get(excess.len() / 2).copied().unwrap_or(f64::NAN);
            let max_n = idx
                .iter()
                .map(|&i| n[i])
                .filter(|v| !v.is_nan())
                .fold(f64::NAN, f64::max);
            out.push(result(
                &SMALL_SHIFT,
                &on(k),
                (
                    Verdict::from_bool(median <= 6.0),
                    format!(
                        "median n - log2(codes) = {median:.2}; max n {max_n}, max excess {:.2}",
                        excess.last().copied().unwrap_or(f64::NAN)
                    ),
                ),
            ));
            let mut rates = Vec::new();
            let mut positive = [false; 2];
            for (j, b) in BASELINES.iter().enumerate() {
                let Some(v) = rows.num(&format!("{b}_mismatches")) else {
                    continue;
                };
                let vals: Vec<(f64, f64)> = idx
                    .iter()
                    .filter(|&&i| !v[i].is_nan())
                    .map(|&i| (v[i], hi[i] - lo[i] + 1.0))
                    .collect();
                if vals.is_empty() {
                    rates.push(format!("{b} -"));
                    continue;
                }
                let rate = vals.iter().map(|(m, c)| m / c).sum::<f64>() / vals.len() as f64;
                let share =
                    vals.iter().filter(|(m, _)| *m > 0.0).count() as f64 / vals.len() as f64;
                if j < 2 {
                    positive[j] = vals.len() == total && rate > 0.0;
                }
                rates.push(format!(
                    "{b} {:.4}% of codes, {:.1}% of channels",
                    100.0 * rate,
                    100.0 * share
                ));
            }
            let compared = rows
                .num("naive_mismatches")
                .is_some_and(|v| idx.iter().all(|&i| !v[i].is_nan()));
            out.push(result(
                &BASELINES_MISMATCH,
                &on(k),
                (
                    if compared {
                        Verdict::from_bool(positive[0] && positive[1])
                    } else {
                        Verdict::Inconclusive
                    },
                    rates.join("; "),
                ),
            ));
        }
        if let Some(nets) = &run.summary.network {
            for net in nets {
                let Some(exact) = net.methods.iter().find(|m| m.method == "exact") else {
                    bail!("the network summary has no exact method");
                };
                let others: Vec<String> = net
                    .methods
                    .iter()
                    .filter(|m| m.method != "reference" && m.method != "exact")
                    .map(|m| {
                        format!(
                            "{} {} identical, {} predictions changed",
                            m.method, m.identical_logits, m.changed_predictions
                        )
                    })
                    .collect();
                out.push(result(
                    &NETWORK_IDENTICAL,
                    &format!("{} bits", net.bits),
                    (
                        Verdict::from_bool(exact.identical_logits == net.images),
                        format!(
                            "exact: {}/{} images identical; {}",
                            exact.identical_logits,
                            net.images,
                            others.join("; ")
                        ),
                    ),
                ));
            }
        }
        Ok(out)
    }
}
