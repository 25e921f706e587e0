//! Claims: statements from the papers (or reconstructed from them) checked on a run's rows.
//!
//! One implementation per claim serves the run manifest, `lab verify` and the tests.

use serde::{Deserialize, Serialize};

/// Where a claim comes from, so nothing reconstructed is presented as the paper's own result.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", content = "note", rename_all = "lowercase")]
pub enum Provenance {
    /// Read in a source (the note names it).
    Verified(&'static str),
    /// Reconstructed or derived by us and checked numerically; not the paper's own statement.
    Reconstructed(&'static str),
}

impl Provenance {
    pub fn tag(&self) -> &'static str {
        match self {
            Provenance::Verified(_) => "verified in source",
            Provenance::Reconstructed(_) => "reconstructed",
        }
    }

    pub fn note(&self) -> &'static str {
        match self {
            Provenance::Verified(n) | Provenance::Reconstructed(n) => n,
        }
    }
}

/// The outcome of checking a claim.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// The run does not decide it (too few iterations, not yet in the asymptotic regime).
    Inconclusive,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }

    pub fn from_bool(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Fail }
    }
}

/// A checked claim: what it says, where it comes from, the verdict and the measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimResult {
    /// Stable identifier, e.g. `pmd.finite_step`.
    pub id: String,
    /// The instance it was checked on (e.g. `divergence=euclidean`).
    pub on: String,
    pub statement: String,
    pub provenance: Provenance,
    pub verdict: Verdict,
    /// The measured figure(s) behind the verdict.
    pub measured: String,
    /// Set by `lab verify` for a case declared an expected deviation from the paper: why the
    /// claim is expected to fail there (a finding, recorded with its setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<&'static str>,
}

impl ClaimResult {
    /// Declares this result an expected deviation from the paper, with the reason.
    pub fn expect_deviation(mut self, reason: &'static str) -> ClaimResult {
        self.deviation = Some(reason);
        self
    }

    /// How `lab verify` reads the result: a FAIL declared as a deviation is expected; a
    /// declared deviation that passes is not (the record would no longer be true).
    pub fn outcome(&self) -> Outcome {
        match (self.verdict, self.deviation) {
            (Verdict::Pass, None) => Outcome::Pass,
            (Verdict::Fail, Some(_)) => Outcome::Deviates,
            (Verdict::Pass, Some(_)) => Outcome::UnexpectedPass,
            (Verdict::Fail, None) => Outcome::Fail,
            (Verdict::Inconclusive, _) => Outcome::Inconclusive,
        }
    }
}

/// A verify result as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// A declared deviation from the paper that still fails as recorded.
    Deviates,
    Fail,
    Inconclusive,
    /// A declared deviation that now passes: the record must be updated.
    UnexpectedPass,
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Deviates => "DEVIATES",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::UnexpectedPass => "UNEXPECTED PASS",
        }
    }

    /// Whether `lab verify` may exit 0 with this outcome.
    pub fn holds(&self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Deviates)
    }
}

/// A verdict with the measured figure behind it.
pub type Check = (Verdict, String);

/// A claim as `lab show` documents it.
#[derive(Debug, Clone)]
pub struct ClaimDoc {
    pub id: &'static str,
    pub statement: &'static str,
    pub provenance: Provenance,
}

/// A checked claim from its documentation, the instance and the check.
pub fn result(doc: &ClaimDoc, on: &str, check: Check) -> ClaimResult {
    ClaimResult {
        id: doc.id.to_string(),
        on: on.to_string(),
        statement: doc.statement.to_string(),
        provenance: doc.provenance.clone(),
        verdict: check.0,
        measured: check.1,
        deviation: None,
    }
}

/// Claims as a fixed-width text table (for `lab verify` and run summaries). A declared
/// deviation prints its reason after the measured figure.
pub fn render_table(results: &[ClaimResult]) -> String {
    let mut out = String::new();
    let verdict_w = results
        .iter()
        .map(|r| r.outcome().word().len())
        .max()
        .unwrap_or(7)
        .max(12);
    let id_w = results.iter().map(|r| r.id.len()).max().unwrap_or(5).max(5);
    let on_w = results.iter().map(|r| r.on.len()).max().unwrap_or(2).max(2);
    out.push_str(&format!(
        "{:<verdict_w$} {:<id_w$}  {:<on_w$}  {:<18}  measured\n",
        "verdict", "claim", "on", "source"
    ));
    for r in results {
        let deviation = r
            .deviation
            .map(|why| format!(" [expected deviation: {why}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<verdict_w$} {:<id_w$}  {:<on_w$}  {:<18}  {}{deviation}\n",
            r.outcome().word(),
            r.id,
            r.on,
            r.provenance.tag(),
            r.measured
        ));
    }
    out
}

/// Least-squares slope of y against x.
pub fn least_squares_slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(verdict: Verdict) -> ClaimResult {
        result(
            &ClaimDoc {
                id: "x.y",
                statement: "s",
                provenance: Provenance::Reconstructed("ours"),
            },
            "here",
            (verdict, "1".into()),
        )
    }

    /// The gate of `lab verify`: a declared deviation holds only while it fails as declared.
    #[test]
    fn declared_deviations_hold_only_while_they_fail() {
        let cases = [
            (Verdict::Pass, None, Outcome::Pass, true),
            (Verdict::Fail, None, Outcome::Fail, false),
            (Verdict::Inconclusive, None, Outcome::Inconclusive, false),
            (Verdict::Fail, Some("why"), Outcome::Deviates, true),
            (Verdict::Pass, Some("why"), Outcome::UnexpectedPass, false),
            (
                Verdict::Inconclusive,
                Some("why"),
                Outcome::Inconclusive,
                false,
            ),
        ];
        for (verdict, deviation, outcome, holds) in cases {
            let mut c = claim(verdict);
            if let Some(why) = deviation {
                c = c.expect_deviation(why);
            }
            assert_eq!(c.outcome(), outcome, "{verdict:?} {deviation:?}");
            assert_eq!(c.outcome().holds(), holds);
        }
        let table = render_table(&[claim(Verdict::Fail).expect_deviation("a finding")]);
        assert!(table.contains("DEVIATES") && table.contains("[expected deviation: a finding]"));
    }
}
