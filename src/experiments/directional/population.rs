//! Population losses under spherically symmetric data with zero-margin labels
//! y = sign(w*^T x), computed by quadrature in the plane of w* and the predictor.
//!
//! Coordinates put w* = e_1 (the laws are rotation invariant), so the angle to w* of a
//! predictor keeps full relative precision in its other coordinates however small it gets.
//!
//! A linear predictor beta = r (cos(theta) w* + sin(theta) e) only meets x through the 2-D
//! projection (a, b) of x on (beta/r, its normal in the plane). Splitting the plane into the
//! correctly classified part and the wedge of angle 2 theta where sign(a) != y gives, for any
//! loss (derivation in docs/directional.md; reconstructed, not the paper's):
//!
//!   L(r, theta) = F(r) + (1/pi) int_0^theta gap(r sin w) dw,
//!   F(r) = E l(r |a|),   gap(c) = G(-c) - G(c),   G(c) = E_rho l(c rho),
//!
//! with `a` the 1-D marginal and `rho` the radius of the 2-D marginal. For the logistic loss
//! l(-m) - l(m) = m, so gap(c) = c E[rho] and L = F(r) + (E[rho]/pi) (r - w*^T beta) exactly.
//! Every integral is a 1-D double-exponential (tanh-sinh) quadrature on a finite range.

use std::f64::consts::PI;

use rand_chacha::ChaCha8Rng;

use crate::random::standard_normal;

/// Where the Gaussian's tail is cut: its density there is below 1e-290.
const GAUSSIAN_END: f64 = 36.5;
/// Where l(m) and l'(m) of the losses here are below e^-60 relative to their value at 0.
const LOSS_DECAY: f64 = 60.0;

/// A 1-D integral by tanh-sinh quadrature. The target error of 0 makes the rule take all its
/// levels (~350 points), which is round-off accurate for the smooth integrands here.
pub fn integral(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    if b <= a {
        return 0.0;
    }
    quadrature::integrate(f, a, b, 0.0).integral
}

/// The Euclidean norm, scaled so that entries down to 1e-300 do not underflow when squared
/// (the components across w* of a converging predictor reach 1e-170 and below).
pub fn norm(v: &[f64]) -> f64 {
    let largest = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if largest == 0.0 || !largest.is_finite() {
        return largest;
    }
    largest * v.iter().map(|x| (x / largest).powi(2)).sum::<f64>().sqrt()
}

/// A spherically symmetric law of x in R^d with E x x^T = I.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Law {
    /// x ~ N(0, I_d).
    Gaussian,
    /// x uniform on the sphere of radius sqrt(d) (d >= 3): a non-Gaussian spherical law with
    /// compact support, whose marginals depend on d.
    Sphere { dim: usize },
}

impl Law {
    /// Density of one coordinate (the 1-D marginal) at a.
    pub fn marginal_density(&self, a: f64) -> f64 {
        match *self {
            Law::Gaussian => (-0.5 * a * a).exp() / (2.0 * PI).sqrt(),
            Law::Sphere { dim } => {
                let d = dim as f64;
                let s = 1.0 - a * a / d;
                if s <= 0.0 {
                    return 0.0;
                }
                sphere_marginal_constant(dim) / d.sqrt() * s.powf(0.5 * (d - 3.0))
            }
        }
    }

    /// The end of the marginal's support (or where the Gaussian tail is cut).
    pub fn marginal_end(&self) -> f64 {
        match *self {
            Law::Gaussian => GAUSSIAN_END,
            Law::Sphere { dim } => (dim as f64).sqrt(),
        }
    }

    /// E[h(|a|)] over one coordinate a, on |a| <= `cut`, split at `scale` (where h varies:
    /// 1/r for h(a) = l(r a)) so both scales get nodes.
    pub fn marginal_mean(&self, h: impl Fn(f64) -> f64, scale: f64, cut: f64) -> f64 {
        match *self {
            Law::Gaussian => {
                let f = |a: f64| 2.0 * self.marginal_density(a) * h(a);
                let cut = cut.min(GAUSSIAN_END);
                let split = scale.min(cut);
                integral(f, 0.0, split) + integral(f, split, cut)
            }
            Law::Sphere { dim } => {
                // a = sqrt(d) sin(phi): the density's end-point singularity (d = 3, 4)
                // becomes the smooth 2 c_d cos^(d-2)(phi).
                let d = dim as f64;
                let c = 2.0 * sphere_marginal_constant(dim);
                let f = |phi: f64| c * phi.cos().powi(dim as i32 - 2) * h(d.sqrt() * phi.sin());
                let angle = |a: f64| (a / d.sqrt()).min(1.0).asin();
                let (split, cut) = (angle(scale.min(cut)), angle(cut));
                integral(f, 0.0, split) + integral(f, split, cut)
            }
        }
    }

