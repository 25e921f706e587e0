//! A feed-forward network: a list of layers over one flat parameter buffer, a workspace that
//! holds every activation and gradient of a batch (allocated once, so a training step does
//! not allocate), and the passes: forward, backward, per-sample gradient inner products.

use std::ops::Range;

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Real;
use super::layers::{
    BatchNormSaved, ConvGeometry, Shape, avg_pool, batch_norm_backward, batch_norm_forward,
    conv_backward, conv_forward, dense_backward, dense_forward, max_pool_backward,
    max_pool_forward,
};
use super::loss::softmax_cross_entropy;
use super::matmul::{Operand, matmul};
use crate::random::standard_normal;

/// What a layer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dense,
    Conv(ConvGeometry),
    MaxPool { size: usize },
    AvgPool { size: usize },
    BatchNorm,
    Relu,
}

/// A layer, its shapes and where its parameters and running statistics live.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: Kind,
    pub input: Shape,
    pub output: Shape,
    /// Weights (dense, conv: the matrix; batch norm: gamma), then biases (beta), in the
    /// network's flat buffer.
    pub weights: Range<usize>,
    pub biases: Range<usize>,
    /// Batch norm's running mean and variance in the network's state buffer.
    pub stats: Range<usize>,
}

impl Layer {
    pub fn params(&self) -> Range<usize> {
        self.weights.start..self.biases.end
    }
}

/// Batch statistics or running statistics in batch normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; the running averages move only if `update_running`.
    Train { update_running: bool },
    /// Running statistics: samples do not interact, so per-sample gradients exist.
    Eval,
}

/// Builds a network layer by layer from its input shape.
pub struct Builder {
    input: Shape,
    shape: Shape,
    layers: Vec<Layer>,
    params: usize,
    state: usize,
}

impl Builder {
    pub fn new(input: Shape) -> Builder {
        Builder {
            input,
            shape: input,
            layers: Vec::new(),
            params: 0,
            state: 0,
        }
    }

    fn push(
        mut self,
        kind: Kind,
        output: Shape,
        weights: usize,
        biases: usize,
        stats: usize,
    ) -> Self {
        let w = self.params..self.params + weights;
        let b = w.end..w.end + biases;
        self.params = b.end;
        let s = self.state..self.state + stats;
        self.state = s.end;
        self.layers.push(Layer {
            kind,
            input: self.shape,
            output,
            weights: w,
            biases: b,
            stats: s,
        });
        self.shape = output;
        self
    }

    /// Fully connected to `outputs` units (the input is flattened).
    pub fn dense(self, outputs: usize) -> Self {
        let inputs = self.shape.len();
        self.push(
            Kind::Dense,
            Shape::flat(outputs),
            outputs * inputs,
            outputs,
            0,
        )
    }

    /// A `kernel x kernel` convolution to `channels` maps.
    pub fn conv(self, channels: usize, kernel: usize, stride: usize, pad: usize) -> Self {
        assert!(
            stride > 0 && kernel <= self.shape.h.min(self.shape.w) + 2 * pad,
            "a {kernel}x{kernel} kernel does not fit a {}x{} map padded by {pad}",
            self.shape.h,
            self.shape.w
        );
        let g = ConvGeometry {
            input: self.shape,
            out_channels: channels,
            kernel,
            stride,
            pad,
        };
        let out = g.output();
        self.push(Kind::Conv(g), out, channels * g.patch(), channels, 0)
    }

    /// The map after `size x size` pooling windows (a partial last window is dropped).
    fn pooled(&self, size: usize) -> Shape {
        let s = self.shape;
        Shape {
            c: s.c,
            h: s.h / size,
            w: s.w / size,
        }
    }

    pub fn max_pool(self, size: usize) -> Self {
        let out = self.pooled(size);
        self.push(Kind::MaxPool { size }, out, 0, 0, 0)
    }

    pub fn avg_pool(self, size: usize) -> Self {
        let out = self.pooled(size);
        self.push(Kind::AvgPool { size }, out, 0, 0, 0)
    }

    /// The small CNN of the image experiments (bpsvrg; bnquant quantizes its batch norms):
    /// conv 3x3 to 8 maps - batch norm - ReLU - conv 3x3 stride 2 to 16 - batch norm - ReLU -
    /// max pool 2 - dense to `classes`.
    pub fn small_cnn(self, classes: usize) -> Network {
        self.conv(8, 3, 1, 1)
            .batch_norm()
            .relu()
            .conv(16, 3, 2, 1)
            .batch_norm()
            .relu()
            .max_pool(2)
            .dense(classes)
            .build()
    }

