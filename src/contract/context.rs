//! What a run function sees of the outside world: random streams, a row sink, progress, the
//! cancel flag, and independent jobs run in parallel. It never opens files or prints.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use rand_chacha::ChaCha8Rng;

use super::progress::Progress;
use crate::random::Streams;
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
    /// Printed, at its final value, in the end-of-run report.
    pub headline: bool,
}

impl ColumnSpec {
    pub const fn new(name: &'static str, kind: ColumnKind) -> ColumnSpec {
        ColumnSpec {
            name,
            kind,
            headline: false,
        }
    }

    /// Marks the column for the end-of-run report.
    pub const fn headline(mut self) -> ColumnSpec {
        self.headline = true;
        self
    }
}

/// Destination of rows besides the in-memory table (the CSV file of a run).
pub trait RowSink: Send {
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

/// A second table of a run, written as `NAME{suffix}.csv`.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub suffix: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Whether work should stop: Ctrl-C, or (inside [`RunContext::jobs`]) a sibling job failed.
/// Cheap to copy into loops that poll it, e.g. an ODE integrator's stop test.
#[derive(Clone, Copy)]
pub struct Cancel<'a> {
    flags: [&'a AtomicBool; 2],
}

impl<'a> Cancel<'a> {
    pub fn new(flag: &'a AtomicBool) -> Cancel<'a> {
        Cancel {
            flags: [flag, flag],
        }
    }

    pub fn is_set(&self) -> bool {
        self.flags.iter().any(|f| f.load(Ordering::Relaxed))
    }

    /// [`Interrupted`] if set; call at iteration boundaries.
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            Err(Interrupted.into())
        } else {
            Ok(())
        }
    }
}

/// The rows of a run: checked, written to the sink, kept in memory for claims and plots.
struct Rows<'a> {
    sink: &'a mut dyn RowSink,
    columns: Vec<ColumnSpec>,
    table: Table,
}

impl Rows<'_> {
    /// NaN or inf in a metric is an error naming the column and the row's position.
    fn check(&self, row: &[Cell]) -> Result<()> {
        anyhow::ensure!(
            row.len() == self.columns.len(),
            "internal: row has {} cells for {} columns",
            row.len(),
            self.columns.len()
        );
        for (spec, cell) in self.columns.iter().zip(row) {
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
                        position: self.position(row),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, row: &[Cell]) -> Result<()> {
        self.sink.row(row)?;
        self.table.push(row);
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
}

/// A run's view of the world, with the summary `S` it fills in as it goes (written to the
/// manifest even if the run stops).
pub struct RunContext<'a, S = ()> {
    pub summary: S,
    streams: Streams,
    rows: Rows<'a>,
    /// Second tables a run writes beside its CSV (`NAME.outcomes.csv`), by suffix.
    attachments: Vec<Attachment>,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
}

