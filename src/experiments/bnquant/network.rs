//! The network level: the small CNN of the nn toolkit (conv - BN - ReLU - conv - BN - ReLU -
//! max pool - dense) trained here on MNIST or Fashion-MNIST, quantized (int8 weights per
//! output channel, k-bit activations, pixels as their uint8 codes), and run on integers
//! only: each convolution's int32 accumulator goes through its batch norm, ReLU and output
//! quantization in one requantization per channel (the paper's "and beyond"), by the exact
//! (M, C, n) or by a baseline, against the reference that rounds A acc + B exactly.

use anyhow::{Result, bail};
use rand::seq::SliceRandom;

use super::analysis::{ChannelResult, Setting, analyze, minimal_shift};
use super::baselines::{Baseline, Float32, Float64, Naive, Tflite};
use super::channels::Channel;
use super::exact::{Codes, Folded, MAX_MAGNITUDE, Rounding, Truth};
use super::search::Exact;
use super::spec::{BnquantSpec, Source};
use super::{BnquantExperiment, MethodResult, NetworkResult, row, summarize};
use crate::contract::{Ctx, Valid};
use crate::data::images::{ImageSet, Split, blobs, fashion_mnist, mnist_test_split};
use crate::input_error;
use crate::nn::{
    BN_EPS, Builder, ConvGeometry, Kind, Mode, Network, Shape, conv_forward, max_pool_forward,
    single_threaded_products,
};

/// The images: the training set kept whole (cut when training), the test set.
pub fn load(spec: &BnquantSpec) -> Result<Split> {
    let split = match spec.source {
        Source::Blobs => blobs(
            if spec.train_size == 0 {
                8000
            } else {
                spec.train_size
            },
            2000,
        ),
        Source::Mnist => mnist_test_split()?,
        Source::Fashion => fashion_mnist()?,
        _ => unreachable!("a network source"),
    };
    if spec.train_size > split.train.len() {
        return Err(input_error!(
            "train_size = {} exceeds the {} training images ({}); 0 takes them all",
            spec.train_size,
            split.train.len(),
            split.description
        ));
    }
    if spec.calibration > split.train.len() {
        return Err(input_error!(
            "calibration = {} exceeds the {} training images",
            spec.calibration,
            split.train.len()
        ));
    }
    Ok(split)
}

/// The requantization methods of the integer network, the reference first.
pub const METHODS: [&str; 6] = ["reference", "exact", "naive", "tflite", "f32", "f64"];

/// Images per chunk of inference.
const CHUNK: usize = 100;

/// Trains the network with plain SGD (batch norm in train mode), f32.
fn train(
    spec: &BnquantSpec,
    net: &Network,
    train: &ImageSet,
    ctx: &Ctx<BnquantExperiment>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut params: Vec<f32> = net.init(&mut ctx.rng("init"));
    let mut state: Vec<f32> = net.init_state();
    let mut order = ctx.rng("order");
    let mut ws = net.workspace(spec.batch);
    let mut grad = vec![0.0f32; net.params];
    let size = train.size();
    let (mut x, mut y) = (vec![0.0f32; spec.batch * size], vec![0u8; spec.batch]);
    let mut perm: Vec<usize> = (0..train.len()).collect();
    let lr = spec.lr as f32;
    for epoch in 0..spec.epochs {
        perm.shuffle(&mut order);
        for idx in perm.chunks(spec.batch) {
            ctx.check_cancel()?;
            let m = idx.len();
            for (k, &i) in idx.iter().enumerate() {
                x[k * size..(k + 1) * size].copy_from_slice(train.image(i));
                y[k] = train.labels[i];
            }
            let (loss, _) = net.gradient(
                &params,
                &mut state,
                &mut ws,
                &x[..m * size],
                &y[..m],
                Mode::Train {
                    update_running: true,
                },
                &mut grad,
            );
            if !loss.is_finite() {
                bail!(
                    "training diverged at epoch {}: the batch loss is {loss}; lower lr",
                    epoch + 1
                );
            }
            for (w, g) in params.iter_mut().zip(&grad) {
                *w -= lr * g;
            }
        }
        ctx.progress().advance(1);
    }
    Ok((params, state))
}

