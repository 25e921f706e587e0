//! The run lifecycle on disk: name the run, take its lock, guard against overwriting, stream
//! rows to CSV, write the manifest, check claims, draw the figures.

mod csv_sink;
mod lock;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::Result;

pub use csv_sink::CsvSink;
pub use lock::RunLock;

use crate::claims::ClaimResult;
use crate::contract::{
    AnyExperiment, Interrupted, Plumbing, PreparedRun, Progress, panic_text, seed_of,
};
use crate::input_error;
use crate::manifest::{
    Manifest, SeriesFinal, Status, StoredClaim, git_commit, host_name, timestamp,
};
use crate::random::stable_hash;
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
    /// Image formats of the figures (`png`, `svg`, `pdf`).
    pub formats: Vec<String>,
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
    pub claims: Vec<ClaimResult>,
    /// The experiment's lines for the end-of-run report.
    pub description: Vec<String>,
    /// The columns whose final values the report prints.
    pub headline: Vec<&'static str>,
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
    file_name(&parts)
}

/// `key=value` parts joined by `-` into a file name: other characters than letters, digits
/// and `._+=-` become `_`; a name over 120 characters is cut, with a hash keeping it distinct.
pub fn file_name(parts: &[String]) -> String {
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

/// The output prefix of a run: `--out` (a directory gets the default name) or `out/NAME`.
fn output_prefix(out: Option<&Path>, name: impl Fn() -> String) -> PathBuf {
    match out {
        Some(out) if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') => {
            out.join(name())
        }
        Some(out) if out.extension().is_some_and(|e| e == "csv") => out.with_extension(""),
        Some(out) => out.to_path_buf(),
        None => Path::new("out").join(name()),
    }
}

/// Creates the directory of `prefix`; a file in the way is named as such.
pub fn create_parent(prefix: &Path) -> Result<()> {
    let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if let Some(file) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        return Err(input_error!(
            "cannot write {}: {} is a file, not a directory",
            prefix.display(),
            file.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| input_error!("cannot create {}: {e}", dir.display()))
}

/// Refuses to overwrite an earlier run unless `force`; with `force`, removes its files. The
/// caller holds the run's lock, so no live lab process is writing this name.
fn guard_overwrite(prefix: &Path, force: bool) -> Result<()> {
    let manifest_path = with_suffix(prefix, ".run.json");
    let csv_path = with_suffix(prefix, ".csv");
    // A manifest that cannot be read (written by another version, damaged) still holds a run:
    // it is refused like any other, and `--force` replaces it.
    let (old, unreadable) = match Manifest::read(&manifest_path) {
        Ok(old) => (old, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    if old.is_none() && unreadable.is_none() && !csv_path.exists() {
        return Ok(());
    }
    if !force {
        let what = match (&old, unreadable) {
            (_, Some(why)) => format!("a manifest that cannot be read: {why}"),
            (None, None) => "a CSV without a manifest".to_string(),
            // Its lock is free (we hold it): the process that wrote `running` is gone.
            (Some(m), _) if m.status == Status::Running => format!(
                "status running, but its process{} is gone: it was killed before it could end \
                 the run",
                process(m)
            ),
            (Some(m), _) => format!(
                "status {}{}",
                m.status.text(),
                m.finished
                    .as_ref()
                    .map(|t| format!(", finished {t}"))
                    .unwrap_or_default()
            ),
        };
        return Err(input_error!(
            "{} already holds a run ({what}); not overwriting it. Use --force to replace it, or \
             --out to choose another name",
            prefix.display()
        ));
    }
    // The manifest lists its run's files by name, beside it; nothing else is touched.
    let dir = prefix.parent().unwrap_or(Path::new(""));
    let mut files = vec![manifest_path, csv_path];
    if let Some(old) = &old {
        files.extend(
            old.files
                .iter()
                .map(Path::new)
                .filter(|f| f.components().count() == 1)
                .map(|f| dir.join(f)),
        );
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(input_error!("cannot remove {}: {e}", file.display())),
        }
    }
    Ok(())
}

/// " (pid 12 on host h)" from a manifest, if it recorded them.
fn process(m: &Manifest) -> String {
    match (m.pid, &m.host) {
        (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    }
}

/// Runs an experiment with outputs on disk: the whole of `lab run EXP`.
pub fn execute(
    exp: &dyn AnyExperiment,
    spec: toml::Table,
    options: &RunOptions,
) -> Result<RunReport> {
    // Every input error happens here, before anything is written.
    let prepared = exp.prepare(&spec)?;
    let name = || default_name(exp.name(), exp.fields(), &exp.default_spec(), &spec);
    let prefix = output_prefix(options.out.as_deref(), name);
    create_parent(&prefix)?;
    let lock = RunLock::acquire(&prefix)?;
    guard_overwrite(&prefix, options.force)?;

    let manifest_path = with_suffix(&prefix, ".run.json");
    let started = SystemTime::now();
    let mut manifest = Manifest {
        experiment: exp.name().to_string(),
        name: prefix
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        status: Status::Running,
        spec: spec.clone(),
        seed: seed_of(&spec),
        rng: "ChaCha8, one stream per component derived from seed".into(),
        lab_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: git_commit().map(String::from),
        command_line: options.command_line.clone(),
        threads: rayon::current_num_threads(),
        pid: Some(std::process::id()),
        host: host_name(),
        started: timestamp(started),
        finished: None,
        wall_seconds: None,
        rows: None,
        summary: serde_json::Map::new(),
        claims: Vec::new(),
        finals: Vec::new(),
        files: Vec::new(),
    };
    manifest.create(&manifest_path)?;

    // From here on the manifest exists: whatever happens, even a panic, it ends with a status.
    let csv_path = with_suffix(&prefix, ".csv");
    let mut prepared = prepared;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_and_record(prepared.as_mut(), &prefix, options)
    }));
    let Recorded {
        status,
        files,
        rows,
        claims,
        headline,
    } = match outcome {
        Ok(Ok(recorded)) => recorded,
        Ok(Err(e)) => Recorded::failed(format!("{e:#}"), csv_path),
        Err(panic) => Recorded::failed(
            format!("internal error (panic): {}", panic_text(panic.as_ref())),
            csv_path,
        ),
    };
    let finished = SystemTime::now();
    manifest.status = status.clone();
    manifest.finished = Some(timestamp(finished));
    manifest.wall_seconds = finished
        .duration_since(started)
        .ok()
        .map(|d| d.as_secs_f64());
    // Unknown after a panic: the CSV holds what was written before it.
    manifest.rows = rows.as_ref().map(Table::len);
    manifest.summary = prepared.summary();
    manifest.claims = claims.iter().map(StoredClaim::from).collect();
    manifest.finals = rows
        .as_ref()
        .map_or_else(Vec::new, |r| finals(r, &headline));
    manifest.files = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    manifest.replace(&manifest_path)?;
    drop(lock);
    let mut files = files;
    files.insert(1.min(files.len()), manifest_path);
    Ok(RunReport {
        status,
        prefix,
        files,
        rows: rows.unwrap_or_default(),
        claims,
        description: prepared.describe(),
        headline,
    })
}

