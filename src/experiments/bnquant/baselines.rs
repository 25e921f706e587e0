//! The baselines at the same bit budget (notes 1.5; applying them to batch norm is our
//! reconstruction): naive separate rounding of A and B, TFLite / gemmlowp requantization
//! (double rounding), and float arithmetic as a runtime does it.

use super::exact::{Codes, Folded, Truth};

/// gemmlowp `SaturatingRoundingDoublingHighMul` (fixedpoint/fixedpoint.h, the ARM VQRDMULH
/// computation): round(a b / 2^31) with the nudge 2^30 (1 - 2^30 for a negative product)
/// and C's division truncating toward zero, so ties go up; saturates the one overflow.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: x / 2^exponent rounded to nearest, ties away from zero.
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    assert!(exponent <= 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `QuantizeMultiplier`: m = q_fixed 2^(shift - 31) with q_fixed = round(q 2^31),
/// q = frexp(m) in [0.5, 1); the carry when q rounds to 2^31 halves q_fixed and bumps the
/// shift; multipliers below 2^-32 become 0.
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    // Below 2^-33 the shift is below -31 even after a carry: TFLite's zero.
    if m.abs() < 2f64.powi(-33) {
        return (0, 0);
    }
    let (q, mut shift) = frexp(m);
    let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
    if q_fixed == 1 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q_fixed as i32, shift)
}

/// frexp for finite m with |m| >= 2^-33: m = q 2^e with |q| in [0.5, 1).
fn frexp(m: f64) -> (f64, i32) {
    let mut e = m.abs().log2().floor() as i32 + 1;
    let mut q = m / 2f64.powi(e);
    // log2 can be off by one next to a power of two.
    while q.abs() >= 1.0 {
        q /= 2.0;
        e += 1;
    }
    while q.abs() < 0.5 {
        q *= 2.0;
        e -= 1;
    }
    (q, e)
}

/// TFLite `MultiplyByQuantizedMultiplier` (the double-rounding kernel): None if x 2^left
/// leaves int32 (TFLite would overflow silently) or the shift leaves gemmlowp's range.
pub fn multiply_by_quantized_multiplier(x: i64, q_fixed: i32, shift: i32) -> Option<i64> {
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    let shifted = i32::try_from(x.checked_mul(1i64 << left)?).ok()?;
    (right <= 31).then(|| {
        rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(shifted, q_fixed),
            right,
        ) as i64
    })
}

/// A baseline's output for every code of a channel.
pub trait Baseline {
    /// None where the baseline cannot run (an int32 overflow).
    fn q(&self, x: i64) -> Option<i64>;
}

/// Naive separate rounding to n fractional bits: M = round(A 2^n), C = round(B 2^n), and
/// q = clamp((M x + C + 2^(n-1)) >> n): each rounded on its own, then the sum rounded.
pub struct Naive {
    m: i128,
    c: i128,
    n: u32,
    out: Codes,
}

impl Naive {
    pub fn new(f: &Folded, n: u32) -> Naive {
        let scale = 2f64.powi(n as i32);
        let half = if n == 0 { 0 } else { 1i128 << (n - 1) };
        Naive {
            m: (f.a * scale).round() as i128,
            c: (f.b * scale).round() as i128 + half,
            n,
            out: f.out,
        }
    }
}

impl Baseline for Naive {
    fn q(&self, x: i64) -> Option<i64> {
        Some(self.out.clamp((self.m * x as i128 + self.c) >> self.n))
    }
}

/// TFLite-style: the bias in accumulator units added first, acc = s (x 2^p) + round(2^p
/// (B - z_y) / |A|) in int32 (s the sign of A, folded into the weights in a real model), then
/// the q31 multiplier |A| / 2^p with its double rounding, then the output zero point and the
/// clamp. p = 0 is the bias in input units; p > 0 a pre-shifted accumulator. A = 0 (gamma = 0)
/// has no bias in input units: a converter emits the constant round(B).
pub struct Tflite {
    sign: i64,
    bias: Option<i64>,
    constant: Option<i64>,
    preshift: u32,
    multiplier: (i32, i32),
    zero: i64,
    out: Codes,
}

impl Tflite {
    pub fn new(f: &Folded, zero: i64, preshift: u32) -> Tflite {
        let scale = 2f64.powi(preshift as i32);
        let b = ((f.b - zero as f64) * scale / f.a.abs()).round();
        Tflite {
            sign: if f.a < 0.0 { -1 } else { 1 },
            bias: (b.abs() < 2147483648.0).then_some(b as i64),
            constant: (f.a == 0.0).then(|| f.out.clamp(f.b.round() as i128)),
            preshift,
            multiplier: quantize_multiplier(f.a.abs() / scale),
            zero,
            out: f.out,
        }
    }
}

impl Baseline for Tflite {
    fn q(&self, x: i64) -> Option<i64> {
        if let Some(c) = self.constant {
            return Some(c);
        }
        // Wide arithmetic: codes up to 2^32 shifted by up to 40 bits.
        let wide = self.sign as i128 * ((x as i128) << self.preshift) + self.bias? as i128;
        let acc = i32::try_from(wide).ok()?;
        let (q, shift) = self.multiplier;
        let y = multiply_by_quantized_multiplier(acc as i64, q, shift)?;
        Some(self.out.clamp(y as i128 + self.zero as i128))
    }
}

/// Float arithmetic as a runtime does it: x A + B in f32 (two roundings), then the rounding
/// rule applied exactly to that value.
pub struct Float32(pub Folded);

impl Baseline for Float32 {
    fn q(&self, x: i64) -> Option<i64> {
        let f = &self.0;
        let y = (x as f32) * (f.a as f32) + (f.b as f32);
        Some(f.out.clamp(f.rounding.apply(y as f64) as i128))
    }
}

/// The same in f64.
pub struct Float64(pub Folded);

impl Baseline for Float64 {
    fn q(&self, x: i64) -> Option<i64> {
        let f = &self.0;
        let y = (x as f64) * f.a + f.b;
        Some(f.out.clamp(f.rounding.apply(y) as i128))
    }
}

/// How a baseline fares on a channel, over every code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mismatch {
    pub codes: u64,
    /// Codes whose output differs from the exact one.
    pub count: u64,
    /// The largest difference, in output steps (LSB).
    pub max_error: u64,
    /// Codes where the baseline cannot run (int32 overflow); not counted as mismatches.
    pub overflow: u64,
}

/// Compares a baseline with the exact outputs over every code.
pub fn compare(baseline: &dyn Baseline, truth: &Truth, codes: Codes) -> Mismatch {
    let mut m = Mismatch {
        codes: codes.count(),
        ..Default::default()
    };
    for x in codes.lo..=codes.hi {
        match baseline.q(x) {
            None => m.overflow += 1,
            Some(y) => {
                let d = y.abs_diff(truth.q(x));
                if d > 0 {
                    m.count += 1;
                    m.max_error = m.max_error.max(d);
                }
            }
        }
    }
    m
}
