//! The methods, each counted in communications, rounds and local gradient calls.
//!
//! Accounting (notes section 1): a communication is one client-server vector exchange; a
//! full gradient grad f(x) costs n communications and 1 round; a step that talks to one
//! sampled node costs 1 communication and 1 round, and 0 communications when the master
//! samples itself. Every evaluation of a grad f_i is a local gradient call, wherever it runs.
//!
//! Update rules and parameters follow `../shared/papers/svrs.md`; SVRS (section 2), AccSVRS
//! (section 3), SVRP, Catalyzed SVRP and the AccEG parameters (section 5) are
//! *reconstructed* there, not read in the paper.

use std::time::Instant;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::local::LocalSolver;
use super::problem::{Constants, Problem, dist2};
use crate::contract::{Cancel, Interrupted};
use crate::vector::{dot, norm2};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Gd,
    Agd,
    Dane,
    Cgm,
    Acceg,
    Svrp,
    CatalyzedSvrp,
    Svrs,
    Accsvrs,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Gd,
        Method::Agd,
        Method::Dane,
        Method::Cgm,
        Method::Acceg,
        Method::Svrp,
        Method::CatalyzedSvrp,
        Method::Svrs,
        Method::Accsvrs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Gd => "gd",
            Method::Agd => "agd",
            Method::Dane => "dane",
            Method::Cgm => "cgm",
            Method::Acceg => "acceg",
            Method::Svrp => "svrp",
            Method::CatalyzedSvrp => "catalyzed_svrp",
            Method::Svrs => "svrs",
            Method::Accsvrs => "accsvrs",
        }
    }

    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the method samples nodes (and so runs once per seed).
    pub fn stochastic(self) -> bool {
        matches!(
            self,
            Method::Svrp | Method::CatalyzedSvrp | Method::Svrs | Method::Accsvrs
        )
    }
}

/// The parameters every method takes from theory, from the exact constants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parameters {
    /// Probability of a new anchor (SVRS, AccSVRS, SVRP): 1/n.
    pub p: f64,
    /// SVRS / AccSVRS: theta = theta_scale sqrt(p) / (4 delta_avg).
    pub theta: f64,
    /// AccSVRS: tau = min(sqrt(mu theta / p) / 4, 1/4), alpha = theta / (8 p tau).
    pub tau: f64,
    pub alpha: f64,
    /// Composite gradient method: theta = theta_scale / (2 delta_master).
    pub theta_cgm: f64,
    /// AccEG with L_p = delta_max or delta_master (spec `acceg_delta`): tau = min(1, sqrt(mu/L_p)/2), theta = 1/(2 L_p),
    /// eta = min(1/(2 mu), 1/(2 sqrt(mu L_p))), alpha = mu.
    pub acceg_tau: f64,
    pub acceg_theta: f64,
    pub acceg_eta: f64,
    /// SVRP: eta = mu / (2 delta_avg^2).
    pub svrp_eta: f64,
    /// Catalyzed SVRP: gamma = max(delta_avg / sqrt(n) - mu, 0), momentum
    /// (1 - sqrt q)/(1 + sqrt q) with q = mu/(mu + gamma), inner steps
    /// ceil(2 (n + (delta_avg/(mu + gamma))^2)) (our choice; the notes leave it open).
    pub catalyst_gamma: f64,
    pub catalyst_beta: f64,
    pub catalyst_inner: u64,
    /// Gradient descent and AGD step 1/L (for logistic the global bound L_global).
    pub step: f64,
    pub agd_beta: f64,
}

