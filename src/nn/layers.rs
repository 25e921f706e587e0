//! The layers' forward and backward kernels, one sample batch at a time. Activations are
//! row-major per sample, channels first (`n x c x h x w`); a layer's parameters are a slice of
//! the network's flat buffer, weights then biases. The kernels are `#[inline(never)]` so a
//! profile names each; with one job (`single_threaded_products` not in force), the large
//! ones split their samples or channels between threads.

use rayon::prelude::*;

use super::Real;
use super::matmul::{Operand, matmul};

/// A feature map's shape (a dense layer's features are `c` with h = w = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub fn flat(features: usize) -> Shape {
        Shape {
            c: features,
            h: 1,
            w: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels per channel.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// A 2-D convolution's geometry (square kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub input: Shape,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    pub fn output(&self) -> Shape {
        let side = |x: usize| (x + 2 * self.pad - self.kernel) / self.stride + 1;
        Shape {
            c: self.out_channels,
            h: side(self.input.h),
            w: side(self.input.w),
        }
    }

    /// Rows of the unfolded input: in_channels x kernel x kernel.
    pub fn patch(&self) -> usize {
        self.input.c * self.kernel * self.kernel
    }

    /// For patch row r: each output row oy whose input row lies inside the image, with the
    /// first output pixel t0 of the row's valid span, the input pixel s0 under it and the
    /// span's length (its input pixels are `stride` apart); the rest read the zero padding.
    #[inline]
    fn row_spans(&self, r: usize, mut f: impl FnMut(usize, usize, usize)) {
        let k2 = self.kernel * self.kernel;
        let (ci, ky, kx) = (r / k2, (r % k2) / self.kernel, r % self.kernel);
        let out = self.output();
        let s = self.stride;
        // x = ox s + kx - pad lies in [0, w) for ox in [lo, hi).
        let lo = self.pad.saturating_sub(kx).div_ceil(s);
        let hi = (self.input.w + self.pad - kx).div_ceil(s).min(out.w);
        if lo >= hi {
            return;
        }
        let plane = ci * self.input.h * self.input.w;
        for oy in 0..out.h {
            let Some(y) = (oy * s + ky).checked_sub(self.pad) else {
                continue;
            };
            if y >= self.input.h {
                continue;
            }
            let s0 = plane + y * self.input.w + lo * s + kx - self.pad;
            f(oy * out.w + lo, s0, hi - lo);
        }
    }
}

/// One row r of a sample's unfolding: `dst` (out_pixels) is zero where the kernel overhangs
/// the padding.
#[inline]
fn unfold_row<T: Real>(g: &ConvGeometry, r: usize, x: &[T], dst: &mut [T]) {
    dst.fill(T::ZERO);
    g.row_spans(r, |t0, s0, len| {
        if g.stride == 1 {
            dst[t0..t0 + len].copy_from_slice(&x[s0..s0 + len]);
        } else {
            for (k, v) in dst[t0..t0 + len].iter_mut().enumerate() {
                *v = x[s0 + k * g.stride];
            }
        }
    });
}

/// Unfolds one sample (im2col): `cols` is `patch x out_pixels` with rows `stride` apart (a
/// sample's block of the batch's unfolded matrix), zero where the kernel overhangs the
/// padding.
pub fn im2col<T: Real>(g: &ConvGeometry, x: &[T], cols: &mut [T], stride: usize) {
    let pixels = g.output().plane();
    for r in 0..g.patch() {
        unfold_row(g, r, x, &mut cols[r * stride..r * stride + pixels]);
    }
}

/// Folds an unfolded gradient back (col2im): adds `cols` (rows `stride` apart) into `dx`.
pub fn col2im<T: Real>(g: &ConvGeometry, cols: &[T], stride: usize, dx: &mut [T]) {
    let pixels = g.output().plane();
    for r in 0..g.patch() {
        let row = &cols[r * stride..r * stride + pixels];
        g.row_spans(r, |t0, s0, len| {
            if g.stride == 1 {
                let src = &row[t0..t0 + len];
                dx[s0..s0 + len]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, &v)| *d += v);
            } else {
                for (k, &v) in row[t0..t0 + len].iter().enumerate() {
                    dx[s0 + k * g.stride] += v;
                }
            }
        });
    }
}