/// The f32 network's accuracy on the first `count` images, and each ReLU's largest output
/// (for calibration) over them.
fn float_pass(
    net: &Network,
    params: &[f32],
    state: &[f32],
    set: &ImageSet,
    count: usize,
) -> (f64, Vec<f64>) {
    let mut ws = net.workspace(CHUNK);
    let mut state = state.to_vec();
    let mut maxima = vec![0.0f64; net.layers.len()];
    let mut correct = 0;
    let size = set.size();
    for start in (0..count).step_by(CHUNK) {
        let m = CHUNK.min(count - start);
        let x = &set.pixels[start * size..(start + m) * size];
        net.forward(params, &mut state, &mut ws, x, m, Mode::Eval);
        let (_, c) = net.loss(&mut ws, &set.labels[start..start + m], 1.0, None);
        correct += c;
        for (l, layer) in net.layers.iter().enumerate() {
            if matches!(layer.kind, Kind::Relu) {
                let out = &ws.layer_output(l)[..m * layer.output.len()];
                let top = out.iter().fold(0.0f32, |a, &b| a.max(b));
                maxima[l] = maxima[l].max(top as f64);
            }
        }
    }
    (correct as f64 / count as f64, maxima)
}

/// A convolution with its batch norm and ReLU folded into one requantization per channel.
struct Stage {
    name: &'static str,
    geometry: ConvGeometry,
    /// int8 weights (as f64: every product sum stays an exact integer), out x patch.
    weights: Vec<f64>,
    folded: Vec<Folded>,
    /// The accumulator range each channel can produce from any input: the sums of its
    /// negative and of its positive weights times the largest input code.
    codes: Vec<Codes>,
}

/// The quantized network.
struct QuantNet {
    stages: Vec<Stage>,
    pool: usize,
    pooled: Shape,
    dense: Vec<f64>,
    dense_bias: Vec<i64>,
    /// The real value of one logit step per class: s_x s_w.
    dense_scale: Vec<f64>,
    classes: usize,
}

/// Symmetric int8 weights per output channel: s_w = max |w| / 127.
fn quantize_weights(w: &[f32], outputs: usize) -> (Vec<f64>, Vec<f64>) {
    let per = w.len() / outputs;
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(outputs);
    for row in w.chunks(per) {
        let top = row.iter().fold(0.0f64, |a, &b| a.max((b as f64).abs()));
        let s = if top > 0.0 { top / 127.0 } else { 1.0 };
        q.extend(row.iter().map(|&v| (v as f64 / s).round()));
        scales.push(s);
    }
    (q, scales)
}

