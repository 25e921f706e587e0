//! The figures of SVRS runs: the error against communications, rounds and local gradient
//! calls (median over seeds with a min-max band), and, over several runs of a sweep, the
//! cost to tol against delta/mu on log-log axes with the theory slopes.

use anyhow::Result;

use super::Svrs;
use super::claims::fitted_slope;
use crate::contract::{Figures, RunData};
use crate::plot::{Colour, Figure, Panel, Series, Style, median_band};
use crate::table::Table;

/// The methods of a run's rows, in the order they first appear.
fn methods(rows: &Table) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in rows.text("method").unwrap_or(&[]) {
        if !seen.contains(m) {
            seen.push(m.clone());
        }
    }
    seen
}

/// (x, rel_error) of each seed of a method.
fn seed_paths(rows: &Table, method: &str, x: &str) -> Vec<Vec<(f64, f64)>> {
    let (Some(names), Some(seeds), Some(xs), Some(ys)) = (
        rows.text("method"),
        rows.num("seed"),
        rows.num(x),
        rows.num("rel_error"),
    ) else {
        return Vec::new();
    };
    let mut paths: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
    for i in 0..names.len() {
        if names[i] != method {
            continue;
        }
        match paths.iter_mut().find(|(s, _)| *s == seeds[i]) {
            Some((_, p)) => p.push((xs[i], ys[i])),
            None => paths.push((seeds[i], vec![(xs[i], ys[i])])),
        }
    }
    paths.into_iter().map(|(_, p)| p).collect()
}

fn error_panel(runs: &[RunData<Svrs>], x: &str, title: &str) -> Panel {
    let mut panel = Panel {
        title: title.into(),
        x_label: x.into(),
        y_label: "||x - x*||^2 / ||x0 - x*||^2".into(),
        logx: false,
        logy: true,
        series: Vec::new(),
        ..Default::default()
    };
    for run in runs {
        for method in methods(&run.rows) {
            let paths = seed_paths(&run.rows, &method, x);
            if paths.is_empty() {
                continue;
            }
            let mut key = run.key.clone();
            key.push(("method".to_string(), method.clone()));
            let (median, band) = median_band(&paths);
            if paths.len() > 1 {
                panel.series.push(Series {
                    points: band,
                    style: Style::Band,
                    key: key.clone(),
                    ..Default::default()
                });
            }
            panel.series.push(Series {
                points: median,
                style: Style::Line,
                key,
                ..Default::default()
            });
        }
    }
    panel
}

/// Theory exponent of the communication cost in delta/mu, where the notes give one.
fn theory_slope(method: &str) -> Option<f64> {
    match method {
        "svrs" => Some(1.0),
        "accsvrs" | "acceg" => Some(0.5),
        "svrp" => Some(2.0),
        _ => None,
    }
}

/// Cost to tol against delta/mu over runs that differ in delta/mu, or `None` when the runs
/// are not a sweep (runs that differ only in their seed differ in delta/mu by sampling alone:
/// no scaling to fit there).
fn scaling_panel(runs: &[RunData<Svrs>]) -> Option<Panel> {
    let first = runs.first()?.spec.table();
    let swept = runs.iter().any(|r| {
        r.spec
            .table()
            .iter()
            .any(|(k, v)| k != "seed" && first.get(k) != Some(v))
    });
    if !swept {
        return None;
    }
    let ratio = |run: &RunData<Svrs>| run.summary.delta_over_mu;
    let mut ratios: Vec<f64> = runs.iter().filter_map(ratio).collect();
    ratios.sort_by(f64::total_cmp);
    ratios.dedup();
    if ratios.len() < 2 {
        return None;
    }
    let mut panel = Panel {
        title: "communications to tol against delta/mu".into(),
        x_label: "delta_avg / mu".into(),
        y_label: "communications to tol (median over seeds)".into(),
        logx: true,
        logy: true,
        series: Vec::new(),
        ..Default::default()
    };
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for m in methods(&run.rows) {
            if !names.contains(&m) {
                names.push(m);
            }
        }
    }
    for (color, method) in names.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|run| {
                let comms = run
                    .summary
                    .cost_to_tol
                    .as_ref()?
                    .get(method)?
                    .as_ref()?
                    .comms;
                Some((ratio(run)?, comms))
            })
            .collect();
        if points.len() < 2 {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let fit = fitted_slope(&points).map_or(String::new(), |s| format!(", fit slope {s:.2}"));
        if let Some(s) = theory_slope(method) {
            let (x0, y0) = points[0];
            let x1 = points[points.len() - 1].0;
            panel.series.push(Series {
                label: format!("theory slope {s} ({method})"),
                points: vec![(x0, y0), (x1, y0 * (x1 / x0).powf(s))],
                style: Style::Dashed,
                color: Colour::Palette(color),
                ..Default::default()
            });
        }
        panel.series.push(Series {
            label: format!("{method}{fit}"),
            points,
            style: Style::LineWithMarkers,
            color: Colour::Palette(color),
            ..Default::default()
        });
    }
    (!panel.series.is_empty()).then_some(panel)
}

impl Figures for Svrs {
    /// The error against each cost; over a sweep of delta/mu, the cost to tol against it.
    fn figures(runs: &[RunData<Svrs>]) -> Result<Vec<(String, Figure)>> {
        let main = Figure {
            title: "relative error ||x - x*||^2 / ||x0 - x*||^2".into(),
            panels: vec![
                error_panel(runs, "comms", "against communications"),
                error_panel(runs, "rounds", "against rounds"),
                error_panel(runs, "local_grads", "against local gradient calls"),
            ],
            columns: 3,
            panel_size: (620, 520),
        };
        let mut figures = vec![(String::new(), main)];
        if let Some(panel) = scaling_panel(runs) {
            figures.push((".scaling".into(), Figure::single(panel)));
        }
        Ok(figures)
    }
}