/// Whether a kernel over `values` values splits between threads: only where products may
/// (one job) and the work is large. Each thread writes its own samples or channels, so the
/// results are the same bits on any number of threads.
fn split(values: usize) -> bool {
    values >= 1 << 15 && super::matmul::may_split()
}

/// Runs `f((i, (a_i, b_i)))` over the `len`-long chunks of two slices side by side, on
/// several threads if `parallel`.
fn each_chunk_pair<A: Send, B: Send>(
    a: &mut [A],
    b: &mut [B],
    len: usize,
    parallel: bool,
    f: impl Fn((usize, (&mut [A], &mut [B]))) + Sync + Send,
) {
    if parallel {
        a.par_chunks_mut(len)
            .zip(b.par_chunks_mut(len))
            .enumerate()
            .for_each(f);
    } else {
        a.chunks_mut(len)
            .zip(b.chunks_mut(len))
            .enumerate()
            .for_each(f);
    }
}

/// Runs `f(i, chunk)` over the `len`-long chunks of `data`, on several threads if `parallel`.
fn each_chunk<T: Send>(
    data: &mut [T],
    len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if parallel {
        data.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Dense forward: y = x W^T + b for a batch (`x`: n x inputs, `w`: outputs x inputs).
#[inline(never)]
pub fn dense_forward<T: Real>(x: &[T], w: &[T], b: &[T], y: &mut [T], n: usize) {
    let (outputs, inputs) = (b.len(), w.len() / b.len());
    matmul(
        y,
        Operand::plain(x, n, inputs),
        Operand::transposed(w, outputs, inputs),
        false,
    );
    for row in y[..n * outputs].chunks_exact_mut(outputs) {
        row.iter_mut().zip(b).for_each(|(v, &bias)| *v += bias);
    }
}

/// Dense backward: adds dW = dy^T x and db = column sums of dy; writes dx = dy W if asked.
#[inline(never)]
pub fn dense_backward<T: Real>(
    x: &[T],
    w: &[T],
    dy: &[T],
    n: usize,
    gw: &mut [T],
    gb: &mut [T],
    dx: Option<&mut [T]>,
) {
    let (outputs, inputs) = (gb.len(), w.len() / gb.len());
    matmul(
        gw,
        Operand::transposed(dy, n, outputs),
        Operand::plain(x, n, inputs),
        true,
    );
    for row in dy[..n * outputs].chunks_exact(outputs) {
        gb.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
    }
    if let Some(dx) = dx {
        matmul(
            dx,
            Operand::plain(dy, n, outputs),
            Operand::plain(w, outputs, inputs),
            false,
        );
    }
}

/// Convolution forward for a batch: the batch unfolded into one `patch x (n pixels)` matrix
/// (sample i in columns i pixels..), kept in `cols` for the backward pass and per-sample
/// norms, times the kernel matrix in one product; `wide` (out_channels x n pixels) holds the
/// product before it is laid out per sample.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn conv_forward<T: Real>(
    g: &ConvGeometry,
    x: &[T],
    w: &[T],
    b: &[T],
    y: &mut [T],
    cols: &mut [T],
    wide: &mut [T],
    n: usize,
) {
    let (inp, out) = (g.input.len(), g.output());
    let (pixels, patch, c) = (out.plane(), g.patch(), g.out_channels);
    let width = n * pixels;
    for i in 0..n {
        im2col(
            g,
            &x[i * inp..(i + 1) * inp],
            &mut cols[i * pixels..],
            width,
        );
    }
    matmul(
        wide,
        Operand::plain(w, c, patch),
        Operand::plain(cols, patch, width),
        false,
    );
    each_chunk(
        &mut y[..n * out.len()],
        out.len(),
        split(n * out.len()),
        |i, yi| {
            for o in 0..c {
                let src = &wide[o * width + i * pixels..][..pixels];
                let dst = &mut yi[o * pixels..][..pixels];
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + b[o]);
            }
        },
    );
}