impl<'a, S> RunContext<'a, S> {
    pub fn new(
        summary: S,
        streams: Streams,
        sink: &'a mut dyn RowSink,
        progress: &'a Progress,
        cancel: &'a AtomicBool,
    ) -> RunContext<'a, S> {
        RunContext {
            summary,
            streams,
            rows: Rows {
                sink,
                columns: Vec::new(),
                table: Table::default(),
            },
            attachments: Vec::new(),
            progress,
            cancel,
        }
    }

    /// The random stream of one component of the run (e.g. `"mdp"`, `"init_policy"`).
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        self.streams.rng(component)
    }

    /// The run's streams, for code that builds a model outside the run as well (an exporter).
    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// Declares the columns (fixed for the run) and writes the header.
    pub fn begin(&mut self, columns: &[ColumnSpec]) -> Result<()> {
        let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
        let text: Vec<bool> = columns.iter().map(|c| c.kind == ColumnKind::Key).collect();
        self.rows.columns = columns.to_vec();
        self.rows.table = Table::with_columns(&names, &text);
        self.rows.sink.header(&names)
    }

    /// Emits one row: checked for NaN/inf, streamed to the sink, kept for claims and plots.
    pub fn emit(&mut self, row: Vec<Cell>) -> Result<()> {
        self.rows.check(&row)?;
        self.rows.write(&row)
    }

    pub fn progress(&self) -> &Progress {
        self.progress
    }

    /// The cancel flag as loops poll it.
    pub fn cancel(&self) -> Cancel<'a> {
        Cancel::new(self.cancel)
    }

    /// Returns [`Interrupted`] if Ctrl-C was pressed; call at iteration boundaries.
    pub fn check_cancel(&self) -> Result<()> {
        self.cancel().check()
    }

    pub fn rows(&self) -> &Table {
        &self.rows.table
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

    /// The columns the end-of-run report prints.
    pub fn headline_columns(&self) -> Vec<&'static str> {
        self.rows
            .columns
            .iter()
            .filter(|c| c.headline)
            .map(|c| c.name)
            .collect()
    }

    /// Hands back the rows and the summary once the run function returns.
    pub fn into_results(self) -> (Table, S) {
        (self.rows.table, self.summary)
    }

    /// Runs independent jobs (a method and a seed, a start) in parallel and returns their
    /// results in job order.
    ///
    /// Each job is a task of the rayon pool, started in job order (a FIFO scope); the rows
    /// each emits reach the CSV in job order: the earliest unfinished job streams as it
    /// computes, later ones are held until every job before them is done, so the file is the
    /// same whatever the thread count. The progress bar advances per finished job. Ctrl-C
    /// stops the jobs at their next check and keeps every row emitted so far, in job order
    /// (the result is then [`Interrupted`]); an error or a panic in one job stops the others
    /// and is returned (the lowest job's, if several fail). Called from inside a rayon worker
    /// (a sweep running points in parallel), it shares that pool rather than waiting on it.
    pub fn jobs<J, R, F>(&mut self, items: &[J], work: F) -> Result<Vec<R>>
    where
        J: Sync,
        R: Send,
        F: Fn(&J, &Job) -> Result<R> + Sync,
    {
        let n = items.len();
        let order = Mutex::new(JobOrder {
            rows: &mut self.rows,
            current: 0,
            held: (0..n).map(|_| Vec::new()).collect(),
            finished: vec![false; n],
        });
        let results: Vec<Mutex<Option<Result<R>>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let stop = AtomicBool::new(false);
        let cancel = Cancel {
            flags: [self.cancel, &stop],
        };
        let (streams, progress) = (self.streams, self.progress);
        let emit = |k: usize, row: Vec<Cell>| lock(&order).emit(k, row);
        let run_job = |k: usize| {
            if cancel.is_set() {
                return;
            }
            let job = Job {
                index: k,
                emit: &emit,
                streams,
                cancel,
            };
            // A panic is this job's error: the others stop and every row is kept.
            let mut result = std::panic::catch_unwind(AssertUnwindSafe(|| work(&items[k], &job)))
                .unwrap_or_else(|panic| {
                    Err(anyhow::anyhow!(
                        "internal error (panic) in job {k}: {}",
                        panic_text(panic.as_ref())
                    ))
                });
            let finished = lock(&order).finish(k, result.is_ok());
            if let (Ok(_), Err(e)) = (&result, finished) {
                result = Err(e);
            }
            if result.is_ok() {
                progress.advance(1);
            } else {
                stop.store(true, Ordering::SeqCst);
            }
            *lock(&results[k]) = Some(result);
        };
        // One task per job, in job order: a thread that waits inside a job (on nested
        // parallel work) may start another job, never a whole loop of them.
        rayon::scope_fifo(|scope| {
            for k in 0..n {
                let run_job = &run_job;
                scope.spawn_fifo(move |_| run_job(k));
            }
        });
        // Never lose a row: what stopped jobs emitted is written after the finished ones.
        let mut order = order.into_inner().unwrap_or_else(|e| e.into_inner());
        order.release_all()?;
        let mut done = Vec::with_capacity(n);
        let mut interrupted = false;
        let mut first_error = None;
        for slot in results {
            match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Ok(r)) => done.push(r),
                Some(Err(e)) if e.is::<Interrupted>() => interrupted = true,
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                None => interrupted = true,
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if interrupted => Err(Interrupted.into()),
            None => Ok(done),
        }
    }
}

/// The message of a panic's payload.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A job that panicked poisons nothing we cannot go on with: the rows are whole rows.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The rows of jobs, in job order.
struct JobOrder<'r, 'a> {
    rows: &'r mut Rows<'a>,
    /// The earliest unfinished job: its rows go straight to the sink.
    current: usize,
    /// Rows of later jobs, held until every job before them has finished.
    held: Vec<Vec<Vec<Cell>>>,
    finished: Vec<bool>,
}

impl JobOrder<'_, '_> {
    fn emit(&mut self, job: usize, row: Vec<Cell>) -> Result<()> {
        self.rows.check(&row)?;
        if job == self.current {
            self.rows.write(&row)
        } else {
            self.held[job].push(row);
            Ok(())
        }
    }

