//! The model every arm trains: a learnable projection, one MoE layer, a task head.
//!
//! h = W_p x + b_p (the same projection before every router), z = h + sum over the token's
//! kept experts of g_te f_e(h) with f_e(h) = W2_e ReLU(W1_e h + b1_e) + b2_e (a dropped
//! token passes through: z = h), then the head: mean pooling over a sample and a linear
//! classifier (pmoe), a linear regression per token (zipf), or a linear layer to the
//! vocabulary per token (charlm, whose x is its context's learned character embeddings).
//! Backward passes are hand-written and checked against finite differences (the tests);
//! f64 throughout, products through the nn toolkit's `matmul`.

use rand_chacha::ChaCha8Rng;

use super::routing::{Dispatch, GateKind, GateRule, Scores};
use crate::nn::{Operand, matmul, softmax_cross_entropy};
use crate::random::fill_standard_normal;

/// What the model reads and predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Mean over each sample's `tokens` tokens, then a linear layer to classes.
    Pool { tokens: usize },
    /// One real target per token.
    Regression,
    /// The next character of each token's context.
    NextChar {
        vocab: usize,
        context: usize,
        embedding: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Arch {
    pub d_in: usize,
    pub d: usize,
    pub experts: usize,
    pub hidden: usize,
    /// Classes (pool), 1 (regression) or the vocabulary (next char).
    pub outputs: usize,
    pub head: Head,
    pub gate: GateKind,
    pub rule: GateRule,
    pub temperature: f64,
}

/// Offsets of the parameter blocks in the flat buffer.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub embed: usize,
    pub wp: usize,
    pub bp: usize,
    pub wg: usize,
    pub experts: usize,
    pub per_expert: usize,
    pub wo: usize,
    pub bo: usize,
    pub total: usize,
}

impl Arch {
    pub fn layout(&self) -> Layout {
        let (d, h) = (self.d, self.hidden);
        let embed_len = match self.head {
            Head::NextChar {
                vocab, embedding, ..
            } => vocab * embedding,
            _ => 0,
        };
        let wp = embed_len;
        let bp = wp + d * self.d_in;
        let wg = bp + d;
        let experts = wg + self.experts * d;
        let per_expert = 2 * h * d + h + d;
        let wo = experts + self.experts * per_expert;
        let bo = wo + self.outputs * d;
        Layout {
            embed: 0,
            wp,
            bp,
            wg,
            experts,
            per_expert,
            wo,
            bo,
            total: bo + self.outputs,
        }
    }

    /// Parameters the arm trains (the buffer holds a gate matrix for every arm, so that
    /// every arm of a seed starts from the same weights; GrAP and hash arms leave it alone).
    pub fn trained_parameters(&self) -> usize {
        let l = self.layout();
        match self.gate {
            GateKind::Learned => l.total,
            _ => l.total - self.experts * self.d,
        }
    }

    /// He-style initialization from one stream (the same draws for every arm).
    pub fn init(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let l = self.layout();
        let mut w = vec![0.0; l.total];
        fill_standard_normal(rng, &mut w);
        let scale = |w: &mut [f64], s: f64| w.iter_mut().for_each(|v| *v *= s);
        let (d, h) = (self.d as f64, self.hidden as f64);
        scale(&mut w[l.embed..l.wp], 1.0);
        scale(&mut w[l.wp..l.bp], (1.0 / self.d_in as f64).sqrt());
        w[l.bp..l.wg].fill(0.0);
        // A small router init, as Switch recommends (0.1 of the fan-in scale).
        scale(&mut w[l.wg..l.experts], 0.1 / d.sqrt());
        for e in 0..self.experts {
            let base = l.experts + e * l.per_expert;
            let (w1, b1, w2, b2) = expert_blocks(base, self.d, self.hidden);
            scale(&mut w[w1..w1 + self.hidden * self.d], (2.0 / d).sqrt());
            w[b1..b1 + self.hidden].fill(0.0);
            scale(&mut w[w2..w2 + self.d * self.hidden], (1.0 / h).sqrt());
            w[b2..b2 + self.d].fill(0.0);
        }
        scale(&mut w[l.wo..l.bo], (1.0 / d).sqrt());
        w[l.bo..l.total].fill(0.0);
        w
    }
}