impl Parameters {
    pub fn new(
        c: &Constants,
        l_global: f64,
        n: usize,
        theta_scale: f64,
        acceg_lp: f64,
    ) -> Parameters {
        let n_f = n as f64;
        let p = 1.0 / n_f;
        let theta = theta_scale * p.sqrt() / (4.0 * c.delta_avg);
        let tau = ((c.mu * theta / p).sqrt() / 4.0).min(0.25);
        let lp = acceg_lp;
        let gamma = (c.delta_avg / n_f.sqrt() - c.mu).max(0.0);
        let q = c.mu / (c.mu + gamma);
        let kappa_inner = c.delta_avg / (c.mu + gamma);
        let (sl, sm) = (l_global.sqrt(), c.mu.sqrt());
        Parameters {
            p,
            theta,
            tau,
            alpha: theta / (8.0 * p * tau),
            theta_cgm: theta_scale / (2.0 * c.delta_master),
            acceg_tau: ((c.mu / lp).sqrt() / 2.0).min(1.0),
            acceg_theta: 1.0 / (2.0 * lp),
            acceg_eta: (1.0 / (2.0 * c.mu)).min(1.0 / (2.0 * (c.mu * lp).sqrt())),
            svrp_eta: c.mu / (2.0 * c.delta_avg * c.delta_avg),
            catalyst_gamma: gamma,
            catalyst_beta: (1.0 - q.sqrt()) / (1.0 + q.sqrt()),
            catalyst_inner: (2.0 * (n_f + kappa_inner * kappa_inner)).ceil() as u64,
            step: 1.0 / l_global,
            agd_beta: (sl - sm) / (sl + sm),
        }
    }
}

/// Communication counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    pub comms: u64,
    pub rounds: u64,
    pub local_grads: u64,
}

/// One recorded point of a method's path.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub meter: Meter,
    /// ||x - x*||^2 / ||x0 - x*||^2.
    pub rel_error: f64,
    /// f(x) - f*.
    pub f_gap: f64,
    pub wall_s: f64,
}

/// When a method stops.
#[derive(Debug, Clone, Copy)]
pub struct Stopping {
    /// Relative error ||x - x*||^2 / ||x0 - x*||^2 to reach.
    pub tol: f64,
    pub max_comms: u64,
    /// Record a row each time this many more communications have been made; 0: after n more
    /// communications or 1% more, whichever is later (fine early, ~230 rows per decade late).
    pub record_every: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Reached,
    Budget,
    Diverged,
    Cancelled,
}

/// What one (method, seed) run produced besides its records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub end: End,
    /// Cost when the tolerance was first met.
    pub reached: Option<Meter>,
    pub last: Meter,
    /// The last finite relative error observed (none if the start itself was not finite).
    pub final_rel_error: Option<f64>,
}

/// The optimum the error is measured against.
pub struct Reference {
    pub x_star: Vec<f64>,
    pub f_star: f64,
    pub x0: Vec<f64>,
    /// Ridge: the Hessian H of f (row-major d x d), so that f(x) - f* = (x - x*)^T H (x - x*) / 2
    /// exactly, without a pass over the data and without the cancellation of f(x) - f*.
    pub hessian: Option<Vec<f64>>,
}

impl Reference {
    /// f(x) - f*.
    pub fn gap(&self, problem: &Problem, x: &[f64]) -> f64 {
        match &self.hessian {
            Some(h) => {
                let d = x.len();
                let e: Vec<f64> = x.iter().zip(&self.x_star).map(|(a, b)| a - b).collect();
                let quad: f64 = (0..d).map(|j| e[j] * dot(&h[j * d..(j + 1) * d], &e)).sum();
                0.5 * quad
            }
            None => problem.value(x) - self.f_star,
        }
    }
}

/// Counts, records and decides when to stop.
pub struct Tracker<'a> {
    problem: &'a Problem,
    reference: &'a Reference,
    stopping: Stopping,
    init_dist2: f64,
    pub meter: Meter,
    next_record: u64,
    last_recorded: Option<Meter>,
    sink: &'a mut dyn FnMut(Record) -> Result<()>,
    cancel: Cancel<'a>,
    /// A record the sink refused (a non-finite metric): the method stops and it is returned.
    error: Option<anyhow::Error>,
    started: Instant,
    end: Option<End>,
    reached: Option<Meter>,
    last_error: Option<f64>,
}

