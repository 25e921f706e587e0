//! `lab verify sparselinear`: each claim on a small instance. The tests call the same cases.

use anyhow::Result;

use super::SparseLinearExperiment;
use crate::claims::ClaimResult;
use crate::experiments::Experiment;
use crate::run::run_in_memory;
use crate::spec::{SpecLayers, resolve};
use crate::table::Table;

pub const CASES: &[(&str, &[&str])] = &[
    (
        "scalar output, random mask, correlated",
        &[
            "widths=6,3,1",
            "mask=random",
            "correlation=0.7",
            "starts=100",
        ],
    ),
    ("disjoint first layer, whitened", &["starts=100"]),
    (
        "disjoint first layer, correlated",
        &["correlation=0.9", "starts=100"],
    ),
];

pub fn run_case(
    settings: &[&str],
) -> Result<(
    toml::Table,
    Table,
    serde_json::Map<String, serde_json::Value>,
)> {
    let exp = SparseLinearExperiment;
    let spec = resolve(
        "sparselinear",
        exp.fields(),
        exp.default_spec(),
        &SpecLayers {
            overrides: settings.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )?;
    let (rows, summary) = run_in_memory(&exp, &spec)?;
    Ok((spec, rows, summary))
}

pub fn single_run(label: &str, settings: &[&str]) -> Result<Vec<ClaimResult>> {
    let (spec, rows, summary) = run_case(settings)?;
    let mut results = SparseLinearExperiment.check_claims(&spec, &rows, &summary);
    for r in &mut results {
        r.on = format!("{label}: {}", r.on);
    }
    Ok(results)
}

pub fn verify() -> Result<Vec<ClaimResult>> {
    let mut results = Vec::new();
    for (label, settings) in CASES {
        results.extend(single_run(label, settings)?);
    }
    Ok(results)
}
