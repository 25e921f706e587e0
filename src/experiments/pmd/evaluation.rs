//! Exact policy evaluation, Q-values, the optimum by policy iteration, and discounted state
//! occupancies.
//!
//! Two ways to solve (I - gamma P_pi) V = r_pi:
//! * LU with partial pivoting (faer) on the dense S x S matrix: cost ~(2/3) S^3, error ~1e-13
//!   relative (the matrix is row-diagonally dominant with margin 1 - gamma).
//! * Warm-started value-iteration sweeps on the sparse P with MacQueen's (1966) bounds: after
//!   a sweep v' = T v with d = v' - v, every component of V^pi lies in
//!   [v' + gamma/(1-gamma) min d, v' + gamma/(1-gamma) max d]. We stop when half that interval
//!   is below the tolerance and return its midpoint, so the error is at most `tol` and the
//!   convergence rate is that of the span of d, much faster than gamma.

use faer::Mat;
use faer::linalg::solvers::Solve;
use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

use super::mdp::Mdp;

/// How to solve the evaluation equations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvalMethod {
    Lu,
    /// Sweeps with MacQueen bounds to absolute error `tol`.
    Iterative {
        tol: f64,
    },
}

/// Above this many states `auto` evaluation uses sweeps instead of dense LU.
pub const LU_MAX_STATES: usize = 200;

/// Policy evaluation for one MDP and discount.
pub struct Evaluator<'a> {
    pub mdp: &'a Mdp,
    pub gamma: f64,
    pub method: EvalMethod,
}

