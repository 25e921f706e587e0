//! Bregman divergences on the simplex and the exact per-state PMD step
//!
//!   pi'(.|s) = argmax_{p in simplex} { eta <Q(s, .), p> - D_h(p, pi(.|s)) }
//!
//! for separable mirror maps h(p) = sum_a phi(p_a) (notes, section 2). The KKT conditions give
//! phi'(p_a) = y_a - lambda with y_a = phi'(pi_a) + eta Q_a, clamped at phi'(0) when that is
//! finite (Euclidean, Tsallis q > 1: exact zeros, hence finite-step convergence), and lambda
//! the root of sum_a p_a(lambda) = 1. Euclidean and KL have closed forms; Tsallis and Burg are
//! solved by safeguarded Newton on lambda.
//!
//! Adding a constant to Q does not change the step, so Q - max Q is used throughout: with
//! eta up to 1e12 that keeps the numbers small and the greedy action exact.

/// A mirror map h(p) = sum_a phi(p_a) and its Bregman divergence D_h.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Divergence {
    /// phi(x) = x^2 / 2, D = ||p - q||^2 / 2; the step is a Euclidean projection (Xiao (38)).
    Euclidean,
    /// phi(x) = x log x, D = KL(p || q); the step is multiplicative (NPG, Xiao (39)).
    Kl,
    /// phi(x) = x^q / (q - 1) (Tsallis entropy of index q, up to a constant).
    Tsallis(f64),
    /// phi(x) = -log x (log-barrier / Burg); D is the Itakura-Saito divergence.
    Burg,
}

