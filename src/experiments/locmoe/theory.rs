//! Part 1: the LocMoE and LocMoE+ lemmas and theorems without training, each by Monte Carlo
//! against its closed form (notes sections 2.3 and 3.3).
//!
//! Every row is one point of one check: `check` names it, `x` is the point (delta, T or C),
//! `param` a second setting (the expert count, p or q), `monte_carlo` the estimate with its
//! standard error, `exact` the closed form, `lower` / `upper` the paper's stated bounds
//! where they apply (empty where they do not).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model::grap_cosine_row;
use super::routing::{Capacity, Router, Scores, TokenChoice};
use crate::random::fill_standard_normal;
use crate::table::Cell;

/// One row of the theory table.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub check: &'static str,
    pub dim: usize,
    pub param: f64,
    pub x: f64,
    pub monte_carlo: f64,
    pub mc_se: f64,
    pub exact: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl Point {
    pub fn cells(&self) -> Vec<Cell> {
        let opt = |v: Option<f64>| v.map_or(Cell::Missing, Cell::Real);
        // A capacity with no discriminative draw at all is undefined (empty), not infinite.
        let real = |v: f64| opt(v.is_finite().then_some(v));
        vec![
            Cell::Text(self.check.into()),
            Cell::Int(self.dim as i64),
            Cell::Real(self.param),
            Cell::Real(self.x),
            real(self.monte_carlo),
            real(self.mc_se),
            Cell::Real(self.exact),
            opt(self.lower),
            opt(self.upper),
        ]
    }
}

pub const LEMMA1: &str = "lemma1";
pub const LEMMA2: &str = "lemma2";
pub const LEMMA3: &str = "lemma3";
pub const THEOREM1: &str = "theorem1";
pub const TCR: &str = "theorem5_tcr";
pub const ECR: &str = "theorem5_ecr";

/// p_delta = P(|cos(u, w)| >= delta) for u uniform on the sphere S^{d-1} and a fixed unit w:
/// 1 - I_{delta^2}(1/2, (d-1)/2) (LocMoE Lemma 3), computed as I_{1-delta^2}((d-1)/2, 1/2)
/// so that small values keep their digits.
pub fn p_delta(d: usize, delta: f64) -> f64 {
    if delta <= 0.0 {
        return 1.0;
    }
    if delta >= 1.0 {
        return 0.0;
    }
    puruspe::betai((d as f64 - 1.0) / 2.0, 0.5, 1.0 - delta * delta)
}

/// The exponent delta^2 d / (2 - delta^2) of LocMoE Theorem 1's large-d forms.
fn exponent(d: usize, delta: f64) -> f64 {
    delta * delta * d as f64 / (2.0 - delta * delta)
}

/// Theorem 1's erfc form of the capacity bound: 1 / (n erfc(sqrt(delta^2 d / (2 - delta^2)))).
pub fn capacity_erfc(n: usize, d: usize, delta: f64) -> f64 {
    1.0 / (n as f64 * puruspe::erfc(exponent(d, delta).sqrt()))
}

/// Theorem 1's exponential form (also LocMoE+ Remark 7): exp(delta^2 d / (2 - delta^2)) / n.
pub fn capacity_exp(n: usize, d: usize, delta: f64) -> f64 {
    exponent(d, delta).exp() / n as f64
}

/// A token uniform on the unit sphere.
fn unit(rng: &mut ChaCha8Rng, out: &mut [f64]) {
    fill_standard_normal(rng, out);
    let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
    out.iter_mut().for_each(|v| *v /= norm);
}

/// The delta grid of a dimension: 1/2, 1, 3/2, 2, 5/2 and 3 over sqrt(d).
pub fn deltas(d: usize) -> [f64; 6] {
    let s = (d as f64).sqrt();
    [0.5 / s, 1.0 / s, 1.5 / s, 2.0 / s, 2.5 / s, 3.0 / s]
}

