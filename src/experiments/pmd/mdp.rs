//! Finite MDPs: sparse transitions, the generators used in the PMD literature, and a plain
//! text file format so users can run PMD on their own MDPs.
//!
//! ## The `lab-mdp 1` file format
//!
//! ```text
//! lab-mdp 1
//! states 2
//! actions 2
//! # r STATE ACTION REWARD
//! r 0 0 0.1
//! # p STATE ACTION NEXT_STATE PROBABILITY
//! p 0 0 0 0.7
//! p 0 0 1 0.3
//! ```
//!
//! States and actions count from 0. Every (state, action) has exactly one `r` line and at
//! least one `p` line; its probabilities sum to 1 (within 1e-9; they are used as written,
//! so a file written by `--export-mdp` reads back bit for bit).
//! Lines starting with `#` and blank lines are ignored. Zero probabilities may be omitted.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::input_error;
use crate::table::format_real;

/// A finite MDP with rewards r(s, a) and sparse transitions P(.|s, a) in CSR form, one row per
/// (s, a) pair (row index s * A + a).
#[derive(Debug, Clone, PartialEq)]
pub struct Mdp {
    pub states: usize,
    pub actions: usize,
    /// r(s, a), S x A.
    pub reward: Array2<f64>,
    row_start: Vec<usize>,
    next_state: Vec<u32>,
    prob: Vec<f64>,
}

impl Mdp {
    /// Builds an MDP from per-(s, a) transition lists; each list is sorted by next state.
    fn from_rows(
        states: usize,
        actions: usize,
        reward: Array2<f64>,
        rows: Vec<Vec<(u32, f64)>>,
    ) -> Mdp {
        let mut row_start = Vec::with_capacity(rows.len() + 1);
        let nnz = rows.iter().map(Vec::len).sum();
        let mut next_state = Vec::with_capacity(nnz);
        let mut prob = Vec::with_capacity(nnz);
        row_start.push(0);
        for mut row in rows {
            row.sort_by_key(|&(t, _)| t);
            for (t, p) in row {
                next_state.push(t);
                prob.push(p);
            }
            row_start.push(next_state.len());
        }
        Mdp {
            states,
            actions,
            reward,
            row_start,
            next_state,
            prob,
        }
    }

