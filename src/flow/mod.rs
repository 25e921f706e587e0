//! Gradient flow d theta / dt = -grad L(theta), and gradient descent, its discrete
//! counterpart with step eta: the engine the gradient-flow experiments share (deep linear
//! networks, directional convergence, sparse linear networks; notes
//! `../shared/papers/nn_theory.md`, "Shared facts").
//!
//! The flow is integrated by the Dormand-Prince 5(4) pair ([`dopri5`], adaptive steps under
//! rtol/atol); the states at the requested times come from its continuous extension, so the
//! steps follow the error control alone and an output costs an interpolation. The tests below
//! hold the engine to closed forms at its stated tolerance.

mod dopri5;

pub use dopri5::Dopri5;

use anyhow::{Result, anyhow};

/// A loss and its gradient.
pub trait Objective: Sync {
    fn dim(&self) -> usize;
    fn loss(&self, theta: &[f64]) -> f64;
    fn gradient(&self, theta: &[f64], out: &mut [f64]);
}

/// Error control of the integrator: per component |err| <= atol + rtol |theta|.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    pub rtol: f64,
    pub atol: f64,
    /// Most integrator steps before giving up.
    pub max_steps: usize,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            rtol: 1e-10,
            atol: 1e-12,
            max_steps: 1_000_000,
        }
    }
}

/// States at the requested times.
#[derive(Debug, Clone)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    /// Accepted integrator steps (gradient descent: steps taken).
    pub steps: usize,
    /// Gradient evaluations.
    pub evaluations: usize,
}

/// An autonomous vector field dx/dt = v(x).
pub trait VectorField: Sync {
    fn velocity(&self, x: &[f64], out: &mut [f64]);
}

/// The field -grad L of an objective.
struct Descent<'a, O: Objective>(&'a O);

impl<O: Objective> VectorField for Descent<'_, O> {
    fn velocity(&self, x: &[f64], out: &mut [f64]) {
        self.0.gradient(x, out);
        for v in out.iter_mut() {
            *v = -*v;
        }
    }
}

/// Integrates the gradient flow from theta0 at t = times[0] and returns the states at
/// `times` (increasing).
pub fn gradient_flow<O: Objective>(
    objective: &O,
    theta0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
) -> Result<Trajectory> {
    integrate(&Descent(objective), theta0, times, tolerances)
}

/// [`gradient_flow`] that stops early when `stop()` turns true (asked before every step).
pub fn gradient_flow_until<O: Objective>(
    objective: &O,
    theta0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
    stop: &dyn Fn() -> bool,
) -> Result<Trajectory> {
    integrate_until(&Descent(objective), theta0, times, tolerances, stop)
}

/// [`gradient_flow_until`] streaming its states (see [`integrate_each`]).
pub fn gradient_flow_each<O: Objective>(
    objective: &O,
    theta0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
    stop: &dyn Fn() -> bool,
    each: &mut dyn FnMut(f64, &[f64]) -> Result<()>,
) -> Result<Integration> {
    integrate_each(&Descent(objective), theta0, times, tolerances, stop, each)
}

/// Integrates dx/dt = v(x) from x0 at t = times[0] and returns the states at `times`
/// (increasing).
pub fn integrate<F: VectorField + ?Sized>(
    field: &F,
    x0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
) -> Result<Trajectory> {
    integrate_until(field, x0, times, tolerances, &|| false)
}

/// [`integrate`], stopping early (with the states reached so far) when `stop()` turns true;
/// it is asked before every step (Ctrl-C during a long run).
pub fn integrate_until<F: VectorField + ?Sized>(
    field: &F,
    x0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
    stop: &dyn Fn() -> bool,
) -> Result<Trajectory> {
    let mut trajectory = Trajectory {
        times: Vec::new(),
        states: Vec::new(),
        steps: 0,
        evaluations: 0,
    };
    let done = integrate_each(field, x0, times, tolerances, stop, &mut |t, x| {
        trajectory.times.push(t);
        trajectory.states.push(x.to_vec());
        Ok(())
    })?;
    trajectory.steps = done.steps;
    trajectory.evaluations = done.evaluations;
    Ok(trajectory)
}

