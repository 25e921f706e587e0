//! The contract between the runner and an experiment, below both.
//!
//! An experiment declares a serde spec ([`Settings`]: its field table, the one source of
//! flags, `lab show`, ranges and "did you mean", and its cross-field checks) and a typed
//! summary ([`Report`]), and implements [`Experiment`] (`prepare`, `run`), [`Claims`],
//! [`Figures`] and [`Verify`], each handed the spec already parsed and validated ([`Valid`],
//! the validated-parameters pattern of linfa). One generic adapter ([`Typed`]) turns any such
//! experiment into the [`AnyExperiment`] the registry lists and the runner drives, so no
//! experiment repeats the glue.
//!
//! Layers, lowest first: the foundations (`table`, `spec`, `claims`, `random`, `manifest`,
//! `data`, `memory`, `plot`, `vector`, `flow`, `linear_net`, `nn`) < `contract` < `run` (files on
//! disk) and `experiments` (the papers) < `cli`, `commands`. Nothing here or below names
//! `crate::experiments` or `crate::run` (`tests/layers.rs` checks).

mod context;
mod progress;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::context::{
    Attachment, Cancel, ColumnKind, ColumnSpec, Interrupted, Job, NonFinite, NullSink, RowSink,
    RunContext, panic_text,
};
pub use self::progress::Progress;
use crate::claims::{ClaimDoc, ClaimResult};
use crate::input_error;
use crate::plot::Figure;
use crate::random::Streams;
use crate::spec::{Field, SpecLayers};
use crate::table::Table;

/// The settings of an experiment: its spec struct, next to its field table.
pub trait Settings: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// Documentation, flags, ranges and "did you mean" all come from this table.
    const FIELDS: &'static [Field];

    /// Cross-field checks the field table cannot express; errors are input errors (exit 2).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// What a run reports besides its rows (the manifest's `summary`). Fields are options filled
/// in as the run goes, so a stopped run still reports what it had.
pub trait Report: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// Lines for the end-of-run report.
    fn describe(&self) -> Vec<String>;
}

/// The context a run of `E` gets: streams, rows, progress, cancel, and its summary.
pub type Ctx<'a, E> = RunContext<'a, <E as Experiment>::Summary>;

/// An experiment: a typed spec and summary, and a run function. Its claims, figures and
/// verify cases are the traits [`Claims`], [`Figures`] and [`Verify`], each implemented in
/// the experiment's file of that name.
pub trait Experiment: Sized + Send + Sync + 'static {
    type Spec: Settings;
    type Summary: Report;
    /// What `prepare` loads before any output is written (data, an MDP file).
    type Inputs: Send;

    const NAME: &'static str;
    /// One line for `lab list`.
    const TITLE: &'static str;
    /// The paper(s) it comes from.
    const PAPER: &'static str;
    /// An input the experiment can write instead of running (`lab run pmd --export-mdp FILE`).
    const EXPORT: Option<Export<Self>> = None;

    /// Loads inputs and checks what needs them (a problem's size against memory). Runs
    /// before any output is written; errors are input errors (exit 2).
    fn prepare(spec: &Valid<Self>) -> Result<Self::Inputs>;

    /// The run: rows through `ctx`, figures into `ctx.summary`.
    fn run(spec: &Valid<Self>, inputs: Self::Inputs, ctx: &mut Ctx<Self>) -> Result<()>;
}

/// The claims of an experiment, checked on one finished run.
pub trait Claims: Experiment {
    /// Every claim the experiment checks, for `lab show`.
    const CLAIMS: &'static [ClaimDoc];

    /// The claims that apply to the run. A claim whose inputs are missing is an error,
    /// never a silently shorter list.
    fn check_claims(run: &RunData<Self>) -> Result<Vec<ClaimResult>>;
}

/// The standard figures of one or more runs, with the file suffix of each ("" for the main
/// one, ".landscape" etc. for more).
pub trait Figures: Experiment {
    fn figures(runs: &[RunData<Self>]) -> Result<Vec<(String, Figure)>>;
}