/// (w1, b1, w2, b2) offsets of an expert whose block starts at `base`.
fn expert_blocks(base: usize, d: usize, h: usize) -> (usize, usize, usize, usize) {
    let w1 = base;
    let b1 = w1 + h * d;
    let w2 = b1 + h;
    let b2 = w2 + d * h;
    (w1, b1, w2, b2)
}

/// The inputs of one routing group of T tokens.
pub struct Batch<'a> {
    pub tokens: usize,
    /// T x d_in (pool, regression) or T x context character ids (next char).
    pub dense: &'a [f64],
    pub chars: &'a [usize],
    /// Class per sample (pool), value per token (regression), next char per token.
    pub classes: &'a [usize],
    pub values: &'a [f64],
    /// Token ids for hash routing.
    pub ids: &'a [usize],
    /// The virtual node each token comes from (locality loss, all-to-all bytes).
    pub origin: &'a [usize],
}

/// Coefficients of the routing losses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Losses {
    /// Switch's alpha.
    pub balance: f64,
    /// LocMoE's mu.
    pub locality: f64,
    pub nodes: usize,
}

/// One forward pass (and backward, if asked).
pub struct Pass {
    /// Mean task loss: cross-entropy in nats, or the mean squared error.
    pub loss: f64,
    pub balance_loss: f64,
    pub locality_loss: f64,
    /// Correct predictions (classes or characters).
    pub correct: usize,
    pub predictions: usize,
    /// The router inputs h, T x d.
    pub h: Vec<f64>,
    /// cos(h_t, gate_e), T x E: the affinity to the GrAP vectors (GrAP arms) or to the rows
    /// of W_g (learned gates); empty for hash.
    pub affinity: Vec<f64>,
    /// What the router ranked, T x E: the gate probabilities, or the affinity (GrAP).
    pub score: Vec<f64>,
    pub dispatch: Dispatch,
}

fn softmax_rows(a: &[f64], e: usize, out: &mut [f64]) {
    for (row, o) in a.chunks(e).zip(out.chunks_mut(e)) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for (x, y) in row.iter().zip(o.iter_mut()) {
            *y = (x - max).exp();
            sum += *y;
        }
        o.iter_mut().for_each(|y| *y /= sum);
    }
}

/// cos(h_t, v_e) for rows v_e of `gates` (E x d).
pub fn cosines(h: &[f64], gates: &[f64], d: usize, e: usize) -> Vec<f64> {
    let t = h.len() / d;
    let mut out = vec![0.0; t * e];
    matmul(
        &mut out,
        Operand::plain(h, t, d),
        Operand::transposed(gates, e, d),
        false,
    );
    let gnorm: Vec<f64> = gates
        .chunks(d)
        .map(|g| g.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    for (k, row) in out.chunks_mut(e).enumerate() {
        let hn = h[k * d..(k + 1) * d]
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        for (x, g) in row.iter_mut().zip(&gnorm) {
            *x /= (hn * g).max(f64::MIN_POSITIVE);
        }
    }
    out
}

/// The scores a router ranks for tokens h (T x d): softmax(h W_g^T) for a learned gate (the
/// logits themselves for BASE), the GrAP cosines for the GrAP arms, nothing for hash (mode
/// routing; training computes the same inside [`pass`]).
pub fn router_scores(
    gate: GateKind,
    rule: GateRule,
    h: &[f64],
    wg: &[f64],
    d: usize,
    e: usize,
) -> Vec<f64> {
    let t = h.len() / d;
    match gate {
        GateKind::Learned => {
            let mut a = vec![0.0; t * e];
            matmul(
                &mut a,
                Operand::plain(h, t, d),
                Operand::transposed(wg, e, d),
                false,
            );
            if rule == GateRule::Sigmoid {
                return a;
            }
            let mut p = vec![0.0; t * e];
            softmax_rows(&a, e, &mut p);
            p
        }
        GateKind::Grap | GateKind::GrapCosine => grap_cosines(h, d, e),
        GateKind::Hash => Vec::new(),
    }
}

/// cos(h_t, w_i) for the GrAP vectors w_i (block i of d / E coordinates), T x E: sqrt(E / d)
/// S_ti / |h_t| with S_ti the block sums (LocMoE+ eq. 4 in closed form; O(T d), no product).
pub fn grap_cosines(h: &[f64], d: usize, e: usize) -> Vec<f64> {
    let mut out = vec![0.0; h.len() / d * e];
    for (row, o) in h.chunks(d).zip(out.chunks_mut(e)) {
        grap_cosine_row(row, o);
    }
    out
}

/// One token's GrAP cosines into `out` (E long).
pub fn grap_cosine_row(x: &[f64], out: &mut [f64]) {
    let (d, e) = (x.len(), out.len());
    let mut norm2 = 0.0;
    for (o, chunk) in out.iter_mut().zip(x.chunks(d / e)) {
        let (s, q) = sum_and_squares(chunk);
        *o = s;
        norm2 += q;
    }
    let factor = (e as f64 / d as f64).sqrt() / norm2.sqrt().max(f64::MIN_POSITIVE);
    out.iter_mut().for_each(|o| *o *= factor);
}

/// The sum and the sum of squares of a slice, in four interleaved accumulators (independent
/// dependency chains, so the adds pipeline; a fixed order, so the same bits every run).
fn sum_and_squares(x: &[f64]) -> (f64, f64) {
    let mut s = [0.0f64; 4];
    let mut q = [0.0f64; 4];
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        for i in 0..4 {
            s[i] += c[i];
            q[i] += c[i] * c[i];
        }
    }
    for (i, &v) in chunks.remainder().iter().enumerate() {
        s[i] += v;
        q[i] += v * v;
    }
    ((s[0] + s[1]) + (s[2] + s[3]), (q[0] + q[1]) + (q[2] + q[3]))
}