impl<'a> Tracker<'a> {
    pub fn new(
        problem: &'a Problem,
        reference: &'a Reference,
        stopping: Stopping,
        cancel: Cancel<'a>,
        sink: &'a mut dyn FnMut(Record) -> Result<()>,
    ) -> Tracker<'a> {
        Tracker {
            problem,
            reference,
            stopping,
            init_dist2: dist2(&reference.x0, &reference.x_star),
            meter: Meter::default(),
            next_record: 0,
            last_recorded: None,
            sink,
            cancel,
            error: None,
            started: Instant::now(),
            end: None,
            reached: None,
            last_error: None,
        }
    }

    /// A full gradient: every node computes and sends grad f_i.
    pub fn full_round(&mut self) {
        let n = self.problem.nodes() as u64;
        self.meter.comms += n;
        self.meter.rounds += 1;
        self.meter.local_grads += n;
    }

    /// One round in which every node sends a vector (DANE's local solutions).
    pub fn gather_round(&mut self) {
        self.meter.comms += self.problem.nodes() as u64;
        self.meter.rounds += 1;
    }

    /// One exchange with node i (free when the master samples itself).
    pub fn exchange(&mut self, node: usize) {
        if node != 0 {
            self.meter.comms += 1;
        }
        self.meter.rounds += 1;
    }

    pub fn grads(&mut self, calls: u64) {
        self.meter.local_grads += calls;
    }

    fn record(&mut self, x: &[f64], rel_error: f64) {
        let f_gap = self.reference.gap(self.problem, x);
        let sent = (self.sink)(Record {
            meter: self.meter,
            rel_error,
            f_gap,
            wall_s: self.started.elapsed().as_secs_f64(),
        });
        if let Err(e) = sent {
            self.error.get_or_insert(e);
        }
        self.last_recorded = Some(self.meter);
    }

    /// Looks at the current iterate; false when the method should stop.
    pub fn observe(&mut self, x: &[f64]) -> bool {
        let rel = dist2(x, &self.reference.x_star) / self.init_dist2;
        if !rel.is_finite() || rel > 1e30 {
            self.end = Some(End::Diverged);
            return false;
        }
        self.last_error = Some(rel);
        let due = self.meter.comms >= self.next_record;
        let stop = if rel <= self.stopping.tol {
            self.reached = Some(self.meter);
            Some(End::Reached)
        } else if self.meter.comms >= self.stopping.max_comms {
            Some(End::Budget)
        } else if self.cancel.is_set() {
            Some(End::Cancelled)
        } else {
            None
        };
        if due || (stop.is_some() && self.last_recorded != Some(self.meter)) {
            self.record(x, rel);
            let comms = self.meter.comms;
            self.next_record = match self.stopping.record_every {
                0 => (comms + self.problem.nodes() as u64).max(comms + comms.div_ceil(100)),
                every => (comms / every + 1) * every,
            };
        }
        self.end = stop;
        stop.is_none() && self.error.is_none()
    }

    /// Why the method stopped, if not by its own rule: a record the sink refused, or Ctrl-C.
    pub fn failure(&mut self) -> Option<anyhow::Error> {
        match (self.error.take(), self.end) {
            (Some(e), _) => Some(e),
            (None, Some(End::Cancelled)) => Some(Interrupted.into()),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Outcome {
        Outcome {
            end: self.end.unwrap_or(End::Budget),
            reached: self.reached,
            last: self.meter,
            final_rel_error: self.last_error,
        }
    }
}

/// Everything a method needs.
pub struct Setup<'a> {
    pub problem: &'a Problem,
    pub constants: &'a Constants,
    pub parameters: &'a Parameters,
    /// Norm of grad f(x0), the scale of the inexact solvers' floor.
    pub grad_scale: f64,
    /// Ridge: the Cholesky factor of H_1 + I/theta shared by SVRS and AccSVRS.
    pub master_factor: Option<std::sync::Arc<super::local::Factor>>,
}

impl Setup<'_> {
    /// The master's solver for SVRS and AccSVRS (shift 1/theta).
    fn svrs_master(&self) -> LocalSolver<'_> {
        LocalSolver::with_master_factor(
            self.problem,
            1.0 / self.parameters.theta,
            self.grad_scale,
            self.master_factor.clone(),
        )
    }
}