/// A verify case: a label, and the settings (`KEY=VALUE`) it changes from the defaults.
pub type VerifyCase = (&'static str, &'static [&'static str]);

/// A claim that does not reproduce on a verify case, recorded as a finding: (case label,
/// claim id, why). `lab verify` prints it as DEVIATES while it fails, and as an error once it
/// passes (the record would no longer be true).
pub type Deviation = (&'static str, &'static str, &'static str);

/// A claim that fails on a spec file of `experiments/`, recorded as a finding: (the file's
/// stem, claim id, why). The test that runs every spec file accepts exactly these failures,
/// and fails once a recorded one passes (the record would no longer be true).
pub type Finding = (&'static str, &'static str, &'static str);

/// Every claim on small instances, including those that compare several runs.
pub trait Verify: Claims {
    /// Runs of the defaults with these settings, each checked for the claims that apply.
    const CASES: &'static [VerifyCase] = &[];
    /// Claims expected to deviate from the paper on a case.
    const DEVIATIONS: &'static [Deviation] = &[];
    /// Claims that fail on spec files, as recorded findings.
    const FINDINGS: &'static [Finding] = &[];

    /// The claims of every case (an experiment adds the claims that compare several runs).
    fn verify() -> Result<Vec<ClaimResult>> {
        verify_cases::<Self>()
    }
}

/// The claims of an experiment's verify cases, each labelled with its case, with the declared
/// deviations marked.
pub fn verify_cases<E: Verify>() -> Result<Vec<ClaimResult>> {
    let mut out = Vec::new();
    for (label, settings) in E::CASES {
        for claim in run_case::<E>(settings)?.claims(label)? {
            let declared = E::DEVIATIONS
                .iter()
                .find(|(case, id, _)| case == label && *id == claim.id);
            out.push(match declared {
                Some((_, _, why)) => claim.expect_deviation(why),
                None => claim,
            });
        }
    }
    Ok(out)
}

/// An experiment with all its parts: what the registry lists.
pub trait Paper: Figures + Verify {}

impl<E: Figures + Verify> Paper for E {}

/// An input an experiment writes instead of running.
pub struct Export<E: Experiment> {
    /// The long flag, without dashes.
    pub flag: &'static str,
    pub help: &'static str,
    /// Writes the input of a spec to a path; returns a one-line report.
    pub write: fn(&Valid<E>, &Path) -> Result<String>,
}

/// A spec that has been parsed and validated: the only way an experiment receives one.
pub struct Valid<E: Experiment> {
    spec: E::Spec,
    /// The resolved settings as a table (what the manifest saves).
    table: toml::Table,
    streams: Streams,
}

impl<E: Experiment> Clone for Valid<E> {
    fn clone(&self) -> Self {
        Valid {
            spec: self.spec.clone(),
            table: self.table.clone(),
            streams: self.streams,
        }
    }
}

impl<E: Experiment> std::ops::Deref for Valid<E> {
    type Target = E::Spec;
    fn deref(&self) -> &E::Spec {
        &self.spec
    }
}

impl<E: Experiment> Valid<E> {
    /// Parses resolved settings into the typed spec and runs the cross-field checks.
    pub fn new(table: toml::Table) -> Result<Valid<E>> {
        let spec: E::Spec = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| input_error!("{} spec: {e}", E::NAME))?;
        spec.validate()?;
        Ok(Valid {
            spec,
            streams: Streams::new(seed_of(&table)),
            table,
        })
    }

    /// The defaults with `KEY=VALUE` overrides, checked like the command line.
    pub fn with(overrides: &[&str]) -> Result<Valid<E>> {
        let table = crate::spec::resolve(
            E::NAME,
            <E::Spec as Settings>::FIELDS,
            default_table::<E>(),
            &SpecLayers {
                overrides: overrides.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )?;
        Valid::new(table)
    }

    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    /// The random streams of this spec's seed.
    pub fn streams(&self) -> Streams {
        self.streams
    }
}

/// The seed of resolved settings (its `seed` field; 0 if the experiment has none).
pub fn seed_of(spec: &toml::Table) -> u64 {
    spec.get("seed")
        .and_then(|v| v.as_integer())
        .map_or(0, |s| s as u64)
}

fn default_table<E: Experiment>() -> toml::Table {
    toml::Table::try_from(E::Spec::default()).expect("the default spec serializes to a table")
}

/// A run as its figures see it: rows, the validated spec and the summary from its manifest.
pub struct RunData<E: Experiment> {
    /// The settings that differ between the runs being overlaid (empty for one run).
    pub key: crate::plot::Key,
    pub spec: Valid<E>,
    pub summary: E::Summary,
    pub rows: Table,
}

impl<E: Experiment> RunData<E> {
    /// `divergence=kl, eta=10`: the run's part of a legend label.
    pub fn label(&self) -> String {
        crate::plot::key_label(&self.key)
    }

    /// `.divergence=kl_eta=10`: the file-name part of a run's own figures when several runs
    /// are plotted one figure each (empty when `alone`).
    pub fn file_tag(&self, alone: bool) -> String {
        if alone {
            return String::new();
        }
        let label: String = self
            .label()
            .chars()
            .filter_map(|c| match c {
                ',' => None,
                ' ' | '/' | '\\' | '"' => Some('_'),
                c => Some(c),
            })
            .collect();
        // Many differing settings would make a name longer than a file system takes: cut
        // it, and keep it distinct with a hash of the whole.
        if label.len() > 100 {
            let cut: String = label.chars().take(80).collect();
            return format!(".{cut}-{:016x}", crate::random::stable_hash(&label));
        }
        format!(".{label}")
    }

    /// A random stream of the run's seed, for a figure that redraws something (a slice).
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        self.spec.streams().rng(component)
    }
}

impl<E: Experiment> crate::plot::LabelledRows for RunData<E> {
    fn key(&self) -> &[(String, String)] {
        &self.key
    }
    fn rows(&self) -> &Table {
        &self.rows
    }
}

/// A run read back from disk, before its experiment parses it (`lab plot`).
pub struct StoredRun {
    /// The settings that tell it apart from the other runs of the figure.
    pub key: crate::plot::Key,
    /// The manifest it was read from, for error messages.
    pub manifest_path: PathBuf,
    pub spec: toml::Table,
    pub summary: serde_json::Map<String, serde_json::Value>,
    pub rows: Table,
}

/// The summary as manifest JSON: fields not (yet) set are left out.
fn summary_json<S: Serialize>(summary: &S) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(summary) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.retain(|_, v| !v.is_null());
            map
        }
        _ => serde_json::Map::new(),
    }
}

