//! bnquant: every claim on its instances (the cases of `lab verify bnquant`), the exact
//! rounding against big-rational arithmetic, the minimal-shift search against brute force over
//! every (M, C) on tiny ranges, the run certificate against every code of ranges of 2^20, the
//! gemmlowp arithmetic on hand-worked cases, bad input, thread-count independence and Ctrl-C.

mod common;

use std::fs;

use common::lab;
use lab::experiments::bnquant::BnquantExperiment;
use lab::experiments::bnquant::baselines::{
    Baseline, Tflite, multiply_by_quantized_multiplier, quantize_multiplier,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
use lab::experiments::bnquant::channels;
use lab::experiments::bnquant::exact::{Codes, Folded, Rounding, Truth, staircase};
use lab::experiments::bnquant::search::{
    Exact, admissible_m, certify_by_runs, certify_minimal, mismatches, search, window,
};
use lab::random::Streams;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use rand::Rng;
use tempfile::TempDir;

/// `lab verify bnquant`: every claim passes or deviates exactly as declared, and every claim
/// is checked.
#[test]
fn every_case_checks_its_claims() {
    common::assert_every_case_checks_its_claims::<BnquantExperiment>();
}

/// No clamping: the outputs of `round` itself.
const WIDE: Codes = Codes {
    lo: -(1 << 62),
    hi: 1 << 62,
};

/// round(A x + B) in big-rational arithmetic on the exact values of A and B.
fn rational_round(a: f64, b: f64, x: i64, rule: Rounding) -> i64 {
    let v = BigRational::from_float(a).unwrap() * BigRational::from_integer(BigInt::from(x))
        + BigRational::from_float(b).unwrap();
    let shifted = v + BigRational::new(BigInt::one(), BigInt::from(2));
    let floor = shifted.floor();
    let tie = (&shifted - &floor).is_zero();
    let r = floor.to_integer();
    let odd = (&r % BigInt::from(2)) != BigInt::zero();
    let r = if rule == Rounding::HalfEven && tie && odd {
        r - 1
    } else {
        r
    };
    // As `Truth::q` clamps to the output range.
    let limit = BigInt::from(1i64 << 62);
    r.clamp(-limit.clone(), limit).try_into().unwrap()
}

/// A value of magnitude 2^e for e uniform in [lo, hi], with a random sign and mantissa.
fn spread(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    let v = 2f64.powf(lo + (hi - lo) * rng.random::<f64>());
    if rng.random::<bool>() { v } else { -v }
}

#[test]
fn exact_rounding_equals_big_rational_arithmetic() {
    let mut rng = Streams::new(11).rng("exact");
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    // Magnitudes far apart, both ways, down to subnormals.
    // Up to 2^47 (2^40 at 8 bits, times 2^8 for 16-bit outputs).
    for _ in 0..300 {
        pairs.push((spread(&mut rng, -90.0, 47.0), spread(&mut rng, -90.0, 47.0)));
    }
    // Exact ties: A and B - 1/2 on a grid of 2^-s, so A x + B hits k + 1/2 often.
    for _ in 0..300 {
        let s = rng.random_range(0..5);
        let g = 2f64.powi(-s);
        let a = rng.random_range(-40..40) as f64 * g;
        let b = rng.random_range(-400..400) as f64 * g + 0.5;
        pairs.push((a, b));
    }
    pairs.extend([
        (0.0, 0.5),
        (0.0, -0.5),
        (0.0, 1.5),
        (0.0, 0.0),
        (1e-300, -0.5),
        (5e-324, 0.5),
        (-5e-324, 0.5),
        (0.5, 5e-324),
        (0.5, -5e-324),
        (1e-30, 2.5),
        (3.0, 1e-200),
    ]);
    for rule in [Rounding::HalfUp, Rounding::HalfEven] {
        for &(a, b) in &pairs {
            let truth = Truth::new(Folded {
                a,
                b,
                out: WIDE,
                rounding: rule,
            });
            let mut codes: Vec<i64> = (-40..40).collect();
            codes.extend((0..40).map(|_| rng.random_range(-(1i64 << 32)..=(1i64 << 32))));
            codes.extend([-(1i64 << 32), 1 << 32]);
            for x in codes {
                assert_eq!(
                    truth.q(x),
                    rational_round(a, b, x, rule),
                    "A = {a:e}, B = {b:e}, x = {x}, {rule:?}"
                );
            }
        }
    }
}

/// Random tiny channels: codes [-4, 3] or [0, 7], outputs of 2 or 3 bits.
fn tiny_channels(count: usize) -> Vec<(Folded, Codes)> {
    let mut rng = Streams::new(5).rng("tiny");
    (0..count)
        .map(|i| {
            let codes = if i % 2 == 0 {
                Codes { lo: -4, hi: 3 }
            } else {
                Codes { lo: 0, hi: 7 }
            };
            let out = Codes::output(2 + (i % 3 == 0) as u32, i % 4 < 2);
            let a = spread(&mut rng, -4.0, 2.0);
            let b = rng.random_range(-5.0..5.0);
            let rounding = if i % 5 == 0 {
                Rounding::HalfEven
            } else {
                Rounding::HalfUp
            };
            (
                Folded {
                    a,
                    b,
                    out,
                    rounding,
                },
                codes,
            )
        })
        .collect()
}

/// Brute force over every M in [-2^(n+4), 2^(n+4)] and every C in [-2^(n+7), 2^(n+7)] (wide
/// enough: for such M some admissible C lies inside whenever one exists, as |t 2^n - M x| <
/// 2^(n+7)): the M for which some C reproduces every code.
fn brute_force(truth: &Truth, codes: Codes, n: u32) -> Vec<i128> {
    let (mb, cb) = (1i64 << (n + 4), 1i64 << (n + 7));
    let targets: Vec<i64> = (codes.lo..=codes.hi).map(|x| truth.q(x)).collect();
    (-mb..=mb)
        .filter(|&m| {
            (-cb..=cb).any(|c| {
                let e = Exact { n, m, c };
                (codes.lo..=codes.hi)
                    .zip(&targets)
                    .all(|(x, &t)| e.apply(x, truth.folded.out) == t)
            })
        })
        .map(i128::from)
        .collect()
}

#[test]
fn the_search_agrees_with_brute_force_over_every_m_and_c() {
    let mut searched = 0;
    for (folded, codes) in tiny_channels(80) {
        let truth = Truth::new(folded);
        let runs = staircase(&truth, codes);
        let found = search(&runs, folded.out).exact;
        let mut first_feasible = None;
        for n in 0..=3u32 {
            let brute = brute_force(&truth, codes, n);
            let (lo, hi) = admissible_m(&runs, folded.out, n);
            let box_ = 1i128 << (n + 4);
            let exact_set: Vec<i128> = (lo.max(-box_)..=hi.min(box_)).collect();
            assert_eq!(brute, exact_set, "{folded:?} {codes:?} n = {n}");
            // The search's window holds every admissible M.
            let (wlo, whi) = window(&runs, folded.out, n);
            if lo <= hi {
                assert!(wlo <= lo && hi <= whi, "{folded:?} n = {n}: window");
                first_feasible.get_or_insert(n);
            }
        }
        if let Some(n) = first_feasible {
            let e = found.unwrap_or_else(|| panic!("{folded:?}: nothing found"));
            assert_eq!(e.n, n, "{folded:?}: minimal n");
            // The M nearest 0 among the admissible ones.
            let (lo, hi) = admissible_m(&runs, folded.out, n);
            assert_eq!(e.m as i128, 0i128.clamp(lo, hi), "{folded:?}");
            assert_eq!(mismatches(&truth, codes, &e), 0);
            assert_eq!(certify_minimal(&runs, folded.out, &e), Some(true));
            searched += 1;
        }
    }
    // Most tiny channels are feasible by n = 3: the search was compared on them.
    assert!(searched >= 40, "only {searched} channels feasible by n = 3");
}

#[test]
fn the_runs_certificate_agrees_with_every_code_of_ranges_of_2_to_the_20() {
    let codes = Codes {
        lo: -(1 << 19),
        hi: (1 << 19) - 1,
    };
    let mut rng = Streams::new(7).rng("wide");
    for i in 0..8 {
        // Staircases that span the 8-bit output over the range, and steeper ones.
        let a = spread(&mut rng, -13.0, -6.0);
        let b = rng.random_range(-100.0..100.0);
        let rounding = if i % 2 == 0 {
            Rounding::HalfUp
        } else {
            Rounding::HalfEven
        };
        let folded = Folded {
            a,
            b,
            out: Codes::output(8, true),
            rounding,
        };
        let truth = Truth::new(folded);
        let runs = staircase(&truth, codes);
        let e = search(&runs, folded.out).exact.expect("found");
        assert!(certify_by_runs(&runs, folded.out, &e));
        assert_eq!(mismatches(&truth, codes, &e), 0);
        assert_eq!(certify_minimal(&runs, folded.out, &e), Some(true));
        for wrong in [
            Exact { m: e.m + 1, ..e },
            Exact { c: e.c + 1, ..e },
            Exact { c: e.c - 1, ..e },
            Exact { n: e.n + 1, ..e },
        ] {
            assert_eq!(
                certify_by_runs(&runs, folded.out, &wrong),
                mismatches(&truth, codes, &wrong) == 0,
                "{folded:?} {wrong:?}"
            );
        }
    }
}

/// gemmlowp's fixedpoint.h and TFLite's QuantizeMultiplier, worked by hand.
#[test]
fn gemmlowp_arithmetic_on_hand_worked_cases() {
    let srdhm = saturating_rounding_doubling_high_mul;
    // 0.5 x 0.5 = 0.25 in Q31.
    assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
    // 3 x 0.5 = 1.5 rounds up to 2; -3 x 0.5 = -1.5: the nudge 1 - 2^30 and C's truncation
    // toward zero give -1 (ties toward +infinity, as ARM's VQRDMULH).
    assert_eq!(srdhm(3, 1 << 30), 2);
    assert_eq!(srdhm(-3, 1 << 30), -1);
    assert_eq!(srdhm(-5, 1 << 30), -2);
    // The one overflow saturates.
    assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
    // RoundingDivideByPOT rounds ties away from zero.
    assert_eq!(rounding_divide_by_pot(3, 1), 2);
    assert_eq!(rounding_divide_by_pot(-3, 1), -2);
    assert_eq!(rounding_divide_by_pot(5, 2), 1);
    assert_eq!(rounding_divide_by_pot(-5, 2), -1);
    assert_eq!(rounding_divide_by_pot(6, 2), 2);
    assert_eq!(rounding_divide_by_pot(-6, 2), -2);
    assert_eq!(rounding_divide_by_pot(-7, 2), -2);
    // frexp: 0.75 = 0.75 2^0; 2 = 0.5 2^2.
    assert_eq!(quantize_multiplier(0.75), (1610612736, 0));
    assert_eq!(quantize_multiplier(2.0), (1 << 30, 2));
    // q = 1 - 2^-33 rounds to 2^31: the carry halves it and bumps the shift.
    assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-33)), (1 << 30, 1));
    assert_eq!(quantize_multiplier(2f64.powi(-40)), (0, 0));
    // Double rounding: 5 x 0.25 = 1.25, but SRDHM gives round(2.5) = 3 first, then
    // RoundingDivideByPOT(3, 1) = round(1.5) = 2.
    let (q, shift) = quantize_multiplier(0.25);
    assert_eq!((q, shift), (1 << 30, -1));
    assert_eq!(multiply_by_quantized_multiplier(5, q, shift), Some(2));
    let channel = Folded {
        a: 0.25,
        b: 0.0,
        out: Codes::output(8, true),
        rounding: Rounding::HalfUp,
    };
    assert_eq!(Tflite::new(&channel, 0, 0).q(5), Some(2));
    assert_eq!(Truth::new(channel).q(5), 1);
}

