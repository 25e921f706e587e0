//! The exact method (reconstructed, notes 1.4): integers (M, C, n) with
//! clamp((M x + C) >> n) == q(x) for every code x, n as small as possible; and the
//! certificates that it is exact and that n is minimal.
//!
//! For one code, equality means t 2^n <= M x + C <= t 2^n + 2^n - 1, only the left half if t
//! is the lowest output and only the right half if t is the highest (the clamp does the
//! rest). Over a run of codes with one output these are linear in x, so they hold on the run
//! iff they hold at its two ends: the staircase's runs stand for every code.

use super::exact::{Codes, Run, Truth};

/// The largest shift searched. Every M tried is 0 or a bound t-differences times 2^n over a
/// code distance (below 2^(16 + 62 + 1)), codes are below 2^33, and a solution's M and C fit
/// in i64: every product stays far below 2^127.
pub const MAX_SHIFT: u32 = 62;

/// The elimination certificate is O(runs^2): above this many runs (outputs of 13 bits or
/// more on wide ranges) minimality is left uncertified.
pub const CERTIFY_MAX_RUNS: usize = 4096;

/// An exact integer BN: q(x) = clamp((m x + c) >> n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    pub n: u32,
    pub m: i64,
    pub c: i64,
}

impl Exact {
    #[inline]
    pub fn apply(&self, x: i64, out: Codes) -> i64 {
        out.clamp((self.m as i128 * x as i128 + self.c as i128) >> self.n)
    }

    /// Signed bits of M.
    pub fn m_bits(&self) -> u32 {
        signed_bits(self.m as i128)
    }

    /// Signed bits of the accumulator M x + C over the codes (extreme at an end).
    pub fn accumulator_bits(&self, codes: Codes) -> u32 {
        let at = |x: i64| self.m as i128 * x as i128 + self.c as i128;
        signed_bits(at(codes.lo)).max(signed_bits(at(codes.hi)))
    }
}

/// The width of the smallest two's-complement integer holding v.
pub fn signed_bits(v: i128) -> u32 {
    let magnitude = if v < 0 { !v } else { v };
    129 - magnitude.leading_zeros()
}

/// floor(a / b) for b != 0.
fn floor_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -floor_div(-a, b)
}

/// The constraints of the staircase at shift n.
struct Constraints<'a> {
    runs: &'a [Run],
    out: Codes,
    n: u32,
}

impl Constraints<'_> {
    fn has_lower(&self, r: &Run) -> bool {
        r.t > self.out.lo
    }
    fn has_upper(&self, r: &Run) -> bool {
        r.t < self.out.hi
    }

    /// The interval [L, U] of C that works with M: L is the largest lower bound
    /// t 2^n - M x and U the smallest upper bound t 2^n + 2^n - 1 - M x. If L > U, the two
    /// codes that give them are a pair whose inequality M fails: the cut it makes.
    fn offsets(&self, m: i128) -> Result<(i128, i128), Cut> {
        let one = 1i128 << self.n;
        let (mut lo, mut hi) = (i128::MIN, i128::MAX);
        let (mut at_lo, mut at_hi) = ((0, 0), (0, 0));
        for r in self.runs {
            // M x is smallest at one end of the run and largest at the other.
            let (a, b) = (m * r.first as i128, m * r.last as i128);
            let ((min, x_min), (max, x_max)) = if a <= b {
                ((a, r.first), (b, r.last))
            } else {
                ((b, r.last), (a, r.first))
            };
            if self.has_lower(r) && r.t as i128 * one - min > lo {
                lo = r.t as i128 * one - min;
                at_lo = (r.t, x_min);
            }
            if self.has_upper(r) && r.t as i128 * one + one - 1 - max < hi {
                hi = r.t as i128 * one + one - 1 - max;
                at_hi = (r.t, x_max);
            }
            if lo > hi {
                let mut bounds = (i128::MIN, i128::MAX);
                self.pair(at_lo.0, at_lo.1, at_hi.0, at_hi.1, &mut bounds);
                return Err(if bounds.0 > i128::MIN {
                    Cut::AtLeast(bounds.0)
                } else {
                    Cut::AtMost(bounds.1)
                });
            }
        }
        Ok((lo, hi))
    }

    /// What the pair (lower constraint at code xa, upper constraint at code xb) says of M:
    /// subtracting them gives M (xa - xb) >= (ta - tb - 1) 2^n + 1.
    fn pair(&self, ta: i64, xa: i64, tb: i64, xb: i64, bounds: &mut (i128, i128)) {
        let k = (ta as i128 - tb as i128 - 1) * (1i128 << self.n) + 1;
        let d = xa as i128 - xb as i128;
        if d > 0 {
            bounds.0 = bounds.0.max(ceil_div(k, d));
        } else if d < 0 {
            bounds.1 = bounds.1.min(floor_div(k, d));
        } else if k > 0 {
            // One code with both constraints: ta == tb and k = 1 - 2^n <= 0, never here.
            *bounds = (1, 0);
        }
    }

    /// The M allowed by the pairs of the extreme codes with lower and upper constraints: a
    /// window holding every feasible M (each pair is a necessary condition), about
    /// 2^(n+1) / (code range) wide.
    fn window(&self) -> (i128, i128) {
        let ends = |want: &dyn Fn(&Run) -> bool| {
            let mut it = self.runs.iter().filter(|r| want(r));
            let first = it.next().map(|r| (r.t, r.first));
            let last = self
                .runs
                .iter()
                .rev()
                .find(|r| want(r))
                .map(|r| (r.t, r.last));
            [first, last]
        };
        let lower = ends(&|r| self.has_lower(r));
        let upper = ends(&|r| self.has_upper(r));
        let mut bounds = (i128::MIN, i128::MAX);
        for &(ta, xa) in lower.iter().flatten() {
            for &(tb, xb) in upper.iter().flatten() {
                self.pair(ta, xa, tb, xb, &mut bounds);
            }
        }
        bounds
    }

    /// Every M that works, exactly: eliminating C (Fourier-Motzkin) leaves one inequality per
    /// (lower, upper) pair of codes, and for integer M a C exists iff all hold. For two runs
    /// the bound (K / d) is extreme at the extreme distances d, so run ends suffice.
    /// O(runs^2): the independent certificate, not the search.
    fn feasible_m(&self) -> (i128, i128) {
        let mut bounds = (i128::MIN, i128::MAX);
        for a in self.runs.iter().filter(|r| self.has_lower(r)) {
            for b in self.runs.iter().filter(|r| self.has_upper(r)) {
                for xa in [a.first, a.last] {
                    for xb in [b.first, b.last] {
                        self.pair(a.t, xa, b.t, xb, &mut bounds);
                    }
                }
            }
        }
        bounds
    }
}