/// [`integrate_until`] that hands the state at each output time to `each(t, x)` as soon as it
/// is reached, so a long integration streams its rows, and keeps only the last state.
pub fn integrate_each<F: VectorField + ?Sized>(
    field: &F,
    x0: &[f64],
    times: &[f64],
    tolerances: Tolerances,
    stop: &dyn Fn() -> bool,
    each: &mut dyn FnMut(f64, &[f64]) -> Result<()>,
) -> Result<Integration> {
    let Some(&t0) = times.first() else {
        return Err(anyhow!("integration: no output times"));
    };
    if times.windows(2).any(|w| w[1] <= w[0]) || !times.iter().all(|t| t.is_finite()) {
        return Err(anyhow!("integration: output times must increase"));
    }
    each(t0, x0)?;
    let t_end = *times.last().expect("non-empty");
    let mut integration = Dopri5::new(field, x0, t0, t_end, tolerances);
    let mut state = x0.to_vec();
    'outputs: for &t in &times[1..] {
        // Asked at every step too: a long stretch between two outputs may take many.
        while integration.time() < t {
            if stop() {
                break 'outputs;
            }
            integration.step()?;
        }
        integration.state_at(t, &mut state)?;
        each(t, &state)?;
    }
    Ok(Integration {
        steps: integration.steps,
        evaluations: integration.evaluations,
        end: state,
    })
}

/// What [`integrate_each`] leaves: its cost and the state it reached.
pub struct Integration {
    /// Accepted integrator steps.
    pub steps: usize,
    /// Evaluations of the field.
    pub evaluations: usize,
    /// The state at the last output time reached.
    pub end: Vec<f64>,
}