impl QuantNet {
    /// Quantizes the trained small CNN for k-bit activations, calibrated on `maxima`.
    fn new(
        net: &Network,
        params: &[f32],
        state: &[f32],
        maxima: &[f64],
        bits: u32,
        rounding: Rounding,
    ) -> Result<QuantNet> {
        let levels = ((1u64 << bits) - 1) as f64;
        let out = Codes::output(bits, false);
        let mut stages = Vec::new();
        // Pixels are their uint8 codes: scale 1/255, zero point 0.
        let (mut scale_in, mut top_code) = (1.0 / 255.0, 255.0);
        let layers = &net.layers;
        let mut l = 0;
        let names = ["conv1", "conv2"];
        while let (Some(conv), Some(bn), Some(relu)) =
            (layers.get(l), layers.get(l + 1), layers.get(l + 2))
        {
            let (Kind::Conv(g), Kind::BatchNorm, Kind::Relu) = (conv.kind, bn.kind, relu.kind)
            else {
                break;
            };
            let c = g.out_channels;
            let (weights, w_scale) = quantize_weights(&params[conv.weights.clone()], c);
            let bias = &params[conv.biases.clone()];
            let bn_p = &params[bn.weights.start..bn.biases.end];
            let (gamma, beta) = bn_p.split_at(c);
            let stats = &state[bn.stats.clone()];
            let (mean, var) = stats.split_at(c);
            let top = maxima[l + 2];
            let scale_out = if top > 0.0 { top / levels } else { 1.0 };
            let mut folded = Vec::new();
            let mut codes = Vec::new();
            for o in 0..c {
                let sigma = (var[o] as f64 + BN_EPS).sqrt();
                let gm = gamma[o] as f64;
                // v = s_x s_w acc + bias; y = gamma (v - mu) / sigma + beta; q = y / s_y.
                let a = gm * scale_in * w_scale[o] / (sigma * scale_out);
                let b =
                    (gm * (bias[o] as f64 - mean[o] as f64) / sigma + beta[o] as f64) / scale_out;
                if !(a.abs() < MAX_MAGNITUDE && b.abs() < MAX_MAGNITUDE) {
                    bail!(
                        "{} channel {o}: folded A = {a:e}, B = {b:e} are not finite below 2^40 \
                         (the training diverged?)",
                        names[stages.len()]
                    );
                }
                folded.push(Folded {
                    a,
                    b,
                    out,
                    rounding,
                });
                let row = &weights[o * g.patch()..(o + 1) * g.patch()];
                let neg: f64 = row.iter().filter(|&&w| w < 0.0).sum();
                let pos: f64 = row.iter().filter(|&&w| w > 0.0).sum();
                codes.push(Codes {
                    lo: (neg * top_code) as i64,
                    hi: (pos * top_code) as i64,
                });
            }
            stages.push(Stage {
                name: names[stages.len().min(1)],
                geometry: g,
                weights,
                folded,
                codes,
            });
            scale_in = scale_out;
            top_code = levels;
            l += 3;
        }
        let (Some(pool), Some(dense)) = (layers.get(l), layers.get(l + 1)) else {
            bail!("the network is not the small CNN (conv - BN - ReLU twice, pool, dense)");
        };
        let (Kind::MaxPool { size }, Kind::Dense) = (pool.kind, dense.kind) else {
            bail!("the network is not the small CNN (conv - BN - ReLU twice, pool, dense)");
        };
        if stages.len() != 2 || l + 2 != layers.len() {
            bail!("the network is not the small CNN (conv - BN - ReLU twice, pool, dense)");
        }
        let classes = dense.output.len();
        let (dense_w, dense_s) = quantize_weights(&params[dense.weights.clone()], classes);
        let dense_scale: Vec<f64> = dense_s.iter().map(|s| s * scale_in).collect();
        let dense_bias = params[dense.biases.clone()]
            .iter()
            .zip(&dense_scale)
            .map(|(&b, &s)| (b as f64 / s).round() as i64)
            .collect();
        Ok(QuantNet {
            stages,
            pool: size,
            pooled: pool.output,
            dense: dense_w,
            dense_bias,
            dense_scale,
            classes,
        })
    }
}

/// One channel's requantization under a method.
enum Requant {
    Reference(Truth),
    Exact(Exact, Codes),
    Naive(Naive),
    Tflite(Tflite),
    F32(Float32),
    F64(Float64),
}

impl Requant {
    fn new(method: &str, f: Folded, exact: Option<Exact>, codes: Codes) -> Result<Requant> {
        Ok(match method {
            "reference" => Requant::Reference(Truth::new(f)),
            "exact" => match exact {
                Some(e) => Requant::Exact(e, f.out),
                None => bail!("a channel without an exact (M, C, n)"),
            },
            "naive" => Requant::Naive(Naive::new(&f, exact.map_or(0, |e| e.n))),
            "tflite" => {
                // Its int32 accumulator x + bias is linear in x: the ends decide.
                let t = Tflite::new(&f, 0, 0);
                if t.q(codes.lo).is_none() || t.q(codes.hi).is_none() {
                    bail!("TFLite cannot requantize a channel: x + round(B / A) leaves int32");
                }
                Requant::Tflite(t)
            }
            "f32" => Requant::F32(Float32(f)),
            _ => Requant::F64(Float64(f)),
        })
    }

    #[inline]
    fn q(&self, acc: i64) -> i64 {
        match self {
            Requant::Reference(t) => t.q(acc),
            Requant::Exact(e, out) => e.apply(acc, *out),
            // Naive and float are never None; TFLite was checked at the ends of the range.
            Requant::Naive(b) => b.q(acc).unwrap_or(0),
            Requant::Tflite(b) => b.q(acc).unwrap_or(0),
            Requant::F32(b) => b.q(acc).unwrap_or(0),
            Requant::F64(b) => b.q(acc).unwrap_or(0),
        }
    }
}

/// What one method's pass over the images gives.
struct Pass {
    /// Integer logits, image after image.
    logits: Vec<i64>,
    /// Requantized values that differ from exact rounding of the same accumulator.
    changed: u64,
}