/// With round half even, A = 1/2 puts ties at every odd code, rounded down and up in turn
/// (0.5 -> 0, 1.5 -> 2): no floor of an affine function does that, so no (M, C, n) exists;
/// with half up it is floor((x + 1) / 2).
#[test]
fn alternating_ties_under_half_even_have_no_exact_form() {
    let codes = Codes { lo: -8, hi: 8 };
    let folded = |rounding| Folded {
        a: 0.5,
        b: 0.0,
        out: Codes::output(8, true),
        rounding,
    };
    let even = folded(Rounding::HalfEven);
    let runs = staircase(&Truth::new(even), codes);
    assert!(search(&runs, even.out).exact.is_none());
    for n in 0..=20 {
        let (lo, hi) = admissible_m(&runs, even.out, n);
        assert!(lo > hi, "n = {n}");
    }
    assert!(brute_force(&Truth::new(even), Codes { lo: 0, hi: 7 }, 3).is_empty());
    let up = folded(Rounding::HalfUp);
    let runs = staircase(&Truth::new(up), codes);
    assert_eq!(
        search(&runs, up.out).exact,
        Some(Exact { n: 1, m: 1, c: 1 })
    );
}

/// gamma = 0 is a constant channel, not bad input: M = 0 at n = 0.
#[test]
fn a_constant_channel_gets_m_zero() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("c.csv");
    fs::write(
        &file,
        "layer,channel,gamma,beta,mean,var,eps,scale_in,zero_in,scale_out\n\
         bn,0,0,0.4,0.5,1.0,1e-5,0.02,0,0.05\n",
    )
    .unwrap();
    let list = channels::read(&file).unwrap();
    assert_eq!(list[0].a, 0.0);
    let folded = Folded {
        a: list[0].a,
        b: list[0].b,
        out: Codes::output(8, true),
        rounding: Rounding::HalfUp,
    };
    let runs = staircase(&Truth::new(folded), Codes::INT8);
    assert_eq!(
        search(&runs, folded.out).exact,
        Some(Exact { n: 0, m: 0, c: 8 })
    );
}

