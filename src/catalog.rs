//! The runs on disk as a table: every `NAME.run.json` under a directory, read in parallel,
//! one row per run and series, with the settings that differ between the runs, the final
//! headline values and the claims' verdicts. `lab runs` prints it; `lab report` shows it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rayon::prelude::*;

use crate::claims::Verdict;
use crate::input_error;
use crate::manifest::{Manifest, SeriesFinal, Status};
use crate::spec::{nearest, value_label};
use crate::table::{format_real, short_real};

/// A run found on disk: its manifest and where it is.
pub struct FoundRun {
    pub manifest_path: PathBuf,
    /// The run's path under the searched directory, without `.run.json`.
    pub name: String,
    pub manifest: Manifest,
    /// `--where` conditions on series keys (`method=gd`): only those series are listed.
    pub series: Vec<(String, String)>,
}

/// Every run under `dir` (its subdirectories too), oldest first. A manifest that cannot be
/// read is reported on stderr and left out, so one damaged file does not hide the others.
pub fn find(dir: &Path) -> Result<Vec<FoundRun>> {
    if !dir.is_dir() {
        return Err(input_error!(
            "{}: {}",
            dir.display(),
            if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            }
        ));
    }
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    let read: Vec<(PathBuf, Result<Option<Manifest>>)> = paths
        .into_par_iter()
        .map(|p| {
            let m = Manifest::read(&p);
            (p, m)
        })
        .collect();
    let mut runs = Vec::with_capacity(read.len());
    for (path, manifest) in read {
        match manifest {
            Ok(Some(mut manifest)) => {
                if manifest.status == Status::Running && !is_live(&path, &manifest) {
                    manifest.status = Status::Failed(
                        "killed: its manifest says running, but no process holds its lock".into(),
                    );
                }
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let name = relative.to_string_lossy();
                let name = name.strip_suffix(".run.json").unwrap_or(&name).to_string();
                runs.push(FoundRun {
                    manifest_path: path,
                    name,
                    manifest,
                    series: Vec::new(),
                });
            }
            Ok(None) => {}
            Err(e) => eprintln!("warning: left out: {e:#}"),
        }
    }
    runs.sort_by(|a, b| {
        (a.manifest.started.as_str(), a.name.as_str())
            .cmp(&(b.manifest.started.as_str(), b.name.as_str()))
    });
    Ok(runs)
}

/// Whether the run of a `running` manifest is being written: its lock file (`.NAME.lock`,
/// removed when a run ends, left by a killed one) is held by a process.
fn is_live(manifest_path: &Path, m: &Manifest) -> bool {
    let lock = manifest_path.with_file_name(format!(".{}.lock", m.name));
    match std::fs::File::open(&lock) {
        Err(_) => false,
        Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| input_error!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect(&path, out)?;
        } else if path.to_string_lossy().ends_with(".run.json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Which runs to keep.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// `KEY=VALUE`: a setting, a series key, `experiment` or `status`.
    pub wheres: Vec<String>,
    /// `done`, `failed`, `interrupted` or `running`.
    pub status: Option<String>,
}

/// A table of text cells: a header and rows.
#[derive(Debug, Default, Clone)]
pub struct TextTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    pub fn to_csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// Columns aligned with spaces, numbers to four digits; cells longer than `widest` are
    /// cut with `...`, except in the first column (the run's name).
    pub fn aligned(&self, widest: usize) -> String {
        let cut = |i: usize, s: &str| {
            if let Ok(x) = s.parse::<f64>()
                && s.len() > 8
            {
                short_real(x)
            } else if i > 0 && s.chars().count() > widest {
                let kept: String = s.chars().take(widest.saturating_sub(3)).collect();
                format!("{kept}...")
            } else {
                s.to_string()
            }
        };
        let cells: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| r.iter().enumerate().map(|(i, c)| cut(i, c)).collect())
            .collect();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in cells {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out += line.join("  ").trim_end();
            out.push('\n');
        }
        out
    }
}

