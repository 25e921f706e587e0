//! One module (folder) per paper; the registry maps experiment names to their entries.

pub mod deeplinear;
pub mod directional;
pub mod noise;
pub mod pmd;
pub mod sparselinear;
pub mod svrs;

use anyhow::Result;

use crate::claims::{ClaimResult, Provenance};
use crate::plot::Figure;
use crate::run::RunContext;
use crate::spec::Field;
use crate::table::Table;

/// A run as plotting sees it: rows plus what its manifest says (if it has one).
pub struct RunData {
    /// Legend label (settings that differ between the runs being overlaid).
    pub label: String,
    pub spec: Option<toml::Table>,
    pub summary: Option<serde_json::Map<String, serde_json::Value>>,
    pub rows: Table,
}

/// A claim as `lab show` documents it.
pub struct ClaimDoc {
    pub id: &'static str,
    pub statement: &'static str,
    pub provenance: Provenance,
}

/// An input an experiment can write instead of running (`lab run pmd --export-mdp FILE`).
pub struct Exporter {
    /// The long flag, without dashes.
    pub flag: &'static str,
    pub help: &'static str,
    /// Writes the input of a resolved spec to a path; returns a one-line report.
    pub write: fn(&toml::Table, &std::path::Path) -> Result<String>,
}

/// A checked, ready-to-start run: inputs loaded, settings cross-checked.
pub trait PreparedRun: Send {
    /// Runs the experiment, emitting rows and summary figures through `ctx`.
    fn run(self: Box<Self>, ctx: &mut RunContext) -> Result<()>;
}

/// An experiment: a spec type plus a run function, its claims and its plots.
pub trait Experiment: Sync {
    fn name(&self) -> &'static str;
    /// One line for `lab list`.
    fn title(&self) -> &'static str;
    /// The paper(s) it comes from.
    fn paper(&self) -> &'static str;
    /// The settings: documentation, flags and validation all come from this table.
    fn fields(&self) -> &'static [Field];
    /// Built-in defaults, one value per field.
    fn default_spec(&self) -> toml::Table;
    /// Checks cross-field constraints and loads input files. Errors are
    /// [`InputError`](crate::InputError)s (exit 2) and happen before any output is written.
    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>>;
    /// Every claim the experiment checks, for `lab show`.
    fn claim_docs(&self) -> Vec<ClaimDoc>;
    /// The claims that apply to one run, checked on its rows.
    fn check_claims(
        &self,
        spec: &toml::Table,
        rows: &Table,
        summary: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<ClaimResult>;
    /// The standard figures of one or more runs of this experiment, with the file suffix of
    /// each ("" for the main one, ".landscape" etc. for more).
    fn figures(&self, runs: &[RunData]) -> Result<Vec<(String, Figure)>>;
    /// Every claim on small instances, including those that compare several runs.
    fn verify(&self) -> Result<Vec<ClaimResult>>;
    /// Columns whose final values the end-of-run summary prints.
    fn headline_columns(&self) -> &'static [&'static str];
    /// An input the experiment can export instead of running, if any.
    fn exporter(&self) -> Option<Exporter> {
        None
    }
    /// Lines for the end-of-run summary from the run's summary figures.
    fn describe_summary(&self, summary: &serde_json::Map<String, serde_json::Value>)
    -> Vec<String>;
}

/// Every experiment, in `lab list` order.
pub fn registry() -> Vec<&'static dyn Experiment> {
    vec![
        &pmd::Pmd,
        &svrs::Svrs,
        &deeplinear::DeepLinearExperiment,
        &directional::DirectionalExperiment,
        &noise::NoiseExperiment,
        &sparselinear::SparseLinearExperiment,
    ]
}

/// Looks an experiment up by name; unknown names are input errors with a suggestion.
pub fn find(name: &str) -> Result<&'static dyn Experiment> {
    let all = registry();
    if let Some(exp) = all.iter().find(|e| e.name() == name) {
        return Ok(*exp);
    }
    let hint = crate::spec::nearest(all.iter().map(|e| e.name()), name)
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default();
    let names: Vec<&str> = all.iter().map(|e| e.name()).collect();
    Err(crate::input_error!(
        "unknown experiment '{name}'{hint}: expected one of: {}",
        names.join(", ")
    ))
}

/// A case run in memory: its resolved spec, rows and summary.
pub type Case = (
    toml::Table,
    Table,
    serde_json::Map<String, serde_json::Value>,
);

/// Runs `exp` in memory on its defaults with `overrides` (`KEY=VALUE`): the cases of
/// `lab verify` and of the tests.
pub fn run_case(exp: &dyn Experiment, overrides: &[&str]) -> Result<Case> {
    let spec = crate::spec::resolve(
        exp.name(),
        exp.fields(),
        exp.default_spec(),
        &crate::spec::SpecLayers {
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )?;
    let (rows, summary) = crate::run::run_in_memory(exp, &spec)?;
    Ok((spec, rows, summary))
}

/// The claims of one case as its manifest would list them, each labelled `label: on`.
pub fn case_claims(
    exp: &dyn Experiment,
    label: &str,
    overrides: &[&str],
) -> Result<Vec<ClaimResult>> {
    let (spec, rows, summary) = run_case(exp, overrides)?;
    let mut results = exp.check_claims(&spec, &rows, &summary);
    for r in &mut results {
        r.on = format!("{label}: {}", r.on);
    }
    Ok(results)
}
