//! The toolkit against independent oracles: central differences of the loss for every
//! backward pass (in f64), N single-sample backward passes for the per-sample gradient inner
//! products, and the same bits on one and two threads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::random::{Streams, standard_normal};

fn rng(name: &str) -> ChaCha8Rng {
    Streams::new(7).rng(name)
}

/// A small convolutional network touching every layer kind: conv (stride 1, pad 1), batch
/// norm, ReLU, conv (stride 2, pad 1), batch norm, ReLU, max pool, dense.
fn small_cnn(pool: &str) -> Network {
    let b = Builder::new(Shape { c: 2, h: 6, w: 6 })
        .conv(3, 3, 1, 1)
        .batch_norm()
        .relu()
        .conv(4, 3, 2, 1)
        .batch_norm()
        .relu();
    let b = if pool == "max" {
        b.max_pool(3)
    } else {
        b.avg_pool(3)
    };
    b.dense(5).build()
}

fn mlp() -> Network {
    Builder::new(Shape::flat(7))
        .dense(6)
        .relu()
        .dense(4)
        .batch_norm()
        .relu()
        .dense(3)
        .build()
}

fn batch(net: &Network, n: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<u8>) {
    let x = (0..n * net.input.len())
        .map(|_| standard_normal(rng))
        .collect();
    let classes = net.classes();
    let y = (0..n).map(|_| rng.random_range(0..classes) as u8).collect();
    (x, y)
}

/// Checks the backward pass of `net` against central differences of the mean loss.
fn check_gradient(net: &Network, mode: Mode, n: usize) {
    let mut r = rng("fd");
    let params: Vec<f64> = net.init(&mut r);
    // Perturb the batch norm parameters and statistics away from 1 and 0, so gamma, beta and
    // the eval path are exercised at a generic point.
    let params: Vec<f64> = params
        .iter()
        .map(|p| p + 0.1 * standard_normal(&mut r))
        .collect();
    let mut state: Vec<f64> = net.init_state();
    for s in &mut state {
        *s += 0.2 * standard_normal(&mut r).abs();
    }
    let (x, y) = batch(net, n, &mut r);
    let mut ws = net.workspace(n);
    let mut grad = vec![0.0; net.params];
    net.gradient(&params, &mut state, &mut ws, &x, &y, mode, &mut grad);
    let loss = |p: &[f64]| {
        let mut ws = net.workspace(n);
        let mut st = state.clone();
        net.forward(p, &mut st, &mut ws, &x, n, mode);
        net.loss(&mut ws, &y, 1.0 / n as f64, None).0 / n as f64
    };
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for i in 0..net.params {
        let mut up = params.clone();
        up[i] += h;
        let mut down = params.clone();
        down[i] -= h;
        let fd = (loss(&up) - loss(&down)) / (2.0 * h);
        let err = (fd - grad[i]).abs() / (1e-3 + fd.abs().max(grad[i].abs()));
        worst = worst.max(err);
    }
    // Central differences in f64 are good to about h^2 + eps/h ~ 1e-10 relative; 1e-6 leaves
    // room for a kink of ReLU or max pooling near a sample, never for a wrong formula.
    assert!(worst < 1e-6, "{mode:?}: worst relative error {worst:e}");
}

#[test]
fn every_backward_pass_matches_central_differences_in_train_and_eval_mode() {
    for mode in [
        Mode::Train {
            update_running: false,
        },
        Mode::Eval,
    ] {
        check_gradient(&mlp(), mode, 5);
        check_gradient(&small_cnn("max"), mode, 3);
        check_gradient(&small_cnn("avg"), mode, 3);
    }
    // Softmax regression, the convex model.
    check_gradient(
        &Builder::new(Shape::flat(6)).dense(4).build(),
        Mode::Eval,
        4,
    );
}

#[test]
fn train_mode_updates_running_statistics_with_pytorch_momentum() {
    let net = Builder::new(Shape::flat(2)).batch_norm().build();
    let params: Vec<f64> = net.init(&mut rng("x"));
    let mut state: Vec<f64> = net.init_state();
    let x = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0];
    let mut ws = net.workspace(3);
    net.forward(
        &params,
        &mut state,
        &mut ws,
        &x,
        3,
        Mode::Train {
            update_running: true,
        },
    );
    // Feature 0: mean 3, unbiased variance 4; feature 1: mean 20, unbiased variance 100.
    let want = [0.3, 2.0, 0.9 + 0.4, 0.9 + 10.0];
    for (s, w) in state.iter().zip(want) {
        assert!((s - w).abs() < 1e-12, "{state:?}");
    }
    // The batch is normalized with its own (biased) statistics.
    let y = net.forward(
        &params,
        &mut state.clone(),
        &mut ws,
        &x,
        3,
        Mode::Train {
            update_running: false,
        },
    );
    let s = (8.0f64 / 3.0 + BN_EPS).sqrt();
    assert!((y[0] - (1.0 - 3.0) / s).abs() < 1e-12);
}

