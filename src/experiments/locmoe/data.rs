//! The data of the three trained parts: pmoe's samples (one class pattern among noise
//! tokens, the papers' Assumption 1), zipf's clustered tokens with per-cluster teachers, and
//! charlm's corpus of topic Markov chains (or a text file).

use std::path::Path;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::input_error;
use crate::random::fill_standard_normal;

/// One routing group of tokens with what the model and the metrics need.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub tokens: usize,
    pub dense: Vec<f64>,
    pub chars: Vec<usize>,
    /// Class per sample (pmoe) or next character per token (charlm).
    pub classes: Vec<usize>,
    pub values: Vec<f64>,
    pub ids: Vec<usize>,
    pub origin: Vec<usize>,
    /// The ground-truth cluster of each token: the class of the sample (pmoe), the cluster
    /// (zipf), the topic (charlm).
    pub truth: Vec<usize>,
    /// pmoe: whether the token carries its sample's class pattern.
    pub discriminative: Vec<bool>,
}

/// Orthonormal directions (Gram-Schmidt of Gaussian vectors), k x d, k <= d.
fn orthonormal(k: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = vec![0.0; k * d];
    let mut v = vec![0.0; d];
    for i in 0..k {
        loop {
            fill_standard_normal(rng, &mut v);
            for j in 0..i {
                let u = &out[j * d..(j + 1) * d];
                let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= dot * y);
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 1e-6 {
                out[i * d..(i + 1) * d]
                    .iter_mut()
                    .zip(&v)
                    .for_each(|(o, x)| *o = x / norm);
                break;
            }
        }
    }
    out
}

/// pmoe: classes = experts; each sample has one token signal o_y + noise and s - 1
/// class-irrelevant tokens distractor o_c + noise with c uniform over the classes (ours: so
/// the mean over a sample does not give its class away linearly, and a noise token can
/// outrank the discriminative one, Theorem 5's q), noise N(0, noise^2 / d) per coordinate. The patterns o_y are orthonormal (d >=
/// classes) or, for d < classes, unit Gaussian directions.
pub struct Pmoe {
    pub d: usize,
    pub classes: usize,
    pub sample_tokens: usize,
    pub signal: f64,
    pub distractor: f64,
    pub noise: f64,
    pub nodes: usize,
    patterns: Vec<f64>,
}

impl Pmoe {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d: usize,
        classes: usize,
        sample_tokens: usize,
        signal: f64,
        distractor: f64,
        noise: f64,
        nodes: usize,
        rng: &mut ChaCha8Rng,
    ) -> Pmoe {
        let patterns = if classes <= d {
            orthonormal(classes, d, rng)
        } else {
            let mut p = vec![0.0; classes * d];
            for row in p.chunks_mut(d) {
                fill_standard_normal(rng, row);
                let n = row.iter().map(|x| x * x).sum::<f64>().sqrt();
                row.iter_mut().for_each(|x| *x /= n);
            }
            p
        };
        Pmoe {
            d,
            classes,
            sample_tokens,
            signal,
            distractor,
            noise,
            nodes,
            patterns,
        }
    }

    pub fn group(&self, tokens: usize, rng: &mut ChaCha8Rng) -> Group {
        let (d, s) = (self.d, self.sample_tokens);
        let samples = tokens / s;
        let mut g = Group {
            tokens,
            ..Default::default()
        };
        g.dense = vec![0.0; tokens * d];
        fill_standard_normal(rng, &mut g.dense);
        let sd = self.noise / (d as f64).sqrt();
        g.dense.iter_mut().for_each(|x| *x *= sd);
        for b in 0..samples {
            let y = rng.random_range(0..self.classes);
            let at = rng.random_range(0..s);
            g.classes.push(y);
            for k in 0..s {
                let t = b * s + k;
                g.ids.push(k);
                g.origin.push(b % self.nodes);
                g.truth.push(y);
                g.discriminative.push(k == at);
                let (c, strength) = if k == at {
                    (y, self.signal)
                } else {
                    (rng.random_range(0..self.classes), self.distractor)
                };
                let o = &self.patterns[c * d..(c + 1) * d];
                g.dense[t * d..(t + 1) * d]
                    .iter_mut()
                    .zip(o)
                    .for_each(|(x, p)| *x += strength * p);
            }
        }
        g
    }
}