/// C in [lo, hi] closest to 0.
fn smallest_offset((lo, hi): (i128, i128)) -> i128 {
    0i128.clamp(lo, hi)
}

/// What an infeasible M tells of every feasible one.
#[derive(Debug, Clone, Copy)]
enum Cut {
    AtLeast(i128),
    AtMost(i128),
}

/// What the search did: the solution, and how many candidate M it tried.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub exact: Option<Exact>,
    pub candidates: u64,
}

/// The minimal-shift search: for n = 0, 1, ..., cutting planes over M. Start at the M of the
/// window (below) nearest 0; an M that admits no C fails one pair inequality (the codes
/// giving L and U), which bounds every feasible M from one side, strictly past this M: move
/// to that bound. The feasible M form an interval (U - L is concave in M), so the first
/// feasible M reached is the one nearest 0, and bounds that cross prove n infeasible. The
/// first feasible n wins, with the C nearest 0.
pub fn search(runs: &[Run], out: Codes) -> Search {
    let mut candidates = 0;
    for n in 0..=MAX_SHIFT {
        let k = Constraints { runs, out, n };
        let (mut lo, mut hi) = k.window();
        let mut m = 0i128.clamp(lo, hi.max(lo));
        // Which side of 0 the feasible M lie on, once a cut has said so.
        let mut side = 0;
        while lo <= hi {
            candidates += 1;
            match k.offsets(m) {
                Ok(cs) => {
                    let c = smallest_offset(cs);
                    if let (Ok(m), Ok(c)) = (i64::try_from(m), i64::try_from(c)) {
                        return Search {
                            exact: Some(Exact { n, m, c }),
                            candidates,
                        };
                    }
                    break;
                }
                Err(Cut::AtLeast(b)) => {
                    lo = lo.max(b);
                    if side < 0 {
                        break;
                    }
                    side = 1;
                    m = lo;
                }
                Err(Cut::AtMost(b)) => {
                    hi = hi.min(b);
                    if side > 0 {
                        break;
                    }
                    side = -1;
                    m = hi;
                }
            }
        }
    }
    Search {
        exact: None,
        candidates,
    }
}

/// Every integer M that admits a C at shift n, as an interval (empty if lo > hi): the exact
/// elimination over every pair of codes.
pub fn admissible_m(runs: &[Run], out: Codes, n: u32) -> (i128, i128) {
    Constraints { runs, out, n }.feasible_m()
}

/// The window of M the search starts from at shift n (from the extreme codes' pairs).
pub fn window(runs: &[Run], out: Codes, n: u32) -> (i128, i128) {
    Constraints { runs, out, n }.window()
}

/// The certificate of minimality, by the exact elimination (not the window): no M works at
/// n - 1 (then none works below either: (M, C, n) would give (2M, 2C, n + 1)), and the found M
/// is among those that work at n. None above [`CERTIFY_MAX_RUNS`] runs.
pub fn certify_minimal(runs: &[Run], out: Codes, e: &Exact) -> Option<bool> {
    if runs.len() > CERTIFY_MAX_RUNS {
        return None;
    }
    let at = |n: u32| admissible_m(runs, out, n);
    let (lo, hi) = at(e.n);
    let found = lo <= e.m as i128 && e.m as i128 <= hi;
    Some(
        found
            && (e.n == 0 || {
                let (lo, hi) = at(e.n - 1);
                lo > hi
            }),
    )
}

/// The exactness certificate for any range, from the runs: both q and the integer formula are
/// monotone in x, so the formula equals q on a run iff it does at the run's two ends (the
/// run ends were found by exact evaluation).
pub fn certify_by_runs(runs: &[Run], out: Codes, e: &Exact) -> bool {
    runs.iter()
        .all(|r| e.apply(r.first, out) == r.t && e.apply(r.last, out) == r.t)
}

/// Codes where the integer formula differs from the exact output, checked one by one.
pub fn mismatches(truth: &Truth, codes: Codes, e: &Exact) -> u64 {
    let out = truth.folded.out;
    (codes.lo..=codes.hi)
        .filter(|&x| e.apply(x, out) != truth.q(x))
        .count() as u64
}
