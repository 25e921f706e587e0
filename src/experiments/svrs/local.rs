//! Local subproblems: u = argmin_u phi(u), phi(u) = f_i(u) + <c, u> + (s/2) ||u - center||^2.
//!
//! Every method's local step has this form (SVRS, AccSVRS and the composite gradient method
//! on the master, AccEG's sliding step, SVRP's prox on a client, DANE on every node). The
//! caller passes g0 = grad phi(center), which it knows without an extra gradient call.
//!
//! * Ridge: phi is quadratic, so u = center - (H_i + s I)^{-1} g0 exactly; the Cholesky
//!   factor of H_i + s I is computed once per node (the master's always kept, the others
//!   while n d^2 doubles fit in [`CACHE_BYTES`], otherwise recomputed). No gradient call.
//!   The master, which solves at every step, applies (H_1 + s I)^{-1} formed once from its
//!   factor: one mat-vec instead of two triangular solves (about twice as fast), accurate
//!   because cond(H_1 + s I) <= 1 + L_1 / s stays small (below [`MAX_CONDITION`], else the
//!   triangular solves are kept).
//! * Logistic: Newton's method from the center, each iterate's gradient one local gradient
//!   call, halving the step while the gradient norm does not decrease, until
//!   ||grad phi(u)|| <= 1e-3 (s + lambda) ||u - center|| (the error in u is then at most 1e-3
//!   of the step taken) or an absolute floor, at most 50 iterations. Our stopping rule; the
//!   paper's inexactness criterion is unverified (notes section 4).

use std::sync::Arc;

use anyhow::Result;
use faer::Mat;
use faer::linalg::solvers::{DenseSolveCore, Llt};

use super::problem::{Loss, Problem, cholesky, dist2, solve_in_place};
use crate::vector::norm2;

/// Largest bound on cond(H_1 + s I) for which the master applies an explicit inverse.
pub const MAX_CONDITION: f64 = 1e4;

/// A cached way to apply (H_i + s I)^{-1}.
pub enum Factor {
    Cholesky(Llt<f64>),
    Inverse(Mat<f64>),
}

impl Factor {
    /// out = (H_i + s I)^{-1} out.
    fn apply(&self, out: &mut [f64]) {
        match self {
            Factor::Cholesky(llt) => solve_in_place(llt, out),
            Factor::Inverse(inverse) => {
                let d = out.len();
                let rhs = out.to_vec();
                faer::linalg::matmul::matmul(
                    faer::MatMut::from_column_major_slice_mut(out, d, 1),
                    faer::Accum::Replace,
                    inverse.as_ref(),
                    faer::MatRef::from_column_major_slice(&rhs, d, 1),
                    1.0,
                    faer::Par::Seq,
                );
            }
        }
    }
}

/// Most memory the per-node Cholesky factors may take.
const CACHE_BYTES: usize = 256 << 20;
/// Relative accuracy of an inexact (logistic) local solve.
pub const INEXACT_RELATIVE: f64 = 1e-3;
const NEWTON_MAX: usize = 50;

pub struct LocalSolver<'a> {
    problem: &'a Problem,
    /// s = 1/theta (0 for DANE's unregularized local problem).
    pub shift: f64,
    factors: Vec<Option<Arc<Factor>>>,
    /// Whether the factors of nodes other than the master are kept.
    cache_all: bool,
    /// Absolute floor of the logistic stopping rule.
    floor: f64,
}

impl<'a> LocalSolver<'a> {
    /// `scale` is a gradient norm of the problem (at x0), for the absolute floor.
    pub fn new(problem: &'a Problem, shift: f64, scale: f64) -> LocalSolver<'a> {
        let d = problem.dim();
        let n = problem.nodes();
        LocalSolver {
            problem,
            shift,
            factors: (0..n).map(|_| None).collect(),
            cache_all: n.saturating_mul(d * d * 8) <= CACHE_BYTES,
            floor: 1e-15 * scale.max(f64::MIN_POSITIVE),
        }
    }

    /// Solves node i's subproblem into `out`; returns the local gradient calls it made.
    pub fn solve(
        &mut self,
        node: usize,
        center: &[f64],
        g0: &[f64],
        out: &mut [f64],
    ) -> Result<u64> {
        match self.problem.loss {
            Loss::Ridge => {
                out.copy_from_slice(g0);
                if node == 0 || self.cache_all {
                    if self.factors[node].is_none() {
                        self.factors[node] = Some(Arc::new(self.ridge_factor(node)?));
                    }
                    self.factors[node].as_ref().expect("just set").apply(out);
                } else {
                    self.ridge_factor(node)?.apply(out);
                }
                for (o, c) in out.iter_mut().zip(center) {
                    *o = c - *o;
                }
                Ok(0)
            }
            Loss::Logistic => self.newton(node, center, g0, out),
        }
    }

    /// A solver for the master's ridge subproblem that reuses a factor computed once for the
    /// run (SVRS and AccSVRS share theta).
    pub fn with_master_factor(
        problem: &'a Problem,
        shift: f64,
        scale: f64,
        factor: Option<Arc<Factor>>,
    ) -> LocalSolver<'a> {
        let mut solver = LocalSolver::new(problem, shift, scale);
        if let Some(f) = factor {
            solver.factors[0] = Some(f);
        }
        solver
    }

