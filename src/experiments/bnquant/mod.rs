//! Exact fixed-point batch normalization: for each channel the integers (M, C, n) with
//! clamp((M x + C) >> n) == clamp(round(A x + B)) for every input code and n minimal,
//! certified, against the baselines a deployment would use, on random channels, a CSV of
//! channels, or every batch-norm channel of a CNN trained here, run end to end on integers.
//!
//! Paper: D. Lin, P. Sun, G. Xie, S. Zhou, Z. Zhang, "Optimal Quantization for Batch
//! Normalization in Neural Network Deployments and Beyond", arXiv:2008.13128. Notes:
//! `../shared/papers/bnq_bpsvrg.md` section 1. Only the abstract could be read: the problem
//! statement, the search, the baselines and the thresholds here are reconstructions.

pub mod analysis;
pub mod baselines;
pub mod channels;
pub mod claims;
pub mod exact;
mod figures;
pub mod network;
pub mod search;
pub mod spec;
pub mod verify;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use self::analysis::{ChannelResult, Setting, analyze};
use self::channels::Channel;
use self::exact::{Codes, Folded};
use self::spec::{BnquantSpec, Output, Source};
use crate::contract::{Attachment, ColumnKind, ColumnSpec, Ctx, Experiment, Report, Valid};
use crate::data::images::Split;
use crate::table::Cell;

pub struct BnquantExperiment;

/// The baselines, in column and legend order.
pub const BASELINES: [&str; 5] = ["naive", "tflite", "tflite_pre", "f32", "f64"];

/// Per baseline: mismatching codes and the largest error in output steps.
const BASELINE_COLUMNS: [&str; 10] = [
    "naive_mismatches",
    "naive_max_err",
    "tflite_mismatches",
    "tflite_max_err",
    "tflite_pre_mismatches",
    "tflite_pre_max_err",
    "f32_mismatches",
    "f32_max_err",
    "f64_mismatches",
    "f64_max_err",
];

fn columns() -> Vec<ColumnSpec> {
    use ColumnKind::*;
    let mut c = vec![
        ColumnSpec::new("bits", Key),
        ColumnSpec::new("layer", Key),
        ColumnSpec::new("channel", Axis),
    ];
    for (name, headline) in [
        ("a", false),
        ("b", false),
        ("lo", false),
        ("hi", false),
        ("runs", false),
        ("n", false),
        ("m", false),
        ("c", false),
        ("m_bits", false),
        ("acc_bits", false),
        ("minimal", false),
        ("runs_certified", false),
        ("exact_mismatches", false),
    ] {
        let spec = ColumnSpec::new(name, Metric);
        c.push(if headline { spec.headline() } else { spec });
    }
    for name in BASELINE_COLUMNS {
        c.push(ColumnSpec::new(name, Metric));
    }
    c.push(ColumnSpec::new("n_int32", Metric));
    c
}

/// Per output width: how the channels came out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BitsSummary {
    pub bits: u32,
    pub channels: usize,
    /// Channels with an exact (M, C, n) certified over every code.
    pub exact: usize,
    pub minimal: usize,
    /// (n, channels with that minimal n).
    pub n_histogram: Vec<(u32, usize)>,
    pub median_n: Option<u32>,
    pub max_n: Option<u32>,
    /// log2 of the widest code range's size.
    pub log2_codes: f64,
    /// Mean fraction of mismatching codes of each baseline (in [`BASELINES`] order), and the
    /// share of channels with at least one.
    pub mismatch_rate: Vec<Option<f64>>,
    pub channels_mismatching: Vec<Option<f64>>,
}

/// A point of the mismatch-rate curves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub bits: u32,
    pub n: u32,
    /// Mean fraction of mismatching codes: naive at n, pre-shifted TFLite at p = n.
    pub naive: f64,
    pub tflite_pre: Option<f64>,
    /// Share of channels whose minimal n is at most this n.
    pub exact_share: f64,
}

