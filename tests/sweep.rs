//! `lab sweep`, `lab runs` and `--emit commands` as a user drives them: a grid of real runs,
//! resumed after Ctrl-C, refused when its input is bad, and listed again.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{interrupt, lab, lab_with_data};
use tempfile::TempDir;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sweep.csv` as rows of column -> cell.
fn sweep_rows(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("sweep.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), header.len(), "a whole row");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Each point's manifest: name -> (status, pid of the process that wrote it).
fn manifests(dir: &Path) -> BTreeMap<String, (String, u64)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".run.json")?
                .to_string();
            let m: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            Some((
                name,
                (
                    m["status"].as_str().unwrap().to_string(),
                    m["pid"].as_u64().unwrap(),
                ),
            ))
        })
        .collect()
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    if dir.is_dir() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::metadata(&p).unwrap();
            files.push((p, meta.len(), meta.modified().unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn a_grid_runs_every_point_resumes_and_refuses_to_replace_other_settings() {
    let tmp = TempDir::new().unwrap();
    let sweep = |extra: &[&str]| {
        lab(tmp.path())
            .args([
                "sweep",
                "pmd",
                "--iterations",
                "20",
                "-j",
                "2",
                "--out",
                "s",
            ])
            .args([
                "eta={0.1,10}",
                "divergence=kl",
                "divergence=euclidean",
                "--seeds",
                "0..2",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = sweep(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("8 points: 8 ran, 0 already done"),
        "{}",
        stdout(&first)
    );
    let dir = tmp.path().join("s");
    let rows = sweep_rows(&dir);
    assert_eq!(rows.len(), 8);
    // Each point is a whole run named by the values that vary, in the fields' order.
    for row in &rows {
        let name = format!(
            "divergence={}-eta={}-seed={}",
            row["divergence"], row["eta"], row["seed"]
        );
        assert_eq!(row["run"], name);
        assert_eq!(row["status"], "done");
        assert_eq!(row["final_iter"], "20");
        for ext in [".csv", ".run.json", ".png", ".svg"] {
            assert!(dir.join(format!("{name}{ext}")).exists(), "{name}{ext}");
        }
        // The sweep's final value is the run's last row (an independent reader: the CSV).
        let run = lab::table::Table::read_csv(&dir.join(format!("{name}.csv"))).unwrap();
        let last = *run.num("value_gap_rho").unwrap().last().unwrap();
        assert_eq!(row["final_value_gap_rho"].parse::<f64>().unwrap(), last);
        assert_eq!(row["pmd.monotone"], "pass");
    }
    // A point runs exactly what `lab run` runs with the same settings: identical metrics.
    let single = lab(tmp.path())
        .args([
            "run",
            "pmd",
            "--iterations",
            "20",
            "eta=10",
            "divergence=kl",
            "seed=1",
        ])
        .args(["--out", "single", "-q"])
        .output()
        .unwrap();
    assert!(single.status.success(), "{}", stderr(&single));
    let strip_time = |p: &Path| {
        let t = lab::table::Table::read_csv(p).unwrap();
        (t.names().to_vec(), t.num("value_gap_rho").unwrap().to_vec())
    };
    assert_eq!(
        strip_time(&tmp.path().join("single.csv")),
        strip_time(&dir.join("divergence=kl-eta=10-seed=1.csv"))
    );

    // The same command again runs nothing and rewrites nothing but the table.
    let before = manifests(&dir);
    let again = sweep(&[]);
    assert!(
        stdout(&again).contains("8 points: 0 ran, 8 already done"),
        "{}",
        stdout(&again)
    );
    assert_eq!(manifests(&dir), before);

    // Another fixed setting changes every point: refused, nothing touched; --force replaces.
    let files = snapshot(&dir);
    let changed = lab(tmp.path())
        .args([
            "sweep",
            "pmd",
            "--iterations",
            "30",
            "-j",
            "2",
            "--out",
            "s",
        ])
        .args([
            "eta={0.1,10}",
            "divergence={kl,euclidean}",
            "--seeds",
            "0..2",
        ])
        .output()
        .unwrap();
    assert_eq!(changed.status.code(), Some(2));
    let e = stderr(&changed);
    assert!(
        e.contains("other fixed settings (iterations: 20 -> 30)") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(snapshot(&dir), files, "nothing written");
    // A point done with other settings than its name says (its manifest edited here) is
    // listed with what differs, and nothing is written.
    let edited = dir.join("divergence=kl-eta=10-seed=1.run.json");
    let text = fs::read_to_string(&edited).unwrap();
    fs::write(&edited, text.replace("\"eta\": 10.0", "\"eta\": 11.0")).unwrap();
    let files = snapshot(&dir);
    let conflict = sweep(&[]);
    assert_eq!(conflict.status.code(), Some(2));
    let e = stderr(&conflict);
    assert!(
        e.contains("1 point(s)")
            && e.contains(
                "divergence=kl-eta=10-seed=1: done with other settings: eta: 11.0 -> 10.0"
            ),
        "{e}"
    );
    assert_eq!(snapshot(&dir), files, "nothing written");
    let forced = lab(tmp.path())
        .args([
            "sweep",
            "pmd",
            "--iterations",
            "30",
            "--out",
            "s",
            "--force",
            "-q",
        ])
        .args([
            "eta={0.1,10}",
            "divergence={kl,euclidean}",
            "--seeds",
            "0..2",
        ])
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(sweep_rows(&dir).iter().all(|r| r["final_iter"] == "30"));

    // A metric against a swept setting, grouped by another.
    let plot = lab(tmp.path())
        .args([
            "plot",
            "s/sweep.csv",
            "--x",
            "eta",
            "--y",
            "final_value_gap_rho",
        ])
        .args(["--group", "divergence", "--logx", "--out", "gap.png"])
        .output()
        .unwrap();
    assert!(plot.status.success(), "{}", stderr(&plot));
    let image = image::open(tmp.path().join("gap.png")).unwrap().to_rgb8();
    assert!(image.width() > 400);
}

#[test]
fn ctrl_c_keeps_finished_points_and_the_next_call_runs_exactly_the_missing_ones() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("s");
    let args = [
        "sweep",
        "pmd",
        "--states",
        "1000",
        "--actions",
        "20",
        "--iterations",
        "300",
        "-j",
        "1",
        "--out",
        "s",
        "--seeds",
        "0..10",
    ];
    let done = || {
        manifests(&dir)
            .values()
            .filter(|(status, _)| status == "done")
            .count()
    };
    let ended = interrupt(tmp.path(), &args, || done() >= 3, Duration::ZERO);
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("run the same command again"),
        "{}",
        ended.stderr
    );
    let first = manifests(&dir);
    let finished: Vec<&String> = first
        .iter()
        .filter(|(_, (s, _))| s == "done")
        .map(|(n, _)| n)
        .collect();
    assert!(finished.len() >= 3 && finished.len() < 10, "{first:?}");
    // sweep.csv says the same, whole.
    let rows = sweep_rows(&dir);
    assert_eq!(rows.len(), 10);
    assert_eq!(
        rows.iter().filter(|r| r["status"] == "done").count(),
        finished.len()
    );

    let second = lab(tmp.path()).args(&args[..]).arg("-q").output().unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    let missing = 10 - finished.len();
    assert!(
        stdout(&second).contains(&format!("{missing} ran, {} already done", finished.len())),
        "{}",
        stdout(&second)
    );
    let after = manifests(&dir);
    for (name, (status, pid)) in &after {
        assert_eq!(status, "done", "{name}");
        // Finished points were not run again: the first process wrote them.
        let unchanged = first.get(name) == Some(&(status.clone(), *pid));
        assert_eq!(finished.contains(&name), unchanged, "{name}");
    }
    assert!(sweep_rows(&dir).iter().all(|r| r["status"] == "done"));
}

#[test]
fn bad_sweeps_say_what_is_wrong_exit_2_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    fs::write(tmp.path().join("a-file"), "x").unwrap();
    // A directory holding another sweep's points.
    let other = lab(tmp.path())
        .args([
            "sweep",
            "pmd",
            "--iterations",
            "3",
            "--out",
            "other",
            "-q",
            "seed={0,1}",
        ])
        .output()
        .unwrap();
    assert!(other.status.success(), "{}", stderr(&other));
    let files = snapshot(&tmp.path().join("other"));
    for (args, expect) in [
        (vec!["etta={1,2}"], "did you mean 'eta'"),
        (vec!["seed=5..5"], "empty"),
        (vec!["seed=0..5:-1"], "step must be positive"),
        (vec!["eta=0.1,1"], "eta={0.1,1}"),
        (
            vec!["--shard", "4/4", "seed=0..2"],
            "shard 4 does not exist",
        ),
        (vec!["--shard", "1/0", "seed=0..2"], "at least 1"),
        (
            vec!["--out", "other", "eta={1,2}"],
            "holds another sweep's points",
        ),
        (vec!["--out", "a-file/s", "eta={1,2}"], "is a file"),
        (vec!["--eta", "1", "eta={1,2}"], "keep one"),
        (vec!["iterations=3"], "nothing varies"),
        (
            vec!["--out", "/proc/lab-sweep", "eta={1,2}"],
            "cannot create /proc/lab-sweep",
        ),
        (vec!["--seeds", "3"], "expected a range"),
        (vec!["eta=1..2:lin:1000000000"], "2 to 100000"),
        (
            vec!["--out", "other", "--iterations", "4", "seed={5,6}"],
            "other fixed settings (iterations: 3 -> 4)",
        ),
    ] {
        let out = lab(tmp.path())
            .args(["sweep", "pmd"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains(expect) && e.lines().count() == 1,
            "{args:?}: {e}"
        );
        assert!(!tmp.path().join("out").exists(), "{args:?} wrote out/");
    }
    assert_eq!(snapshot(&tmp.path().join("other")), files);
    // A directory with other files and no sweep.
    fs::create_dir(tmp.path().join("mine")).unwrap();
    fs::write(tmp.path().join("mine/notes.txt"), "keep").unwrap();
    let out = lab(tmp.path())
        .args(["sweep", "pmd", "--out", "mine", "eta={1,2}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("notes.txt"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(tmp.path().join("mine")).unwrap().count(), 1);
}

/// Every experiment runs inside a sweep (two seeds of its quick settings), svrs on a8a.
#[test]
fn every_experiment_runs_inside_a_sweep() {
    let tmp = TempDir::new().unwrap();
    // svrs compares two methods in each point, to show its series in the table.
    let quick: Vec<(&str, Vec<&str>)> = common::QUICK
        .iter()
        .map(|(name, settings)| {
            let settings = settings
                .iter()
                .map(|s| {
                    if s.starts_with("method=") {
                        "method=gd,svrs"
                    } else {
                        s
                    }
                })
                .collect();
            (*name, settings)
        })
        .collect();
    assert_eq!(quick.len(), lab::experiments::registry().len());
    for (name, settings) in &quick {
        let out = lab_with_data(tmp.path())
            .args(["sweep", name, "--out", name, "-q", "--format", "png"])
            .args(settings)
            .arg("seed={0,1}")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let rows = sweep_rows(&tmp.path().join(name));
        assert!(
            rows.iter().all(|r| r["status"] == "done"),
            "{name}: {rows:?}"
        );
        assert_eq!(
            rows.iter()
                .map(|r| &r["seed"])
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            2,
            "{name}"
        );
    }
    // svrs compares its methods inside each point: one row per point and method.
    let rows = sweep_rows(&tmp.path().join("svrs"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().any(|r| r["method"] == "gd") && rows.iter().any(|r| r["method"] == "svrs"));
    // Points that differ only in their seed are no delta/mu sweep: no scaling figure.
    let plotted = lab(tmp.path())
        .args(["plot", "svrs/seed=0.csv", "svrs/seed=1.csv"])
        .output()
        .unwrap();
    assert!(plotted.status.success(), "{}", stderr(&plotted));
    assert!(
        !stdout(&plotted).contains(".scaling."),
        "{}",
        stdout(&plotted)
    );

    // `lab runs` lists them all, filters, and prints CSV a pipeline reads.
    let runs = lab(tmp.path())
        .args(["runs", ".", "--csv"])
        .output()
        .unwrap();
    assert!(runs.status.success(), "{}", stderr(&runs));
    let mut reader = csv::Reader::from_reader(runs.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let experiment = header.iter().position(|h| h == "experiment").unwrap();
    for (name, _) in &quick {
        assert!(records.iter().any(|r| &r[experiment] == *name), "{name}");
    }
    let kept = lab(tmp.path())
        .args([
            "runs",
            ".",
            "--csv",
            "--where",
            "experiment=svrs",
            "--where",
            "method=gd",
        ])
        .output()
        .unwrap();
    let kept = stdout(&kept);
    // Two points, each with its gd series.
    assert_eq!(kept.lines().count(), 1 + 2, "{kept}");
    assert!(kept.lines().skip(1).all(|l| l.contains(",gd,")), "{kept}");
    let none = lab(tmp.path())
        .args(["runs", ".", "--status", "failed"])
        .output()
        .unwrap();
    assert!(
        stdout(&none).starts_with("no runs match"),
        "{}",
        stdout(&none)
    );
}

/// `--emit commands` prints one `lab run` per point not done; run by a shell, they leave
/// the points a later `lab sweep` finds done.
#[test]
fn emitted_commands_run_the_points_a_sweep_then_finds_done() {
    let tmp = TempDir::new().unwrap();
    let args = [
        "sweep",
        "pmd",
        "--iterations",
        "5",
        "--out",
        "s",
        "eta=1..4",
    ];
    let emitted = lab(tmp.path())
        .args(args)
        .args(["--emit", "commands"])
        .output()
        .unwrap();
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let commands = stdout(&emitted);
    assert_eq!(commands.lines().count(), 3, "{commands}");
    let first_line = commands.lines().next().unwrap();
    assert!(
        first_line.contains(" run pmd ") && first_line.contains("eta=1"),
        "{first_line}"
    );
    // Run two of them as xargs would, then the sweep runs only the third.
    for line in commands.lines().take(2) {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
    }
    let swept = lab(tmp.path()).args(args).arg("-q").output().unwrap();
    assert!(
        stdout(&swept).contains("1 ran, 2 already done"),
        "{}",
        stdout(&swept)
    );

    // A point left interrupted (as Ctrl-C leaves it) is emitted again, replacing its files.
    let manifest = tmp.path().join("s/eta=2.run.json");
    let text = fs::read_to_string(&manifest).unwrap();
    let text = text.replace("\"status\": \"done\"", "\"status\": \"interrupted\"");
    fs::write(&manifest, text).unwrap();
    let emitted = lab(tmp.path())
        .args(args)
        .args(["--emit", "commands"])
        .output()
        .unwrap();
    let commands = stdout(&emitted);
    assert_eq!(commands.lines().count(), 1, "{commands}");
    assert!(
        commands.contains("eta=2") && commands.contains("--force"),
        "{commands}"
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(commands.trim())
        .current_dir(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(manifests(&tmp.path().join("s"))["eta=2"].0, "done");
}

/// Shards of one sweep started together on a fresh directory (as a job array's tasks are):
/// each runs its own points, neither refuses the directory the other is creating, and the
/// last table written holds every point.
#[test]
fn shards_started_together_share_one_directory() {
    let tmp = TempDir::new().unwrap();
    let start = |shard: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(tmp.path())
            .args(["sweep", "pmd", "--iterations", "50", "--out", "s", "-q"])
            .args(["eta=1..9", "--shard", shard])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let shards = [start("0/3"), start("1/3"), start("2/3")];
    for (i, shard) in shards.into_iter().enumerate() {
        let out = shard.wait_with_output().unwrap();
        assert!(out.status.success(), "shard {i}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("8 points, {} in shard {i}/3", [3, 3, 2][i])),
            "{}",
            stdout(&out)
        );
    }
    let rows = sweep_rows(&tmp.path().join("s"));
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");
    let pids: std::collections::BTreeSet<u64> = manifests(&tmp.path().join("s"))
        .values()
        .map(|(_, pid)| *pid)
        .collect();
    assert_eq!(pids.len(), 3, "each shard ran its own points");
}

/// `lab runs` tells a run whose process was killed (manifest `running`, lock free) from a
/// live one, and filters by status.
#[test]
fn lab_runs_names_killed_runs_and_filters_by_status() {
    let tmp = TempDir::new().unwrap();
    let out = lab(tmp.path())
        .args([
            "sweep",
            "pmd",
            "--iterations",
            "5",
            "--out",
            "s",
            "-q",
            "eta={1,2}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let manifest = tmp.path().join("s/eta=2.run.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace("\"status\": \"done\"", "\"status\": \"running\""),
    )
    .unwrap();
    let failed = lab(tmp.path())
        .args(["runs", "s", "--status", "failed", "--csv"])
        .output()
        .unwrap();
    let text = stdout(&failed);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("eta=2") && text.contains("killed"), "{text}");
    let done = lab(tmp.path())
        .args(["runs", "s", "--status", "done"])
        .output()
        .unwrap();
    assert!(
        stdout(&done).contains("eta=1") && !stdout(&done).contains("eta=2 "),
        "{}",
        stdout(&done)
    );
}
