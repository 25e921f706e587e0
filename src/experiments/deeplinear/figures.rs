//! Figures of deep linear runs: the loss gap (log) against t showing the stages, the
//! product's singular values against t (with the reduced ODE's for a balanced start), and
//! the alignment with each u_i v_i^T.

use anyhow::Result;

use super::model::DeepLinear;
use super::{DeepLinearExperiment, start, target};
use crate::contract::{Figures, RunData, Valid};
use crate::flow::{Objective, Tolerances, gradient_flow};
use crate::plot::landscape::{arrows, basin_map, contours, log_levels, sample};
use crate::plot::{Colour, Figure, LineRequest, Panel, Series, Style, line_panel};

impl Figures for DeepLinearExperiment {
    /// The stages against t; for a scalar chain of two or three layers, its landscape.
    fn figures(runs: &[RunData<DeepLinearExperiment>]) -> Result<Vec<(String, Figure)>> {
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
        // The phase portrait and basin map of a scalar chain of two or three layers (the first
        // such run).
        if let Some(run) = runs
            .iter()
            .find(|r| r.spec.widths == [1, 1, 1] || r.spec.widths == [1, 1, 1, 1])
        {
            figures.push((".landscape".into(), scalar_chain_landscape(&run.spec)?));
        }
        Ok(figures)
    }
}

/// The weights of a point (x, y) of the portrait's plane: (w1, w2) for two layers, the
/// invariant plane w2 = w3 for three (the chain's loss is symmetric in w2, w3, so the flow
/// keeps w2 = w3).
fn weights(depth: usize, x: f64, y: f64) -> Vec<f64> {
    if depth == 2 {
        vec![x, y]
    } else {
        vec![x, y, y]
    }
}

/// The categories of a chain's state, as [`chain_limit_of`] numbers them.
const CHAIN_STATES: [&str; 5] = [
    "global, w1 > 0",
    "global, w1 < 0",
    "origin (a saddle)",
    "saddle line w2 = w3 = 0",
    "not there yet",
];

/// Where a chain's state is: 0 global with w1 > 0, 1 global with w1 < 0, 2 origin, 3 on the
/// line of saddles w2 = w3 = 0 of a three-layer chain (every point of it is critical: each
/// partial derivative has a factor w2 or w3), 4 neither yet.
fn chain_limit_of(model: &DeepLinear, w: &[f64]) -> usize {
    let z = model.z[(0, 0)];
    let p: f64 = w.iter().product();
    let small = 0.05 * z.abs().max(1.0);
    if (p - z).abs() < 1e-3 * z.abs() {
        if w[0] > 0.0 { 0 } else { 1 }
    } else if w.iter().map(|x| x.abs()).sum::<f64>() < small {
        // Near the origin: three layers creep in like |p| ~ (|z| t)^-3, so the basin map
        // classifies by where the flow is heading at its horizon.
        2
    } else if w.len() == 3 && w[1].abs() + w[2].abs() < small {
        3
    } else {
        4
    }
}

/// The gradient flow of a scalar chain restricted to the portrait's plane: (w1, w2) for
/// two layers; for three, (w1, y) with w2 = w3 = y, moving as w1 and w2 do there. The plane
/// is invariant, but near the saddle line w2 = w3 = 0 it is unstable across (towards
/// w2 = -w3), so integrating all three weights would let round-off carry a flow out of the
/// plane it is drawn in.
struct PlaneFlow<'a> {
    model: &'a DeepLinear,
    depth: usize,
}

impl Objective for PlaneFlow<'_> {
    fn dim(&self) -> usize {
        2
    }
    fn loss(&self, p: &[f64]) -> f64 {
        self.model.loss(&weights(self.depth, p[0], p[1]))
    }
    /// Minus the velocity of the flow in the plane (for three layers not the gradient of
    /// `loss` in (x, y), which would be twice as large in y; the flow integrator only calls
    /// this).
    fn gradient(&self, p: &[f64], out: &mut [f64]) {
        let mut g = vec![0.0; self.depth];
        self.model
            .gradient(&weights(self.depth, p[0], p[1]), &mut g);
        out.copy_from_slice(&g[..2]);
    }
}

impl PlaneFlow<'_> {
    /// Where the state (x, y) of the plane is (see [`chain_limit_of`]).
    fn limit_of(&self, p: &[f64]) -> usize {
        chain_limit_of(self.model, &weights(self.depth, p[0], p[1]))
    }

    /// Where the flow from (x, y) is at time t; classifying needs no more than rtol 1e-8.
    fn limit(&self, x: f64, y: f64, t: f64) -> usize {
        let tolerances = Tolerances {
            rtol: 1e-8,
            atol: 1e-10,
            ..Tolerances::default()
        };
        match gradient_flow(self, &[x, y], &[0.0, t], tolerances) {
            Ok(path) => self.limit_of(&path.states[1]),
            Err(_) => 4,
        }
    }
}