    /// E[h(rho)] over the radius of a 2-D projection (x_1, x_2), on rho <= `cut`, split at
    /// `scale` as in [`Law::marginal_mean`].
    pub fn radial_mean(&self, h: impl Fn(f64) -> f64, scale: f64, cut: f64) -> f64 {
        match *self {
            Law::Gaussian => {
                let f = |rho: f64| rho * (-0.5 * rho * rho).exp() * h(rho);
                let cut = cut.min(GAUSSIAN_END);
                let split = scale.min(cut);
                integral(f, 0.0, split) + integral(f, split, cut)
            }
            Law::Sphere { dim } => {
                // The radius has density ((d-2)/d) rho (1 - rho^2/d)^((d-4)/2) on [0, sqrt d];
                // rho = sqrt(d) sin(phi) makes it (d-2) sin(phi) cos^(d-3)(phi).
                let d = dim as f64;
                let f = |phi: f64| {
                    (d - 2.0) * phi.sin() * phi.cos().powi(dim as i32 - 3) * h(d.sqrt() * phi.sin())
                };
                let angle = |r: f64| (r / d.sqrt()).min(1.0).asin();
                let (split, cut) = (angle(scale.min(cut)), angle(cut));
                integral(f, 0.0, split) + integral(f, split, cut)
            }
        }
    }

    /// E[rho], the mean radius of a 2-D projection: sqrt(pi/2) for the Gaussian.
    pub fn mean_radius(&self) -> f64 {
        match self {
            Law::Gaussian => (PI / 2.0).sqrt(),
            Law::Sphere { .. } => self.radial_mean(|rho| rho, 1.0, f64::INFINITY),
        }
    }

    /// A draw of x in R^dim.
    pub fn sample(&self, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let mut x: Vec<f64> = (0..dim).map(|_| standard_normal(rng)).collect();
        if let Law::Sphere { .. } = self {
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = (dim as f64).sqrt() / norm;
            x.iter_mut().for_each(|v| *v *= scale);
        }
        x
    }
}

/// Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)), the normalizer of the sphere's marginal
/// (1 - t^2)^((d-3)/2) on [-1, 1], by the recurrence g(d+2) = g(d) d / (d-1).
fn sphere_marginal_constant(dim: usize) -> f64 {
    let (mut d, mut g) = if dim % 2 == 1 {
        (3usize, 0.5) // Gamma(3/2) / (sqrt(pi) Gamma(1))
    } else {
        (2usize, 1.0 / PI) // Gamma(1) / (sqrt(pi) Gamma(1/2))
    };
    while d < dim {
        g *= d as f64 / (d as f64 - 1.0);
        d += 2;
    }
    g
}

/// A margin loss l(m) of m = y f(x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// log(1 + e^-m).
    Logistic,
    /// e^-m.
    Exponential,
}

impl Loss {
    pub fn value(&self, m: f64) -> f64 {
        match self {
            Loss::Logistic => {
                if m > 0.0 {
                    (-m).exp().ln_1p()
                } else {
                    -m + m.exp().ln_1p()
                }
            }
            Loss::Exponential => (-m).exp(),
        }
    }

    /// l'(m).
    pub fn slope(&self, m: f64) -> f64 {
        match self {
            Loss::Logistic => {
                if m > 0.0 {
                    let e = (-m).exp();
                    -e / (1.0 + e)
                } else {
                    -1.0 / (1.0 + m.exp())
                }
            }
            Loss::Exponential => -(-m).exp(),
        }
    }

    /// int_0^inf m (-l'(m)) dm: pi^2/12 (logistic), 1 (exponential). With the marginal's
    /// density p(0) it sets the radial gradient ~ -2 p(0) (this) / r^2 at large r.
    pub fn tail_moment(&self) -> f64 {
        match self {
            Loss::Logistic => PI * PI / 12.0,
            Loss::Exponential => 1.0,
        }
    }
}

