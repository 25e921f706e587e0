//! Histograms of the final losses over the random starts, as gaps to the optimum (or the
//! best loss found), sparse and dense, with the optimum marked at 0. Diverged starts are left
//! out of the bars.

use anyhow::Result;

use super::{SparseLinearExperiment, first_mask, network};
use crate::contract::{Figures, RunData, Valid};
use crate::flow::Objective;
use crate::plot::landscape::{contours, histogram, log_levels, sample};
use crate::plot::{Colour, Figure, Marker, Panel, Series, Style};
use crate::random::standard_normal as normal;

impl Figures for SparseLinearExperiment {
    /// The histograms of every run; the slice through the first confirmed spurious minimum.
    fn figures(runs: &[RunData<SparseLinearExperiment>]) -> Result<Vec<(String, Figure)>> {
        let mut figures = vec![(String::new(), histograms(runs))];
        // The slice through the first run's confirmed spurious minimum, if it has one.
        for run in runs {
            let Some(set) = run.summary.landscape.as_ref().and_then(|l| l.get("sparse")) else {
                continue;
            };
            let spurious = set
                .spurious_candidates
                .iter()
                .find(|c| c.confirmed_minimum)
                .and_then(|c| c.point.as_ref());
            if let (Some(spurious), Some(global)) = (spurious, &set.global_point) {
                figures.push((".slice".into(), slice(&run.spec, spurious, global)?));
                break;
            }
        }
        Ok(figures)
    }
}

/// The final losses of each mask set as gaps to its optimum (or the best loss found, from the
/// summary), diverged starts left out; a set stopped before its optimum was known (Ctrl-C)
/// shows its final losses themselves.
fn histograms(runs: &[RunData<SparseLinearExperiment>]) -> Figure {
    let mut panels = Vec::new();
    for run in runs {
        let (Some(masks), Some(losses)) = (run.rows.text("mask"), run.rows.num("final_loss"))
        else {
            continue;
        };
        for name in ["sparse", "dense"] {
            let sets = run.summary.landscape.as_ref();
            let reference = sets.and_then(|l| l.get(name)?.reference());
            let values: Vec<f64> = (0..losses.len())
                .filter(|&i| masks[i] == name && losses[i].is_finite())
                .map(|i| losses[i] - reference.unwrap_or(0.0))
                .collect();
            if values.is_empty() {
                continue;
            }
            let marker = reference.map(|_| (0.0, "optimum (or best found)"));
            let mut panel = histogram(&values, 40, marker);
            panel.title = format!(
                "{}{name} mask: final losses of {} starts{}",
                if run.key.is_empty() {
                    String::new()
                } else {
                    format!("{}, ", run.label())
                },
                values.len(),
                if reference.is_none() {
                    " (stopped before the optimum was known)"
                } else {
                    ""
                }
            );
            panel.x_label = if reference.is_some() {
                "final loss - optimum".into()
            } else {
                "final loss".into()
            };
            panel.y_label = "starts".into();
            panels.push(panel);
        }
    }
    let columns = panels.len().clamp(1, 2);
    Figure {
        title: "sparse linear network: where gradient descent ends".into(),
        panels,
        columns,
        panel_size: (700, 520),
    }
}

/// The loss through a confirmed spurious minimum and a start at the optimum: along the
/// segment between them, and on the plane of the segment and a random direction orthogonal
/// to it (over the unmasked weights, of the segment's length).
pub fn slice(
    spec: &Valid<SparseLinearExperiment>,
    spurious: &[f64],
    global: &[f64],
) -> Result<Figure> {
    let streams = spec.streams();
    let net = network(spec, streams, first_mask(spec, streams));
    let free: Vec<f64> = net.masks.iter().flat_map(|m| m.iter().copied()).collect();
    let d1: Vec<f64> = global.iter().zip(spurious).map(|(g, s)| g - s).collect();
    let length = d1.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut rng = streams.rng("slice");
    let mut d2: Vec<f64> = free.iter().map(|m| m * normal(&mut rng)).collect();
    let along = d2.iter().zip(&d1).map(|(a, b)| a * b).sum::<f64>() / (length * length);
    for (x, y) in d2.iter_mut().zip(&d1) {
        *x -= along * y;
    }
    let norm = d2.iter().map(|x| x * x).sum::<f64>().sqrt();
    d2.iter_mut().for_each(|x| *x *= length / norm);
    let point = |a: f64, b: f64| -> Vec<f64> {
        (0..spurious.len())
            .map(|i| spurious[i] + a * d1[i] + b * d2[i])
            .collect()
    };
    let loss = |a: f64, b: f64| net.loss(&point(a, b));
    let segment: Vec<(f64, f64)> = (0..=280)
        .map(|k| -0.2 + 1.4 * k as f64 / 280.0)
        .map(|s| (s, loss(s, 0.0)))
        .collect();
    let marks = || {
        vec![
            Series {
                label: format!("spurious minimum, L = {:.6}", loss(0.0, 0.0)),
                points: vec![(0.0, loss(0.0, 0.0))],
                style: Style::Markers,
                color: Colour::Palette(3),
                marker: Marker::Square,
                marker_size: 5,
                ..Default::default()
            },
            Series {
                label: format!("optimum, L = {:.6}", loss(1.0, 0.0)),
                points: vec![(1.0, loss(1.0, 0.0))],
                style: Style::Markers,
                color: Colour::Palette(2),
                marker: Marker::Circle,
                marker_size: 6,
                ..Default::default()
            },
        ]
    };
    let mut line = Panel {
        title: "loss along the segment from the spurious minimum (0) to the optimum (1)".into(),
        x_label: "s".into(),
        y_label: "loss".into(),
        series: vec![Series {
            label: "L((1 - s) spurious + s optimum)".into(),
            points: segment,
            style: Style::Line,
            color: Colour::Palette(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    line.series.extend(marks());
    let mut map = sample(
        (-0.3, 1.3),
        (-0.8, 0.8),
        (97, 81),
        "population loss L (log scale)",
        loss,
    );
    map.log = true;
    let mut series = vec![contours(&map, &log_levels(&map, 14))?];
    series.extend(marks().into_iter().map(|mut s| {
        s.points = vec![(s.points[0].0, 0.0)];
        s
    }));
    let plane = Panel {
        title: "loss on the plane of the segment and a random orthogonal direction".into(),
        x_label: "along the segment".into(),
        y_label: "random orthogonal direction (same length)".into(),
        series,
        heatmap: Some(map),
        ..Default::default()
    };
    Ok(Figure {
        title: "a spurious local minimum of the sparse network and the optimum".into(),
        panels: vec![line, plane],
        columns: 2,
        panel_size: (700, 560),
    })
}