    /// Marks a job finished (`ok`) and streams the held rows of the jobs that follow it.
    fn finish(&mut self, job: usize, ok: bool) -> Result<()> {
        if !ok {
            return Ok(());
        }
        self.finished[job] = true;
        while self.current < self.finished.len() && self.finished[self.current] {
            self.current += 1;
            if let Some(held) = self.held.get_mut(self.current) {
                for row in std::mem::take(held) {
                    self.rows.write(&row)?;
                }
            }
        }
        Ok(())
    }

    /// Writes every row still held, in job order (after Ctrl-C or a failed job).
    fn release_all(&mut self) -> Result<()> {
        for held in &mut self.held {
            for row in std::mem::take(held) {
                self.rows.write(&row)?;
            }
        }
        Ok(())
    }
}

/// One job of [`RunContext::jobs`]: its rows, its random streams, its stop test.
pub struct Job<'s> {
    index: usize,
    emit: &'s (dyn Fn(usize, Vec<Cell>) -> Result<()> + Sync),
    streams: Streams,
    cancel: Cancel<'s>,
}

impl Job<'_> {
    /// Emits one row of this job (checked like [`RunContext::emit`]).
    pub fn emit(&self, row: Vec<Cell>) -> Result<()> {
        (self.emit)(self.index, row)
    }

    /// The random stream of one component (the same streams as the run's).
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        self.streams.rng(component)
    }

    /// Ctrl-C, or a sibling job failed.
    pub fn cancel(&self) -> Cancel<'_> {
        self.cancel
    }

    /// Returns [`Interrupted`] when the job should stop.
    pub fn check_cancel(&self) -> Result<()> {
        self.cancel.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::AtomicUsize;

    /// Collects what reaches the sink.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl RowSink for Recorder {
        fn header(&mut self, names: &[String]) -> Result<()> {
            self.0.push(names.join(","));
            Ok(())
        }
        fn row(&mut self, cells: &[Cell]) -> Result<()> {
            self.0
                .push(cells.iter().map(Cell::to_csv).collect::<Vec<_>>().join(","));
            Ok(())
        }
    }

    fn columns() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("job", ColumnKind::Axis),
            ColumnSpec::new("step", ColumnKind::Axis),
            ColumnSpec::new("x", ColumnKind::Metric),
        ]
    }

    /// Runs `jobs` jobs of uneven length on `threads` threads; returns the sink's lines.
    fn run_jobs(threads: usize, jobs: usize, cancel_at: Option<usize>) -> (Vec<String>, bool) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let progress = Progress::hidden();
            let cancel = AtomicBool::new(false);
            let mut sink = Recorder::default();
            let (interrupted, kept);
            let finished = AtomicUsize::new(0);
            {
                let mut ctx = RunContext::new((), Streams::new(1), &mut sink, &progress, &cancel);
                ctx.begin(&columns()).unwrap();
                let items: Vec<usize> = (0..jobs).collect();
                let result = ctx.jobs(&items, |&k, job| {
                    // Uneven work, so jobs finish out of order on several threads.
                    let steps = 1 + (k * 7919) % 13;
                    for s in 0..steps {
                        if cancel_at == Some(k) && s == 2 {
                            // Ctrl-C once every job before this one has ended.
                            while finished.load(Ordering::SeqCst) < k {
                                std::thread::sleep(std::time::Duration::from_micros(100));
                            }
                            cancel.store(true, Ordering::SeqCst);
                        }
                        job.check_cancel()?;
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        job.emit(vec![
                            Cell::Int(k as i64),
                            Cell::Int(s as i64),
                            Cell::Real(k as f64 + s as f64 / 100.0),
                        ])?;
                    }
                    if k < cancel_at.unwrap_or(0) {
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(steps)
                });
                interrupted = result.is_err();
                if let Ok(steps) = &result {
                    let expect: Vec<usize> = (0..jobs).map(|k| 1 + (k * 7919) % 13).collect();
                    assert_eq!(steps, &expect);
                }
                kept = ctx.rows().len();
            }
            // The in-memory rows are the rows of the file.
            assert_eq!(sink.0.len(), kept + 1);
            (sink.0, interrupted)
        })
    }

    #[test]
    fn job_rows_arrive_in_job_order_whatever_the_threads() {
        let (one, _) = run_jobs(1, 40, None);
        for threads in [2, 3, 5] {
            let (many, interrupted) = run_jobs(threads, 40, None);
            assert!(!interrupted);
            assert_eq!(one, many, "{threads} threads");
        }
        // Sorted by (job, step): the order a sequential loop writes.
        let keys: Vec<(i64, i64)> = one[1..]
            .iter()
            .map(|l| {
                let mut p = l.split(',').map(|x| x.parse::<i64>().unwrap_or(-1));
                (p.next().unwrap(), p.next().unwrap())
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn ctrl_c_keeps_every_row_emitted_in_job_order() {
        let (lines, interrupted) = run_jobs(3, 40, Some(10));
        assert!(interrupted);
        let (all, _) = run_jobs(1, 40, None);
        // Every kept row is a row of the full run, and the rows of jobs 0..10 are all there.
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(all.contains(line), "{line}");
        }
        for k in 0..10 {
            assert!(lines.iter().any(|l| l.starts_with(&format!("{k},"))), "{k}");
        }
        let jobs: Vec<i64> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(jobs.windows(2).all(|w| w[0] <= w[1]), "{jobs:?}");
    }

    /// A context of the seed `seed` that keeps rows in memory only, begun with `columns`.
    fn in_memory<T>(seed: u64, columns: &[ColumnSpec], f: impl FnOnce(&mut RunContext) -> T) -> T {
        let progress = Progress::hidden();
        let cancel = AtomicBool::new(false);
        let mut sink = NullSink;
        let mut ctx = RunContext::new((), Streams::new(seed), &mut sink, &progress, &cancel);
        ctx.begin(columns).unwrap();
        f(&mut ctx)
    }

    #[test]
    fn a_failing_job_stops_the_others_and_is_reported() {
        in_memory(0, &columns(), |ctx| {
            let items: Vec<usize> = (0..200).collect();
            let started = AtomicUsize::new(0);
            let err = ctx
                .jobs(&items, |&k, job| {
                    started.fetch_add(1, Ordering::SeqCst);
                    let x = if k == 4 { f64::NAN } else { 1.0 };
                    if k > 4 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    job.emit(vec![Cell::Int(k as i64), Cell::Int(0), Cell::Real(x)])
                })
                .unwrap_err();
            assert!(err.to_string().contains("'x'"), "{err}");
            assert!(err.to_string().contains("job 4"), "{err}");
            // The jobs after it stopped: far fewer than 200 ran (each takes 2 ms).
            let ran = started.load(Ordering::SeqCst);
            assert!(ran < 100, "{ran} jobs ran");
            // The rows of the jobs that ended are kept.
            assert!(ctx.rows().len() >= 4);
        });
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_rows_are_kept() {
        in_memory(0, &columns(), |ctx| {
            let items: Vec<usize> = (0..10).collect();
            let err = ctx
                .jobs(&items, |&k, job| {
                    job.emit(vec![Cell::Int(k as i64), Cell::Int(0), Cell::Real(1.0)])?;
                    if k == 6 {
                        panic!("broken kernel");
                    }
                    Ok(())
                })
                .unwrap_err();
            assert!(
                err.to_string().contains("panic) in job 6: broken kernel"),
                "{err}"
            );
            // Job 6 emitted its row before it panicked, and rows 0..5 were written before it.
            let jobs = ctx.rows().num("job").unwrap().to_vec();
            assert!((0..=6).all(|k| jobs.contains(&(k as f64))), "{jobs:?}");
        });
    }

    #[test]
    fn jobs_run_inside_a_rayon_worker() {
        // A sweep runs points on the pool; each point's jobs must not wait on the pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let totals: Vec<usize> = pool.install(|| {
            (0..4usize)
                .into_par_iter()
                .map(|point| {
                    in_memory(point as u64, &columns(), |ctx| {
                        let items: Vec<usize> = (0..8).collect();
                        ctx.jobs(&items, |&k, _| Ok(k + point))
                            .unwrap()
                            .iter()
                            .sum()
                    })
                })
                .collect()
        });
        assert_eq!(totals, vec![28, 36, 44, 52]);
    }

    #[test]
    fn nan_ends_the_run_naming_column_and_iteration() {
        let columns = [
            ColumnSpec::new("divergence", ColumnKind::Key),
            ColumnSpec::new("iter", ColumnKind::Axis),
            ColumnSpec::new("gap", ColumnKind::Metric),
            ColumnSpec::new("log_mass", ColumnKind::MetricMayBeInfinite),
        ];
        in_memory(0, &columns, |ctx| {
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
        });
    }
}