/// The population loss of one law and loss, with the 1-D and radial integrals it needs.
#[derive(Clone)]
pub struct Population {
    pub law: Law,
    pub loss: Loss,
    /// E[rho] of the law (cached: it is a quadrature for the sphere).
    mean_radius: f64,
    /// Exponential loss: gap(c)/c and gap'(c) tabulated on [0, 16] (each a radial
    /// quadrature, needed at every node of the wedge integral).
    wedge: Option<std::sync::Arc<Vec<ChebyshevPiece>>>,
}

impl Population {
    pub fn new(law: Law, loss: Loss) -> Population {
        let mut population = Population {
            law,
            loss,
            mean_radius: law.mean_radius(),
            wedge: None,
        };
        if loss == Loss::Exponential {
            let direct = population.clone();
            let pieces = octave_pieces(WEDGE_TABLE_END, |c| {
                (direct.gap_ratio_direct(c), direct.gap_slope_direct(c))
            });
            population.wedge = Some(std::sync::Arc::new(pieces));
        }
        population
    }

    pub fn mean_radius(&self) -> f64 {
        self.mean_radius
    }

    /// F(r) = E l(r |a|) and F'(r) = E |a| l'(r |a|): the loss and radial slope of a
    /// predictor that classifies every point correctly.
    pub fn correct_part(&self, r: f64) -> (f64, f64) {
        // l(r a) has decayed (relative e^-60) beyond a = 60/r; the rest is below round-off.
        let cut = if r > 0.0 {
            LOSS_DECAY / r
        } else {
            f64::INFINITY
        };
        let scale = 1.0 / r.max(1e-300);
        let f = self
            .law
            .marginal_mean(|a| self.loss.value(r * a), scale, cut);
        let df = self
            .law
            .marginal_mean(|a| a * self.loss.slope(r * a), scale, cut);
        (f, df)
    }

    /// gap(c) / c, with gap(c) = G(-c) - G(c): E[rho] (logistic, exactly) or
    /// 2 E[rho sinh(c rho) / (c rho)] (exponential, from the table where it reaches).
    pub fn gap_ratio(&self, c: f64) -> f64 {
        match (&self.wedge, self.loss) {
            (_, Loss::Logistic) => self.mean_radius,
            (Some(table), _) => find_piece(table, c.abs())
                .map_or_else(|| self.gap_ratio_direct(c), |p| p.eval(c.abs()).0),
            (None, _) => self.gap_ratio_direct(c),
        }
    }

    /// d gap / dc: E[rho] (logistic) or 2 E[rho cosh(c rho)] (exponential).
    pub fn gap_slope(&self, c: f64) -> f64 {
        match (&self.wedge, self.loss) {
            (_, Loss::Logistic) => self.mean_radius,
            (Some(table), _) => find_piece(table, c.abs())
                .map_or_else(|| self.gap_slope_direct(c), |p| p.eval(c.abs()).1),
            (None, _) => self.gap_slope_direct(c),
        }
    }

    fn gap_ratio_direct(&self, c: f64) -> f64 {
        match self.loss {
            Loss::Logistic => self.mean_radius,
            Loss::Exponential => self.law.radial_mean(
                |rho| {
                    let x = c * rho;
                    2.0 * rho * if x.abs() < 1e-8 { 1.0 } else { x.sinh() / x }
                },
                1.0,
                f64::INFINITY,
            ),
        }
    }

    fn gap_slope_direct(&self, c: f64) -> f64 {
        match self.loss {
            Loss::Logistic => self.mean_radius,
            Loss::Exponential => {
                self.law
                    .radial_mean(|rho| 2.0 * rho * (c * rho).cosh(), 1.0, f64::INFINITY)
            }
        }
    }

