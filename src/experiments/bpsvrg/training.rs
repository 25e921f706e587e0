//! Training one (method, seed): the optimizers over the flat f32 parameter buffer, and the
//! per-epoch metrics (losses, accuracies, the per-sample gradient metrics of the notes' 2.4,
//! the exact variance of the update directions).

use anyhow::{Result, bail};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::spec::{BpsvrgSpec, Method, ModelName, Schedule};
use crate::data::images::ImageSet;
use crate::nn::{Builder, ConvNorm, DotScratch, Mode, Network, Shape, Workspace};

/// The network of a spec for images of this shape.
pub fn network(spec: &BpsvrgSpec, shape: [usize; 3], classes: usize) -> Network {
    let input = Shape {
        c: shape[0],
        h: shape[1],
        w: shape[2],
    };
    match spec.model {
        ModelName::Softmax => Builder::new(input).dense(classes).build(),
        ModelName::Mlp => Builder::new(input)
            .dense(spec.hidden)
            .relu()
            .dense(classes)
            .build(),
        ModelName::Cnn => Builder::new(input).small_cnn(classes),
    }
}

/// The step size of an epoch (0-based).
pub fn step_size(spec: &BpsvrgSpec, epoch: usize) -> f64 {
    match spec.lr_schedule {
        Schedule::Constant => spec.lr,
        Schedule::Step => {
            let f = epoch as f64 / spec.epochs as f64;
            spec.lr
                * if f >= 0.75 {
                    0.01
                } else if f >= 0.5 {
                    0.1
                } else {
                    1.0
                }
        }
    }
}

/// A loss this many times its value before training means the steps diverged.
pub const DIVERGENCE_FACTOR: f64 = 100.0;

/// Images per chunk of the metric passes.
const CHUNK: usize = 250;

/// What the metric pass measures on one set, at w (and at the snapshot w~ if given).
#[derive(Debug, Clone, Default)]
pub struct SetMetrics {
    pub loss: f64,
    pub accuracy: f64,
    /// (1/N) sum_i ||g_i||: the average per-sample gradient norm.
    pub mean_norm: f64,
    /// ||(1/N) sum_i g_i||: the norm of the average gradient.
    pub norm_mean: f64,
    /// (1/N) sum_i ||g_i - g||^2.
    pub variance: f64,
    /// For a snapshot: (1/N) sum <g_i, g~_i>, (1/N) sum ||g~_i||^2, <g, g~>, ||g~||^2.
    pub cross: Option<[f64; 4]>,
}

impl SetMetrics {
    /// The variance over the choice of S (b of N without replacement) of the direction
    /// v = g_S(w) + c (g_S(w~) - mu~): (N - b) / (b (N - 1)) times the spread of
    /// h_i = g_i + c g~_i, (1/N) sum ||h_i||^2 - ||mean h||^2. Exact for the metric set.
    pub fn direction_variance(&self, c: f64, b: usize, n: usize) -> f64 {
        // A batch of the whole set (or more) is always the same: no variance.
        let k = if n > 1 && b < n {
            (n - b) as f64 / (b as f64 * (n - 1) as f64)
        } else {
            0.0
        };
        let mean_sq = self.variance + self.norm_mean * self.norm_mean;
        let spread = match (c, self.cross) {
            (0.0, _) | (_, None) => self.variance,
            (c, Some([gx, gg, cross, snap])) => {
                let sq = mean_sq + 2.0 * c * gx + c * c * gg;
                let mean = self.norm_mean * self.norm_mean + 2.0 * c * cross + c * c * snap;
                sq - mean
            }
        };
        k * spread.max(0.0)
    }
}

/// Buffers of the metric passes, allocated once per job.
pub struct MetricBuffers {
    at_w: Workspace<f32>,
    at_snapshot: Workspace<f32>,
    grad: Vec<f32>,
    grad_snapshot: Vec<f32>,
    scratch: DotScratch<f32>,
    norms: Vec<f64>,
    cross: Vec<f64>,
    snap_norms: Vec<f64>,
}

impl MetricBuffers {
    pub fn new(net: &Network) -> MetricBuffers {
        MetricBuffers {
            at_w: net.workspace(CHUNK),
            at_snapshot: net.workspace(CHUNK),
            grad: vec![0.0; net.params],
            grad_snapshot: vec![0.0; net.params],
            scratch: net.dot_scratch(),
            norms: vec![0.0; CHUNK],
            cross: vec![0.0; CHUNK],
            snap_norms: vec![0.0; CHUNK],
        }
    }
}