/// zipf: as many clusters as experts, cluster k drawn with probability proportional to
/// 1 / (k + 1)^exponent; a token is its cluster's center (norm spread x noise) plus noise; its
/// target is its cluster's teacher, v_k . tanh(U_k x) with 8 hidden units.
pub struct Zipf {
    pub d: usize,
    pub clusters: usize,
    pub noise: f64,
    pub nodes: usize,
    cumulative: Vec<f64>,
    centers: Vec<f64>,
    teachers: Vec<(Vec<f64>, Vec<f64>)>,
}

const TEACHER_HIDDEN: usize = 8;

impl Zipf {
    pub fn new(
        d: usize,
        clusters: usize,
        exponent: f64,
        spread: f64,
        noise: f64,
        nodes: usize,
        rng: &mut ChaCha8Rng,
    ) -> Zipf {
        let weights: Vec<f64> = (0..clusters)
            .map(|k| 1.0 / ((k + 1) as f64).powf(exponent))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        let mut centers = vec![0.0; clusters * d];
        for row in centers.chunks_mut(d) {
            fill_standard_normal(rng, row);
            let n = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            row.iter_mut()
                .for_each(|x| *x *= spread * noise.max(1e-12) / n);
        }
        let teachers = (0..clusters)
            .map(|_| {
                let mut u = vec![0.0; TEACHER_HIDDEN * d];
                fill_standard_normal(rng, &mut u);
                // Scaled so U x has unit variance at a center of norm `spread noise`.
                let scale = 1.0 / (spread * noise).max(1.0);
                u.iter_mut().for_each(|x| *x *= scale);
                let mut v = vec![0.0; TEACHER_HIDDEN];
                fill_standard_normal(rng, &mut v);
                (u, v)
            })
            .collect();
        Zipf {
            d,
            clusters,
            noise,
            nodes,
            cumulative,
            centers,
            teachers,
        }
    }

    /// The probability of each cluster.
    pub fn frequencies(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.cumulative
            .iter()
            .map(|c| {
                let f = c - prev;
                prev = *c;
                f
            })
            .collect()
    }

    pub fn group(&self, tokens: usize, rng: &mut ChaCha8Rng) -> Group {
        let d = self.d;
        let mut g = Group {
            tokens,
            ..Default::default()
        };
        g.dense = vec![0.0; tokens * d];
        fill_standard_normal(rng, &mut g.dense);
        let sd = self.noise / (d as f64).sqrt();
        for t in 0..tokens {
            let u: f64 = rng.random();
            let k = self
                .cumulative
                .iter()
                .position(|&c| u < c)
                .unwrap_or(self.clusters - 1);
            let x = &mut g.dense[t * d..(t + 1) * d];
            x.iter_mut()
                .zip(&self.centers[k * d..(k + 1) * d])
                .for_each(|(v, c)| *v = *v * sd + c);
            let (uk, vk) = &self.teachers[k];
            let y: f64 = (0..TEACHER_HIDDEN)
                .map(|j| {
                    vk[j]
                        * uk[j * d..(j + 1) * d]
                            .iter()
                            .zip(x.iter())
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            .tanh()
                })
                .sum();
            g.values.push(y);
            g.ids.push(t);
            g.origin.push(k % self.nodes);
            g.truth.push(k);
        }
        g
    }
}

