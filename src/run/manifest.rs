//! `NAME.run.json`: what was run, by which code, how it ended, and what it showed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::claims::ClaimResult;

/// The commit lab was built from (`-dirty` if the tree had changes), if built in a checkout.
pub fn git_commit() -> Option<&'static str> {
    let commit = env!("LAB_GIT_COMMIT");
    (!commit.is_empty()).then_some(commit)
}

pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The manifest of one run, rewritten atomically at start and at the end.
pub struct Manifest {
    pub path: PathBuf,
    pub experiment: String,
    pub name: String,
    pub spec: toml::Table,
    pub seed: u64,
    pub command_line: Vec<String>,
    pub started: SystemTime,
}

/// How a run ended.
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
}

/// What is known at the end of a run.
pub struct Ending<'a> {
    pub status: &'a Status,
    pub finished: SystemTime,
    pub summary: &'a serde_json::Map<String, Value>,
    pub claims: &'a [ClaimResult],
    /// The run's data and figure files (the manifest records their names).
    pub files: &'a [PathBuf],
}

impl Manifest {
    fn to_json(&self, ending: Option<&Ending>) -> Value {
        let wall = ending.and_then(|e| e.finished.duration_since(self.started).ok());
        json!({
            "experiment": self.experiment,
            "name": self.name,
            "status": ending.map_or(Status::Running.text(), |e| e.status.text()),
            "spec": self.spec,
            "seed": self.seed,
            "rng": "ChaCha8, one stream per component derived from seed",
            "lab_version": env!("CARGO_PKG_VERSION"),
            "git_commit": git_commit(),
            "command_line": self.command_line,
            "threads": rayon::current_num_threads(),
            "started": timestamp(self.started),
            "finished": ending.map(|e| timestamp(e.finished)),
            "wall_seconds": wall.map(|d| d.as_secs_f64()),
            "summary": ending.map_or(json!({}), |e| Value::Object(e.summary.clone())),
            "claims": ending.map_or(json!([]), |e| json!(e.claims)),
            // File names only: the files sit beside the manifest wherever it is moved.
            "files": ending.map_or(json!([]), |e| {
                json!(e.files.iter().filter_map(|f| f.file_name()).map(|f| f.to_string_lossy()).collect::<Vec<_>>())
            }),
        })
    }

    /// Writes the `running` manifest. Fails if one exists already: the file is the lock that
    /// keeps two runs from writing the same name.
    pub fn create(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json(None))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .map_err(|e| {
                crate::input_error!(
                    "cannot create {}: {e} (another run with this name?)",
                    self.path.display()
                )
            })?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Rewrites the manifest with the run's ending (atomically: temp file, then rename).
    pub fn finish(&self, ending: &Ending) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json(Some(ending)))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), self.path.display()))
    }
}

/// Reads a manifest; `None` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                crate::input_error!("{}: not a valid manifest: {e}", path.display())
            })?;
            Ok(Some(value))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::input_error!("cannot read {}: {e}", path.display())),
    }
}