/// Runs one method from x0 until the tracker stops it.
pub fn run(
    method: Method,
    setup: &Setup,
    tracker: &mut Tracker,
    rng: &mut ChaCha8Rng,
    x0: &[f64],
) -> Result<()> {
    let mut x = x0.to_vec();
    if !tracker.observe(&x) {
        return Ok(());
    }
    match method {
        Method::Gd => gd(setup, tracker, &mut x),
        Method::Agd => agd(setup, tracker, &mut x),
        Method::Cgm => cgm(setup, tracker, &mut x),
        Method::Dane => dane(setup, tracker, &mut x),
        Method::Acceg => acceg(setup, tracker, &mut x),
        Method::Svrp => svrp(setup, tracker, rng, &mut x, None).map(|_| ()),
        Method::CatalyzedSvrp => catalyzed_svrp(setup, tracker, rng, &mut x),
        Method::Svrs => svrs(setup, tracker, rng, &mut x),
        Method::Accsvrs => accsvrs(setup, tracker, rng, &mut x),
    }
}

/// x <- x - grad f(x) / L.
fn gd(s: &Setup, t: &mut Tracker, x: &mut [f64]) -> Result<()> {
    let mut g = vec![0.0; x.len()];
    loop {
        s.problem.full_grad(x, &mut g);
        t.full_round();
        for (xi, gi) in x.iter_mut().zip(&g) {
            *xi -= s.parameters.step * gi;
        }
        if !t.observe(x) {
            return Ok(());
        }
    }
}

/// Nesterov's method for strongly convex f: x+ = y - grad f(y)/L, y+ = x+ + beta (x+ - x).
fn agd(s: &Setup, t: &mut Tracker, x: &mut [f64]) -> Result<()> {
    let (beta, step) = (s.parameters.agd_beta, s.parameters.step);
    let mut y = x.to_vec();
    let mut g = vec![0.0; x.len()];
    loop {
        s.problem.full_grad(&y, &mut g);
        t.full_round();
        for j in 0..x.len() {
            let next = y[j] - step * g[j];
            y[j] = next + beta * (next - x[j]);
            x[j] = next;
        }
        if !t.observe(x) {
            return Ok(());
        }
    }
}

/// The composite gradient method ("server-only DANE", notes section 5):
/// x+ = argmin f_1(x) + <grad f(x) - grad f_1(x), .> + ||. - x||^2 / (2 theta),
/// i.e. SVRS with the exact gradient in place of its estimator.
fn cgm(s: &Setup, t: &mut Tracker, x: &mut [f64]) -> Result<()> {
    let mut master = LocalSolver::new(s.problem, 1.0 / s.parameters.theta_cgm, s.grad_scale);
    let mut g = vec![0.0; x.len()];
    let mut next = vec![0.0; x.len()];
    loop {
        s.problem.full_grad(x, &mut g);
        t.full_round();
        let calls = master.solve(0, x, &g, &mut next)?;
        t.grads(calls);
        x.copy_from_slice(&next);
        if !t.observe(x) {
            return Ok(());
        }
    }
}

/// DANE with eta = 1, mu_D = 0 (Shamir et al. 2014): node i solves
/// argmin f_i(u) - <grad f_i(x) - grad f(x), u>, and the master averages the solutions.
fn dane(s: &Setup, t: &mut Tracker, x: &mut [f64]) -> Result<()> {
    let n = s.problem.nodes();
    let mut nodes = LocalSolver::new(s.problem, 0.0, s.grad_scale);
    let mut g = vec![0.0; x.len()];
    let mut local = vec![0.0; x.len()];
    let mut mean = vec![0.0; x.len()];
    loop {
        s.problem.full_grad(x, &mut g);
        t.full_round();
        mean.fill(0.0);
        for i in 0..n {
            let calls = nodes.solve(i, x, &g, &mut local)?;
            t.grads(calls);
            for (m, l) in mean.iter_mut().zip(&local) {
                *m += l / n as f64;
            }
        }
        t.gather_round();
        x.copy_from_slice(&mean);
        if !t.observe(x) {
            return Ok(());
        }
    }
}