    /// Batch normalization per channel (per feature after a dense layer).
    pub fn batch_norm(self) -> Self {
        let s = self.shape;
        self.push(Kind::BatchNorm, s, s.c, s.c, 2 * s.c)
    }

    pub fn relu(self) -> Self {
        let s = self.shape;
        self.push(Kind::Relu, s, 0, 0, 0)
    }

    pub fn build(self) -> Network {
        Network {
            input: self.input,
            layers: self.layers,
            params: self.params,
            state: self.state,
        }
    }
}

/// A feed-forward classifier ending in logits.
#[derive(Debug, Clone)]
pub struct Network {
    pub input: Shape,
    pub layers: Vec<Layer>,
    /// Length of the flat parameter buffer.
    pub params: usize,
    /// Length of the running-statistics buffer.
    pub state: usize,
}

impl Network {
    /// Classes (logits) of the last layer.
    pub fn classes(&self) -> usize {
        self.layers
            .last()
            .map_or(self.input.len(), |l| l.output.len())
    }

    /// He initialization (Kaiming normal, std sqrt(2 / fan_in)) of dense and conv weights,
    /// zero biases, batch norm gamma 1 and beta 0; drawn in f64 from one stream.
    pub fn init<T: Real>(&self, rng: &mut ChaCha8Rng) -> Vec<T> {
        let mut p = vec![T::ZERO; self.params];
        for layer in &self.layers {
            match layer.kind {
                Kind::Dense | Kind::Conv(_) => {
                    let fan_in = layer.weights.len() / layer.biases.len();
                    let std = (2.0 / fan_in as f64).sqrt();
                    for v in &mut p[layer.weights.clone()] {
                        *v = T::from_f64(std * standard_normal(rng));
                    }
                }
                Kind::BatchNorm => p[layer.weights.clone()].fill(T::ONE),
                _ => {}
            }
        }
        p
    }

    /// Running statistics at the start: mean 0, variance 1.
    pub fn init_state<T: Real>(&self) -> Vec<T> {
        let mut s = vec![T::ZERO; self.state];
        for layer in &self.layers {
            let half = layer.stats.start + layer.stats.len() / 2;
            s[half..layer.stats.end].fill(T::ONE);
        }
        s
    }