impl Divergence {
    /// The name used in spec files and the `divergence` column.
    pub fn name(&self) -> &'static str {
        match self {
            Divergence::Euclidean => "euclidean",
            Divergence::Kl => "kl",
            Divergence::Tsallis(_) => "tsallis",
            Divergence::Burg => "burg",
        }
    }

    /// Whether phi'(0) is finite, so iterates can reach faces of the simplex exactly.
    pub fn reaches_faces(&self) -> bool {
        match *self {
            Divergence::Euclidean => true,
            Divergence::Tsallis(q) => q > 1.0,
            Divergence::Kl | Divergence::Burg => false,
        }
    }

    /// phi'(x) (-inf at 0 for the barrier maps).
    pub fn grad(&self, x: f64) -> f64 {
        match *self {
            Divergence::Euclidean => x,
            Divergence::Kl => 1.0 + x.ln(),
            Divergence::Tsallis(q) => q * x.powf(q - 1.0) / (q - 1.0),
            Divergence::Burg => -1.0 / x,
        }
    }

    /// (phi')^{-1}(u), clamped to 0 below phi'(0) when phi'(0) is finite.
    fn grad_inverse(&self, u: f64) -> f64 {
        match *self {
            Divergence::Euclidean => u.max(0.0),
            Divergence::Kl => (u - 1.0).exp(),
            Divergence::Tsallis(q) => {
                let base = (q - 1.0) * u / q;
                if base > 0.0 {
                    base.powf(1.0 / (q - 1.0))
                } else if q > 1.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            }
            Divergence::Burg => {
                if u < 0.0 {
                    -1.0 / u
                } else {
                    f64::INFINITY
                }
            }
        }
    }

    /// d/du (phi')^{-1}(u) = 1 / phi''(x) at x = (phi')^{-1}(u); 0 where clamped.
    fn grad_inverse_slope(&self, u: f64) -> f64 {
        match *self {
            Divergence::Euclidean => {
                if u > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Divergence::Kl => (u - 1.0).exp(),
            Divergence::Tsallis(q) => {
                let base = (q - 1.0) * u / q;
                if base > 0.0 {
                    base.powf((2.0 - q) / (q - 1.0)) / q
                } else {
                    0.0
                }
            }
            Divergence::Burg => 1.0 / (u * u),
        }
    }

    /// D_h(p, q) = sum_a phi(p_a) - phi(q_a) - phi'(q_a)(p_a - q_a); +inf where h is infinite
    /// (Burg with a zero in p). Each term is computed without cancellation (see
    /// [`Divergence::term`]), so a tiny divergence is not lost in round-off: the adaptive step
    /// divides it by c_k ~ gamma^(2k).
    pub fn bregman(&self, p: &[f64], q: &[f64]) -> f64 {
        p.iter().zip(q).map(|(&x, &y)| self.term(x, y)).sum()
    }

    /// One coordinate of D_h(p, q): phi(x) - phi(y) - phi'(y)(x - y) >= 0. With x = y(1 + t),
    /// each map's term is y^k times a function of t that vanishes to second order at t = 0;
    /// near 0 it is evaluated by its Taylor series (to t^4, relative error below 1e-9 for
    /// |t| < 1e-3) instead of as a difference of nearly equal numbers. KL uses the generalized
    /// form x log(x/y) - x + y, whose extra terms sum to 0 on the simplex.
    fn term(&self, x: f64, y: f64) -> f64 {
        const SMALL: f64 = 1e-3;
        if let Divergence::Euclidean = self {
            return 0.5 * (x - y) * (x - y);
        }
        if y == 0.0 {
            return match *self {
                Divergence::Tsallis(q) if q > 1.0 => x.powf(q) / (q - 1.0),
                _ if x == 0.0 => 0.0,
                _ => f64::INFINITY,
            };
        }
        let t = x / y - 1.0;
        match *self {
            Divergence::Kl => {
                // (1 + t) ln(1 + t) - t
                let f = if t.abs() < SMALL {
                    t * t * (0.5 - t / 6.0 + t * t / 12.0)
                } else if x == 0.0 {
                    1.0
                } else {
                    (1.0 + t) * t.ln_1p() - t
                };
                y * f
            }
            Divergence::Burg => {
                // t - ln(1 + t)
                if x == 0.0 {
                    f64::INFINITY
                } else if t.abs() < SMALL {
                    t * t * (0.5 - t / 3.0 + t * t / 4.0)
                } else {
                    t - t.ln_1p()
                }
            }
            Divergence::Tsallis(q) => {
                // ((1 + t)^q - 1 - q t) / (q - 1)
                let f = if t.abs() < SMALL {
                    q * t * t * (0.5 + (q - 2.0) * t / 6.0 + (q - 2.0) * (q - 3.0) * t * t / 24.0)
                } else {
                    ((q * t.ln_1p()).exp_m1() - q * t) / (q - 1.0)
                };
                y.powf(q) * f
            }
            Divergence::Euclidean => unreachable!("handled above"),
        }
    }

    /// One PMD step at one state: `p` (and `log_p`) from `pi`, `log_pi`, `q` and `eta`.
    ///
    /// `log_pi` carries the policy in log domain so KL never fakes exact zeros by underflow;
    /// for the other maps it is `ln pi`. `eta = inf` is the policy-iteration limit.
    pub fn step(
        &self,
        pi: &[f64],
        log_pi: &[f64],
        q: &[f64],
        eta: f64,
        p: &mut [f64],
        log_p: &mut [f64],
    ) {
        if eta.is_infinite() {
            let greedy = greedy_set(q, 0.0);
            self.project_to_face(pi, log_pi, &greedy, p, log_p);
            return;
        }
        let q_max = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match self {
            Divergence::Euclidean => {
                for ((pa, &pia), &qa) in p.iter_mut().zip(pi).zip(q) {
                    *pa = pia + eta * (qa - q_max);
                }
                project_to_simplex_in_place(p);
                fill_log(p, log_p);
            }
            Divergence::Kl => {
                // log p = log pi + eta (Q - max Q) - logsumexp(...)  (Xiao (39), log domain)
                for ((la, &lpi), &qa) in log_p.iter_mut().zip(log_pi).zip(q) {
                    *la = lpi + eta * (qa - q_max);
                }
                let norm = log_sum_exp(log_p);
                for (la, pa) in log_p.iter_mut().zip(p.iter_mut()) {
                    *la -= norm;
                    *pa = la.exp();
                }
            }
            Divergence::Tsallis(_) | Divergence::Burg => {
                let y: Vec<f64> = pi
                    .iter()
                    .zip(q)
                    .map(|(&pia, &qa)| self.grad(pia) + eta * (qa - q_max))
                    .collect();
                let all = vec![true; y.len()];
                self.solve_kkt(&y, &all, p);
                fill_log(p, log_p);
            }
        }
    }

    /// argmin over the face spanned by `face` of D(p, pi): the limit of the step as
    /// eta -> inf when `face` is the greedy set. Returns D(p, pi) (the quantity of the
    /// adaptive step size of Johnson et al. 2023; closed forms in notes section 2).
    pub fn project_to_face(
        &self,
        pi: &[f64],
        log_pi: &[f64],
        face: &[bool],
        p: &mut [f64],
        log_p: &mut [f64],
    ) -> f64 {
        let pi_on_face: f64 = pi
            .iter()
            .zip(face)
            .filter(|(_, f)| **f)
            .map(|(x, _)| x)
            .sum();
        let log_on_face = log_sum_exp(
            &log_pi
                .iter()
                .zip(face)
                .filter(|(_, f)| **f)
                .map(|(l, _)| *l)
                .collect::<Vec<_>>(),
        );
        if pi_on_face == 0.0 && log_on_face == f64::NEG_INFINITY {
            // No mass on the face (only after an infinite step of a barrier map): every p on
            // the face is infinitely far; take the uniform policy on it, which is also the
            // Euclidean answer pi_B + (1 - m)/|B| at m = 0.
            let n = face.iter().filter(|f| **f).count() as f64;
            for ((pa, la), &f) in p.iter_mut().zip(log_p.iter_mut()).zip(face) {
                *pa = if f { 1.0 / n } else { 0.0 };
                *la = pa.ln();
            }
            return f64::INFINITY;
        }
        match self {
            Divergence::Kl => {
                // p = pi restricted to the face / pi(face); D = -log pi(face).
                let log_mass = log_on_face;
                for ((la, pa), (&lpi, &f)) in log_p
                    .iter_mut()
                    .zip(p.iter_mut())
                    .zip(log_pi.iter().zip(face))
                {
                    *la = if f { lpi - log_mass } else { f64::NEG_INFINITY };
                    *pa = la.exp();
                }
                -log_mass
            }
            _ => {
                let y: Vec<f64> = pi.iter().map(|&x| self.grad(x)).collect();
                self.solve_kkt(&y, face, p);
                fill_log(p, log_p);
                self.bregman(p, pi)
            }
        }
    }

    /// Solves p_a = (phi')^{-1}(y_a - lambda) on `active`, p_a = 0 elsewhere, with
    /// sum p = 1, for the root lambda of the decreasing function sum_a p_a(lambda) - 1.
    fn solve_kkt(&self, y: &[f64], active: &[bool], p: &mut [f64]) {
        let ys = || y.iter().zip(active).filter(|(_, a)| **a).map(|(y, _)| *y);
        let n = ys().count();
        let y_max = ys().fold(f64::NEG_INFINITY, f64::max);
        if n == 1 {
            for ((pa, &a), _) in p.iter_mut().zip(active).zip(y) {
                *pa = if a { 1.0 } else { 0.0 };
            }
            return;
        }
        if let Divergence::Euclidean = self {
            // Sort-based projection of y restricted to the active set.
            let mut v: Vec<f64> = ys().collect();
            project_to_simplex_in_place(&mut v);
            let mut it = v.into_iter();
            for (pa, &a) in p.iter_mut().zip(active) {
                *pa = if a {
                    it.next().expect("active entry")
                } else {
                    0.0
                };
            }
            return;
        }
        let sum = |lambda: f64| -> (f64, f64) {
            ys().fold((-1.0, 0.0), |(f, df), y| {
                (
                    f + self.grad_inverse(y - lambda),
                    df - self.grad_inverse_slope(y - lambda),
                )
            })
        };
        // Bracket: at lo the largest p_a is 1 (sum >= 1); at hi every p_a is <= 1/n (or 0).
        let mut lo = y_max - self.grad(1.0);
        let mut hi = if self.reaches_faces() {
            y_max - self.grad(0.0)
        } else {
            y_max - self.grad(1.0 / n as f64)
        };
        let mut lambda = lo;
        for _ in 0..200 {
            let (f, df) = sum(lambda);
            if f == 0.0 {
                break;
            }
            if f > 0.0 {
                lo = lambda;
            } else {
                hi = lambda;
            }
            let newton = if df < 0.0 { lambda - f / df } else { f64::NAN };
            let next = if newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            };
            if next == lambda || hi - lo <= 4.0 * f64::EPSILON * lambda.abs().max(1.0) {
                break;
            }
            lambda = next;
        }
        let mut total = 0.0;
        for ((pa, &a), &ya) in p.iter_mut().zip(active).zip(y) {
            *pa = if a {
                self.grad_inverse(ya - lambda)
            } else {
                0.0
            };
            total += *pa;
        }
        for pa in p.iter_mut() {
            *pa /= total;
        }
    }
}

