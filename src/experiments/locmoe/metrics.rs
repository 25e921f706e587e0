//! Metrics of a routing group (notes section 5): clustering of the router inputs, agreement
//! of experts with the ground truth, the simulated all-to-all, and pmoe's capacity metrics.

use super::data::Group;
use super::model::node_of;
use super::routing::{Dispatch, Drop};

/// Calinski-Harabasz index of the rows of `x` (n x d) grouped by `label` (None: fewer than
/// two non-empty groups, or no spread within them): between-group over within-group
/// dispersion, each divided by its degrees of freedom (ETR eq. 13 with the usual (n - k) /
/// (k - 1) normalization).
pub fn calinski_harabasz(x: &[f64], d: usize, label: &[usize], groups: usize) -> Option<f64> {
    let n = label.len();
    let mut count = vec![0usize; groups];
    let mut centers = vec![0.0; groups * d];
    let mut mean = vec![0.0; d];
    for (t, &g) in label.iter().enumerate() {
        count[g] += 1;
        for j in 0..d {
            centers[g * d + j] += x[t * d + j];
            mean[j] += x[t * d + j] / n as f64;
        }
    }
    let k = count.iter().filter(|&&c| c > 0).count();
    if k < 2 || n <= k {
        return None;
    }
    for g in 0..groups {
        if count[g] > 0 {
            centers[g * d..(g + 1) * d]
                .iter_mut()
                .for_each(|c| *c /= count[g] as f64);
        }
    }
    let mut between = 0.0;
    for g in 0..groups {
        between += count[g] as f64
            * (0..d)
                .map(|j| (centers[g * d + j] - mean[j]).powi(2))
                .sum::<f64>();
    }
    let within: f64 = label
        .iter()
        .enumerate()
        .map(|(t, &g)| {
            (0..d)
                .map(|j| (x[t * d + j] - centers[g * d + j]).powi(2))
                .sum::<f64>()
        })
        .sum();
    (within > 0.0).then(|| (between / (k - 1) as f64) / (within / (n - k) as f64))
}

/// Mean cosine over the pairs of distinct rows: (|sum u|^2 - n) / (n (n - 1)) of the unit rows.
pub fn mean_pairwise_cosine(x: &[f64], d: usize) -> f64 {
    let n = x.len() / d;
    let mut sum = vec![0.0; d];
    let mut units = 0.0;
    for row in x.chunks(d) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v / norm);
            units += 1.0;
        }
    }
    let s2: f64 = sum.iter().map(|v| v * v).sum();
    if n < 2 {
        f64::NAN
    } else {
        (s2 - units) / (n as f64 * (n as f64 - 1.0))
    }
}

/// Normalized mutual information 2 I(A; B) / (H(A) + H(B)) of two labelings (1 when both
/// are constant, undefined (NaN) when only one is).
pub fn nmi(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let (ka, kb) = (
        a.iter().copied().max().map_or(0, |m| m + 1),
        b.iter().copied().max().map_or(0, |m| m + 1),
    );
    let mut joint = vec![0.0; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        joint[x * kb + y] += 1.0 / n;
    }
    let pa: Vec<f64> = (0..ka)
        .map(|x| (0..kb).map(|y| joint[x * kb + y]).sum())
        .collect();
    let pb: Vec<f64> = (0..kb)
        .map(|y| (0..ka).map(|x| joint[x * kb + y]).sum())
        .collect();
    let h = |p: &[f64]| {
        -p.iter()
            .filter(|&&v| v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>()
    };
    let mut info = 0.0;
    for x in 0..ka {
        for y in 0..kb {
            let j = joint[x * kb + y];
            if j > 0.0 {
                info += j * (j / (pa[x] * pb[y])).ln();
            }
        }
    }
    let (ha, hb) = (h(&pa), h(&pb));
    if ha + hb == 0.0 {
        1.0
    } else if ha == 0.0 || hb == 0.0 {
        // One labeling constant (a corpus file has one topic): nothing to agree on.
        f64::NAN
    } else {
        2.0 * info / (ha + hb)
    }
}

/// Experts whose routed load is below 1% of the mean.
pub fn dead_experts(routed: &[usize]) -> usize {
    let mean = routed.iter().sum::<usize>() as f64 / routed.len() as f64;
    routed.iter().filter(|&&l| (l as f64) < 0.01 * mean).count()
}

/// The simulated all-to-all of the kept slots: (fraction of slots that cross nodes, time
/// relative to moving every slot's bytes within a node). A slot moves d values out and back
/// (dispatch and combine); the inter-node link is `ratio` times as fast as the intra-node one.
pub fn all_to_all(dispatch: &Dispatch, origin: &[usize], nodes: usize, ratio: f64) -> (f64, f64) {
    let total = dispatch.slots.len();
    if total == 0 {
        return (0.0, 0.0);
    }
    let inter = dispatch
        .slots
        .iter()
        .filter(|s| origin[s.token] != node_of(s.expert, dispatch.experts, nodes))
        .count();
    let (i, n) = (inter as f64, total as f64);
    (i / n, ((n - i) + i / ratio) / n)
}

/// pmoe's capacity metrics, accumulated over groups.
#[derive(Debug, Clone, Default)]
pub struct ClassCounts {
    pub samples: usize,
    pub succeeded: usize,
    pub beats: f64,
    pub scored: usize,
    /// The queue rank (1-based) of every discriminative token routed to its class's expert.
    pub ranks: Vec<usize>,
}

impl ClassCounts {
    pub fn finish(mut self) -> ClassRouting {
        self.ranks.sort_unstable();
        let n = self.ranks.len();
        ClassRouting {
            success: self.succeeded as f64 / self.samples.max(1) as f64,
            noise_beats_signal: if self.scored == 0 {
                f64::NAN
            } else {
                self.beats / self.scored as f64
            },
            capacity_99: if n == 0 {
                f64::NAN
            } else {
                self.ranks[((0.99 * n as f64).ceil() as usize).clamp(1, n) - 1] as f64
            },
        }
    }
}

/// pmoe's capacity metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassRouting {
    /// Discriminative tokens processed by their class's expert (classes mapped to experts by
    /// majority vote of the discriminative tokens' first choices).
    pub success: f64,
    /// Mean over samples of the fraction of noise tokens that outrank the discriminative
    /// token at its class's expert.
    pub noise_beats_signal: f64,
    /// The smallest C that keeps 99% of the discriminative tokens routed to their class's
    /// expert, under the arm's own queue order (first come, by score, or expert choice's
    /// ranking of every token; undefined for random dropping).
    pub capacity_99: f64,
}

