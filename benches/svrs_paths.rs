//! The cost model behind SVRS's choice of gradient path for ridge nodes (issue 16): a
//! product with the node's cached Gram matrix (d^2 multiply-adds) or a pass over its rows of
//! the CSR matrix (about 2 nnz multiply-adds, gathered). Both paths are timed by criterion on
//! a grid of random sparse problems (and on a8a and w8a when $LAB_DATA has them), each
//! timing a node gradient difference on nodes visited in random order, as an SVRS run visits
//! them. A least-squares fit of each path's cost is then printed beside the model
//! `GradientPath::predicted_ns` uses, with the path the model picks and how much slower it
//! is than the faster path where it picks wrong.
//!
//!     cargo bench --bench svrs_paths
//!     LAB_DATA=../shared/data cargo bench --bench svrs_paths

use criterion::Criterion;
use faer::prelude::SolveLstsq;
use rand::Rng;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::experiments::svrs::data::{Csr, Dataset, read_libsvm};
use lab::experiments::svrs::problem::{GradientPath, Loss, NodeShape, Problem};
use lab::random::Streams;

/// A problem of the grid: n nodes of m rows, d features, k non-zeros per row.
struct Case {
    name: String,
    data: Dataset,
    nodes: usize,
}

/// Random sparse rows: k distinct columns per row, standard normal values.
fn random_sparse(rows: usize, d: usize, k: usize, seed: u64) -> Dataset {
    let mut rng = Streams::new(seed).rng("bench");
    let mut features = Csr {
        cols: d,
        indptr: vec![0],
        indices: Vec::with_capacity(rows * k),
        values: Vec::with_capacity(rows * k),
    };
    let mut columns: Vec<u32> = (0..d as u32).collect();
    for _ in 0..rows {
        // A partial Fisher-Yates shuffle picks k distinct columns; rows store them sorted.
        for j in 0..k {
            let pick = rng.random_range(j..d);
            columns.swap(j, pick);
        }
        let mut row = columns[..k].to_vec();
        row.sort_unstable();
        for c in row {
            features.indices.push(c);
            features.values.push(lab::random::standard_normal(&mut rng));
        }
        features.indptr.push(features.indices.len());
    }
    let labels = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
    Dataset { features, labels }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let nodes = 100;
    for d in [16, 64, 123, 300] {
        for k in [4, 14, 48, d] {
            if k > d || (k == d && d > 64) {
                continue;
            }
            for m in [32, 226, 1024] {
                out.push(Case {
                    name: format!("random d={d} k={k} m={m} n={nodes}"),
                    data: random_sparse(m * nodes, d, k, 7),
                    nodes,
                });
            }
        }
    }
    let data_dir = std::env::var_os("LAB_DATA").map(PathBuf::from);
    for (name, nodes) in [("a8a", 100), ("a8a", 25), ("w8a", 500), ("w8a", 100)] {
        let Some(path) = data_dir.as_ref().map(|d| d.join("libsvm").join(name)) else {
            continue;
        };
        if let Ok(data) = read_libsvm(&path) {
            out.push(Case {
                name: format!("{name} n={nodes}"),
                data,
                nodes,
            });
        }
    }
    out
}

/// One measurement: a case, a path, and the median time of a node gradient difference.
struct Row {
    name: String,
    shape: NodeShape,
    gram_ns: Option<f64>,
    rows_ns: Option<f64>,
}

/// Times `add_node_grad_difference` with criterion, recording each sample's time per call
/// so that the fit can use the median.
fn time_path(c: &mut Criterion, id: &str, problem: &Problem) -> Option<f64> {
    let d = problem.dim();
    let x: Vec<f64> = (0..d).map(|j| 0.01 * j as f64).collect();
    let w: Vec<f64> = (0..d).map(|j| -0.02 * j as f64).collect();
    let mut out = vec![0.0; d];
    let mut rng = Streams::new(1).rng("visits");
    let visits: Vec<usize> = (0..4096)
        .map(|_| rng.random_range(0..problem.nodes()))
        .collect();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let record = samples.clone();
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for k in 0..iters as usize {
                let node = visits[k % visits.len()];
                problem.add_node_grad_difference(black_box(node), &x, &w, &mut out);
            }
            let spent = start.elapsed();
            record
                .lock()
                .expect("one bench at a time")
                .push(spent.as_secs_f64() * 1e9 / iters as f64);
            spent
        })
    });
    let mut times = samples.lock().expect("done").clone();
    if times.is_empty() {
        return None; // filtered out on the command line
    }
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}

/// Least squares in relative error: the coefficients b minimising sum_i ((x_i b - y_i) / y_i)^2.
fn relative_least_squares(x: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let p = x[0].len();
    let a = faer::Mat::<f64>::from_fn(x.len(), p, |i, j| x[i][j] / y[i]);
    let rhs = faer::Mat::<f64>::from_fn(y.len(), 1, |_, _| 1.0);
    let solution = a.qr().solve_lstsq(&rhs);
    (0..p).map(|j| solution[(j, 0)]).collect()
}