/// Convolution backward: adds dW and db; writes dx if asked. `wide` (out_channels x n
/// pixels) and `unfolded` (patch x n pixels) are scratch.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn conv_backward<T: Real>(
    g: &ConvGeometry,
    cols: &[T],
    w: &[T],
    dy: &[T],
    n: usize,
    gw: &mut [T],
    gb: &mut [T],
    dx: Option<&mut [T]>,
    wide: &mut [T],
    unfolded: &mut [T],
) {
    let (inp, out) = (g.input.len(), g.output());
    let (pixels, patch, c) = (out.plane(), g.patch(), g.out_channels);
    let width = n * pixels;
    each_chunk(&mut wide[..c * width], width, split(c * width), |o, row| {
        for i in 0..n {
            row[i * pixels..(i + 1) * pixels]
                .copy_from_slice(&dy[i * out.len() + o * pixels..][..pixels]);
        }
    });
    matmul(
        gw,
        Operand::plain(wide, c, width),
        Operand::transposed(cols, patch, width),
        true,
    );
    for (gbias, row) in gb.iter_mut().zip(wide[..c * width].chunks_exact(width)) {
        *gbias += row.iter().copied().sum::<T>();
    }
    if let Some(dx) = dx {
        matmul(
            unfolded,
            Operand::transposed(w, c, patch),
            Operand::plain(wide, c, width),
            false,
        );
        let unfolded = &*unfolded;
        each_chunk(&mut dx[..n * inp], inp, split(n * inp), |i, dxi| {
            dxi.fill(T::ZERO);
            col2im(g, &unfolded[i * pixels..], width, dxi);
        });
    }
}

/// Max pooling over `size x size` windows with the same stride; `arg` records the winner.
#[inline(never)]
pub fn max_pool_forward<T: Real>(
    input: Shape,
    size: usize,
    x: &[T],
    y: &mut [T],
    arg: &mut [u32],
    n: usize,
) {
    let (oh, ow) = (input.h / size, input.w / size);
    let out_len = input.c * oh * ow;
    let pool = |(i, (yi, ai)): (usize, (&mut [T], &mut [u32]))| {
        let xi = &x[i * input.len()..(i + 1) * input.len()];
        for c in 0..input.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best = (c * input.h + oy * size) * input.w + ox * size;
                    for dy in 0..size {
                        let row = (c * input.h + oy * size + dy) * input.w + ox * size;
                        for s in row..row + size {
                            if xi[s] > xi[best] {
                                best = s;
                            }
                        }
                    }
                    let o = (c * oh + oy) * ow + ox;
                    yi[o] = xi[best];
                    ai[o] = best as u32;
                }
            }
        }
    };
    let (y, arg) = (&mut y[..n * out_len], &mut arg[..n * out_len]);
    each_chunk_pair(y, arg, out_len, split(n * input.len()), pool);
}

/// Max pooling backward: each output's gradient goes to its window's winner.
#[inline(never)]
pub fn max_pool_backward<T: Real>(
    input: Shape,
    out_len: usize,
    dy: &[T],
    arg: &[u32],
    dx: &mut [T],
    n: usize,
) {
    dx[..n * input.len()].fill(T::ZERO);
    for i in 0..n {
        for o in 0..out_len {
            dx[i * input.len() + arg[i * out_len + o] as usize] += dy[i * out_len + o];
        }
    }
}