    /// The master's ridge factor, computed where the caller wants it.
    pub fn master_factor(problem: &Problem, shift: f64) -> Result<Option<Arc<Factor>>> {
        if problem.loss != Loss::Ridge {
            return Ok(None);
        }
        let solver = LocalSolver::new(problem, shift, 1.0);
        Ok(Some(Arc::new(solver.ridge_factor(0)?)))
    }

    /// The cached form of (H_i + s I)^{-1} for ridge: the master's inverse when it is well
    /// conditioned (Gershgorin bound on lambda_max(H_1)), otherwise the Cholesky factor.
    fn ridge_factor(&self, node: usize) -> Result<Factor> {
        let mut h = self
            .problem
            .node_hessian(node, &vec![0.0; self.problem.dim()]);
        for j in 0..h.nrows() {
            h[(j, j)] += self.shift;
        }
        let llt = cholesky(&h, &format!("the local Hessian of node {}", node + 1))?;
        if node == 0 {
            let largest = (0..h.nrows())
                .map(|j| (0..h.ncols()).map(|k| h[(j, k)].abs()).sum::<f64>())
                .fold(0.0, f64::max);
            if self.shift > 0.0 && largest / self.shift <= MAX_CONDITION {
                return Ok(Factor::Inverse(llt.inverse()));
            }
        }
        Ok(Factor::Cholesky(llt))
    }

    /// Cholesky of H_i(x) + s I.
    fn factor(&self, node: usize, x: &[f64]) -> Result<Llt<f64>> {
        let mut h = self.problem.node_hessian(node, x);
        for j in 0..h.nrows() {
            h[(j, j)] += self.shift;
        }
        cholesky(&h, &format!("the local Hessian of node {}", node + 1))
    }

    fn newton(&mut self, node: usize, center: &[f64], g0: &[f64], out: &mut [f64]) -> Result<u64> {
        let problem = self.problem;
        let d = problem.dim();
        let s = self.shift;
        // c = g0 - grad f_i(center): one gradient call.
        let mut c = vec![0.0; d];
        problem.node_grad(node, center, &mut c);
        for (cj, g) in c.iter_mut().zip(g0) {
            *cj = g - *cj;
        }
        let mut calls = 1;
        let grad_phi = |u: &[f64], out: &mut [f64]| {
            problem.node_grad(node, u, out);
            for j in 0..d {
                out[j] += c[j] + s * (u[j] - center[j]);
            }
        };
        let mut u = center.to_vec();
        let mut grad = g0.to_vec();
        let mut size = norm2(&grad).sqrt();
        let (mut trial, mut trial_grad) = (vec![0.0; d], vec![0.0; d]);
        for _ in 0..NEWTON_MAX {
            let target = INEXACT_RELATIVE * (s + problem.lambda) * dist2(&u, center).sqrt();
            if size <= target.max(self.floor) {
                break;
            }
            let mut step = grad.clone();
            solve_in_place(&self.factor(node, &u)?, &mut step);
            let mut t = 1.0;
            loop {
                for j in 0..d {
                    trial[j] = u[j] - t * step[j];
                }
                grad_phi(&trial, &mut trial_grad);
                calls += 1;
                let trial_size = norm2(&trial_grad).sqrt();
                if trial_size < size || t < 1e-6 {
                    size = trial_size;
                    break;
                }
                t *= 0.5;
            }
            std::mem::swap(&mut u, &mut trial);
            std::mem::swap(&mut grad, &mut trial_grad);
        }
        out.copy_from_slice(&u);
        Ok(calls)
    }
}
