//! Helpers shared by the integration tests: the binary in a directory, and a run interrupted
//! by Ctrl-C (SIGINT) the way a user or a cluster stops it.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// `lab` with `dir` as its working directory.
pub fn lab(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.current_dir(dir);
    cmd
}

/// $LAB_DATA (or ../shared/data beside the checkout) as an absolute path, for specs that
/// name a LIBSVM data set while lab runs in a temporary directory.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LAB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        PathBuf::from,
    );
    std::fs::canonicalize(dir).ok()
}

/// `lab` in `dir`, with `LAB_DATA` set to [`data_dir`] when it exists.
pub fn lab_with_data(dir: &Path) -> Command {
    let mut cmd = lab(dir);
    if let Some(data) = data_dir() {
        cmd.env("LAB_DATA", data);
    }
    cmd
}

/// How an interrupted run ended.
pub struct Interrupted {
    pub code: Option<i32>,
    /// From SIGINT to exit.
    pub exit_time: Duration,
    pub stderr: String,
}

/// Starts `lab ARGS` in `dir`, waits (up to 60 s) until `ready()` holds and then `settle`
/// more, sends SIGINT and waits for the exit.
pub fn interrupt(
    dir: &Path,
    args: &[&str],
    ready: impl Fn() -> bool,
    settle: Duration,
) -> Interrupted {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the run ended ({status}) before it could be interrupted: {stderr}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run was not ready after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(settle);
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let output = child.wait_with_output().unwrap();
    Interrupted {
        code: output.status.code(),
        exit_time: stopped.elapsed(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The number of lines of a file (0 while it does not exist).
pub fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// The run at `prefix` ended as Ctrl-C should end it: exit 130 within 5 s, the manifest
/// `interrupted`, and rows kept: more than zero, every one a whole row that parses, as many
/// as the manifest and the message say. Returns the number of rows.
pub fn assert_interrupted(ended: &Interrupted, prefix: &Path) -> usize {
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended.exit_time < Duration::from_secs(5),
        "took {:?}",
        ended.exit_time
    );
    let with = |suffix: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with(".run.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    let csv = with(".csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'), "the last row is whole");
    // The reader lab plot uses: a malformed row would be an error naming its line.
    let rows = lab::table::Table::read_csv(&csv).unwrap();
    assert!(!rows.is_empty(), "no rows kept");
    assert_eq!(manifest["rows"], rows.len(), "{manifest}");
    assert!(
        ended
            .stderr
            .contains(&format!("interrupted: {} rows kept", rows.len())),
        "{}",
        ended.stderr
    );
    rows.len()
}

/// `lab verify EXP` in memory: every claim passes or deviates exactly as declared, and every
/// claim of the experiment is checked on some case.
pub fn assert_every_case_checks_its_claims<E: lab::contract::Verify>() {
    use lab::claims::Outcome;
    let results = E::verify().unwrap();
    for r in &results {
        let want = if r.deviation.is_some() {
            Outcome::Deviates
        } else {
            Outcome::Pass
        };
        assert_eq!(r.outcome(), want, "{}: {} {}", r.on, r.id, r.measured);
    }
    for doc in E::CLAIMS {
        assert!(
            results.iter().any(|r| r.id == doc.id),
            "{} never checked",
            doc.id
        );
    }
}

/// Each experiment's cheapest settings that still run its whole pipeline (a second or less).
pub const QUICK: &[(&str, &[&str])] = &[
    ("pmd", &["iterations=3"]),
    ("svrs", &["samples=400", "nodes=4", "method=gd", "tol=1e-2"]),
    ("deeplinear", &["t_end=1", "outputs=4"]),
    ("directional", &["t_end=1", "outputs=4"]),
    (
        "noise",
        &["epochs=1", "iterations=20", "starts=2", "record_every=10"],
    ),
    ("sparselinear", &["starts=3"]),
    ("bnquant", &["channels=20", "curve_max_n=2"]),
    ("locmoe", &["theory_samples=200"]),
    (
        "bpsvrg",
        &[
            "epochs=1",
            "seeds=1",
            "train_size=200",
            "test_size=100",
            "landscape_points=3",
        ],
    ),
];