/// One pass over `set` in eval mode: loss, accuracy and the per-sample gradient metrics at
/// `w`, and the inner products with the snapshot's per-sample gradients if `snapshot` is
/// given. Costs one forward and backward pass per point (no per-sample backward passes).
pub fn measure(
    net: &Network,
    w: &[f32],
    state: &[f32],
    snapshot: Option<&[f32]>,
    set: &ImageSet,
    buf: &mut MetricBuffers,
) -> SetMetrics {
    let n = set.len();
    let size = set.size();
    buf.grad.fill(0.0);
    buf.grad_snapshot.fill(0.0);
    let (mut loss, mut correct) = (0.0, 0usize);
    let (mut norm_sum, mut sq_sum, mut cross_sum, mut snap_sq_sum) = (0.0, 0.0, 0.0, 0.0);
    let mut state = state.to_vec();
    for start in (0..n).step_by(CHUNK) {
        let m = CHUNK.min(n - start);
        let x = &set.pixels[start * size..(start + m) * size];
        let labels = &set.labels[start..start + m];
        net.forward(w, &mut state, &mut buf.at_w, x, m, Mode::Eval);
        let (l, c) = net.loss(&mut buf.at_w, labels, 1.0, None);
        loss += l;
        correct += c;
        net.backward(w, &mut buf.at_w, &mut buf.grad);
        let norms = &mut buf.norms[..m];
        norms.fill(0.0);
        net.per_sample_dots(
            &buf.at_w,
            &buf.at_w,
            &mut buf.scratch,
            norms,
            ConvNorm::Cheaper,
        );
        for &s in norms.iter() {
            norm_sum += s.max(0.0).sqrt();
            sq_sum += s;
        }
        if let Some(ws) = snapshot {
            net.forward(ws, &mut state, &mut buf.at_snapshot, x, m, Mode::Eval);
            net.loss(&mut buf.at_snapshot, labels, 1.0, None);
            net.backward(ws, &mut buf.at_snapshot, &mut buf.grad_snapshot);
            let cross = &mut buf.cross[..m];
            cross.fill(0.0);
            net.per_sample_dots(
                &buf.at_w,
                &buf.at_snapshot,
                &mut buf.scratch,
                cross,
                ConvNorm::Cheaper,
            );
            cross_sum += cross.iter().sum::<f64>();
            let snap = &mut buf.snap_norms[..m];
            snap.fill(0.0);
            net.per_sample_dots(
                &buf.at_snapshot,
                &buf.at_snapshot,
                &mut buf.scratch,
                snap,
                ConvNorm::Cheaper,
            );
            snap_sq_sum += snap.iter().sum::<f64>();
        }
    }
    let nf = n as f64;
    let mean_sq_grad = crate::nn::sum_squares(&buf.grad) / (nf * nf);
    SetMetrics {
        loss: loss / nf,
        accuracy: correct as f64 / nf,
        mean_norm: norm_sum / nf,
        norm_mean: mean_sq_grad.sqrt(),
        variance: (sq_sum / nf - mean_sq_grad).max(0.0),
        cross: snapshot.map(|_| {
            [
                cross_sum / nf,
                snap_sq_sum / nf,
                crate::nn::dot(&buf.grad, &buf.grad_snapshot) / (nf * nf),
                crate::nn::sum_squares(&buf.grad_snapshot) / (nf * nf),
            ]
        }),
    }
}

/// The state of one (method, seed) between epochs.
pub struct Trainer<'a> {
    pub net: &'a Network,
    pub spec: &'a BpsvrgSpec,
    pub method: Method,
    pub w: Vec<f32>,
    /// Batch norm running statistics.
    pub state: Vec<f32>,
    /// The snapshot w~ and the full gradient mu~ there (SVRG-type methods).
    pub snapshot: Option<(Vec<f32>, Vec<f32>)>,
    /// Per-sample gradients evaluated so far.
    pub grad_evals: u64,
    /// Seconds spent in training steps (not in metrics).
    pub train_seconds: f64,
    /// A step whose batch loss exceeds this (or is not finite) ends the run as diverged:
    /// [`DIVERGENCE_FACTOR`] times the training loss before the first step.
    pub diverged_above: f64,
    order: ChaCha8Rng,
    ws: Workspace<f32>,
    g: Vec<f32>,
    g_snapshot: Vec<f32>,
    x: Vec<f32>,
    y: Vec<u8>,
    perm: Vec<usize>,
}

