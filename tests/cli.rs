//! The command line as a user meets it: runs, outputs, bad input, overwrites, plots, Ctrl-C.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn lab(dir: &Path) -> Command {
    common::lab_with_data(dir)
}

fn read_manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Files under `dir/out`, sorted.
fn outputs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("out"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `lab args`, expects exit code 2 and every needle in stderr; returns stderr.
fn input_error(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let assert = lab(dir).args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr:?}"
        );
    }
    stderr
}

fn is_png(path: &Path) -> bool {
    fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 10_000)
}

/// The text elements of an SVG (labels, legend entries), trimmed.
fn svg_labels(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains("<svg") && text.contains("</svg>"),
        "{}",
        path.display()
    );
    text.split("<text")
        .skip(1)
        .filter_map(|part| {
            let body = part.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_string())
        })
        .collect()
}

#[test]
fn a_run_writes_csv_manifest_and_plots() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "--divergence",
            "euclidean,kl",
            "iterations=30",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("pmd.monotone"));
    let prefix = dir
        .path()
        .join("out/pmd-divergence=euclidean+kl-iterations=30-seed=0");
    let csv = fs::read_to_string(prefix.with_extension("csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "divergence,iter,eta,value_gap_inf,value_gap_rho,nonopt_mass,log_nonopt_mass,\
         kl_to_optimal,optimal,min_improvement,bound_xiao_thm8,bound_xiao_thm10,bound_johnson,wall_s"
    );
    // One row for the initial policy and one per iteration, for each divergence.
    assert_eq!(lines.count(), 2 * 31);
    let manifest = read_manifest(&prefix.with_extension("run.json"));
    assert_eq!(manifest["status"], "done");
    assert_eq!(manifest["experiment"], "pmd");
    assert_eq!(manifest["spec"]["iterations"], 30);
    assert_eq!(manifest["seed"], 0);
    assert!(manifest["claims"].as_array().unwrap().len() >= 4);
    assert!(manifest["summary"]["gap_delta"].as_f64().unwrap() > 0.0);
    assert!(is_png(&prefix.with_extension("png")));
    let labels = svg_labels(&prefix.with_extension("svg"));
    assert!(
        labels.iter().any(|l| l == "divergence=kl"),
        "legend in the SVG: {labels:?}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_problem_and_writes_nothing() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("typo.toml"), "eta = 5\netaa = 1\n").unwrap();
    fs::write(dir.path().join("broken.toml"), "eta = \n").unwrap();
    fs::write(dir.path().join("wrong.toml"), "gamma = \"high\"\n").unwrap();
    fs::write(
        dir.path().join("bad.mdp"),
        "lab-mdp 1\nstates 1\nactions 2\nr 0 0 1\np 0 0 0 1\nr 0 1 1\np 0 1 0 0.5\n",
    )
    .unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["run", "pmd", "gama=0.5"],
            &["unknown key 'gama'", "did you mean 'gamma'"],
        ),
        (
            &["run", "pmd", "--gamma", "1.5"],
            &["gamma", "1.5", "(0, 1)"],
        ),
        (
            &["run", "pmd", "states=0"],
            &["states", "0", "[1, 10000000]"],
        ),
        (
            &["run", "pmd", "--divergence", "euclidian"],
            &["euclidian", "did you mean 'euclidean'"],
        ),
        (&["run", "pmd", "eta=-3"], &["eta", "-3", "> 0"]),
        (
            &["run", "pmd", "--spec", "typo.toml"],
            &["typo.toml", "unknown key 'etaa'", "did you mean 'eta'"],
        ),
        (
            &["run", "pmd", "--spec", "broken.toml"],
            &["broken.toml", "not valid TOML", "line 1"],
        ),
        (
            &["run", "pmd", "--spec", "wrong.toml"],
            &["wrong.toml", "gamma", "wrong type"],
        ),
        (&["run", "pmd", "--spec", "missing.toml"], &["missing.toml"]),
        (
            &["run", "pmd", "mdp=file", "mdp_file=bad.mdp"],
            &["bad.mdp", "sum to 0.5"],
        ),
        (
            &["run", "pmd", "mdp=file", "mdp_file=nowhere.mdp"],
            &["nowhere.mdp"],
        ),
        (
            &["run", "pmd", "branching=80"],
            &["branching = 80", "states = 50"],
        ),
        (&["run", "pmd", "eta"], &["expected key=value"]),
        (
            &["show", "pdm"],
            &["unknown experiment 'pdm'", "did you mean 'pmd'"],
        ),
    ];
    for (args, needles) in cases {
        let stderr = input_error(dir.path(), args, needles);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{stderr}"
        );
        assert!(
            outputs(dir.path()).is_empty(),
            "{args:?} wrote {:?}",
            outputs(dir.path())
        );
    }
}

