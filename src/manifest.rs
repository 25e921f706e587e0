//! `NAME.run.json`, the manifest of a run: what was run, by which code and process, how it
//! ended, and what it showed. One typed format, written by the runner and read by `lab plot`,
//! by `--spec NAME.run.json` (re-running a run) and by the overwrite guard.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimResult, Verdict};
use crate::input_error;

/// How a run stands or ended; written as `running`, `done`, `interrupted`, `failed: why`.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Done,
    Interrupted,
    Failed(String),
}

impl Status {
    pub fn text(&self) -> String {
        match self {
            Status::Running => "running".into(),
            Status::Done => "done".into(),
            Status::Interrupted => "interrupted".into(),
            Status::Failed(why) => format!("failed: {why}"),
        }
    }

    fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "running" => Status::Running,
            "done" => Status::Done,
            "interrupted" => Status::Interrupted,
            _ => Status::Failed(text.strip_prefix("failed: ")?.to_string()),
        })
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Status, D::Error> {
        let text = String::deserialize(d)?;
        Status::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "status '{text}': expected running, done, interrupted or failed: why"
            ))
        })
    }
}

/// A claim as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredClaim {
    pub id: String,
    pub on: String,
    pub statement: String,
    /// `{"kind": "verified" | "reconstructed", "note": source}`.
    pub provenance: serde_json::Value,
    pub verdict: Verdict,
    pub measured: String,
}

impl From<&ClaimResult> for StoredClaim {
    fn from(c: &ClaimResult) -> StoredClaim {
        StoredClaim {
            id: c.id.clone(),
            on: c.on.clone(),
            statement: c.statement.clone(),
            provenance: serde_json::to_value(&c.provenance).unwrap_or_default(),
            verdict: c.verdict,
            measured: c.measured.clone(),
        }
    }
}

/// The last row of one series of a run (the rows of one value of its text keys, e.g.
/// `method=svrs`): its headline metrics, for run tables that do not read the CSV.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesFinal {
    /// The series' key values; empty for a run with one series.
    pub series: Vec<(String, String)>,
    /// Headline columns and their final values (`null` where the run did not compute one).
    pub values: Vec<(String, Option<f64>)>,
}

impl SeriesFinal {
    /// `method=svrs, eta=1` (the `on` of the claims checked on this series).
    pub fn label(&self) -> String {
        self.series
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The manifest of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub name: String,
    pub status: Status,
    /// The resolved settings: `lab run EXP --spec NAME.run.json` re-runs them.
    pub spec: toml::Table,
    pub seed: u64,
    pub rng: String,
    pub lab_version: String,
    /// The commit lab was built from (`-dirty` if the tree had changes).
    pub git_commit: Option<String>,
    pub command_line: Vec<String>,
    pub threads: usize,
    /// The process that writes (or wrote) the run and its host: with the run's lock, how a
    /// reader tells a live `running` run from one whose process was killed.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub host: Option<String>,
    pub started: String,
    pub finished: Option<String>,
    pub wall_seconds: Option<f64>,
    /// Rows in `NAME.csv` when the run ended (done or not).
    #[serde(default)]
    pub rows: Option<usize>,
    pub summary: serde_json::Map<String, serde_json::Value>,
    pub claims: Vec<StoredClaim>,
    /// The final headline values of each series (absent in manifests of older versions).
    #[serde(default)]
    pub finals: Vec<SeriesFinal>,
    /// File names, beside the manifest wherever it is moved.
    pub files: Vec<String>,
}

/// The host name, as `hostname` prints it (Linux), for the manifest.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// The commit lab was built from, if built in a checkout.
pub fn git_commit() -> Option<&'static str> {
    let commit = env!("LAB_GIT_COMMIT");
    (!commit.is_empty()).then_some(commit)
}

pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Manifest {
    /// The claims checked on one series (`label` as [`SeriesFinal::label`] gives it): those
    /// checked on it, and those checked on the whole run (naming no series of it).
    pub fn claims_on<'a>(&'a self, label: &'a str) -> impl Iterator<Item = &'a StoredClaim> {
        // A claim on a series may name more than its key (`divergence=tsallis, tsallis_q=2`).
        let on_series = |on: &str, series: &str| {
            !series.is_empty()
                && (on == series || on.strip_prefix(series).is_some_and(|r| r.starts_with(", ")))
        };
        self.claims.iter().filter(move |c| {
            on_series(&c.on, label) || !self.finals.iter().any(|f| on_series(&c.on, &f.label()))
        })
    }

    /// Writes a new manifest; fails if the file exists. The whole text appears at once (a
    /// temporary file hard-linked into place), so a reader never sees half of one.
    pub fn create(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension(format!("json.{}.new", std::process::id()));
        std::fs::write(&tmp, text)
            .map_err(|e| input_error!("cannot create {}: {e}", tmp.display()))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| input_error!("cannot create {}: {e}", path.display()))
    }

    /// Replaces the manifest atomically (temporary file, then rename), so a reader never sees
    /// half of one.
    pub fn replace(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }

    /// Reads a manifest; `None` if the file does not exist. A file that is not a manifest is
    /// an input error naming it and what is wrong.
    pub fn read(path: &Path) -> Result<Option<Manifest>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(input_error!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| input_error!("{}: not a valid run manifest: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_back() {
        for status in [
            Status::Running,
            Status::Done,
            Status::Interrupted,
            Status::Failed("non-finite value NaN".into()),
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
        }
        assert!(serde_json::from_str::<Status>("\"half\"").is_err());
    }
}
