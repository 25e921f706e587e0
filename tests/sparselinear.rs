//! sparselinear: the benign claims on their instances, the dense oracle against gradient
//! descent, thread-count independence of the starts, and bad input.

mod common;

use common::lab;

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
fn the_spurious_minimum_is_a_minimum_by_direct_sampling() {
    let (label, settings) = verify::CASES[2];
    let results = verify::single_run(label, settings).unwrap();
    let claim = results
        .iter()
        .find(|r| r.id == "sparselinear.spurious_exists")
        .unwrap();
    assert_eq!(claim.verdict, Verdict::Pass, "{}", claim.measured);
    // The candidate's own point, checked without descent: a critical point above the best
    // loss that 2000 random points around it (radius 1e-3 of its norm) never undercut.
    let (spec, _, summary) = verify::run_case(settings).unwrap();
    let spec = lab::experiments::sparselinear::parse_spec(&spec).unwrap();
    let net = lab::experiments::sparselinear::network(
        &spec,
        lab::experiments::sparselinear::first_mask(&spec),
    );
    let set = &summary["landscape"]["sparse"];
    let candidate = set["spurious_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["confirmed_minimum"] == true)
        .unwrap();
    let point: Vec<f64> = candidate["point"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    use lab::flow::Objective;
    let loss = net.loss(&point);
    assert!(loss > set["best_found"].as_f64().unwrap() + 0.1, "{loss}");
    let mut g = vec![0.0; point.len()];
    net.gradient(&point, &mut g);
    assert!(g.iter().map(|x| x * x).sum::<f64>().sqrt() < 1e-8);
    let radius = 1e-3 * point.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut rng = lab::run::component_rng(1, "sample");
    for _ in 0..2000 {
        let dir: Vec<f64> = point
            .iter()
            .map(|_| lab::run::standard_normal(&mut rng))
            .collect();
        let n = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
        let q: Vec<f64> = point
            .iter()
            .zip(&dir)
            .map(|(p, d)| p + radius * d / n)
            .collect();
        assert!(net.loss(&q) >= loss - 1e-12, "a nearby point is lower");
    }
    // The Hessian's zero modes are exactly the two units' rescalings.
    assert_eq!(candidate["hessian_zero_modes"], 2);
    assert_eq!(candidate["symmetries"], 2);
    assert!(candidate["hessian_smallest_positive"].as_f64().unwrap() > 1e-2);
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
