//! directional: gradients of every network against finite differences, the layered flow
//! against the end-to-end (r, theta) ODE, every claim on its instance (the cases of
//! `lab verify directional`), claim checks that must fail on wrong rows, bad input, online
//! reproducibility, Ctrl-C and the figures.

mod common;

use common::lab;

use std::path::Path;

use lab::claims::Verdict;
use lab::contract::{Claims, run_case};
use lab::experiments::directional::model::{Network, PopulationObjective};
use lab::experiments::directional::population::{Law, Loss, Population, RadialTable};
use lab::experiments::directional::{DirectionalExperiment, Theory, claims, verify};
use lab::flow::{Objective, Tolerances, VectorField, gradient_flow, integrate};
use lab::table::{Cell, Table};
use tempfile::TempDir;

/// Central differences of f at x.
fn finite_differences(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let h = 1e-6 * (1.0 + x[i].abs());
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            (f(&a) - f(&b)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(analytic: &[f64], numeric: &[f64], what: &str) {
    for (a, n) in analytic.iter().zip(numeric) {
        assert!(
            (a - n).abs() < 1e-6 * (1.0 + n.abs()),
            "{what}: {analytic:?} against {numeric:?}"
        );
    }
}

#[test]
fn population_layer_gradients_match_finite_differences() {
    let network = Network::Linear {
        widths: vec![4, 2, 3, 1],
    };
    for loss in [Loss::Logistic, Loss::Exponential] {
        let objective = PopulationObjective {
            network: &network,
            population: Population::new(Law::Sphere { dim: 4 }, loss),
            table: None,
        };
        let theta: Vec<f64> = (0..network.dim())
            .map(|i| 0.4 * ((i as f64) * 1.7).sin() + 0.1)
            .collect();
        let mut g = vec![0.0; theta.len()];
        objective.gradient(&theta, &mut g);
        let fd = finite_differences(&|t| objective.loss(t), &theta);
        assert_close(&g, &fd, &format!("{loss:?} layers"));
    }
}

#[test]
fn two_node_population_gradients_match_finite_differences() {
    let network = Network::TwoNode {
        dim: 3,
        train_second: true,
    };
    let population = Population::new(Law::Gaussian, Loss::Logistic);
    let table = RadialTable::new(population.clone());
    let objective = PopulationObjective {
        network: &network,
        population,
        table: Some(&table),
    };
    // Units in the plane of w* and e_2 (where the population flow keeps them).
    let theta = [0.7, -0.5, 0.0, -0.3, 0.9, 0.0, 1.1, -0.6];
    let mut g = vec![0.0; theta.len()];
    objective.gradient(&theta, &mut g);
    let plane = [0, 1, 3, 4, 6, 7];
    let fd = finite_differences(
        &|q| {
            let mut t = theta.to_vec();
            for (k, &i) in plane.iter().enumerate() {
                t[i] = q[k];
            }
            objective.loss(&t)
        },
        &plane.map(|i| theta[i]),
    );
    assert_close(&plane.map(|i| g[i]), &fd, "two-node");
}

#[test]
fn batch_gradients_match_finite_differences_of_the_batch_loss() {
    let population = Population::new(Law::Gaussian, Loss::Logistic);
    let mut rng = lab::random::Streams::new(1).rng("test");
    for network in [
        Network::Linear {
            widths: vec![3, 2, 1],
        },
        Network::TwoNode {
            dim: 3,
            train_second: true,
        },
    ] {
        let batch = Network::draw_batch(&population, 3, 16, &mut rng);
        let theta: Vec<f64> = (0..network.dim())
            .map(|i| 0.5 * ((i as f64) * 2.3).cos())
            .collect();
        let batch_loss = |t: &[f64]| {
            batch
                .iter()
                .map(|(y, x)| population.loss.value(y * network.output(t, x)))
                .sum::<f64>()
                / batch.len() as f64
        };
        let mut g = vec![0.0; theta.len()];
        network.batch_gradient(&population, &theta, &batch, &mut g);
        assert_close(
            &g,
            &finite_differences(&batch_loss, &theta),
            &format!("{network:?}"),
        );
    }
}

/// The end-to-end flow of a balanced depth-N network in (r, theta) (Arora et al. 2018):
/// r' = -N r^(2-2/N) L_r, theta' = -r^(-2/N) L_theta, with the logistic loss's
/// L = F(r) + (E rho / pi) r (1 - cos theta).
struct EndToEnd {
    population: Population,
    depth: f64,
}

impl VectorField for EndToEnd {
    fn velocity(&self, x: &[f64], out: &mut [f64]) {
        let (r, theta) = (x[0], x[1]);
        let m = self.population.mean_radius() / std::f64::consts::PI;
        let (_, df) = self.population.correct_part(r);
        let l_r = df + m * (1.0 - theta.cos());
        let l_theta = m * r * theta.sin();
        let n = self.depth;
        out[0] = -n * r.powf(2.0 - 2.0 / n) * l_r;
        out[1] = -r.powf(-2.0 / n) * l_theta;
    }
}

#[test]
fn the_layered_flow_follows_the_end_to_end_ode() {
    for depth in [1usize, 3] {
        let spec = run_case::<DirectionalExperiment>(&[&format!("depth={depth}"), "t_end=1"])
            .unwrap()
            .spec;
        let network = lab::experiments::directional::network(&spec);
        let population = lab::experiments::directional::population(&spec);
        let objective = PopulationObjective {
            network: &network,
            population: population.clone(),
            table: None,
        };
        let theta0 =
            lab::experiments::directional::start(&spec, &network, spec.streams().rng("init"));
        let times: Vec<f64> = (0..=20).map(|k| k as f64 * 5.0).collect();
        // Relative error control: the components across w* shrink with the angle.
        let tolerances = Tolerances {
            atol: 1e-300,
            ..Tolerances::default()
        };
        let layered = gradient_flow(&objective, &theta0, &times, tolerances).unwrap();
        let field = EndToEnd {
            population,
            depth: depth as f64,
        };
        let reduced = integrate(&field, &[0.5, 1.0], &times, tolerances).unwrap();
        for (state, x) in layered.states.iter().zip(&reduced.states) {
            let (angle, _) = lab::experiments::directional::angles(&network, state);
            let r = lab::experiments::directional::norm(&network, state);
            assert!(
                (r - x[0]).abs() < 1e-7 * x[0],
                "depth {depth}: r {r} against {}",
                x[0]
            );
            assert!(
                (angle - x[1]).abs() < 1e-7 * x[1],
                "depth {depth}: theta {angle} against {}",
                x[1]
            );
        }
    }
}

#[test]
fn every_case_passes_its_claims_and_every_claim_is_exercised() {
    let mut seen = Vec::new();
    for (label, settings) in verify::CASES {
        let results = run_case::<DirectionalExperiment>(settings)
            .unwrap()
            .claims(label)
            .unwrap();
        assert!(!results.is_empty(), "{label}");
        for r in results {
            assert_eq!(r.verdict, Verdict::Pass, "{label}: {} {}", r.id, r.measured);
            seen.push(r.id);
        }
    }
    for doc in DirectionalExperiment::CLAIMS {
        assert!(
            seen.iter().any(|id| id == doc.id),
            "{} never checked",
            doc.id
        );
    }
}

/// Rows of a synthetic flow: theta = exp(-c t^(2/3)), r = (3 K t + r0^3)^(1/3).
fn synthetic(c: f64, k: f64, increase_at: Option<usize>) -> Table {
    let mut table = Table::with_columns(
        &["method", "t", "angle", "norm", "drift"].map(String::from),
        &[true, false, false, false, false],
    );
    for i in 0..=400 {
        let t = 10_000.0 * 1e-3f64.powf(1.0 - i as f64 / 400.0);
        let mut angle = (-c * t.powf(2.0 / 3.0)).exp();
        if increase_at == Some(i) {
            angle *= 10.0;
        }
        let norm = (3.0 * k * t + 0.125).cbrt();
        table.push(&[
            Cell::Text("flow".into()),
            Cell::Real(t),
            Cell::Real(angle),
            Cell::Real(norm),
            Cell::Missing,
        ]);
    }
    table
}

#[test]
fn the_rate_checks_fail_on_rows_with_other_rates() {
    let theory = Theory::new(&Population::new(Law::Gaussian, Loss::Logistic), 1);
    let exact = synthetic(theory.angle_coefficient, theory.k, None);
    assert_eq!(claims::check_angle_law(&exact, &theory).0, Verdict::Pass);
    assert_eq!(
        claims::check_norm_exponent(&exact, &theory).0,
        Verdict::Pass
    );
    assert_eq!(claims::check_converges(&exact).0, Verdict::Pass);
    // A coefficient 10% off, a growth 10% off, an angle that goes up once late.
    let slow = synthetic(0.9 * theory.angle_coefficient, theory.k, None);
    assert_eq!(claims::check_angle_law(&slow, &theory).0, Verdict::Fail);
    let fast = synthetic(theory.angle_coefficient, 1.1 * theory.k, None);
    assert_eq!(claims::check_norm_exponent(&fast, &theory).0, Verdict::Fail);
    let bump = synthetic(theory.angle_coefficient, theory.k, Some(380));
    assert_eq!(claims::check_converges(&bump).0, Verdict::Fail);
    // The local rate law: -dlog(theta)/dt = tau / r for N = 1; a 5% faster decay fails.
    let mut rows = Table::with_columns(
        &["method", "t", "angle", "norm"].map(String::from),
        &[true, false, false, false],
    );
    for i in 0..=100 {
        let t = 100.0 + i as f64;
        let r: f64 = 10.0;
        rows.push(&[
            Cell::Text("flow".into()),
            Cell::Real(t),
            Cell::Real((-1.05 * theory.tau * t / r).exp()),
            Cell::Real(r),
        ]);
    }
    assert_eq!(claims::check_angle_rate(&rows, &theory).0, Verdict::Fail);
}

#[test]
fn bad_input_is_rejected_before_anything_is_written() {
    let dir = TempDir::new().unwrap();
    for (args, needle) in [
        (&["law=sphere", "dim=2"][..], "dim >= 3"),
        (&["init_angle=4"][..], "init_angle"),
        (&["method=flow,sgd"][..], "sgd"),
        (&["depht=2"][..], "depth"),
        (&["eta=5", "t_end=1", "method=gd"][..], "eta = 5"),
        (&["loss=hinge"][..], "hinge"),
    ] {
        let out = lab(dir.path())
            .args(["run", "directional", "-q"])
            .args(args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
    assert!(!dir.path().join("out").exists());
}

#[test]
fn online_runs_repeat_bit_for_bit_and_change_with_the_seed() {
    let dir = TempDir::new().unwrap();
    let run = |name: &str, seed: &str| {
        lab(dir.path())
            .args([
                "run",
                "directional",
                "method=online",
                "t_end=20",
                "spacing=linear",
                "outputs=20",
                "--seed",
                seed,
                "--out",
                name,
                "-q",
            ])
            .assert()
            .success();
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.csv"))).unwrap();
        // Drop the wall-clock column.
        text.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (run("out/a", "1"), run("out/b", "1"), run("out/c", "2"));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn figures_show_the_field_and_the_derived_slope() {
    let dir = TempDir::new().unwrap();
    lab(dir.path())
        .args(["run", "directional", "t_end=50", "--out", "out/x", "-q"])
        .assert()
        .success();
    let main = std::fs::read_to_string(dir.path().join("out/x.svg")).unwrap();
    assert!(main.contains("((N+2) K t)^(N/(N+2)), N = 1, reconstructed"));
    let field = std::fs::read_to_string(dir.path().join("out/x.field.svg")).unwrap();
    assert!(field.contains("-grad L"), "no field title");
    assert!(field.contains("across w*"));
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/directional-two-node.toml");
    lab(dir.path())
        .args(["run", "directional", "--spec"])
        .arg(&spec)
        .args(["--out", "out/two", "-q"])
        .assert()
        .success();
    let two = std::fs::read_to_string(dir.path().join("out/two.field.svg")).unwrap();
    assert!(two.contains("angle(w_2, -w*)"));
    // Each method of the run in the legend, by name.
    for method in ["flow", "gd", "online"] {
        assert!(
            two.lines().any(|l| l.trim() == method),
            "no legend entry for {method}"
        );
    }
}

#[test]
fn ctrl_c_stops_a_long_online_run() {
    let dir = TempDir::new().unwrap();
    let manifest = dir.path().join("out/long.run.json");
    // Interrupt once the run has started (its manifest exists) and settled in its loop.
    let ended = common::interrupt(
        dir.path(),
        &[
            "run",
            "directional",
            "method=online",
            "t_end=1e8",
            "--out",
            "out/long",
            "-q",
        ],
        || manifest.exists(),
        std::time::Duration::from_millis(300),
    );
    common::assert_interrupted(&ended, &dir.path().join("out/long"));
}
