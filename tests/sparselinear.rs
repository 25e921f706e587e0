//! sparselinear: the benign claims on their instances, the dense oracle against gradient
//! descent, thread-count independence of the starts, and bad input.

use std::path::Path;

use assert_cmd::Command;
use lab::claims::Verdict;
use lab::experiments::sparselinear::verify;
use tempfile::TempDir;

#[test]
fn the_benign_claims_hold_on_their_instances() {
    for (label, settings) in &verify::CASES[..2] {
        let results = verify::single_run(label, settings).unwrap();
        assert_eq!(results.len(), 1, "{label}: {results:?}");
        assert_eq!(
            results[0].verdict,
            Verdict::Pass,
            "{label}: {}",
            results[0].measured
        );
    }
}

#[test]
fn every_dense_start_reaches_the_reduced_rank_optimum() {
    // Dense linear networks have no spurious minima: gradient descent from every start is an
    // independent check of the reduced-rank regression value, whitened or correlated.
    for correlation in ["0", "0.6"] {
        let setting = format!("correlation={correlation}");
        let (_, _, summary) = verify::run_case(&["starts=40", setting.as_str()]).unwrap();
        let dense = &summary["landscape"]["dense"];
        assert_eq!(dense["optimum_from"], "reduced-rank regression");
        assert_eq!(dense["starts_at_optimum"], 40, "{dense}");
        let (opt, best) = (
            dense["optimum"].as_f64().unwrap(),
            dense["best_found"].as_f64().unwrap(),
        );
        assert!((opt - best).abs() < 1e-9, "{opt} vs {best}");
    }
}

fn lab(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.current_dir(dir);
    cmd
}

#[test]
fn starts_do_not_depend_on_the_thread_count_and_divergence_is_reported() {
    let dir = TempDir::new().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let name = format!("out/t{threads}");
        lab(dir.path())
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "run",
                "sparselinear",
                "starts=30",
                "correlation=0.5",
                "--out",
                &name,
                "-q",
            ])
            .assert()
            .success();
        outputs.push(std::fs::read_to_string(dir.path().join(format!("{name}.csv"))).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    // A step far too large: every start diverges, the run still finishes and says so.
    lab(dir.path())
        .args([
            "run",
            "sparselinear",
            "eta=5",
            "starts=5",
            "--out",
            "out/big",
            "-q",
        ])
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("out/big.csv")).unwrap();
    assert!(
        text.lines()
            .skip(1)
            .all(|l| l.contains(",diverged,") && l.contains("inf"))
    );
}

#[test]
fn bad_input_names_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["widths=4,2"], "at least 2 layers"),
        (&["mask=custom"], "first_mask with d_1 x d_0 = 8"),
        (&["first_mask=1,0"], "expected mask = custom"),
        (&["widths=2,3,1"], "expected d_1 <= d_0"),
        (&["first_mask=2"], "out of range"),
    ];
    for (args, needle) in cases {
        let out = lab(dir.path())
            .args(["run", "sparselinear", "-q"])
            .args(*args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
}