/// The per-sample gradients one at a time: a backward pass of each sample alone.
fn single_sample_gradients(
    net: &Network,
    params: &[f64],
    state: &[f64],
    x: &[f64],
    y: &[u8],
) -> Vec<Vec<f64>> {
    let d = net.input.len();
    let mut ws = net.workspace(1);
    (0..y.len())
        .map(|i| {
            let mut g = vec![0.0; net.params];
            let mut st = state.to_vec();
            net.gradient(
                params,
                &mut st,
                &mut ws,
                &x[i * d..(i + 1) * d],
                &y[i..i + 1],
                Mode::Eval,
                &mut g,
            );
            g
        })
        .collect()
}

#[test]
fn per_sample_inner_products_match_single_sample_backward_passes() {
    for net in [mlp(), small_cnn("max"), small_cnn("avg")] {
        let n = 6;
        let mut r = rng("per-sample");
        let pa: Vec<f64> = net.init(&mut r);
        let pb: Vec<f64> = pa
            .iter()
            .map(|p| p + 0.3 * standard_normal(&mut r))
            .collect();
        let mut state: Vec<f64> = net.init_state();
        for s in &mut state {
            *s += 0.5 * standard_normal(&mut r).abs();
        }
        let (x, y) = batch(&net, n, &mut r);
        let ga = single_sample_gradients(&net, &pa, &state, &x, &y);
        let gb = single_sample_gradients(&net, &pb, &state, &x, &y);
        let pass = |p: &[f64]| {
            let mut ws = net.workspace(n);
            let mut st = state.clone();
            net.forward(p, &mut st, &mut ws, &x, n, Mode::Eval);
            net.loss(&mut ws, &y, 1.0, None);
            let mut g = vec![0.0; net.params];
            net.backward(p, &mut ws, &mut g);
            ws
        };
        for conv in [ConvNorm::Direct, ConvNorm::Ghost, ConvNorm::Cheaper] {
            let (wa, wb) = (pass(&pa), pass(&pb));
            let mut scratch = net.dot_scratch();
            let mut norms = vec![0.0; n];
            net.per_sample_dots(&wa, &wa, &mut scratch, &mut norms, conv);
            let mut cross = vec![0.0; n];
            net.per_sample_dots(&wa, &wb, &mut scratch, &mut cross, conv);
            for i in 0..n {
                let want_norm = dot(&ga[i], &ga[i]);
                let want_cross = dot(&ga[i], &gb[i]);
                assert!(
                    (norms[i] - want_norm).abs() <= 1e-10 * want_norm.max(1.0),
                    "{conv:?} {i}"
                );
                assert!(
                    (cross[i] - want_cross).abs() <= 1e-10 * want_norm.max(1.0),
                    "{conv:?} {i}"
                );
            }
        }
    }
}

#[test]
fn im2col_and_col2im_are_adjoint() {
    // <im2col(x), c> = <x, col2im(c)> for every geometry: col2im is the transpose.
    let mut r = rng("adjoint");
    for (stride, pad) in [(1, 1), (2, 1), (1, 0), (2, 0)] {
        let g = ConvGeometry {
            input: Shape { c: 2, h: 7, w: 5 },
            out_channels: 3,
            kernel: 3,
            stride,
            pad,
        };
        let x: Vec<f64> = (0..g.input.len())
            .map(|_| standard_normal(&mut r))
            .collect();
        let cols_len = g.patch() * g.output().plane();
        let c: Vec<f64> = (0..cols_len).map(|_| standard_normal(&mut r)).collect();
        let mut ux = vec![0.0; cols_len];
        im2col(&g, &x, &mut ux, g.output().plane());
        let mut fc = vec![0.0; x.len()];
        col2im(&g, &c, g.output().plane(), &mut fc);
        assert!(
            (dot(&ux, &c) - dot(&x, &fc)).abs() < 1e-10,
            "{stride} {pad}"
        );
    }
}

#[test]
fn gradients_are_the_same_bits_on_one_and_two_threads() {
    // Big enough for gemm and the elementwise kernels to split their work between threads;
    // and the same again with every kernel kept on one thread (the code path of parallel jobs).
    let mlp = Builder::new(Shape::flat(784))
        .dense(256)
        .relu()
        .dense(10)
        .build();
    let cnn = Builder::new(Shape { c: 1, h: 28, w: 28 }).small_cnn(10);
    for net in [mlp, cnn] {
        let mut r = rng("threads");
        let params: Vec<f32> = net.init(&mut r);
        let x: Vec<f32> = (0..64 * 784).map(|_| r.random::<f32>()).collect();
        let y: Vec<u8> = (0..64).map(|_| r.random_range(0..10u8)).collect();
        let run = |threads: usize, single: bool| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let work = || {
                    let mut ws = net.workspace(64);
                    let mut g = vec![0.0f32; net.params];
                    let mut state = net.init_state();
                    let mode = Mode::Train {
                        update_running: true,
                    };
                    net.gradient(&params, &mut state, &mut ws, &x, &y, mode, &mut g);
                    g.extend(state);
                    g
                };
                if single {
                    single_threaded_products(work)
                } else {
                    work()
                }
            })
        };
        let one = run(1, false);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&run(2, false)));
        assert_eq!(bits(&one), bits(&run(2, true)));
    }
}
