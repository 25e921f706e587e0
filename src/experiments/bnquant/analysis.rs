//! One channel through every method: the exact search with its certificates, and each
//! baseline compared code by code with the exact outputs.

use std::time::Instant;

use super::baselines::{Baseline, Float32, Float64, Mismatch, Naive, Tflite, compare};
use super::exact::{Codes, Folded, Truth, staircase};
use super::search::{Exact, certify_by_runs, certify_minimal, mismatches, search};

/// Ranges up to this many codes are checked code by code; wider ones (int32) by the runs.
pub const EXHAUSTIVE_MAX: u64 = 1 << 24;

/// What is fixed for every channel of a pass.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The output zero point (TFLite adds it after the multiplier).
    pub zero: i64,
    pub preshift: u32,
    pub curve_max_n: u32,
}

/// The verdicts and figures of one channel.
#[derive(Debug, Clone)]
pub struct ChannelResult {
    pub folded: Folded,
    /// The output zero point (TFLite's).
    pub zero: i64,
    pub codes: Codes,
    pub exact: Option<Exact>,
    /// Runs of the staircase (distinct outputs, at most the output levels).
    pub runs: usize,
    /// Certified minimal: no M works at n - 1, by the exact elimination (None: more runs than
    /// [`super::search::CERTIFY_MAX_RUNS`], not certified).
    pub minimal: Option<bool>,
    /// Certified exact from the runs' ends (any range).
    pub by_runs: bool,
    /// Mismatching codes, checked one by one (None for ranges above [`EXHAUSTIVE_MAX`]).
    pub mismatches: Option<u64>,
    pub naive: Option<Mismatch>,
    pub tflite: Option<Mismatch>,
    pub tflite_pre: Option<Mismatch>,
    pub f32: Option<Mismatch>,
    pub f64: Option<Mismatch>,
    /// For n = 0..=curve_max_n: naive mismatches at n, pre-shifted TFLite mismatches at p = n
    /// (None where its accumulator leaves int32).
    pub curve: Vec<(u64, Option<u64>)>,
    /// Seconds of the search plus the code-by-code certification.
    pub seconds: f64,
}

impl ChannelResult {
    /// The baselines' comparisons, in the order of [`super::BASELINES`].
    pub fn baselines(&self) -> [Option<Mismatch>; 5] {
        [self.naive, self.tflite, self.tflite_pre, self.f32, self.f64]
    }
}

/// Searches, certifies and compares one channel.
pub fn analyze(folded: Folded, codes: Codes, setting: Setting) -> ChannelResult {
    let started = Instant::now();
    let truth = Truth::new(folded);
    let runs = staircase(&truth, codes);
    let found = search(&runs, folded.out).exact;
    let exhaustive = codes.count() <= EXHAUSTIVE_MAX;
    let mismatches = match (&found, exhaustive) {
        (Some(e), true) => Some(mismatches(&truth, codes, e)),
        (None, true) => Some(codes.count()),
        (_, false) => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    let minimal = match &found {
        Some(e) => certify_minimal(&runs, folded.out, e),
        None => Some(false),
    };
    let by_runs = found
        .as_ref()
        .is_some_and(|e| certify_by_runs(&runs, folded.out, e));
    let against = |b: &dyn Baseline| exhaustive.then(|| compare(b, &truth, codes));
    let n = found.map_or(0, |e| e.n);
    let curve = if exhaustive {
        (0..=setting.curve_max_n)
            .map(|k| {
                let naive = compare(&Naive::new(&folded, k), &truth, codes).count;
                let pre = compare(&Tflite::new(&folded, setting.zero, k), &truth, codes);
                (naive, (pre.overflow == 0).then_some(pre.count))
            })
            .collect()
    } else {
        Vec::new()
    };
    ChannelResult {
        folded,
        zero: setting.zero,
        codes,
        exact: found,
        runs: runs.len(),
        minimal,
        by_runs,
        mismatches,
        naive: against(&Naive::new(&folded, n)),
        tflite: against(&Tflite::new(&folded, setting.zero, 0)).filter(|m| m.overflow == 0),
        tflite_pre: against(&Tflite::new(&folded, setting.zero, setting.preshift))
            .filter(|m| m.overflow == 0),
        f32: against(&Float32(folded)),
        f64: against(&Float64(folded)),
        curve,
        seconds,
    }
}

/// The minimal shift over another range (a network channel over all of int32), certified by
/// the runs: None if no exact (M, C, n) was found.
pub fn minimal_shift(folded: Folded, codes: Codes) -> Option<u32> {
    let truth = Truth::new(folded);
    let runs = staircase(&truth, codes);
    search(&runs, folded.out)
        .exact
        .filter(|e| {
            certify_by_runs(&runs, folded.out, e)
                && certify_minimal(&runs, folded.out, e) != Some(false)
        })
        .map(|e| e.n)
}
