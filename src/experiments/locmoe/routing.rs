//! The routers: which tokens each expert processes, given the tokens' scores.
//!
//! Every arm computes gate probabilities and a selection score per (token, expert) in the
//! model (a learned softmax gate, or LocMoE's fixed GrAP gates, see `model.rs`); a
//! [`Router`] turns them into a [`Dispatch`] under a capacity of C token slots per expert.
//! Token choice (Switch, GShard, LocMoE, LocMoE+ and the controls) differs only in how an
//! expert with more than C candidates drops: first come (position), by score (priority:
//! V-MoE's batch-prioritized routing, LocMoE+'s per-expert top-C by affinity) or at random.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterName {
    Switch,
    SwitchPriority,
    SwitchRandom,
    Gshard,
    ExpertChoice,
    Base,
    Hash,
    Locmoe,
    LocmoePlus,
}

/// How the gate value that multiplies an expert's output is computed from the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRule {
    /// The gate probability p_te (Switch, expert choice, LocMoE, LocMoE+).
    Probability,
    /// p_te renormalized over the token's chosen experts (GShard).
    Renormalized,
    /// sigmoid of the logit (BASE layers: x + sigma(x . c_e) f_e(x)).
    Sigmoid,
    /// 1 (hash layers have no gate).
    One,
}

/// Where the gate probabilities come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// softmax(W_g h): d x E learned weights.
    Learned,
    /// softmax(ReLU(omega . h)) with LocMoE's fixed GrAP weights omega (eq. 2 of LocMoE).
    Grap,
    /// softmax(delta / temperature), delta = cos(h, w_i) with the GrAP vectors w_i
    /// (LocMoE+ eq. 4; the temperature is ours).
    GrapCosine,
    /// None: a fixed table of token ids.
    Hash,
}

impl RouterName {
    pub const ALL: [RouterName; 9] = [
        RouterName::Switch,
        RouterName::SwitchPriority,
        RouterName::SwitchRandom,
        RouterName::Gshard,
        RouterName::ExpertChoice,
        RouterName::Base,
        RouterName::Hash,
        RouterName::Locmoe,
        RouterName::LocmoePlus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouterName::Switch => "switch",
            RouterName::SwitchPriority => "switch_priority",
            RouterName::SwitchRandom => "switch_random",
            RouterName::Gshard => "gshard",
            RouterName::ExpertChoice => "expert_choice",
            RouterName::Base => "base",
            RouterName::Hash => "hash",
            RouterName::Locmoe => "locmoe",
            RouterName::LocmoePlus => "locmoe_plus",
        }
    }

    pub fn from_name(name: &str) -> Option<RouterName> {
        RouterName::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn uses_grap(self) -> bool {
        matches!(self, RouterName::Locmoe | RouterName::LocmoePlus)
    }

    pub fn gate_kind(self) -> GateKind {
        match self {
            RouterName::Locmoe => GateKind::Grap,
            RouterName::LocmoePlus => GateKind::GrapCosine,
            RouterName::Hash => GateKind::Hash,
            _ => GateKind::Learned,
        }
    }

    pub fn gate_rule(self) -> GateRule {
        match self {
            RouterName::Gshard => GateRule::Renormalized,
            RouterName::Base => GateRule::Sigmoid,
            RouterName::Hash => GateRule::One,
            _ => GateRule::Probability,
        }
    }

    /// Token slots per token the capacity factor counts (GShard's top-k).
    pub fn slots_per_token(self, top_k: usize) -> usize {
        if self == RouterName::Gshard { top_k } else { 1 }
    }

    /// Whether Switch's balance loss is added (the token-choice arms with a learned or GrAP
    /// gate; expert choice, BASE and hash are balanced by construction).
    pub fn balance_loss(self) -> bool {
        matches!(
            self,
            RouterName::Switch
                | RouterName::SwitchPriority
                | RouterName::SwitchRandom
                | RouterName::Gshard
                | RouterName::Locmoe
        )
    }

    /// The router that selects this arm's tokens during training.
    pub fn router(self, top_k: usize) -> Box<dyn Router> {
        let tc = |k, drop| Box::new(TokenChoice { k, drop }) as Box<dyn Router>;
        match self {
            RouterName::Switch | RouterName::Locmoe => tc(1, Drop::Position),
            RouterName::SwitchPriority | RouterName::LocmoePlus => tc(1, Drop::Priority),
            RouterName::SwitchRandom => tc(1, Drop::Random),
            RouterName::Gshard => tc(top_k, Drop::Position),
            RouterName::ExpertChoice => Box::new(ExpertChoice),
            RouterName::Base => Box::new(Balanced),
            RouterName::Hash => Box::new(HashTable),
        }
    }

    /// The router of causal-safe evaluation: each token's own top choices, no capacity, so
    /// no token's fate depends on any other token (hash keeps its table).
    pub fn causal_router(self, top_k: usize) -> Box<dyn Router> {
        match self {
            RouterName::Hash => Box::new(HashTable),
            _ => Box::new(TokenChoice {
                k: self.slots_per_token(top_k),
                drop: Drop::Position,
            }),
        }
    }
}