#[test]
fn a_finished_run_is_never_overwritten_silently() {
    let dir = TempDir::new().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = lab(dir.path());
        cmd.args(["run", "pmd", "--out", "out/x", "iterations=5", "-q"])
            .args(extra);
        cmd
    };
    run(&["mdp=two_state"]).assert().success();
    let landscape = dir.path().join("out/x.landscape.png");
    assert!(is_png(&landscape));
    // An unrelated file with a similar name is never touched.
    fs::write(dir.path().join("out/x.notes.png"), "mine").unwrap();
    let csv = dir.path().join("out/x.csv");
    let first = fs::read_to_string(&csv).unwrap();
    run(&["eta=1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already holds a run (status done"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(fs::read_to_string(&csv).unwrap(), first, "untouched");
    run(&["eta=1", "--force"]).assert().success();
    assert_ne!(fs::read_to_string(&csv).unwrap(), first);
    assert!(!landscape.exists(), "the replaced run's figures go with it");
    assert_eq!(
        fs::read_to_string(dir.path().join("out/x.notes.png")).unwrap(),
        "mine"
    );
    assert_eq!(
        read_manifest(&dir.path().join("out/x.run.json"))["spec"]["eta"],
        1.0
    );
}

/// For every experiment: what `lab show EXP` prints is a spec that `lab run --spec FILE`
/// takes as it is (the file names its experiment) and resolves to the defaults.
#[test]
fn every_show_output_is_a_spec_of_the_defaults() {
    let dir = TempDir::new().unwrap();
    let names: Vec<String> = lab::experiments::registry()
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(names.len(), common::QUICK.len());
    for (name, quick) in common::QUICK {
        assert!(names.iter().any(|n| n == name), "{name}");
        let shown = lab(dir.path()).args(["show", name]).assert().success();
        let file = dir.path().join(format!("{name}.toml"));
        fs::write(&file, &shown.get_output().stdout).unwrap();
        lab(dir.path())
            .args(["run", "--spec"])
            .arg(&file)
            .args(*quick)
            .args(["--out", &format!("out/{name}-shown"), "-q"])
            .assert()
            .success();
        lab(dir.path())
            .args(["run", name])
            .args(*quick)
            .args(["--out", &format!("out/{name}-defaults"), "-q"])
            .assert()
            .success();
        let spec = |run: &str| {
            read_manifest(&dir.path().join(format!("out/{run}.run.json")))["spec"].clone()
        };
        assert_eq!(
            spec(&format!("{name}-shown")),
            spec(&format!("{name}-defaults")),
            "{name}"
        );
    }
    // A spec that names no experiment, or another one, says so.
    fs::write(dir.path().join("bare.toml"), "eta = 2\n").unwrap();
    input_error(
        dir.path(),
        &["run", "--spec", "bare.toml"],
        &[
            "bare.toml does not say which experiment",
            "experiment = \"EXP\"",
        ],
    );
    input_error(
        dir.path(),
        &["run", "svrs", "--spec", "pmd.toml"],
        &["pmd.toml", "this spec is for 'pmd', not 'svrs'"],
    );
}

#[test]
fn show_prints_a_spec_that_runs_as_is() {
    let dir = TempDir::new().unwrap();
    let shown = lab(dir.path()).args(["show", "pmd"]).assert().success();
    let text = String::from_utf8_lossy(&shown.get_output().stdout).into_owned();
    assert!(text.contains("# allowed: a number in (0, 1)\ngamma = 0.9"));
    assert!(text.contains("[reconstructed]") && text.contains("[verified in source]"));
    fs::write(dir.path().join("spec.toml"), &text).unwrap();
    lab(dir.path())
        .args(["run", "pmd", "--spec", "spec.toml", "--out", "out/a", "-q"])
        .assert()
        .success();
    lab(dir.path())
        .args(["run", "pmd", "--out", "out/b", "-q"])
        .assert()
        .success();
    let metrics = |name: &str| metric_columns(&dir.path().join(format!("out/{name}.csv")));
    assert_eq!(metrics("a"), metrics("b"));
    // A manifest re-runs the same experiment too.
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "--spec",
            "out/a.run.json",
            "--out",
            "out/c",
            "-q",
        ])
        .assert()
        .success();
    assert_eq!(metrics("a"), metrics("c"));
}

