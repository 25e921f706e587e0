//! Figures of bpsvrg runs: test accuracy and generalization gap per method (median over seeds
//! with the min-max band) against epochs and against gradient evaluations; `.flatness`: the
//! gradient metrics per epoch and the final metric against the final gap of every (method,
//! seed); `.landscape`: train and test loss along a filter-normalized direction around each
//! method's final weights, and the train loss over a plane of two such directions.

use anyhow::Result;

use super::BpsvrgExperiment;
use super::claims::finals;
use crate::contract::{Figures, RunData};
use crate::plot::landscape::{contours, log_levels};
use crate::plot::{
    Colour, Figure, Heatmap, Marker, Panel, Pattern, Points, Series, Style, median_band,
};
use crate::table::Table;

/// A method's colour: its place in the list of every method, so a method keeps its colour
/// in every figure whatever the run's method list.
fn colour(method: &str) -> Colour {
    let all = ["sgd", "svrg", "bsvrg", "bpsvrg", "csvrg"];
    Colour::Palette(all.iter().position(|m| *m == method).unwrap_or(all.len()))
}

fn methods(rows: &Table) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in rows.text("method").unwrap_or_default() {
        if !names.contains(m) {
            names.push(m.clone());
        }
    }
    names
}

/// One path per seed of `method`: (x / per, y) by epoch.
fn seed_paths(rows: &Table, method: &str, x: &str, y: &str, per: f64) -> Vec<Points> {
    let (Some(m), Some(seed), Some(xs), Some(ys)) = (
        rows.text("method"),
        rows.num("seed"),
        rows.num(x),
        rows.num(y),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<(f64, Points)> = Vec::new();
    for i in 0..m.len() {
        if m[i] != method || !ys[i].is_finite() {
            continue;
        }
        match out.iter_mut().find(|(s, _)| *s == seed[i]) {
            Some((_, p)) => p.push((xs[i] / per, ys[i])),
            None => out.push((seed[i], vec![(xs[i] / per, ys[i])])),
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

/// Median and band over seeds of y against x per method; gradient evaluations (`per_image`)
/// are drawn per training image, i.e. in passes over the set.
fn banded(run: &RunData<BpsvrgExperiment>, panel: &mut Panel, x: &str, y: &str, per_image: bool) {
    let per = match (per_image, run.summary.train_images) {
        (true, Some(n)) => n.max(1) as f64,
        _ => 1.0,
    };
    let prefix = if run.key.is_empty() {
        String::new()
    } else {
        format!("{}: ", run.label())
    };
    for method in &methods(&run.rows) {
        let paths = seed_paths(&run.rows, method, x, y, per);
        if paths.is_empty() {
            continue;
        }
        let (median, band) = median_band(&paths);
        panel.series.push(Series {
            points: band,
            style: Style::Band,
            color: colour(method),
            ..Default::default()
        });
        panel.series.push(Series {
            label: format!("{prefix}{method} ({} seeds)", paths.len()),
            points: median,
            style: Style::Line,
            color: colour(method),
            ..Default::default()
        });
    }
}

fn panel(title: &str, x_label: &str, y_label: &str, logy: bool) -> Panel {
    Panel {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        logy,
        ..Default::default()
    }
}

/// `sgd, bsvrg, bpsvrg: cnn on fashion, batch 32, lr 0.05 step`: what a figure shows.
fn setting(run: &RunData<BpsvrgExperiment>) -> String {
    let spec = &run.spec;
    let schedule = match spec.lr_schedule {
        super::spec::Schedule::Constant => "constant",
        super::spec::Schedule::Step => "step decay at 50% and 75%",
    };
    format!(
        "{}: {:?} on {:?}, batch {}, lr {} {schedule}",
        methods(&run.rows).join(", "),
        spec.model,
        spec.dataset,
        spec.batch,
        spec.lr
    )
    .to_lowercase()
}

const EPOCH: &str = "epoch";
const PASSES: &str = "gradient evaluations / training images";

impl Figures for BpsvrgExperiment {
    fn figures(runs: &[RunData<BpsvrgExperiment>]) -> Result<Vec<(String, Figure)>> {
        let Some(first) = runs.first() else {
            return Ok(Vec::new());
        };
        let mut out = vec![
            (String::new(), accuracy(runs)),
            (".flatness".into(), flatness(runs)?),
        ];
        if let Some(l) = landscape(first)? {
            out.push((".landscape".into(), l));
        }
        Ok(out)
    }
}

fn accuracy(runs: &[RunData<BpsvrgExperiment>]) -> Figure {
    let band = "median over seeds, min-max band";
    let mut panels = vec![
        panel(
            &format!("test accuracy ({band})"),
            EPOCH,
            "test accuracy",
            false,
        ),
        panel("generalization gap", EPOCH, "test loss - train loss", false),
        panel(
            "test accuracy against gradient evaluations",
            PASSES,
            "test accuracy",
            false,
        ),
        panel(
            "generalization gap against gradient evaluations",
            PASSES,
            "test loss - train loss",
            false,
        ),
    ];
    for run in runs {
        banded(run, &mut panels[0], "epoch", "test_acc", false);
        banded(run, &mut panels[1], "epoch", "gap_loss", false);
        banded(run, &mut panels[2], "grad_evals", "test_acc", true);
        banded(run, &mut panels[3], "grad_evals", "gap_loss", true);
    }
    Figure {
        title: format!("{} (reconstructed updates)", setting(&runs[0])),
        panels,
        columns: 2,
        panel_size: (760, 520),
    }
}

fn flatness(runs: &[RunData<BpsvrgExperiment>]) -> Result<Figure> {
    let eval = "per-sample gradients in eval mode";
    let mut panels = vec![
        panel(
            &format!("average per-sample gradient norm ({eval})"),
            EPOCH,
            "(1/N) sum ||g_i||",
            false,
        ),
        panel(
            "norm of the average gradient",
            EPOCH,
            "||(1/N) sum g_i||",
            true,
        ),
        panel(
            "variance of the update direction (SVRG types: from epoch 1, the first snapshot)",
            EPOCH,
            "E ||v - E v||^2",
            true,
        ),
    ];
    for run in runs {
        banded(run, &mut panels[0], "epoch", "mean_norm", false);
        banded(run, &mut panels[1], "epoch", "norm_mean", false);
        banded(run, &mut panels[2], "epoch", "dir_var", false);
    }
    let mut scatter = panel(
        "final flatness against final gap, one point per seed",
        "average per-sample gradient norm",
        "test loss - train loss",
        false,
    );
    let shapes = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
    ];
    for run in runs {
        for (c, method) in methods(&run.rows).iter().enumerate() {
            let x = finals(&run.rows, method, "mean_norm")?;
            let y = finals(&run.rows, method, "gap_loss")?;
            scatter.series.push(Series {
                label: method.clone(),
                points: x.into_iter().zip(y).collect(),
                style: Style::Markers,
                color: colour(method),
                marker: shapes[c % shapes.len()],
                marker_size: 5,
                ..Default::default()
            });
        }
    }
    panels.push(scatter);
    Ok(Figure {
        title: format!(
            "flatness metrics (the abstract's two indicators, our formulas); {}",
            setting(&runs[0])
        ),
        panels,
        columns: 2,
        panel_size: (760, 520),
    })
}

fn landscape(run: &RunData<BpsvrgExperiment>) -> Result<Option<Figure>> {
    let Some(maps) = &run.summary.landscapes else {
        return Ok(None);
    };
    let spec = &run.spec;
    let mut slice = panel(
        "loss along one direction (seed 0)",
        "step along the filter-normalized direction",
        "mean loss (solid: train, dashed: test)",
        true,
    );
    let mut panels = Vec::new();
    for l in maps {
        for (values, pattern, set) in [
            (&l.train_1d, Pattern::Solid, "train"),
            (&l.test_1d, Pattern::Dashed, "test"),
        ] {
            slice.series.push(Series {
                label: format!("{} {set}", l.method),
                points: l
                    .alphas
                    .iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect(),
                style: Style::Line,
                color: colour(&l.method),
                pattern,
                ..Default::default()
            });
        }
        let n = l.alphas.len();
        let r = spec.landscape_radius;
        let map = Heatmap {
            x_range: (-r, r),
            y_range: (-r, r),
            nx: n,
            ny: n,
            values: l.train_2d.clone(),
            categories: None,
            log: true,
            label: "train loss (log scale)".into(),
        };
        let mut p = panel(
            &format!(
                "{}: train loss, 8 log-spaced contours (own colour scale)",
                l.method
            ),
            "direction 1",
            "direction 2",
            false,
        );
        if n >= 3 {
            let mut lines = contours(&map, &log_levels(&map, 8))?;
            lines.label.clear();
            p.series.push(lines);
        }
        p.heatmap = Some(map);
        panels.push(p);
    }
    panels.insert(0, slice);
    Ok(Some(Figure {
        title: format!(
            "loss landscape around the final weights ({} training and test images; the same \
             directions for every method)",
            spec.landscape_samples
        ),
        panels,
        columns: 3,
        panel_size: (560, 480),
    }))
}