/// Which of an expert's candidates go when more than C chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// First come, first served (Switch, GShard, the setting of Theorem 5).
    Position,
    /// The highest scores stay (BPR; LocMoE+'s per-expert top-C by affinity).
    Priority,
    /// A uniformly random C stay (the control).
    Random,
}

/// Token slots per expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    Slots(usize),
    /// No token dropped: C is the largest load.
    Dropless,
}

/// The scores a router reads, T x E row-major.
pub struct Scores<'a> {
    pub tokens: usize,
    pub experts: usize,
    /// What selection ranks: the gate probability (learned gates) or the affinity delta
    /// (GrAP).
    pub score: &'a [f64],
    /// Token ids (hash routing).
    pub ids: &'a [usize],
}

impl Scores<'_> {
    fn row(&self, t: usize) -> &[f64] {
        &self.score[t * self.experts..(t + 1) * self.experts]
    }

    /// Appends the k highest-scoring experts of token t to `out`, best first (ties: the
    /// lower index), by insertion into the k kept so far (k is small: no sort, no allocation).
    pub fn top_into(&self, t: usize, k: usize, out: &mut Vec<usize>) {
        let row = self.row(t);
        let base = out.len();
        for e in 0..self.experts {
            let kept = out.len() - base;
            if kept == k && row[e] <= row[out[base + k - 1]] {
                continue;
            }
            if kept < k {
                out.push(e);
            } else {
                out[base + k - 1] = e;
            }
            // Bubble the new entry up past strictly smaller scores.
            let mut i = out.len() - 1;
            while i > base && row[out[i]] > row[out[i - 1]] {
                out.swap(i, i - 1);
                i -= 1;
            }
        }
    }

    /// The k highest-scoring experts of token t, best first (ties: the lower index).
    pub fn top(&self, t: usize, k: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(k);
        self.top_into(t, k, &mut out);
        out
    }

    fn argmax(&self, t: usize) -> usize {
        self.best(t).0
    }

    /// Token t's best expert and its score (ties: the lower index).
    pub fn best(&self, t: usize) -> (usize, f64) {
        let row = self.row(t);
        let mut best = 0;
        for e in 1..self.experts {
            if row[e] > row[best] {
                best = e;
            }
        }
        (best, row[best])
    }

    /// The mean over tokens of the best score (the mean top-1 affinity).
    pub fn mean_best(&self) -> f64 {
        (0..self.tokens).map(|t| self.best(t).1).sum::<f64>() / self.tokens as f64
    }
}

/// A kept (token, expert) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub token: usize,
    pub expert: usize,
}

/// Each token's chosen experts, best first (kept or not), stored flat: token t's are
/// `expert[start[t]..start[t + 1]]`.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    start: Vec<usize>,
    expert: Vec<usize>,
}

