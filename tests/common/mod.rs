//! Helpers shared by the integration tests: the binary in a directory, and a run interrupted
//! by Ctrl-C (SIGINT) the way a user or a cluster stops it.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// `lab` with `dir` as its working directory.
pub fn lab(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.current_dir(dir);
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
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready() {
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

/// The run ended as Ctrl-C should end it: exit 130 within 5 s, the manifest `interrupted`.
pub fn assert_interrupted(ended: &Interrupted, manifest: &Path) {
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended.exit_time < Duration::from_secs(5),
        "took {:?}",
        ended.exit_time
    );
    let text = std::fs::read_to_string(manifest).unwrap();
    assert!(text.contains("\"interrupted\""), "{text}");
}
