//! The claims of notes (c). The statements are in the paper's abstracts (verified there);
//! the optima they are checked against are the notes' derivations.

use anyhow::{Context, Result};

use super::spec::MaskKind;
use super::{SetSummary, SparseLinearExperiment};
use crate::claims::{Check, ClaimDoc, ClaimResult, Provenance, Verdict, result};
use crate::contract::{Claims, RunData};

pub const SCALAR_OUTPUT: ClaimDoc = ClaimDoc {
    id: "sparselinear.scalar_output_benign",
    statement: "With scalar output every local minimum is global for any mask: every start \
                reaches the restricted least-squares optimum",
    provenance: Provenance::Verified(
        "abstract of arXiv:2009.07439 v1; the restricted least-squares value is the notes' \
         derivation",
    ),
};

pub const DISJOINT: ClaimDoc = ClaimDoc {
    id: "sparselinear.disjoint_benign",
    statement: "With a disjoint-support first layer, dense other layers and whitened data \
                every local minimum is global: every start reaches the separable rank-one \
                optimum",
    provenance: Provenance::Verified(
        "abstract of arXiv:2009.07439 v1 (\"non-intersected\" read as disjoint supports, \
         the notes' reading); the optimum is the notes' derivation",
    ),
};

pub const SPURIOUS: ClaimDoc = ClaimDoc {
    id: "sparselinear.spurious_exists",
    statement: "With correlated data and a sparse first layer (or three outputs) a search \
                finds a spurious local minimum: starts end above the best loss and no \
                perturbed restart descends lower",
    provenance: Provenance::Verified(
        "abstract of arXiv:2009.07439 v1; the constructions are unknown, so the lab searches \
         numerically as the notes propose",
    ),
};

fn every_start_at_optimum(set: &SetSummary) -> Check {
    let Some(opt) = set.optimum else {
        return (Verdict::Inconclusive, "no optimum in closed form".into());
    };
    (
        Verdict::from_bool(set.starts_at_optimum == set.starts),
        format!(
            "{} of {} starts at L* = {opt:.10e} (best found {:.10e})",
            set.starts_at_optimum,
            set.starts,
            set.best_found.unwrap_or(f64::NAN)
        ),
    )
}

impl Claims for SparseLinearExperiment {
    const CLAIMS: &'static [ClaimDoc] = &[SCALAR_OUTPUT, DISJOINT, SPURIOUS];

    fn check_claims(run: &RunData<SparseLinearExperiment>) -> Result<Vec<ClaimResult>> {
        let spec = &run.spec;
        let mut results = Vec::new();
        let sets = run.summary.landscape.as_ref();
        let sparse = sets
            .and_then(|l| l.get("sparse").or_else(|| l.get("dense")))
            .context("the summary has no landscape")?;
        let w = &spec.widths;
        let outputs = w[w.len() - 1];
        let on = format!("mask={:?}, correlation={}", spec.mask, spec.correlation).to_lowercase();
        if outputs == 1 {
            results.push(result(&SCALAR_OUTPUT, &on, every_start_at_optimum(sparse)));
        }
        let whitened = spec.correlation == 0.0;
        if w.len() == 3 && spec.mask == MaskKind::Disjoint && whitened && outputs > 1 {
            results.push(result(&DISJOINT, &on, every_start_at_optimum(sparse)));
        }
        let sparse_first = spec.mask != MaskKind::Dense;
        if spec.correlation > 0.0 && (sparse_first || outputs >= 3) && outputs > 1 {
            let confirmed: Vec<_> = sparse
                .spurious_candidates
                .iter()
                .filter(|c| c.confirmed_minimum)
                .collect();
            let best = sparse.best_found.unwrap_or(f64::NAN);
            let check = match confirmed.first() {
                Some(c) => (
                    Verdict::Pass,
                    format!(
                        "spurious minimum at loss {:.8e} against the best found {best:.8e} \
                         ({} level(s) confirmed by {} perturbed restarts each); Hessian: {} \
                         zero mode(s) for {} rescaling symmetries, smallest other eigenvalue \
                         {:.3e}, most negative {:.1e}",
                        c.loss,
                        confirmed.len(),
                        spec.perturbations,
                        c.hessian_zero_modes,
                        c.symmetries,
                        c.hessian_smallest_positive.unwrap_or(f64::NAN),
                        c.hessian_most_negative,
                    ),
                ),
                None => (
                    Verdict::Inconclusive,
                    format!("no confirmed spurious minimum among {} starts", spec.starts),
                ),
            };
            results.push(result(&SPURIOUS, &on, check));
        }
        Ok(results)
    }
}