/// One channel's staircase around a code where a baseline goes wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaircaseExample {
    pub bits: u32,
    pub layer: String,
    pub channel: usize,
    pub a: f64,
    pub b: f64,
    pub n: u32,
    /// (x, A x + B, exact, naive at n, TFLite).
    pub points: Vec<(i64, f64, i64, i64, Option<i64>)>,
}

/// The whole network on integers, one output width.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkResult {
    pub bits: u32,
    /// Images compared logit by logit, and where they come from.
    pub images: usize,
    pub images_note: String,
    /// Test images of the accuracies.
    pub test_images: usize,
    /// Accuracy of the f32 network before quantization.
    pub float_accuracy: f64,
    pub methods: Vec<MethodResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: String,
    pub accuracy: f64,
    /// Images whose integer logits equal the reference network's, all of them.
    pub identical_logits: usize,
    /// Images whose predicted class differs from the reference network's.
    pub changed_predictions: usize,
    /// Requantized values that differ from the reference's, over all images and layers.
    pub changed_activations: u64,
}

/// What a bnquant run reports besides its rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BnquantSummary {
    pub rounding: Option<String>,
    pub source: Option<String>,
    pub reconstructed: Option<String>,
    pub per_bits: Option<Vec<BitsSummary>>,
    pub curves: Option<Vec<CurvePoint>>,
    pub staircase: Option<StaircaseExample>,
    /// Mean seconds per channel of the exact staircase, the minimal-shift search and the
    /// code-by-code certification, over the channels checked code by code (timings vary with
    /// the machine: never in the rows).
    pub seconds_per_channel: Option<f64>,
    pub training: Option<String>,
    pub network: Option<Vec<NetworkResult>>,
}

impl Report for BnquantSummary {
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(r) = &self.rounding {
            lines.push(format!("rounding: {r}"));
        }
        if let Some(s) = &self.source {
            lines.push(format!("channels: {s}"));
        }
        for b in self.per_bits.iter().flatten() {
            let rates: Vec<String> = BASELINES
                .iter()
                .zip(&b.mismatch_rate)
                .map(|(name, r)| match r {
                    Some(r) => format!("{name} {:.4}%", 100.0 * r),
                    None => format!("{name} -"),
                })
                .collect();
            lines.push(format!(
                "{} bits: {}/{} channels exact, {} certified minimal; n median {} max {}; \
                 baselines' mismatching codes: {}",
                b.bits,
                b.exact,
                b.channels,
                b.minimal,
                b.median_n.map_or("-".into(), |n| n.to_string()),
                b.max_n.map_or("-".into(), |n| n.to_string()),
                rates.join(", ")
            ));
        }
        if let Some(s) = self.seconds_per_channel {
            lines.push(format!(
                "search + code-by-code certification: {:.1} us per channel",
                s * 1e6
            ));
        }
        for net in self.network.iter().flatten() {
            let parts: Vec<String> = net
                .methods
                .iter()
                .map(|m| {
                    format!(
                        "{} acc {:.4}, {}/{} identical, {} changed",
                        m.method, m.accuracy, m.identical_logits, net.images, m.changed_predictions
                    )
                })
                .collect();
            lines.push(format!(
                "network {} bits (float acc {:.4}): {}",
                net.bits,
                net.float_accuracy,
                parts.join("; ")
            ));
        }
        lines
    }
}

/// What `prepare` loads.
pub enum Inputs {
    Channels(Vec<Channel>),
    Network(Split),
}

impl Experiment for BnquantExperiment {
    type Spec = BnquantSpec;
    type Summary = BnquantSummary;
    type Inputs = Inputs;

    const NAME: &'static str = "bnquant";
    const TITLE: &'static str =
        "Exact fixed-point batch norm: minimal-shift integer BN, certified on every code";
    const PAPER: &'static str = "D. Lin, P. Sun, G. Xie, S. Zhou, Z. Zhang, Optimal Quantization \
                                 for Batch Normalization in Neural Network Deployments and \
                                 Beyond, arXiv:2008.13128";