    /// The loss and gradient of the linear predictor beta (w* = e_1).
    pub fn linear(&self, beta: &[f64], grad: &mut [f64]) -> f64 {
        let r = norm(beta);
        let (f, df) = self.correct_part(r);
        if r == 0.0 {
            // At the origin the gradient is E[l'(0) y x] = l'(0) E|x_1| w*.
            grad.iter_mut().for_each(|g| *g = 0.0);
            grad[0] = self.loss.slope(0.0) * self.law_mean_abs();
            return f;
        }
        let cos = beta[0] / r;
        let sin = norm(&beta[1..]) / r;
        let theta = sin.atan2(cos);
        let (wedge, wedge_slope) = match self.loss {
            // gap(c) = c E[rho]: int_0^theta gap(r sin w) dw = r E[rho] (1 - cos theta).
            Loss::Logistic => {
                let one_minus_cos = 2.0 * (0.5 * theta).sin().powi(2);
                (
                    r * self.mean_radius * one_minus_cos,
                    self.mean_radius * one_minus_cos,
                )
            }
            Loss::Exponential => (
                integral(|w| r * w.sin() * self.gap_ratio(r * w.sin()), 0.0, theta),
                integral(|w| w.sin() * self.gap_slope(r * w.sin()), 0.0, theta),
            ),
        };
        let loss = f + wedge / PI;
        // dL/dr along beta/r; (1/r) dL/dtheta along (cos theta beta/r - w*) / sin theta,
        // which is gap_ratio(r sin theta) / pi times (cos theta beta/r - w*).
        let radial = df + wedge_slope / PI;
        let tangential = self.gap_ratio(r * sin) / PI;
        for (i, (g, b)) in grad.iter_mut().zip(beta).enumerate() {
            let unit = b / r;
            let toward = cos * unit - if i == 0 { 1.0 } else { 0.0 };
            *g = radial * unit + tangential * toward;
        }
        loss
    }

    /// E|x_1| = 2 int_0^inf a p(a) da.
    fn law_mean_abs(&self) -> f64 {
        self.law.marginal_mean(|a| a, 1.0, f64::INFINITY)
    }

    /// G(c) = E_rho l(c rho) and H(c) = E_rho rho l'(c rho) over the radius of a 2-D
    /// projection. For the logistic loss only c >= 0 is integrated: l(-m) = m + l(m) gives
    /// G(-c) = c E[rho] + G(c) and H(-c) = -E[rho] - H(c).
    pub fn radial_pair(&self, c: f64) -> (f64, f64) {
        if self.loss == Loss::Logistic && c < 0.0 {
            let (g, h) = self.radial_pair(-c);
            return (-c * self.mean_radius + g, -self.mean_radius - h);
        }
        let cut = if c > 0.0 {
            LOSS_DECAY / c
        } else {
            f64::INFINITY
        };
        let scale = 1.0 / c.abs().max(1e-300);
        (
            self.law
                .radial_mean(|rho| self.loss.value(c * rho), scale, cut),
            self.law
                .radial_mean(|rho| rho * self.loss.slope(c * rho), scale, cut),
        )
    }
}

/// G(c) and H(c) of [`Population::radial_pair`] tabulated once per run, for the two-node
/// network whose loss needs them at every quadrature node: Chebyshev interpolants of degree
/// 24 of ln G and ln(-H) (G > 0 > H) on [0, 1/16] and on each octave up to 2^16, tested
/// against direct quadrature to 1e-12 relative. Negative c: the logistic identity, or
/// (exponential) a table on [0, 16] of the growing side. Beyond the tables: direct
/// quadrature.
pub struct RadialTable {
    population: Population,
    /// Pieces [lo, hi] with the Chebyshev coefficients of G and H on each.
    positive: Vec<ChebyshevPiece>,
    negative: Vec<ChebyshevPiece>,
}

/// Chebyshev series of ln|g| and ln|h| on [lo, hi] (g and h keep one sign each there).
struct ChebyshevPiece {
    lo: f64,
    hi: f64,
    g: Vec<f64>,
    h: Vec<f64>,
    signs: (f64, f64),
}

const CHEBYSHEV_DEGREE: usize = 24;
/// Beyond this |c| the table refuses: a margin scale the runs here never reach.
pub const RADIAL_TABLE_END: f64 = 65536.0;
/// Exponential loss, misclassified side: E e^{|c| rho} is ~e^{c^2/2} for the Gaussian and
/// overflows the quadrature's products beyond |c| ~ 25; the table stops at 16 (G ~ 1e57).
const NEGATIVE_END: f64 = 16.0;
/// The exponential loss's wedge functions are tabulated up to the same |c|.
const WEDGE_TABLE_END: f64 = 16.0;