impl Choices {
    /// Token t's experts, best first.
    pub fn of(&self, t: usize) -> &[usize] {
        &self.expert[self.start[t]..self.start[t + 1]]
    }

    /// Token t's first choice, if it has one.
    pub fn first(&self, t: usize) -> Option<usize> {
        self.of(t).first().copied()
    }

    /// k choices per token, laid out token by token.
    fn uniform(expert: Vec<usize>, k: usize) -> Choices {
        let tokens = expert.len() / k.max(1);
        Choices {
            start: (0..=tokens).map(|t| t * k).collect(),
            expert,
        }
    }
}

/// What a router decided for one routing group.
#[derive(Debug, Clone, Default)]
pub struct Dispatch {
    pub tokens: usize,
    pub experts: usize,
    /// Kept pairs, grouped by expert in the order each expert processes them.
    pub slots: Vec<Slot>,
    /// Tokens that chose each expert before capacity (the experts' own picks for expert
    /// choice and BASE).
    pub routed: Vec<usize>,
    /// Tokens each expert processes.
    pub processed: Vec<usize>,
    /// Token slots per expert (the largest load when dropless).
    pub capacity: usize,
    /// Each token's chosen experts (none for expert choice's unpicked tokens).
    pub chosen: Choices,
}

/// One way of choosing each expert's tokens.
pub trait Router: Send + Sync {
    fn route(&self, scores: &Scores, capacity: Capacity, rng: &mut ChaCha8Rng) -> Dispatch;
}

/// Each token takes its top-k experts; an expert over capacity drops by `drop`.
pub struct TokenChoice {
    pub k: usize,
    pub drop: Drop,
}

/// Each expert takes its C highest-scoring tokens (Zhou et al. 2022).
pub struct ExpertChoice;

/// Every expert gets ceil(T / E) tokens at most, maximizing the total score greedily
/// (BASE layers solve this assignment exactly by an auction; greedy is our stand-in).
pub struct Balanced;

/// A fixed balanced table of token ids (Roller et al. 2021).
pub struct HashTable;

/// The expert of a token id in a fixed balanced table: each aligned block of E ids is a
/// rotation of the experts by a hashed offset, so any E consecutive aligned ids use every
/// expert once and the table looks random across blocks.
pub fn hash_expert(id: usize, experts: usize) -> usize {
    let block = (id / experts) as u64;
    // SplitMix64's finalizer: a fixed, well-mixed offset per block.
    let mut z = block.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (id % experts + (z % experts as u64) as usize) % experts
}

/// The queues of token choice: each expert's candidates in arrival order (first choices in
/// token order, then second choices, ...), by a counting sort.
fn queues(chosen: &Choices, tokens: usize, experts: usize, k: usize) -> (Vec<usize>, Vec<usize>) {
    let mut offset = vec![0usize; experts + 1];
    for &e in &chosen.expert {
        offset[e + 1] += 1;
    }
    for e in 0..experts {
        offset[e + 1] += offset[e];
    }
    let mut at = offset.clone();
    let mut order = vec![0usize; chosen.expert.len()];
    for rank in 0..k {
        for t in 0..tokens {
            if let Some(&e) = chosen.of(t).get(rank) {
                order[at[e]] = t;
                at[e] += 1;
            }
        }
    }
    (order, offset)
}

