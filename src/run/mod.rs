//! The run lifecycle: name the run, guard against overwriting, stream rows to CSV, write the
//! manifest, check claims, draw the figures.

mod context;
mod csv_sink;
pub mod manifest;
mod progress;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::Result;

pub use context::{
    Attachment, ColumnKind, ColumnSpec, Interrupted, NonFinite, NullSink, RowSink, RunContext,
    component_rng, fill_standard_normal, stable_hash, standard_normal,
};
pub use csv_sink::CsvSink;
pub use manifest::Status;
pub use progress::Progress;

use crate::claims::ClaimResult;
use crate::experiments::{Experiment, RunData};
use crate::spec::{Field, value_label};
use crate::table::Table;

/// Set by the Ctrl-C handler; runs stop at the next iteration boundary.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// How `lab run` was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output prefix (`out/mine` gives `out/mine.csv`, ...); default derived from the spec.
    pub out: Option<PathBuf>,
    pub force: bool,
    /// Show a progress bar (off for `--quiet` and when stderr is not a terminal).
    pub progress: bool,
    pub command_line: Vec<String>,
}

/// What a finished (or stopped) run left behind.
pub struct RunReport {
    pub status: Status,
    pub prefix: PathBuf,
    pub files: Vec<PathBuf>,
    pub rows: Table,
    pub summary: serde_json::Map<String, serde_json::Value>,
    pub claims: Vec<ClaimResult>,
}

/// The seed of a resolved spec (its `seed` field; 0 if the experiment has none).
pub fn seed_of(spec: &toml::Table) -> u64 {
    spec.get("seed")
        .and_then(|v| v.as_integer())
        .map_or(0, |s| s as u64)
}

/// The default run name: experiment, the settings that differ from the defaults (in field
/// order) and the seed, e.g. `pmd-divergence=kl-eta=10-seed=0`.
pub fn default_name(
    experiment: &str,
    fields: &[Field],
    defaults: &toml::Table,
    spec: &toml::Table,
) -> String {
    let mut parts = vec![experiment.to_string()];
    for field in fields {
        if field.key == "seed" {
            continue;
        }
        let (Some(value), default) = (spec.get(field.key), defaults.get(field.key)) else {
            continue;
        };
        if Some(value) != default {
            let mut text = value_label(value);
            if matches!(field.domain, crate::spec::Domain::Path) {
                text = Path::new(&text)
                    .file_stem()
                    .map_or(text.clone(), |s| s.to_string_lossy().into_owned());
            }
            parts.push(format!("{}={}", field.key, text));
        }
    }
    parts.push(format!("seed={}", seed_of(spec)));
    let name: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Keep names usable as file names; a hash keeps long ones distinct.
    if name.len() > 120 {
        let hash = stable_hash(&name);
        format!("{}-{hash:016x}", &name[..100])
    } else {
        name
    }
}

/// `prefix` + `suffix`, e.g. `out/x` + `.run.json`.
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Refuses to overwrite an earlier run unless `force`; with `force`, removes its files.
fn guard_overwrite(prefix: &Path, force: bool) -> Result<()> {
    let manifest_path = with_suffix(prefix, ".run.json");
    let csv_path = with_suffix(prefix, ".csv");
    let old = manifest::read(&manifest_path).unwrap_or(None);
    if old.is_none() && !csv_path.exists() {
        return Ok(());
    }
    if !force {
        let status = old
            .as_ref()
            .and_then(|m| m.get("status").and_then(|s| s.as_str()).map(String::from))
            .unwrap_or_else(|| "unknown: no manifest".into());
        let finished = old
            .as_ref()
            .and_then(|m| m.get("finished").and_then(|s| s.as_str()).map(String::from))
            .map(|t| format!(", finished {t}"))
            .unwrap_or_default();
        return Err(crate::input_error!(
            "{} already holds a run (status {status}{finished}); not overwriting it. \
             Use --force to replace it, or --out to choose another name",
            prefix.display()
        ));
    }
    // The manifest lists its run's files by name, beside it; nothing else is touched.
    let dir = prefix.parent().unwrap_or(Path::new(""));
    let mut files = vec![manifest_path, csv_path];
    if let Some(listed) = old
        .as_ref()
        .and_then(|m| m.get("files"))
        .and_then(|f| f.as_array())
    {
        files.extend(
            listed
                .iter()
                .filter_map(|f| f.as_str())
                .map(Path::new)
                .filter(|f| f.components().count() == 1)
                .map(|f| dir.join(f)),
        );
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::input_error!("cannot remove {}: {e}", file.display()));
            }
        }
    }
    Ok(())
}