/// Average pooling over `size x size` windows with the same stride; `backward` spreads each
/// output's gradient evenly over its window.
#[inline(never)]
pub fn avg_pool<T: Real>(
    input: Shape,
    size: usize,
    a: &[T],
    b: &mut [T],
    n: usize,
    backward: bool,
) {
    let (oh, ow) = (input.h / size, input.w / size);
    let out_len = input.c * oh * ow;
    let inv = T::from_f64(1.0 / (size * size) as f64);
    if backward {
        // a = dy (outputs), b = dx (inputs); pixels past the last whole window get nothing.
        b[..n * input.len()].fill(T::ZERO);
        for i in 0..n {
            for c in 0..input.c {
                for y in 0..oh * size {
                    for x in 0..ow * size {
                        b[i * input.len() + (c * input.h + y) * input.w + x] =
                            a[i * out_len + (c * oh + y / size) * ow + x / size] * inv;
                    }
                }
            }
        }
        return;
    }
    for i in 0..n {
        for c in 0..input.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = T::ZERO;
                    for dy in 0..size {
                        for dx in 0..size {
                            s += a[i * input.len()
                                + (c * input.h + oy * size + dy) * input.w
                                + ox * size
                                + dx];
                        }
                    }
                    b[i * out_len + (c * oh + oy) * ow + ox] = s * inv;
                }
            }
        }
    }
}

/// (sum a, sum a b) of one plane, in eight lanes of T so the loop vectorizes (a plane holds
/// at most a few thousand values: f32 partial sums, then f64 across planes).
#[inline]
fn lane_sums<T: Real>(a: &[T], b: &[T]) -> (f64, f64) {
    let (mut s, mut p) = ([T::ZERO; 8], [T::ZERO; 8]);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            s[k] += x[k];
            p[k] += x[k] * y[k];
        }
    }
    let mut sum: f64 = s.iter().map(|v| v.to_f64()).sum();
    let mut prod: f64 = p.iter().map(|v| v.to_f64()).sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x.to_f64();
        prod += x.to_f64() * y.to_f64();
    }
    (sum, prod)
}

/// Batch normalization's saved values for the backward pass.
pub struct BatchNormSaved<'a, T> {
    /// The normalized input (n x c x plane).
    pub xhat: &'a mut [T],
    /// 1 / sqrt(var + eps) per channel.
    pub inv_std: &'a mut [T],
    /// Per channel: the sums of a pass, then (mean, 1/std); scratch, so a step allocates
    /// nothing.
    pub sums: &'a mut [(f64, f64)],
}

/// Variance offset of batch normalization (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// Weight of a batch in the running averages (PyTorch's default momentum).
pub const BN_MOMENTUM: f64 = 0.1;

/// Per channel: (sum a, sum a b) over the batch and the plane, the channels on several
/// threads if the batch is large.
fn channel_sums<T: Real>(shape: Shape, a: &[T], b: &[T], n: usize, out: &mut [(f64, f64)]) {
    let (plane, len) = (shape.plane(), shape.len());
    let one = |ch: usize| {
        let (mut s, mut p) = (0.0, 0.0);
        for i in 0..n {
            let r = i * len + ch * plane..i * len + (ch + 1) * plane;
            let (x, y) = lane_sums(&a[r.clone()], &b[r]);
            s += x;
            p += y;
        }
        (s, p)
    };
    let out = &mut out[..shape.c];
    if split(n * len) {
        out.par_iter_mut()
            .enumerate()
            .for_each(|(ch, o)| *o = one(ch));
    } else {
        out.iter_mut().enumerate().for_each(|(ch, o)| *o = one(ch));
    }
}