    fn prepare(spec: &Valid<Self>) -> Result<Inputs> {
        Ok(match spec.source {
            Source::Random => Inputs::Channels(channels::random(
                spec.channels,
                (spec.a_min, spec.a_max),
                (spec.b_min, spec.b_max),
                spec.negative,
                &mut spec.streams().rng("channels"),
            )),
            Source::File => Inputs::Channels(channels::read(&spec.file)?),
            Source::Blobs | Source::Mnist | Source::Fashion => {
                Inputs::Network(network::load(spec)?)
            }
        })
    }

    fn run(spec: &Valid<Self>, inputs: Inputs, ctx: &mut Ctx<Self>) -> Result<()> {
        ctx.summary.rounding = Some(format!(
            "{} (the float reference round(A x + B) is exact rational rounding with this rule)",
            spec.rounding.name()
        ));
        ctx.summary.reconstructed = Some(
            "the problem statement, the minimal-shift search and the baselines are our \
             reconstruction from the abstract (notes 1.3-1.5)"
                .into(),
        );
        ctx.begin(&columns())?;
        match inputs {
            Inputs::Channels(list) => {
                ctx.summary.source = Some(match spec.source {
                    Source::File => format!("{} channels of {}", list.len(), spec.file.display()),
                    _ => format!(
                        "{} random: |A| log-uniform in [{}, {}] ({}% negative), B uniform in \
                         [{}, {}] (8-bit output; k bits scale both by 2^(k-8)); codes {}..{}",
                        list.len(),
                        spec.a_min,
                        spec.a_max,
                        100.0 * spec.negative,
                        spec.b_min,
                        spec.b_max,
                        spec.codes().lo,
                        spec.codes().hi
                    ),
                });
                layer_level(spec, &list, ctx)
            }
            Inputs::Network(split) => network::run(spec, split, ctx),
        }
    }
}

/// The folded channel of an 8-bit channel at k output bits, and its output zero point.
pub fn at_bits(spec: &BnquantSpec, ch: &Channel, bits: u32) -> (Folded, i64) {
    let signed = spec.output == Output::Signed;
    let zero = if signed { 0 } else { 1i64 << (bits - 1) };
    let scale = 2f64.powi(bits as i32 - 8);
    (
        Folded {
            a: ch.a * scale,
            b: ch.b * scale + zero as f64,
            out: Codes::output(bits, signed),
            rounding: spec.rounding,
        },
        zero,
    )
}

/// Channels per job.
const CHUNK: usize = 64;

fn layer_level(
    spec: &BnquantSpec,
    list: &[Channel],
    ctx: &mut Ctx<BnquantExperiment>,
) -> Result<()> {
    let codes = spec.codes();
    let jobs: Vec<(u32, usize)> = spec
        .bits
        .iter()
        .flat_map(|&k| (0..list.len()).step_by(CHUNK).map(move |s| (k, s)))
        .collect();
    ctx.progress().set_total(jobs.len() as u64);
    let results = ctx.jobs(&jobs, |&(bits, start), job| {
        let mut out = Vec::new();
        for ch in &list[start..(start + CHUNK).min(list.len())] {
            job.check_cancel()?;
            let (folded, zero) = at_bits(spec, ch, bits);
            let setting = Setting {
                zero,
                preshift: spec.preshift,
                curve_max_n: spec.curve_max_n,
            };
            let r = analyze(folded, codes, setting);
            job.emit(row(bits, ch, &r, None))?;
            out.push((bits, ch.clone(), r));
        }
        Ok(out)
    })?;
    let all: Vec<(u32, Channel, ChannelResult)> = results.into_iter().flatten().collect();
    summarize(spec, &all, ctx);
    Ok(())
}

/// n, M, C and the bits of M and of the accumulator (empty without an exact form).
fn exact_cells(r: &ChannelResult) -> [Cell; 5] {
    let int = |v: Option<i64>| v.map_or(Cell::Missing, Cell::Int);
    let e = r.exact;
    [
        int(e.map(|e| e.n as i64)),
        int(e.map(|e| e.m)),
        int(e.map(|e| e.c)),
        int(e.map(|e| e.m_bits() as i64)),
        int(e.map(|e| e.accumulator_bits(r.codes) as i64)),
    ]
}