fn fails_with(dir: &std::path::Path, args: &[&str], wanted: &[&str]) {
    let out = lab(dir).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {err} lacks {w}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_one_clear_message_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let header = "layer,channel,gamma,beta,mean,var,eps,scale_in,zero_in,scale_out\n";
    let good = "bn,0,1,0,0,1,1e-5,0.02,0,0.05\n";
    for (name, row, wanted) in [
        (
            "var.csv",
            "bn,1,1,0,0,-1,1e-5,0.02,0,0.05\n",
            &["line 3", "bn/1", "var + eps"][..],
        ),
        (
            "inf.csv",
            "bn,1,inf,0,0,1,1e-5,0.02,0,0.05\n",
            &["line 3", "gamma", "finite"][..],
        ),
        (
            "nan.csv",
            "bn,1,1,NaN,0,1,1e-5,0.02,0,0.05\n",
            &["line 3", "beta"][..],
        ),
        (
            "word.csv",
            "bn,1,1,zero,0,1,1e-5,0.02,0,0.05\n",
            &["line 3", "beta", "not a number"][..],
        ),
        (
            "short.csv",
            "bn,1,1\n",
            &["line 3", "3 fields", "header has 10"][..],
        ),
        (
            "scale.csv",
            "bn,1,1,0,0,1,1e-5,0,0,0.05\n",
            &["line 3", "scale_in"][..],
        ),
        (
            "zero.csv",
            "bn,1,1,0,0,1,1e-5,0.02,0.5,0.05\n",
            &["line 3", "zero_in", "integer"][..],
        ),
        (
            "twice.csv",
            "bn,0,1,0,0,1,1e-5,0.02,0,0.05\n",
            &["line 3", "bn/0", "once"][..],
        ),
    ] {
        let file = d.join(name);
        fs::write(&file, format!("{header}{good}{row}")).unwrap();
        let path = file.to_str().unwrap();
        fails_with(
            d,
            &["run", "bnquant", "source=file", &format!("file={path}")],
            wanted,
        );
    }
    let file = d.join("cols.csv");
    fs::write(&file, "layer,channel,gamma\nbn,0,1\n").unwrap();
    fails_with(
        d,
        &[
            "run",
            "bnquant",
            "source=file",
            &format!("file={}", file.display()),
        ],
        &["beta"],
    );
    fails_with(
        d,
        &["run", "bnquant", "source=file", "file=missing.csv"],
        &["missing.csv"],
    );
    fails_with(
        d,
        &["run", "bnquant", "input=range", "input_lo=5", "input_hi=2"],
        &["input_lo", "lo <= hi"],
    );
    fs::write(d.join("empty.csv"), "").unwrap();
    let empty = format!("file={}", d.join("empty.csv").display());
    fails_with(
        d,
        &["run", "bnquant", "source=file", &empty],
        &["empty.csv", "empty"],
    );
    fails_with(d, &["run", "bnquant", "bits=17"], &["bits"]);
    fails_with(d, &["run", "bnquant", "bits="], &["bits", "empty"]);
    fails_with(d, &["run", "bnquant", "bits=8,8"], &["bits", "twice"]);
    fails_with(d, &["run", "bnquant", "bits=0"], &["bits"]);
    fails_with(
        d,
        &["run", "bnquant", "input=int16", "preshift=20"],
        &["preshift", "int32"],
    );
    fails_with(d, &["run", "bnquant", "source=blobs"], &["unsigned"]);
    assert!(!d.join("out").exists(), "nothing written");
}