/// Every column but wall-clock time, row by row.
fn metric_columns(csv: &Path) -> Vec<String> {
    let text = fs::read_to_string(csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let time = header.iter().position(|h| *h == "wall_s").unwrap();
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(time);
            cells.join(",")
        })
        .collect()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = TempDir::new().unwrap();
    // Iterative evaluation (parallel sweeps) and every divergence (parallel per-state steps).
    let common = [
        "run",
        "pmd",
        "states=400",
        "branching=6",
        "evaluation=iterative",
        "divergence=euclidean,kl,tsallis,burg",
        "iterations=25",
        "-q",
    ];
    for threads in ["1", "2", "3"] {
        lab(dir.path())
            .args(["--threads", threads])
            .args(common)
            .args(["--out", &format!("out/t{threads}")])
            .assert()
            .success();
    }
    let one = metric_columns(&dir.path().join("out/t1.csv"));
    assert_eq!(one.len(), 4 * 26 + 1);
    assert_eq!(one, metric_columns(&dir.path().join("out/t2.csv")));
    assert_eq!(one, metric_columns(&dir.path().join("out/t3.csv")));
}

#[test]
fn exported_mdp_reproduces_the_run() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args(["run", "pmd", "states=30", "--export-mdp", "g.mdp"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "30 states, 10 actions, 1500 transitions",
        ));
    lab(dir.path())
        .args(["run", "pmd", "states=30", "--export-mdp", "g.mdp"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("g.mdp exists"));
    // The file is found relative to the spec that names it.
    fs::create_dir(dir.path().join("specs")).unwrap();
    fs::rename(dir.path().join("g.mdp"), dir.path().join("specs/g.mdp")).unwrap();
    fs::write(
        dir.path().join("specs/file.toml"),
        "mdp = \"file\"\nmdp_file = \"g.mdp\"\n",
    )
    .unwrap();
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "--spec",
            "specs/file.toml",
            "--out",
            "out/file",
            "-q",
        ])
        .assert()
        .success();
    lab(dir.path())
        .args(["run", "pmd", "states=30", "--out", "out/garnet", "-q"])
        .assert()
        .success();
    assert_eq!(
        metric_columns(&dir.path().join("out/file.csv")),
        metric_columns(&dir.path().join("out/garnet.csv"))
    );
}

#[test]
fn diverging_values_end_the_run_as_failed_naming_the_iteration() {
    let dir = TempDir::new().unwrap();
    // Valid numbers, but V = r / (1 - gamma) overflows to infinity.
    fs::write(
        dir.path().join("huge.mdp"),
        "lab-mdp 1\nstates 1\nactions 2\nr 0 0 1e308\np 0 0 0 1\nr 0 1 0\np 0 1 0 1\n",
    )
    .unwrap();
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "mdp=file",
            "mdp_file=huge.mdp",
            "--out",
            "out/huge",
            "-q",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("iteration 0"));
    let manifest = read_manifest(&dir.path().join("out/huge.run.json"));
    let status = manifest["status"].as_str().unwrap();
    assert!(status.starts_with("failed: non-finite value"), "{status}");
    // The same with iterative evaluation (more than 200 states): fails, does not hang.
    let mut text = String::from("lab-mdp 1\nstates 300\nactions 2\n");
    for s in 0..300 {
        text.push_str(&format!(
            "r {s} 0 1e308\np {s} 0 {s} 1\nr {s} 1 0\np {s} 1 {s} 1\n"
        ));
    }
    fs::write(dir.path().join("huge300.mdp"), text).unwrap();
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "mdp=file",
            "mdp_file=huge300.mdp",
            "--out",
            "out/h300",
            "-q",
        ])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("iteration 0"));
}

#[test]
fn plot_overlays_runs_with_a_legend_of_what_differs() {
    let dir = TempDir::new().unwrap();
    for eta in ["1", "10"] {
        lab(dir.path())
            .args(["run", "pmd", "--eta", eta, "iterations=20", "-q"])
            .assert()
            .success();
    }
    lab(dir.path())
        .args([
            "plot",
            "out/pmd-eta=1-iterations=20-seed=0.csv",
            "out/pmd-iterations=20-seed=0.csv",
            "--y",
            "value_gap_inf",
            "--logy",
            "--out",
            "cmp.svg",
        ])
        .assert()
        .success();
    let labels = svg_labels(&dir.path().join("cmp.svg"));
    assert!(
        labels.iter().any(|l| l == "eta=1"),
        "legend names eta=1: {labels:?}"
    );
    assert!(
        labels.iter().any(|l| l == "eta=10"),
        "legend names eta=10: {labels:?}"
    );
    assert!(
        labels.iter().any(|l| l == "0.01"),
        "log tick labels: {labels:?}"
    );
    // Without --y: the experiment's standard figure, as PNG.
    lab(dir.path())
        .args([
            "plot",
            "out/pmd-iterations=20-seed=0.csv",
            "--out",
            "std.png",
        ])
        .assert()
        .success();
    assert!(is_png(&dir.path().join("std.png")));
}