/// Whether `value` (a setting's value) reads as `wanted`: the same words, or the same number.
fn matches(value: &toml::Value, wanted: &str) -> bool {
    let label = value_label(value);
    let listed = label.replace('+', ",");
    if label == wanted || listed == wanted {
        return true;
    }
    match (label.parse::<f64>(), wanted.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Keeps the runs that pass `filter`. A `--where` key no run has is an input error.
pub fn filter(runs: Vec<FoundRun>, filter: &Filter) -> Result<Vec<FoundRun>> {
    let mut conditions = Vec::new();
    for word in &filter.wheres {
        let (key, value) = word.split_once('=').ok_or_else(|| {
            input_error!("--where {word}: expected KEY=VALUE, e.g. --where divergence=kl")
        })?;
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        let known = key == "experiment"
            || key == "status"
            || runs.iter().any(|r| {
                r.manifest.spec.contains_key(&key)
                    || r.manifest
                        .finals
                        .iter()
                        .any(|f| f.series.iter().any(|(k, _)| *k == key))
            });
        if !known && !runs.is_empty() {
            let mut keys: Vec<&str> = runs
                .iter()
                .flat_map(|r| r.manifest.spec.keys().map(String::as_str))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let hint = nearest(keys.iter().copied(), &key)
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            return Err(input_error!(
                "--where {word}: no run has a setting '{key}'{hint}"
            ));
        }
        conditions.push((key, value));
    }
    let series_matches =
        |f: &SeriesFinal, k: &str, v: &str| f.series.iter().any(|(fk, fv)| fk == k && fv == v);
    Ok(runs
        .into_iter()
        .filter_map(|mut r| {
            let m = &r.manifest;
            let mut series = Vec::new();
            let status_of = m.status.text();
            let status_word = status_of.split(':').next().unwrap_or("");
            if filter.status.as_ref().is_some_and(|s| s != status_word) {
                return None;
            }
            for (k, v) in &conditions {
                let kept = match k.as_str() {
                    "experiment" => m.experiment == *v,
                    "status" => status_word == v,
                    _ if m.spec.get(k).is_some_and(|x| matches(x, v)) => true,
                    // A series key (method=gd): list the run's rows of that series only.
                    _ if m.finals.iter().any(|f| series_matches(f, k, v)) => {
                        series.push((k.clone(), v.clone()));
                        true
                    }
                    _ => false,
                };
                if !kept {
                    return None;
                }
            }
            r.series = series;
            Some(r)
        })
        .collect())
}

/// The settings whose values are not the same in every run (in first-seen order).
pub fn differing_settings(runs: &[FoundRun]) -> Vec<String> {
    let mut keys: Vec<&String> = Vec::new();
    for r in runs {
        for k in r.manifest.spec.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.into_iter()
        .filter(|k| {
            let first = runs[0].manifest.spec.get(*k);
            runs.iter().any(|r| r.manifest.spec.get(*k) != first)
        })
        .cloned()
        .collect()
}

/// "5 pass, 1 fail, 2 inconclusive" for the claims checked on one series of a run.
fn claim_counts(m: &Manifest, series: &str) -> String {
    let checked: Vec<Verdict> = m.claims_on(series).map(|c| c.verdict).collect();
    if checked.is_empty() {
        return String::new();
    }
    let count = |v: Verdict| checked.iter().filter(|c| **c == v).count();
    let mut parts = vec![format!("{} pass", count(Verdict::Pass))];
    for (v, word) in [
        (Verdict::Fail, "fail"),
        (Verdict::Inconclusive, "inconclusive"),
    ] {
        if count(v) > 0 {
            // Which ones: the claims a reader looks up next.
            let mut ids: Vec<&str> = m
                .claims_on(series)
                .filter(|c| c.verdict == v)
                .map(|c| c.id.as_str())
                .collect();
            ids.dedup();
            parts.push(format!("{} {word} ({})", count(v), ids.join(" ")));
        }
    }
    parts.join(", ")
}

/// One row per run and series: run, experiment, status, started, wall, the differing
/// settings, the series keys, the final headline values and the claims.
pub fn table(runs: &[FoundRun]) -> TextTable {
    const FIRST: [&str; 5] = ["run", "experiment", "status", "started", "wall_s"];
    if runs.is_empty() {
        return TextTable {
            header: FIRST
                .iter()
                .chain(&["claims"])
                .map(|s| s.to_string())
                .collect(),
            rows: Vec::new(),
        };
    }
    let settings = differing_settings(runs);
    let mut series_keys: Vec<&str> = Vec::new();
    let mut finals: Vec<&str> = Vec::new();
    for r in runs {
        for f in &r.manifest.finals {
            for (k, _) in &f.series {
                if !series_keys.contains(&k.as_str()) && !settings.contains(k) {
                    series_keys.push(k);
                }
            }
            for (k, _) in &f.values {
                if !finals.contains(&k.as_str()) {
                    finals.push(k);
                }
            }
        }
    }
    let mut header: Vec<String> = FIRST.map(String::from).to_vec();
    header.extend(settings.iter().cloned());
    header.extend(series_keys.iter().map(|s| s.to_string()));
    header.extend(finals.iter().map(|f| format!("final_{f}")));
    header.push("claims".into());
    let mut rows = Vec::new();
    for r in runs {
        let m = &r.manifest;
        let empty = [SeriesFinal::default()];
        let series: &[SeriesFinal] = if m.finals.is_empty() {
            &empty
        } else {
            &m.finals
        };
        let listed = |s: &&SeriesFinal| {
            r.series
                .iter()
                .all(|(k, v)| s.series.iter().any(|(sk, sv)| sk == k && sv == v))
        };
        for s in series.iter().filter(listed) {
            let mut row = vec![
                r.name.clone(),
                m.experiment.clone(),
                m.status.text(),
                m.started
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_string(),
                m.wall_seconds.map_or(String::new(), |w| format!("{w:.3}")),
            ];
            row.extend(
                settings
                    .iter()
                    .map(|k| m.spec.get(k).map_or(String::new(), value_label)),
            );
            row.extend(series_keys.iter().map(|k| {
                s.series
                    .iter()
                    .find(|(sk, _)| sk == k)
                    .map_or(String::new(), |(_, v)| v.clone())
            }));
            row.extend(finals.iter().map(|k| {
                s.values
                    .iter()
                    .find(|(fk, _)| fk == k)
                    .and_then(|(_, v)| *v)
                    .map_or(String::new(), format_real)
            }));
            row.push(claim_counts(m, &s.label()));
            rows.push(row);
        }
    }
    TextTable { header, rows }
}