/// Actions within `tol` of the best Q-value.
pub fn greedy_set(q: &[f64], tol: f64) -> Vec<bool> {
    let q_max = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    q.iter().map(|&x| x >= q_max - tol).collect()
}

fn fill_log(p: &[f64], log_p: &mut [f64]) {
    for (l, &x) in log_p.iter_mut().zip(p) {
        *l = x.ln();
    }
}

/// log sum_i exp(x_i), stable; -inf for an empty or all -inf input.
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

/// Euclidean projection onto the probability simplex, in place, by sorting
/// (Held, Wolfe & Crowder 1974; Duchi et al. 2008; Wang & Carreira-Perpinan 2013):
/// u = sort(v) descending, rho = max{j : u_j - (sum_{i<=j} u_i - 1)/j > 0},
/// theta = (sum_{i<=rho} u_i - 1)/rho, p = max(v - theta, 0).
pub fn project_to_simplex_in_place(v: &mut [f64]) {
    let mut u = v.to_vec();
    u.sort_unstable_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (j, &uj) in u.iter().enumerate() {
        cumulative += uj;
        let candidate = (cumulative - 1.0) / (j + 1) as f64;
        if uj - candidate > 0.0 {
            theta = candidate;
        }
    }
    for x in v.iter_mut() {
        *x = (*x - theta).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    use crate::random::Streams;

    /// Projection by brute force: for every support set, the unconstrained minimizer on the
    /// affine hull; keep the feasible one closest to v.
    fn brute_force_projection(v: &[f64]) -> Vec<f64> {
        let n = v.len();
        let mut best: (f64, Vec<f64>) = (f64::INFINITY, Vec::new());
        for mask in 1u32..(1 << n) {
            let support: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
            let shift = (support.iter().map(|&i| v[i]).sum::<f64>() - 1.0) / support.len() as f64;
            let mut p = vec![0.0; n];
            for &i in &support {
                p[i] = v[i] - shift;
            }
            if p.iter().all(|&x| x >= 0.0) {
                let dist: f64 = p.iter().zip(v).map(|(a, b)| (a - b).powi(2)).sum();
                if dist < best.0 {
                    best = (dist, p);
                }
            }
        }
        best.1
    }

    #[test]
    fn simplex_projection_matches_brute_force() {
        let mut rng = Streams::new(11).rng("test");
        for trial in 0..500 {
            let n = 1 + trial % 7;
            let scale = [0.1, 1.0, 10.0][trial % 3];
            let v: Vec<f64> = (0..n)
                .map(|_| scale * (rng.random::<f64>() * 2.0 - 0.5))
                .collect();
            let mut p = v.clone();
            project_to_simplex_in_place(&mut p);
            let oracle = brute_force_projection(&v);
            for (a, b) in p.iter().zip(&oracle) {
                assert!((a - b).abs() < 1e-12, "v={v:?} p={p:?} oracle={oracle:?}");
            }
        }
    }

    fn random_simplex(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f64> {
        let w: Vec<f64> = (0..n).map(|_| -rng.random::<f64>().ln()).collect();
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    }

    /// Checks the KKT conditions of the step directly: p in the simplex, and a single lambda
    /// with phi'(p_a) = y_a - lambda on the support and y_a - lambda <= phi'(0) off it.
    fn assert_kkt(d: Divergence, pi: &[f64], q: &[f64], eta: f64, p: &[f64]) {
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "{d:?}: sum {total}");
        assert!(p.iter().all(|&x| x >= 0.0));
        let y: Vec<f64> = pi
            .iter()
            .zip(q)
            .map(|(&a, &b)| d.grad(a) + eta * b)
            .collect();
        let lambdas: Vec<f64> = p
            .iter()
            .zip(&y)
            .filter(|(x, _)| **x > 0.0)
            .map(|(&x, &ya)| ya - d.grad(x))
            .collect();
        let lambda = lambdas[0];
        let scale = y.iter().map(|v| v.abs()).fold(1.0, f64::max);
        for l in &lambdas {
            assert!(
                (l - lambda).abs() <= 1e-9 * scale,
                "{d:?}: lambdas {lambdas:?}"
            );
        }
        for (x, ya) in p.iter().zip(&y) {
            if *x == 0.0 {
                assert!(d.reaches_faces(), "{d:?} produced an exact zero");
                assert!(
                    ya - lambda <= d.grad(0.0) + 1e-9 * scale,
                    "{d:?}: inactive KKT"
                );
            }
        }
    }

    #[test]
    fn every_step_satisfies_its_kkt_conditions() {
        let mut rng = Streams::new(12).rng("test");
        let divergences = [
            Divergence::Euclidean,
            Divergence::Kl,
            Divergence::Tsallis(1.5),
            Divergence::Tsallis(2.0),
            Divergence::Tsallis(3.0),
            Divergence::Tsallis(0.5),
            Divergence::Burg,
        ];
        for trial in 0..300 {
            let n = 2 + trial % 9;
            let pi = random_simplex(&mut rng, n);
            let q: Vec<f64> = (0..n).map(|_| 10.0 * rng.random::<f64>()).collect();
            let eta = [0.01, 0.3, 1.0, 7.0][trial % 4];
            for d in divergences {
                let log_pi: Vec<f64> = pi.iter().map(|x| x.ln()).collect();
                let (mut p, mut log_p) = (vec![0.0; n], vec![0.0; n]);
                d.step(&pi, &log_pi, &q, eta, &mut p, &mut log_p);
                assert_kkt(d, &pi, &q, eta, &p);
            }
        }
    }

    #[test]
    fn step_maximizes_the_objective_against_random_competitors() {
        // eta <Q, p> - D(p, pi) at the step beats every random point of the simplex.
        let mut rng = Streams::new(13).rng("test");
        for d in [
            Divergence::Tsallis(0.5),
            Divergence::Burg,
            Divergence::Tsallis(3.0),
        ] {
            let pi = random_simplex(&mut rng, 5);
            let q: Vec<f64> = (0..5).map(|_| rng.random::<f64>()).collect();
            let log_pi: Vec<f64> = pi.iter().map(|x| x.ln()).collect();
            let (mut p, mut log_p) = (vec![0.0; 5], vec![0.0; 5]);
            d.step(&pi, &log_pi, &q, 2.0, &mut p, &mut log_p);
            let objective = |x: &[f64]| {
                2.0 * x.iter().zip(&q).map(|(a, b)| a * b).sum::<f64>() - d.bregman(x, &pi)
            };
            let best = objective(&p);
            for _ in 0..2000 {
                let other = random_simplex(&mut rng, 5);
                assert!(objective(&other) <= best + 1e-12, "{d:?}");
            }
        }
    }

    #[test]
    fn tsallis_two_is_euclidean_with_half_the_step() {
        let mut rng = Streams::new(14).rng("test");
        for _ in 0..200 {
            let pi = random_simplex(&mut rng, 6);
            let log_pi: Vec<f64> = pi.iter().map(|x| x.ln()).collect();
            let q: Vec<f64> = (0..6).map(|_| rng.random::<f64>()).collect();
            let (mut a, mut b, mut la, mut lb) =
                (vec![0.0; 6], vec![0.0; 6], vec![0.0; 6], vec![0.0; 6]);
            Divergence::Tsallis(2.0).step(&pi, &log_pi, &q, 3.0, &mut a, &mut la);
            Divergence::Euclidean.step(&pi, &log_pi, &q, 1.5, &mut b, &mut lb);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-15, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn kl_keeps_tiny_masses_in_log_domain() {
        let pi = [0.5, 0.5];
        let log_pi = [0.5f64.ln(), 0.5f64.ln()];
        let (mut p, mut log_p) = ([0.0; 2], [0.0; 2]);
        Divergence::Kl.step(&pi, &log_pi, &[1.0, 0.0], 1e4, &mut p, &mut log_p);
        assert_eq!(p[1], 0.0, "underflows in probability space");
        assert!(
            (log_p[1] + 1e4).abs() < 1e-9,
            "but not in log space: {}",
            log_p[1]
        );
    }

    #[test]
    fn tiny_divergences_match_their_second_order_expansion() {
        // D(p, q) = sum phi''(q_a) (p_a - q_a)^2 / 2 + O(delta^3) for p = q + delta (e_1 - e_2):
        // the naive sum of phi terms loses this to round-off for delta below ~1e-8.
        let q = [0.2f64, 0.3, 0.5];
        for d in [
            Divergence::Euclidean,
            Divergence::Kl,
            Divergence::Tsallis(1.5),
            Divergence::Tsallis(0.5),
            Divergence::Burg,
        ] {
            let curvature = |x: f64| match d {
                Divergence::Euclidean => 1.0,
                Divergence::Kl => 1.0 / x,
                Divergence::Tsallis(k) => k * x.powf(k - 2.0),
                Divergence::Burg => 1.0 / (x * x),
            };
            for delta in [1e-4, 1e-9, 1e-13] {
                let p = [q[0] + delta, q[1] - delta, q[2]];
                let expected = 0.5 * delta * delta * (curvature(q[0]) + curvature(q[1]));
                let got = d.bregman(&p, &q);
                assert!(
                    (got / expected - 1.0).abs() < 1e-3,
                    "{d:?} delta {delta}: {got} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn face_projection_closed_forms() {
        let pi = [0.1f64, 0.2, 0.3, 0.4];
        let log_pi: Vec<f64> = pi.iter().map(|x| x.ln()).collect();
        let face = [true, false, true, false];
        let (mut p, mut lp) = ([0.0; 4], [0.0; 4]);
        // Euclidean: pi_B + (1 - m)/|B| on B; D = (sum_{not B} pi^2 + (1 - m)^2 / |B|) / 2.
        let d = Divergence::Euclidean.project_to_face(&pi, &log_pi, &face, &mut p, &mut lp);
        assert!((p[0] - 0.4).abs() < 1e-15 && (p[2] - 0.6).abs() < 1e-15 && p[1] == 0.0);
        assert!((d - 0.5 * (0.04 + 0.16 + 0.36 / 2.0)).abs() < 1e-15);
        // KL: pi_B / m; D = -log m.
        let d = Divergence::Kl.project_to_face(&pi, &log_pi, &face, &mut p, &mut lp);
        assert!((p[0] - 0.25).abs() < 1e-15 && (d + 0.4f64.ln()).abs() < 1e-15);
    }
}
