//! The loss landscape around final weights along filter-normalized random directions (Li,
//! Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"): a
//! Gaussian direction rescaled filter by filter to the norm of the weights' filter, biases
//! and batch norm parameters left out (zero), so slices of differently scaled networks
//! compare. Every method gets the same two Gaussian directions (stream `landscape`).

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::spec::{BpsvrgSpec, Method};
use crate::data::images::ImageSet;
use crate::nn::{Mode, Network};
use crate::random::standard_normal;

/// Train and test losses around one method's final weights.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Landscape {
    pub method: String,
    /// The step along the directions (-radius to radius).
    pub alphas: Vec<f64>,
    /// Train and test loss along the first direction.
    pub train_1d: Vec<f64>,
    pub test_1d: Vec<f64>,
    /// Train loss over the plane of the two directions, `[iy * n + ix]` at (alphas[ix],
    /// alphas[iy]).
    pub train_2d: Vec<f64>,
}

/// A Gaussian direction, filter-normalized to `w`.
pub fn filter_normalized(net: &Network, w: &[f32], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let raw: Vec<f64> = (0..net.params).map(|_| standard_normal(rng)).collect();
    let mut d = vec![0.0f32; net.params];
    for f in net.filters() {
        let norm_d = raw[f.clone()].iter().map(|x| x * x).sum::<f64>().sqrt();
        let norm_w = crate::nn::sum_squares(&w[f.clone()]).sqrt();
        for i in f {
            d[i] = (raw[i] * norm_w / norm_d.max(f64::MIN_POSITIVE)) as f32;
        }
    }
    d
}

/// Mean loss of the first images of `set` at `w`, batch norm in eval mode.
fn mean_loss(net: &Network, w: &[f32], state: &[f32], set: &ImageSet, samples: usize) -> f64 {
    let n = samples.min(set.len());
    let chunk = 250;
    let mut ws = net.workspace(chunk);
    let mut st = state.to_vec();
    let mut total = 0.0;
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let x = &set.pixels[start * set.size()..(start + m) * set.size()];
        net.forward(w, &mut st, &mut ws, x, m, Mode::Eval);
        total += net
            .loss(&mut ws, &set.labels[start..start + m], 1.0, None)
            .0;
    }
    total / n as f64
}

/// The 1-D and 2-D slices around `w`.
#[allow(clippy::too_many_arguments)]
pub fn around(
    net: &Network,
    spec: &BpsvrgSpec,
    method: Method,
    w: &[f32],
    state: &[f32],
    train: &ImageSet,
    test: &ImageSet,
    mut rng: ChaCha8Rng,
) -> Landscape {
    let d1 = filter_normalized(net, w, &mut rng);
    let d2 = filter_normalized(net, w, &mut rng);
    let p = spec.landscape_points;
    let r = spec.landscape_radius;
    let alphas: Vec<f64> = (0..p)
        .map(|i| {
            if p == 1 {
                0.0
            } else {
                -r + 2.0 * r * i as f64 / (p - 1) as f64
            }
        })
        .collect();
    let at = |a: f64, b: f64| -> Vec<f32> {
        let (a, b) = (a as f32, b as f32);
        w.iter()
            .zip(&d1)
            .zip(&d2)
            .map(|((x, u), v)| x + a * u + b * v)
            .collect()
    };
    let k = spec.landscape_samples;
    let train_1d = alphas
        .iter()
        .map(|&a| mean_loss(net, &at(a, 0.0), state, train, k))
        .collect();
    let test_1d = alphas
        .iter()
        .map(|&a| mean_loss(net, &at(a, 0.0), state, test, k))
        .collect();
    let mut train_2d = Vec::with_capacity(p * p);
    for &b in &alphas {
        for &a in &alphas {
            train_2d.push(mean_loss(net, &at(a, b), state, train, k));
        }
    }
    Landscape {
        method: method.name().into(),
        alphas,
        train_1d,
        test_1d,
        train_2d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Builder, Shape};
    use crate::random::Streams;

    #[test]
    fn each_filter_of_the_direction_has_its_weights_norm_and_biases_stay() {
        let net = Builder::new(Shape { c: 1, h: 5, w: 5 })
            .conv(3, 3, 1, 1)
            .batch_norm()
            .relu()
            .dense(4)
            .build();
        let mut rng = Streams::new(1).rng("w");
        let w: Vec<f32> = net.init(&mut rng);
        let d = filter_normalized(&net, &w, &mut Streams::new(1).rng("d"));
        let filters = net.filters();
        // 3 conv channels and 4 dense units.
        assert_eq!(filters.len(), 7);
        for f in &filters {
            let nd = crate::nn::sum_squares(&d[f.clone()]).sqrt();
            let nw = crate::nn::sum_squares(&w[f.clone()]).sqrt();
            assert!((nd - nw).abs() < 1e-5 * nw, "{nd} {nw}");
        }
        let in_filters: usize = filters.iter().map(|f| f.len()).sum();
        let nonzero = d.iter().filter(|x| **x != 0.0).count();
        assert_eq!(nonzero, in_filters, "biases and batch norm are not moved");
    }
}