/// Keeps at most `capacity` of each expert's queue (`order[offset[e]..offset[e + 1]]`, in
/// arrival order), in the queue's order after `drop`.
fn fill(
    mut order: Vec<usize>,
    offset: &[usize],
    scores: &Scores,
    capacity: Capacity,
    drop: Drop,
    rng: &mut ChaCha8Rng,
    chosen: Choices,
) -> Dispatch {
    let experts = offset.len() - 1;
    let routed: Vec<usize> = (0..experts).map(|e| offset[e + 1] - offset[e]).collect();
    let c = match capacity {
        Capacity::Slots(c) => c,
        Capacity::Dropless => routed.iter().copied().max().unwrap_or(0),
    };
    let mut slots = Vec::with_capacity(order.len().min(c * experts));
    let mut processed = Vec::with_capacity(experts);
    for e in 0..experts {
        let queue = &mut order[offset[e]..offset[e + 1]];
        let kept = queue.len().min(c);
        if queue.len() > c {
            match drop {
                Drop::Position => {}
                Drop::Priority => {
                    // The c highest scores; equal scores keep their order of arrival.
                    let s = |t: usize| scores.score[t * scores.experts + e];
                    let mut ranked: Vec<(usize, usize)> =
                        queue.iter().copied().enumerate().collect();
                    let by = |a: &(usize, usize), b: &(usize, usize)| {
                        s(b.1).total_cmp(&s(a.1)).then(a.0.cmp(&b.0))
                    };
                    ranked.select_nth_unstable_by(c, by);
                    ranked.truncate(c);
                    ranked.sort_unstable_by(by);
                    for (q, (_, t)) in queue.iter_mut().zip(ranked) {
                        *q = t;
                    }
                }
                Drop::Random => {
                    // The first c of a Fisher-Yates shuffle, then back in arrival order.
                    let mut pos: Vec<usize> = (0..queue.len()).collect();
                    for i in 0..c {
                        let j = rng.random_range(i..pos.len());
                        pos.swap(i, j);
                    }
                    let mut keep: Vec<usize> = pos[..c].to_vec();
                    keep.sort_unstable();
                    let picked: Vec<usize> = keep.iter().map(|&i| queue[i]).collect();
                    queue[..c].copy_from_slice(&picked);
                }
            }
        }
        processed.push(kept);
        slots.extend(queue[..kept].iter().map(|&token| Slot { token, expert: e }));
    }
    Dispatch {
        tokens: scores.tokens,
        experts,
        slots,
        routed,
        processed,
        capacity: c,
        chosen,
    }
}

impl Router for TokenChoice {
    fn route(&self, scores: &Scores, capacity: Capacity, rng: &mut ChaCha8Rng) -> Dispatch {
        let (t_n, e_n, k) = (scores.tokens, scores.experts, self.k);
        let mut expert = Vec::with_capacity(t_n * k);
        for t in 0..t_n {
            if k == 1 {
                expert.push(scores.argmax(t));
            } else {
                scores.top_into(t, k, &mut expert);
            }
        }
        let chosen = Choices::uniform(expert, k);
        let (order, offset) = queues(&chosen, t_n, e_n, k);
        fill(order, &offset, scores, capacity, self.drop, rng, chosen)
    }
}

impl Router for HashTable {
    fn route(&self, scores: &Scores, capacity: Capacity, rng: &mut ChaCha8Rng) -> Dispatch {
        let (t_n, e_n) = (scores.tokens, scores.experts);
        let expert = (0..t_n).map(|t| hash_expert(scores.ids[t], e_n)).collect();
        let chosen = Choices::uniform(expert, 1);
        let (order, offset) = queues(&chosen, t_n, e_n, 1);
        fill(
            order,
            &offset,
            scores,
            capacity,
            Drop::Position,
            rng,
            chosen,
        )
    }
}