/// Lemma 3 and Theorem 1 at dimension d with n experts (GrAP gates; d a multiple of n for
/// Theorem 1, whose tokens are routed; Lemma 3 uses the first coordinate).
pub fn sphere_checks(d: usize, n: usize, samples: usize, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let grid = deltas(d);
    let mut first = vec![0usize; grid.len()];
    let mut assigned = vec![0usize; grid.len()];
    let mut u = vec![0.0; d];
    let mut cos = vec![0.0; n];
    let routed = d.is_multiple_of(n);
    for _ in 0..samples {
        unit(rng, &mut u);
        for (k, &delta) in grid.iter().enumerate() {
            if u[0].abs() >= delta {
                first[k] += 1;
            }
        }
        if routed {
            grap_cosine_row(&u, &mut cos);
            let top = cos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for (k, &delta) in grid.iter().enumerate() {
                if top >= delta {
                    assigned[k] += 1;
                }
            }
        }
    }
    let m = samples as f64;
    let mut out = Vec::new();
    for (k, &delta) in grid.iter().enumerate() {
        let p = first[k] as f64 / m;
        let exact = p_delta(d, delta);
        out.push(Point {
            check: LEMMA3,
            dim: d,
            param: n as f64,
            x: delta,
            monte_carlo: p,
            mc_se: (p * (1.0 - p) / m).sqrt(),
            exact,
            lower: Some(puruspe::erfc(exponent(d, delta).sqrt())),
            upper: None,
        });
        if routed {
            // p_i: the chance that a token routed to expert i (its top-1) is discriminative
            // for it, cos >= delta; the capacity is the expected tokens before one is.
            let pi = assigned[k] as f64 / m;
            let se_p = (pi * (1.0 - pi) / m).sqrt();
            out.push(Point {
                check: THEOREM1,
                dim: d,
                param: n as f64,
                x: delta,
                monte_carlo: 1.0 / pi,
                mc_se: se_p / (pi * pi),
                exact: 1.0 / (n as f64 * exact),
                lower: Some(capacity_exp(n, d, delta)),
                upper: Some(capacity_erfc(n, d, delta)),
            });
        }
    }
    out
}