impl<'a> Evaluator<'a> {
    pub fn new(mdp: &'a Mdp, gamma: f64, method: EvalMethod) -> Evaluator<'a> {
        Evaluator { mdp, gamma, method }
    }

    /// The transitions of pi from state s: (next state t, pi(a|s) P(t|s, a)) over actions a.
    fn policy_transitions<'b>(
        &'b self,
        policy: ArrayView2<'b, f64>,
        s: usize,
    ) -> impl Iterator<Item = (usize, f64)> + 'b {
        (0..self.mdp.actions)
            .filter(move |&a| policy[(s, a)] != 0.0)
            .flat_map(move |a| {
                let w = policy[(s, a)];
                let (next, prob) = self.mdp.transitions(s, a);
                next.iter()
                    .zip(prob)
                    .map(move |(&t, &p)| (t as usize, w * p))
            })
    }

    /// Q(s, a) = r(s, a) + gamma sum_t P(t|s, a) v(t).
    #[inline]
    fn q_value(&self, v: &[f64], s: usize, a: usize) -> f64 {
        let (next, prob) = self.mdp.transitions(s, a);
        let ev: f64 = next
            .iter()
            .zip(prob)
            .map(|(&t, &p)| p * v[t as usize])
            .sum();
        self.mdp.reward[(s, a)] + self.gamma * ev
    }

    /// r_pi(s) + gamma (P_pi v)(s), the Bellman operator of pi at one state: the hot path of
    /// the sweeps, skipping actions pi never takes.
    #[inline]
    fn backup(&self, policy: ArrayView2<f64>, v: &[f64], s: usize) -> f64 {
        (0..self.mdp.actions)
            .filter(|&a| policy[(s, a)] != 0.0)
            .map(|a| policy[(s, a)] * self.q_value(v, s, a))
            .sum()
    }

    /// V^pi. `warm` (e.g. the previous iterate's values) speeds up the iterative method.
    pub fn evaluate(&self, policy: ArrayView2<f64>, warm: Option<&Array1<f64>>) -> Array1<f64> {
        match self.method {
            EvalMethod::Lu => self.evaluate_lu(policy),
            EvalMethod::Iterative { tol } => self.evaluate_sweeps(policy, warm, tol),
        }
    }

    fn evaluation_matrix(&self, policy: ArrayView2<f64>) -> Mat<f64> {
        let n = self.mdp.states;
        let mut m = Mat::<f64>::zeros(n, n);
        for s in 0..n {
            m[(s, s)] = 1.0;
            for (t, wp) in self.policy_transitions(policy, s) {
                m[(s, t)] -= self.gamma * wp;
            }
        }
        m
    }

    fn reward_of(&self, policy: ArrayView2<f64>) -> Mat<f64> {
        let r = &self.mdp.reward;
        Mat::from_fn(self.mdp.states, 1, |s, _| {
            (0..self.mdp.actions)
                .map(|a| policy[(s, a)] * r[(s, a)])
                .sum()
        })
    }

    fn evaluate_lu(&self, policy: ArrayView2<f64>) -> Array1<f64> {
        let lu = self.evaluation_matrix(policy).partial_piv_lu();
        let v = lu.solve(self.reward_of(policy));
        Array1::from_shape_fn(self.mdp.states, |s| v[(s, 0)])
    }

    fn evaluate_sweeps(
        &self,
        policy: ArrayView2<f64>,
        warm: Option<&Array1<f64>>,
        tol: f64,
    ) -> Array1<f64> {
        let n = self.mdp.states;
        let mut v: Vec<f64> = warm.map_or_else(|| vec![0.0; n], |w| w.to_vec());
        let mut next = vec![0.0; n];
        let factor = self.gamma / (1.0 - self.gamma);
        loop {
            (0..n)
                .into_par_iter()
                .map(|s| self.backup(policy, &v, s))
                .collect_into_vec(&mut next);
            let (lo, hi) = next
                .iter()
                .zip(&v)
                .map(|(a, b)| a - b)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
                    (lo.min(d), hi.max(d))
                });
            std::mem::swap(&mut v, &mut next);
            if !(hi - lo).is_finite() {
                // Overflowing values (absurd rewards): hand them on; the run fails on them.
                return Array1::from(v);
            }
            // MacQueen bounds: V^pi lies within factor*[lo, hi] of v.
            if factor * (hi - lo) <= 2.0 * tol {
                let shift = factor * (hi + lo) / 2.0;
                return Array1::from_iter(v.into_iter().map(|x| x + shift));
            }
        }
    }

    /// Q(s, a) = r(s, a) + gamma sum_t P(t|s, a) v(t).
    pub fn q_values(&self, v: &Array1<f64>) -> Array2<f64> {
        let (n, k) = (self.mdp.states, self.mdp.actions);
        let v = v.as_slice().expect("contiguous values");
        let rows: Vec<f64> = (0..n)
            .into_par_iter()
            .flat_map_iter(|s| (0..k).map(move |a| self.q_value(v, s, a)))
            .collect();
        Array2::from_shape_vec((n, k), rows).expect("S x A")
    }

    /// The discounted state occupancy d_rho(pi) = (1 - gamma) rho^T (I - gamma P_pi)^{-1}
    /// (Xiao 2022, the weights of the mismatch coefficient theta_rho).
    pub fn occupancy(&self, policy: ArrayView2<f64>, rho: &Array1<f64>) -> Array1<f64> {
        let n = self.mdp.states;
        match self.method {
            EvalMethod::Lu => {
                let lu = self.evaluation_matrix(policy).partial_piv_lu();
                let rhs = Mat::from_fn(n, 1, |s, _| (1.0 - self.gamma) * rho[s]);
                let d = lu.solve_transpose(rhs);
                Array1::from_shape_fn(n, |s| d[(s, 0)])
            }
            EvalMethod::Iterative { tol } => {
                // d = (1-gamma) rho + gamma P_pi^T d: a gamma-contraction in l1.
                let mut d = rho.to_vec();
                loop {
                    let mut next: Vec<f64> = rho.iter().map(|r| (1.0 - self.gamma) * r).collect();
                    for (s, &ds) in d.iter().enumerate() {
                        for (t, wp) in self.policy_transitions(policy, s) {
                            next[t] += self.gamma * wp * ds;
                        }
                    }
                    let change: f64 = next.iter().zip(&d).map(|(a, b)| (a - b).abs()).sum();
                    d = next;
                    if !change.is_finite() || change * self.gamma / (1.0 - self.gamma) <= tol {
                        return Array1::from(d);
                    }
                }
            }
        }
    }
}

