//! `lab`: experiments from optimization and learning-theory papers, run, checked and plotted.
//!
//! The binary (`src/main.rs`) only parses the command line and maps errors to exit codes;
//! everything else lives here so that tests and benchmarks call the same code.
//!
//! Data flows one way: spec -> run -> rows -> (CSV, claims, plots).
//!
//! Layers, lowest first (no module names one above it; `tests/layers.rs` checks):
//! - foundations: `table`, `spec`, `claims`, `random`, `manifest`, `data`, `memory`, `plot`,
//!   and the shared numerics `vector`, `flow`, `linear_net`;
//! - `contract`: the typed `Experiment` trait, its adapter, `RunContext`, in-memory runs;
//! - `run` (a run's files on disk) and `experiments` (one folder per paper);
//! - `sweep` (grids of runs, resume, shards, job arrays) and `catalog` (the runs on disk as a
//!   table);
//! - `cli`, `commands`: the command line.

pub mod catalog;
pub mod claims;
pub mod cli;
pub mod commands;
pub mod contract;
pub mod data;
pub mod experiments;
pub mod flow;
pub mod linear_net;
pub mod manifest;
pub mod memory;
pub mod nn;
pub mod plot;
pub mod random;
pub mod report;
pub mod run;
pub mod spec;
pub mod sweep;
pub mod table;
pub mod vector;

/// A problem with what the user gave us (spec, flags, files). Exit code 2.
///
/// Anything else that goes wrong is a failure of the run itself (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError(message.into())
    }
}

/// Shorthand for returning an [`InputError`] from a function that returns `anyhow::Result`.
#[macro_export]
macro_rules! input_error {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::InputError(format!($($arg)*)))
    };
}