impl QuantNet {
    /// The integer network over `set` with each channel requantized by `method`.
    fn run(
        &self,
        method: &str,
        exact: &[Vec<Option<Exact>>],
        set: &ImageSet,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Pass>> {
        let requants: Vec<Vec<Requant>> = self
            .stages
            .iter()
            .zip(exact)
            .map(|(s, e)| {
                s.folded
                    .iter()
                    .zip(e)
                    .zip(&s.codes)
                    .map(|((&f, &e), &codes)| Requant::new(method, f, e, codes))
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        let truths: Vec<Vec<Truth>> = self
            .stages
            .iter()
            .map(|s| s.folded.iter().map(|&f| Truth::new(f)).collect())
            .collect();
        let size = set.size();
        let mut logits = Vec::with_capacity(set.len() * self.classes);
        let mut changed = 0u64;
        let (mut cols, mut wide, mut arg) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..set.len()).step_by(CHUNK) {
            if cancel() {
                return Ok(None);
            }
            let n = CHUNK.min(set.len() - start);
            // uint8 pixel codes.
            let mut x: Vec<f64> = set.pixels[start * size..(start + n) * size]
                .iter()
                .map(|&p| (p as f64 * 255.0).round())
                .collect();
            for ((stage, req), truth) in self.stages.iter().zip(&requants).zip(&truths) {
                let g = &stage.geometry;
                let (pixels, c) = (g.output().plane(), g.out_channels);
                cols.resize(g.patch() * n * pixels, 0.0);
                wide.resize(c * n * pixels, 0.0);
                // The toolkit's convolution on integer codes and weights, no bias: every
                // product sum is an integer below 2^53, so exact whatever the order.
                let mut acc = vec![0.0f64; n * c * pixels];
                let zeros = vec![0.0f64; c];
                conv_forward(
                    g,
                    &x,
                    &stage.weights,
                    &zeros,
                    &mut acc,
                    &mut cols,
                    &mut wide,
                    n,
                );
                for (k, a) in acc.iter_mut().enumerate() {
                    let o = (k / pixels) % c;
                    let q = req[o].q(*a as i64);
                    changed += u64::from(q != truth[o].q(*a as i64));
                    *a = q as f64;
                }
                x = acc;
            }
            // Max pooling on codes (quantization is monotone, so it commutes with the max).
            let last = self.stages.last().expect("two stages").geometry.output();
            let mut pooled = vec![0.0f64; n * self.pooled.len()];
            arg.resize(pooled.len(), 0);
            max_pool_forward(last, self.pool, &x, &mut pooled, &mut arg, n);
            let features = self.pooled.len();
            for i in 0..n {
                let xi = &pooled[i * features..(i + 1) * features];
                for k in 0..self.classes {
                    let w = &self.dense[k * features..(k + 1) * features];
                    let dot: f64 = w.iter().zip(xi).map(|(a, b)| a * b).sum();
                    logits.push(dot as i64 + self.dense_bias[k]);
                }
            }
        }
        Ok(Some(Pass { logits, changed }))
    }

    /// The predicted class of integer logits (each class has its own weight scale).
    fn predict(&self, logits: &[i64]) -> usize {
        let real = |k: usize| logits[k] as f64 * self.dense_scale[k];
        (0..self.classes)
            .max_by(|&a, &b| real(a).total_cmp(&real(b)).then(b.cmp(&a)))
            .unwrap_or(0)
    }
}

/// Images appended: the test set first, so its indices stay the same.
fn join(a: &ImageSet, b: &ImageSet) -> ImageSet {
    let mut out = a.clone();
    out.pixels.extend_from_slice(&b.pixels);
    out.labels.extend_from_slice(&b.labels);
    out
}

/// Trains, quantizes and analyzes every channel, then runs the integer network per method.
pub fn run(
    spec: &Valid<BnquantExperiment>,
    split: Split,
    ctx: &mut Ctx<BnquantExperiment>,
) -> Result<()> {
    let shape = split.train.shape;
    let net = Builder::new(Shape {
        c: shape[0],
        h: shape[1],
        w: shape[2],
    })
    .small_cnn(split.train.classes);
    let train_set = if spec.train_size > 0 {
        split.train.first(spec.train_size)
    } else {
        split.train.clone()
    };
    // Progress: the epochs, then per width each channel's analysis and each method's pass.
    let channels: usize = net
        .layers
        .iter()
        .filter_map(|l| match l.kind {
            Kind::Conv(g) => Some(g.out_channels),
            _ => None,
        })
        .sum();
    ctx.progress()
        .set_total((spec.epochs + spec.bits.len() * (channels + METHODS.len())) as u64);
    ctx.progress().phase("training");
    let (params, state) = train(spec, &net, &train_set, ctx)?;
    let (float_accuracy, _) = float_pass(&net, &params, &state, &split.test, split.test.len());
    let (_, maxima) = float_pass(&net, &params, &state, &split.train, spec.calibration);
    ctx.summary.training = Some(format!(
        "small CNN, {} parameters, SGD lr {} batch {} for {} epochs on {} of the training \
         images; calibrated on the first {}",
        net.params,
        spec.lr,
        spec.batch,
        spec.epochs,
        train_set.len(),
        spec.calibration
    ));
    // MNIST: every image of its 10,000-image file (the test part first); Fashion: the test set.
    let (images, note) = match spec.source {
        Source::Mnist => (
            join(&split.test, &split.train),
            "all 10,000 images of the MNIST test file (accuracy on its held-out 2,000)",
        ),
        _ => (split.test.clone(), "the test set"),
    };
    ctx.summary.source = Some(format!(
        "every batch-norm channel of the small CNN on {}; codes: each channel's int32 \
         accumulator over the range its weights allow for any input",
        split.description
    ));
    let mut all: Vec<(u32, Channel, ChannelResult)> = Vec::new();
    let mut results = Vec::new();
    for &bits in &spec.bits {
        ctx.progress().phase(&format!("{bits}-bit activations"));
        let q = QuantNet::new(&net, &params, &state, &maxima, bits, spec.rounding)?;
        let mut jobs = Vec::new();
        for (s, stage) in q.stages.iter().enumerate() {
            for o in 0..stage.folded.len() {
                let r = stage.codes[o];
                if r.lo.abs().max(r.hi.abs()) >= 1 << 31 {
                    bail!(
                        "{} channel {o}: the accumulator can leave int32",
                        stage.name
                    );
                }
                jobs.push((s, o));
            }
        }
        let analyzed = ctx.jobs(&jobs, |&(s, o), job| {
            let stage = &q.stages[s];
            let setting = Setting {
                zero: 0,
                preshift: spec.preshift,
                curve_max_n: spec.curve_max_n,
            };
            let r = analyze(stage.folded[o], stage.codes[o], setting);
            let n32 = minimal_shift(stage.folded[o], Codes::INT32);
            let ch = Channel {
                layer: stage.name.into(),
                index: o,
                a: stage.folded[o].a,
                b: stage.folded[o].b,
            };
            job.emit(row(bits, &ch, &r, n32))?;
            Ok((bits, ch, r))
        })?;
        let mut exact: Vec<Vec<Option<Exact>>> = q
            .stages
            .iter()
            .map(|s| vec![None; s.folded.len()])
            .collect();
        for (&(s, o), (_, _, r)) in jobs.iter().zip(&analyzed) {
            exact[s][o] = r.exact;
        }
        all.extend(analyzed);
        let passes = ctx.jobs(&METHODS, |&method, job| {
            let cancel = || job.cancel().is_set();
            single_threaded_products(|| q.run(method, &exact, &images, &cancel))
        })?;
        let Some(Some(reference)) = passes.first() else {
            return Err(crate::contract::Interrupted.into());
        };
        let tests = split.test.len();
        let mut methods = Vec::new();
        for (method, pass) in METHODS.iter().zip(&passes) {
            let Some(pass) = pass else {
                return Err(crate::contract::Interrupted.into());
            };
            let k = q.classes;
            let (mut identical, mut changed, mut correct) = (0, 0, 0);
            for i in 0..images.len() {
                let (a, r) = (&pass.logits[i * k..][..k], &reference.logits[i * k..][..k]);
                identical += usize::from(a == r);
                changed += usize::from(q.predict(a) != q.predict(r));
                if i < tests {
                    correct += usize::from(q.predict(a) == images.labels[i] as usize);
                }
            }
            methods.push(MethodResult {
                method: method.to_string(),
                accuracy: correct as f64 / tests as f64,
                identical_logits: identical,
                changed_predictions: changed,
                changed_activations: pass.changed,
            });
        }
        results.push(NetworkResult {
            bits,
            images: images.len(),
            images_note: note.into(),
            test_images: tests,
            float_accuracy,
            methods,
        });
    }
    summarize(spec, &all, ctx);
    ctx.summary.network = Some(results);
    Ok(())
}
