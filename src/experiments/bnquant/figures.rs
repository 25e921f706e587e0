//! Figures of a bnquant run: the histogram of the minimal shift n, the baselines' mismatch
//! rates against n, |A| against n per channel, and one channel's staircase around a code
//! where naive rounding goes wrong.

use anyhow::Result;

use super::{BASELINES, BnquantExperiment};
use crate::contract::{Figures, RunData};
use crate::plot::{Colour, Figure, Marker, Panel, Pattern, Series, Style};

/// Rates of zero drawn here on the log axis.
const RATE_FLOOR: f64 = 1e-7;

/// A fixed colour per method, whatever the run shows.
fn colour(method: &str) -> Colour {
    let i = ["exact", "naive", "tflite", "tflite_pre", "f32", "f64"]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(0);
    Colour::Palette(i)
}

/// A pattern per output width, in the order of the run's `bits`.
const PATTERNS: [Pattern; 4] = [
    Pattern::Solid,
    Pattern::Dashed,
    Pattern::Dotted,
    Pattern::DashDot,
];

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

impl Figures for BnquantExperiment {
    /// One figure per run: its panels are per-channel histograms and scatters that do not
    /// overlay; several runs give one file each, named by the settings that tell them apart.
    fn figures(runs: &[RunData<BnquantExperiment>]) -> Result<Vec<(String, Figure)>> {
        Ok(runs
            .iter()
            .map(|run| (run.file_tag(runs.len() == 1), figure(run)))
            .collect())
    }
}

fn figure(run: &RunData<BnquantExperiment>) -> Figure {
    // The curves need two shifts at least (curve_max_n > 0); a network run shows its
    // images instead.
    let mut panels = vec![histogram(run)];
    let curved = run
        .summary
        .curves
        .as_ref()
        .is_some_and(|c| c.iter().any(|p| p.n > 0));
    if curved {
        panels.push(curves(run));
    }
    if run.summary.network.is_some() {
        panels.push(network(run));
    }
    panels.push(scatter(run));
    if let Some(p) = staircase(run) {
        panels.push(p);
    }
    Figure {
        title: format!(
            "Exact integer batch norm: minimal shift and baselines (rounding {})",
            run.spec.rounding.name()
        ),
        panels,
        columns: 2,
        panel_size: (760, 520),
    }
}

fn histogram(run: &RunData<BnquantExperiment>) -> Panel {
    let mut panel = Panel {
        title: "Minimal shift n per channel".into(),
        x_label: "n (fractional bits of M, C)".into(),
        y_label: "channels".into(),
        ..Default::default()
    };
    // From the rows, so an interrupted run draws what it has; every n from the smallest to
    // the largest, empty ones at 0.
    let (bits, n) = (super::bits_of(&run.rows), run.rows.num("n").unwrap_or(&[]));
    for (i, &b) in widths(&bits).iter().enumerate() {
        let mut ns: Vec<u32> = (0..n.len())
            .filter(|&j| bits[j] == b && !n[j].is_nan())
            .map(|j| n[j] as u32)
            .collect();
        ns.sort_unstable();
        let (Some(&lo), Some(&hi)) = (ns.first(), ns.last()) else {
            continue;
        };
        panel.series.push(Series {
            label: format!("{b} bits (median {})", ns[ns.len() / 2]),
            points: (lo..=hi)
                .map(|k| (k as f64, ns.iter().filter(|&&m| m == k).count() as f64))
                .collect(),
            style: Style::LineWithMarkers,
            color: Colour::Palette(i),
            pattern: PATTERNS[i % 4],
            marker: MARKERS[i % 4],
            ..Default::default()
        });
    }
    panel
}

fn curves(run: &RunData<BnquantExperiment>) -> Panel {
    let mut panel = Panel {
        title: "Mean share of mismatching codes at n fractional bits".into(),
        x_label: "n (naive: bits of A and B; tflite_pre: pre-shift p = n)".into(),
        y_label: format!("mismatch rate (0 drawn at {RATE_FLOOR:e})"),
        logy: true,
        ..Default::default()
    };
    let curves = run.summary.curves.clone().unwrap_or_default();
    for (i, b) in run.summary.per_bits.iter().flatten().enumerate() {
        let points: Vec<_> = curves.iter().filter(|c| c.bits == b.bits).collect();
        let floor = |v: f64| v.max(RATE_FLOOR);
        let n_max = points.last().map_or(0.0, |c| c.n as f64);
        panel.series.push(Series {
            label: format!("naive, {} bits", b.bits),
            points: points
                .iter()
                .map(|c| (c.n as f64, floor(c.naive)))
                .collect(),
            color: colour("naive"),
            pattern: PATTERNS[i % 4],
            ..Default::default()
        });
        panel.series.push(Series {
            label: format!("tflite_pre, {} bits", b.bits),
            points: points
                .iter()
                .filter_map(|c| c.tflite_pre.map(|v| (c.n as f64, floor(v))))
                .collect(),
            color: colour("tflite_pre"),
            pattern: PATTERNS[i % 4],
            ..Default::default()
        });
        // Baselines without a bit budget: flat lines at their rates.
        for (name, rate) in BASELINES.iter().zip(&b.mismatch_rate) {
            if !matches!(*name, "tflite" | "f32" | "f64") || points.is_empty() {
                continue;
            }
            if let Some(r) = rate {
                panel.series.push(Series {
                    label: format!("{name}, {} bits (no n)", b.bits),
                    points: vec![(0.0, floor(*r)), (n_max, floor(*r))],
                    color: colour(name),
                    pattern: PATTERNS[i % 4],
                    ..Default::default()
                });
            }
        }
        // Where the exact method needs no more bits: the median minimal n.
        if let (Some(m), false) = (b.median_n, points.is_empty()) {
            panel.series.push(Series {
                label: format!("exact: median minimal n, {} bits", b.bits),
                points: vec![(m as f64, RATE_FLOOR), (m as f64, 1.0)],
                color: colour("exact"),
                pattern: PATTERNS[i % 4],
                ..Default::default()
            });
        }
    }
    panel
}

