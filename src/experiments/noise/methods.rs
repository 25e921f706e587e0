//! The training methods of notes (d), one start at a time: gradient descent on (w, a), with
//! weight normalization, perturbed gradient descent with noise annealing, and its perturbed
//! mini-batch SGD variant. How Zhou et al.'s Algorithm 1 injects the noise could not be
//! read: both readings are here, `perturbed_point` (the gradient at (w + xi, a + eps), a
//! smoothed loss) and `additive` (xi, eps added to the gradient). The perturbed methods
//! train the weight-normalized network, as Du et al.'s GD does: the schedule's noise on w
//! (norm 36 at first) only makes sense on a direction (measured: on the raw w at unit scale
//! it diverges within 100 steps).

use rand_chacha::ChaCha8Rng;

use super::model::Teacher;
use super::spec::{Method, NoiseMode, NoiseSpec};
use crate::contract::Cancel;
use crate::random::fill_standard_normal;
use crate::vector::dot;

/// A recorded state of one start.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub iteration: usize,
    pub loss: f64,
    pub phi: f64,
    pub a_dot: f64,
}

/// One start's path and, for weight-normalized GD, how often the angle moved against the sign
/// of a^T a* (the notes: phi falls exactly when a^T a* > 0).
#[derive(Debug, Clone)]
pub struct StartPath {
    pub records: Vec<Record>,
    pub w: Vec<f64>,
    pub a: Vec<f64>,
    pub sign_checks: usize,
    pub sign_violations: usize,
}

/// Gaussian noise of norm ~rho in `out` (standard deviation rho / sqrt(n) per coordinate).
fn noise(rho: f64, rng: &mut ChaCha8Rng, out: &mut [f64]) {
    fill_standard_normal(rng, out);
    let s = rho / (out.len() as f64).sqrt();
    out.iter_mut().for_each(|x| *x *= s);
}

/// Buffers a start reuses at every step: the unit direction v / ||v|| and the batch's
/// pre-activations.
struct Scratch {
    unit: Vec<f64>,
    pre: Vec<f64>,
}

/// The gradient in (v, a) of the loss of the weight-normalized network (f uses v / ||v||):
/// the gradient at unit norm, projected on the tangent space and divided by ||v||. With a
/// batch, the sampled loss; otherwise the population one.
#[allow(clippy::too_many_arguments)]
fn normalized_gradient(
    teacher: &Teacher,
    v: &[f64],
    a: &[f64],
    batch: Option<&[f64]>,
    scratch: &mut Scratch,
    gw: &mut [f64],
    ga: &mut [f64],
) {
    let n = dot(v, v).sqrt();
    let unit = &mut scratch.unit;
    for (u, x) in unit.iter_mut().zip(v) {
        *u = x / n;
    }
    match batch {
        Some(batch) => {
            teacher.batch_gradient(unit, a, batch, &mut scratch.pre, gw, ga);
        }
        None => teacher.gradient(unit, a, gw, ga),
    }
    let along = dot(gw, unit);
    for (g, u) in gw.iter_mut().zip(unit.iter()) {
        *g = (*g - along * u) / n;
    }
}