/// What the registry lists and the runner drives: any [`Experiment`] through [`Typed`].
pub trait AnyExperiment: Sync {
    fn name(&self) -> &'static str;
    fn title(&self) -> &'static str;
    fn paper(&self) -> &'static str;
    fn fields(&self) -> &'static [Field];
    fn claim_docs(&self) -> &'static [ClaimDoc];
    /// Built-in defaults, one value per field.
    fn default_spec(&self) -> toml::Table;
    /// The flag and help of the experiment's export, if it has one.
    fn export_flag(&self) -> Option<(&'static str, &'static str)>;
    /// Writes the experiment's input of these settings to `path`.
    fn export(&self, spec: &toml::Table, path: &Path) -> Result<String>;
    /// Parses, validates and prepares a run: every input error happens here.
    /// Checks resolved settings as a run would (types, cross-field rules), loading nothing.
    fn validate(&self, spec: &toml::Table) -> Result<()>;
    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>>;
    /// The standard figures of runs read from disk.
    fn figures(&self, runs: Vec<StoredRun>) -> Result<Vec<(String, Figure)>>;
    fn verify(&self) -> Result<Vec<ClaimResult>>;
    /// The claims recorded as failing on spec files.
    fn findings(&self) -> &'static [Finding];
}

/// A checked, ready-to-start run, holding its typed spec and summary.
pub trait PreparedRun: Send {
    /// Runs it.
    fn run(&mut self, plumbing: Plumbing) -> Ran;
    /// The summary as it stands, for the manifest.
    fn summary(&self) -> serde_json::Map<String, serde_json::Value>;
    /// The claims of the finished run (the rows are lent and handed back).
    fn check_claims(&self, rows: &mut Table) -> Result<Vec<ClaimResult>>;
    /// The standard figures of the run (the rows are lent and handed back).
    fn figures(&self, rows: &mut Table) -> Result<Vec<(String, Figure)>>;
    fn describe(&self) -> Vec<String>;
}

/// The adapter from a typed experiment to [`AnyExperiment`].
pub struct Typed<E>(PhantomData<E>);

impl<E: Paper> Typed<E> {
    pub const ENTRY: Typed<E> = Typed(PhantomData);
}

