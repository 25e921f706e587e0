//! The layers' forward and backward kernels, one sample batch at a time. Activations are
//! row-major per sample, channels first (`n x c x h x w`); a layer's parameters are a slice of
//! the network's flat buffer, weights then biases.

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

/// Unfolds one sample (im2col): `cols` is `patch x out_pixels` with rows `stride` apart (a
/// sample's block of the batch's unfolded matrix), zero where the kernel overhangs the
/// padding.
pub fn im2col<T: Real>(g: &ConvGeometry, x: &[T], cols: &mut [T], stride: usize) {
    let pixels = g.output().plane();
    for r in 0..g.patch() {
        let row = &mut cols[r * stride..r * stride + pixels];
        row.fill(T::ZERO);
        g.row_spans(r, |t0, s0, len| {
            if g.stride == 1 {
                row[t0..t0 + len].copy_from_slice(&x[s0..s0 + len]);
            } else {
                for (k, v) in row[t0..t0 + len].iter_mut().enumerate() {
                    *v = x[s0 + k * g.stride];
                }
            }
        });
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

/// Dense forward: y = x W^T + b for a batch (`x`: n x inputs, `w`: outputs x inputs).
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
    for i in 0..n {
        for o in 0..c {
            let src = &wide[o * width + i * pixels..][..pixels];
            let dst = &mut y[i * out.len() + o * pixels..][..pixels];
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + b[o]);
        }
    }
}

/// Convolution backward: adds dW and db; writes dx if asked. `wide` (out_channels x n
/// pixels) and `unfolded` (patch x n pixels) are scratch.
#[allow(clippy::too_many_arguments)]
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
    for i in 0..n {
        for o in 0..c {
            wide[o * width + i * pixels..][..pixels]
                .copy_from_slice(&dy[i * out.len() + o * pixels..][..pixels]);
        }
    }
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
        for i in 0..n {
            let dxi = &mut dx[i * inp..(i + 1) * inp];
            dxi.fill(T::ZERO);
            col2im(g, &unfolded[i * pixels..], width, dxi);
        }
    }
}

/// Max pooling over `size x size` windows with the same stride; `arg` records the winner.
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
    for i in 0..n {
        let xi = &x[i * input.len()..(i + 1) * input.len()];
        for c in 0..input.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best = (c * input.h + oy * size) * input.w + ox * size;
                    for dy in 0..size {
                        for dx in 0..size {
                            let s = (c * input.h + oy * size + dy) * input.w + ox * size + dx;
                            if xi[s] > xi[best] {
                                best = s;
                            }
                        }
                    }
                    let o = i * out_len + (c * oh + oy) * ow + ox;
                    y[o] = xi[best];
                    arg[o] = best as u32;
                }
            }
        }
    }
}

/// Max pooling backward: each output's gradient goes to its window's winner.
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
        // a = dy (outputs), b = dx (inputs).
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

/// Batch normalization's saved values for the backward pass.
pub struct BatchNormSaved<'a, T> {
    /// The normalized input (n x c x plane).
    pub xhat: &'a mut [T],
    /// 1 / sqrt(var + eps) per channel.
    pub inv_std: &'a mut [T],
}

/// Variance offset of batch normalization (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// Weight of a batch in the running averages (PyTorch's default momentum).
pub const BN_MOMENTUM: f64 = 0.1;

/// Batch normalization forward, per channel over the batch and the plane: with the batch's
/// statistics (`running` updated if given: mean, then unbiased variance, as PyTorch does) or,
/// in eval mode, with the running ones. `params` are gamma then beta; `stats` mean then var.
#[allow(clippy::too_many_arguments)]
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
    for ch in 0..c {
        let (mean, inv_std) = if train {
            let mut sum = 0.0;
            let mut sq = 0.0;
            for i in 0..n {
                for &v in &x[i * len + ch * plane..i * len + (ch + 1) * plane] {
                    sum += v.to_f64();
                    sq += v.to_f64() * v.to_f64();
                }
            }
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
        let (m, s) = (T::from_f64(mean), T::from_f64(inv_std));
        for i in 0..n {
            let range = i * len + ch * plane..i * len + (ch + 1) * plane;
            for ((h, o), &v) in saved.xhat[range.clone()]
                .iter_mut()
                .zip(&mut y[range.clone()])
                .zip(&x[range])
            {
                *h = (v - m) * s;
                *o = gamma[ch] * *h + beta[ch];
            }
        }
    }
}

/// Batch normalization backward: adds dgamma, dbeta; writes dx. In train mode the batch
/// statistics depend on every sample: dx = gamma inv_std (dy - mean(dy) - xhat mean(dy xhat)).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Real>(
    shape: Shape,
    params: &[T],
    train: bool,
    xhat: &[T],
    inv_std: &[T],
    dy: &[T],
    grad: &mut [T],
    dx: Option<&mut [T]>,
    n: usize,
) {
    let (c, plane, len) = (shape.c, shape.plane(), shape.len());
    let gamma = &params[..c];
    let count = (n * plane) as f64;
    let mut dx = dx;
    for ch in 0..c {
        let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
        for i in 0..n {
            let range = i * len + ch * plane..i * len + (ch + 1) * plane;
            for (&d, &h) in dy[range.clone()].iter().zip(&xhat[range]) {
                sum_dy += d.to_f64();
                sum_dy_xhat += d.to_f64() * h.to_f64();
            }
        }
        grad[ch] += T::from_f64(sum_dy_xhat);
        grad[c + ch] += T::from_f64(sum_dy);
        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        let scale = gamma[ch] * inv_std[ch];
        let (mean_dy, mean_dy_xhat) = if train {
            (
                T::from_f64(sum_dy / count),
                T::from_f64(sum_dy_xhat / count),
            )
        } else {
            (T::ZERO, T::ZERO)
        };
        for i in 0..n {
            let range = i * len + ch * plane..i * len + (ch + 1) * plane;
            for ((o, &d), &h) in dx[range.clone()]
                .iter_mut()
                .zip(&dy[range.clone()])
                .zip(&xhat[range])
            {
                *o = scale * (d - mean_dy - h * mean_dy_xhat);
            }
        }
    }
}