/// Per method: the share of images whose integer logits differ from the reference network's,
/// and of those whose predicted class does.
fn network(run: &RunData<BnquantExperiment>) -> Panel {
    let nets = run.summary.network.clone().unwrap_or_default();
    let methods: Vec<String> = nets
        .first()
        .map(|n| n.methods.iter().map(|m| m.method.clone()).collect())
        .unwrap_or_default();
    let images = nets.first().map_or(1, |n| n.images);
    // Below one image: a share of 0, which the log axis cannot show.
    let floor = 0.5 / images as f64;
    let mut panel = Panel {
        title: format!("Integer network against the reference, {images} images"),
        x_label: "requantization of every batch-norm channel".into(),
        y_label: format!("share of images (0 drawn at {floor:e})"),
        logy: true,
        x_names: methods
            .iter()
            .enumerate()
            .map(|(i, m)| (i as f64, m.clone()))
            .collect(),
        ..Default::default()
    };
    for (i, net) in nets.iter().enumerate() {
        let share = |v: usize| (v as f64 / net.images as f64).max(floor);
        // Side by side per width, so equal shares do not hide each other.
        let at = |k: usize| k as f64 + 0.15 * (i as f64 - 0.5 * (nets.len() - 1) as f64);
        panel.series.push(Series {
            label: format!("{} bits: logits differ", net.bits),
            points: net
                .methods
                .iter()
                .enumerate()
                .map(|(k, m)| (at(k), share(net.images - m.identical_logits)))
                .collect(),
            style: Style::Markers,
            color: Colour::Palette(i),
            marker: Marker::Circle,
            marker_size: 7,
            ..Default::default()
        });
        panel.series.push(Series {
            label: format!("{} bits: predicted class differs", net.bits),
            points: net
                .methods
                .iter()
                .enumerate()
                .map(|(k, m)| (at(k), share(m.changed_predictions)))
                .collect(),
            style: Style::Markers,
            color: Colour::Palette(i),
            marker: Marker::Cross,
            marker_size: 6,
            ..Default::default()
        });
    }
    panel
}

fn scatter(run: &RunData<BnquantExperiment>) -> Panel {
    let mut panel = Panel {
        title: "Minimal shift n against |A| per channel".into(),
        x_label: "|A| (output steps per input code)".into(),
        y_label: "minimal n".into(),
        logx: true,
        ..Default::default()
    };
    let rows = &run.rows;
    let (Some(a), Some(n)) = (rows.num("a"), rows.num("n")) else {
        return panel;
    };
    let bits = super::bits_of(&run.rows);
    for (i, &b) in widths(&bits).iter().enumerate() {
        panel.series.push(Series {
            label: format!("{b} bits"),
            points: (0..bits.len())
                .filter(|&j| bits[j] == b && !n[j].is_nan())
                .map(|j| (a[j].abs(), n[j]))
                .collect(),
            style: Style::Markers,
            color: Colour::Palette(i),
            marker: MARKERS[i % 4],
            ..Default::default()
        });
    }
    panel
}

/// The distinct widths in row order.
fn widths(bits: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for &b in bits {
        if !b.is_nan() && !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

fn staircase(run: &RunData<BnquantExperiment>) -> Option<Panel> {
    let s = run.summary.staircase.as_ref()?;
    let mut panel = Panel {
        title: format!(
            "{} channel {}, {} bits: A = {:.6}, B = {:.4}, n = {}",
            s.layer, s.channel, s.bits, s.a, s.b, s.n
        ),
        x_label: "input code x".into(),
        y_label: "output code".into(),
        ..Default::default()
    };
    let pts = &s.points;
    panel.series.push(Series {
        label: "A x + B (real)".into(),
        points: pts.iter().map(|p| (p.0 as f64, p.1)).collect(),
        style: Style::Dashed,
        color: Colour::Grey,
        ..Default::default()
    });
    // A staircase: each code's output held over [x - 1/2, x + 1/2], joined by risers.
    panel.series.push(Series {
        label: "exact = round(A x + B)".into(),
        points: pts
            .iter()
            .flat_map(|p| {
                [
                    (p.0 as f64 - 0.5, p.2 as f64),
                    (p.0 as f64 + 0.5, p.2 as f64),
                ]
            })
            .collect(),
        color: colour("exact"),
        ..Default::default()
    });
    panel.series.push(Series {
        label: format!("naive at n = {}", s.n),
        points: pts.iter().map(|p| (p.0 as f64, p.3 as f64)).collect(),
        style: Style::Markers,
        color: colour("naive"),
        marker: Marker::Triangle,
        marker_size: 5,
        ..Default::default()
    });
    panel.series.push(Series {
        label: "tflite".into(),
        points: pts
            .iter()
            .filter_map(|p| p.4.map(|t| (p.0 as f64, t as f64)))
            .collect(),
        style: Style::Markers,
        color: colour("tflite"),
        marker: Marker::Cross,
        marker_size: 4,
        ..Default::default()
    });
    Some(panel)
}