#[test]
fn plot_rejects_bad_csvs_clearly() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("empty.csv"), "").unwrap();
    fs::write(dir.path().join("ragged.csv"), "iter,x\n0,1\n1\n").unwrap();
    fs::write(dir.path().join("ok.csv"), "iter,x\n0,1\n1,2\n").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["plot", "empty.csv", "--y", "x"], &["empty.csv", "empty"]),
        (
            &["plot", "ragged.csv", "--y", "x"],
            &["ragged.csv", "line 3"],
        ),
        (
            &["plot", "ok.csv", "--y", "z"],
            &["ok.csv", "'z'", "iter, x"],
        ),
        (&["plot", "ok.csv"], &["--y", "no manifest"]),
        (&["plot", "none.csv", "--y", "x"], &["none.csv"]),
        (
            &["plot", "ok.csv", "--y", "x", "--out", "pic.jpg"],
            &["pic.jpg", ".png, .svg or .pdf"],
        ),
        // One row at iter 0 cannot be drawn on a log x axis: nothing to draw is an error.
        (
            &["plot", "one.csv", "--y", "x", "--logx", "--logy"],
            &["nothing to draw", "log axes"],
        ),
        // An image that cannot be written is named with the reason, not a backend's Debug.
        (
            &["plot", "ok.csv", "--y", "x", "--out", "afile/p.png"],
            &["afile is a file, not a directory"],
        ),
        (
            &["plot", "ok.csv", "--y", "x", "--out", "/proc/lab-plot.png"],
            &["cannot write /proc/lab-plot.png"],
        ),
    ];
    fs::write(dir.path().join("one.csv"), "iter,x\n0,1\n").unwrap();
    fs::write(dir.path().join("afile"), "").unwrap();
    for (args, needles) in cases {
        let stderr = input_error(dir.path(), args, needles);
        assert!(!stderr.contains("Error("), "{stderr}");
    }
    assert!(!dir.path().join("one.plot.png").exists());
    lab(dir.path())
        .args(["plot", "ok.csv", "--y", "x", "--out", "ok.png"])
        .assert()
        .success();
    assert!(
        fs::read(dir.path().join("ok.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
}

/// A PMD run of a million iterations on 3000 states: minutes, for the tests that stop it.
const LONG_PMD: &[&str] = &[
    "run",
    "pmd",
    "states=3000",
    "branching=10",
    "iterations=1000000",
];

#[test]
fn ctrl_c_keeps_the_rows_and_marks_the_run_interrupted() {
    let dir = TempDir::new().unwrap();
    let csv = dir.path().join("out/long.csv");
    let ended = common::interrupt(
        dir.path(),
        &[LONG_PMD, &["--out", "out/long", "-q"]].concat(),
        || common::lines(&csv) >= 5,
        Duration::ZERO,
    );
    let rows = common::assert_interrupted(&ended, &dir.path().join("out/long"));
    assert!(rows >= 4);
}

#[test]
fn list_and_verify() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("pmd").and(predicate::str::contains("arXiv:2205.08176")));
    lab(dir.path())
        .args(["verify", "pmd"])
        .assert()
        .success()
        .stdout(predicate::str::contains("PASS").and(predicate::str::contains(" 0 failed")));
    assert!(outputs(dir.path()).is_empty(), "verify writes nothing");
}

#[test]
fn figures_as_pdf_for_latex_keep_their_text_in_the_embedded_font() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args(["run", "pmd", "iterations=5", "--format", "png,pdf", "-q"])
        .assert()
        .success();
    let names = outputs(dir.path());
    assert!(names.iter().any(|n| n.ends_with("seed=0.pdf")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".svg")), "{names:?}");
    let csv = names.iter().find(|n| n.ends_with(".csv")).unwrap();
    lab(dir.path())
        .args(["plot", &format!("out/{csv}"), "--out", "fig.pdf"])
        .assert()
        .success();
    let pdf = fs::read(dir.path().join("fig.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // Text stays text, in a subset of DejaVu Sans embedded in the file.
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("DejaVuSans"), "no embedded font");
    lab(dir.path())
        .args(["run", "pmd", "--format", "jpg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values: png, svg, pdf"));
}