impl Router for ExpertChoice {
    fn route(&self, scores: &Scores, capacity: Capacity, _rng: &mut ChaCha8Rng) -> Dispatch {
        let (t_n, e_n) = (scores.tokens, scores.experts);
        let c = match capacity {
            Capacity::Slots(c) => c.min(t_n),
            Capacity::Dropless => t_n.div_ceil(e_n),
        };
        let mut slots = Vec::with_capacity(c * e_n);
        let mut order: Vec<usize> = (0..t_n).collect();
        let mut count = vec![0usize; t_n + 1];
        for e in 0..e_n {
            let s = |t: usize| scores.score[t * e_n + e];
            let by = |a: &usize, b: &usize| s(*b).total_cmp(&s(*a)).then(a.cmp(b));
            if c < t_n {
                order.select_nth_unstable_by(c, by);
            }
            let picked = &mut order[..c];
            picked.sort_unstable_by(by);
            for &t in picked.iter() {
                count[t + 1] += 1;
            }
            slots.extend(picked.iter().map(|&token| Slot { token, expert: e }));
        }
        // Each token's experts, best first.
        for t in 0..t_n {
            count[t + 1] += count[t];
        }
        let mut at = count.clone();
        let mut expert = vec![0usize; slots.len()];
        for s in &slots {
            expert[at[s.token]] = s.expert;
            at[s.token] += 1;
        }
        for t in 0..t_n {
            let row = &scores.score[t * e_n..(t + 1) * e_n];
            expert[count[t]..count[t + 1]]
                .sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        }
        Dispatch {
            tokens: t_n,
            experts: e_n,
            slots,
            routed: vec![c; e_n],
            processed: vec![c; e_n],
            capacity: c,
            chosen: Choices {
                start: count,
                expert,
            },
        }
    }
}

