//! What a run function sees of the outside world: random streams, a row sink, progress,
//! a summary it can fill in, and the cancel flag. It never opens files or prints.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::progress::Progress;
use crate::table::{Cell, Table};

/// How a column behaves in the CSV and in checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A text key (`divergence`, `method`): one value per series.
    Key,
    /// An integer axis (`iter`, `comms`).
    Axis,
    /// A metric; NaN or inf in it ends the run as failed.
    Metric,
    /// A metric where +-inf is a legitimate value (a log of an exact zero, an infinite step);
    /// NaN still ends the run.
    MetricMayBeInfinite,
    /// Wall-clock time: excluded from the determinism guarantee.
    Time,
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: ColumnKind,
}

impl ColumnSpec {
    pub const fn new(name: &'static str, kind: ColumnKind) -> ColumnSpec {
        ColumnSpec { name, kind }
    }
}

/// Destination of rows besides the in-memory table (the CSV file of a run).
pub trait RowSink {
    fn header(&mut self, names: &[String]) -> Result<()>;
    fn row(&mut self, cells: &[Cell]) -> Result<()>;
}

/// A sink that keeps nothing (in-memory runs for `lab verify` and tests).
pub struct NullSink;

impl RowSink for NullSink {
    fn header(&mut self, _: &[String]) -> Result<()> {
        Ok(())
    }
    fn row(&mut self, _: &[Cell]) -> Result<()> {
        Ok(())
    }
}

/// The run was stopped by Ctrl-C at an iteration boundary.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// A metric came out NaN or infinite.
#[derive(Debug, thiserror::Error)]
#[error("non-finite value {value} in column '{column}' at {position}")]
pub struct NonFinite {
    pub column: String,
    pub value: String,
    pub position: String,
}

/// One independent ChaCha8 stream per named component, derived from the run's root seed.
///
/// Adding a component never shifts another's randomness, and the streams do not depend on
/// how many threads run.
pub fn component_rng(seed: u64, component: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stable_hash(component));
    rng
}

/// A standard normal draw from a component's stream (Box-Muller; the second value of the
/// pair is discarded so every draw uses exactly two uniforms).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Fills `out` with standard normal draws by the ziggurat method of `rand_distr` (several
/// times faster than [`standard_normal`]'s Box-Muller, which keeps the streams of the earlier
/// experiments as they were), for hot loops that need many draws, e.g. mini-batches.
pub fn fill_standard_normal(rng: &mut ChaCha8Rng, out: &mut [f64]) {
    use rand::Rng;
    for x in out.iter_mut() {
        *x = rng.sample(rand_distr::StandardNormal);
    }
}

/// FNV-1a: a hash that stays the same across Rust versions and platforms, unlike
/// `DefaultHasher` (used for stream ids and file names).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A second table of a run, written as `NAME{suffix}.csv`.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub suffix: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

pub struct RunContext<'a> {
    /// Second tables a run writes beside its CSV (`NAME.outcomes.csv`), by suffix.
    attachments: Vec<Attachment>,
    seed: u64,
    sink: &'a mut dyn RowSink,
    columns: Vec<ColumnSpec>,
    rows: Table,
    summary: serde_json::Map<String, serde_json::Value>,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
}