impl ChebyshevPiece {
    fn fit(lo: f64, hi: f64, f: impl Fn(f64) -> (f64, f64)) -> ChebyshevPiece {
        let n = CHEBYSHEV_DEGREE;
        // Values at the Chebyshev points x_j = cos(pi (j + 1/2) / (n + 1)).
        let nodes: Vec<f64> = (0..=n)
            .map(|j| (PI * (j as f64 + 0.5) / (n as f64 + 1.0)).cos())
            .collect();
        let raw: Vec<(f64, f64)> = nodes
            .iter()
            .map(|x| f(0.5 * (lo + hi) + 0.5 * (hi - lo) * x))
            .collect();
        let signs = (raw[0].0.signum(), raw[0].1.signum());
        let values: Vec<(f64, f64)> = raw
            .iter()
            .map(|v| (v.0.abs().ln(), v.1.abs().ln()))
            .collect();
        let coefficients = |pick: &dyn Fn(&(f64, f64)) -> f64| -> Vec<f64> {
            (0..=n)
                .map(|k| {
                    let sum: f64 = values
                        .iter()
                        .enumerate()
                        .map(|(j, v)| {
                            pick(v) * (PI * k as f64 * (j as f64 + 0.5) / (n as f64 + 1.0)).cos()
                        })
                        .sum();
                    sum * if k == 0 { 1.0 } else { 2.0 } / (n as f64 + 1.0)
                })
                .collect()
        };
        ChebyshevPiece {
            lo,
            hi,
            g: coefficients(&|v| v.0),
            h: coefficients(&|v| v.1),
            signs,
        }
    }

    /// Clenshaw's recurrence for both series at c.
    fn eval(&self, c: f64) -> (f64, f64) {
        let x = (2.0 * c - self.lo - self.hi) / (self.hi - self.lo);
        let clenshaw = |coef: &[f64]| {
            let (mut b1, mut b2) = (0.0, 0.0);
            for &a in coef[1..].iter().rev() {
                let b = 2.0 * x * b1 - b2 + a;
                b2 = b1;
                b1 = b;
            }
            x * b1 - b2 + coef[0]
        };
        (
            self.signs.0 * clenshaw(&self.g).exp(),
            self.signs.1 * clenshaw(&self.h).exp(),
        )
    }
}

fn octave_pieces(end: f64, f: impl Fn(f64) -> (f64, f64)) -> Vec<ChebyshevPiece> {
    let mut pieces = vec![ChebyshevPiece::fit(0.0, 1.0 / 16.0, &f)];
    let mut lo = 1.0 / 16.0;
    while lo < end {
        pieces.push(ChebyshevPiece::fit(lo, 2.0 * lo, &f));
        lo *= 2.0;
    }
    pieces
}

fn find_piece(pieces: &[ChebyshevPiece], c: f64) -> Option<&ChebyshevPiece> {
    if c <= pieces[0].hi {
        return Some(&pieces[0]);
    }
    // Octave k (from 1/16) holds c in [2^(k-4), 2^(k-3)].
    let k = (c * 16.0).log2().floor() as usize + 1;
    pieces
        .get(k.min(pieces.len() - 1))
        .filter(|p| p.lo <= c && c <= p.hi)
}

impl RadialTable {
    pub fn new(population: Population) -> RadialTable {
        let positive = octave_pieces(RADIAL_TABLE_END, |c| population.radial_pair(c));
        let negative = match population.loss {
            Loss::Logistic => Vec::new(),
            Loss::Exponential => octave_pieces(NEGATIVE_END, |c| population.radial_pair(-c)),
        };
        RadialTable {
            population,
            positive,
            negative,
        }
    }

    /// (G(c), H(c)).
    pub fn eval(&self, c: f64) -> (f64, f64) {
        if c >= 0.0 {
            return find_piece(&self.positive, c)
                .map_or_else(|| self.population.radial_pair(c), |p| p.eval(c));
        }
        match self.population.loss {
            Loss::Logistic => {
                let (g, h) = self.eval(-c);
                let m = self.population.mean_radius;
                (-c * m + g, -m - h)
            }
            Loss::Exponential => find_piece(&self.negative, -c)
                .map_or_else(|| self.population.radial_pair(c), |p| p.eval(-c)),
        }
    }
}