/// The output widths of the rows (`bits` is a key column, read back as text).
pub fn bits_of(rows: &crate::table::Table) -> Vec<f64> {
    match (rows.text("bits"), rows.num("bits")) {
        (Some(t), _) => t.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect(),
        (None, Some(v)) => v.to_vec(),
        (None, None) => Vec::new(),
    }
}

/// The row of one channel.
pub fn row(bits: u32, ch: &Channel, r: &ChannelResult, n_int32: Option<u32>) -> Vec<Cell> {
    let int = |v: Option<i64>| v.map_or(Cell::Missing, Cell::Int);
    let mut cells = vec![
        Cell::Int(bits as i64),
        Cell::Text(ch.layer.clone()),
        Cell::Int(ch.index as i64),
        Cell::Real(r.folded.a),
        Cell::Real(r.folded.b),
        Cell::Int(r.codes.lo),
        Cell::Int(r.codes.hi),
        Cell::Int(r.runs as i64),
    ];
    cells.extend(exact_cells(r));
    cells.extend([
        int(r.minimal.map(i64::from)),
        Cell::Int(r.by_runs as i64),
        int(r.mismatches.map(|m| m as i64)),
    ]);
    for m in r.baselines() {
        cells.push(int(m.map(|m| m.count as i64)));
        cells.push(int(m.map(|m| m.max_error as i64)));
    }
    cells.push(int(n_int32.map(i64::from)));
    cells
}

/// The summary, curves, staircase example and the channels export of finished channels.
pub fn summarize(
    spec: &BnquantSpec,
    all: &[(u32, Channel, ChannelResult)],
    ctx: &mut Ctx<BnquantExperiment>,
) {
    let mut per_bits = Vec::new();
    let mut curves = Vec::new();
    for &bits in &spec.bits {
        let rs: Vec<&ChannelResult> = all
            .iter()
            .filter(|(b, _, _)| *b == bits)
            .map(|(_, _, r)| r)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let mut ns: Vec<u32> = rs.iter().filter_map(|r| r.exact.map(|e| e.n)).collect();
        ns.sort_unstable();
        let mut histogram: Vec<(u32, usize)> = Vec::new();
        for &n in &ns {
            match histogram.last_mut() {
                Some((m, count)) if *m == n => *count += 1,
                _ => histogram.push((n, 1)),
            }
        }
        let (rates, shares): (Vec<_>, Vec<_>) = (0..BASELINES.len())
            .map(|j| {
                let ms: Vec<baselines::Mismatch> =
                    rs.iter().filter_map(|r| r.baselines()[j]).collect();
                if ms.len() < rs.len() || ms.is_empty() {
                    return (None, None);
                }
                let k = ms.len() as f64;
                (
                    Some(
                        ms.iter()
                            .map(|m| m.count as f64 / m.codes as f64)
                            .sum::<f64>()
                            / k,
                    ),
                    Some(ms.iter().filter(|m| m.count > 0).count() as f64 / k),
                )
            })
            .unzip();
        per_bits.push(BitsSummary {
            bits,
            channels: rs.len(),
            exact: rs
                .iter()
                .filter(|r| r.by_runs && r.mismatches.is_none_or(|m| m == 0))
                .count(),
            minimal: rs.iter().filter(|r| r.minimal == Some(true)).count(),
            median_n: ns.get(ns.len() / 2).copied(),
            max_n: ns.last().copied(),
            n_histogram: histogram,
            log2_codes: rs
                .iter()
                .map(|r| (r.codes.count() as f64).log2())
                .fold(0.0, f64::max),
            mismatch_rate: rates,
            channels_mismatching: shares,
        });
        let points = rs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
        for n in 0..points {
            let k = rs.len() as f64;
            let rate = |v: u64, r: &ChannelResult| v as f64 / r.codes.count() as f64;
            let pre: Option<Vec<f64>> = rs
                .iter()
                .map(|r| r.curve[n].1.map(|v| rate(v, r)))
                .collect();
            curves.push(CurvePoint {
                bits,
                n: n as u32,
                naive: rs.iter().map(|r| rate(r.curve[n].0, r)).sum::<f64>() / k,
                tflite_pre: pre.map(|p| p.iter().sum::<f64>() / k),
                exact_share: ns.iter().filter(|&&m| m as usize <= n).count() as f64 / k,
            });
        }
    }
    ctx.summary.per_bits = Some(per_bits);
    if !curves.is_empty() {
        ctx.summary.curves = Some(curves);
    }
    let timed: Vec<f64> = all
        .iter()
        .filter(|(_, _, r)| r.mismatches.is_some())
        .map(|(_, _, r)| r.seconds)
        .collect();
    if !timed.is_empty() {
        ctx.summary.seconds_per_channel = Some(timed.iter().sum::<f64>() / timed.len() as f64);
    }
    ctx.summary.staircase = all
        .iter()
        .find_map(|(bits, ch, r)| staircase_example(*bits, ch, r));
    ctx.attach(export(spec, all));
}