/// The GrAP vectors w_i = (E/d) 1{block i}, E x d (LocMoE eq. 2, LocMoE+ eq. 3).
pub fn grap_matrix(d: usize, e: usize) -> Vec<f64> {
    let block = d / e;
    (0..e * d)
        .map(|k| {
            if (k % d) / block == k / d {
                e as f64 / d as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// Forward pass over one routing group; `route` picks the experts from the scores. With
/// `grad`, adds the gradient of the total loss (task + routing losses) to it.
pub fn pass(
    arch: &Arch,
    w: &[f64],
    batch: &Batch,
    losses: Losses,
    route: &mut dyn FnMut(&Scores) -> Dispatch,
    grad: Option<&mut [f64]>,
    diagnostics: bool,
) -> Pass {
    let l = arch.layout();
    let (t_n, d, e_n, hd) = (batch.tokens, arch.d, arch.experts, arch.hidden);
    // Inputs: dense rows, or the concatenated embeddings of the context.
    let x: Vec<f64> = match arch.head {
        Head::NextChar {
            context, embedding, ..
        } => {
            let mut x = vec![0.0; t_n * context * embedding];
            for (k, &c) in batch.chars.iter().enumerate() {
                x[k * embedding..(k + 1) * embedding]
                    .copy_from_slice(&w[l.embed + c * embedding..l.embed + (c + 1) * embedding]);
            }
            x
        }
        _ => batch.dense.to_vec(),
    };
    let d_in = arch.d_in;
    let mut h = vec![0.0; t_n * d];
    matmul(
        &mut h,
        Operand::plain(&x, t_n, d_in),
        Operand::transposed(&w[l.wp..l.bp], d, d_in),
        false,
    );
    for row in h.chunks_mut(d) {
        row.iter_mut()
            .zip(&w[l.bp..l.wg])
            .for_each(|(a, b)| *a += b);
    }
    // Router logits a, probabilities p, selection scores and affinities.
    let grap = grap_matrix(d, e_n);
    let mut a = vec![0.0; t_n * e_n];
    let (affinity, select_by_affinity) = match arch.gate {
        GateKind::Learned => {
            matmul(
                &mut a,
                Operand::plain(&h, t_n, d),
                Operand::transposed(&w[l.wg..l.experts], e_n, d),
                false,
            );
            // cos(h, W_g rows) only where a row or histogram needs it (an extra T E d).
            let affinity = if diagnostics {
                cosines(&h, &w[l.wg..l.experts], d, e_n)
            } else {
                Vec::new()
            };
            (affinity, false)
        }
        GateKind::Grap => {
            // omega_i . h = (E / d) S_i, ReLU'd (LocMoE's gate).
            let block = d / e_n;
            for (row, o) in h.chunks(d).zip(a.chunks_mut(e_n)) {
                for (x, chunk) in o.iter_mut().zip(row.chunks(block)) {
                    *x = (chunk.iter().sum::<f64>() * e_n as f64 / d as f64).max(0.0);
                }
            }
            (grap_cosines(&h, d, e_n), true)
        }
        GateKind::GrapCosine => {
            let delta = grap_cosines(&h, d, e_n);
            a.iter_mut()
                .zip(&delta)
                .for_each(|(x, dl)| *x = dl / arch.temperature);
            (delta, true)
        }
        GateKind::Hash => (Vec::new(), false),
    };
    let mut p = vec![0.0; t_n * e_n];
    softmax_rows(&a, e_n, &mut p);
    // What the router ranks: the affinity (GrAP), the logits (BASE maximizes the sum of
    // h . c_e), or the gate probabilities.
    let dispatch = {
        let score = if select_by_affinity {
            &affinity
        } else if arch.rule == GateRule::Sigmoid {
            &a
        } else {
            &p
        };
        route(&Scores {
            tokens: t_n,
            experts: e_n,
            score,
            ids: batch.ids,
        })
    };
    // Gates of the kept slots.
    let gate_of = |t: usize, e: usize| -> f64 {
        match arch.rule {
            GateRule::Probability => p[t * e_n + e],
            GateRule::Renormalized => {
                let s: f64 = dispatch.chosen.of(t).iter().map(|&j| p[t * e_n + j]).sum();
                p[t * e_n + e] / s
            }
            GateRule::Sigmoid => 1.0 / (1.0 + (-a[t * e_n + e]).exp()),
            GateRule::One => 1.0,
        }
    };
    // Experts: z = h + sum g f_e(h).
    let mut z = h.clone();
    struct ExpertWork {
        expert: usize,
        tokens: Vec<usize>,
        gates: Vec<f64>,
        input: Vec<f64>,
        pre: Vec<f64>,
        act: Vec<f64>,
        out: Vec<f64>,
    }
    let mut work: Vec<ExpertWork> = Vec::new();
    let mut start = 0;
    while start < dispatch.slots.len() {
        let e = dispatch.slots[start].expert;
        let mut end = start;
        while end < dispatch.slots.len() && dispatch.slots[end].expert == e {
            end += 1;
        }
        let tokens: Vec<usize> = dispatch.slots[start..end].iter().map(|s| s.token).collect();
        start = end;
        let n = tokens.len();
        let (w1, b1, w2, b2) = expert_blocks(l.experts + e * l.per_expert, d, hd);
        let mut input = vec![0.0; n * d];
        for (k, &t) in tokens.iter().enumerate() {
            input[k * d..(k + 1) * d].copy_from_slice(&h[t * d..(t + 1) * d]);
        }
        let mut pre = vec![0.0; n * hd];
        matmul(
            &mut pre,
            Operand::plain(&input, n, d),
            Operand::transposed(&w[w1..b1], hd, d),
            false,
        );
        for row in pre.chunks_mut(hd) {
            row.iter_mut().zip(&w[b1..w2]).for_each(|(a, b)| *a += b);
        }
        let act: Vec<f64> = pre.iter().map(|v| v.max(0.0)).collect();
        let mut out = vec![0.0; n * d];
        matmul(
            &mut out,
            Operand::plain(&act, n, hd),
            Operand::transposed(&w[w2..b2], d, hd),
            false,
        );
        for row in out.chunks_mut(d) {
            row.iter_mut()
                .zip(&w[b2..b2 + d])
                .for_each(|(a, b)| *a += b);
        }
        let gates: Vec<f64> = tokens.iter().map(|&t| gate_of(t, e)).collect();
        for (k, &t) in tokens.iter().enumerate() {
            for j in 0..d {
                z[t * d + j] += gates[k] * out[k * d + j];
            }
        }
        work.push(ExpertWork {
            expert: e,
            tokens,
            gates,
            input,
            pre,
            act,
            out,
        });
    }
    // Head.
    let o_n = arch.outputs;
    let wo = &w[l.wo..l.bo];
    let bo = &w[l.bo..l.total];
    let mut dz = vec![0.0; t_n * d];
    // The head's output gradient and its inputs, for the weight gradients.
    type HeadGrad = Option<(Vec<f64>, Vec<f64>)>;
    let (loss, correct, predictions, head_grad): (f64, usize, usize, HeadGrad);
    match arch.head {
        Head::Pool { tokens: s } => {
            let b_n = t_n / s;
            let mut pooled = vec![0.0; b_n * d];
            for (k, row) in z.chunks(d).enumerate() {
                let b = k / s;
                for j in 0..d {
                    pooled[b * d + j] += row[j] / s as f64;
                }
            }
            let mut logits = vec![0.0; b_n * o_n];
            matmul(
                &mut logits,
                Operand::plain(&pooled, b_n, d),
                Operand::transposed(wo, o_n, d),
                false,
            );
            for row in logits.chunks_mut(o_n) {
                row.iter_mut().zip(bo).for_each(|(a, b)| *a += b);
            }
            let labels: Vec<u8> = batch.classes.iter().map(|&c| c as u8).collect();
            let mut dl = vec![0.0; b_n * o_n];
            let (sum, ok) =
                softmax_cross_entropy(&logits, &labels, o_n, &mut dl, 1.0 / b_n as f64, None);
            let mut dpooled = vec![0.0; b_n * d];
            matmul(
                &mut dpooled,
                Operand::plain(&dl, b_n, o_n),
                Operand::plain(wo, o_n, d),
                false,
            );
            for (k, row) in dz.chunks_mut(d).enumerate() {
                let b = k / s;
                for j in 0..d {
                    row[j] = dpooled[b * d + j] / s as f64;
                }
            }
            loss = sum / b_n as f64;
            correct = ok;
            predictions = b_n;
            head_grad = Some((dl, pooled));
        }
        Head::Regression => {
            let mut sum = 0.0;
            let mut dy = vec![0.0; t_n];
            for (k, row) in z.chunks(d).enumerate() {
                let y: f64 = row.iter().zip(wo).map(|(a, b)| a * b).sum::<f64>() + bo[0];
                let r = y - batch.values[k];
                sum += r * r;
                dy[k] = 2.0 * r / t_n as f64;
                for j in 0..d {
                    dz[k * d + j] = dy[k] * wo[j];
                }
            }
            loss = sum / t_n as f64;
            correct = 0;
            predictions = t_n;
            head_grad = Some((dy, z.clone()));
        }
        Head::NextChar { .. } => {
            let mut logits = vec![0.0; t_n * o_n];
            matmul(
                &mut logits,
                Operand::plain(&z, t_n, d),
                Operand::transposed(wo, o_n, d),
                false,
            );
            for row in logits.chunks_mut(o_n) {
                row.iter_mut().zip(bo).for_each(|(a, b)| *a += b);
            }
            let labels: Vec<u8> = batch.classes.iter().map(|&c| c as u8).collect();
            let mut dl = vec![0.0; t_n * o_n];
            let (sum, ok) =
                softmax_cross_entropy(&logits, &labels, o_n, &mut dl, 1.0 / t_n as f64, None);
            matmul(
                &mut dz,
                Operand::plain(&dl, t_n, o_n),
                Operand::plain(wo, o_n, d),
                false,
            );
            loss = sum / t_n as f64;
            correct = ok;
            predictions = t_n;
            head_grad = Some((dl, z.clone()));
        }
    }
    // Routing losses on p: Switch's alpha E sum_i f_i P_i (f from the first choices), and
    // LocMoE's mu mean_v KL(D_c^v || D_l^v) over the virtual nodes v of the tokens.
    let mut dp = vec![0.0; t_n * e_n];
    let mut balance_loss = 0.0;
    if losses.balance > 0.0 {
        let mut f = vec![0.0; e_n];
        for t in 0..t_n {
            if let Some(first) = dispatch.chosen.first(t) {
                f[first] += 1.0 / t_n as f64;
            }
        }
        let mut mean_p = vec![0.0; e_n];
        for row in p.chunks(e_n) {
            row.iter()
                .zip(mean_p.iter_mut())
                .for_each(|(x, m)| *m += x / t_n as f64);
        }
        balance_loss =
            losses.balance * e_n as f64 * f.iter().zip(&mean_p).map(|(a, b)| a * b).sum::<f64>();
        for row in dp.chunks_mut(e_n) {
            for (x, fe) in row.iter_mut().zip(&f) {
                *x += losses.balance * e_n as f64 * fe / t_n as f64;
            }
        }
    }
    let mut locality_loss = 0.0;
    if losses.locality > 0.0 && losses.nodes > 0 {
        let v_n = losses.nodes;
        let local = locality_target(e_n, v_n);
        for v in 0..v_n {
            let members: Vec<usize> = (0..t_n).filter(|&t| batch.origin[t] == v).collect();
            if members.is_empty() {
                continue;
            }
            let m = members.len() as f64;
            let mut dc = vec![0.0; e_n];
            for &t in &members {
                for e in 0..e_n {
                    dc[e] += p[t * e_n + e] / m;
                }
            }
            let target = &local[v * e_n..(v + 1) * e_n];
            let kl: f64 = dc.iter().zip(target).map(|(c, q)| c * (c / q).ln()).sum();
            locality_loss += losses.locality * kl / v_n as f64;
            for &t in &members {
                for e in 0..e_n {
                    dp[t * e_n + e] +=
                        losses.locality / v_n as f64 * ((dc[e] / target[e]).ln() + 1.0) / m;
                }
            }
        }
    }
    // The pass hands over its buffers (after the backward pass has read them).
    let finish = |h: Vec<f64>, affinity: Vec<f64>, a: Vec<f64>, p: Vec<f64>, dispatch| {
        let score = match arch.gate {
            GateKind::Hash => Vec::new(),
            _ if select_by_affinity => affinity.clone(),
            _ if arch.rule == GateRule::Sigmoid => a,
            _ => p,
        };
        Pass {
            loss,
            balance_loss,
            locality_loss,
            correct,
            predictions,
            h,
            affinity,
            score,
            dispatch,
        }
    };
    let Some(g) = grad else {
        return finish(h, affinity, a, p, dispatch);
    };
    // Head gradients.
    match (arch.head, &head_grad) {
        (Head::Regression, Some((dy, zz))) => {
            for (k, row) in zz.chunks(d).enumerate() {
                for j in 0..d {
                    g[l.wo + j] += dy[k] * row[j];
                }
                g[l.bo] += dy[k];
            }
        }
        (Head::Pool { .. } | Head::NextChar { .. }, Some((dl, inputs))) => {
            let rows = dl.len() / o_n;
            matmul(
                &mut g[l.wo..l.bo],
                Operand::transposed(dl, rows, o_n),
                Operand::plain(inputs, rows, d),
                true,
            );
            for row in dl.chunks(o_n) {
                g[l.bo..l.total]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(a, b)| *a += b);
            }
        }
        _ => {}
    }
    // Experts, and the gates' gradients dL/dg = f_e(h) . dz.
    let mut dh = dz.clone(); // the residual path
    let mut dg_slots: Vec<(usize, usize, f64)> = Vec::new();
    for ew in &work {
        let n = ew.tokens.len();
        let (w1, b1, w2, b2) = expert_blocks(l.experts + ew.expert * l.per_expert, d, hd);
        let mut dout = vec![0.0; n * d];
        for (k, &t) in ew.tokens.iter().enumerate() {
            let dzt = &dz[t * d..(t + 1) * d];
            let dg: f64 = ew.out[k * d..(k + 1) * d]
                .iter()
                .zip(dzt)
                .map(|(a, b)| a * b)
                .sum();
            dg_slots.push((t, ew.expert, dg));
            for j in 0..d {
                dout[k * d + j] = ew.gates[k] * dzt[j];
            }
        }
        matmul(
            &mut g[w2..b2],
            Operand::transposed(&dout, n, d),
            Operand::plain(&ew.act, n, hd),
            true,
        );
        for row in dout.chunks(d) {
            g[b2..b2 + d].iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let mut dact = vec![0.0; n * hd];
        matmul(
            &mut dact,
            Operand::plain(&dout, n, d),
            Operand::plain(&w[w2..b2], d, hd),
            false,
        );
        dact.iter_mut().zip(&ew.pre).for_each(|(x, u)| {
            if *u <= 0.0 {
                *x = 0.0;
            }
        });
        matmul(
            &mut g[w1..b1],
            Operand::transposed(&dact, n, hd),
            Operand::plain(&ew.input, n, d),
            true,
        );
        for row in dact.chunks(hd) {
            g[b1..w2].iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let mut dinput = vec![0.0; n * d];
        matmul(
            &mut dinput,
            Operand::plain(&dact, n, hd),
            Operand::plain(&w[w1..b1], hd, d),
            false,
        );
        for (k, &t) in ew.tokens.iter().enumerate() {
            for j in 0..d {
                dh[t * d + j] += dinput[k * d + j];
            }
        }
    }
    // Gates to p (or straight to the logits a for BASE's sigmoid).
    let mut da = vec![0.0; t_n * e_n];
    for &(t, e, dg) in &dg_slots {
        match arch.rule {
            GateRule::Probability => dp[t * e_n + e] += dg,
            GateRule::Renormalized => {
                let chosen = dispatch.chosen.of(t);
                let s: f64 = chosen.iter().map(|&j| p[t * e_n + j]).sum();
                let ge = p[t * e_n + e] / s;
                for &j in chosen {
                    let kron = if j == e { 1.0 } else { 0.0 };
                    dp[t * e_n + j] += dg * (kron - ge) / s;
                }
            }
            GateRule::Sigmoid => {
                let s = 1.0 / (1.0 + (-a[t * e_n + e]).exp());
                da[t * e_n + e] += dg * s * (1.0 - s);
            }
            GateRule::One => {}
        }
    }
    // Softmax backward: da = p (dp - p . dp).
    if arch.gate != GateKind::Hash {
        for t in 0..t_n {
            let (pr, dr) = (&p[t * e_n..(t + 1) * e_n], &dp[t * e_n..(t + 1) * e_n]);
            let dot: f64 = pr.iter().zip(dr).map(|(x, y)| x * y).sum();
            for e in 0..e_n {
                da[t * e_n + e] += pr[e] * (dr[e] - dot);
            }
        }
    }
    // Logits to h.
    match arch.gate {
        GateKind::Learned => {
            matmul(
                &mut dh,
                Operand::plain(&da, t_n, e_n),
                Operand::plain(&w[l.wg..l.experts], e_n, d),
                true,
            );
            matmul(
                &mut g[l.wg..l.experts],
                Operand::transposed(&da, t_n, e_n),
                Operand::plain(&h, t_n, d),
                true,
            );
        }
        GateKind::Grap => {
            // a = ReLU(omega . h): through the ReLU, then omega^T.
            for (k, v) in da.iter_mut().enumerate() {
                if a[k] <= 0.0 {
                    *v = 0.0;
                }
            }
            matmul(
                &mut dh,
                Operand::plain(&da, t_n, e_n),
                Operand::plain(&grap, e_n, d),
                true,
            );
        }
        GateKind::GrapCosine => {
            // a = delta / tau, delta_e = c S_e / r: d delta_e / d h_j = c 1{j in G_e} / r -
            // c S_e h_j / r^3, with c = sqrt(E/d), r = |h|.
            let c = (e_n as f64 / d as f64).sqrt();
            let block = d / e_n;
            for t in 0..t_n {
                let ht = &h[t * d..(t + 1) * d];
                let r2: f64 = ht.iter().map(|v| v * v).sum();
                let r = r2.sqrt().max(f64::MIN_POSITIVE);
                let ddelta: Vec<f64> = da[t * e_n..(t + 1) * e_n]
                    .iter()
                    .map(|v| v / arch.temperature)
                    .collect();
                let mut sum_s = 0.0;
                for e in 0..e_n {
                    let s: f64 = ht[e * block..(e + 1) * block].iter().sum();
                    sum_s += ddelta[e] * s;
                }
                for j in 0..d {
                    dh[t * d + j] += c / r * ddelta[j / block] - c / (r * r2) * ht[j] * sum_s;
                }
            }
        }
        GateKind::Hash => {}
    }
    // Projection.
    matmul(
        &mut g[l.wp..l.bp],
        Operand::transposed(&dh, t_n, d),
        Operand::plain(&x, t_n, d_in),
        true,
    );
    for row in dh.chunks(d) {
        g[l.bp..l.wg].iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
    if let Head::NextChar { embedding, .. } = arch.head {
        let mut dx = vec![0.0; t_n * d_in];
        matmul(
            &mut dx,
            Operand::plain(&dh, t_n, d),
            Operand::plain(&w[l.wp..l.bp], d, d_in),
            false,
        );
        for (k, &c) in batch.chars.iter().enumerate() {
            for j in 0..embedding {
                g[l.embed + c * embedding + j] += dx[k * embedding + j];
            }
        }
    }
    finish(h, affinity, a, p, dispatch)
}

/// LocMoE's "fully localized" distribution per node, smoothed so the KL stays finite (ours):
/// 0.9 spread over the node's experts, 0.1 over all. V x E.
pub fn locality_target(experts: usize, nodes: usize) -> Vec<f64> {
    let mut out = vec![0.1 / experts as f64; nodes * experts];
    for e in 0..experts {
        let v = node_of(e, experts, nodes);
        let on_node = (0..experts)
            .filter(|&j| node_of(j, experts, nodes) == v)
            .count();
        out[v * experts + e] += 0.9 / on_node as f64;
    }
    out
}

/// The virtual node that holds expert e (experts split evenly, in order).
pub fn node_of(expert: usize, experts: usize, nodes: usize) -> usize {
    expert * nodes / experts
}

/// Adam over a flat buffer (betas 0.9, 0.999, eps 1e-8).
pub struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    pub lr: f64,
}

impl Adam {
    pub fn new(n: usize, lr: f64) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
        }
    }

    pub fn step(&mut self, w: &mut [f64], g: &[f64]) {
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        for i in 0..w.len() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g[i] * g[i];
            w[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::routing::{Capacity, RouterName};
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The gradient of every arm and head against central differences, with the dispatch of
    /// the unperturbed weights held fixed (routing is piecewise constant).
    #[test]
    fn gradients_match_finite_differences_for_every_arm_and_head() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (d, e_n, hd) = (8, 4, 5);
        let heads = [
            (Head::Pool { tokens: 4 }, 3, d),
            (Head::Regression, 1, d),
            (
                Head::NextChar {
                    vocab: 6,
                    context: 2,
                    embedding: 3,
                },
                6,
                6,
            ),
        ];
        for (head, outputs, d_in) in heads {
            for router in RouterName::ALL {
                let arch = Arch {
                    d_in,
                    d,
                    experts: e_n,
                    hidden: hd,
                    outputs,
                    head,
                    gate: router.gate_kind(),
                    rule: router.gate_rule(),
                    temperature: 0.5,
                };
                let w = arch.init(&mut rng);
                let t_n = 12;
                let dense: Vec<f64> = (0..t_n * d_in).map(|_| rng.random::<f64>() - 0.5).collect();
                let chars: Vec<usize> = (0..t_n * 2).map(|_| rng.random_range(0..6)).collect();
                let labelled = match head {
                    Head::Pool { tokens } => t_n / tokens,
                    _ => t_n,
                };
                let classes: Vec<usize> = (0..labelled)
                    .map(|_| rng.random_range(0..outputs))
                    .collect();
                let values: Vec<f64> = (0..t_n).map(|_| rng.random::<f64>()).collect();
                let ids: Vec<usize> = (0..t_n).collect();
                let origin: Vec<usize> = (0..t_n).map(|t| t % 2).collect();
                let batch = Batch {
                    tokens: t_n,
                    dense: &dense,
                    chars: &chars,
                    classes: &classes,
                    values: &values,
                    ids: &ids,
                    origin: &origin,
                };
                let losses = Losses {
                    balance: 0.3,
                    locality: 0.2,
                    nodes: 2,
                };
                let r = router.router(2);
                let mut drop_rng = ChaCha8Rng::seed_from_u64(1);
                let fixed = {
                    let mut route = |s: &Scores| r.route(s, Capacity::Slots(4), &mut drop_rng);
                    pass(&arch, &w, &batch, losses, &mut route, None, true).dispatch
                };
                let mut g = vec![0.0; w.len()];
                let mut same = |_: &Scores| fixed.clone();
                pass(&arch, &w, &batch, losses, &mut same, Some(&mut g), true);
                let total = |w: &[f64]| {
                    let mut same = |_: &Scores| fixed.clone();
                    let p = pass(&arch, w, &batch, losses, &mut same, None, true);
                    p.loss + p.balance_loss + p.locality_loss
                };
                let mut worst: f64 = 0.0;
                for i in 0..w.len() {
                    let mut wp = w.clone();
                    wp[i] += 1e-6;
                    let mut wm = w.clone();
                    wm[i] -= 1e-6;
                    let fd = (total(&wp) - total(&wm)) / 2e-6;
                    worst = worst.max((fd - g[i]).abs() / (1e-4 + fd.abs().max(g[i].abs())));
                }
                assert!(
                    worst < 1e-4,
                    "{head:?} {}: relative error {worst:e}",
                    router.name()
                );
            }
        }
    }
}