/// The edges of the settings run to the end: int32 codes (certified by runs, baselines not
/// compared), 16-bit outputs on int16 codes (more runs than the minimality certificate takes),
/// and a subnormal A from a file (TFLite's multiplier is then 0).
#[test]
fn wide_ranges_wide_outputs_and_tiny_scales_run() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let file = d.join("tiny.csv");
    fs::write(
        &file,
        "layer,channel,a,b\nbn,0,1e-310,3.5\nbn,1,-2.5e-320,-0.5\n",
    )
    .unwrap();
    for (name, args) in [
        ("int32", vec!["channels=5", "input=int32", "curve_max_n=0"]),
        (
            "wide",
            vec![
                "channels=3",
                "input=int16",
                "bits=16",
                "a_max=0.02",
                "curve_max_n=0",
            ],
        ),
        (
            "tiny",
            vec![
                "source=file",
                "file=tiny.csv",
                "input=uint8",
                "curve_max_n=3",
            ],
        ),
    ] {
        let prefix = format!("out/{name}");
        let out = lab(d)
            .args(["run", "bnquant"])
            .args(&args)
            .args(["--out", &prefix, "-q"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        let rows = lab::table::Table::read_csv(&d.join(format!("{prefix}.csv"))).unwrap();
        let runs_certified = rows.num("runs_certified").unwrap();
        assert!(runs_certified.iter().all(|&v| v == 1.0), "{name}");
        if name == "int32" {
            assert!(
                rows.num("exact_mismatches")
                    .unwrap()
                    .iter()
                    .all(|v| v.is_nan())
            );
        }
        if name == "wide" {
            // 65,536 output levels: more runs than the certificate's O(runs^2) takes.
            assert!(rows.num("minimal").unwrap().iter().any(|v| v.is_nan()));
        }
        if name == "tiny" {
            assert!(
                rows.num("exact_mismatches")
                    .unwrap()
                    .iter()
                    .all(|&v| v == 0.0)
            );
        }
    }
}

#[test]
fn rows_and_the_export_do_not_depend_on_the_thread_count() {
    let dir = TempDir::new().unwrap();
    let run = |threads: &str| {
        let name = format!("out/t{threads}");
        lab(dir.path())
            .args(["--threads", threads, "run", "bnquant", "channels=300"])
            .args(["curve_max_n=4", "--out", &name, "-q"])
            .assert()
            .success();
        (
            fs::read_to_string(dir.path().join(format!("{name}.csv"))).unwrap(),
            fs::read_to_string(dir.path().join(format!("{name}.channels.csv"))).unwrap(),
        )
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    // The export: a header and one row per channel and width.
    assert_eq!(one.1.lines().count(), 1 + 600);
    assert!(
        one.1
            .starts_with("bits,layer,channel,A,B,lo,hi,out_lo,out_hi,rounding,n,m,c,")
    );
}

#[test]
fn ctrl_c_keeps_the_finished_channels() {
    let dir = TempDir::new().unwrap();
    let prefix = dir.path().join("out/stop");
    let csv = prefix.with_extension("csv");
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "bnquant",
            "channels=400000",
            "--out",
            "out/stop",
            "-q",
        ],
        || common::lines(&csv) > 200,
        std::time::Duration::from_millis(100),
    );
    common::assert_interrupted(&ended, &prefix);
}
