//! `lab sweep --emit slurm` on a real Slurm (`.ci/slurm-up` starts a one-node cluster): the
//! emitted job array runs every point; a task cancelled with `scancel` leaves its points
//! missing, and submitting the script again runs exactly those.
//!
//! Without `sbatch` (a laptop) the test says so and passes; under CI (`CI` set) it must run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn slurm_is_here() -> bool {
    let here = Command::new("sbatch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must test on a real Slurm: run .ci/slurm-up first"
        );
        eprintln!("skipped: no sbatch here (bash .ci/slurm-up starts a one-node Slurm)");
    }
    here
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each point's manifest status and writer pid; points without a manifest are absent.
fn points(dir: &Path) -> BTreeMap<String, (String, u64)> {
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    sweep["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let name = p.as_str().unwrap();
            let text = std::fs::read_to_string(dir.join(format!("{name}.run.json"))).ok()?;
            let m: serde_json::Value = serde_json::from_str(&text).unwrap();
            Some((
                name.to_string(),
                (
                    m["status"].as_str().unwrap().into(),
                    m["pid"].as_u64().unwrap(),
                ),
            ))
        })
        .collect()
}

fn grid(dir: &Path) -> Vec<String> {
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    sweep["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// The text of every task's output file of job `job` (`slurm/JOB_TASK.out`), by task.
fn task_logs(dir: &Path, job: &str) -> BTreeMap<usize, String> {
    std::fs::read_dir(dir.join("slurm"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let task = name
                .strip_prefix(&format!("{job}_"))?
                .strip_suffix(".out")?;
            let text = std::fs::read_to_string(dir.join("slurm").join(&name)).unwrap();
            Some((task.parse().unwrap(), text))
        })
        .collect()
}

fn wait_until_gone(job: &str) {
    let start = Instant::now();
    loop {
        let queued = run(Command::new("squeue").args(["-h", "-j", job, "-o", "%i %T"]));
        if queued.trim().is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "job {job} still queued: {queued}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_sweep_runs_as_a_job_array_and_a_resubmission_runs_only_the_cancelled_points() {
    if !slurm_is_here() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let emit = |out: &str, axes: &[&str], tasks: &str, throttle: &str| {
        let stdout = run(Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(tmp.path())
            .args([
                "sweep",
                "pmd",
                "--iterations",
                "5",
                "--format",
                "png",
                "--out",
                out,
            ])
            .args(axes)
            .args(["--emit", "slurm", "--tasks", tasks, "--throttle", throttle])
            .args(["--time", "5", "--mem", "200M"]));
        assert!(stdout.contains("sbatch"), "{stdout}");
        tmp.path().join(out)
    };

    // Four points in two tasks, submitted and waited for.
    let a = emit("a", &["eta={1,2}", "seed=0..2"], "2", "2");
    let script = std::fs::read_to_string(a.join("sweep.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-1%2",
        "#SBATCH --time=5",
        "#SBATCH --mem=200M",
        "--shard \"$SLURM_ARRAY_TASK_ID/2\"",
    ] {
        assert!(script.contains(line), "{line}\n{script}");
    }
    run(Command::new("sbatch")
        .arg("--wait")
        .arg(a.join("sweep.sbatch")));
    let done = points(&a);
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(done.values().all(|(s, _)| s == "done"), "{done:?}");
    let table = std::fs::read_to_string(a.join("sweep.csv")).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.contains(",done,")).count(),
        4,
        "{table}"
    );

    // Six points in three tasks, one at a time; task 2 cancelled while it waits.
    let b = emit("b", &["eta={1,2}", "seed=0..3"], "3", "1");
    let submitted = run(Command::new("sbatch")
        .arg("--parsable")
        .arg(b.join("sweep.sbatch")));
    let job = submitted.trim().split(';').next().unwrap().to_string();
    run(Command::new("scancel").arg(format!("{job}_2")));
    wait_until_gone(&job);
    let names = grid(&b);
    let first = points(&b);
    for (i, name) in names.iter().enumerate() {
        let state = first.get(name).map(|(s, _)| s.as_str());
        if i % 3 == 2 {
            assert_eq!(state, None, "{name} belongs to the cancelled task");
        } else {
            assert_eq!(state, Some("done"), "{name}");
        }
    }
    // Submitting the same script again runs the cancelled task's points, and only those.
    let again = run(Command::new("sbatch")
        .arg("--parsable")
        .arg("--wait")
        .arg(b.join("sweep.sbatch")));
    let job2 = again.trim().split(';').next().unwrap().to_string();
    let after = points(&b);
    assert_eq!(after.len(), 6);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(after[name].0, "done", "{name}");
        if i % 3 != 2 {
            assert_eq!(after[name], first[name], "{name} was run again");
        }
    }
    let table = std::fs::read_to_string(b.join("sweep.csv")).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.contains(",done,")).count(),
        6,
        "{table}"
    );
    let logs = task_logs(&b, &job2);
    assert_eq!(logs.len(), 3, "{logs:?}");
    for (task, text) in &logs {
        let expect = if *task == 2 {
            "2 ran, 0 already done"
        } else {
            "0 ran, 2 already done"
        };
        assert!(text.contains(expect), "task {task}: {text}");
    }
}