impl Router for Balanced {
    fn route(&self, scores: &Scores, _capacity: Capacity, rng: &mut ChaCha8Rng) -> Dispatch {
        let (t_n, e_n) = (scores.tokens, scores.experts);
        let c = t_n.div_ceil(e_n);
        let mut pairs: Vec<usize> = (0..t_n * e_n).collect();
        pairs
            .sort_unstable_by(|&a, &b| scores.score[b].total_cmp(&scores.score[a]).then(a.cmp(&b)));
        let mut expert = vec![usize::MAX; t_n];
        let mut load = vec![0; e_n];
        let mut left = t_n;
        for p in pairs {
            let (t, e) = (p / e_n, p % e_n);
            if expert[t] == usize::MAX && load[e] < c {
                expert[t] = e;
                load[e] += 1;
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        let chosen = Choices::uniform(expert, 1);
        let (order, offset) = queues(&chosen, t_n, e_n, 1);
        // No expert holds more than c: position dropping drops nothing and draws nothing.
        fill(
            order,
            &offset,
            scores,
            Capacity::Slots(c),
            Drop::Position,
            rng,
            chosen,
        )
    }
}

/// Load statistics of a dispatch (notes section 5).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadStats {
    /// Coefficient of variation (population sd / mean) of the tokens per expert.
    pub cv: f64,
    /// max / mean - 1 (MaxVio, Wang et al. 2024).
    pub max_violation: f64,
    pub gini: f64,
    /// 1 - processed / routed.
    pub drop_rate: f64,
    /// Tokens with no expert at all.
    pub zero_expert: f64,
    /// Tokens with more than one expert.
    pub multi_expert: f64,
    pub processed_slots: usize,
    /// E x C: the slots a drop-and-pad implementation computes.
    pub padded_slots: usize,
}

/// CV, MaxVio and Gini of loads.
pub fn spread(loads: &[usize]) -> (f64, f64, f64) {
    let n = loads.len() as f64;
    let mean = loads.iter().sum::<usize>() as f64 / n;
    if mean == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let var = loads
        .iter()
        .map(|&l| (l as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let max = loads.iter().copied().max().unwrap_or(0) as f64;
    let mut sorted: Vec<f64> = loads.iter().map(|&l| l as f64).collect();
    sorted.sort_by(f64::total_cmp);
    // Gini = sum_i (2i - n - 1) x_(i) / (n sum x), i from 1.
    let total: f64 = sorted.iter().sum();
    let g: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum::<f64>()
        / (n * total);
    (var.sqrt() / mean, max / mean - 1.0, g)
}

impl Dispatch {
    pub fn stats(&self) -> LoadStats {
        let (cv, max_violation, gini) = spread(&self.routed);
        let routed: usize = self.routed.iter().sum();
        let processed: usize = self.processed.iter().sum();
        let mut per_token = vec![0u32; self.tokens];
        for s in &self.slots {
            per_token[s.token] += 1;
        }
        let t = self.tokens.max(1) as f64;
        LoadStats {
            cv,
            max_violation,
            gini,
            drop_rate: if routed == 0 {
                0.0
            } else {
                1.0 - processed as f64 / routed as f64
            },
            zero_expert: per_token.iter().filter(|&&k| k == 0).count() as f64 / t,
            multi_expert: per_token.iter().filter(|&&k| k > 1).count() as f64 / t,
            processed_slots: processed,
            padded_slots: self.experts * self.capacity,
        }
    }
}

/// C = ceil(cf k T / E), at least 1 and at most T; cf = 0 is dropless.
pub fn capacity_of(cf: f64, k: usize, tokens: usize, experts: usize) -> Capacity {
    if cf == 0.0 {
        return Capacity::Dropless;
    }
    let c = (cf * k as f64 * tokens as f64 / experts as f64).ceil() as usize;
    Capacity::Slots(c.clamp(1, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scores(rows: &[[f64; 3]]) -> Vec<f64> {
        rows.iter().flatten().copied().collect()
    }

    fn kept_of(d: &Dispatch, e: usize) -> Vec<usize> {
        d.slots
            .iter()
            .filter(|s| s.expert == e)
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn position_priority_and_random_dropping_keep_what_they_say() {
        // Four tokens choose expert 0; their scores for it are 0.5, 0.9, 0.6, 0.8.
        let s = scores(&[
            [0.5, 0.2, 0.3],
            [0.9, 0.05, 0.05],
            [0.6, 0.1, 0.3],
            [0.8, 0.1, 0.1],
        ]);
        let sc = Scores {
            tokens: 4,
            experts: 3,
            score: &s,
            ids: &[0, 1, 2, 3],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pos = TokenChoice {
            k: 1,
            drop: Drop::Position,
        }
        .route(&sc, Capacity::Slots(2), &mut rng);
        assert_eq!(kept_of(&pos, 0), vec![0, 1]);
        assert_eq!(pos.routed, vec![4, 0, 0]);
        let pri = TokenChoice {
            k: 1,
            drop: Drop::Priority,
        }
        .route(&sc, Capacity::Slots(2), &mut rng);
        assert_eq!(kept_of(&pri, 0), vec![1, 3]);
        let st = pri.stats();
        assert_eq!((st.processed_slots, st.padded_slots), (2, 6));
        assert!((st.drop_rate - 0.5).abs() < 1e-12 && (st.zero_expert - 0.5).abs() < 1e-12);
        // Random dropping keeps 2 of the 4, each token equally often.
        let mut count = [0; 4];
        for _ in 0..4000 {
            let r = TokenChoice {
                k: 1,
                drop: Drop::Random,
            }
            .route(&sc, Capacity::Slots(2), &mut rng);
            for t in kept_of(&r, 0) {
                count[t] += 1;
            }
        }
        for c in count {
            assert!((c as f64 / 4000.0 - 0.5).abs() < 0.04, "{count:?}");
        }
        let free = TokenChoice {
            k: 1,
            drop: Drop::Position,
        }
        .route(&sc, Capacity::Dropless, &mut rng);
        assert_eq!((free.capacity, free.slots.len()), (4, 4));
    }

    #[test]
    fn top_k_matches_a_stable_sort_with_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for _ in 0..200 {
            // Scores on a coarse grid, so ties are common.
            let s: Vec<f64> = (0..7).map(|_| rng.random_range(0..4) as f64).collect();
            let sc = Scores {
                tokens: 1,
                experts: 7,
                score: &s,
                ids: &[0],
            };
            for k in 1..=7 {
                let mut idx: Vec<usize> = (0..7).collect();
                idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
                assert_eq!(sc.top(0, k), idx[..k].to_vec(), "{s:?} k {k}");
            }
        }
    }

    #[test]
    fn top2_queues_first_choices_before_second_choices() {
        let s = scores(&[[0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1]]);
        let sc = Scores {
            tokens: 3,
            experts: 3,
            score: &s,
            ids: &[0, 1, 2],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let d = TokenChoice {
            k: 2,
            drop: Drop::Position,
        }
        .route(&sc, Capacity::Slots(2), &mut rng);
        // Expert 0: first choices 0 and 2 fill it; token 1's second choice is dropped.
        assert_eq!(kept_of(&d, 0), vec![0, 2]);
        assert_eq!(kept_of(&d, 1), vec![1, 0]);
        assert_eq!(d.routed, vec![3, 3, 0]);
    }

    #[test]
    fn expert_choice_takes_each_experts_best_tokens_against_a_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (t, e, c) = (50, 4, 9);
        let s: Vec<f64> = (0..t * e).map(|_| rng.random::<f64>()).collect();
        let ids: Vec<usize> = (0..t).collect();
        let sc = Scores {
            tokens: t,
            experts: e,
            score: &s,
            ids: &ids,
        };
        let d = ExpertChoice.route(&sc, Capacity::Slots(c), &mut rng);
        for x in 0..e {
            let mut all: Vec<usize> = (0..t).collect();
            all.sort_by(|&a, &b| s[b * e + x].total_cmp(&s[a * e + x]));
            assert_eq!(kept_of(&d, x), all[..c].to_vec());
        }
        assert_eq!(d.stats().cv, 0.0);
    }

    #[test]
    fn balanced_assignment_fills_every_expert_and_beats_nobody_on_a_tiny_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (t, e) = (6, 3);
        let s: Vec<f64> = (0..t * e).map(|_| rng.random::<f64>()).collect();
        let ids: Vec<usize> = (0..t).collect();
        let sc = Scores {
            tokens: t,
            experts: e,
            score: &s,
            ids: &ids,
        };
        let d = Balanced.route(&sc, Capacity::Dropless, &mut rng);
        assert_eq!(d.processed, vec![2, 2, 2]);
        let total = |a: &[usize]| {
            a.iter()
                .enumerate()
                .map(|(t, &x)| s[t * e + x])
                .sum::<f64>()
        };
        let greedy: Vec<usize> = (0..t).map(|x| d.chosen.of(x)[0]).collect();
        // Brute force over all balanced assignments: greedy is within the optimum (and the
        // assignment is feasible).
        let mut best = 0.0f64;
        for code in 0..3usize.pow(6) {
            let a: Vec<usize> = (0..6).map(|i| code / 3usize.pow(i as u32) % 3).collect();
            if (0..3).all(|x| a.iter().filter(|&&y| y == x).count() == 2) {
                best = best.max(total(&a));
            }
        }
        assert!(total(&greedy) <= best + 1e-12);
        assert!(
            total(&greedy) >= 0.5 * best,
            "greedy is a 1/2-approximation"
        );
    }

    #[test]
    fn hash_routing_spreads_ids_and_load_stats_match_hand_values() {
        // Balanced on every aligned block of E ids, and not the identity.
        for e in [3, 8, 16] {
            let mut load = vec![0usize; e];
            for id in 0..40 * e {
                load[hash_expert(id, e)] += 1;
            }
            assert!(load.iter().all(|&l| l == 40), "{load:?}");
        }
        let moved = (0..64).filter(|&id| hash_expert(id, 8) != id % 8).count();
        assert!(moved > 32, "{moved} of 64 ids off the identity");
        let (cv, vio, gini) = spread(&[1, 3]);
        assert!((cv - 0.5).abs() < 1e-12 && (vio - 0.5).abs() < 1e-12);
        assert!((gini - 0.25).abs() < 1e-12);
        assert_eq!(capacity_of(1.1, 1, 512, 8), Capacity::Slots(71));
        assert_eq!(capacity_of(1.25, 2, 512, 8), Capacity::Slots(160));
    }
}