/// Batch normalization forward, per channel over the batch and the plane: with the batch's
/// statistics (`running` updated if given: mean, then unbiased variance, as PyTorch does) or,
/// in eval mode, with the running ones. `params` are gamma then beta; `stats` mean then var.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn batch_norm_forward<T: Real>(
    shape: Shape,
    params: &[T],
    stats: &mut [T],
    train: bool,
    update_running: bool,
    x: &[T],
    y: &mut [T],
    saved: BatchNormSaved<T>,
    n: usize,
) {
    let (c, plane, len) = (shape.c, shape.plane(), shape.len());
    let (gamma, beta) = params.split_at(c);
    let count = (n * plane) as f64;
    let sums = saved.sums;
    if train {
        channel_sums(shape, x, x, n, sums);
    }
    for ch in 0..c {
        let (mean, inv_std) = if train {
            let (sum, sq) = sums[ch];
            let mean = sum / count;
            let var = (sq / count - mean * mean).max(0.0);
            if update_running {
                let unbiased = if count > 1.0 {
                    var * count / (count - 1.0)
                } else {
                    var
                };
                let m = T::from_f64(BN_MOMENTUM);
                stats[ch] = (T::ONE - m) * stats[ch] + m * T::from_f64(mean);
                stats[c + ch] = (T::ONE - m) * stats[c + ch] + m * T::from_f64(unbiased);
            }
            (mean, 1.0 / (var + BN_EPS).sqrt())
        } else {
            let var = stats[c + ch].to_f64();
            (stats[ch].to_f64(), 1.0 / (var + BN_EPS).sqrt())
        };
        saved.inv_std[ch] = T::from_f64(inv_std);
        sums[ch] = (mean, inv_std);
    }
    let xhat = &mut saved.xhat[..n * len];
    let normalize = |(i, (hi, yi)): (usize, (&mut [T], &mut [T]))| {
        for ch in 0..c {
            let (m, s) = (T::from_f64(sums[ch].0), T::from_f64(sums[ch].1));
            let r = ch * plane..(ch + 1) * plane;
            let xi = &x[i * len..(i + 1) * len];
            for ((h, o), &v) in hi[r.clone()].iter_mut().zip(&mut yi[r.clone()]).zip(&xi[r]) {
                *h = (v - m) * s;
                *o = gamma[ch] * *h + beta[ch];
            }
        }
    };
    each_chunk_pair(xhat, &mut y[..n * len], len, split(n * len), normalize);
}

/// Batch normalization backward: adds dgamma, dbeta; writes dx. In train mode the batch
/// statistics depend on every sample: dx = gamma inv_std (dy - mean(dy) - xhat mean(dy xhat)).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn batch_norm_backward<T: Real>(
    shape: Shape,
    params: &[T],
    train: bool,
    xhat: &[T],
    inv_std: &[T],
    dy: &[T],
    grad: &mut [T],
    dx: Option<&mut [T]>,
    sums: &mut [(f64, f64)],
    n: usize,
) {
    let (c, plane, len) = (shape.c, shape.plane(), shape.len());
    let gamma = &params[..c];
    let count = (n * plane) as f64;
    channel_sums(shape, dy, xhat, n, sums);
    for (ch, &(sum_dy, sum_dy_xhat)) in sums.iter().enumerate().take(c) {
        grad[ch] += T::from_f64(sum_dy_xhat);
        grad[c + ch] += T::from_f64(sum_dy);
    }
    let Some(dx) = dx else {
        return;
    };
    // Per channel: gamma / std, and in train mode the means of dy and dy xhat.
    let coef = |ch: usize| {
        let (sum_dy, sum_dy_xhat) = sums[ch];
        let (mean_dy, mean_dy_xhat) = if train {
            (
                T::from_f64(sum_dy / count),
                T::from_f64(sum_dy_xhat / count),
            )
        } else {
            (T::ZERO, T::ZERO)
        };
        (gamma[ch] * inv_std[ch], mean_dy, mean_dy_xhat)
    };
    each_chunk(&mut dx[..n * len], len, split(n * len), |i, dxi| {
        for ch in 0..c {
            let (scale, mean_dy, mean_dy_xhat) = coef(ch);
            let r = i * len + ch * plane..i * len + (ch + 1) * plane;
            let out = &mut dxi[ch * plane..(ch + 1) * plane];
            for ((o, &d), &h) in out.iter_mut().zip(&dy[r.clone()]).zip(&xhat[r]) {
                *o = scale * (d - mean_dy - h * mean_dy_xhat);
            }
        }
    });
}