impl<'a> Trainer<'a> {
    pub fn new(
        net: &'a Network,
        spec: &'a BpsvrgSpec,
        method: Method,
        mut init: ChaCha8Rng,
        order: ChaCha8Rng,
        train: &ImageSet,
    ) -> Trainer<'a> {
        let b = Trainer::batch_of(spec, method);
        Trainer {
            net,
            spec,
            method,
            w: net.init(&mut init),
            state: net.init_state(),
            snapshot: None,
            grad_evals: 0,
            train_seconds: 0.0,
            diverged_above: f64::INFINITY,
            order,
            ws: net.workspace(b.max(spec.batch)),
            g: vec![0.0; net.params],
            g_snapshot: vec![0.0; net.params],
            x: vec![0.0; b.max(spec.batch) * train.size()],
            y: vec![0; b.max(spec.batch)],
            perm: (0..train.len()).collect(),
        }
    }

    /// Samples per step.
    pub fn batch_of(spec: &BpsvrgSpec, method: Method) -> usize {
        if method == Method::Svrg {
            1
        } else {
            spec.batch
        }
    }

    fn gather(&mut self, set: &ImageSet, idx: &[usize]) {
        let size = set.size();
        for (k, &i) in idx.iter().enumerate() {
            self.x[k * size..(k + 1) * size].copy_from_slice(set.image(i));
            self.y[k] = set.labels[i];
        }
    }

    /// A new snapshot: w~ = w and mu~ its full gradient, in chunks of `batch` in train mode
    /// (the mode the steps use), running statistics untouched.
    fn take_snapshot(&mut self, train: &ImageSet) {
        let (n, b) = (train.len(), self.spec.batch.min(train.len()));
        let mut mu = vec![0.0f32; self.net.params];
        let idx: Vec<usize> = (0..n).collect();
        for chunk in idx.chunks(b) {
            self.gather(train, chunk);
            let m = chunk.len();
            let mode = Mode::Train {
                update_running: false,
            };
            let size = train.size();
            self.net.gradient(
                &self.w,
                &mut self.state,
                &mut self.ws,
                &self.x[..m * size],
                &self.y[..m],
                mode,
                &mut self.g,
            );
            let weight = m as f32 / n as f32;
            mu.iter_mut()
                .zip(&self.g)
                .for_each(|(u, g)| *u += weight * g);
        }
        self.grad_evals += n as u64;
        self.snapshot = Some((self.w.clone(), mu));
    }

    /// One epoch (0-based `epoch`); stops early at `cancel` (the caller checks it). A
    /// non-finite loss is an error naming the epoch and step.
    pub fn epoch(
        &mut self,
        epoch: usize,
        train: &ImageSet,
        cancel: &dyn Fn() -> bool,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let c = self.method.coefficient(self.spec.c);
        if c.is_some() && epoch.is_multiple_of(self.spec.snapshot_epochs) {
            self.take_snapshot(train);
        }
        let b = Trainer::batch_of(self.spec, self.method);
        let lr = step_size(self.spec, epoch) as f32;
        let decay = self.spec.weight_decay as f32;
        let mut perm = std::mem::take(&mut self.perm);
        perm.shuffle(&mut self.order);
        let size = train.size();
        for (step, idx) in perm.chunks(b).enumerate() {
            if cancel() {
                break;
            }
            let m = idx.len();
            self.gather(train, idx);
            let (loss, _) = self.net.gradient(
                &self.w,
                &mut self.state,
                &mut self.ws,
                &self.x[..m * size],
                &self.y[..m],
                Mode::Train {
                    update_running: true,
                },
                &mut self.g,
            );
            let mean = loss / m as f64;
            if !mean.is_finite() || mean > self.diverged_above {
                self.perm = perm;
                bail!(
                    "diverged: the batch loss is {mean:.4e} (above {DIVERGENCE_FACTOR} times its \
                     start) at epoch {} step {step} of {}, lr {}",
                    epoch + 1,
                    self.method.name(),
                    self.spec.lr
                );
            }
            self.grad_evals += m as u64;
            if let (Some(c), Some((ws, mu))) = (c, &self.snapshot) {
                // g_S(w~) on the same batch, with the batch's own statistics.
                self.net.gradient(
                    ws,
                    &mut self.state,
                    &mut self.ws,
                    &self.x[..m * size],
                    &self.y[..m],
                    Mode::Train {
                        update_running: false,
                    },
                    &mut self.g_snapshot,
                );
                self.grad_evals += m as u64;
                let c = c as f32;
                for ((g, gs), u) in self.g.iter_mut().zip(&self.g_snapshot).zip(mu) {
                    *g += c * (gs - u);
                }
            }
            for (w, g) in self.w.iter_mut().zip(&self.g) {
                *w -= lr * (g + decay * *w);
            }
        }
        self.perm = perm;
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }
}
