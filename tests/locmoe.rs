//! locmoe: every claim on its instances (the cases of `lab verify locmoe`), causal-safe
//! routing against batch routing, the dynamic capacity readings on hand-made affinities, a
//! corpus file, bad input, and thread-count independence.

mod common;

use std::path::Path;

use common::lab;
use lab::experiments::locmoe::routing::{Capacity, RouterName, Scores};
use lab::experiments::locmoe::spec::Dynamic;
use lab::experiments::locmoe::{LocmoeExperiment, bound_capacity, dynamic_capacity};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// `lab verify locmoe`: every claim passes or deviates exactly as declared, and every claim
/// is checked.
#[test]
fn every_case_checks_its_claims() {
    common::assert_every_case_checks_its_claims::<LocmoeExperiment>();
}

/// Causal-safe routing decides each token alone: changing every other token leaves its
/// experts unchanged. Batch routing of expert choice and LocMoE+'s per-expert top-C does
/// not: the same change moves some token.
#[test]
fn causal_safe_routing_ignores_the_other_tokens_and_batch_routing_does_not() {
    let (t, e) = (64, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let ids: Vec<usize> = (0..t).collect();
    let mut a: Vec<f64> = (0..t * e).map(|_| rng.random::<f64>()).collect();
    // Token 0 near the top of every expert, so that the others decide whether it is kept.
    a[..e].fill(0.96);
    // Token 0 kept; the others redrawn.
    let mut b = a.clone();
    for v in &mut b[e..] {
        *v = rng.random::<f64>();
    }
    let fate =
        |router: &dyn lab::experiments::locmoe::routing::Router, score: &[f64], c: Capacity| {
            let s = Scores {
                tokens: t,
                experts: e,
                score,
                ids: &ids,
            };
            let d = router.route(&s, c, &mut ChaCha8Rng::seed_from_u64(0));
            let mut mine: Vec<usize> = d
                .slots
                .iter()
                .filter(|x| x.token == 0)
                .map(|x| x.expert)
                .collect();
            mine.sort_unstable();
            mine
        };
    for r in RouterName::ALL {
        let causal = r.causal_router(2);
        assert_eq!(
            fate(&*causal, &a, Capacity::Dropless),
            fate(&*causal, &b, Capacity::Dropless),
            "{}",
            r.name()
        );
    }
    // Batch routing at a tight capacity: some redraw of the others changes token 0's fate.
    for r in [RouterName::ExpertChoice, RouterName::LocmoePlus] {
        let router = r.router(2);
        let before = fate(&*router, &a, Capacity::Slots(4));
        let changed = (0..50).any(|k| {
            let mut other = a.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(100 + k);
            for v in &mut other[e..] {
                *v = rng.random::<f64>();
            }
            fate(&*router, &other, Capacity::Slots(4)) != before
        });
        assert!(
            changed,
            "{}: token 0's fate never depended on the others",
            r.name()
        );
    }
}

/// The dynamic capacity readings and the LocMoE bound on affinities worked by hand.
#[test]
fn dynamic_capacity_readings_match_hand_computations() {
    // d = 16 (threshold 3/4), E = 2, T = 64: eight copies of tokens 0-4 preferring expert 0
    // with affinity 0.9 (0-2) or 0.5 (3-4) and tokens 5-7 preferring expert 1 with 0.8 (5) or
    // 0.1 (6-7).
    let rows: [[f64; 2]; 8] = [
        [0.9, 0.0],
        [0.9, 0.0],
        [0.9, 0.0],
        [0.5, 0.0],
        [0.5, 0.0],
        [0.0, 0.8],
        [0.0, 0.1],
        [0.0, 0.1],
    ];
    let score: Vec<f64> = (0..8)
        .flat_map(|_| rows.iter().flatten().copied())
        .collect();
    let ids: Vec<usize> = (0..64).collect();
    let s = Scores {
        tokens: 64,
        experts: 2,
        score: &score,
        ids: &ids,
    };
    // Ceiling ceil(1.1 * 64 / 2) = 36.
    // corollary6: strong tokens per expert {24, 8}, sorted [8, 24], median index 1: 24;
    // 2 x 24 = 48, clamped to 36.
    assert_eq!(dynamic_capacity(Dynamic::Corollary6, &s, 16), 36);
    // With threshold 3/sqrt(4) = 1.5 nothing is strong: 0, clamped up to 1.
    assert_eq!(dynamic_capacity(Dynamic::Corollary6, &s, 4), 1);
    // remark7: a = 0.9: exp(16 * 0.81 / 1.19) / 2 = 26839.6, clamped to 36; at d = 4:
    // exp(4 * 0.81 / 1.19) / 2 = 7.61 -> 8.
    assert_eq!(dynamic_capacity(Dynamic::Remark7, &s, 16), 36);
    assert_eq!(dynamic_capacity(Dynamic::Remark7, &s, 4), 8);
    // a = 0.5 at d = 4: exp(1 / 1.75) / 2 = 0.885 -> 1.
    let low: Vec<f64> = score.iter().map(|v| v.min(0.5)).collect();
    let s_low = Scores {
        tokens: 64,
        experts: 2,
        score: &low,
        ids: &ids,
    };
    assert_eq!(dynamic_capacity(Dynamic::Remark7, &s_low, 4), 1);
    // schedule: mean top-1 = (2.7 + 1.0 + 0.8 + 0.2) / 8 = 0.5875; 35.2 x 0.4125 = 14.52 -> 15.
    assert_eq!(dynamic_capacity(Dynamic::Schedule, &s, 16), 15);
    // The LocMoE bound at the mean top-1 affinity 0.5875, d = 16, E = 2: 1 / (2 p_delta).
    let p = puruspe_free_p_delta(16, 0.5875);
    let bound = (1.0 / (2.0 * p)).ceil() as usize;
    assert!((20..64).contains(&bound), "{bound}");
    assert_eq!(bound_capacity(&s, 16), bound);
}

/// P(|u_1| >= delta) on the sphere S^{d-1} by the midpoint rule on (1 - t^2)^((d-3)/2).
fn puruspe_free_p_delta(d: usize, delta: f64) -> f64 {
    let f = |t: f64| (1.0 - t * t).powf((d as f64 - 3.0) / 2.0);
    let integral = |a: f64, b: f64| {
        let n = 400_000;
        let h = (b - a) / n as f64;
        (0..n).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
    };
    integral(delta, 1.0) / integral(0.0, 1.0)
}

fn csv_of(dir: &Path, name: &str, threads: &str, settings: &[&str]) -> String {
    lab(dir)
        .env("RAYON_NUM_THREADS", threads)
        .args([
            "run",
            "locmoe",
            "steps=20",
            "eval_every=10",
            "--out",
            name,
            "-q",
        ])
        .args(settings)
        .assert()
        .success();
    std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = TempDir::new().unwrap();
    let jobs = [
        "mode=pmoe",
        "router=switch_random,locmoe_plus,expert_choice",
        "capacity=0.4,1.1",
        "seeds=2",
    ];
    assert_eq!(
        csv_of(dir.path(), "out/one", "1", &jobs),
        csv_of(dir.path(), "out/two", "2", &jobs)
    );
    let single = [
        "mode=charlm",
        "router=gshard",
        "seeds=1",
        "corpus_chars=5000",
        "dynamic_capacity=none",
    ];
    assert_eq!(
        csv_of(dir.path(), "out/c1", "1", &single),
        csv_of(dir.path(), "out/c2", "2", &single)
    );
}

#[test]
fn a_corpus_file_trains_and_bad_input_is_one_message_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog. ".repeat(40),
    )
    .unwrap();
    lab(dir.path())
        .args([
            "run",
            "locmoe",
            "mode=charlm",
            "router=switch",
            "seeds=1",
            "steps=5",
        ])
        .arg(format!("corpus={}", text.display()))
        .args(["--out", "out/file", "-q"])
        .assert()
        .success();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    let corpus = |p: &Path| format!("corpus={}", p.display());
    let (e, l, m) = (
        corpus(&empty),
        corpus(&latin1),
        corpus(&dir.path().join("missing.txt")),
    );
    for (args, needle) in [
        (vec!["mode=pmoe", "d=30"], "not a multiple of experts = 8"),
        (
            vec!["mode=pmoe", "router=gshard", "top_k=9"],
            "top_k = 9 exceeds experts = 8",
        ),
        (vec!["mode=pmoe", "capacity=9"], "above the 512 tokens"),
        (vec!["mode=pmoe", "capacity=0.001"], "below 1"),
        (
            vec!["mode=pmoe", "sample_tokens=100"],
            "not a multiple of sample_tokens",
        ),
        (
            vec!["mode=pmoe", "dynamic_capacity=none,schedule"],
            "none alone",
        ),
        (vec!["mode=charlm", e.as_str()], "0 characters"),
        (vec!["mode=charlm", l.as_str()], "not UTF-8"),
        (vec!["mode=charlm", m.as_str()], "missing.txt"),
        (vec!["roter=switch"], "router"),
        (vec!["mode=theory", "ecr_q=1"], "strictly between 0 and 1"),
    ] {
        let out = lab(dir.path())
            .args(["run", "locmoe", "-q", "--out", "out/bad"])
            .args(&args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!dir.path().join("out/bad.csv").exists());
}

#[test]
fn ctrl_c_keeps_every_finished_row() {
    let dir = TempDir::new().unwrap();
    let csv = dir.path().join("out/long.csv");
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "locmoe",
            "mode=pmoe",
            "steps=20000",
            "eval_every=20",
            "--out",
            "out/long",
            "-q",
        ],
        || common::lines(&csv) > 3,
        std::time::Duration::from_millis(300),
    );
    common::assert_interrupted(&ended, &dir.path().join("out/long"));
}
