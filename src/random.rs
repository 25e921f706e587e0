//! Random streams: one ChaCha8 stream per named component of a run, derived from its root seed.
//!
//! [`Streams`] is the only way to a stream: a run asks its context (`ctx.rng("mdp")`), a
//! figure that redraws something asks the run it draws (`run.rng("slice")`), both built from the
//! resolved spec's seed. Adding a component never shifts another's randomness, and a stream
//! does not depend on which thread draws from it.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The streams of one root seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    seed: u64,
}

impl Streams {
    pub const fn new(seed: u64) -> Streams {
        Streams { seed }
    }

    /// The root seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The stream of one component (`"mdp"`, `"start/3"`, `"method/svrs/0"`).
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(stable_hash(component));
        rng
    }
}

/// A standard normal draw (Box-Muller; the second value of the pair is discarded so every draw
/// uses exactly two uniforms). The streams of pmd, svrs, deeplinear, directional and
/// sparselinear are defined by it.
#[inline]
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Fills `out` with standard normal draws by the ziggurat method of `rand_distr`: several
/// times faster than [`standard_normal`], for hot loops that need many draws (mini-batches).
pub fn fill_standard_normal(rng: &mut ChaCha8Rng, out: &mut [f64]) {
    use rand::Rng;
    for x in out.iter_mut() {
        *x = rng.sample(rand_distr::StandardNormal);
    }
}

/// FNV-1a: a hash that stays the same across Rust versions and platforms, unlike
/// `DefaultHasher` (stream ids and file names).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a1 = Streams::new(7).rng("mdp").next_u64();
        let a2 = Streams::new(7).rng("mdp").next_u64();
        let b = Streams::new(7).rng("init_policy").next_u64();
        let c = Streams::new(8).rng("mdp").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut rng = Streams::new(1).rng("n");
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mut ys = vec![0.0; n];
        fill_standard_normal(&mut rng, &mut ys);
        for v in [&xs, &ys] {
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the
            // variance; 5 of them.
            assert!(
                mean.abs() < 0.012 && (var - 1.0).abs() < 0.016,
                "{mean} {var}"
            );
        }
    }
}