    /// The filters of the network for filter normalization (Li et al. 2018): each output
    /// unit's incoming weights (a dense row, a conv output channel's kernel).
    pub fn filters(&self) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        for layer in &self.layers {
            if matches!(layer.kind, Kind::Dense | Kind::Conv(_)) {
                let per = layer.weights.len() / layer.biases.len();
                for f in 0..layer.biases.len() {
                    let start = layer.weights.start + f * per;
                    out.push(start..start + per);
                }
            }
        }
        out
    }

    /// A workspace for batches of up to `capacity` samples.
    pub fn workspace<T: Real>(&self, capacity: usize) -> Workspace<T> {
        let n = capacity;
        let mut acts = vec![vec![T::ZERO; n * self.input.len()]];
        let mut cols = Vec::new();
        let mut xhat = Vec::new();
        let mut inv_std = Vec::new();
        let mut bn_sums = Vec::new();
        let mut argmax = Vec::new();
        let mut scratch = 0;
        for layer in &self.layers {
            acts.push(vec![T::ZERO; n * layer.output.len()]);
            let (c, x, s, a) = match layer.kind {
                Kind::Conv(g) => {
                    let (patch, pixels) = (g.patch(), layer.output.plane());
                    scratch = scratch.max(patch.max(g.out_channels) * pixels * n);
                    (n * patch * pixels, 0, 0, 0)
                }
                Kind::BatchNorm => (0, n * layer.output.len(), layer.output.c, 0),
                Kind::MaxPool { .. } => (0, 0, 0, n * layer.output.len()),
                _ => (0, 0, 0, 0),
            };
            cols.push(vec![T::ZERO; c]);
            xhat.push(vec![T::ZERO; x]);
            inv_std.push(vec![T::ZERO; s]);
            bn_sums.push(vec![(0.0, 0.0); s]);
            argmax.push(vec![0u32; a]);
        }
        let deltas = acts.iter().map(|a| vec![T::ZERO; a.len()]).collect();
        Workspace {
            capacity,
            n: 0,
            mode: Mode::Eval,
            acts,
            deltas,
            cols,
            xhat,
            inv_std,
            bn_sums,
            argmax,
            wide: vec![T::ZERO; scratch],
            unfolded: vec![T::ZERO; scratch],
        }
    }

    /// Buffers for [`Network::per_sample_dots`].
    pub fn dot_scratch<T: Real>(&self) -> DotScratch<T> {
        let mut len = 0;
        for layer in &self.layers {
            if let Kind::Conv(g) = layer.kind {
                let pixels = layer.output.plane();
                len = len.max(g.out_channels * g.patch()).max(pixels * pixels);
            }
        }
        DotScratch([vec![T::ZERO; len], vec![T::ZERO; len]])
    }

    /// Forward pass of `n` samples (`x`: n x input); returns the logits (n x classes).
    pub fn forward<'w, T: Real>(
        &self,
        params: &[T],
        state: &mut [T],
        ws: &'w mut Workspace<T>,
        x: &[T],
        n: usize,
        mode: Mode,
    ) -> &'w [T] {
        assert!(
            n <= ws.capacity,
            "batch of {n} in a workspace for {}",
            ws.capacity
        );
        ws.n = n;
        ws.mode = mode;
        ws.acts[0][..n * self.input.len()].copy_from_slice(&x[..n * self.input.len()]);
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = ws.acts.split_at_mut(l + 1);
            let (x, y) = (&before[l][..], &mut after[0][..]);
            let p = &params[layer.params()];
            let nw = layer.weights.len();
            match layer.kind {
                Kind::Dense => dense_forward(x, &p[..nw], &p[nw..], y, n),
                Kind::Conv(g) => conv_forward(
                    &g,
                    x,
                    &p[..nw],
                    &p[nw..],
                    y,
                    &mut ws.cols[l],
                    &mut ws.wide,
                    n,
                ),
                Kind::MaxPool { size } => {
                    max_pool_forward(layer.input, size, x, y, &mut ws.argmax[l], n)
                }
                Kind::AvgPool { size } => avg_pool(layer.input, size, x, y, n, false),
                Kind::BatchNorm => {
                    let (train, update) = match mode {
                        Mode::Train { update_running } => (true, update_running),
                        Mode::Eval => (false, false),
                    };
                    let saved = BatchNormSaved {
                        xhat: &mut ws.xhat[l],
                        inv_std: &mut ws.inv_std[l],
                        sums: &mut ws.bn_sums[l],
                    };
                    let stats = &mut state[layer.stats.clone()];
                    batch_norm_forward(layer.input, p, stats, train, update, x, y, saved, n);
                }
                Kind::Relu => {
                    let len = n * layer.input.len();
                    y[..len]
                        .iter_mut()
                        .zip(&x[..len])
                        .for_each(|(o, &v)| *o = if v > T::ZERO { v } else { T::ZERO });
                }
            }
        }
        let out = self.layers.len();
        &ws.acts[out][..n * self.classes()]
    }

    /// The softmax cross-entropy of the last forward pass against `labels`, its gradient
    /// scaled by `scale` left in the workspace for [`Network::backward`]. Returns the summed
    /// loss and the number of correct predictions.
    pub fn loss<T: Real>(
        &self,
        ws: &mut Workspace<T>,
        labels: &[u8],
        scale: T,
        losses: Option<&mut [f64]>,
    ) -> (f64, usize) {
        let last = self.layers.len();
        let n = ws.n;
        let k = self.classes();
        let (acts, deltas) = (&ws.acts[last], &mut ws.deltas[last]);
        softmax_cross_entropy(
            &acts[..n * k],
            &labels[..n],
            k,
            &mut deltas[..n * k],
            scale,
            losses,
        )
    }

    /// Backward pass of the last forward pass from the loss gradient in the workspace: adds
    /// the parameter gradient into `grad`.
    pub fn backward<T: Real>(&self, params: &[T], ws: &mut Workspace<T>, grad: &mut [T]) {
        let n = ws.n;
        let train = matches!(ws.mode, Mode::Train { .. });
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (lower, upper) = ws.deltas.split_at_mut(l + 1);
            let dy = &upper[0][..];
            // The input gradient of the first layer is not needed.
            let dx = (l > 0).then(|| &mut lower[l][..]);
            let x = &ws.acts[l];
            let p = &params[layer.params()];
            let nw = layer.weights.len();
            let (gw, gb) = grad[layer.params()].split_at_mut(nw);
            match layer.kind {
                Kind::Dense => dense_backward(x, &p[..nw], dy, n, gw, gb, dx),
                Kind::Conv(g) => conv_backward(
                    &g,
                    &ws.cols[l],
                    &p[..nw],
                    dy,
                    n,
                    gw,
                    gb,
                    dx,
                    &mut ws.wide,
                    &mut ws.unfolded,
                ),
                Kind::MaxPool { .. } => {
                    if let Some(dx) = dx {
                        let out = layer.output.len();
                        max_pool_backward(layer.input, out, dy, &ws.argmax[l], dx, n);
                    }
                }
                Kind::AvgPool { size } => {
                    if let Some(dx) = dx {
                        avg_pool(layer.input, size, dy, dx, n, true);
                    }
                }
                Kind::BatchNorm => batch_norm_backward(
                    layer.input,
                    p,
                    train,
                    &ws.xhat[l],
                    &ws.inv_std[l],
                    dy,
                    &mut grad[layer.params()],
                    dx,
                    &mut ws.bn_sums[l],
                    n,
                ),
                Kind::Relu => {
                    if let Some(dx) = dx {
                        let y = &ws.acts[l + 1];
                        let len = n * layer.input.len();
                        for ((o, &d), &v) in dx[..len].iter_mut().zip(&dy[..len]).zip(&y[..len]) {
                            *o = if v > T::ZERO { d } else { T::ZERO };
                        }
                    }
                }
            }
        }
    }

    /// One mean-loss gradient of a batch: forward, loss (scale 1/n), backward into `grad`
    /// (overwritten). Returns the summed loss and the number correct.
    #[allow(clippy::too_many_arguments)]
    pub fn gradient<T: Real>(
        &self,
        params: &[T],
        state: &mut [T],
        ws: &mut Workspace<T>,
        x: &[T],
        labels: &[u8],
        mode: Mode,
        grad: &mut [T],
    ) -> (f64, usize) {
        let n = labels.len();
        self.forward(params, state, ws, x, n, mode);
        let out = self.loss(ws, labels, T::from_f64(1.0 / n as f64), None);
        grad.fill(T::ZERO);
        self.backward(params, ws, grad);
        out
    }

    /// Adds, for each sample i of the last passes, <g_i(a), g_i(b)>: the inner product of the
    /// per-sample parameter gradients held by two workspaces (the same samples, eval mode,
    /// loss scale 1, e.g. at two parameter points). With `a` = `b` these are the squared
    /// per-sample gradient norms. No per-sample gradient of a dense layer is formed: it is
    /// the outer product delta_i x_i^T, so <g_i(a), g_i(b)> = (delta_a . delta_b)(x_a . x_b + 1) with its bias.
    /// A convolution's is sum_t delta_t x_t^T over its output pixels t: formed directly
    /// (out_channels x patch) or through the pixel Gram matrices, <X_a X_b^T, D_a D_b^T>
    /// (the "ghost norm"), whichever costs fewer products.
    pub fn per_sample_dots<T: Real>(
        &self,
        a: &Workspace<T>,
        b: &Workspace<T>,
        scratch: &mut DotScratch<T>,
        out: &mut [f64],
        conv: ConvNorm,
    ) {
        let n = a.n;
        assert_eq!(n, b.n, "the two passes saw different batches");
        assert!(
            a.mode == Mode::Eval && b.mode == Mode::Eval,
            "per-sample gradients exist only in eval mode (batch norm in train mode couples \
             the samples)"
        );
        for (l, layer) in self.layers.iter().enumerate() {
            let (xa, xb) = (&a.acts[l], &b.acts[l]);
            let (da, db) = (&a.deltas[l + 1], &b.deltas[l + 1]);
            match layer.kind {
                Kind::Dense => {
                    let (i_len, o_len) = (layer.input.len(), layer.output.len());
                    for (i, o) in out.iter_mut().enumerate().take(n) {
                        let dd = super::dot(&da[i * o_len..][..o_len], &db[i * o_len..][..o_len]);
                        let xx = super::dot(&xa[i * i_len..][..i_len], &xb[i * i_len..][..i_len]);
                        *o += dd * (xx + 1.0);
                    }
                }
                Kind::Conv(g) => {
                    let (patch, pixels, c) = (g.patch(), layer.output.plane(), g.out_channels);
                    let ghost = match conv {
                        ConvNorm::Direct => false,
                        ConvNorm::Ghost => true,
                        ConvNorm::Cheaper => pixels * (patch + c) < c * patch,
                    };
                    // Sample i's product: its block of the unfolded batch is columns i
                    // pixels.., rows n pixels apart.
                    let width = n * pixels;
                    let sample = |i: usize, s0: &mut [T], s1: &mut [T]| -> f64 {
                        let cb = Operand::plain(&b.cols[l][i * pixels..], patch, pixels)
                            .with_stride(width);
                        let ca_t = Operand::transposed(&a.cols[l][i * pixels..], patch, pixels)
                            .with_stride(width);
                        let cb_t = Operand::transposed(&b.cols[l][i * pixels..], patch, pixels)
                            .with_stride(width);
                        let dai = &da[i * c * pixels..][..c * pixels];
                        let dbi = &db[i * c * pixels..][..c * pixels];
                        let weights = if ghost {
                            let (gx, gd) = (&mut s0[..pixels * pixels], &mut s1[..pixels * pixels]);
                            matmul(gx, ca_t, cb, false);
                            matmul(
                                gd,
                                Operand::transposed(dai, c, pixels),
                                Operand::plain(dbi, c, pixels),
                                false,
                            );
                            super::dot(gx, gd)
                        } else {
                            let (ga, gb) = (&mut s0[..c * patch], &mut s1[..c * patch]);
                            matmul(ga, Operand::plain(dai, c, pixels), ca_t, false);
                            matmul(gb, Operand::plain(dbi, c, pixels), cb_t, false);
                            super::dot(ga, gb)
                        };
                        // Biases: the per-channel sums of the output gradient.
                        let biases = dai
                            .chunks_exact(pixels)
                            .zip(dbi.chunks_exact(pixels))
                            .map(|(p, q)| {
                                p.iter().map(|v| v.to_f64()).sum::<f64>()
                                    * q.iter().map(|v| v.to_f64()).sum::<f64>()
                            })
                            .sum::<f64>();
                        weights + biases
                    };
                    let [s0, s1] = &mut scratch.0;
                    if n > 1 && super::matmul::may_split() {
                        // Samples on several threads, each with its own buffers.
                        let len = s0.len();
                        out[..n].par_iter_mut().enumerate().for_each_init(
                            || (vec![T::ZERO; len], vec![T::ZERO; len]),
                            |(t0, t1), (i, o)| *o += sample(i, t0, t1),
                        );
                    } else {
                        for (i, o) in out.iter_mut().enumerate().take(n) {
                            *o += sample(i, s0, s1);
                        }
                    }
                }
                Kind::BatchNorm => {
                    let (ch, plane, len) = (layer.input.c, layer.input.plane(), layer.input.len());
                    let (ha, hb) = (&a.xhat[l], &b.xhat[l]);
                    for (i, o) in out.iter_mut().enumerate().take(n) {
                        for c in 0..ch {
                            let r = i * len + c * plane..i * len + (c + 1) * plane;
                            let gamma_a = super::dot(&da[r.clone()], &ha[r.clone()]);
                            let gamma_b = super::dot(&db[r.clone()], &hb[r.clone()]);
                            let sum = |d: &[T]| d.iter().map(|v| v.to_f64()).sum::<f64>();
                            *o += gamma_a * gamma_b + sum(&da[r.clone()]) * sum(&db[r]);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// How a convolution's per-sample gradient inner products are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvNorm {
    /// The per-sample weight gradient itself (out_channels x patch per sample).
    Direct,
    /// The Gram matrices of the unfolded input and of the output gradient (pixels x pixels).
    Ghost,
    /// Whichever costs fewer multiplications for the layer's shape.
    Cheaper,
}

/// Every buffer of a batch's passes, sized once for `capacity` samples.
pub struct Workspace<T> {
    capacity: usize,
    /// Samples in the last forward pass.
    n: usize,
    mode: Mode,
    /// Input, then every layer's output.
    acts: Vec<Vec<T>>,
    /// The loss gradient with respect to each of `acts`.
    deltas: Vec<Vec<T>>,
    /// Per layer: the unfolded inputs of a convolution.
    cols: Vec<Vec<T>>,
    /// Per layer: batch norm's normalized input and 1/std.
    xhat: Vec<Vec<T>>,
    inv_std: Vec<Vec<T>>,
    /// Per layer: batch norm's per-channel sums (scratch).
    bn_sums: Vec<Vec<(f64, f64)>>,
    /// Per layer: max pooling's winners.
    argmax: Vec<Vec<u32>>,
    /// A convolution's products before they are laid out per sample (channels x n pixels),
    /// and its unfolded input gradient (patch x n pixels).
    wide: Vec<T>,
    unfolded: Vec<T>,
}

/// Two buffers for the per-sample products of a convolution.
pub struct DotScratch<T>([Vec<T>; 2]);

impl<T: Real> Workspace<T> {
    /// The output of layer `l` in the last forward pass, sample after sample (the buffer is
    /// sized for the capacity: its first n x output-length values are the pass's).
    pub fn layer_output(&self, l: usize) -> &[T] {
        &self.acts[l + 1]
    }
}