/// Lemma 1: the top-1 expert of equal-norm gates is the one of smallest angle. Computed two
/// ways: the largest GrAP logit omega_i . x with the explicit gate matrix (with and without
/// LocMoE's ReLU, whose all-negative tokens tie at 0), against the smallest arccos of the
/// cosines. Rows: x = 0 without ReLU, 1 with; exact = 1 and 1 - 2^-n (ties go to expert 0,
/// right one time in n).
pub fn lemma1(d: usize, n: usize, samples: usize, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let block = d / n;
    let omega: Vec<f64> = (0..n * d)
        .map(|k| {
            if k % d / block == k / d {
                n as f64 / d as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut u = vec![0.0; d];
    let mut cos = vec![0.0; n];
    let (mut plain, mut relu) = (0usize, 0usize);
    let argmax = |v: &[f64]| {
        let mut best = 0;
        for i in 1..v.len() {
            if v[i] > v[best] {
                best = i;
            }
        }
        best
    };
    for _ in 0..samples {
        fill_standard_normal(rng, &mut u);
        let logits: Vec<f64> = (0..n)
            .map(|i| {
                omega[i * d..(i + 1) * d]
                    .iter()
                    .zip(&u)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        grap_cosine_row(&u, &mut cos);
        let angles: Vec<f64> = cos.iter().map(|c| -c.clamp(-1.0, 1.0).acos()).collect();
        let smallest = argmax(&angles);
        plain += usize::from(argmax(&logits) == smallest);
        let gated: Vec<f64> = logits.iter().map(|l| l.max(0.0)).collect();
        relu += usize::from(argmax(&gated) == smallest);
    }
    let m = samples as f64;
    let tie = 0.5f64.powi(n as i32);
    [(0.0, plain, 1.0), (1.0, relu, 1.0 - tie + tie / n as f64)]
        .into_iter()
        .map(|(x, hits, exact)| {
            let p = hits as f64 / m;
            Point {
                check: LEMMA1,
                dim: d,
                param: n as f64,
                x,
                monte_carlo: p,
                mc_se: (p * (1.0 - p) / m).sqrt(),
                exact,
                lower: None,
                upper: None,
            }
        })
        .collect()
}

/// Lemma 2: isotropic tokens through GrAP top-1 load the experts uniformly; the load's
/// coefficient of variation (population sd over experts / mean) then has E[CV^2] = (E - 1) / T
/// exactly (multinomial counts). monte_carlo = sqrt(mean CV^2) over the repetitions.
pub fn lemma2(
    d: usize,
    n: usize,
    tokens: &[usize],
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Point> {
    let router = TokenChoice {
        k: 1,
        drop: super::routing::Drop::Position,
    };
    let mut out = Vec::new();
    for &t in tokens {
        let reps = (samples / t).max(20);
        let mut x = vec![0.0; t * d];
        let mut cos = vec![0.0; t * n];
        let ids: Vec<usize> = (0..t).collect();
        let mut cv2 = Vec::with_capacity(reps);
        for _ in 0..reps {
            fill_standard_normal(rng, &mut x);
            for k in 0..t {
                grap_cosine_row(&x[k * d..(k + 1) * d], &mut cos[k * n..(k + 1) * n]);
            }
            let scores = Scores {
                tokens: t,
                experts: n,
                score: &cos,
                ids: &ids,
            };
            let dispatch = router.route(&scores, Capacity::Dropless, rng);
            let (cv, _, _) = super::routing::spread(&dispatch.routed);
            cv2.push(cv * cv);
        }
        let r = reps as f64;
        let mean = cv2.iter().sum::<f64>() / r;
        let var = cv2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (r - 1.0);
        let root = mean.sqrt();
        out.push(Point {
            check: LEMMA2,
            dim: d,
            param: n as f64,
            x: t as f64,
            monte_carlo: root,
            mc_se: (var / r).sqrt() / (2.0 * root),
            exact: ((n as f64 - 1.0) / t as f64).sqrt(),
            lower: None,
            upper: None,
        });
    }
    out
}

/// P(Bin(m, p) <= k) for every k in 0..=m_max, as a table over m: cdf[m][k].
fn binomial_cdfs(m_max: usize, p: f64) -> Vec<Vec<f64>> {
    let mut pmf = vec![1.0];
    let mut out = Vec::with_capacity(m_max + 1);
    for m in 0..=m_max {
        if m > 0 {
            let mut next = vec![0.0; m + 1];
            for (k, &v) in pmf.iter().enumerate() {
                next[k] += v * (1.0 - p);
                next[k + 1] += v * p;
            }
            pmf = next;
        }
        let mut acc = 0.0;
        out.push(
            pmf.iter()
                .map(|v| {
                    acc += v;
                    acc.min(1.0)
                })
                .collect(),
        );
    }
    out
}

/// The capacity grid of Theorem 5: powers of two up to s, and s.
pub fn capacities(s: usize) -> Vec<usize> {
    let mut c: Vec<usize> = std::iter::successors(Some(1usize), |c| Some(c * 2))
        .take_while(|&c| c < s)
        .collect();
    c.push(s);
    c
}

/// Theorem 5 for token choice with first-come dropping: one sample of s tokens, the
/// discriminative one at a uniform position goes to its class's expert with probability p,
/// each noise token to it with probability 1/n; it succeeds if routed there and not dropped
/// at capacity C. Monte Carlo routes every trial's tokens with the Switch router (queue
/// ranks, so one routing serves every C); exact: p (1/s) sum_k P(Bin(k - 1, 1/n) <= C - 1).
/// Stated bounds (C >= 48): C n p / (5 s) <= P <= 10 C n p / s.
pub fn theorem5_tcr(s: usize, n: usize, p: f64, trials: usize, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let grid = capacities(s);
    let mut hits = vec![0usize; grid.len()];
    let router = TokenChoice {
        k: 1,
        drop: super::routing::Drop::Position,
    };
    let ids: Vec<usize> = (0..s).collect();
    let mut score = vec![0.0; s * n];
    for _ in 0..trials {
        // Expert 0 is the class's expert; a token's chosen expert gets score 1.
        let position = rng.random_range(0..s);
        score.fill(0.0);
        for t in 0..s {
            let e = if t == position {
                if rng.random::<f64>() < p {
                    0
                } else {
                    rng.random_range(1..n)
                }
            } else {
                rng.random_range(0..n)
            };
            score[t * n + e] = 1.0;
        }
        let scores = Scores {
            tokens: s,
            experts: n,
            score: &score,
            ids: &ids,
        };
        let d = router.route(&scores, Capacity::Dropless, rng);
        if d.chosen.first(position) != Some(0) {
            continue;
        }
        let rank = d
            .slots
            .iter()
            .filter(|slot| slot.expert == 0)
            .position(|slot| slot.token == position)
            .expect("a routed token is in its expert's queue");
        for (k, &c) in grid.iter().enumerate() {
            hits[k] += usize::from(rank < c);
        }
    }
    let cdf = binomial_cdfs(s - 1, 1.0 / n as f64);
    let m = trials as f64;
    grid.iter()
        .zip(hits)
        .map(|(&c, h)| {
            let exact = p * (0..s).map(|k| cdf[k][(c - 1).min(k)]).sum::<f64>() / s as f64;
            let mc = h as f64 / m;
            let theta = c as f64 * n as f64 * p / s as f64;
            Point {
                check: TCR,
                dim: s,
                param: p,
                x: c as f64,
                monte_carlo: mc,
                mc_se: (mc * (1.0 - mc) / m).sqrt(),
                exact,
                lower: (c >= 48).then_some(theta / 5.0),
                upper: (c >= 48).then_some(10.0 * theta),
            }
        })
        .collect()
}

/// Theorem 5 for expert choice: each of the s - 1 noise tokens outranks the discriminative
/// token with probability q; it is kept if fewer than C do. Exact: P(Bin(s - 1, q) <= C - 1).
/// Stated bounds: P <= exp(-(s - 1) q / 8) if C <= (s - 1) q / 2; P >= 1 - exp(-3C/16) if
/// C >= 2 s q.
pub fn theorem5_ecr(s: usize, q: f64, trials: usize, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let grid = capacities(s);
    let mut hits = vec![0usize; grid.len()];
    for _ in 0..trials {
        let beats = (1..s).filter(|_| rng.random::<f64>() < q).count();
        for (k, &c) in grid.iter().enumerate() {
            hits[k] += usize::from(beats < c);
        }
    }
    let cdf = binomial_cdfs(s - 1, q);
    let m = trials as f64;
    let mean = (s - 1) as f64 * q;
    grid.iter()
        .zip(hits)
        .map(|(&c, h)| {
            let mc = h as f64 / m;
            let cf = c as f64;
            Point {
                check: ECR,
                dim: s,
                param: q,
                x: cf,
                monte_carlo: mc,
                mc_se: (mc * (1.0 - mc) / m).sqrt(),
                exact: cdf[s - 1][(c - 1).min(s - 1)],
                lower: (cf >= 2.0 * s as f64 * q).then(|| 1.0 - (-3.0 * cf / 16.0).exp()),
                upper: (cf <= mean / 2.0).then(|| (-mean / 8.0).exp()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_delta_matches_the_notes_table_and_a_quadrature() {
        // Notes section 2.3: 0.321 at d = 64, delta = 1/8; 0.0152 at delta = 0.3;
        // 1.27e-3 at d = 256, delta = 0.2; 0.0549 at d = 4096, delta = 0.03.
        for (d, delta, want) in [
            (64, 0.125, 0.321),
            (64, 0.3, 0.0152),
            (256, 0.2, 1.27e-3),
            (4096, 0.03, 0.0549),
        ] {
            let p = p_delta(d, delta);
            assert!((p / want - 1.0).abs() < 0.01, "d {d} delta {delta}: {p}");
        }
        // Against the density (1 - t^2)^((d-3)/2) by the midpoint rule, d = 7.
        let f = |t: f64| (1.0 - t * t).powf(2.0);
        let integral = |a: f64, b: f64| {
            let n = 200_000;
            let h = (b - a) / n as f64;
            (0..n).map(|i| f(a + (i as f64 + 0.5) * h)).sum::<f64>() * h
        };
        let want = integral(0.4, 1.0) / integral(0.0, 1.0);
        assert!((p_delta(7, 0.4) - want).abs() < 1e-9);
    }

    #[test]
    fn binomial_cdf_matches_a_direct_sum() {
        let cdf = binomial_cdfs(10, 0.3);
        let choose = |n: u64, k: u64| (1..=k).fold(1.0, |a, i| a * (n + 1 - i) as f64 / i as f64);
        let direct: f64 = (0..=3)
            .map(|k| choose(10, k) * 0.3f64.powi(k as i32) * 0.7f64.powi(10 - k as i32))
            .sum();
        assert!((cdf[10][3] - direct).abs() < 1e-14);
        assert_eq!(capacities(20), vec![1, 2, 4, 8, 16, 20]);
    }
}