/// Adds one group's counts (Theorem 5's quantities measured on the trained router).
pub fn class_routing(
    counts: &mut ClassCounts,
    group: &Group,
    dispatch: &Dispatch,
    score: &[f64],
    experts: usize,
    drop: Option<Drop>,
) {
    let classes = group.classes.iter().copied().max().map_or(0, |m| m + 1);
    let mut votes = vec![0usize; classes * experts];
    for t in 0..group.tokens {
        if group.discriminative[t]
            && let Some(e) = dispatch.chosen.first(t)
        {
            votes[group.truth[t] * experts + e] += 1;
        }
    }
    let expert_of: Vec<usize> = (0..classes)
        .map(|y| {
            (0..experts)
                .max_by_key(|&e| (votes[y * experts + e], usize::MAX - e))
                .unwrap_or(0)
        })
        .collect();
    let s = group.tokens / group.classes.len().max(1);
    let mut kept = vec![false; group.tokens];
    for slot in &dispatch.slots {
        if expert_of[group.truth[slot.token]] == slot.expert {
            kept[slot.token] = true;
        }
    }
    for (b, _) in group.classes.iter().enumerate() {
        let tokens = b * s..(b + 1) * s;
        let Some(o) = tokens.clone().find(|&t| group.discriminative[t]) else {
            continue;
        };
        let e = expert_of[group.truth[o]];
        counts.samples += 1;
        counts.succeeded += usize::from(kept[o]);
        if !score.is_empty() {
            let so = score[o * experts + e];
            let n = tokens
                .clone()
                .filter(|&t| t != o && score[t * experts + e] >= so)
                .count();
            counts.beats += n as f64 / (s - 1) as f64;
            counts.scored += 1;
        }
        // The class token's place in e's queue, in the order the arm drops by (1-based).
        let so = |t: usize| score[t * experts + e];
        let place = |t: usize| dispatch.chosen.of(t).iter().position(|&x| x == e);
        let rank = match (drop, place(o)) {
            // Expert choice: every token competes, by the expert's score.
            (None, _) if !score.is_empty() => {
                Some((0..group.tokens).filter(|&t| so(t) > so(o)).count())
            }
            (Some(Drop::Priority), Some(_)) if !score.is_empty() => Some(
                (0..group.tokens)
                    .filter(|&t| place(t).is_some() && so(t) > so(o))
                    .count(),
            ),
            // First come: every earlier rank of choice first, then earlier tokens of its own
            // rank (GShard queues second choices after all first choices).
            (Some(Drop::Position), Some(r)) => Some(
                (0..group.tokens)
                    .filter(|&t| match place(t) {
                        Some(rt) => rt < r || (rt == r && t < o),
                        None => false,
                    })
                    .count(),
            ),
            // Random dropping has no queue order; a token that did not choose e has none.
            _ => None,
        };
        if let Some(rank) = rank {
            counts.ranks.push(rank + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calinski_harabasz_and_nmi_match_hand_values() {
        // Two groups on a line: {0, 2} and {10, 12}: between 2 * 2 * 25 = 100 over 1, within
        // 4 over 2: CH = 50.
        let x = [0.0, 2.0, 10.0, 12.0];
        assert!((calinski_harabasz(&x, 1, &[0, 0, 1, 1], 2).unwrap() - 50.0).abs() < 1e-12);
        assert_eq!(calinski_harabasz(&x, 1, &[0, 0, 0, 0], 2), None);
        assert!((nmi(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        assert!(nmi(&[0, 0, 0, 0], &[1, 1, 0, 0]).is_nan());
        assert!(nmi(&[0, 1, 0, 1], &[0, 0, 1, 1]).abs() < 1e-12);
        assert!(
            (mean_pairwise_cosine(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0], 2) - 1.0 / 3.0).abs() < 1e-12
        );
        assert_eq!(dead_experts(&[100, 0, 50, 0]), 2);
    }
}
