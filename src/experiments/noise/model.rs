//! The two-layer non-overlapping CNN f(Z) = sum_j a_j relu(w^T Z_j) with Gaussian patches
//! Z_j ~ N(0, I_p) and a teacher (w*, a*) of the same form, squared loss
//! L = E (f(Z) - f*(Z))^2 / 2 (Du et al. 2018; notes `nn_theory.md` (d)).
//!
//! The population loss and its gradients are in closed form through the arc-cosine kernel
//! E relu(u^T z) relu(v^T z) = ||u|| ||v|| g(phi) / 2 pi, g(phi) = sin phi + (pi - phi) cos phi
//! (derived in the notes and checked there against Monte Carlo and finite differences;
//! reconstructed, not quoted from the paper). The tests check them again here.

use std::f64::consts::PI;

use rand_chacha::ChaCha8Rng;

use crate::random::{fill_standard_normal, standard_normal};
use crate::vector::dot;

/// g(phi) = sin phi + (pi - phi) cos phi.
pub fn kernel(phi: f64) -> f64 {
    phi.sin() + (PI - phi) * phi.cos()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A(a) = (pi - 1) ||a||^2 + (1^T a)^2, so that E f^2 = ||w||^2 A(a) / 2 pi.
pub fn quadratic(a: &[f64]) -> f64 {
    let s: f64 = a.iter().sum();
    (PI - 1.0) * dot(a, a) + s * s
}

/// The teacher of a run and the population loss it defines.
#[derive(Debug, Clone)]
pub struct Teacher {
    pub w: Vec<f64>,
    pub a: Vec<f64>,
    /// ||w*||, w* / ||w*|| and 1^T a*, formed once: the gradient needs them at every step.
    norm: f64,
    unit: Vec<f64>,
    a_sum: f64,
}

impl Teacher {
    /// w* uniform on the unit sphere of R^p, a* ~ N(0, I_k).
    pub fn draw(k: usize, p: usize, rng: &mut ChaCha8Rng) -> Teacher {
        let mut w: Vec<f64> = (0..p).map(|_| standard_normal(rng)).collect();
        let n = norm(&w);
        w.iter_mut().for_each(|x| *x /= n);
        let a = (0..k).map(|_| standard_normal(rng)).collect();
        Teacher::new(w, a)
    }

    pub fn new(w: Vec<f64>, a: Vec<f64>) -> Teacher {
        let n = norm(&w);
        let unit = w.iter().map(|x| x / n).collect();
        let a_sum = a.iter().sum();
        Teacher {
            w,
            a,
            norm: n,
            unit,
            a_sum,
        }
    }

    pub fn k(&self) -> usize {
        self.a.len()
    }

    pub fn p(&self) -> usize {
        self.w.len()
    }

    /// The angle between w and w*, as atan2 of the parts across and along w* (acos of the
    /// cosine would resolve nothing below ~1e-8 near 0 and pi).
    pub fn angle(&self, w: &[f64]) -> f64 {
        let ns = self.norm;
        let along = dot(w, &self.w) / ns;
        let across: f64 = w
            .iter()
            .zip(&self.w)
            .map(|(x, s)| (x - along * s / ns).powi(2))
            .sum();
        across.sqrt().atan2(along)
    }

    /// The population loss at (w, a).
    pub fn loss(&self, w: &[f64], a: &[f64]) -> f64 {
        let (nw, ns) = (norm(w), norm(&self.w));
        let phi = if nw == 0.0 { 0.0 } else { self.angle(w) };
        let sa: f64 = a.iter().sum();
        let sb: f64 = self.a.iter().sum();
        let cross = (kernel(phi) - 1.0) * dot(a, &self.a) + sa * sb;
        (nw * nw * quadratic(a) + ns * ns * quadratic(&self.a) - 2.0 * nw * ns * cross) / (4.0 * PI)
    }

    /// The gradient of the population loss in (w, a).
    pub fn gradient(&self, w: &[f64], a: &[f64], gw: &mut [f64], ga: &mut [f64]) {
        let (nw, ns) = (norm(w), self.norm);
        let phi = if nw == 0.0 { 0.0 } else { self.angle(w) };
        // kernel(phi), with the cosine kept for grad_w.
        let (sin, cos) = (phi.sin(), phi.cos());
        let g = sin + (PI - phi) * cos;
        let (sa, sb): (f64, f64) = (a.iter().sum(), self.a_sum);
        let aa = dot(a, &self.a);
        // grad_a = [||w||^2 ((pi-1) a + (1^T a) 1) - ||w|| ||w*|| ((g-1) a* + (1^T a*) 1)] / 2pi
        for (i, gi) in ga.iter_mut().enumerate() {
            *gi = (nw * nw * ((PI - 1.0) * a[i] + sa) - nw * ns * ((g - 1.0) * self.a[i] + sb))
                / (2.0 * PI);
        }
        // grad_w = [(||w|| A(a) - ||w*|| ((g-1) a^T a* + (1^T a)(1^T a*))) w_hat
        //           - ||w*|| (pi - phi) (a^T a*) (w*_hat - cos(phi) w_hat)] / 2pi
        if nw == 0.0 {
            gw.iter_mut().for_each(|x| *x = 0.0);
        } else {
            let radial = nw * quadratic(a) - ns * ((g - 1.0) * aa + sa * sb);
            for i in 0..w.len() {
                let (wh, sh) = (w[i] / nw, self.unit[i]);
                gw[i] = (radial * wh - ns * (PI - phi) * aa * (sh - cos * wh)) / (2.0 * PI);
            }
        }
    }

    /// The network's output on patches Z (k rows of p).
    pub fn output(w: &[f64], a: &[f64], z: &[f64]) -> f64 {
        let p = w.len();
        a.iter()
            .enumerate()
            .map(|(j, aj)| aj * dot(w, &z[j * p..(j + 1) * p]).max(0.0))
            .sum()
    }

    /// The mean loss of a sampled batch of patch sets and its gradient (mini-batch SGD). The
    /// batch is flat: one patch set Z (k rows of p) after the other. `pre` (2k long) is
    /// scratch for the student's and the teacher's pre-activations w^T Z_j, formed once per
    /// patch set and used by both the output and the gradient.
    pub fn batch_gradient(
        &self,
        w: &[f64],
        a: &[f64],
        batch: &[f64],
        pre: &mut [f64],
        gw: &mut [f64],
        ga: &mut [f64],
    ) -> f64 {
        let p = w.len();
        gw.fill(0.0);
        ga.fill(0.0);
        let count = batch.len() / (self.k() * p);
        let n = count as f64;
        // x / n as a product when n is a power of two: 1/n is then exact and both round the
        // same real number (a division costs several multiplications). Two copies of the
        // loop keep the choice out of it.
        let (k, exact) = (self.k(), count.is_power_of_two());
        let inverse = 1.0 / n;
        // The paper's network (k = p = 6) gets a copy of the loop with both sizes known, so
        // that the pre-activations stay in registers; the arithmetic is the same.
        match (k, p, exact) {
            (6, 6, true) => self.accumulate_fixed::<6, 6>(w, a, batch, gw, ga, |x| x * inverse),
            (6, 6, false) => self.accumulate_fixed::<6, 6>(w, a, batch, gw, ga, |x| x / n),
            (_, _, true) => self.accumulate_batch(w, a, batch, pre, gw, ga, |x| x * inverse),
            (_, _, false) => self.accumulate_batch(w, a, batch, pre, gw, ga, |x| x / n),
        }
    }

    /// [`Teacher::accumulate_batch`] for k patches of p known at compile time.
    #[inline]
    fn accumulate_fixed<const K: usize, const P: usize>(
        &self,
        w: &[f64],
        a: &[f64],
        batch: &[f64],
        gw: &mut [f64],
        ga: &mut [f64],
        mean: impl Fn(f64) -> f64,
    ) -> f64 {
        let w: &[f64; P] = w.try_into().expect("p weights");
        let teacher_w: &[f64; P] = self.w.as_slice().try_into().expect("p weights");
        let a: &[f64; K] = a.try_into().expect("k output weights");
        let teacher_a: &[f64; K] = self.a.as_slice().try_into().expect("k output weights");
        let gw: &mut [f64; P] = gw.try_into().expect("p gradients");
        let ga: &mut [f64; K] = ga.try_into().expect("k gradients");
        let mut total = 0.0;
        for z in batch.chunks_exact(K * P) {
            let (mut student_pre, mut teacher_pre) = ([-0.0; K], [-0.0; K]);
            for i in 0..P {
                for j in 0..K {
                    student_pre[j] += w[i] * z[j * P + i];
                    teacher_pre[j] += teacher_w[i] * z[j * P + i];
                }
            }
            let student: f64 = a
                .iter()
                .zip(&student_pre)
                .map(|(aj, x)| aj * x.max(0.0))
                .sum();
            let teacher: f64 = teacher_a
                .iter()
                .zip(&teacher_pre)
                .map(|(aj, x)| aj * x.max(0.0))
                .sum();
            let residual = student - teacher;
            total += mean(0.5 * residual * residual);
            for j in 0..K {
                let pre = student_pre[j];
                ga[j] += mean(residual * pre.max(0.0));
                let scale = if pre > 0.0 { residual * a[j] } else { 0.0 };
                for i in 0..P {
                    gw[i] += mean(scale * z[j * P + i]);
                }
            }
        }
        total
    }

    /// The loop of [`Teacher::batch_gradient`], `mean(x)` being x / n. [`accumulate_fixed`]
    /// is the same loop with k and p fixed: a change here belongs there too.
    ///
    /// [`accumulate_fixed`]: Teacher::accumulate_fixed
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn accumulate_batch(
        &self,
        w: &[f64],
        a: &[f64],
        batch: &[f64],
        pre: &mut [f64],
        gw: &mut [f64],
        ga: &mut [f64],
        mean: impl Fn(f64) -> f64,
    ) -> f64 {
        let (p, k) = (w.len(), self.k());
        let (student_pre, teacher_pre) = pre.split_at_mut(k);
        let mut total = 0.0;
        for z in batch.chunks_exact(k * p) {
            // The 2k pre-activations w^T Z_j and w*^T Z_j, each summed over i in order from
            // -0 as `dot` sums it, but side by side: 2k independent chains instead of one
            // after the other.
            student_pre.fill(-0.0);
            teacher_pre.fill(-0.0);
            for i in 0..p {
                let (wi, ti) = (w[i], self.w[i]);
                for j in 0..k {
                    let zi = z[j * p + i];
                    student_pre[j] += wi * zi;
                    teacher_pre[j] += ti * zi;
                }
            }
            // The outputs as `output` sums them.
            let student: f64 = a
                .iter()
                .zip(student_pre.iter())
                .map(|(aj, x)| aj * x.max(0.0))
                .sum();
            let teacher: f64 = self
                .a
                .iter()
                .zip(teacher_pre.iter())
                .map(|(aj, x)| aj * x.max(0.0))
                .sum();
            let residual = student - teacher;
            total += mean(0.5 * residual * residual);
            for (j, (aj, &pre)) in a.iter().zip(student_pre.iter()).enumerate() {
                let patch = &z[j * p..(j + 1) * p];
                ga[j] += mean(residual * pre.max(0.0));
                // An inactive unit adds exact zeros (gw starts at +0 and a sum that starts
                // there is never -0, so adding +-0 changes no bit), without a branch that
                // random patches would mispredict half the time.
                let scale = if pre > 0.0 { residual * aj } else { 0.0 };
                for (g, zi) in gw.iter_mut().zip(patch) {
                    *g += mean(scale * zi);
                }
            }
        }
        total
    }

    /// Fills `batch` (a multiple of k p long) with fresh N(0, 1) patch sets.
    pub fn draw_batch(&self, rng: &mut ChaCha8Rng, batch: &mut [f64]) {
        fill_standard_normal(rng, batch);
    }

    /// The spurious critical point of the notes: w = -w* (unit), a_sp = (1 1^T + (pi-1) I)^-1
    /// (1 1^T - I) a*. By Sherman-Morrison, (c I + 1 1^T)^-1 = (I - 1 1^T / (c + k)) / c.
    pub fn spurious(&self) -> (Vec<f64>, Vec<f64>) {
        let k = self.k() as f64;
        let c = PI - 1.0;
        let sb: f64 = self.a.iter().sum();
        // (1 1^T - I) a* = sb 1 - a*.
        let rhs: Vec<f64> = self.a.iter().map(|x| sb - x).collect();
        let sr: f64 = rhs.iter().sum();
        let a = rhs.iter().map(|r| (r - sr / (c + k)) / c).collect();
        let w = self.w.iter().map(|x| -x).collect();
        (w, a)
    }

    /// The notes' test: the spurious point is a local minimum iff a_sp^T a* < 0.
    pub fn spurious_is_minimum(&self) -> bool {
        dot(&self.spurious().1, &self.a) < 0.0
    }

    /// min over a of L(phi, a) at unit w (the profile over the angle):
    /// (a*^T M a* - b^T M^-1 b) / 4 pi with M = (pi - 1) I + 1 1^T, b = (g(phi) - 1) a* +
    /// (1^T a*) 1 (for ||w*|| = 1).
    pub fn profile(&self, phi: f64) -> f64 {
        let k = self.k() as f64;
        let c = PI - 1.0;
        let sb: f64 = self.a.iter().sum();
        let b: Vec<f64> = self
            .a
            .iter()
            .map(|x| (kernel(phi) - 1.0) * x + sb)
            .collect();
        let sbb: f64 = b.iter().sum();
        // b^T M^-1 b with M^-1 = (I - 1 1^T / (c + k)) / c.
        let quad = (dot(&b, &b) - sbb * sbb / (c + k)) / c;
        (quadratic(&self.a) - quad) / (4.0 * PI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;

    fn teacher(k: usize, p: usize) -> Teacher {
        Teacher::draw(k, p, &mut Streams::new(4).rng("teacher"))
    }

    #[test]
    fn the_population_loss_matches_monte_carlo() {
        let t = teacher(4, 3);
        let mut rng = Streams::new(9).rng("mc");
        let w = [0.3, -0.8, 0.5];
        let a = [0.4, -0.2, 0.9, 0.1];
        let n = 400_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z: Vec<f64> = (0..12).map(|_| standard_normal(&mut rng)).collect();
            let r = Teacher::output(&w, &a, &z) - Teacher::output(&t.w, &t.a, &z);
            let l = 0.5 * r * r;
            s += l;
            s2 += l * l;
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        let exact = t.loss(&w, &a);
        assert!(
            (exact - mean).abs() < 4.0 * se,
            "{exact} vs {mean} +- {}",
            4.0 * se
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        let t = teacher(5, 4);
        let w = vec![0.3, -0.8, 0.5, 0.2];
        let a = vec![0.4, -0.2, 0.9, 0.1, -0.5];
        let (mut gw, mut ga) = (vec![0.0; 4], vec![0.0; 5]);
        t.gradient(&w, &a, &mut gw, &mut ga);
        let h = 1e-6;
        for i in 0..4 {
            let (mut p, mut m) = (w.clone(), w.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (t.loss(&p, &a) - t.loss(&m, &a)) / (2.0 * h);
            assert!((fd - gw[i]).abs() < 1e-8, "w[{i}]: {fd} vs {}", gw[i]);
        }
        for i in 0..5 {
            let (mut p, mut m) = (a.clone(), a.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (t.loss(&w, &p) - t.loss(&w, &m)) / (2.0 * h);
            assert!((fd - ga[i]).abs() < 1e-8, "a[{i}]: {fd} vs {}", ga[i]);
        }
    }

    #[test]
    fn the_batch_gradient_matches_finite_differences_and_averages_to_the_population() {
        let t = teacher(3, 2);
        let mut rng = Streams::new(2).rng("batch");
        let w = vec![0.7, -0.4];
        let a = vec![0.5, 0.3, -0.6];
        let mut batch = vec![0.0; 8 * 6];
        t.draw_batch(&mut rng, &mut batch);
        let (mut gw, mut ga) = (vec![0.0; 2], vec![0.0; 3]);
        t.batch_gradient(
            &w,
            &a,
            &batch,
            &mut vec![0.0; 2 * a.len()],
            &mut gw,
            &mut ga,
        );
        let f = |w: &[f64], a: &[f64]| {
            let (mut x, mut y) = (vec![0.0; 2], vec![0.0; 3]);
            t.batch_gradient(w, a, &batch, &mut vec![0.0; 2 * a.len()], &mut x, &mut y)
        };
        let h = 1e-6;
        for i in 0..2 {
            let (mut p, mut m) = (w.clone(), w.clone());
            p[i] += h;
            m[i] -= h;
            assert!(((f(&p, &a) - f(&m, &a)) / (2.0 * h) - gw[i]).abs() < 1e-7);
        }
        // Averaged over many batches, the sampled gradient is the population one.
        let mut big = vec![0.0; 200_000 * 6];
        t.draw_batch(&mut rng, &mut big);
        t.batch_gradient(&w, &a, &big, &mut vec![0.0; 2 * a.len()], &mut gw, &mut ga);
        let (mut pw, mut pa) = (vec![0.0; 2], vec![0.0; 3]);
        t.gradient(&w, &a, &mut pw, &mut pa);
        for (x, y) in gw.iter().chain(&ga).zip(pw.iter().chain(&pa)) {
            assert!((x - y).abs() < 0.01, "{x} vs {y}");
        }
    }

    #[test]
    fn the_spurious_point_is_critical_and_the_profile_is_zero_at_the_teacher() {
        let t = teacher(6, 4);
        let (w, a) = t.spurious();
        let (mut gw, mut ga) = (vec![0.0; 4], vec![0.0; 6]);
        t.gradient(&w, &a, &mut gw, &mut ga);
        // At phi = pi the angular term vanishes, a_sp solves grad_a = 0, and then the radial
        // term A(a_sp) + a_sp^T a* - (1^T a_sp)(1^T a*) is 0 as well at unit norm.
        for g in gw.iter().chain(&ga) {
            assert!(g.abs() < 1e-12, "{gw:?} {ga:?}");
        }
        assert!(t.profile(0.0).abs() < 1e-12);
        assert!((t.profile(PI) - t.loss(&w, &a)).abs() < 1e-12);
        // The profile is the minimum over a: a* itself and a_sp do no better at that angle.
        let phi = 1.2f64;
        let at = rotated(&t.w, phi);
        assert!(t.profile(phi) <= t.loss(&at, &t.a) + 1e-12);
        assert!(t.profile(phi) <= t.loss(&at, &a) + 1e-12);
    }

    /// A unit vector at angle phi from w (in the plane of w and the first basis vector).
    fn rotated(w: &[f64], phi: f64) -> Vec<f64> {
        let mut e = vec![0.0; w.len()];
        e[0] = 1.0;
        let c = dot(&e, w);
        let mut u: Vec<f64> = e.iter().zip(w).map(|(x, y)| x - c * y).collect();
        let n = norm(&u);
        u.iter_mut().for_each(|x| *x /= n);
        w.iter()
            .zip(&u)
            .map(|(x, y)| phi.cos() * x + phi.sin() * y)
            .collect()
    }
}
