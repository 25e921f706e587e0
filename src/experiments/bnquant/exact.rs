//! The ground truth: q(x) = clamp(round(A x + B)) on the exact values of the f64 numbers A
//! and B, in i128 fixed point (never floats), and its staircase over a code range.
//!
//! Folding (notes 1.3, reconstructed): inference batch norm y = gamma (v - mu) / sigma + beta
//! between an input code x (scale s_x, zero point z_x) and a k-bit output code (s_y, z_y) is
//! q(x) = clamp(round(A x + B)) with A = gamma s_x / (sigma s_y) and
//! B = (beta - gamma mu / sigma - gamma s_x z_x / sigma) / s_y + z_y.

use serde::{Deserialize, Serialize};

/// How a value halfway between two integers is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// floor(v + 1/2): ties toward +infinity.
    HalfUp,
    /// Ties to the even neighbour (IEEE's default).
    HalfEven,
}

impl Rounding {
    pub fn name(self) -> &'static str {
        match self {
            Rounding::HalfUp => "half-up",
            Rounding::HalfEven => "half-even",
        }
    }

    /// The rule applied exactly to a floating-point value (the f32 and f64 baselines).
    pub fn apply(self, v: f64) -> f64 {
        match self {
            // v - floor(v) is exact for a float: no second rounding in v + 0.5.
            Rounding::HalfUp => {
                let f = v.floor();
                if v - f >= 0.5 { f + 1.0 } else { f }
            }
            Rounding::HalfEven => v.round_ties_even(),
        }
    }
}

/// An inclusive range of integer codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Codes {
    pub lo: i64,
    pub hi: i64,
}

impl Codes {
    pub const INT8: Codes = Codes { lo: -128, hi: 127 };
    pub const UINT8: Codes = Codes { lo: 0, hi: 255 };
    pub const INT16: Codes = Codes {
        lo: -32768,
        hi: 32767,
    };
    pub const INT32: Codes = Codes {
        lo: i32::MIN as i64,
        hi: i32::MAX as i64,
    };

    /// The k-bit output codes: [0, 2^k - 1] or [-2^(k-1), 2^(k-1) - 1].
    pub fn output(bits: u32, signed: bool) -> Codes {
        if signed {
            Codes {
                lo: -(1 << (bits - 1)),
                hi: (1 << (bits - 1)) - 1,
            }
        } else {
            Codes {
                lo: 0,
                hi: (1 << bits) - 1,
            }
        }
    }

    pub fn count(&self) -> u64 {
        (self.hi - self.lo + 1) as u64
    }

    pub fn clamp(&self, v: i128) -> i64 {
        v.clamp(self.lo as i128, self.hi as i128) as i64
    }
}

/// The largest |A| and |B| accepted for an 8-bit output: beyond, a k <= 16 bit output
/// saturates for every code but a few, and no batch norm of a real network comes near. A
/// k-bit output scales them by 2^(k-8) <= 2^8, so the arithmetic below sees less than 2^48.
pub const MAX_MAGNITUDE: f64 = 1099511627776.0; // 2^40

/// What the exact arithmetic handles: below 2^52 a nonzero f64's last mantissa bit is a
/// fraction (exponent <= -1), so the coarser term sits on a grid of at most 1/2 with no shift,
/// and every intermediate stays below 2^127.
const EXACT_LIMIT: f64 = 4503599627370496.0; // 2^52

/// Codes are at most 2^32 in magnitude (int32 accumulators).
pub const MAX_CODE: i64 = 1 << 32;

/// A channel folded to q(x) = clamp(round(A x + B)) into `out`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Folded {
    pub a: f64,
    pub b: f64,
    pub out: Codes,
    pub rounding: Rounding,
}

/// The mantissa and exponent of a finite nonzero f64: v = m 2^e exactly.
fn decode(v: f64) -> Option<(i128, i32)> {
    if v == 0.0 {
        return None;
    }
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as i128;
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1i128 << 52), biased - 1075)
    };
    Some((if v < 0.0 { -m } else { m }, e))
}

/// floor(v / 2^s) and whether the division left a remainder.
fn shift_down(v: i128, s: u32) -> (i128, bool) {
    if s >= 127 {
        (if v < 0 { -1 } else { 0 }, v != 0)
    } else {
        (v >> s, v & ((1i128 << s) - 1) != 0)
    }
}

/// floor(A x + B + 1/2) for every code x, exactly: the terms A x, B and 1/2 on the grid 2^c
/// of the coarser of A x and B. The finer term is floored to the grid with a sticky bit: a
/// grid multiple plus r in [0, 2^c) crosses no integer (and no half-integer) that the exact
/// sum would not, since 2^c <= 1/2 divides both; the sum is a tie (exactly k + 1/2) only if
/// nothing was floored away.
#[derive(Debug, Clone, Copy)]
pub struct ExactAffine {
    /// None: |A x + B| < 2^-14 for every code, so the rounded value is 0 and never a tie.
    grid: Option<Grid>,
    rounding: Rounding,
}

#[derive(Debug, Clone, Copy)]
struct Grid {
    /// -c: fractional bits of the grid.
    frac: u32,
    a: i128,
    /// A x on the grid: (a x) << a_up; below it: floor((a x) / 2^a_down) with a sticky bit.
    a_up: u32,
    a_down: u32,
    /// B + 1/2 on the grid (floored), and whether flooring dropped anything.
    q: i128,
    q_sticky: bool,
}

