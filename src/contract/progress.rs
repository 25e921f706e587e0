//! The progress bar: indicatif on stderr, shown only for runs that last longer than a moment,
//! and never when stderr is not a terminal (shell loops, CI) or with `--quiet`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run must last before its bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(400);

pub struct Progress {
    bar: ProgressBar,
    enabled: bool,
    shown: AtomicBool,
    start: Instant,
}

impl Progress {
    /// `enabled` is false for `--quiet` and when stderr is not a terminal.
    pub fn new(enabled: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:32} {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        Progress {
            bar,
            enabled,
            shown: AtomicBool::new(false),
            start: Instant::now(),
        }
    }

    /// A progress reporter that never draws (verify, tests).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
        self.show_if_slow();
    }

    /// What the run is doing now (shown beside the bar).
    pub fn phase(&self, message: &str) {
        self.bar.set_message(message.to_string());
        self.show_if_slow();
    }

    fn show_if_slow(&self) {
        if self.enabled && !self.shown.load(Ordering::Relaxed) && self.start.elapsed() > SHOW_AFTER
        {
            self.shown.store(true, Ordering::Relaxed);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
