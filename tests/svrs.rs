//! SVRS experiment: numerics against independent oracles (finite differences, brute-force
//! eigenvalues, optimality conditions), the LIBSVM reader on the real files, the claims on
//! small instances and the command line.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use assert_cmd::Command;
use lab::claims::Verdict;
use lab::contract::run_case;
use lab::experiments::svrs::data::{Csr, Dataset, SyntheticShape, read_libsvm, synthetic};
use lab::experiments::svrs::local::{INEXACT_RELATIVE, LocalSolver};
use lab::experiments::svrs::problem::{
    GradientPath, Loss, Problem, constants, dist2, solve_optimum,
};
use lab::experiments::svrs::{Svrs, verify};
use lab::random::Streams;
use lab::vector::norm2;
use rand::Rng;
use tempfile::TempDir;

/// The shared data directory: $LAB_DATA, or ../shared/data beside the checkout.
fn data_dir() -> PathBuf {
    let dir = std::env::var_os("LAB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        PathBuf::from,
    );
    assert!(
        dir.join("libsvm/a8a").exists(),
        "the LIBSVM files are missing: set LAB_DATA=DIR with DIR/libsvm/a8a (see the README)"
    );
    fs::canonicalize(dir).unwrap()
}

fn tiny_problem(loss: Loss, rows: usize, features: usize, nodes: usize, seed: u64) -> Problem {
    tiny_problem_on(loss, rows, features, nodes, seed, None)
}

/// [`tiny_problem`] with the ridge gradient path forced.
fn tiny_problem_on(
    loss: Loss,
    rows: usize,
    features: usize,
    nodes: usize,
    seed: u64,
    path: Option<GradientPath>,
) -> Problem {
    let data = synthetic(
        &SyntheticShape {
            rows,
            features,
            decay: 0.5,
            heterogeneity: 0.3,
            noise: 0.5,
            nodes,
            classification: loss == Loss::Logistic,
        },
        &mut Streams::new(seed).rng("data"),
    );
    Problem::split_on(
        data,
        loss,
        0.05,
        nodes,
        &mut Streams::new(seed).rng("split"),
        path,
    )
}

