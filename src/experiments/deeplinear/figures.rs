//! Figures of deep linear runs: the loss gap (log) against t showing the stages, the
//! product's singular values against t (with the reduced ODE's for a balanced start), and
//! the alignment with each u_i v_i^T.

use anyhow::Result;

use super::model::DeepLinear;
use super::spec::DeepLinearSpec;
use super::{parse_spec, start, target};
use crate::experiments::RunData;
use crate::flow::{Objective, Tolerances, gradient_flow};
use crate::plot::landscape::{arrows, basin_map, contours, log_levels, sample};
use crate::plot::{Figure, LineRequest, Panel, Series, Style, line_panel};

pub fn figures(runs: &[RunData]) -> Result<Vec<(String, Figure)>> {
    let panel = |title, ys: &'static [&'static str], logy, y_label| {
        line_panel(
            runs,
            &LineRequest {
                title,
                x: "t",
                ys,
                group: &["method"],
                logx: false,
                logy,
                y_label,
            },
        )
    };
    let figure = Figure {
        title: "deep linear network under gradient flow".into(),
        panels: vec![
            panel("loss gap L - L*", &["loss_gap"], true, "L - L*"),
            panel(
                "singular values of W_N...W_1",
                &["sv_1", "sv_2", "sv_reduced"],
                false,
                "singular value",
            ),
            panel(
                "alignment u_i^T W v_i",
                &["align_1", "align_2", "align_3"],
                false,
                "u_i^T W v_i",
            ),
        ],
        columns: 3,
        panel_size: (620, 520),
    };
    let mut figures = vec![(String::new(), figure)];
    // The phase portrait and basin map of a two-layer scalar chain (the first such run).
    if let Some(spec) = runs
        .iter()
        .filter_map(|r| r.spec.as_ref().and_then(|s| parse_spec(s).ok()))
        .find(|s| s.widths == [1, 1, 1])
    {
        figures.push((".landscape".into(), scalar_chain_landscape(&spec)?));
    }
    Ok(figures)
}

/// Where the flow from (w1, w2) is at time t: 0 global with w1 > 0, 1 global with w1 < 0,
/// 2 origin, 3 neither yet.
fn chain_limit(model: &DeepLinear, w0: [f64; 2], t: f64) -> usize {
    let z = model.z[(0, 0)];
    let Ok(path) = gradient_flow(model, &w0, &[0.0, t], Tolerances::default()) else {
        return 3;
    };
    let w = &path.states[1];
    if (w[0] * w[1] - z).abs() < 1e-3 * z {
        if w[0] > 0.0 { 0 } else { 1 }
    } else if w[0].abs() + w[1].abs() < 1e-3 {
        2
    } else {
        3
    }
}

/// The (w1, w2) plane of the two-layer scalar chain L = (z - w2 w1)^2 / 2.
fn scalar_chain_landscape(spec: &DeepLinearSpec) -> Result<Figure> {
    let target = target(spec);
    let model = DeepLinear {
        widths: spec.widths.clone(),
        z: target.z(),
    };
    let z = model.z[(0, 0)];
    let (theta0, _) = start(spec, &target);
    let reach = (2.0 * z.sqrt())
        .max(1.3 * theta0.iter().fold(0.0f64, |a, w| a.max(w.abs())))
        .max(1.0);
    let range = (-reach, reach);
    let loss = |x: f64, y: f64| model.loss(&[x, y]);
    let mut field = sample(range, range, (121, 121), loss);
    field.log = true;
    let mut portrait = Panel {
        title: format!("phase portrait, z = {z}: loss (log colour), -grad L, flows"),
        x_label: "w1".into(),
        y_label: "w2".into(),
        series: vec![contours(&field, &log_levels(&field, 12))?],
        arrows: arrows(range, range, 15, 0.08 * reach, |x, y| {
            let mut g = [0.0; 2];
            model.gradient(&[x, y], &mut g);
            (-g[0], -g[1])
        }),
        heatmap: Some(field),
        ..Default::default()
    };
    // The minima: the hyperbola w1 w2 = z, both branches.
    for branch in [1.0, -1.0] {
        let points: Vec<(f64, f64)> = (1..=200)
            .map(|k| branch * (z / reach + (reach - z / reach) * k as f64 / 200.0))
            .map(|x| (x, z / x))
            .filter(|p| p.1.abs() <= reach)
            .collect();
        portrait.series.push(Series {
            label: if branch > 0.0 {
                "minima w1 w2 = z".into()
            } else {
                String::new()
            },
            points,
            style: Style::Dashed,
            color: 3,
        });
    }
    // Flows from a ring of starts, and the run's own start.
    let times: Vec<f64> = (0..=200).map(|k| spec.t_end * k as f64 / 200.0).collect();
    let mut starts: Vec<[f64; 2]> = (0..16)
        .map(|k| {
            let a = std::f64::consts::TAU * (k as f64 + 0.25) / 16.0;
            [0.9 * reach * a.cos(), 0.9 * reach * a.sin()]
        })
        .collect();
    starts.push([theta0[0], theta0[1]]);
    let last = starts.len() - 1;
    for (i, w0) in starts.iter().enumerate() {
        let path = gradient_flow(&model, w0, &times, Tolerances::default())?;
        portrait.series.push(Series {
            label: if i == last {
                "this run's flow".into()
            } else {
                String::new()
            },
            points: path.states.iter().map(|w| (w[0], w[1])).collect(),
            style: if i == last {
                Style::LineWithMarkers
            } else {
                Style::Line
            },
            color: if i == last { 1 } else { 7 },
        });
    }
    let names = [
        "global, w1 > 0",
        "global, w1 < 0",
        "origin",
        "not there yet",
    ];
    let basins = basin_map(
        range,
        range,
        61,
        names.iter().map(|s| s.to_string()).collect(),
        |x, y| chain_limit(&model, [x, y], spec.t_end),
    );
    let basin = Panel {
        title: format!("basin map: where the flow is at t = {}", spec.t_end),
        x_label: "w1(0)".into(),
        y_label: "w2(0)".into(),
        heatmap: Some(basins),
        ..Default::default()
    };
    Ok(Figure {
        title: "two-layer scalar chain".into(),
        panels: vec![portrait, basin],
        columns: 2,
        panel_size: (700, 640),
    })
}