/// Runs an experiment with outputs on disk: the whole of `lab run EXP`.
pub fn execute(exp: &dyn Experiment, spec: toml::Table, options: &RunOptions) -> Result<RunReport> {
    let prepared = exp.prepare(&spec)?;
    let name = || default_name(exp.name(), exp.fields(), &exp.default_spec(), &spec);
    let prefix = match &options.out {
        // A directory (existing, or written with a trailing slash) gets the default name.
        Some(out) if out.is_dir() || out.to_string_lossy().ends_with('/') => out.join(name()),
        Some(out) => {
            let s = out.to_string_lossy();
            PathBuf::from(s.strip_suffix(".csv").unwrap_or(&s).to_string())
        }
        None => Path::new("out").join(name()),
    };
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::input_error!("cannot create {}: {e}", dir.display()))?;
    }
    guard_overwrite(&prefix, options.force)?;

    let seed = seed_of(&spec);
    let manifest = manifest::Manifest {
        path: with_suffix(&prefix, ".run.json"),
        experiment: exp.name().to_string(),
        name: prefix
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        spec: spec.clone(),
        seed,
        command_line: options.command_line.clone(),
        started: SystemTime::now(),
    };
    manifest.create()?;
    let csv_path = with_suffix(&prefix, ".csv");
    let mut sink = CsvSink::create(&csv_path)?;
    let progress = Progress::new(options.progress);
    let mut ctx = RunContext::new(seed, &mut sink, &progress, &CANCEL);
    let outcome = prepared.run(&mut ctx);
    progress.finish();
    let attachments = ctx.take_attachments();
    let (rows, summary) = ctx.into_results();
    let status = match outcome {
        Ok(()) => Status::Done,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => Status::Interrupted,
        Err(e) => Status::Failed(format!("{e:#}")),
    };

    let claims = if status == Status::Done {
        exp.check_claims(&spec, &rows, &summary)
    } else {
        Vec::new()
    };
    let mut files = vec![csv_path];
    for attachment in attachments {
        // Like a figure, a second table that cannot be written must not lose the run.
        let path = with_suffix(&prefix, &format!("{}.csv", attachment.suffix));
        let written = CsvSink::create(&path).and_then(|mut sink| {
            sink.header(&attachment.header)?;
            attachment.rows.iter().try_for_each(|row| sink.row(row))
        });
        match written {
            Ok(()) => files.push(path),
            Err(e) => eprintln!("warning: could not write {}: {e:#}", path.display()),
        }
    }
    // The figures see the run as `lab plot` would (rows, spec, summary); the rows are lent to
    // them and taken back, not copied.
    let run = RunData {
        label: String::new(),
        spec: Some(spec.clone()),
        summary: Some(summary.clone()),
        rows,
    };
    if !run.rows.is_empty() {
        // A figure that cannot be drawn must not lose the run: record why and go on.
        match exp.figures(std::slice::from_ref(&run)) {
            Ok(figures) => {
                for (suffix, figure) in figures {
                    for ext in ["png", "svg"] {
                        let path = with_suffix(&prefix, &format!("{suffix}.{ext}"));
                        match crate::plot::render(&figure, &path) {
                            Ok(()) => files.push(path),
                            Err(e) => {
                                eprintln!("warning: could not draw {}: {e:#}", path.display())
                            }
                        }
                    }
                }
            }
            Err(e) => eprintln!("warning: could not build the figures: {e:#}"),
        }
    }
    let rows = run.rows;
    manifest.finish(&manifest::Ending {
        status: &status,
        finished: SystemTime::now(),
        summary: &summary,
        claims: &claims,
        files: &files,
    })?;
    files.insert(1, manifest.path.clone());
    Ok(RunReport {
        status,
        prefix,
        files,
        rows,
        summary,
        claims,
    })
}

/// Runs an experiment in memory (no files, no progress): for `lab verify` and tests.
pub fn run_in_memory(
    exp: &dyn Experiment,
    spec: &toml::Table,
) -> Result<(Table, serde_json::Map<String, serde_json::Value>)> {
    let prepared = exp.prepare(spec)?;
    let progress = Progress::hidden();
    let never = AtomicBool::new(false);
    let mut sink = NullSink;
    let mut ctx = RunContext::new(seed_of(spec), &mut sink, &progress, &never);
    prepared.run(&mut ctx)?;
    Ok(ctx.into_results())
}