fn random_point(d: usize, seed: u64) -> Vec<f64> {
    let mut rng = Streams::new(seed).rng("point");
    (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Central finite difference of f along every coordinate.
fn fd_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|j| {
            let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
            plus[j] += h;
            minus[j] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn gradients_match_finite_differences() {
    // Both ridge paths, forced, on a node of 2 rows of 20 features (where the cost model
    // picks the rows) and of 1000 rows of 5 features (where it picks the Gram matrix), and
    // the logistic loss (rows only), all against differences of the values.
    for (loss, rows, d, path) in [
        (Loss::Ridge, 6, 20, GradientPath::Rows),
        (Loss::Ridge, 6, 20, GradientPath::Gram),
        (Loss::Logistic, 120, 5, GradientPath::Rows),
        (Loss::Ridge, 3000, 5, GradientPath::Gram),
        (Loss::Ridge, 3000, 5, GradientPath::Rows),
    ] {
        let chosen = tiny_problem(loss, rows, d, 3, 1).gradient_path();
        assert_eq!(
            chosen == GradientPath::Gram,
            loss == Loss::Ridge && rows == 3000
        );
        let p = tiny_problem_on(loss, rows, d, 3, 1, Some(path));
        assert_eq!(p.gradient_path(), path, "{loss:?}: a forced path is taken");
        let x = random_point(d, 2);
        let w = random_point(d, 3);
        for i in 0..3 {
            let mut g = vec![0.0; d];
            p.node_grad(i, &x, &mut g);
            let fd = fd_gradient(|y| p.node_value(i, y), &x);
            assert!(
                max_abs_diff(&g, &fd) < 1e-7,
                "{loss:?} node {i}: {g:?} vs {fd:?}"
            );
            // The SVRG correction equals the difference of two gradients.
            let mut gw = vec![0.0; d];
            p.node_grad(i, &w, &mut gw);
            let mut diff = vec![0.0; d];
            p.add_node_grad_difference(i, &x, &w, &mut diff);
            let expected: Vec<f64> = g.iter().zip(&gw).map(|(a, b)| a - b).collect();
            assert!(max_abs_diff(&diff, &expected) < 1e-12);
        }
        let mut g = vec![0.0; d];
        p.full_grad(&x, &mut g);
        let fd = fd_gradient(|y| p.value(y), &x);
        assert!(
            max_abs_diff(&g, &fd) < 1e-7,
            "{loss:?} full: {g:?} vs {fd:?}"
        );
        // Hessians against differences of gradients.
        let h = p.node_hessian(1, &x);
        for k in 0..d {
            let column = fd_gradient(
                |y| {
                    let mut gy = vec![0.0; d];
                    p.node_grad(1, y, &mut gy);
                    gy[k]
                },
                &x,
            );
            for j in 0..d {
                assert!((h[(k, j)] - column[j]).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn local_solutions_satisfy_their_optimality_conditions() {
    for loss in [Loss::Ridge, Loss::Logistic] {
        let p = tiny_problem(loss, 200, 6, 4, 5);
        let center = random_point(6, 6);
        let c = random_point(6, 7);
        for (node, shift) in [(0, 3.0), (2, 0.5), (3, 0.0)] {
            // phi(u) = f_i(u) + <c, u> + (s/2)||u - center||^2; g0 = grad phi(center).
            let grad_phi = |u: &[f64]| {
                let mut g = vec![0.0; 6];
                p.node_grad(node, u, &mut g);
                (0..6)
                    .map(|j| g[j] + c[j] + shift * (u[j] - center[j]))
                    .collect::<Vec<f64>>()
            };
            let g0 = grad_phi(&center);
            let mut solver = LocalSolver::new(&p, shift, norm2(&g0).sqrt());
            let mut u = vec![0.0; 6];
            let calls = solver.solve(node, &center, &g0, &mut u).unwrap();
            let residual = norm2(&grad_phi(&u)).sqrt();
            match loss {
                Loss::Ridge => {
                    assert_eq!(calls, 0);
                    assert!(residual < 1e-12, "ridge residual {residual}");
                }
                Loss::Logistic => {
                    assert!(calls >= 2);
                    let bound = INEXACT_RELATIVE * (shift + p.lambda) * dist2(&u, &center).sqrt();
                    assert!(residual <= bound, "{residual} > {bound}");
                }
            }
        }
    }
}

#[test]
fn the_optimum_has_zero_gradient_by_finite_differences() {
    for loss in [Loss::Ridge, Loss::Logistic] {
        let p = tiny_problem(loss, 300, 4, 3, 8);
        let (x, _) = solve_optimum(&p).unwrap();
        let fd = fd_gradient(|y| p.value(y), &x);
        assert!(norm2(&fd).sqrt() < 1e-8, "{loss:?}: {fd:?}");
        let mut g = vec![0.0; 4];
        p.full_grad(&x, &mut g);
        assert!(norm2(&g).sqrt() < 1e-13, "{loss:?}: {g:?}");
    }
}

/// max and min of v^T M v over unit vectors v = (cos t, sin t), t on a fine grid: the
/// eigenvalues of a symmetric 2 x 2 matrix by brute force.
fn brute_force_extremes(m: [[f64; 2]; 2]) -> (f64, f64) {
    let steps = 400_000;
    (0..steps)
        .map(|k| {
            let t = std::f64::consts::PI * k as f64 / steps as f64;
            let (c, s) = (t.cos(), t.sin());
            c * c * m[0][0] + 2.0 * c * s * m[0][1] + s * s * m[1][1]
        })
        .fold((f64::NEG_INFINITY, f64::INFINITY), |(hi, lo), v| {
            (hi.max(v), lo.min(v))
        })
}

#[test]
fn delta_on_a_tiny_split_equals_brute_force() {
    // Six rows, two features, three nodes; the Hessians written out from the rows directly.
    let rows = [
        [1.0, 0.5],
        [0.2, -1.0],
        [2.0, 0.0],
        [-0.5, 1.5],
        [0.3, 0.3],
        [1.0, -2.0],
    ];
    let data = Dataset {
        features: Csr {
            cols: 2,
            indptr: (0..=6).map(|r| 2 * r).collect(),
            indices: vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
            values: rows.iter().flatten().copied().collect(),
        },
        labels: vec![1.0, -1.0, 0.5, 2.0, 0.0, 1.0],
    };
    let lambda = 0.1;
    let p = Problem::split(
        data,
        Loss::Ridge,
        lambda,
        3,
        &mut Streams::new(0).rng("split"),
    );
    // Node Hessians from the rows each node got.
    let hessian_of = |node: usize| {
        let mut h = [[0.0; 2]; 2];
        let mine = p.node_rows(node);
        for &r in mine {
            let a = rows[r as usize];
            for j in 0..2 {
                for k in 0..2 {
                    h[j][k] += a[j] * a[k] / mine.len() as f64;
                }
            }
        }
        h[0][0] += lambda;
        h[1][1] += lambda;
        h
    };
    let hs: Vec<[[f64; 2]; 2]> = (0..3).map(hessian_of).collect();
    let mean = |j: usize, k: usize| hs.iter().map(|h| h[j][k]).sum::<f64>() / 3.0;
    let h = [[mean(0, 0), mean(0, 1)], [mean(1, 0), mean(1, 1)]];
    let norms: Vec<f64> = hs
        .iter()
        .map(|hi| {
            let d = [
                [hi[0][0] - h[0][0], hi[0][1] - h[0][1]],
                [hi[1][0] - h[1][0], hi[1][1] - h[1][1]],
            ];
            let (hi, lo) = brute_force_extremes(d);
            hi.abs().max(lo.abs())
        })
        .collect();
    let (l, mu) = brute_force_extremes(h);
    let c = constants(&p, &[0.0, 0.0]).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(c.mu, mu), "{} vs {mu}", c.mu);
    assert!(close(c.l, l), "{} vs {l}", c.l);
    let avg = (norms.iter().map(|v| v * v).sum::<f64>() / 3.0).sqrt();
    assert!(close(c.delta_avg, avg), "{} vs {avg}", c.delta_avg);
    assert!(close(
        c.delta_max,
        norms.iter().copied().fold(0.0, f64::max)
    ));
    assert!(close(c.delta_master, norms[0]));
    assert!(c.delta_avg <= c.delta_max);
}

#[test]
fn the_libsvm_reader_reads_the_real_files() {
    let dir = data_dir().join("libsvm");
    let a8a = read_libsvm(&dir.join("a8a")).unwrap();
    assert_eq!(a8a.features.rows(), 22_696);
    assert_eq!(a8a.features.cols, 123);
    // First line: "-1 3:1 11:1 14:1 19:1 39:1 42:1 55:1 64:1 67:1 73:1 75:1 76:1 80:1 83:1"
    assert_eq!(a8a.labels[0], -1.0);
    let (idx, val) = a8a.features.row(0);
    assert_eq!(
        idx,
        &[2, 10, 13, 18, 38, 41, 54, 63, 66, 72, 74, 75, 79, 82]
    );
    assert!(val.iter().all(|&v| v == 1.0));
    let test = read_libsvm(&dir.join("a9a.t")).unwrap();
    assert_eq!(test.features.rows(), 16_281);
    assert_eq!(test.features.cols, 122, "a9a.t never uses feature 123");
    let w8a = read_libsvm(&dir.join("w8a")).unwrap();
    assert_eq!(w8a.features.rows(), 49_749);
    assert_eq!(w8a.features.cols, 300);
    assert!(w8a.labels.iter().all(|&l| l == 1.0 || l == -1.0));
    // The non-zeros agree with a plain count of "index:value" tokens in the file.
    let text = fs::read_to_string(dir.join("w8a")).unwrap();
    let tokens = text
        .split_ascii_whitespace()
        .filter(|t| t.contains(':'))
        .count();
    assert_eq!(w8a.features.nnz(), tokens);
}

#[test]
fn a_truncated_real_file_is_reported_with_its_line() {
    let text = fs::read_to_string(data_dir().join("libsvm/a8a")).unwrap();
    let mut lines: Vec<&str> = text.lines().take(100).collect();
    lines[41] = "+1 3:1 11:";
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("broken");
    fs::write(&path, lines.join("\n")).unwrap();
    let err = format!("{:#}", read_libsvm(&path).unwrap_err());
    assert!(err.contains("broken:42"), "{err}");
    assert!(err.contains("value ''"), "{err}");
}

fn claim<'a>(
    results: &'a [lab::claims::ClaimResult],
    id: &str,
    on: &str,
) -> &'a lab::claims::ClaimResult {
    results
        .iter()
        .find(|r| r.id == id && r.on.contains(on))
        .unwrap_or_else(|| panic!("no {id} on {on}"))
}

#[test]
fn claims_below_the_crossover() {
    let results = run_case::<Svrs>(verify::BELOW)
        .unwrap()
        .claims("below")
        .unwrap();
    for method in [
        "gd",
        "agd",
        "dane",
        "cgm",
        "acceg",
        "svrp",
        "catalyzed_svrp",
        "svrs",
        "accsvrs",
    ] {
        let r = claim(&results, "svrs.linear", &format!("method={method}"));
        assert_eq!(r.verdict, Verdict::Pass, "{method}: {}", r.measured);
    }
    for id in [
        "svrs.epoch_rate",
        "svrs.svrp_wins_below",
        "acceg.fewer_rounds",
    ] {
        let r = claim(&results, id, "below");
        assert_eq!(r.verdict, Verdict::Pass, "{id}: {}", r.measured);
    }
    // Above-crossover claims do not apply here.
    assert!(!results.iter().any(|r| r.id == "svrs.beats_svrp_above"));
}

#[test]
fn claims_above_the_crossover() {
    let results = run_case::<Svrs>(verify::ABOVE)
        .unwrap()
        .claims("above")
        .unwrap();
    for id in [
        "svrs.beats_svrp_above",
        "accsvrs.beats_acceg",
        "acceg.fewer_rounds",
        "svrs.epoch_rate",
    ] {
        let r = claim(&results, id, "above");
        assert_eq!(r.verdict, Verdict::Pass, "{id}: {}", r.measured);
    }
    for method in ["svrs", "accsvrs", "acceg"] {
        let r = claim(&results, "svrs.linear", &format!("method={method}"));
        assert_eq!(r.verdict, Verdict::Pass, "{method}: {}", r.measured);
    }
}

#[test]
fn communication_cost_scales_like_the_theory() {
    let (svrs, accsvrs) = verify::sweep().unwrap();
    assert_eq!(svrs.len(), verify::SWEEP_LAMBDAS.len());
    let (verdict, measured) = lab::experiments::svrs::claims::scaling(&svrs, &accsvrs);
    assert_eq!(verdict, Verdict::Pass, "{measured}");
}

#[test]
fn a_run_stops_when_cancelled() {
    // The cancel flag ends every job at its next step: the job reports that it was
    // interrupted, after recording its starting point.
    use lab::contract::{Cancel, Interrupted};
    use lab::experiments::svrs::methods::{Method, Stopping};
    use lab::experiments::svrs::spec::SvrsSpec;
    use lab::experiments::svrs::{MethodSeed, run_job, solve};
    let p = tiny_problem(Loss::Ridge, 400, 5, 4, 9);
    let spec = SvrsSpec::default();
    let solved = solve(&p, &spec).unwrap();
    let cancel = AtomicBool::new(true);
    let mut records = 0;
    let error = run_job(
        &p,
        &solved,
        Stopping {
            tol: 1e-10,
            max_comms: 1_000_000,
            record_every: 0,
        },
        MethodSeed {
            method: Method::Svrs,
            seed: 0,
        },
        &mut Streams::new(0).rng("method/svrs/0"),
        Cancel::new(&cancel),
        &mut |_| {
            records += 1;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(error.is::<Interrupted>(), "{error}");
    assert_eq!(records, 1, "the starting point is recorded, nothing after");
}

// ---- the command line ----

fn lab(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.current_dir(dir).env("LAB_DATA", data_dir());
    cmd
}

fn stderr_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code);
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn bad_input_names_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let broken = dir.path().join("broken.svm");
    fs::write(&broken, "+1 1:1\n-1 2:x\n").unwrap();
    // One feature index of 100,000: the exact constants would need dense 100,000 x 100,000
    // Hessians (it used to abort in the middle of the run).
    let wide = dir.path().join("wide.svm");
    fs::write(&wide, "+1 1:1 100000:2\n-1 2:1\n+1 3:1\n-1 1:2\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["data=file".into()], "data = file needs data_file"),
        (
            vec![
                "data=file".into(),
                format!("data_file={}", broken.display()),
            ],
            "broken.svm:2: value 'x'",
        ),
        (vec!["data_file=x.svm".into()], "expected data = file"),
        (vec!["nodes=20000".into()], "expected nodes <= 12800"),
        (vec!["method=svrs,sgd".into()], "'sgd' is not allowed"),
        (vec!["theta_scale=0".into()], "theta_scale"),
        (vec!["tol=2".into()], "out of range"),
        (vec!["lamda=1".into()], "did you mean 'lambda'"),
        (
            vec![
                "data=file".into(),
                format!("data_file={}", wide.display()),
                "nodes=2".into(),
            ],
            "100000 features: dense 100000 x 100000 Hessians",
        ),
    ];
    for (args, needle) in cases {
        let err = stderr_of(lab(dir.path()).args(["run", "svrs", "-q"]).args(&args), 2);
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
    // A named data set without LAB_DATA.
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(dir.path())
            .env_remove("LAB_DATA")
            .args(["run", "svrs", "data=a8a", "-q"]),
        2,
    );
    assert!(
        err.contains("LAB_DATA is not set") && err.contains("DIR/libsvm/a8a"),
        "{err}"
    );
    // LAB_DATA set, the file not there: every place tried, and where to get it.
    let err = stderr_of(
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(dir.path())
            .env("LAB_DATA", dir.path())
            .args(["run", "svrs", "data=w8a", "-q"]),
        2,
    );
    let tried = dir.path().join("libsvm/w8a.gz");
    assert!(
        err.contains(&tried.display().to_string()) && err.contains("LIBSVM binary data sets"),
        "{err}"
    );
    // Nothing was written by any of them.
    assert!(!dir.path().join("out").exists());
}

/// The metric columns of a CSV (everything but wall time).
fn metric_columns(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            cells[..cells.len() - 1].join(",")
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_columns_whatever_the_thread_count() {
    let dir = TempDir::new().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let name = format!("out/t{threads}");
        lab(dir.path())
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "run",
                "svrs",
                "samples=2000",
                "nodes=10",
                "method=svrs,accsvrs,svrp,acceg",
                "--out",
                &name,
                "-q",
            ])
            .assert()
            .success();
        outputs.push(metric_columns(&dir.path().join(format!("{name}.csv"))));
    }
    assert!(outputs[0].len() > 50);
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn a_run_writes_csv_manifest_and_figures_and_a_sweep_plots_the_scaling() {
    let dir = TempDir::new().unwrap();
    for lambda in ["1e-3", "3e-4", "1e-4"] {
        lab(dir.path())
            .args([
                "run",
                "svrs",
                "samples=8000",
                "nodes=16",
                "decay=1.5",
                "method=svrs,accsvrs",
                &format!("lambda={lambda}"),
                "--out",
                &format!("out/l{lambda}"),
            ])
            .assert()
            .success();
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("out/l1e-3.run.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["status"], "done");
    let summary = &manifest["summary"];
    for key in ["mu", "l", "delta_avg", "delta_max", "delta_master"] {
        assert!(summary["constants"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(summary["f_star"].is_number());
    assert!(summary["cost_to_tol"]["svrs"]["comms"].as_f64().unwrap() > 0.0);
    let header = fs::read_to_string(dir.path().join("out/l1e-3.csv")).unwrap();
    assert!(header.starts_with("method,seed,comms,rounds,local_grads,rel_error,f_gap,wall_s\n"));
    assert!(dir.path().join("out/l1e-3.png").exists());
    // lab plot over the sweep adds the cost-against-delta/mu figure with fitted slopes.
    lab(dir.path())
        .args([
            "plot",
            "out/l1e-3.csv",
            "out/l3e-4.csv",
            "out/l1e-4.csv",
            "--out",
            "out/sweep.svg",
        ])
        .assert()
        .success();
    let svg = fs::read_to_string(dir.path().join("out/sweep.scaling.svg")).unwrap();
    assert!(
        svg.contains("svrs, fit slope"),
        "no fitted slope in the legend"
    );
    assert!(svg.contains("theory slope 0.5 (accsvrs)"));
}

#[test]
fn ctrl_c_keeps_the_rows_of_a_parallel_run() {
    let dir = TempDir::new().unwrap();
    let csv = dir.path().join("out/long.csv");
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "svrs",
            "samples=20000",
            "nodes=200",
            "lambda=1e-7",
            "decay=2",
            "method=svrp,gd",
            "max_comms=1000000000",
            "record_every=200",
            "--out",
            "out/long",
            "-q",
        ],
        || common::lines(&csv) >= 20,
        std::time::Duration::ZERO,
    );
    let rows = common::assert_interrupted(&ended, &dir.path().join("out/long"));
    assert!(rows >= 19);
}

#[test]
fn lab_verify_svrs_passes_every_claim() {
    let dir = TempDir::new().unwrap();
    let out = lab(dir.path()).args(["verify", "svrs"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for id in [
        "svrs.linear",
        "svrs.epoch_rate",
        "svrs.beats_svrp_above",
        "svrs.svrp_wins_below",
        "accsvrs.beats_acceg",
        "acceg.fewer_rounds",
        "svrs.scaling",
    ] {
        assert!(text.contains(id), "{id} missing from lab verify svrs");
    }
    assert!(text.contains(" 0 failed, 0 inconclusive"), "{text}");
    assert!(!dir.path().join("out").exists(), "verify writes nothing");
}