impl ExactAffine {
    /// A and B must be finite with magnitudes below 2^52 (the inputs are checked against
    /// [`MAX_MAGNITUDE`] at 8 bits: an input error there).
    pub fn new(a: f64, b: f64, rounding: Rounding) -> ExactAffine {
        assert!(
            a.abs() < EXACT_LIMIT && b.abs() < EXACT_LIMIT,
            "A = {a:e}, B = {b:e}: the caller keeps them below 2^52"
        );
        let (da, db) = (decode(a), decode(b));
        let top = match (da, db) {
            (None, None) => None,
            (Some((_, ea)), None) => Some(ea),
            (None, Some((_, eb))) => Some(eb),
            (Some((_, ea)), Some((_, eb))) => Some(ea.max(eb)),
        };
        // Below 2^-100 for the coarser exponent: |a x| < 2^(53+32-100), |B| < 2^(53-100).
        let grid = top.filter(|&t| t >= -100).map(|top| {
            let c = top.min(-1);
            let frac = (-c) as u32;
            let (ma, ea) = da.unwrap_or((0, c));
            let (a_up, a_down) = if ea >= c {
                ((ea - c) as u32, 0)
            } else {
                (0, (c - ea) as u32)
            };
            let (b_grid, q_sticky) = match db {
                None => (0, false),
                Some((mb, eb)) if eb >= c => (mb << (eb - c), false),
                Some((mb, eb)) => shift_down(mb, (c - eb) as u32),
            };
            Grid {
                frac,
                a: ma,
                a_up,
                a_down,
                q: b_grid + (1i128 << (frac - 1)),
                q_sticky,
            }
        });
        ExactAffine { grid, rounding }
    }

    /// round(A x + B) under the rounding rule, exactly (not clamped).
    #[inline]
    pub fn round(&self, x: i64) -> i128 {
        let Some(g) = &self.grid else { return 0 };
        let p = g.a * x as i128;
        let (p, p_sticky) = if g.a_down == 0 {
            (p << g.a_up, false)
        } else {
            shift_down(p, g.a_down)
        };
        let sum = p + g.q;
        let floor = sum >> g.frac;
        if self.rounding == Rounding::HalfEven
            && floor & 1 == 1
            && !p_sticky
            && !g.q_sticky
            && sum & ((1i128 << g.frac) - 1) == 0
        {
            // A x + B = (floor - 1) + 1/2 exactly: the even neighbour is below.
            floor - 1
        } else {
            floor
        }
    }
}

/// The exact quantized output of a folded channel, code by code.
#[derive(Debug, Clone, Copy)]
pub struct Truth {
    pub folded: Folded,
    exact: ExactAffine,
}

impl Truth {
    pub fn new(folded: Folded) -> Truth {
        Truth {
            exact: ExactAffine::new(folded.a, folded.b, folded.rounding),
            folded,
        }
    }

    #[inline]
    pub fn q(&self, x: i64) -> i64 {
        self.folded.out.clamp(self.exact.round(x))
    }
}

/// A maximal run of codes with the same output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub t: i64,
    pub first: i64,
    pub last: i64,
}

/// The staircase of q over `codes` as runs, found with a float guess for each step and
/// exact evaluations only: q is monotone in x (A x + B is, and so are rounding and
/// clamping), so the codes of one output value form one interval and a galloping search
/// from the guess finds its end exactly, whatever the guess.
pub fn staircase(truth: &Truth, codes: Codes) -> Vec<Run> {
    let f = truth.folded;
    let mut runs = Vec::new();
    let mut start = codes.lo;
    loop {
        let t = truth.q(start);
        let at_clamp = (f.a > 0.0 && t == f.out.hi) || (f.a < 0.0 && t == f.out.lo);
        let guess = if f.a == 0.0 || at_clamp {
            codes.hi
        } else {
            // Where A x + B crosses the next half-integer.
            let edge = (t as f64 + 0.5 * f.a.signum() - f.b) / f.a;
            if edge.is_finite() {
                (edge.ceil() - 1.0).clamp(start as f64, codes.hi as f64) as i64
            } else {
                codes.hi
            }
        };
        let last = run_end(truth, t, start, guess, codes.hi);
        runs.push(Run {
            t,
            first: start,
            last,
        });
        if last == codes.hi {
            return runs;
        }
        start = last + 1;
    }
}

/// The last code of the run of value t starting at `start`, by galloping from `guess`.
fn run_end(truth: &Truth, t: i64, start: i64, guess: i64, hi: i64) -> i64 {
    let same = |x: i64| truth.q(x) == t;
    // `good` has value t; `bad` does not (or lies past hi).
    let (mut good, mut bad) = if same(guess) {
        let mut good = guess;
        let mut step = 1i64;
        loop {
            let probe = good.saturating_add(step);
            if probe > hi {
                if same(hi) {
                    return hi;
                }
                break (good, hi);
            }
            if same(probe) {
                good = probe;
                step = step.saturating_mul(2);
            } else {
                break (good, probe);
            }
        }
    } else {
        (start, guess)
    };
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if same(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}
