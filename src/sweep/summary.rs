//! `sweep.csv`: one row per point and series (the text keys of its rows, e.g. `method`), with
//! the varying settings, the status, the final value of each headline metric (`final_*`) and
//! every claim's verdict. Rebuilt from the points' manifests, written atomically (temporary
//! file, then rename) under a lock shared by the shards of a sweep, so it is never
//! half-written.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use rayon::prelude::*;

use super::{DirLock, Plan};
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

/// Rewrites `sweep.csv` when it was last written long enough ago (a sweep of fast points
/// would otherwise spend its time rewriting it); [`write`] at the end always does.
#[derive(Default)]
pub struct Throttle {
    written: Option<Instant>,
}

impl Throttle {
    pub fn write_soon(&mut self, plan: &Plan) -> Result<()> {
        if self.written.is_some_and(|t| t.elapsed() < REWRITE_EVERY) {
            return Ok(());
        }
        write(plan)?;
        self.written = Some(Instant::now());
        Ok(())
    }
}

/// Writes `sweep.csv` from what every point's manifest says now, atomically, holding the
/// sweep's lock: shards of one sweep each write the whole table, one at a time, each from the
/// manifests as they are when it holds the lock, so the last write is never behind.
pub fn write(plan: &Plan) -> Result<()> {
    let _lock = DirLock::take(&plan.dir)?;
    let states: Vec<PointState> = plan
        .points
        .par_iter()
        .map(|p| PointState::read(&plan.dir.join(&p.name)))
        .collect();
    let text = csv_text(plan, &states)?;
    let path = plan.dir.join(SWEEP_CSV);
    let tmp = plan.dir.join(format!(".{SWEEP_CSV}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| input_error!("cannot write {}: {e}", path.display()))
}

fn csv_text(plan: &Plan, states: &[PointState]) -> Result<String> {
    let axes: Vec<String> = plan.axes.iter().map(|a| a.key.to_string()).collect();
    // Columns: the axes, the series keys, status, finals, claims (in order of first
    // appearance), and the run's name.
    let mut series_keys: Vec<&str> = Vec::new();
    let mut finals: Vec<&str> = Vec::new();
    let mut claim_ids: Vec<&str> = Vec::new();
    for m in states.iter().filter_map(|s| s.manifest.as_ref()) {
        for f in &m.finals {
            // A series key that is also an axis (divergence swept, one per run) has the
            // axis' value: one column is enough.
            for (k, _) in f.series.iter().filter(|(k, _)| !axes.contains(k)) {
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
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = axes.clone();
    header.extend(series_keys.iter().map(|s| s.to_string()));
    header.push("status".into());
    header.extend(finals.iter().map(|k| format!("final_{k}")));
    header.extend(claim_ids.iter().map(|s| s.to_string()));
    header.push("run".into());
    writer.write_record(&header)?;
    for (point, state) in plan.points.iter().zip(states) {
        let values: Vec<String> = point.settings.iter().map(|(_, v)| value_label(v)).collect();
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
            record.push(point.name.clone());
            writer.write_record(&record)?;
        }
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
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
