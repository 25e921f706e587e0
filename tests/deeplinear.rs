//! deeplinear: every claim on its instance (the cases of `lab verify deeplinear`), the plateau
//! sweep, gradient descent against the flow, and bad input on the command line.

mod common;

use common::lab;

use std::path::Path;

use lab::claims::Verdict;
use lab::contract::{Claims, run_case};
use lab::experiments::deeplinear::{DeepLinearExperiment, claims, verify};
use tempfile::TempDir;

/// Each case once: every claim its start predicts passes, and every claim but the plateau
/// (a sweep) is exercised by some case.
#[test]
fn every_case_passes_the_claims_its_start_predicts() {
    let mut seen = Vec::new();
    for (label, settings) in verify::CASES {
        let results = run_case::<DeepLinearExperiment>(settings)
            .unwrap()
            .claims(label)
            .unwrap();
        assert!(results.len() >= 2, "{label}: {results:?}");
        for r in &results {
            assert_eq!(r.verdict, Verdict::Pass, "{label}: {} {}", r.id, r.measured);
        }
        seen.extend(results.into_iter().map(|r| r.id));
    }
    for doc in DeepLinearExperiment::CLAIMS {
        if doc.id != claims::PLATEAU.id {
            assert!(
                seen.iter().any(|id| id == doc.id),
                "{} never checked",
                doc.id
            );
        }
    }
}

#[test]
fn the_escape_plateau_scales_like_the_theory() {
    let points = verify::plateau_points().unwrap();
    assert_eq!(points.len(), verify::PLATEAU_SCALES.len());
    let (verdict, measured) = claims::plateau(&points, 3.0);
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn gradient_descent_tracks_the_flow_at_first_order() {
    // Same start, eta = 1e-3 and 5e-4: the gap to the flow halves (Euler is first order).
    let gap = |eta: &str| {
        let setting = format!("eta={eta}");
        let rows =
            run_case::<DeepLinearExperiment>(&["method=flow,gd", "t_end=2", setting.as_str()])
                .unwrap()
                .rows;
        let methods = rows.text("method").unwrap();
        let sv = rows.num("sv_1").unwrap();
        let flow: Vec<f64> = (0..sv.len())
            .filter(|&i| methods[i] == "flow")
            .map(|i| sv[i])
            .collect();
        let gd: Vec<f64> = (0..sv.len())
            .filter(|&i| methods[i] == "gd")
            .map(|i| sv[i])
            .collect();
        assert_eq!(flow.len(), gd.len());
        flow.iter()
            .zip(&gd)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (coarse, fine) = (gap("1e-3"), gap("5e-4"));
    assert!(coarse > 0.0);
    assert!((coarse / fine - 2.0).abs() < 0.2, "{coarse} / {fine}");
}

#[test]
fn bad_input_names_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["widths=3,2,3"], "no width 1"),
        (&["widths=3,1"], "expected at least 2 layers"),
        (&["spectrum=3,2,1,0.5"], "expected 1 to min(d_0, d_N) = 3"),
        (&["spectrum=1,2"], "non-increasing"),
        (&["init=custom"], "init_weights with 12 values"),
        (&["init_weights=1,2"], "expected init = custom"),
        (&["widths=4,1,x"], "'x' is not an integer"),
        (
            &["init=invariant", "widths=1,1,3", "spectrum=2"],
            "init = invariant needs",
        ),
    ];
    for (args, needle) in cases {
        let out = lab(dir.path())
            .args(["run", "deeplinear", "-q"])
            .args(*args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_two_layer_scalar_chain_gets_a_phase_portrait_and_a_basin_map() {
    let dir = TempDir::new().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/deeplinear-chain.toml");
    lab(dir.path())
        .args(["run", "deeplinear", "--spec"])
        .arg(&spec)
        .args(["--out", "out/chain", "-q"])
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.path().join("out/chain.landscape.svg")).unwrap();
    for label in [
        "minima w1 w2 = z",
        "this run",
        "global, w1 &lt; 0",
        "origin",
        "basin map",
    ] {
        assert!(svg.contains(label), "{label} missing from the landscape");
    }
    assert!(dir.path().join("out/chain.landscape.png").exists());
}

#[test]
fn a_three_layer_scalar_chain_gets_a_portrait_on_its_invariant_plane() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args([
            "run",
            "deeplinear",
            "widths=1,1,1,1",
            "spectrum=2",
            "init_sign=negative",
            "init_scale=0.1",
            "t_end=20",
            "--out",
            "out/chain3",
            "-q",
        ])
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.path().join("out/chain3.landscape.svg")).unwrap();
    for label in [
        "invariant plane w2 = w3",
        "minima w1 w2^2 = z",
        "this run",
        "origin",
        "basin map: where the flow is at t = 20",
    ] {
        assert!(svg.contains(label), "{label} missing from the landscape");
    }
}

#[test]
fn ctrl_c_stops_a_long_integration() {
    let dir = TempDir::new().unwrap();
    let manifest = dir.path().join("out/long.run.json");
    // Interrupt once the run has started (its manifest exists) and settled in its loop: the
    // states the flow reached are kept.
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "deeplinear",
            "t_end=1e6",
            "outputs=1000000",
            "--out",
            "out/long",
            "-q",
        ],
        || manifest.exists(),
        std::time::Duration::from_millis(300),
    );
    common::assert_interrupted(&ended, &dir.path().join("out/long"));
}
