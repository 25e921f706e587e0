//! Hot kernels of an SVRS step: the sampled node's gradient correction, the master's local
//! solve and a full gradient, on a8a (n = 100, Gram path) and w8a (n = 500, row path) when
//! $LAB_DATA has them, and on synthetic ridge data otherwise.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

use lab::experiments::svrs::data::{SyntheticShape, read_libsvm, synthetic};
use lab::experiments::svrs::local::LocalSolver;
use lab::experiments::svrs::problem::{Loss, Problem};
use lab::random::Streams;

fn problems() -> Vec<(String, Problem)> {
    let mut out = Vec::new();
    let data_dir = std::env::var_os("LAB_DATA").map(PathBuf::from);
    for (name, nodes) in [("a8a", 100), ("w8a", 500)] {
        let Some(path) = data_dir.as_ref().map(|d| d.join("libsvm").join(name)) else {
            continue;
        };
        if let Ok(data) = read_libsvm(&path) {
            let p = Problem::split(
                data,
                Loss::Ridge,
                0.01,
                nodes,
                &mut Streams::new(0).rng("split"),
            );
            out.push((format!("{name} n={nodes}"), p));
        }
    }
    let shape = SyntheticShape {
        rows: 12_800,
        features: 20,
        decay: 1.0,
        heterogeneity: 0.0,
        noise: 0.5,
        nodes: 64,
        classification: false,
    };
    let data = synthetic(&shape, &mut Streams::new(0).rng("data"));
    let p = Problem::split(
        data,
        Loss::Ridge,
        1e-4,
        64,
        &mut Streams::new(0).rng("split"),
    );
    out.push(("synthetic d=20 n=64".into(), p));
    out
}

fn kernels(c: &mut Criterion) {
    faer::set_global_parallelism(faer::Par::Seq);
    for (name, p) in problems() {
        let d = p.dim();
        let path = if p.uses_gram() { "gram" } else { "rows" };
        let x: Vec<f64> = (0..d).map(|j| 0.01 * j as f64).collect();
        let w: Vec<f64> = (0..d).map(|j| -0.02 * j as f64).collect();
        let mut out = vec![0.0; d];
        c.bench_function(&format!("{name}: node gradient difference ({path})"), |b| {
            b.iter(|| p.add_node_grad_difference(black_box(7), &x, &w, &mut out))
        });
        c.bench_function(&format!("{name}: full gradient ({path})"), |b| {
            b.iter(|| p.full_grad(black_box(&x), &mut out))
        });
        let mut master = LocalSolver::new(&p, 20.0, 1.0);
        master.solve(0, &x, &w, &mut out).unwrap();
        c.bench_function(
            &format!("{name}: master solve (cached inverse or Cholesky, d={d})"),
            |b| b.iter(|| master.solve(0, black_box(&x), &w, &mut out).unwrap()),
        );
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
