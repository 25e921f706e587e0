//! bpsvrg: every claim on its instances (the cases of `lab verify bpsvrg`), the exact
//! direction variance against brute force over every mini-batch, the claim checks against
//! inputs that must fail them, the real data sets, thread-count independence, bad input,
//! divergence and Ctrl-C. The layers' backward passes and per-sample gradient norms are tested
//! against finite differences and single-sample passes in `src/nn/tests.rs`.

mod common;

use std::path::Path;

use common::lab;
use lab::claims::Verdict;
use lab::data::images::{ImageSet, fashion_mnist, write_idx};
use lab::experiments::bpsvrg::BpsvrgExperiment;
use lab::experiments::bpsvrg::claims::{check_at_least, check_direction};
use lab::experiments::bpsvrg::spec::{BpsvrgSpec, ModelName};
use lab::experiments::bpsvrg::training::{MetricBuffers, measure, network};
use lab::nn::Mode;
use lab::random::{Streams, standard_normal};
use lab::table::{Cell, Table};
use tempfile::TempDir;

/// `lab verify bpsvrg`: every claim passes or deviates exactly as declared, and every claim
/// is checked.
#[test]
fn every_case_checks_its_claims() {
    common::assert_every_case_checks_its_claims::<BpsvrgExperiment>();
}

/// Eight random 2 x 3 x 3 images of 3 classes.
fn tiny_set() -> ImageSet {
    let mut rng = Streams::new(3).rng("tiny");
    ImageSet {
        shape: [2, 3, 3],
        pixels: (0..8 * 18)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect(),
        labels: vec![0, 1, 2, 0, 1, 2, 1, 0],
        classes: 3,
    }
}

/// Every b-subset of 0..n.
fn subsets(n: usize, b: usize) -> Vec<Vec<usize>> {
    if b == 0 {
        return vec![Vec::new()];
    }
    (b - 1..n)
        .flat_map(|last| {
            subsets(last, b - 1).into_iter().map(move |mut s| {
                s.push(last);
                s
            })
        })
        .collect()
}