impl<'a> RunContext<'a> {
    pub fn new(
        seed: u64,
        sink: &'a mut dyn RowSink,
        progress: &'a Progress,
        cancel: &'a AtomicBool,
    ) -> RunContext<'a> {
        RunContext {
            attachments: Vec::new(),
            seed,
            sink,
            columns: Vec::new(),
            rows: Table::default(),
            summary: serde_json::Map::new(),
            progress,
            cancel,
        }
    }

    /// The random stream of one component of the run (e.g. `"mdp"`, `"init_policy"`).
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        component_rng(self.seed, component)
    }

    /// Declares the columns (fixed for the run) and writes the header.
    pub fn begin(&mut self, columns: &[ColumnSpec]) -> Result<()> {
        let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
        let text: Vec<bool> = columns.iter().map(|c| c.kind == ColumnKind::Key).collect();
        self.columns = columns.to_vec();
        self.rows = Table::with_columns(&names, &text);
        self.sink.header(&names)
    }

    /// Emits one row: checked for NaN/inf, streamed to the sink, kept for claims and plots.
    pub fn emit(&mut self, row: Vec<Cell>) -> Result<()> {
        anyhow::ensure!(
            row.len() == self.columns.len(),
            "internal: row has {} cells for {} columns",
            row.len(),
            self.columns.len()
        );
        for (spec, cell) in self.columns.iter().zip(&row) {
            if let Cell::Real(x) = cell {
                let bad = match spec.kind {
                    ColumnKind::Metric | ColumnKind::Axis => !x.is_finite(),
                    ColumnKind::MetricMayBeInfinite | ColumnKind::Time => x.is_nan(),
                    ColumnKind::Key => false,
                };
                if bad {
                    return Err(NonFinite {
                        column: spec.name.to_string(),
                        value: cell.to_csv(),
                        position: self.position(&row),
                    }
                    .into());
                }
            }
        }
        self.sink.row(&row)?;
        self.rows.push(&row);
        Ok(())
    }

    /// "iteration 12 (divergence=kl)" from the key and axis cells of a row.
    fn position(&self, row: &[Cell]) -> String {
        let mut axes = Vec::new();
        let mut keys = Vec::new();
        for (spec, cell) in self.columns.iter().zip(row) {
            match spec.kind {
                ColumnKind::Axis => axes.push(format!("{} {}", spec.name, cell.to_csv())),
                ColumnKind::Key => keys.push(format!("{}={}", spec.name, cell.to_csv())),
                _ => {}
            }
        }
        let axes = axes.join(", ").replace("iter ", "iteration ");
        if keys.is_empty() {
            axes
        } else {
            format!("{axes} ({})", keys.join(", "))
        }
    }

    /// Adds a figure to the run's summary (written to the manifest even if the run stops).
    pub fn summarize(&mut self, key: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.summary.insert(key.to_string(), value);
    }

    pub fn progress(&self) -> &Progress {
        self.progress
    }

    /// Whether Ctrl-C was pressed.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The cancel flag itself, for work running on other threads (parallel starts).
    pub fn cancel_flag(&self) -> &'a AtomicBool {
        self.cancel
    }

    /// Returns [`Interrupted`] if Ctrl-C was pressed; call at iteration boundaries.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancelled() {
            Err(Interrupted.into())
        } else {
            Ok(())
        }
    }

    pub fn rows(&self) -> &Table {
        &self.rows
    }

    /// A second table, written beside the CSV as `NAME{suffix}.csv` when the run ends (done
    /// or not), e.g. one row per start.
    pub fn attach(&mut self, attachment: Attachment) {
        self.attachments.retain(|a| a.suffix != attachment.suffix);
        self.attachments.push(attachment);
    }

    /// The attached tables, taken out of the context.
    pub fn take_attachments(&mut self) -> Vec<Attachment> {
        std::mem::take(&mut self.attachments)
    }

    /// Hands back the rows and summary once the run function returns.
    pub fn into_results(self) -> (Table, serde_json::Map<String, serde_json::Value>) {
        (self.rows, self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a1 = component_rng(7, "mdp").next_u64();
        let a2 = component_rng(7, "mdp").next_u64();
        let b = component_rng(7, "init_policy").next_u64();
        let c = component_rng(8, "mdp").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn nan_ends_the_run_naming_column_and_iteration() {
        let progress = Progress::hidden();
        let cancel = AtomicBool::new(false);
        let mut sink = NullSink;
        let mut ctx = RunContext::new(0, &mut sink, &progress, &cancel);
        ctx.begin(&[
            ColumnSpec::new("divergence", ColumnKind::Key),
            ColumnSpec::new("iter", ColumnKind::Axis),
            ColumnSpec::new("gap", ColumnKind::Metric),
            ColumnSpec::new("log_mass", ColumnKind::MetricMayBeInfinite),
        ])
        .unwrap();
        let row = |x: f64, y: f64| {
            vec![
                Cell::Text("kl".into()),
                Cell::Int(3),
                Cell::Real(x),
                Cell::Real(y),
            ]
        };
        ctx.emit(row(1.0, f64::NEG_INFINITY)).unwrap();
        let err = ctx.emit(row(f64::NAN, 0.0)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'gap'") && msg.contains("iteration 3"),
            "{msg}"
        );
        assert!(msg.contains("divergence=kl"), "{msg}");
        assert_eq!(ctx.rows().len(), 1);
    }
}