/// Around the first code where naive rounding at the exact n goes wrong.
fn staircase_example(bits: u32, ch: &Channel, r: &ChannelResult) -> Option<StaircaseExample> {
    use self::baselines::{Baseline, Naive, Tflite};
    let e = r.exact?;
    if r.naive?.count == 0 || r.codes.count() > analysis::EXHAUSTIVE_MAX {
        return None;
    }
    let truth = exact::Truth::new(r.folded);
    let naive = Naive::new(&r.folded, e.n);
    let tflite = Tflite::new(&r.folded, r.zero, 0);
    let x0 = (r.codes.lo..=r.codes.hi).find(|&x| naive.q(x) != Some(truth.q(x)))?;
    let points = (x0 - 6).max(r.codes.lo)..=(x0 + 6).min(r.codes.hi);
    Some(StaircaseExample {
        bits,
        layer: ch.layer.clone(),
        channel: ch.index,
        a: r.folded.a,
        b: r.folded.b,
        n: e.n,
        points: points
            .map(|x| {
                (
                    x,
                    r.folded.a * x as f64 + r.folded.b,
                    truth.q(x),
                    naive.q(x).unwrap_or(0),
                    tflite.q(x),
                )
            })
            .collect(),
    })
}

/// `NAME.channels.csv`: one row per channel and output width, the integers a deployment
/// needs and how each baseline fares.
fn export(spec: &BnquantSpec, all: &[(u32, Channel, ChannelResult)]) -> Attachment {
    let mut header: Vec<String> = [
        "bits", "layer", "channel", "A", "B", "lo", "hi", "out_lo", "out_hi", "rounding", "n", "m",
        "c", "m_bits", "acc_bits",
    ]
    .map(String::from)
    .to_vec();
    header.extend(BASELINES.iter().map(|b| format!("{b}_mismatches")));
    let int = |v: Option<i64>| v.map_or(Cell::Missing, Cell::Int);
    let rows = all
        .iter()
        .map(|(bits, ch, r)| {
            let mut row = vec![
                Cell::Int(*bits as i64),
                Cell::Text(ch.layer.clone()),
                Cell::Int(ch.index as i64),
                Cell::Real(r.folded.a),
                Cell::Real(r.folded.b),
                Cell::Int(r.codes.lo),
                Cell::Int(r.codes.hi),
                Cell::Int(r.folded.out.lo),
                Cell::Int(r.folded.out.hi),
                Cell::Text(spec.rounding.name().into()),
            ];
            row.extend(exact_cells(r));
            for m in r.baselines() {
                row.push(int(m.map(|m| m.count as i64)));
            }
            row
        })
        .collect();
    Attachment {
        suffix: ".channels".into(),
        header,
        rows,
    }
}