#[test]
fn out_may_name_a_directory() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args([
            "run",
            "pmd",
            "--out",
            "runs/",
            "eta=2",
            "iterations=3",
            "-q",
        ])
        .assert()
        .success();
    let manifest = dir
        .path()
        .join("runs/pmd-eta=2-iterations=3-seed=0.run.json");
    assert_eq!(read_manifest(&manifest)["status"], "done");
}

/// Runs of two experiments: their standard figures cannot be one, and the message says so
/// (not that they lack a manifest).
#[test]
fn plot_of_two_experiments_names_both() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args(["run", "pmd", "iterations=2", "--out", "out/p", "-q"])
        .assert()
        .success();
    lab(dir.path())
        .args(["run", "svrs", "samples=400", "nodes=4", "method=gd"])
        .args(["tol=1e-2", "--out", "out/s", "-q"])
        .assert()
        .success();
    input_error(
        dir.path(),
        &["plot", "out/p.csv", "out/s.csv"],
        &["run of 'pmd'", "run of 'svrs'", "--y"],
    );
}

/// Input that used to crash lab: each is one message and exit 2, and nothing is written.
#[test]
fn inputs_that_crashed_lab_are_refused_clearly() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("afile"), "").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        // Inside the documented ranges, but 2 TiB of data: refused before allocating.
        (
            &["run", "svrs", "samples=100000000", "features=2000"],
            &["needs about", "TiB", "available"],
        ),
        (
            &["--threads", "100000", "run", "pmd"],
            &["--threads 100000", "expected 1 to"],
        ),
        (&["--threads", "0", "run", "pmd"], &["--threads 0"]),
        (
            &["run", "pmd", "--out", "afile/r3"],
            &["afile is a file, not a directory"],
        ),
    ];
    for (args, needles) in cases {
        input_error(dir.path(), args, needles);
    }
    assert!(outputs(dir.path()).is_empty(), "{:?}", outputs(dir.path()));
}

/// A path that is not UTF-8 is a file name like any other: no panic.
#[test]
fn paths_that_are_not_utf8_work() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"bad\xff.toml");
    let out = lab(dir.path())
        .args(["run", "pmd", "--spec"])
        .arg(bad)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("cannot read spec file bad"), "{stderr}");
    fs::create_dir(dir.path().join("out")).unwrap();
    lab(dir.path())
        .args(["run", "pmd", "iterations=2", "-q", "--out"])
        .arg(std::ffi::OsStr::from_bytes(b"out/na\xffme"))
        .assert()
        .success();
    let manifest = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"out/na\xffme.run.json"));
    assert_eq!(read_manifest(&manifest)["status"], "done");
}

/// Two processes never write the same run: while one runs, a second (even with --force) is
/// refused; a run killed outright is recognised as dead.
#[test]
fn a_run_name_is_locked_while_its_run_is_alive() {
    let dir = TempDir::new().unwrap();
    let long = [LONG_PMD, &["--out", "out/x", "-q"]].concat();
    let manifest = dir.path().join("out/x.run.json");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir.path())
        .args(&long)
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while common::lines(&dir.path().join("out/x.csv")) < 3 {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    // A short run of the same name, with or without --force.
    let short = ["run", "pmd", "iterations=2", "--out", "out/x", "-q"];
    let forced = [&short[..], &["--force"]].concat();
    input_error(
        dir.path(),
        &forced,
        &["out/x is being written by another lab process", "pid"],
    );
    let running = read_manifest(&manifest);
    assert_eq!(running["status"], "running");
    assert_eq!(running["pid"], first.id());
    assert!(running["host"].is_string());
    // Killed without a chance to end the run: its manifest stays `running`, and the next run
    // of that name says the process is gone.
    first.kill().unwrap();
    first.wait().unwrap();
    input_error(
        dir.path(),
        &short,
        &["status running, but its process", "is gone", "--force"],
    );
    lab(dir.path()).args(&forced).assert().success();
    assert_eq!(read_manifest(&manifest)["status"], "done");
    // Racing with --force: whoever wins, the run left behind is whole.
    for _ in 0..8 {
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
                    .current_dir(dir.path())
                    .args([
                        "run",
                        "pmd",
                        "iterations=30",
                        "--out",
                        "out/x",
                        "--force",
                        "-q",
                    ])
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let codes: Vec<i32> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        assert!(codes.contains(&0), "{codes:?}");
        assert!(codes.iter().all(|c| *c == 0 || *c == 2), "{codes:?}");
        let m = read_manifest(&manifest);
        assert_eq!(m["status"], "done");
        let rows = lab::table::Table::read_csv(&dir.path().join("out/x.csv")).unwrap();
        assert_eq!(m["rows"], rows.len());
        assert_eq!(rows.len(), 31);
    }
}