#[test]
fn the_direction_variance_is_the_variance_over_every_mini_batch() {
    let set = tiny_set();
    for model in [ModelName::Softmax, ModelName::Mlp] {
        let spec = BpsvrgSpec {
            model,
            hidden: 5,
            ..Default::default()
        };
        let net = network(&spec, set.shape, set.classes);
        let w: Vec<f32> = net.init(&mut Streams::new(1).rng("w"));
        let snap: Vec<f32> = net.init(&mut Streams::new(2).rng("w"));
        let mut buf = MetricBuffers::new(&net);
        let m = measure(&net, &w, &[], Some(&snap), &set, &mut buf);
        let n = set.len();
        // mu~: the full gradient at the snapshot.
        let grad = |p: &[f32], idx: &[usize]| -> Vec<f64> {
            let mut ws = net.workspace(idx.len());
            let x: Vec<f32> = idx.iter().flat_map(|&i| set.image(i).to_vec()).collect();
            let y: Vec<u8> = idx.iter().map(|&i| set.labels[i]).collect();
            let mut g = vec![0.0f32; net.params];
            net.gradient(p, &mut [], &mut ws, &x, &y, Mode::Eval, &mut g);
            g.iter().map(|&v| f64::from(v)).collect()
        };
        let all: Vec<usize> = (0..n).collect();
        let mu = grad(&snap, &all);
        for b in [1, 3] {
            for c in [-1.0, 0.0, 1.0, 0.5] {
                // v_S = g_S(w) + c (g_S(w~) - mu~) over all C(n, b) batches, equally likely.
                let dirs: Vec<Vec<f64>> = subsets(n, b)
                    .iter()
                    .map(|s| {
                        let (g, gs) = (grad(&w, s), grad(&snap, s));
                        (0..g.len()).map(|k| g[k] + c * (gs[k] - mu[k])).collect()
                    })
                    .collect();
                let d = dirs[0].len();
                let mean: Vec<f64> = (0..d)
                    .map(|k| dirs.iter().map(|v| v[k]).sum::<f64>() / dirs.len() as f64)
                    .collect();
                let brute = dirs
                    .iter()
                    .map(|v| {
                        v.iter()
                            .zip(&mean)
                            .map(|(a, b)| (a - b).powi(2))
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / dirs.len() as f64;
                let exact = m.direction_variance(c, b, n);
                assert!(
                    (exact - brute).abs() <= 1e-4 * brute,
                    "{model:?} b={b} c={c}: {exact} against {brute}"
                );
            }
        }
    }
}

#[test]
fn the_paired_accuracy_test_and_the_variance_check_fail_when_they_should() {
    let a = [0.80, 0.82, 0.81, 0.79, 0.80];
    assert_eq!(
        check_at_least(&a, &a.map(|x| x - 0.01), ("a", "b")).0,
        Verdict::Pass
    );
    assert_eq!(
        check_at_least(&a, &a.map(|x| x + 0.05), ("a", "b")).0,
        Verdict::Fail
    );
    // Below on average, but within the noise of the pairs.
    let b = [0.70, 0.90, 0.80, 0.85, 0.81];
    assert_eq!(check_at_least(&a, &b, ("a", "b")).0, Verdict::Inconclusive);
    let mut rows = Table::with_columns(
        &["method", "epoch", "dir_var", "dir_var_sgd"].map(String::from),
        &[true, false, false, false],
    );
    for (e, dir) in [(0.0, None), (1.0, Some(2.0)), (2.0, Some(0.5))] {
        rows.push(&[
            Cell::Text("bpsvrg".into()),
            Cell::Real(e),
            dir.map_or(Cell::Missing, Cell::Real),
            Cell::Real(1.0),
        ]);
    }
    let (verdict, text) = check_direction(&rows, "bpsvrg", true).unwrap();
    assert_eq!(verdict, Verdict::Fail, "{text}");
    assert!(text.contains("1 of 2"), "{text}");
    assert_eq!(
        check_direction(&rows, "sgd", true).unwrap().0,
        Verdict::Inconclusive
    );
}

#[test]
fn fashion_mnist_is_read_whole_and_balanced() {
    if !Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
        && std::env::var_os("CI").is_none()
    {
        eprintln!(
            "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
        );
        return;
    }
    let split = fashion_mnist().unwrap();
    assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
    // Fashion-MNIST has exactly 6,000 training and 1,000 test images of each class.
    for (set, per) in [(&split.train, 6000), (&split.test, 1000)] {
        let mut counts = [0usize; 10];
        set.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [per; 10]);
    }
    assert_eq!(split.train.shape, [1, 28, 28]);
}

fn csv_of(dir: &Path, name: &str, threads: &str, settings: &[&str]) -> String {
    lab(dir)
        .env("RAYON_NUM_THREADS", threads)
        .args([
            "run",
            "bpsvrg",
            "epochs=2",
            "train_size=300",
            "test_size=100",
        ])
        .args(["batch=64", "landscape_points=3", "--out", name, "-q"])
        .args(settings)
        .assert()
        .success();
    std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = TempDir::new().unwrap();
    let jobs = ["method=sgd,bpsvrg", "seeds=2", "hidden=256"];
    assert_eq!(
        csv_of(dir.path(), "out/one", "1", &jobs),
        csv_of(dir.path(), "out/two", "2", &jobs)
    );
    // One job: its products and kernels split between the threads.
    let single = ["method=bpsvrg", "seeds=1", "model=cnn"];
    assert_eq!(
        csv_of(dir.path(), "out/c1", "1", &single),
        csv_of(dir.path(), "out/c2", "2", &single)
    );
}

#[test]
fn bad_input_is_one_message_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let empty = TempDir::new().unwrap();
    for (args, needle) in [
        (&["metod=sgd"][..], "method"),
        (&["method=sgd,adam"][..], "adam"),
        (&["lr=-1"][..], "lr"),
        (&["batch=5000"][..], "larger than the 2000 training images"),
        (
            &["model=cnn", "method=svrg"][..],
            "batch norm over a batch of one",
        ),
        (&["dataset=mnist"][..], "http://yann.lecun.com"),
    ] {
        let out = lab(dir.path())
            .env("LAB_DATA", empty.path())
            .args(["run", "bpsvrg", "-q"])
            .args(args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!dir.path().join("out").exists());
    // A truncated images file: the error names it and says what is wrong.
    let mnist = empty.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    write_idx(
        &mnist.join("t10k-images-idx3-ubyte"),
        &[10, 28, 28],
        &[0; 7000],
    )
    .unwrap();
    write_idx(&mnist.join("t10k-labels-idx1-ubyte"), &[10], &[1; 10]).unwrap();
    let out = lab(dir.path())
        .env("LAB_DATA", empty.path())
        .args(["run", "bpsvrg", "dataset=mnist", "-q"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_diverging_step_fails_the_run_naming_the_epoch_and_keeps_the_rows() {
    let dir = TempDir::new().unwrap();
    let out = lab(dir.path())
        .args([
            "run",
            "bpsvrg",
            "lr=1e6",
            "method=sgd",
            "seeds=1",
            "train_size=500",
            "--out",
            "out/d",
            "-q",
        ])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("diverged") && err.contains("epoch 1"), "{err}");
    let manifest = std::fs::read_to_string(dir.path().join("out/d.run.json")).unwrap();
    assert!(
        manifest.contains("failed") && manifest.contains("diverged"),
        "{manifest}"
    );
    // The row of epoch 0 (before training) is kept.
    let rows = Table::read_csv(&dir.path().join("out/d.csv")).unwrap();
    assert_eq!(rows.len(), 1);
    // With several jobs each runs until it diverges: the same rows and message on 1 and 2
    // threads.
    let run = |threads: &str| {
        let name = format!("out/t{threads}");
        let out = lab(dir.path())
            .args(["--threads", threads, "run", "bpsvrg", "lr=30", "seeds=2"])
            .args(["method=sgd,bpsvrg", "train_size=500", "--out", &name, "-q"])
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let csv = std::fs::read_to_string(dir.path().join(format!("{name}.csv"))).unwrap();
        (err.replace(&name, ""), csv)
    };
    let (one, two) = (run("1"), run("2"));
    assert!(
        one.0.contains("jobs diverged") || one.0.contains("seed"),
        "{}",
        one.0
    );
    assert_eq!(one, two);
}

#[test]
fn ctrl_c_keeps_every_finished_row() {
    let dir = TempDir::new().unwrap();
    let csv = dir.path().join("out/long.csv");
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "bpsvrg",
            "epochs=2000",
            "seeds=2",
            "train_size=500",
            "--out",
            "out/long",
            "-q",
        ],
        || common::lines(&csv) > 3,
        std::time::Duration::from_millis(300),
    );
    common::assert_interrupted(&ended, &dir.path().join("out/long"));
}