/// Accelerated extragradient sliding (Kovalev et al. 2022) with q = f_1, p = f - f_1:
/// x_g = tau x + (1 - tau) x_f; x_f = argmin <grad p(x_g), .> + q + ||. - x_g||^2/(2 theta);
/// x = x + eta alpha (x_f - x) - eta grad f(x_f). The output is x_f.
fn acceg(s: &Setup, t: &mut Tracker, x: &mut [f64]) -> Result<()> {
    let prm = s.parameters;
    let mut master = LocalSolver::new(s.problem, 1.0 / prm.acceg_theta, s.grad_scale);
    let d = x.len();
    let mut z = x.to_vec(); // Kovalev's x; our x is the output x_f.
    let (mut xg, mut g) = (vec![0.0; d], vec![0.0; d]);
    let alpha = s.constants.mu;
    loop {
        for j in 0..d {
            xg[j] = prm.acceg_tau * z[j] + (1.0 - prm.acceg_tau) * x[j];
        }
        s.problem.full_grad(&xg, &mut g);
        t.full_round();
        let calls = master.solve(0, &xg, &g, x)?;
        t.grads(calls);
        s.problem.full_grad(x, &mut g);
        t.full_round();
        for j in 0..d {
            z[j] += prm.acceg_eta * alpha * (x[j] - z[j]) - prm.acceg_eta * g[j];
        }
        if !t.observe(x) {
            return Ok(());
        }
    }
}