/// The two-node network f(x) = v_1 relu(w_1^T x) + v_2 relu(w_2^T x) with w_1, w_2 in the
/// plane of w* = e_1 and e_2 (the population flow keeps them there: the gradient has no
/// component out of span{w*, w_1, w_2}). Returns the loss; `grad_w`, `grad_v` get the
/// gradient in plane coordinates.
///
/// f is homogeneous of degree 1 in x, so on each arc of directions xi = (cos psi, sin psi)
/// where y and the active set are fixed, y f(rho xi) = rho (A cos psi + B sin psi): the loss
/// is (1/2 pi) int G(y f(xi)) dpsi and each gradient an integral of H(y f(xi)) against xi
/// (loss and gradients share the nodes: each arc's values are computed once).
pub fn two_node(
    table: &RadialTable,
    w: [[f64; 2]; 2],
    v: [f64; 2],
    grad_w: &mut [[f64; 2]; 2],
    grad_v: &mut [f64; 2],
) -> f64 {
    // Breakpoints: where y flips (psi = pi/2, 3 pi/2) and where a unit switches.
    let tau = 2.0 * PI;
    let mut cuts = vec![0.0, 0.5 * PI, 1.5 * PI, tau];
    for wk in &w {
        if wk[0] != 0.0 || wk[1] != 0.0 {
            let phase = wk[1].atan2(wk[0]);
            cuts.push((phase + 0.5 * PI).rem_euclid(tau));
            cuts.push((phase - 0.5 * PI).rem_euclid(tau));
        }
    }
    cuts.sort_by(f64::total_cmp);
    let active = |wk: &[f64; 2], psi: f64| wk[0] * psi.cos() + wk[1] * psi.sin();
    let mut loss = 0.0;
    let mut sums = [0.0f64; 6];
    for pair in cuts.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        if hi - lo <= 1e-15 {
            continue;
        }
        let mid = 0.5 * (lo + hi);
        let y = if mid.cos() > 0.0 { 1.0 } else { -1.0 };
        let on = [active(&w[0], mid) > 0.0, active(&w[1], mid) > 0.0];
        let (mut a, mut b) = (0.0, 0.0);
        for k in 0..2 {
            if on[k] {
                a += y * v[k] * w[k][0];
                b += y * v[k] * w[k][1];
            }
        }
        // The zeros of the margin A cos + B sin split the arc: H has a layer of width
        // ~1/sqrt(A^2 + B^2) there, which tanh-sinh resolves at an end point.
        let mut ends = vec![lo, hi];
        if a != 0.0 || b != 0.0 {
            let phase = b.atan2(a);
            for zero in [0.5 * PI, -0.5 * PI, 1.5 * PI, -1.5 * PI] {
                let z = (phase + zero).rem_euclid(tau);
                if z > lo + 1e-12 && z < hi - 1e-12 {
                    ends.push(z);
                }
            }
        }
        ends.sort_by(f64::total_cmp);
        ends.dedup();
        for piece in ends.windows(2) {
            // The values at each node: G, then H times (xi_1, xi_2) for each active unit and
            // H relu(w_k xi) for v_k.
            let cache = std::cell::RefCell::new(std::collections::HashMap::new());
            let values = |psi: f64| -> [f64; 7] {
                *cache.borrow_mut().entry(psi.to_bits()).or_insert_with(|| {
                    let (g, h) = table.eval(a * psi.cos() + b * psi.sin());
                    let mut out = [g, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
                    for k in 0..2 {
                        if on[k] {
                            out[1 + 2 * k] = y * v[k] * psi.cos() * h;
                            out[2 + 2 * k] = y * v[k] * psi.sin() * h;
                            out[5 + k] = y * active(&w[k], psi) * h;
                        }
                    }
                    out
                })
            };
            loss += integral(|psi| values(psi)[0], piece[0], piece[1]);
            for (i, sum) in sums.iter_mut().enumerate() {
                let k = if i < 4 { i / 2 } else { i - 4 };
                if on[k] {
                    *sum += integral(|psi| values(psi)[1 + i], piece[0], piece[1]);
                }
            }
        }
    }
    let norm = 1.0 / tau;
    *grad_w = [
        [sums[0] * norm, sums[1] * norm],
        [sums[2] * norm, sums[3] * norm],
    ];
    *grad_v = [sums[4] * norm, sums[5] * norm];
    loss * norm
}