    /// A dense MDP from P[s][a][t] and r[s][a] (tests and small examples).
    pub fn from_dense(p: &[Vec<Vec<f64>>], r: &[Vec<f64>]) -> Mdp {
        let states = p.len();
        let actions = p[0].len();
        let reward = Array2::from_shape_fn((states, actions), |(s, a)| r[s][a]);
        let rows = p
            .iter()
            .flat_map(|ps| ps.iter())
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, p)| **p > 0.0)
                    .map(|(t, p)| (t as u32, *p))
                    .collect()
            })
            .collect();
        Mdp::from_rows(states, actions, reward, rows)
    }

    /// Next states and probabilities of (s, a).
    #[inline]
    pub fn transitions(&self, s: usize, a: usize) -> (&[u32], &[f64]) {
        let row = s * self.actions + a;
        let range = self.row_start[row]..self.row_start[row + 1];
        (&self.next_state[range.clone()], &self.prob[range])
    }

    /// Number of stored transition probabilities.
    pub fn nnz(&self) -> usize {
        self.prob.len()
    }

    /// max r - min r (the scale of values; 1 for rewards spanning [0, 1]).
    pub fn reward_range(&self) -> f64 {
        let max = self
            .reward
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let min = self.reward.iter().copied().fold(f64::INFINITY, f64::min);
        max - min
    }

    /// Garnet(S, A, b): each (s, a) reaches `branching` distinct next states drawn uniformly,
    /// with uniform random weights normalized to probabilities; rewards U[0, 1]
    /// (Archibald, McKinnon & Thomas 1995; as in Bhatnagar et al. 2009).
    pub fn garnet(states: usize, actions: usize, branching: usize, rng: &mut ChaCha8Rng) -> Mdp {
        let mut reward = Array2::zeros((states, actions));
        let mut rows = Vec::with_capacity(states * actions);
        for s in 0..states {
            for a in 0..actions {
                let targets = rand::seq::index::sample(rng, states, branching);
                let weights: Vec<f64> = (0..branching).map(|_| rng.random::<f64>()).collect();
                let total: f64 = weights.iter().sum();
                rows.push(
                    targets
                        .iter()
                        .zip(&weights)
                        .map(|(t, w)| (t as u32, w / total))
                        .collect(),
                );
                reward[(s, a)] = rng.random::<f64>();
            }
        }
        Mdp::from_rows(states, actions, reward, rows)
    }

    /// Dense random MDP (as in the Fudan group's PMD experiments): P(.|s, a) i.i.d. U[0, 1]
    /// over all next states, normalized; rewards U[0, 1].
    pub fn dense_random(states: usize, actions: usize, rng: &mut ChaCha8Rng) -> Mdp {
        let mut reward = Array2::zeros((states, actions));
        let mut rows = Vec::with_capacity(states * actions);
        for s in 0..states {
            for a in 0..actions {
                let weights: Vec<f64> = (0..states).map(|_| rng.random::<f64>()).collect();
                let total: f64 = weights.iter().sum();
                rows.push(
                    weights
                        .iter()
                        .enumerate()
                        .map(|(t, w)| (t as u32, w / total))
                        .collect(),
                );
                reward[(s, a)] = rng.random::<f64>();
            }
        }
        Mdp::from_rows(states, actions, reward, rows)
    }

    /// A chain with a small action gap (our construction): action 0 moves from s to s + 1
    /// (the last state loops) with reward 1; action a >= 1 stays put with reward 1 - a * gap.
    /// Moving on is optimal everywhere, V* = 1/(1 - gamma), and Q*(s, 0) - Q*(s, a) = a * gap,
    /// so the gap Delta equals `gap` exactly whatever gamma and the length.
    pub fn chain(states: usize, actions: usize, gap: f64) -> Mdp {
        let mut reward = Array2::zeros((states, actions));
        let mut rows = Vec::with_capacity(states * actions);
        for s in 0..states {
            for a in 0..actions {
                if a == 0 {
                    rows.push(vec![((s + 1).min(states - 1) as u32, 1.0)]);
                    reward[(s, a)] = 1.0;
                } else {
                    rows.push(vec![(s as u32, 1.0)]);
                    reward[(s, a)] = 1.0 - a as f64 * gap;
                }
            }
        }
        Mdp::from_rows(states, actions, reward, rows)
    }

    /// The 2-state, 2-action MDP of the value-polytope plot. Our choice of numbers (in the
    /// spirit of Dadashi et al. 2019), found by a search for a polytope that is far from flat
    /// and an optimal policy that is not reward-greedy: in state 1 the optimal action 0 earns
    /// 0.6 per step against 0.86 for action 1, which leaks into the poor state 0.
    pub fn two_state() -> Mdp {
        Mdp::from_dense(
            &[
                vec![vec![1.0, 0.0], vec![0.98, 0.02]],
                vec![vec![0.02, 0.98], vec![0.15, 0.85]],
            ],
            &[vec![0.26, 0.15], vec![0.6, 0.86]],
        )
    }

    /// Writes the MDP in the `lab-mdp 1` format; reals round-trip exactly.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "lab-mdp 1\nstates {}\nactions {}",
            self.states, self.actions
        );
        out.push_str("# r STATE ACTION REWARD\n# p STATE ACTION NEXT_STATE PROBABILITY\n");
        for s in 0..self.states {
            for a in 0..self.actions {
                let _ = writeln!(out, "r {s} {a} {}", format_real(self.reward[(s, a)]));
                let (next, prob) = self.transitions(s, a);
                for (t, p) in next.iter().zip(prob) {
                    let _ = writeln!(out, "p {s} {a} {t} {}", format_real(*p));
                }
            }
        }
        out
    }

    /// Reads a `lab-mdp 1` file. Every problem is an input error naming the file and line.
    pub fn read(path: &Path) -> Result<Mdp> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| input_error!("cannot read MDP file {}: {e}", path.display()))?;
        Mdp::parse(&text).map_err(|e| input_error!("{}: {e}", path.display()))
    }

    /// Parses the `lab-mdp 1` format; errors say which line and what was expected.
    pub fn parse(text: &str) -> std::result::Result<Mdp, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let expect_header = |lines: &mut dyn Iterator<Item = (usize, &str)>,
                             word: &str|
         -> std::result::Result<(usize, String), String> {
            let (n, line) = lines
                .next()
                .ok_or_else(|| format!("ends before the '{word}' line"))?;
            let mut parts = line.split_whitespace();
            if parts.next() != Some(word) {
                return Err(format!("line {n}: expected '{word} ...', found '{line}'"));
            }
            let value = parts.next().unwrap_or("").to_string();
            Ok((n, value))
        };
        let (n, version) = expect_header(&mut lines, "lab-mdp")?;
        if version != "1" {
            return Err(format!(
                "line {n}: unsupported version '{version}': expected 'lab-mdp 1'"
            ));
        }
        let parse_count = |(n, v): (usize, String), what: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|&c| c >= 1 && c < u32::MAX as usize)
                .ok_or_else(|| format!("line {n}: {what} '{v}': expected a positive integer"))
        };
        let states = parse_count(expect_header(&mut lines, "states")?, "states")?;
        let actions = parse_count(expect_header(&mut lines, "actions")?, "actions")?;
        let pairs = states
            .checked_mul(actions)
            .ok_or("states x actions is too large")?;
        let mut reward: Vec<Option<f64>> = vec![None; pairs];
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); pairs];
        for (n, line) in lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let index = |i: usize, bound: usize, what: &str| {
                parts[i]
                    .parse::<usize>()
                    .ok()
                    .filter(|&x| x < bound)
                    .ok_or_else(|| {
                        format!("line {n}: {what} '{}': expected 0..{}", parts[i], bound - 1)
                    })
            };
            let real = |i: usize, what: &str| {
                parts[i]
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("line {n}: {what} '{}': expected a number", parts[i]))
            };
            match (parts[0], parts.len()) {
                ("r", 4) => {
                    let s = index(1, states, "state")?;
                    let a = index(2, actions, "action")?;
                    let r = real(3, "reward")?;
                    let slot = &mut reward[s * actions + a];
                    if slot.is_some() {
                        return Err(format!("line {n}: second reward for state {s} action {a}"));
                    }
                    *slot = Some(r);
                }
                ("p", 5) => {
                    let s = index(1, states, "state")?;
                    let a = index(2, actions, "action")?;
                    let t = index(3, states, "next state")?;
                    let p = real(4, "probability")?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("line {n}: probability {p} is not in [0, 1]"));
                    }
                    let row = &mut rows[s * actions + a];
                    if row.iter().any(|&(u, _)| u as usize == t) {
                        return Err(format!(
                            "line {n}: second probability for state {s} action {a} next state {t}"
                        ));
                    }
                    if p > 0.0 {
                        row.push((t as u32, p));
                    }
                }
                _ => {
                    return Err(format!(
                        "line {n}: expected 'r STATE ACTION REWARD' or \
                         'p STATE ACTION NEXT_STATE PROBABILITY', found '{line}'"
                    ));
                }
            }
        }
        let mut rewards = Array2::zeros((states, actions));
        for s in 0..states {
            for a in 0..actions {
                let i = s * actions + a;
                rewards[(s, a)] = reward[i].ok_or_else(|| {
                    format!("no reward ('r {s} {a} ...') for state {s} action {a}")
                })?;
                let total: f64 = rows[i].iter().map(|&(_, p)| p).sum();
                if (total - 1.0).abs() > 1e-9 {
                    return Err(format!(
                        "the probabilities of state {s} action {a} sum to {total}, expected 1"
                    ));
                }
            }
        }
        Ok(Mdp::from_rows(states, actions, rewards, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Streams;

    #[test]
    fn garnet_rows_are_distributions_with_b_targets() {
        let mdp = Mdp::garnet(30, 4, 5, &mut Streams::new(1).rng("mdp"));
        for s in 0..30 {
            for a in 0..4 {
                let (next, prob) = mdp.transitions(s, a);
                assert_eq!(next.len(), 5);
                assert!(next.windows(2).all(|w| w[0] < w[1]), "distinct, sorted");
                assert!((prob.iter().sum::<f64>() - 1.0).abs() < 1e-14);
            }
        }
        assert_eq!(mdp, Mdp::garnet(30, 4, 5, &mut Streams::new(1).rng("mdp")));
    }

    #[test]
    fn file_format_round_trips_exactly() {
        let mdp = Mdp::garnet(7, 3, 2, &mut Streams::new(3).rng("mdp"));
        assert_eq!(Mdp::parse(&mdp.to_text()).unwrap(), mdp);
    }

    #[test]
    fn broken_files_name_the_line() {
        let good = "lab-mdp 1\nstates 1\nactions 1\nr 0 0 1\np 0 0 0 1\n";
        assert!(Mdp::parse(good).is_ok());
        let cases = [
            ("lab-mdp 2\n", "version"),
            ("lab-mdp 1\nstates 0\n", "positive integer"),
            (
                "lab-mdp 1\nstates 1\nactions 1\nr 0 0 x\n",
                "line 4: reward 'x'",
            ),
            (
                "lab-mdp 1\nstates 1\nactions 1\nr 0 1 1\n",
                "line 4: action '1'",
            ),
            (
                "lab-mdp 1\nstates 1\nactions 1\nr 0 0 1\np 0 0 0 0.5\n",
                "sum to 0.5",
            ),
            ("lab-mdp 1\nstates 1\nactions 1\np 0 0 0 1\n", "no reward"),
            (
                "lab-mdp 1\nstates 1\nactions 1\nq 0 0 0 1\n",
                "line 4: expected",
            ),
            (
                "lab-mdp 1\nstates 1\nactions 1\nr 0 0 1\nr 0 0 1\n",
                "line 5: second reward",
            ),
        ];
        for (text, expect) in cases {
            let err = Mdp::parse(text).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