/// SVRP (Khaled and Jin 2023), optionally on f + (gamma/2)||. - y||^2 (the Catalyst inner
/// problem): sample m, g = grad f(w) - grad f_m(w), x+ = prox of eta (f_m + gamma/2 ||.-y||^2)
/// at x - eta g; with probability p a new anchor w = x+. `steps` limits the inner loop.
/// Returns false when the tracker stopped the run.
fn svrp(
    s: &Setup,
    t: &mut Tracker,
    rng: &mut ChaCha8Rng,
    x: &mut [f64],
    inner: Option<(&[f64], f64, u64)>,
) -> Result<bool> {
    let (n, d) = (s.problem.nodes(), x.len());
    let gamma = inner.map_or(0.0, |(_, g, _)| g);
    let eta = (s.constants.mu + gamma) / (2.0 * s.constants.delta_avg.powi(2));
    let shift = gamma + 1.0 / eta;
    let mut clients = LocalSolver::new(s.problem, shift, s.grad_scale);
    let mut w = x.to_vec();
    let mut gw = vec![0.0; d];
    s.problem.full_grad(&w, &mut gw);
    t.full_round();
    let (mut g, mut g0, mut center, mut next) =
        (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    let mut step = 0u64;
    loop {
        if let Some((_, _, steps)) = inner
            && step == steps
        {
            return Ok(true);
        }
        step += 1;
        let m = rng.random_range(0..n);
        // g = grad f(w) - grad f_m(w), computed by client m.
        s.problem.node_grad(m, &w, &mut g);
        for (gj, wj) in g.iter_mut().zip(&gw) {
            *gj = wj - *gj;
        }
        // The prox objective f_m(u) + <g, u> + (gamma/2)||u - y||^2 + ||u - x||^2/(2 eta)
        // is centred at (gamma y + x/eta)/shift; its gradient there is grad f_m + g.
        for j in 0..d {
            let y = inner.map_or(0.0, |(y, _, _)| y[j]);
            center[j] = (gamma * y + x[j] / eta) / shift;
        }
        s.problem.node_grad(m, &center, &mut g0);
        for (a, b) in g0.iter_mut().zip(&g) {
            *a += b;
        }
        t.grads(2);
        let calls = clients.solve(m, &center, &g0, &mut next)?;
        t.grads(calls);
        t.exchange(m);
        x.copy_from_slice(&next);
        if !t.observe(x) {
            return Ok(false);
        }
        if rng.random_bool(s.parameters.p) {
            w.copy_from_slice(x);
            s.problem.full_grad(&w, &mut gw);
            t.full_round();
        }
    }
}

/// Catalyst around SVRP: x_{t+1} ~ argmin f + (gamma/2)||. - y_t||^2 by a fixed number of
/// SVRP steps warm-started at x_t, y_t = x_t + beta (x_t - x_{t-1}).
fn catalyzed_svrp(s: &Setup, t: &mut Tracker, rng: &mut ChaCha8Rng, x: &mut [f64]) -> Result<()> {
    let prm = s.parameters;
    let mut y = x.to_vec();
    loop {
        let inner = (y.as_slice(), prm.catalyst_gamma, prm.catalyst_inner);
        let mut next = x.to_vec();
        if !svrp(s, t, rng, &mut next, Some(inner))? {
            return Ok(());
        }
        for j in 0..x.len() {
            y[j] = next[j] + prm.catalyst_beta * (next[j] - x[j]);
        }
        x.copy_from_slice(&next);
    }
}

/// One SVRS epoch (notes section 2) from x with anchor gradient gw = grad f(x) already
/// counted: until a coin with probability p says stop, sample i, form
/// v = grad f_i(x) - grad f_i(w) + grad f(w) and take the master step
/// x+ = argmin f_1 + <v - grad f_1(x), .> + ||. - x||^2 / (2 theta).
/// `watch` makes every inner iterate an observed output (SVRS) or none (AccSVRS).
/// Returns false when the tracker stopped the run.
#[allow(clippy::too_many_arguments)]
fn svrs_epoch(
    s: &Setup,
    t: &mut Tracker,
    rng: &mut ChaCha8Rng,
    master: &mut LocalSolver,
    w: &[f64],
    gw: &[f64],
    x: &mut [f64],
    watch: bool,
) -> Result<bool> {
    let n = s.problem.nodes();
    let mut v = vec![0.0; x.len()];
    let mut next = vec![0.0; x.len()];
    loop {
        let i = rng.random_range(0..n);
        v.copy_from_slice(gw);
        s.problem.add_node_grad_difference(i, x, w, &mut v);
        t.grads(2);
        t.exchange(i);
        let calls = master.solve(0, x, &v, &mut next)?;
        t.grads(calls);
        x.copy_from_slice(&next);
        if watch && !t.observe(x) {
            return Ok(false);
        }
        if rng.random_bool(s.parameters.p) {
            return Ok(true);
        }
    }
}

fn svrs(s: &Setup, t: &mut Tracker, rng: &mut ChaCha8Rng, x: &mut [f64]) -> Result<()> {
    let mut master = s.svrs_master();
    let mut w = vec![0.0; x.len()];
    let mut gw = vec![0.0; x.len()];
    loop {
        w.copy_from_slice(x);
        s.problem.full_grad(&w, &mut gw);
        t.full_round();
        if !svrs_epoch(s, t, rng, &mut master, &w, &gw, x, true)? {
            return Ok(());
        }
    }
}

/// AccSVRS (notes section 3, Katyusha X in the geometry of h = f_1 - f + ||.||^2/(2 theta)):
/// x_k = tau z + (1 - tau) y; y+ = SVRS epoch from x_k;
/// G = p (grad h(x_k) - grad h(y+)); z+ = (z + alpha mu y+ - alpha G) / (1 + alpha mu).
/// The output is y.
fn accsvrs(s: &Setup, t: &mut Tracker, rng: &mut ChaCha8Rng, y: &mut [f64]) -> Result<()> {
    let prm = s.parameters;
    let mu = s.constants.mu;
    let d = y.len();
    let mut master = s.svrs_master();
    let mut z = y.to_vec();
    let (mut x, mut gx, mut gy) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    let (mut g1x, mut g1y, mut next) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    loop {
        for j in 0..d {
            x[j] = prm.tau * z[j] + (1.0 - prm.tau) * y[j];
        }
        s.problem.full_grad(&x, &mut gx);
        t.full_round();
        next.copy_from_slice(&x);
        if !svrs_epoch(s, t, rng, &mut master, &x, &gx, &mut next, false)? {
            return Ok(());
        }
        s.problem.full_grad(&next, &mut gy);
        t.full_round();
        s.problem.node_grad(0, &x, &mut g1x);
        s.problem.node_grad(0, &next, &mut g1y);
        t.grads(2);
        let scale = 1.0 / (1.0 + prm.alpha * mu);
        for j in 0..d {
            let big_g =
                prm.p * ((g1x[j] - gx[j]) - (g1y[j] - gy[j]) + (x[j] - next[j]) / prm.theta);
            z[j] = (z[j] + prm.alpha * mu * next[j] - prm.alpha * big_g) * scale;
        }
        y.copy_from_slice(&next);
        if !t.observe(y) {
            return Ok(());
        }
    }
}

/// ||grad f(x0)||, the scale of the solvers' absolute floor.
pub fn gradient_scale(problem: &Problem, x0: &[f64]) -> f64 {
    let mut g = vec![0.0; x0.len()];
    problem.full_grad(x0, &mut g);
    norm2(&g).sqrt()
}