/// Runs one method from (w0, a0). `rng` is the start's own stream (noise and batches).
pub fn train(
    teacher: &Teacher,
    spec: &NoiseSpec,
    method: Method,
    w0: &[f64],
    a0: &[f64],
    rng: &mut ChaCha8Rng,
    cancel: Cancel,
) -> StartPath {
    let (p, k) = (teacher.p(), teacher.k());
    let (mut w, mut a) = (w0.to_vec(), a0.to_vec());
    let (mut gw, mut ga) = (vec![0.0; p], vec![0.0; k]);
    let mut batch_buffer = vec![0.0; spec.batch * k * p];
    // Scratch of the perturbed methods: the noise and the point the gradient is taken at.
    let (mut xi, mut eps) = (vec![0.0; p], vec![0.0; k]);
    let (mut at_w, mut at_a) = (vec![0.0; p], vec![0.0; k]);
    let mut scratch = Scratch {
        unit: vec![0.0; p],
        pre: vec![0.0; 2 * k],
    };
    let total = spec.epochs * spec.iterations;
    let mut path = StartPath {
        records: Vec::new(),
        w: Vec::new(),
        a: Vec::new(),
        sign_checks: 0,
        sign_violations: 0,
    };
    // Weight normalization trains v and uses w = v / ||v|| (wn_gd, pgd, psgd).
    let effective = |w: &[f64]| -> Vec<f64> {
        if method != Method::Gd {
            let n = dot(w, w).sqrt();
            w.iter().map(|x| x / n).collect()
        } else {
            w.to_vec()
        }
    };
    let record = |w: &[f64], a: &[f64], iteration: usize| Record {
        iteration,
        loss: teacher.loss(&effective(w), a),
        phi: teacher.angle(w),
        a_dot: dot(a, &teacher.a),
    };
    // WN-GD's angle at the current w, once known.
    let mut phi_now: Option<f64> = None;
    for t in 0..=total {
        if t % spec.record_every == 0 || t == total {
            path.records.push(record(&w, &a, t));
        }
        if t == total || (t % 1000 == 0 && cancel.is_set()) {
            break;
        }
        let epoch = t / spec.iterations;
        // GD and WN-GD keep the initial rate; the perturbed methods anneal it with the noise.
        let (lr, rho_w, rho_a) = match method {
            Method::Gd | Method::WnGd => (spec.lr, 0.0, 0.0),
            Method::Pgd | Method::Psgd => (
                spec.lr * spec.lr_decay.powi(epoch as i32),
                spec.noise_w * spec.noise_decay.powi(epoch as i32),
                spec.noise_a * spec.noise_decay.powi(epoch as i32),
            ),
        };
        match method {
            Method::Gd => {
                teacher.gradient(&w, &a, &mut gw, &mut ga);
            }
            Method::WnGd => {
                normalized_gradient(teacher, &w, &a, None, &mut scratch, &mut gw, &mut ga)
            }
            Method::Pgd | Method::Psgd => {
                noise(rho_w, rng, &mut xi);
                noise(rho_a, rng, &mut eps);
                at_w.copy_from_slice(&w);
                at_a.copy_from_slice(&a);
                if spec.noise_mode == NoiseMode::PerturbedPoint {
                    at_w.iter_mut().zip(&xi).for_each(|(x, y)| *x += y);
                    at_a.iter_mut().zip(&eps).for_each(|(x, y)| *x += y);
                }
                let batch = (method == Method::Psgd).then(|| {
                    teacher.draw_batch(rng, &mut batch_buffer);
                    batch_buffer.as_slice()
                });
                normalized_gradient(teacher, &at_w, &at_a, batch, &mut scratch, &mut gw, &mut ga);
                if spec.noise_mode == NoiseMode::Additive {
                    gw.iter_mut().zip(&xi).for_each(|(g, x)| *g += x);
                    ga.iter_mut().zip(&eps).for_each(|(g, x)| *g += x);
                }
            }
        }
        // The sign rule's inputs, for WN-GD only (the angle is the last step's after).
        let before = (method == Method::WnGd).then(|| {
            let phi = *phi_now.get_or_insert_with(|| teacher.angle(&w));
            (phi, dot(&a, &teacher.a))
        });
        for (x, g) in w.iter_mut().zip(&gw) {
            *x -= lr * g;
        }
        for (x, g) in a.iter_mut().zip(&ga) {
            *x -= lr * g;
        }
        if let Some((phi_before, a_dot)) = before {
            // The sign rule, checked where both sides are resolved.
            let phi_after = teacher.angle(&w);
            phi_now = Some(phi_after);
            let change = phi_after - phi_before;
            if a_dot.abs() > 1e-9 && change.abs() > 1e-12 {
                path.sign_checks += 1;
                if (change < 0.0) != (a_dot > 0.0) {
                    path.sign_violations += 1;
                }
            }
        }
    }
    path.w = effective(&w);
    path.a = a;
    path
}

/// Draws from `rng` exactly the normals [`train`] draws for `method` on a network of k
/// patches of p (the noise on w and a, and PSGD's batches), in the same order and chunks,
/// and does nothing else: the floor of a start's cost that `benches/noise_floor.rs` times.
/// Returns their sum, so that the draws cannot be optimised away.
pub fn draw_only(
    spec: &NoiseSpec,
    method: Method,
    k: usize,
    p: usize,
    rng: &mut ChaCha8Rng,
) -> f64 {
    if !matches!(method, Method::Pgd | Method::Psgd) {
        return 0.0;
    }
    let (mut xi, mut eps) = (vec![0.0; p], vec![0.0; k]);
    let mut batch = vec![
        0.0;
        if method == Method::Psgd {
            spec.batch * k * p
        } else {
            0
        }
    ];
    let mut sum = 0.0;
    for _ in 0..spec.epochs * spec.iterations {
        fill_standard_normal(rng, &mut xi);
        fill_standard_normal(rng, &mut eps);
        fill_standard_normal(rng, &mut batch);
        sum += xi[0] + eps[0] + batch.first().copied().unwrap_or(0.0);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;
    use rand::RngCore;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn draw_only_draws_what_training_draws() {
        // Both readings of the noise, short schedules; the streams must end in the same
        // state, so the floor draws the very normals a start does.
        let streams = Streams::new(3);
        let teacher = Teacher::draw(4, 3, &mut streams.rng("teacher"));
        let flag = AtomicBool::new(false);
        for noise_mode in [NoiseMode::PerturbedPoint, NoiseMode::Additive] {
            let spec = NoiseSpec {
                k: 4,
                p: 3,
                epochs: 3,
                iterations: 7,
                batch: 5,
                noise_mode,
                ..NoiseSpec::default()
            };
            for method in [Method::Gd, Method::WnGd, Method::Pgd, Method::Psgd] {
                let (w0, a0) = (vec![0.3, -0.2, 0.9], vec![0.1, 0.2, -0.3, 0.4]);
                let mut trained = streams.rng("job");
                train(
                    &teacher,
                    &spec,
                    method,
                    &w0,
                    &a0,
                    &mut trained,
                    Cancel::new(&flag),
                );
                let mut drawn = streams.rng("job");
                draw_only(&spec, method, 4, 3, &mut drawn);
                assert_eq!(trained.next_u64(), drawn.next_u64(), "{method:?}");
            }
        }
    }
}
