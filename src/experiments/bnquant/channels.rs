//! Where the channels come from: random draws, or a CSV of batch-norm parameters (or of
//! folded A and B), each checked with a message naming the file, line and channel.

use std::path::Path;

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::exact::MAX_MAGNITUDE;
use crate::input_error;

/// One batch-norm channel, folded for 8-bit outputs (a k-bit output scales A and B by
/// 2^(k-8): its step is 2^(8-k) times coarser).
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub layer: String,
    pub index: usize,
    /// A and B of the 8-bit output, without the output zero point.
    pub a: f64,
    pub b: f64,
}

/// The folding of notes 1.3: A = gamma s_x / (sigma s_y), and B without z_y,
/// (beta - gamma mu / sigma - gamma s_x z_x / sigma) / s_y, with sigma = sqrt(var + eps).
pub struct BatchNorm {
    pub gamma: f64,
    pub beta: f64,
    pub mean: f64,
    pub var: f64,
    pub eps: f64,
    pub scale_in: f64,
    pub zero_in: f64,
    pub scale_out: f64,
}

impl BatchNorm {
    pub fn fold(&self) -> (f64, f64) {
        let sigma = (self.var + self.eps).sqrt();
        let a = self.gamma * self.scale_in / (sigma * self.scale_out);
        let b = (self.beta
            - self.gamma * self.mean / sigma
            - self.gamma * self.scale_in * self.zero_in / sigma)
            / self.scale_out;
        (a, b)
    }
}

/// Random channels: |A| log-uniform in [a_min, a_max] (negative with probability
/// `negative`), B uniform in [b_min, b_max].
pub fn random(
    count: usize,
    a_range: (f64, f64),
    b_range: (f64, f64),
    negative: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<Channel> {
    let (la, lb) = (a_range.0.ln(), a_range.1.ln());
    (0..count)
        .map(|index| {
            let magnitude = (la + (lb - la) * rng.random::<f64>()).exp();
            let sign = if rng.random::<f64>() < negative {
                -1.0
            } else {
                1.0
            };
            Channel {
                layer: "random".into(),
                index,
                a: sign * magnitude,
                b: b_range.0 + (b_range.1 - b_range.0) * rng.random::<f64>(),
            }
        })
        .collect()
}

/// The columns of a channels file: `layer, channel` and either the batch-norm parameters or
/// the folded `a, b` (other columns are ignored).
pub const BN_COLUMNS: [&str; 8] = [
    "gamma",
    "beta",
    "mean",
    "var",
    "eps",
    "scale_in",
    "zero_in",
    "scale_out",
];

/// Reads a channels CSV. Every bad row is an input error naming the line and the channel.
pub fn read(path: &Path) -> Result<Vec<Channel>> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| input_error!("cannot open {shown}: {e}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| input_error!("{shown}: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(input_error!(
            "{shown} is empty: expected a CSV with a header row (layer, channel, ...) and one \
             row per channel"
        ));
    }
    let find = |name: &str| header.iter().position(|h| h == name);
    let (Some(layer), Some(channel)) = (find("layer"), find("channel")) else {
        return Err(input_error!(
            "{shown}: the header has no `layer` and `channel` columns: expected layer, \
             channel, and either a, b (folded) or {}",
            BN_COLUMNS.join(", ")
        ));
    };
    let folded = find("a").zip(find("b"));
    let bn: Option<Vec<usize>> = BN_COLUMNS.iter().map(|c| find(c)).collect();
    if folded.is_none() && bn.is_none() {
        let missing: Vec<&str> = BN_COLUMNS
            .iter()
            .filter(|c| find(c).is_none())
            .copied()
            .collect();
        return Err(input_error!(
            "{shown}: the header has neither `a, b` nor the batch-norm columns (missing: {})",
            missing.join(", ")
        ));
    }
    let mut channels: Vec<Channel> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => input_error!(
                    "{shown} line {line}: {len} fields where the header has {expected_len}"
                ),
                _ => input_error!("{shown} line {line}: {e}"),
            }
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let name = record.get(layer).unwrap_or("").to_string();
        let where_ = |rest: String| input_error!("{shown} line {line} (channel {name}): {rest}");
        let index: usize = record
            .get(channel)
            .unwrap_or("")
            .parse()
            .map_err(|_| where_("`channel` is not a non-negative integer".into()))?;
        let where_ =
            |rest: String| input_error!("{shown} line {line} (channel {name}/{index}): {rest}");
        let number = |column: usize, key: &str| -> Result<f64> {
            let text = record.get(column).unwrap_or("");
            let v: f64 = text
                .parse()
                .map_err(|_| where_(format!("{key} = '{text}' is not a number")))?;
            if !v.is_finite() {
                return Err(where_(format!("{key} = {text} is not finite")));
            }
            Ok(v)
        };
        let (a, b) = match (&folded, &bn) {
            (Some((ca, cb)), _) => (number(*ca, "a")?, number(*cb, "b")?),
            (None, Some(cols)) => {
                let v: Vec<f64> = cols
                    .iter()
                    .zip(BN_COLUMNS)
                    .map(|(&c, key)| number(c, key))
                    .collect::<Result<_>>()?;
                let bn = BatchNorm {
                    gamma: v[0],
                    beta: v[1],
                    mean: v[2],
                    var: v[3],
                    eps: v[4],
                    scale_in: v[5],
                    zero_in: v[6],
                    scale_out: v[7],
                };
                if bn.zero_in.fract() != 0.0 {
                    return Err(where_(format!(
                        "zero_in = {}: expected an integer (a zero point is a code)",
                        bn.zero_in
                    )));
                }
                if bn.var + bn.eps <= 0.0 {
                    return Err(where_(format!(
                        "var + eps = {} <= 0: expected a positive variance",
                        bn.var + bn.eps
                    )));
                }
                for (key, s) in [("scale_in", bn.scale_in), ("scale_out", bn.scale_out)] {
                    if s <= 0.0 {
                        return Err(where_(format!("{key} = {s}: expected a positive scale")));
                    }
                }
                bn.fold()
            }
            (None, None) => unreachable!("checked with the header"),
        };
        for (key, v) in [("A", a), ("B", b)] {
            if !v.is_finite() || v.abs() >= MAX_MAGNITUDE {
                return Err(where_(format!(
                    "the folded {key} = {v:e}: expected a finite value below 2^40 in magnitude"
                )));
            }
        }
        if !seen.insert((name.clone(), index)) {
            return Err(where_(
                "this layer and channel came before: expected each channel once".into(),
            ));
        }
        channels.push(Channel {
            layer: name,
            index,
            a,
            b,
        });
    }
    if channels.is_empty() {
        return Err(input_error!(
            "{shown} has a header but no channels: expected one row per channel"
        ));
    }
    Ok(channels)
}
