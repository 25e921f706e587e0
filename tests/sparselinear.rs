//! sparselinear: the benign claims on their instances, the dense oracle against gradient
//! descent, thread-count independence of the starts, and bad input.

mod common;

use common::lab;

use lab::claims::Verdict;
use lab::contract::{Claims, RunData, run_case};
use lab::experiments::sparselinear::{SparseLinearExperiment, verify};
use tempfile::TempDir;

fn claims_of(label: &str, settings: &[&str]) -> Vec<lab::claims::ClaimResult> {
    run_case::<SparseLinearExperiment>(settings)
        .unwrap()
        .claims(label)
        .unwrap()
}

#[test]
fn the_benign_claims_hold_on_their_instances() {
    for (label, settings) in &verify::CASES[..2] {
        let results = claims_of(label, settings);
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
    let run = run_case::<SparseLinearExperiment>(settings).unwrap();
    let results = run.claims(label).unwrap();
    let claim = results
        .iter()
        .find(|r| r.id == "sparselinear.spurious_exists")
        .unwrap();
    assert_eq!(claim.verdict, Verdict::Pass, "{}", claim.measured);
    // The candidate's own point, checked without descent: a critical point above the best
    // loss that 2000 random points around it (radius 1e-3 of its norm) never undercut.
    let streams = run.spec.streams();
    let net = lab::experiments::sparselinear::network(
        &run.spec,
        streams,
        lab::experiments::sparselinear::first_mask(&run.spec, streams),
    );
    let set = &run.summary.landscape.as_ref().unwrap()["sparse"];
    let candidate = set
        .spurious_candidates
        .iter()
        .find(|c| c.confirmed_minimum)
        .unwrap();
    let point = candidate.point.clone().unwrap();
    // The layout: W1 row by row, masked entries included and 0 there, then W2, ...
    let mask = lab::experiments::sparselinear::first_mask(&run.spec, streams);
    for (k, m) in mask.iter().enumerate() {
        if *m == 0.0 {
            assert_eq!(point[k], 0.0, "masked entry {k} of W1");
        }
    }
    assert!(point[..mask.len()].iter().any(|w| *w != 0.0));
    use lab::flow::Objective;
    let loss = net.loss(&point);
    assert!(loss > set.best_found.unwrap() + 0.1, "{loss}");
    let mut g = vec![0.0; point.len()];
    net.gradient(&point, &mut g);
    assert!(g.iter().map(|x| x * x).sum::<f64>().sqrt() < 1e-8);
    let radius = 1e-3 * point.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut rng = lab::random::Streams::new(1).rng("sample");
    for _ in 0..2000 {
        let dir: Vec<f64> = point
            .iter()
            .map(|_| lab::random::standard_normal(&mut rng))
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
    assert_eq!(candidate.hessian_zero_modes, 2);
    assert_eq!(candidate.symmetries, 2);
    assert!(candidate.hessian_smallest_positive.unwrap() > 1e-2);
}

/// The claim checks read the summary: one that contradicts them must fail.
#[test]
fn the_claims_fail_on_summaries_that_contradict_them() {
    let (label, settings) = verify::CASES[0];
    let mut run: RunData<SparseLinearExperiment> =
        run_case::<SparseLinearExperiment>(settings).unwrap();
    let set = run
        .summary
        .landscape
        .as_mut()
        .unwrap()
        .get_mut("sparse")
        .unwrap();
    set.starts_at_optimum -= 1;
    let results = SparseLinearExperiment::check_claims(&run).unwrap();
    assert_eq!(results[0].verdict, Verdict::Fail, "{label}: {results:?}");
    // No landscape at all: an error, not an empty list.
    run.summary.landscape = None;
    assert!(SparseLinearExperiment::check_claims(&run).is_err());
}

#[test]
fn every_dense_start_reaches_the_reduced_rank_optimum() {
    // Dense linear networks have no spurious minima: gradient descent from every start is an
    // independent check of the reduced-rank regression value, whitened or correlated.
    for correlation in ["0", "0.6"] {
        let setting = format!("correlation={correlation}");
        let summary = run_case::<SparseLinearExperiment>(&["starts=40", setting.as_str()])
            .unwrap()
            .summary;
        let dense = &summary.landscape.as_ref().unwrap()["dense"];
        assert_eq!(
            dense.optimum_from.as_deref(),
            Some("reduced-rank regression")
        );
        assert_eq!(dense.starts_at_optimum, 40, "{dense:?}");
        let (opt, best) = (dense.optimum.unwrap(), dense.best_found.unwrap());
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
    assert!(text.lines().skip(1).all(|l| l.contains(",inf,")), "{text}");
    let outcomes = std::fs::read_to_string(dir.path().join("out/big.outcomes.csv")).unwrap();
    assert_eq!(outcomes.lines().count(), 1 + 2 * 5, "{outcomes}");
    assert!(
        outcomes.lines().skip(1).all(|l| l.contains(",diverged,")),
        "{outcomes}"
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

#[test]
fn ctrl_c_keeps_the_starts_that_ended() {
    let dir = TempDir::new().unwrap();
    let manifest = dir.path().join("out/long.run.json");
    // 100,000 starts (about a minute), stopped after about 2 s: each start that ended has
    // its row.
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "sparselinear",
            "starts=100000",
            "--out",
            "out/long",
            "-q",
        ],
        || manifest.exists(),
        std::time::Duration::from_secs(2),
    );
    common::assert_interrupted(&ended, &dir.path().join("out/long"));
    let table = lab::table::Table::read_csv(&dir.path().join("out/long.csv")).unwrap();
    // In job order: the starts of the sparse mask that ended, increasing (a start cut short
    // has no row).
    let starts = table.num("start").unwrap();
    assert!(starts.windows(2).all(|w| w[0] < w[1]));
}