impl<E: Paper> AnyExperiment for Typed<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn title(&self) -> &'static str {
        E::TITLE
    }
    fn paper(&self) -> &'static str {
        E::PAPER
    }
    fn fields(&self) -> &'static [Field] {
        <E::Spec as Settings>::FIELDS
    }
    fn claim_docs(&self) -> &'static [ClaimDoc] {
        E::CLAIMS
    }
    fn default_spec(&self) -> toml::Table {
        default_table::<E>()
    }
    fn export_flag(&self) -> Option<(&'static str, &'static str)> {
        E::EXPORT.as_ref().map(|e| (e.flag, e.help))
    }
    fn export(&self, spec: &toml::Table, path: &Path) -> Result<String> {
        let export = E::EXPORT
            .as_ref()
            .ok_or_else(|| input_error!("{} has nothing to export", E::NAME))?;
        (export.write)(&Valid::new(spec.clone())?, path)
    }
    fn validate(&self, spec: &toml::Table) -> Result<()> {
        Valid::<E>::new(spec.clone()).map(|_| ())
    }
    fn prepare(&self, spec: &toml::Table) -> Result<Box<dyn PreparedRun>> {
        let spec = Valid::<E>::new(spec.clone())?;
        let inputs = E::prepare(&spec)?;
        Ok(Box::new(TypedRun::<E> {
            spec,
            inputs: Some(inputs),
            summary: E::Summary::default(),
        }))
    }
    fn figures(&self, runs: Vec<StoredRun>) -> Result<Vec<(String, Figure)>> {
        let runs = runs
            .into_iter()
            .map(|run| {
                let path = run.manifest_path.display();
                let spec = Valid::<E>::new(run.spec)
                    .map_err(|e| input_error!("{path}: the saved spec: {e:#}"))?;
                let summary = serde_json::from_value(serde_json::Value::Object(run.summary))
                    .map_err(|e| input_error!("{path}: the saved summary: {e}"))?;
                Ok(RunData {
                    key: run.key,
                    spec,
                    summary,
                    rows: run.rows,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        E::figures(&runs)
    }
    fn verify(&self) -> Result<Vec<ClaimResult>> {
        E::verify()
    }
    fn findings(&self) -> &'static [Finding] {
        E::FINDINGS
    }
}

struct TypedRun<E: Experiment> {
    spec: Valid<E>,
    /// Taken by `run`.
    inputs: Option<E::Inputs>,
    summary: E::Summary,
}

impl<E: Paper> TypedRun<E> {
    /// The run as its claims and figures see it; the rows are lent and handed back.
    fn lend<T>(&self, rows: &mut Table, f: impl FnOnce(&[RunData<E>]) -> T) -> T {
        let run = [RunData {
            key: Vec::new(),
            spec: self.spec.clone(),
            summary: self.summary.clone(),
            rows: std::mem::take(rows),
        }];
        let out = f(&run);
        let [run] = run;
        *rows = run.rows;
        out
    }
}

impl<E: Paper> PreparedRun for TypedRun<E> {
    fn run(&mut self, plumbing: Plumbing) -> Ran {
        let Some(inputs) = self.inputs.take() else {
            return Ran {
                outcome: Err(anyhow::anyhow!("internal: a prepared run started twice")),
                rows: Table::default(),
                attachments: Vec::new(),
                headline: Vec::new(),
            };
        };
        let mut ctx = RunContext::new(
            std::mem::take(&mut self.summary),
            self.spec.streams(),
            plumbing.sink,
            plumbing.progress,
            plumbing.cancel,
        );
        // A panic ends the run as an error here, so its summary and rows are kept.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            E::run(&self.spec, inputs, &mut ctx)
        }))
        .unwrap_or_else(|panic| {
            Err(anyhow::anyhow!(
                "internal error (panic): {}",
                panic_text(panic.as_ref())
            ))
        });
        let attachments = ctx.take_attachments();
        let headline = ctx.headline_columns();
        let (rows, summary) = ctx.into_results();
        self.summary = summary;
        Ran {
            outcome,
            rows,
            attachments,
            headline,
        }
    }
    fn summary(&self) -> serde_json::Map<String, serde_json::Value> {
        summary_json(&self.summary)
    }
    fn check_claims(&self, rows: &mut Table) -> Result<Vec<ClaimResult>> {
        self.lend(rows, |run| E::check_claims(&run[0]))
    }
    fn figures(&self, rows: &mut Table) -> Result<Vec<(String, Figure)>> {
        self.lend(rows, |run| E::figures(run))
    }
    fn describe(&self) -> Vec<String> {
        self.summary.describe()
    }
}

/// What a run left: how it ended, its rows and second tables, and the columns its report
/// prints.
pub struct Ran {
    pub outcome: Result<()>,
    pub rows: Table,
    pub attachments: Vec<Attachment>,
    pub headline: Vec<&'static str>,
}

/// What the runner lends a run: where rows go, the progress bar, the cancel flag.
pub struct Plumbing<'a> {
    pub sink: &'a mut dyn RowSink,
    pub progress: &'a Progress,
    pub cancel: &'a AtomicBool,
}

impl<E: Claims> RunData<E> {
    /// The claims of the run as its manifest would list them, each labelled `label: on`.
    pub fn claims(&self, label: &str) -> Result<Vec<ClaimResult>> {
        let mut results = E::check_claims(self)?;
        for r in &mut results {
            r.on = format!("{label}: {}", r.on);
        }
        Ok(results)
    }
}

/// Runs a spec in memory (no files, no progress): the cases of `lab verify` and the tests.
pub fn run_in_memory<E: Experiment>(spec: Valid<E>) -> Result<RunData<E>> {
    let inputs = E::prepare(&spec)?;
    let progress = Progress::hidden();
    let never = AtomicBool::new(false);
    let mut sink = NullSink;
    let streams = spec.streams();
    let mut ctx = RunContext::new(E::Summary::default(), streams, &mut sink, &progress, &never);
    E::run(&spec, inputs, &mut ctx)?;
    let (rows, summary) = ctx.into_results();
    Ok(RunData {
        key: Vec::new(),
        spec,
        summary,
        rows,
    })
}

/// Runs the defaults with `KEY=VALUE` overrides in memory.
pub fn run_case<E: Experiment>(overrides: &[&str]) -> Result<RunData<E>> {
    run_in_memory(Valid::<E>::with(overrides)?)
}