fn main() {
    faer::set_global_parallelism(faer::Par::Seq);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .configure_from_args();
    let mut table = Vec::new();
    for case in cases() {
        let shape = NodeShape {
            features: case.data.features.cols,
            rows: case.data.features.rows() / case.nodes,
            nnz: case.data.features.nnz() / case.nodes,
            nodes: case.nodes,
        };
        let mut measured = [None, None];
        for (slot, path) in [GradientPath::Gram, GradientPath::Rows]
            .into_iter()
            .enumerate()
        {
            let problem = Problem::split_on(
                case.data.clone(),
                Loss::Ridge,
                0.01,
                case.nodes,
                &mut Streams::new(0).rng("split"),
                Some(path),
            );
            if problem.gradient_path() != path {
                continue; // Gram matrices past the memory cap
            }
            let id = format!("{}: node gradient difference ({path:?})", case.name);
            measured[slot] = time_path(&mut c, &id, &problem);
        }
        table.push(Row {
            name: case.name,
            shape,
            gram_ns: measured[0],
            rows_ns: measured[1],
        });
    }
    c.final_summary();
    report(&table);
}

fn report(table: &[Row]) {
    // Refits of the model's form on this run's times, per regime (working set within
    // the path's cache budget or not): Gram ~ c d^2 (intercept shared), rows ~ a rows + b nnz.
    let cached = |r: &Row, p: GradientPath| p.cached(&r.shape);
    let gram: Vec<(&Row, f64)> = table
        .iter()
        .filter_map(|r| r.gram_ns.map(|t| (r, t)))
        .collect();
    if gram.len() >= 3 {
        let x: Vec<Vec<f64>> = gram
            .iter()
            .map(|(r, _)| {
                let d2 = (r.shape.features * r.shape.features) as f64;
                let inside = cached(r, GradientPath::Gram);
                vec![
                    1.0,
                    if inside { d2 } else { 0.0 },
                    if inside { 0.0 } else { d2 },
                ]
            })
            .collect();
        let y: Vec<f64> = gram.iter().map(|(_, t)| *t).collect();
        let b = relative_least_squares(&x, &y);
        println!(
            "refit, Gram path: {:.0} ns + d^2 x ({:.3} ns cached, {:.3} ns from memory)",
            b[0], b[1], b[2]
        );
    }
    let on_rows: Vec<(&Row, f64)> = table
        .iter()
        .filter_map(|r| r.rows_ns.map(|t| (r, t)))
        .collect();
    if on_rows.len() >= 4 {
        let x: Vec<Vec<f64>> = on_rows
            .iter()
            .map(|(r, _)| {
                let (rows, nnz) = (r.shape.rows as f64, r.shape.nnz as f64);
                if cached(r, GradientPath::Rows) {
                    vec![rows, nnz, 0.0, 0.0]
                } else {
                    vec![0.0, 0.0, rows, nnz]
                }
            })
            .collect();
        let y: Vec<f64> = on_rows.iter().map(|(_, t)| *t).collect();
        let b = relative_least_squares(&x, &y);
        println!(
            "refit, row path: cached {:.1} ns x rows + {:.2} ns x nnz; from memory {:.1} ns x \
             rows + {:.2} ns x nnz",
            b[0], b[1], b[2], b[3]
        );
    }
    println!(
        "(the model in src/experiments/svrs/problem.rs: Gram 70 ns + d^2 x (0.14 cached, 0.31 \
         from memory); rows cached 6.7 x rows + 1.6 x nnz, from memory 83 x rows + 4.0 x nnz)"
    );
    println!(
        "\n{:<30} {:>4} {:>5} {:>6} {:>6} {:>6} | {:>8} {:>8} | {:>8} {:>8} | {:>5} {:>6} {:>6}",
        "problem",
        "d",
        "rows",
        "nnz",
        "G MiB",
        "R MiB",
        "Gram ns",
        "rows ns",
        "model G",
        "model R",
        "picks",
        "faster",
        "regret"
    );
    let (mut right, mut total, mut worst) = (0, 0, 1.0f64);
    for r in table {
        let shape = &r.shape;
        let picks = GradientPath::cheaper(shape);
        let show = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.0}"));
        let mib = |p: GradientPath| shape.working_set(p) as f64 / (1u64 << 20) as f64;
        let (faster, regret) = match (r.gram_ns, r.rows_ns) {
            (Some(g), Some(w)) => {
                let faster = if g <= w {
                    GradientPath::Gram
                } else {
                    GradientPath::Rows
                };
                let chosen = if picks == GradientPath::Gram { g } else { w };
                let regret = chosen / g.min(w);
                total += 1;
                right += usize::from(picks == faster);
                worst = worst.max(regret);
                (format!("{faster:?}"), format!("{regret:.2}x"))
            }
            _ => ("-".into(), "-".into()),
        };
        println!(
            "{:<30} {:>4} {:>5} {:>6} {:>6.1} {:>6.1} | {:>8} {:>8} | {:>8.0} {:>8.0} | {:>5} {:>6} \
             {:>6}",
            r.name,
            shape.features,
            shape.rows,
            shape.nnz,
            mib(GradientPath::Gram),
            mib(GradientPath::Rows),
            show(r.gram_ns),
            show(r.rows_ns),
            GradientPath::Gram.predicted_ns(shape),
            GradientPath::Rows.predicted_ns(shape),
            format!("{picks:?}"),
            faster,
            regret
        );
    }
    println!(
        "\nthe model picks the faster path on {right} of {total} problems; its pick takes at \
         most {worst:.2}x the faster path's time"
    );
}
