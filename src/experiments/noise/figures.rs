//! Figures of noise runs: phi and the loss against iteration (median and interquartile band
//! over the starts, per method and the well each start ends in), the success rates with their 95% intervals, the final (phi,
//! a^T a*) of every start; and `.profile`: the profile loss min_a L(phi, a) over phi with its
//! two wells, and its average over Gaussian perturbations of the direction for growing noise
//! levels (the smoothing that the perturbed point reading of the noise performs).

use anyhow::Result;

use super::spec::NoiseSpec;
use super::{NoiseExperiment, teacher};
use crate::contract::{Figures, RunData};
use crate::plot::{
    Colour, Figure, Marker, Panel, Pattern, Points, Series, Style, median_quantile_band,
};
use crate::random::{Streams, standard_normal};
use crate::table::Table;

fn paths(rows: &Table, method: &str, y: &str) -> Vec<Points> {
    let (Some(m), Some(start), Some(it), Some(v)) = (
        rows.text("method"),
        rows.num("start"),
        rows.num("iteration"),
        rows.num(y),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<Points> = Vec::new();
    let mut current = f64::NAN;
    for i in 0..m.len() {
        if m[i] != method {
            continue;
        }
        if start[i] != current {
            out.push(Vec::new());
            current = start[i];
        }
        out.last_mut().expect("a path").push((it[i], v[i]));
    }
    out
}

fn methods(rows: &Table) -> Vec<String> {
    let mut names: Vec<String> = rows.text("method").map(|m| m.to_vec()).unwrap_or_default();
    names.dedup();
    names
}

impl Figures for NoiseExperiment {
    /// The first run's paths, success rates and end points; the profile of its teacher.
    fn figures(runs: &[RunData<NoiseExperiment>]) -> Result<Vec<(String, Figure)>> {
        let Some(run) = runs.first() else {
            return Ok(Vec::new());
        };
        Ok(vec![
            (String::new(), paths_and_outcomes(run)),
            (".profile".into(), profile(&run.spec, run.spec.streams())),
        ])
    }
}

/// Losses below this are round-off of a population loss of order one (values of -2.8e-16
/// occur): drawn at it, and the axis says so.
const LOSS_FLOOR: f64 = 1e-16;

/// Marker shapes in method order, largest first, so a later method's markers sit on an
/// earlier one's and both show.
const MARKERS: [(Marker, i32); 4] = [
    (Marker::Circle, 8),
    (Marker::Triangle, 5),
    (Marker::Square, 4),
    (Marker::Cross, 3),
];

fn paths_and_outcomes(run: &RunData<NoiseExperiment>) -> Figure {
    let band_panel = |y: &str, title: &str, logy: bool| {
        let floored = y == "loss";
        let mut panel = Panel {
            title: format!("{title} (median, interquartile band)"),
            x_label: "iteration".into(),
            y_label: if floored {
                format!("loss (below {LOSS_FLOOR:e}, round-off: drawn at it)")
            } else {
                y.into()
            },
            logy,
            ..Default::default()
        };
        for (c, method) in methods(&run.rows).iter().enumerate() {
            let mut starts = paths(&run.rows, method, y);
            if floored {
                for p in starts.iter_mut().flatten() {
                    p.1 = p.1.max(LOSS_FLOOR);
                }
            }
            // A method that ends in both wells has a median and quartiles between them that
            // no start follows: split the starts by the well they end in (final phi below or
            // above pi/2), each group with its median and interquartile band.
            let ends_near_w: Vec<bool> = paths(&run.rows, method, "phi")
                .iter()
                .map(|p| p.last().is_some_and(|e| e.1 < std::f64::consts::FRAC_PI_2))
                .collect();
            for (near, pattern, side) in
                [(true, Pattern::Solid, "<"), (false, Pattern::Dashed, ">")]
            {
                let group: Vec<Points> = starts
                    .iter()
                    .zip(&ends_near_w)
                    .filter(|(_, e)| **e == near)
                    .map(|(p, _)| p.clone())
                    .collect();
                if group.is_empty() {
                    continue;
                }
                let (median, band) = median_quantile_band(&group, 0.25);
                panel.series.push(Series {
                    points: band,
                    style: Style::Band,
                    color: Colour::Palette(c),
                    ..Default::default()
                });
                panel.series.push(Series {
                    label: format!("{method}: {} starts ending at phi {side} pi/2", group.len()),
                    points: median,
                    style: Style::Line,
                    color: Colour::Palette(c),
                    pattern,
                    ..Default::default()
                });
            }
        }
        panel
    };
    let mut rates = Panel {
        title: "starts that reach the global minimum, with 95% Wilson intervals".into(),
        x_label: String::new(),
        y_label: "fraction of starts".into(),
        ..Default::default()
    };
    let mut scatter = Panel {
        title: "where each start ends".into(),
        x_label: "phi".into(),
        y_label: "a^T a*".into(),
        ..Default::default()
    };
    if let Some(outcomes) = &run.summary.outcomes {
        let order = methods(&run.rows);
        for (c, method) in order.iter().enumerate() {
            let Some(entry) = outcomes.get(method) else {
                continue;
            };
            let (n, count) = (entry.starts, entry.global.count);
            let x = c as f64 + 1.0;
            let [lo, hi] = entry.global.ci95;
            rates.x_names.push((x, format!("{method}\n{count}/{n}")));
            rates.series.push(Series {
                points: vec![(x, count as f64 / n.max(1) as f64)],
                style: Style::Bars,
                color: Colour::Palette(c),
                ..Default::default()
            });
            rates.series.push(Series {
                label: if c == 0 {
                    "95% Wilson interval".into()
                } else {
                    String::new()
                },
                points: vec![(x, lo), (x, hi)],
                style: Style::Line,
                color: Colour::Grey,
                ..Default::default()
            });
        }
        // The 95% the claim asks of the perturbed methods.
        let right = order.len() as f64 + 0.5;
        rates.series.push(Series {
            label: "95%: the claim for perturbed methods".into(),
            points: vec![(0.5, 0.95), (right, 0.95)],
            style: Style::Dashed,
            color: Colour::Grey,
            ..Default::default()
        });
    }
    for (c, method) in methods(&run.rows).iter().enumerate() {
        let ends: Points = paths(&run.rows, method, "phi")
            .iter()
            .zip(paths(&run.rows, method, "a_dot"))
            .filter_map(|(p, a)| Some((p.last()?.1, a.last()?.1)))
            .collect();
        let (marker, size) = MARKERS[c % MARKERS.len()];
        scatter.series.push(Series {
            label: format!("{method} ({} starts)", ends.len()),
            points: ends,
            style: Style::Markers,
            color: Colour::Palette(c),
            marker,
            marker_size: size,
            ..Default::default()
        });
    }
    Figure {
        title: "two-layer CNN: gradient descent against perturbed GD".into(),
        panels: vec![
            band_panel("phi", "angle phi to w*", false),
            band_panel("loss", "population loss", true),
            rates,
            scatter,
        ],
        columns: 2,
        panel_size: (760, 520),
    }
}

/// The profile min_a L(phi, a) over phi, and its average over directions perturbed by
/// Gaussian noise of norm ~rho (the first direction orthogonal to w* fixes the plane).
fn profile(spec: &NoiseSpec, streams: Streams) -> Figure {
    let t = teacher(spec, streams);
    let pi = std::f64::consts::PI;
    let grid: Vec<f64> = (0..=180).map(|i| pi * i as f64 / 180.0).collect();
    let mut panel = Panel {
        title: format!(
            "profile loss min_a L(phi, a), k = {}, p = {}: the minimum at 0, {} at pi",
            spec.k,
            spec.p,
            if t.spurious_is_minimum() {
                "a spurious well"
            } else {
                "a saddle (a_sp^T a* > 0)"
            }
        ),
        x_label: "phi".into(),
        y_label: "min over a of L".into(),
        ..Default::default()
    };
    panel.series.push(Series {
        label: "profile (reconstructed closed form)".into(),
        points: grid.iter().map(|&phi| (phi, t.profile(phi))).collect(),
        style: Style::Dashed,
        color: Colour::Palette(3),
        ..Default::default()
    });
    // A unit direction at angle phi in a fixed plane through w*, perturbed by noise of norm
    // ~rho; the smoothed profile is the mean profile at the perturbed directions' angles.
    let p = spec.p;
    for rho in [0.3, 0.6, 1.0, 2.0] {
        let mut rng = streams.rng("smoothing");
        let noise: Vec<Vec<f64>> = (0..400)
            .map(|_| {
                (0..p)
                    .map(|_| rho / (p as f64).sqrt() * standard_normal(&mut rng))
                    .collect()
            })
            .collect();
        let mut e = vec![0.0; p];
        e[(t.w
            .iter()
            .map(|x| x.abs())
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |b, (i, x)| {
                    if x < b.1 { (i, x) } else { b }
                },
            ))
        .0] = 1.0;
        let along: f64 = e.iter().zip(&t.w).map(|(a, b)| a * b).sum();
        let mut u: Vec<f64> = e.iter().zip(&t.w).map(|(a, b)| a - along * b).collect();
        let nu = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        u.iter_mut().for_each(|x| *x /= nu);
        let points = grid
            .iter()
            .map(|&phi| {
                let mean = noise
                    .iter()
                    .map(|xi| {
                        let w: Vec<f64> = (0..p)
                            .map(|i| phi.cos() * t.w[i] + phi.sin() * u[i] + xi[i])
                            .collect();
                        t.profile(t.angle(&w))
                    })
                    .sum::<f64>()
                    / noise.len() as f64;
                (phi, mean)
            })
            .collect();
        panel.series.push(Series {
            points,
            // Ordered noise levels: a sequential colour map with its colour bar.
            key: vec![(
                "profile averaged over direction noise of norm".into(),
                rho.to_string(),
            )],
            ..Default::default()
        });
    }
    Figure::single(panel)
}