/// The optimum of an MDP: V*, Q*, the optimal action sets and the gap Delta.
#[derive(Debug, Clone)]
pub struct Optimum {
    pub v: Array1<f64>,
    pub q: Array2<f64>,
    /// A deterministic optimal policy (first optimal action in each state).
    pub policy: Array2<f64>,
    /// `optimal[(s, a)]`: a is in A*_s = {a : Q*(s, a) >= max Q*(s, .) - tol}.
    pub optimal: Array2<bool>,
    /// Delta = min_s min_{a not in A*_s} (V*(s) - Q*(s, a)); infinite if every action is optimal.
    pub gap: f64,
    /// ||V* - V^{pi_k}||_inf along policy iteration from the start policy.
    pub pi_trace: Vec<f64>,
}

/// Scale of values: (reward range) / (1 - gamma), at least the tiniest positive number.
pub fn value_scale(mdp: &Mdp, gamma: f64) -> f64 {
    (mdp.reward_range() / (1.0 - gamma)).max(f64::MIN_POSITIVE)
}

/// Policy iteration from `start` (Howard): greedy improvement until the policy is stable.
/// An action is switched only when it beats the current one by more than the evaluation
/// error, so round-off cannot make it cycle.
pub fn solve_optimum(eval: &Evaluator, start: ArrayView2<f64>) -> Optimum {
    let mdp = eval.mdp;
    let scale = value_scale(mdp, eval.gamma);
    let eval_error = match eval.method {
        EvalMethod::Lu => 0.0,
        EvalMethod::Iterative { tol } => tol,
    };
    let switch_margin = 1e-12 * scale + 10.0 * eval_error;
    let mut values = vec![eval.evaluate(start, None)];
    let mut q = eval.q_values(&values[0]);
    let mut current: Vec<usize> = (0..mdp.states).map(|s| argmax(q.row(s).iter())).collect();
    loop {
        let policy = deterministic_policy(&current, mdp.actions);
        let v = eval.evaluate(policy.view(), values.last());
        q = eval.q_values(&v);
        values.push(v);
        let mut changed = false;
        for (s, a_cur) in current.iter_mut().enumerate() {
            let best = argmax(q.row(s).iter());
            if q[(s, best)] > q[(s, *a_cur)] + switch_margin {
                *a_cur = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let v_star = values.last().expect("at least one evaluation").clone();
    let tol = 1e-10 * scale + 10.0 * eval_error;
    let optimal = Array2::from_shape_fn((mdp.states, mdp.actions), |(s, a)| {
        q[(s, a)] >= q.row(s).iter().copied().fold(f64::NEG_INFINITY, f64::max) - tol
    });
    let mut gap = f64::INFINITY;
    for s in 0..mdp.states {
        let best = q.row(s).iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for a in 0..mdp.actions {
            if !optimal[(s, a)] {
                gap = gap.min(best - q[(s, a)]);
            }
        }
    }
    let pi_trace = values.iter().map(|v| sup_distance(&v_star, v)).collect();
    let first_optimal: Vec<usize> = (0..mdp.states)
        // With non-finite values no action qualifies; the run then fails on its first row.
        .map(|s| (0..mdp.actions).find(|&a| optimal[(s, a)]).unwrap_or(0))
        .collect();
    Optimum {
        policy: deterministic_policy(&first_optimal, mdp.actions),
        v: v_star,
        q,
        optimal,
        gap,
        pi_trace,
    }
}

/// max_s (a(s) - b(s)).
pub fn sup_distance(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Index of the largest value (the first one on ties).
pub fn argmax<'x>(values: impl Iterator<Item = &'x f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &x) in values.enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

pub fn deterministic_policy(actions: &[usize], num_actions: usize) -> Array2<f64> {
    let mut policy = Array2::zeros((actions.len(), num_actions));
    for (s, &a) in actions.iter().enumerate() {
        policy[(s, a)] = 1.0;
    }
    policy
}

/// Value iteration to a fixed point (test oracle for policy iteration).
pub fn value_iteration(mdp: &Mdp, gamma: f64, tol: f64) -> Array1<f64> {
    let mut v = Array1::zeros(mdp.states);
    let eval = Evaluator::new(mdp, gamma, EvalMethod::Lu);
    loop {
        let q = eval.q_values(&v);
        let next = Array1::from_shape_fn(mdp.states, |s| {
            q.row(s).iter().copied().fold(f64::NEG_INFINITY, f64::max)
        });
        let change = next
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        v = next;
        if change * gamma / (1.0 - gamma) <= tol {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;

    fn uniform(mdp: &Mdp) -> Array2<f64> {
        Array2::from_elem((mdp.states, mdp.actions), 1.0 / mdp.actions as f64)
    }

    #[test]
    fn two_state_evaluation_matches_closed_form() {
        // 2x2 system solved by Cramer's rule.
        let mdp = Mdp::two_state();
        let gamma = 0.9;
        let pi = ndarray::array![[0.3, 0.7], [0.6, 0.4]];
        let p = |s: usize, t: usize| {
            (0..2)
                .map(|a| {
                    let (next, prob) = mdp.transitions(s, a);
                    pi[(s, a)]
                        * next
                            .iter()
                            .zip(prob)
                            .filter(|(n, _)| **n as usize == t)
                            .map(|(_, p)| p)
                            .sum::<f64>()
                })
                .sum::<f64>()
        };
        let r = |s: usize| (0..2).map(|a| pi[(s, a)] * mdp.reward[(s, a)]).sum::<f64>();
        let (a11, a12) = (1.0 - gamma * p(0, 0), -gamma * p(0, 1));
        let (a21, a22) = (-gamma * p(1, 0), 1.0 - gamma * p(1, 1));
        let det = a11 * a22 - a12 * a21;
        let v0 = (r(0) * a22 - a12 * r(1)) / det;
        let v1 = (a11 * r(1) - a21 * r(0)) / det;
        for method in [EvalMethod::Lu, EvalMethod::Iterative { tol: 1e-13 }] {
            let v = Evaluator::new(&mdp, gamma, method).evaluate(pi.view(), None);
            assert!(
                (v[0] - v0).abs() < 1e-12 && (v[1] - v1).abs() < 1e-12,
                "{method:?}"
            );
        }
    }

    #[test]
    fn sweeps_agree_with_lu_to_tolerance() {
        let mdp = Mdp::garnet(150, 6, 4, &mut Streams::new(5).rng("mdp"));
        let pi = uniform(&mdp);
        let gamma = 0.95;
        let lu = Evaluator::new(&mdp, gamma, EvalMethod::Lu).evaluate(pi.view(), None);
        let tol = 1e-12;
        let it =
            Evaluator::new(&mdp, gamma, EvalMethod::Iterative { tol }).evaluate(pi.view(), None);
        let err = lu
            .iter()
            .zip(&it)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // LU itself is accurate to ~1e-13 relative on values of size ~1/(1-gamma) = 20.
        assert!(err <= tol + 1e-12, "max error {err}");
        let d_lu = Evaluator::new(&mdp, gamma, EvalMethod::Lu)
            .occupancy(pi.view(), &Array1::from_elem(150, 1.0 / 150.0));
        let d_it = Evaluator::new(&mdp, gamma, EvalMethod::Iterative { tol })
            .occupancy(pi.view(), &Array1::from_elem(150, 1.0 / 150.0));
        let err = d_lu
            .iter()
            .zip(&d_it)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
        assert!(err < 1e-11, "occupancy l1 error {err}");
        assert!((d_lu.sum() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn policy_iteration_agrees_with_value_iteration() {
        for (seed, gamma) in [(1, 0.9), (2, 0.99)] {
            let mdp = Mdp::garnet(40, 5, 3, &mut Streams::new(seed).rng("mdp"));
            let opt = solve_optimum(
                &Evaluator::new(&mdp, gamma, EvalMethod::Lu),
                uniform(&mdp).view(),
            );
            let vi = value_iteration(&mdp, gamma, 1e-12);
            let err = opt
                .v
                .iter()
                .zip(&vi)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-10, "PI vs VI {err}");
            assert!(opt.gap > 0.0 && opt.gap.is_finite());
            assert_eq!(*opt.pi_trace.last().unwrap(), 0.0);
        }
    }

    #[test]
    fn chain_gap_is_exact() {
        let mdp = Mdp::chain(12, 3, 0.01);
        let opt = solve_optimum(
            &Evaluator::new(&mdp, 0.9, EvalMethod::Lu),
            uniform(&mdp).view(),
        );
        assert!((opt.gap - 0.01).abs() < 1e-12, "{}", opt.gap);
        assert!(opt.v.iter().all(|v| (v - 10.0).abs() < 1e-11));
    }
}