/// The last row of each series of `rows` (split by its text columns): `iter` and the
/// headline columns.
fn finals(rows: &Table, headline: &[&'static str]) -> Vec<SeriesFinal> {
    let keys = rows.text_columns();
    rows.group_keys(&keys)
        .into_iter()
        .map(|(series, part)| {
            let last = part.len().saturating_sub(1);
            let values = std::iter::once("iter")
                .chain(headline.iter().copied())
                .filter_map(|c| {
                    let column = part.num(c)?;
                    let v = *column.get(last)?;
                    Some((c.to_string(), v.is_finite().then_some(v)))
                })
                .collect();
            SeriesFinal { series, values }
        })
        .filter(|f| !f.values.is_empty())
        .collect()
}

/// How a run ended, its files, rows, claims and headline columns.
struct Recorded {
    status: Status,
    files: Vec<PathBuf>,
    /// None when the run could not record them (its CSV holds what was written).
    rows: Option<Table>,
    claims: Vec<ClaimResult>,
    headline: Vec<&'static str>,
}

impl Recorded {
    /// A run that failed outside the experiment's own code: only its CSV, if it exists.
    fn failed(why: String, csv_path: PathBuf) -> Recorded {
        Recorded {
            status: Status::Failed(why),
            files: if csv_path.exists() {
                vec![csv_path]
            } else {
                Vec::new()
            },
            rows: None,
            claims: Vec::new(),
            headline: Vec::new(),
        }
    }
}

/// The run itself, its second tables, claims and figures.
fn run_and_record(
    prepared: &mut dyn PreparedRun,
    prefix: &Path,
    options: &RunOptions,
) -> Result<Recorded> {
    let csv_path = with_suffix(prefix, ".csv");
    let mut sink = CsvSink::create(&csv_path)?;
    let progress = Progress::new(options.progress);
    let ran = prepared.run(Plumbing {
        sink: &mut sink,
        progress: &progress,
        cancel: &CANCEL,
    });
    let (outcome, mut rows, attachments) = (ran.outcome, ran.rows, ran.attachments);
    progress.finish();
    let status = match outcome {
        Ok(()) => Status::Done,
        Err(e) if e.is::<Interrupted>() => Status::Interrupted,
        Err(e) => Status::Failed(format!("{e:#}")),
    };
    let mut files = vec![csv_path];
    for attachment in attachments {
        // Like a figure, a second table that cannot be written must not lose the run.
        let path = with_suffix(prefix, &format!("{}.csv", attachment.suffix));
        let written = CsvSink::create(&path).and_then(|mut sink| {
            use crate::contract::RowSink;
            sink.header(&attachment.header)?;
            attachment.rows.iter().try_for_each(|row| sink.row(row))
        });
        match written {
            Ok(()) => files.push(path),
            Err(e) => eprintln!("warning: could not write {}: {e:#}", path.display()),
        }
    }
    let (status, claims) = match status {
        Status::Done => match prepared.check_claims(&mut rows) {
            Ok(claims) => (Status::Done, claims),
            Err(e) => (
                Status::Failed(format!("checking the claims: {e:#}")),
                Vec::new(),
            ),
        },
        other => (other, Vec::new()),
    };
    if !rows.is_empty() {
        // A figure that cannot be drawn must not lose the run: record why and go on.
        match prepared.figures(&mut rows) {
            Ok(figures) => {
                // A figure with nothing to draw (a run stopped early) is not written blank.
                for (suffix, figure) in figures.into_iter().filter(|(_, f)| !f.is_empty()) {
                    for ext in &options.formats {
                        let path = with_suffix(prefix, &format!("{suffix}.{ext}"));
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
    Ok(Recorded {
        status,
        files,
        rows: Some(rows),
        claims,
        headline: ran.headline,
    })
}