/// charlm's text: characters as ids into an alphabet, with each character's topic.
#[derive(Debug)]
pub struct Corpus {
    pub alphabet: Vec<char>,
    pub train: Vec<usize>,
    pub held_out: Vec<usize>,
    pub train_topics: Vec<usize>,
    pub held_out_topics: Vec<usize>,
    pub description: String,
    /// Generated text: the bits per character of the true chain with the topic known,
    /// averaged over the held-out text (the floor a model that knew the topic would reach).
    pub oracle_bits: Option<f64>,
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyz .";

/// Generates `chars` characters: documents of 200 to 1000 characters, each from a topic drawn
/// uniformly; a topic is an order-2 Markov chain in which every pair of previous characters
/// has 4 possible successors with exponential weights.
pub fn generated_corpus(chars: usize, topics: usize, rng: &mut ChaCha8Rng) -> Corpus {
    let alphabet: Vec<char> = LETTERS.chars().collect();
    let a = alphabet.len();
    // successors[topic][(c1 a + c2)] = 4 (next, cumulative probability) pairs.
    let chains: Vec<Vec<[(usize, f64); 4]>> = (0..topics)
        .map(|_| {
            (0..a * a)
                .map(|_| {
                    let mut pick = [(0usize, 0.0f64); 4];
                    let mut total = 0.0;
                    for p in pick.iter_mut() {
                        let w = -(1.0 - rng.random::<f64>()).ln();
                        *p = (rng.random_range(0..a), w);
                        total += w;
                    }
                    let mut acc = 0.0;
                    for p in pick.iter_mut() {
                        acc += p.1 / total;
                        p.1 = acc;
                    }
                    pick
                })
                .collect()
        })
        .collect();
    let mut text = Vec::with_capacity(chars);
    let mut topic_of = Vec::with_capacity(chars);
    while text.len() < chars {
        let topic = rng.random_range(0..topics);
        let len = rng.random_range(200..=1000).min(chars - text.len());
        let (mut c1, mut c2) = (rng.random_range(0..a), rng.random_range(0..a));
        for _ in 0..len {
            let u: f64 = rng.random();
            let next = chains[topic][c1 * a + c2]
                .iter()
                .find(|p| u < p.1)
                .map_or(chains[topic][c1 * a + c2][3].0, |p| p.0);
            text.push(next);
            topic_of.push(topic);
            (c1, c2) = (c2, next);
        }
    }
    let mut corpus = split(
        alphabet,
        text,
        topic_of,
        format!(
            "generated: {chars} characters, {topics} topics (order-2 Markov chains over {a} symbols)"
        ),
    );
    // -log2 P(next | previous two, topic) over the held-out text (its first two characters
    // have no full history and are skipped; a document boundary inside it costs a few wrong
    // histories, counted as they come).
    let (text, topic_of) = (&corpus.held_out, &corpus.held_out_topics);
    let mut bits = 0.0;
    let mut n = 0usize;
    for i in 2..text.len() {
        let row = &chains[topic_of[i]][text[i - 2] * a + text[i - 1]];
        let mut prev = 0.0;
        let mut p = 0.0;
        for &(next, cum) in row {
            if next == text[i] {
                p += cum - prev;
            }
            prev = cum;
        }
        if p > 0.0 {
            bits -= p.log2();
            n += 1;
        }
    }
    corpus.oracle_bits = Some(bits / n.max(1) as f64);
    corpus
}

fn split(alphabet: Vec<char>, text: Vec<usize>, topics: Vec<usize>, description: String) -> Corpus {
    let cut = text.len() - text.len() / 10;
    Corpus {
        alphabet,
        held_out: text[cut..].to_vec(),
        train: text[..cut].to_vec(),
        held_out_topics: topics[cut..].to_vec(),
        train_topics: topics[..cut].to_vec(),
        description,
        oracle_bits: None,
    }
}

/// A UTF-8 text file as the corpus (every character its own symbol, one topic).
pub fn file_corpus(path: &Path, context: usize) -> Result<Corpus> {
    let bytes = std::fs::read(path).map_err(|e| {
        input_error!(
            "corpus {}: {e}; expected a readable UTF-8 text file",
            path.display()
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        input_error!(
            "corpus {}: not UTF-8 (invalid byte at offset {}); expected a UTF-8 text file",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let chars: Vec<char> = text.chars().collect();
    let need = 20 * (context + 1);
    if chars.len() < need {
        return Err(input_error!(
            "corpus {}: {} characters; expected at least {need} (20 x (context + 1), a tenth held out)",
            path.display(),
            chars.len()
        ));
    }
    let mut alphabet: Vec<char> = chars.clone();
    alphabet.sort_unstable();
    alphabet.dedup();
    if alphabet.len() > 255 {
        return Err(input_error!(
            "corpus {}: {} distinct characters; expected at most 255",
            path.display(),
            alphabet.len()
        ));
    }
    let ids: Vec<usize> = chars
        .iter()
        .map(|c| alphabet.binary_search(c).expect("in the alphabet"))
        .collect();
    let n = ids.len();
    let description = format!(
        "{}: {n} characters, {} distinct",
        path.display(),
        alphabet.len()
    );
    Ok(split(alphabet, ids, vec![0; n], description))
}

impl Corpus {
    /// A group of T positions: random ones of the training text, or `positions` given.
    pub fn group(
        &self,
        held_out: bool,
        positions: &[usize],
        context: usize,
        nodes: usize,
    ) -> Group {
        let (text, topics) = if held_out {
            (&self.held_out, &self.held_out_topics)
        } else {
            (&self.train, &self.train_topics)
        };
        let mut g = Group {
            tokens: positions.len(),
            ..Default::default()
        };
        for &p in positions {
            g.chars.extend_from_slice(&text[p - context..p]);
            g.classes.push(text[p]);
            // Hash layers hash the current token: the last character of the context.
            g.ids.push(text[p - 1]);
            g.origin.push(topics[p] % nodes);
            g.truth.push(topics[p]);
        }
        g
    }

    pub fn random_positions(
        &self,
        tokens: usize,
        context: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<usize> {
        (0..tokens)
            .map(|_| rng.random_range(context..self.train.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pmoe_samples_hold_one_scaled_pattern_each() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let data = Pmoe::new(16, 4, 8, 3.0, 0.0, 0.0, 2, &mut rng);
        let g = data.group(32, &mut rng);
        assert_eq!(g.classes.len(), 4);
        for b in 0..4 {
            let marked: Vec<usize> = (0..8).filter(|&k| g.discriminative[b * 8 + k]).collect();
            assert_eq!(marked.len(), 1);
            let t = b * 8 + marked[0];
            let norm = g.dense[t * 16..(t + 1) * 16]
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt();
            assert!((norm - 3.0).abs() < 1e-12);
        }
    }

    #[test]
    fn zipf_cluster_frequencies_follow_the_power_law() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let data = Zipf::new(8, 4, 1.0, 2.0, 1.0, 2, &mut rng);
        let f = data.frequencies();
        let h = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        for (k, fk) in f.iter().enumerate() {
            assert!((fk - 1.0 / ((k + 1) as f64 * h)).abs() < 1e-12);
        }
        let g = data.group(20_000, &mut rng);
        let share0 = g.truth.iter().filter(|&&k| k == 0).count() as f64 / 20_000.0;
        assert!((share0 - f[0]).abs() < 0.015, "{share0}");
    }

    #[test]
    fn generated_text_follows_its_chains_and_a_bad_file_is_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let c = generated_corpus(5000, 2, &mut rng);
        assert_eq!(c.train.len() + c.held_out.len(), 5000);
        // Order 2 with 4 successors: no (c1, c2) pair of one topic has more than 4 successors.
        let a = c.alphabet.len();
        let mut seen = vec![std::collections::BTreeSet::new(); 2 * a * a];
        for i in 2..c.train.len() {
            if c.train_topics[i] == c.train_topics[i - 2] {
                seen[c.train_topics[i] * a * a + c.train[i - 2] * a + c.train[i - 1]]
                    .insert(c.train[i]);
            }
        }
        assert!(seen.iter().all(|s| s.len() <= 4));
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, [0x66, 0x6f, 0xff, 0x6f]).unwrap();
        let e = file_corpus(&bad, 4).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("offset 2"), "{e}");
        std::fs::write(&bad, "").unwrap();
        assert!(
            file_corpus(&bad, 4)
                .unwrap_err()
                .to_string()
                .contains("0 characters")
        );
    }
}
