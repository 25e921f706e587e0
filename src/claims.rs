//! Claims: statements from the papers (or reconstructed from them) checked on a run's rows.
//!
//! One implementation per claim serves the run manifest, `lab verify` and the tests.

use serde::Serialize;

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
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
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
}

/// A verdict with the measured figure behind it.
pub type Check = (Verdict, String);

/// A checked claim from its documentation, the instance and the check.
pub fn result(doc: &crate::experiments::ClaimDoc, on: &str, check: Check) -> ClaimResult {
    ClaimResult {
        id: doc.id.to_string(),
        on: on.to_string(),
        statement: doc.statement.to_string(),
        provenance: doc.provenance.clone(),
        verdict: check.0,
        measured: check.1,
    }
}

/// A row of claims as a fixed-width text table (for `lab verify` and run summaries).
pub fn render_table(results: &[ClaimResult]) -> String {
    let mut out = String::new();
    let id_w = results.iter().map(|r| r.id.len()).max().unwrap_or(5).max(5);
    let on_w = results.iter().map(|r| r.on.len()).max().unwrap_or(2).max(2);
    out.push_str(&format!(
        "{:<12} {:<id_w$}  {:<on_w$}  {:<18}  measured\n",
        "verdict", "claim", "on", "source"
    ));
    for r in results {
        out.push_str(&format!(
            "{:<12} {:<id_w$}  {:<on_w$}  {:<18}  {}\n",
            r.verdict.word(),
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
