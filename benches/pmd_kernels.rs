//! Hot kernels of PMD: policy evaluation (dense LU and MacQueen sweeps), Q-values, and the
//! per-state mirror step of each divergence.

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use std::hint::black_box;

use lab::experiments::pmd::evaluation::{EvalMethod, Evaluator};
use lab::experiments::pmd::mdp::Mdp;
use lab::experiments::pmd::mirror::Divergence;
use lab::random::Streams;

fn evaluation(c: &mut Criterion) {
    faer::set_global_parallelism(faer::Par::Seq);
    for (states, method, name) in [
        (200, EvalMethod::Lu, "evaluate LU S=200"),
        (1000, EvalMethod::Lu, "evaluate LU S=1000"),
        (
            2000,
            EvalMethod::Iterative { tol: 1e-12 },
            "evaluate sweeps S=2000 cold",
        ),
    ] {
        let mdp = Mdp::garnet(states, 10, 10, &mut Streams::new(0).rng("mdp"));
        let pi = Array2::from_elem((states, 10), 0.1);
        let eval = Evaluator::new(&mdp, 0.9, method);
        c.bench_function(name, |b| {
            b.iter(|| eval.evaluate(black_box(pi.view()), None))
        });
    }
    let mdp = Mdp::garnet(2000, 10, 10, &mut Streams::new(0).rng("mdp"));
    let pi = Array2::from_elem((2000, 10), 0.1);
    let eval = Evaluator::new(&mdp, 0.9, EvalMethod::Iterative { tol: 1e-12 });
    let v = eval.evaluate(pi.view(), None);
    // A warm start as PMD has it: the previous iterate's values for a slightly changed policy.
    let mut nearby = pi.clone();
    nearby.column_mut(0).mapv_inplace(|x| x + 0.01);
    nearby.column_mut(1).mapv_inplace(|x| x - 0.01);
    c.bench_function("evaluate sweeps S=2000 warm", |b| {
        b.iter(|| eval.evaluate(black_box(nearby.view()), Some(&v)))
    });
    c.bench_function("q values S=2000", |b| {
        b.iter(|| eval.q_values(black_box(&v)))
    });
}

fn steps(c: &mut Criterion) {
    let pi: Vec<f64> = (1..=10).map(|i| i as f64 / 55.0).collect();
    let log_pi: Vec<f64> = pi.iter().map(|x| x.ln()).collect();
    let q: Vec<f64> = (0..10).map(|i| ((i * 7) % 10) as f64 / 10.0).collect();
    for divergence in [
        Divergence::Euclidean,
        Divergence::Kl,
        Divergence::Tsallis(1.5),
        Divergence::Tsallis(0.5),
        Divergence::Burg,
    ] {
        let (mut p, mut log_p) = (vec![0.0; 10], vec![0.0; 10]);
        c.bench_function(&format!("step {divergence:?} A=10"), |b| {
            b.iter(|| {
                divergence.step(
                    black_box(&pi),
                    &log_pi,
                    black_box(&q),
                    2.0,
                    &mut p,
                    &mut log_p,
                )
            })
        });
    }
}

criterion_group!(benches, evaluation, steps);
criterion_main!(benches);