/// The phase portrait of the scalar chain L = (z - w_N ... w_1)^2 / 2 (N = 2: the (w1, w2)
/// plane; N = 3: the invariant plane w2 = w3), flows coloured by their limit, and the
/// basin map.
fn scalar_chain_landscape(spec: &Valid<DeepLinearExperiment>) -> Result<Figure> {
    let target = target(spec);
    let model = DeepLinear {
        widths: spec.widths.clone(),
        z: target.z(),
    };
    let depth = spec.widths.len() - 1;
    let z = model.z[(0, 0)];
    let (theta0, _) = start(spec, &target);
    let side = z.abs().powf(1.0 / depth as f64);
    let reach = (2.0 * side)
        .max(1.3 * theta0.iter().fold(0.0f64, |a, w| a.max(w.abs())))
        .max(1.0);
    let range = (-reach, reach);
    let loss = |x: f64, y: f64| model.loss(&weights(depth, x, y));
    let mut field = sample(range, range, (121, 121), "loss L (log scale)", loss);
    field.log = true;
    let plane = if depth == 2 {
        "(w1, w2)".to_string()
    } else {
        "the invariant plane w2 = w3".to_string()
    };
    let mut portrait = Panel {
        title: format!("phase portrait on {plane}, z = {z}: loss, -grad L, flows"),
        x_label: "w1".into(),
        y_label: if depth == 2 { "w2" } else { "w2 = w3" }.into(),
        series: vec![contours(&field, &log_levels(&field, 12))?],
        arrows: arrows(range, range, 15, 0.08 * reach, |x, y| {
            let mut g = vec![0.0; depth];
            model.gradient(&weights(depth, x, y), &mut g);
            (-g[0], -g[1])
        }),
        heatmap: Some(field),
        ..Default::default()
    };
    // The minima: w1 w2 = z (N = 2) or w1 w2^2 = z (N = 3), both branches that exist.
    let power = (depth - 1) as f64;
    for branch in [1.0, -1.0] {
        let points: Vec<(f64, f64)> = (1..=400)
            .map(|k| branch * reach * k as f64 / 400.0)
            .map(|y: f64| (z / y.powf(power), y))
            .filter(|p| p.0.abs() <= reach && p.0.is_finite())
            .collect();
        portrait.series.push(Series {
            label: if branch > 0.0 {
                format!("minima w1 w2{} = z", if depth == 2 { "" } else { "^2" })
            } else {
                String::new()
            },
            points,
            style: Style::Dashed,
            color: Colour::Grey,
            ..Default::default()
        });
    }
    // The horizon of the ring's flows and the basin map: long enough to leave the saddle's
    // neighbourhood, short enough for 3721 flows (far out, the minima are stiff: curvature
    // ~ |w|^(2N-2)).
    let horizon = spec.t_end.min(20.0);
    // Flows from a ring of starts, coloured by their limit as in the basin map, and the
    // run's own start (to t_end).
    let grid = |t: f64| -> Vec<f64> { (0..=200).map(|k| t * k as f64 / 200.0).collect() };
    let plane_flow = PlaneFlow {
        model: &model,
        depth,
    };
    let mut starts: Vec<Vec<f64>> = (0..16)
        .map(|k| {
            let a = std::f64::consts::TAU * (k as f64 + 0.25) / 16.0;
            vec![0.9 * reach * a.cos(), 0.9 * reach * a.sin()]
        })
        .collect();
    // The run's own flow, when its start lies in the plane.
    let own = depth == 2 || theta0[1] == theta0[2];
    if own {
        starts.push(vec![theta0[0], theta0[1]]);
    }
    let last = if own { starts.len() - 1 } else { usize::MAX };
    let mut named = [false; CHAIN_STATES.len()];
    for (i, w0) in starts.iter().enumerate() {
        let t = if i == last { spec.t_end } else { horizon };
        let path = gradient_flow(&plane_flow, w0, &grid(t), Tolerances::default())?;
        let end = path.states.last().expect("an end state");
        let limit = plane_flow.limit_of(end);
        // Flows are coloured by where they are at the horizon, as in the basin map; the
        // legend names each colour once.
        let label = if i == last {
            format!("this run's flow, to t = {}", spec.t_end)
        } else if !named[limit] {
            named[limit] = true;
            format!("{}: flows, dot at t = {horizon}", CHAIN_STATES[limit])
        } else {
            String::new()
        };
        let color = Colour::Palette(if i == last { 9 } else { limit });
        portrait.series.push(Series {
            label,
            points: path.states.iter().map(|w| (w[0], w[1])).collect(),
            style: if i == last {
                Style::LineWithMarkers
            } else {
                Style::Line
            },
            color,
            ..Default::default()
        });
        // Where it is at the horizon, so a flow that stops short of a minimum is seen to.
        if i != last {
            portrait.series.push(Series {
                points: vec![(end[0], end[1])],
                style: Style::Markers,
                color,
                marker_size: 4,
                ..Default::default()
            });
        }
    }
    let basins = basin_map(
        range,
        range,
        61,
        CHAIN_STATES.iter().map(|s| s.to_string()).collect(),
        |x, y| plane_flow.limit(x, y, horizon),
    );
    let basin = Panel {
        title: format!("basin map: where the flow is at t = {horizon}"),
        x_label: "w1(0)".into(),
        y_label: if depth == 2 { "w2(0)" } else { "w2(0) = w3(0)" }.into(),
        heatmap: Some(basins),
        ..Default::default()
    };
    Ok(Figure {
        title: format!("{depth}-layer scalar chain"),
        panels: vec![portrait, basin],
        columns: 2,
        panel_size: (860, 640),
    })
}
