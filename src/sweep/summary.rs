//! `sweep.csv`: one row per point and series (the text keys of its rows, e.g. `method`), with
//! the varying settings, the status, the final value of each headline metric and every
//! claim's verdict. Rebuilt from the points' manifests, written atomically (temporary file,
//! then rename) under a lock shared by the shards of a sweep, so it is never half-written.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use rayon::prelude::*;

use super::Plan;
use crate::claims::Verdict;
use crate::input_error;
use crate::manifest::{Manifest, SeriesFinal};
use crate::run::with_suffix;
use crate::spec::value_label;
use crate::table::format_real;

pub const SWEEP_CSV: &str = "sweep.csv";

/// Rewrites closer together than this wait for the next point (or the end of the sweep).
const REWRITE_EVERY: Duration = Duration::from_millis(100);

/// What a point's manifest says, as far as the table needs it.
#[derive(Debug, Clone, Default)]
struct PointState {
    status: String,
    manifest: Option<Manifest>,
}

impl PointState {
    fn read(prefix: &Path) -> PointState {
        match Manifest::read(&with_suffix(prefix, ".run.json")) {
            Ok(Some(m)) => PointState {
                status: m.status.text(),
                manifest: Some(m),
            },
            Ok(None) => PointState {
                status: "pending".into(),
                ..Default::default()
            },
            Err(e) => PointState {
                status: format!("unreadable: {e:#}"),
                ..Default::default()
            },
        }
    }
}

pub struct SweepTable {
    dir: PathBuf,
    axes: Vec<String>,
    /// Each point's name and its axes' values as text.
    points: Vec<(String, Vec<String>)>,
    states: Vec<PointState>,
    written: Option<Instant>,
    dirty: bool,
}

impl SweepTable {
    /// The table of `plan`'s points as their manifests now say.
    pub fn load(plan: &Plan) -> Result<SweepTable> {
        let mut table = SweepTable {
            dir: plan.dir.clone(),
            axes: plan.axes.iter().map(|a| a.key.to_string()).collect(),
            points: plan
                .points
                .iter()
                .map(|p| {
                    let values = p.settings.iter().map(|(_, v)| value_label(v)).collect();
                    (p.name.clone(), values)
                })
                .collect(),
            states: Vec::new(),
            written: None,
            dirty: false,
        };
        table.reload_all();
        Ok(table)
    }

    /// Reads every point's manifest again (other shards may have run them).
    pub fn reload_all(&mut self) {
        let dir = &self.dir;
        self.states = self
            .points
            .par_iter()
            .map(|(name, _)| PointState::read(&dir.join(name)))
            .collect();
        self.dirty = true;
    }

    /// Reads one point's manifest again (this process just ran it).
    pub fn update(&mut self, index: usize) {
        self.states[index] = PointState::read(&self.dir.join(&self.points[index].0));
        self.dirty = true;
    }

    /// Writes the table unless it was written a moment ago (then the next call, or the final
    /// [`write`](Self::write), does).
    pub fn write_soon(&mut self) -> Result<()> {
        if !self.dirty || self.written.is_some_and(|t| t.elapsed() < REWRITE_EVERY) {
            return Ok(());
        }
        self.write()
    }

    /// Writes `sweep.csv` now, atomically, holding the sweep's lock.
    pub fn write(&mut self) -> Result<()> {
        let text = self.csv_text()?;
        let lock_path = self.dir.join(".sweep.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| input_error!("cannot create {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| input_error!("cannot lock {}: {e}", lock_path.display()))?;
        let path = self.dir.join(SWEEP_CSV);
        let tmp = self
            .dir
            .join(format!(".{SWEEP_CSV}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| input_error!("cannot write {}: {e}", path.display()))?;
        self.written = Some(Instant::now());
        self.dirty = false;
        Ok(())
    }

    fn csv_text(&self) -> Result<String> {
        // Columns: the axes, the series keys, status, finals, claims (in order of first
        // appearance), and the run's name.
        let mut series_keys: Vec<&str> = Vec::new();
        let mut finals: Vec<&str> = Vec::new();
        let mut claim_ids: Vec<&str> = Vec::new();
        for m in self.states.iter().filter_map(|s| s.manifest.as_ref()) {
            for f in &m.finals {
                // A series key that is also an axis (divergence swept, one per run) has the
                // axis' value: one column is enough.
                for (k, _) in f.series.iter().filter(|(k, _)| !self.axes.contains(k)) {
                    push_new(&mut series_keys, k.as_str());
                }
                for (k, _) in &f.values {
                    push_new(&mut finals, k.as_str());
                }
            }
            for c in &m.claims {
                push_new(&mut claim_ids, c.id.as_str());
            }
        }
        // A final metric named like a setting or a series key keeps both apart.
        let final_name = |k: &str| {
            if self.axes.iter().any(|a| a == k) || series_keys.contains(&k) {
                format!("final_{k}")
            } else {
                k.to_string()
            }
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = self.axes.clone();
        header.extend(series_keys.iter().map(|s| s.to_string()));
        header.push("status".into());
        header.extend(finals.iter().map(|k| final_name(k)));
        header.extend(claim_ids.iter().map(|s| s.to_string()));
        header.push("run".into());
        writer.write_record(&header)?;
        for ((name, values), state) in self.points.iter().zip(&self.states) {
            let series_finals = state.manifest.as_ref().map_or(&[][..], |m| &m.finals[..]);
            let rows: Vec<Option<&SeriesFinal>> = if series_finals.is_empty() {
                vec![None]
            } else {
                series_finals.iter().map(Some).collect()
            };
            for series in rows {
                let mut record: Vec<String> = values.clone();
                for key in &series_keys {
                    record.push(
                        series
                            .and_then(|s| s.series.iter().find(|(k, _)| k == key))
                            .map_or(String::new(), |(_, v)| v.clone()),
                    );
                }
                record.push(state.status.clone());
                for key in &finals {
                    record.push(
                        series
                            .and_then(|s| s.values.iter().find(|(k, _)| k == key))
                            .and_then(|(_, v)| *v)
                            .map_or(String::new(), format_real),
                    );
                }
                let label = series.map(SeriesFinal::label).unwrap_or_default();
                for id in &claim_ids {
                    record.push(
                        state
                            .manifest
                            .as_ref()
                            .map_or(String::new(), |m| verdict_of(m, id, &label)),
                    );
                }
                record.push(name.clone());
                writer.write_record(&record)?;
            }
        }
        Ok(String::from_utf8(writer.into_inner()?)?)
    }
}

fn push_new<'a>(list: &mut Vec<&'a str>, item: &'a str) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The verdict of claim `id` for one series: the worst of its checks on that series (or on
/// the whole run); empty if not checked.
fn verdict_of(m: &Manifest, id: &str, series: &str) -> String {
    let verdicts: Vec<Verdict> = m
        .claims_on(series)
        .filter(|c| c.id == id)
        .map(|c| c.verdict)
        .collect();
    let worst = if verdicts.contains(&Verdict::Fail) {
        Some(Verdict::Fail)
    } else if verdicts.contains(&Verdict::Inconclusive) {
        Some(Verdict::Inconclusive)
    } else {
        verdicts.first().copied()
    };
    worst.map_or(String::new(), |v| v.word().to_lowercase())
}