/// A draw of the label and point: y = sign(x_1).
pub fn labelled_sample(law: &Law, dim: usize, rng: &mut ChaCha8Rng) -> (f64, Vec<f64>) {
    let x = law.sample(dim, rng);
    let y = if x[0] >= 0.0 { 1.0 } else { -1.0 };
    (y, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;

    const LAWS: [Law; 3] = [
        Law::Gaussian,
        Law::Sphere { dim: 3 },
        Law::Sphere { dim: 7 },
    ];

    #[test]
    fn the_marginals_are_densities_with_unit_variance() {
        for law in LAWS {
            let end = law.marginal_end();
            let mass = integral(|a| 2.0 * law.marginal_density(a), 0.0, end);
            let second = integral(|a| 2.0 * a * a * law.marginal_density(a), 0.0, end);
            assert!((mass - 1.0).abs() < 1e-12, "{law:?}: mass {mass}");
            assert!((second - 1.0).abs() < 1e-12, "{law:?}: E a^2 = {second}");
            let radial = law.radial_mean(|_| 1.0, 1.0, f64::INFINITY);
            let radial2 = law.radial_mean(|r| r * r, 1.0, f64::INFINITY);
            assert!(
                (radial - 1.0).abs() < 1e-12,
                "{law:?}: radial mass {radial}"
            );
            assert!(
                (radial2 - 2.0).abs() < 1e-11,
                "{law:?}: E rho^2 = {radial2}"
            );
        }
        // E rho of the 2-D projection of the sphere in d = 4: (d-2) sqrt(d) int t^2 = 4/3.
        let m = Law::Sphere { dim: 4 }.mean_radius();
        assert!((m - 4.0 / 3.0).abs() < 1e-12, "{m}");
    }

    /// Monte Carlo estimate of the loss and gradient of beta, with 4 standard errors.
    fn monte_carlo(pop: &Population, beta: &[f64], n: usize) -> (f64, f64, Vec<f64>) {
        let mut rng = Streams::new(7).rng("mc");
        let d = beta.len();
        let (mut s, mut s2) = (0.0, 0.0);
        let mut g = vec![0.0; d];
        for _ in 0..n {
            let (y, x) = labelled_sample(&pop.law, d, &mut rng);
            let m = y * beta.iter().zip(&x).map(|(b, x)| b * x).sum::<f64>();
            let l = pop.loss.value(m);
            s += l;
            s2 += l * l;
            let slope = pop.loss.slope(m);
            for (gi, xi) in g.iter_mut().zip(&x) {
                *gi += slope * y * xi / n as f64;
            }
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        (mean, 4.0 * se, g)
    }

    #[test]
    fn the_linear_population_loss_matches_monte_carlo() {
        for law in [Law::Gaussian, Law::Sphere { dim: 4 }] {
            for loss in [Loss::Logistic, Loss::Exponential] {
                let pop = Population::new(law, loss);
                let beta = [0.8, -0.9, 0.3, 0.2];
                let mut g = [0.0; 4];
                let value = pop.linear(&beta, &mut g);
                let (mc, err, mc_g) = monte_carlo(&pop, &beta, 400_000);
                assert!(
                    (value - mc).abs() < err,
                    "{law:?} {loss:?}: quadrature {value} against Monte Carlo {mc} +- {err}"
                );
                for (a, b) in g.iter().zip(&mc_g) {
                    assert!((a - b).abs() < 0.02 * (1.0 + b.abs()), "{g:?} vs {mc_g:?}");
                }
            }
        }
    }

    #[test]
    fn the_gaussian_exponential_loss_matches_its_closed_form() {
        // E exp(-y beta^T x) = 2 e^{r^2/2} Phi(-r cos theta) for x ~ N(0, I): the 2-D
        // quadrature with its wedge integral against erfc.
        let pop = Population::new(Law::Gaussian, Loss::Exponential);
        for (r, theta) in [(0.3, 0.2), (1.5, 1.0), (4.0, 0.05), (0.7, 2.5)] {
            let beta = [r * f64::cos(theta), r * f64::sin(theta), 0.0];
            let mut g = [0.0; 3];
            let value = pop.linear(&beta, &mut g);
            let exact =
                2.0 * (0.5 * r * r).exp() * 0.5 * libm::erfc(r * f64::cos(theta) / 2f64.sqrt());
            assert!(
                (value - exact).abs() < 1e-12 * exact,
                "r {r} theta {theta}: {value} against {exact}"
            );
        }
    }

    /// Central differences of a loss of a vector.
    fn finite_differences(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-5 * (1.0 + x[i].abs());
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        for law in LAWS {
            for loss in [Loss::Logistic, Loss::Exponential] {
                let pop = Population::new(law, loss);
                for beta in [
                    vec![2.0, 0.5, -0.3],
                    vec![40.0, 1e-3, 2e-3],
                    vec![-0.5, 0.2, 0.1],
                ] {
                    let mut g = vec![0.0; 3];
                    pop.linear(&beta, &mut g);
                    let fd = finite_differences(&|b| pop.linear(b, &mut [0.0; 3]), &beta);
                    for (a, b) in g.iter().zip(&fd) {
                        assert!(
                            (a - b).abs() < 1e-7 * (1.0 + b.abs()),
                            "{law:?} {loss:?} {beta:?}: {g:?} vs {fd:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_radial_table_matches_direct_quadrature() {
        for law in [Law::Gaussian, Law::Sphere { dim: 5 }] {
            for loss in [Loss::Logistic, Loss::Exponential] {
                let pop = Population::new(law, loss);
                let table = RadialTable::new(pop.clone());
                for c in [
                    0.0, 0.01, 0.3, 1.0, 2.7, 17.0, 300.0, 5000.0, -0.4, -3.0, -11.0, -16.0,
                ] {
                    let (g, h) = table.eval(c);
                    let (g0, h0) = pop.radial_pair(c);
                    assert!(
                        (g - g0).abs() <= 1e-12 * g0.abs(),
                        "{law:?} {loss:?} G({c}) {g} {g0}"
                    );
                    assert!(
                        (h - h0).abs() <= 1e-12 * h0.abs(),
                        "{law:?} {loss:?} H({c}) {h} {h0}"
                    );
                }
            }
        }
    }

    fn two_node_loss(table: &RadialTable, p: &[f64]) -> f64 {
        let (mut gw, mut gv) = ([[0.0; 2]; 2], [0.0; 2]);
        two_node(
            table,
            [[p[0], p[1]], [p[2], p[3]]],
            [p[4], p[5]],
            &mut gw,
            &mut gv,
        )
    }

    #[test]
    fn the_two_node_loss_is_the_linear_one_when_the_units_are_opposite() {
        // relu(z) - relu(-z) = z: w_2 = -w_1, v = (1, -1) is the linear predictor w_1,
        // computed by the other formula.
        for loss in [Loss::Logistic, Loss::Exponential] {
            let pop = Population::new(Law::Sphere { dim: 4 }, loss);
            let table = RadialTable::new(pop.clone());
            let beta = [1.3, -0.4];
            let two = two_node_loss(&table, &[1.3, -0.4, -1.3, 0.4, 1.0, -1.0]);
            let one = pop.linear(&[beta[0], beta[1], 0.0, 0.0], &mut [0.0; 4]);
            assert!(
                (two - one).abs() < 1e-12 * one,
                "{loss:?}: {two} against {one}"
            );
        }
    }

    #[test]
    fn two_node_gradients_match_finite_differences_and_monte_carlo() {
        let pop = Population::new(Law::Gaussian, Loss::Logistic);
        let table = RadialTable::new(pop.clone());
        let p = [0.9, 0.6, -0.2, 1.1, 0.8, -1.3];
        let (mut gw, mut gv) = ([[0.0; 2]; 2], [0.0; 2]);
        let value = two_node(
            &table,
            [[p[0], p[1]], [p[2], p[3]]],
            [p[4], p[5]],
            &mut gw,
            &mut gv,
        );
        let g = [gw[0][0], gw[0][1], gw[1][0], gw[1][1], gv[0], gv[1]];
        let fd = finite_differences(&|q| two_node_loss(&table, q), &p);
        for (a, b) in g.iter().zip(&fd) {
            assert!((a - b).abs() < 1e-7 * (1.0 + b.abs()), "{g:?} vs {fd:?}");
        }
        // The loss against a sample of the network itself.
        let mut rng = Streams::new(3).rng("mc");
        let n = 400_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let (y, x) = labelled_sample(&pop.law, 2, &mut rng);
            let f = p[4] * (p[0] * x[0] + p[1] * x[1]).max(0.0)
                + p[5] * (p[2] * x[0] + p[3] * x[1]).max(0.0);
            let l = pop.loss.value(y * f);
            s += l;
            s2 += l * l;
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        assert!(
            (value - mean).abs() < 4.0 * se,
            "{value} against {mean} +- {}",
            4.0 * se
        );
    }
}