/// Gradient descent theta <- theta - eta grad L(theta) for `steps` steps, keeping the states
/// at the steps `keep` selects (step k stands for time k eta).
pub fn gradient_descent<O: Objective>(
    objective: &O,
    theta0: &[f64],
    eta: f64,
    steps: usize,
    keep: impl Fn(usize) -> bool,
) -> Trajectory {
    let mut theta = theta0.to_vec();
    let mut grad = vec![0.0; theta.len()];
    let mut trajectory = Trajectory {
        times: Vec::new(),
        states: Vec::new(),
        steps,
        evaluations: steps,
    };
    for k in 0..=steps {
        if keep(k) {
            trajectory.times.push(k as f64 * eta);
            trajectory.states.push(theta.clone());
        }
        if k == steps {
            break;
        }
        objective.gradient(&theta, &mut grad);
        for (t, g) in theta.iter_mut().zip(&grad) {
            *t -= eta * g;
        }
    }
    trajectory
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L = sum_i a_i theta_i^2 / 2: theta_i(t) = theta_i(0) exp(-a_i t).
    struct Diagonal(Vec<f64>);

    impl Objective for Diagonal {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn loss(&self, theta: &[f64]) -> f64 {
            0.5 * self
                .0
                .iter()
                .zip(theta)
                .map(|(a, t)| a * t * t)
                .sum::<f64>()
        }
        fn gradient(&self, theta: &[f64], out: &mut [f64]) {
            for ((o, a), t) in out.iter_mut().zip(&self.0).zip(theta) {
                *o = a * t;
            }
        }
    }

    /// The scalar two-layer chain L = (z - w1 w2)^2 / 2.
    struct Chain {
        z: f64,
    }

    impl Objective for Chain {
        fn dim(&self) -> usize {
            2
        }
        fn loss(&self, w: &[f64]) -> f64 {
            0.5 * (self.z - w[0] * w[1]).powi(2)
        }
        fn gradient(&self, w: &[f64], out: &mut [f64]) {
            let r = w[0] * w[1] - self.z;
            out[0] = r * w[1];
            out[1] = r * w[0];
        }
    }

    fn grid(t1: f64, n: usize) -> Vec<f64> {
        (0..=n).map(|k| t1 * k as f64 / n as f64).collect()
    }

    #[test]
    fn linear_flow_matches_the_exponential_at_the_stated_tolerance() {
        let a = vec![0.5, 1.0, 3.0];
        let theta0 = [1.0, -2.0, 0.5];
        for rtol in [1e-6, 1e-10] {
            let tol = Tolerances {
                rtol,
                atol: rtol * 1e-2,
                ..Default::default()
            };
            let times = grid(4.0, 40);
            let traj = gradient_flow(&Diagonal(a.clone()), &theta0, &times, tol).unwrap();
            assert_eq!(
                traj.times, times,
                "dense output at exactly the requested times"
            );
            let mut worst: f64 = 0.0;
            for (t, state) in traj.times.iter().zip(&traj.states) {
                for i in 0..3 {
                    let exact = theta0[i] * (-a[i] * t).exp();
                    worst = worst.max((state[i] - exact).abs() / exact.abs().max(1e-3));
                }
            }
            // Global error stays within a small multiple of the local tolerance.
            assert!(worst < 50.0 * rtol, "rtol {rtol}: relative error {worst}");
            assert!(worst > 0.0);
        }
    }

    #[test]
    fn the_balanced_two_layer_chain_follows_the_logistic_solution() {
        // w1 = w2 = sqrt(p0): the product obeys p' = 2 p (z - p), so
        // p(t) = z / (1 + (z/p0 - 1) exp(-2 z t)) (Saxe et al.; notes (a) item 2).
        let (z, p0) = (2.0f64, 0.01f64);
        let w0 = [p0.sqrt(), p0.sqrt()];
        let times = grid(6.0, 60);
        let traj = gradient_flow(&Chain { z }, &w0, &times, Tolerances::default()).unwrap();
        for (t, w) in traj.times.iter().zip(&traj.states) {
            let exact = z / (1.0 + (z / p0 - 1.0) * (-2.0 * z * t).exp());
            assert!(
                (w[0] * w[1] - exact).abs() < 1e-8,
                "t = {t}: {} vs {exact}",
                w[0] * w[1]
            );
        }
    }

    #[test]
    fn the_flow_conserves_the_layer_imbalance() {
        // w1^2 - w2^2 is constant along the flow of the chain (notes, "Shared facts").
        let w0 = [0.5, 1.2];
        let traj = gradient_flow(
            &Chain { z: -1.0 },
            &w0,
            &grid(20.0, 20),
            Tolerances::default(),
        )
        .unwrap();
        let c0 = w0[0] * w0[0] - w0[1] * w0[1];
        for w in &traj.states {
            assert!((w[0] * w[0] - w[1] * w[1] - c0).abs() < 1e-8);
        }
        // The unbalanced start crosses the sign and reaches the minimum w1 w2 = -1.
        let last = traj.states.last().unwrap();
        assert!((last[0] * last[1] + 1.0).abs() < 1e-8);
    }

    #[test]
    fn gradient_descent_approaches_the_flow_at_first_order() {
        let w0 = [0.3, 0.4];
        let chain = Chain { z: 1.5 };
        let flow = gradient_flow(&chain, &w0, &[0.0, 1.0], Tolerances::default()).unwrap();
        let exact = &flow.states[1];
        let error = |eta: f64| {
            let steps = (1.0 / eta).round() as usize;
            let gd = gradient_descent(&chain, &w0, eta, steps, |k| k == steps);
            let w = &gd.states[0];
            ((w[0] - exact[0]).powi(2) + (w[1] - exact[1]).powi(2)).sqrt()
        };
        let (e1, e2) = (error(1e-2), error(5e-3));
        // Euler's global error is O(eta): halving eta halves it.
        assert!((e1 / e2 - 2.0).abs() < 0.1, "{e1} / {e2}");
    }

    #[test]
    fn a_stop_request_ends_the_integration_at_an_output_time() {
        // Stop once three outputs after the start are written: the rows end there.
        let d = Diagonal(vec![1.0]);
        let written = std::cell::Cell::new(0);
        let mut times = Vec::new();
        let stop = || written.get() >= 4;
        let done = gradient_flow_each(
            &d,
            &[1.0],
            &grid(1.0, 10),
            Tolerances::default(),
            &stop,
            &mut |t, _| {
                written.set(written.get() + 1);
                times.push(t);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(times, vec![0.0, 0.1, 0.2, 0.3]);
        assert!(done.steps > 0);
    }

    #[test]
    fn a_stop_request_is_heard_between_two_distant_outputs() {
        // Ctrl-C during a long stretch without outputs: the integration ends after the
        // 100th step instead of taking the millions the stretch needs.
        let d = Diagonal(vec![1.0]);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let stop = || calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 100;
        let tight = Tolerances {
            rtol: 1e-12,
            atol: 1e-14,
            ..Default::default()
        };
        let path = gradient_flow_until(&d, &[1.0], &[0.0, 1e7], tight, &stop).unwrap();
        assert_eq!(path.times, vec![0.0]);
        assert_eq!(path.steps, 100);
    }

    #[test]
    fn bad_times_and_stiff_budgets_are_errors() {
        let d = Diagonal(vec![1.0]);
        assert!(gradient_flow(&d, &[1.0], &[], Tolerances::default()).is_err());
        assert!(gradient_flow(&d, &[1.0], &[1.0, 0.5], Tolerances::default()).is_err());
        let tiny = Tolerances {
            max_steps: 3,
            ..Default::default()
        };
        let err = gradient_flow(&Diagonal(vec![1e6]), &[1.0], &[0.0, 100.0], tiny).unwrap_err();
        assert!(format!("{err}").contains("3 steps reached"), "{err}");
    }
}
