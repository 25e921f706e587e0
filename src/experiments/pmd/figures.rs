//! PMD figures: convergence panels (value gaps with the theory bounds dashed, non-optimal mass,
//! step sizes) and, for 2-state MDPs, the value polytope with each divergence's trajectory.

use anyhow::Result;
use ndarray::Array2;
use rand::Rng;

use super::evaluation::{EvalMethod, Evaluator};
use super::{Pmd, build_mdp};
use crate::contract::{Figures, RunData};
use crate::plot::{
    Colour, Figure, LineRequest, Marker, Panel, Series, Style, line_panel, xy_points,
};

impl Figures for Pmd {
    /// The convergence panels; for one run of a 2-state MDP, the value polytope as well.
    fn figures(runs: &[RunData<Pmd>]) -> Result<Vec<(String, Figure)>> {
        let mut out = vec![(String::new(), convergence(runs))];
        if let [run] = runs
            && run.rows.has("v_0")
        {
            out.push((".landscape".to_string(), landscape(run)?));
        }
        Ok(out)
    }
}

fn convergence(runs: &[RunData<Pmd>]) -> Figure {
    let group = ["divergence"];
    // A panel names the bounds it draws: a bound's column is empty where its step-size
    // schedule does not apply (Johnson et al.'s needs the adaptive schedule).
    let panel = |quantity: &str, source: &str, ys: &[&str], y_label| {
        let mut panel = line_panel(
            runs,
            &LineRequest {
                title: quantity,
                x: "iter",
                ys,
                group: &group,
                logx: false,
                logy: true,
                y_label,
            },
        );
        let mut bounds: Vec<&str> = panel
            .series
            .iter()
            .filter(|s| s.style == Style::Dashed)
            .map(|s| s.label.as_str())
            .collect();
        bounds.sort();
        bounds.dedup();
        match bounds.len() {
            0 => {}
            1 => panel.title = format!("{quantity}, {source} bound dashed"),
            _ => panel.title = format!("{quantity}, {source} bounds dashed"),
        }
        panel
    };
    let title = match runs {
        [run] => describe(run),
        _ => "policy mirror descent".to_string(),
    };
    let mut panels = vec![
        panel(
            "rho-weighted value gap",
            "Xiao",
            &["value_gap_rho", "bound_xiao_thm8", "bound_xiao_thm10"],
            "V*_rho - V^pi_k_rho",
        ),
        panel(
            "sup-norm value gap",
            "Johnson et al.",
            &["value_gap_inf", "bound_johnson"],
            "||V* - V^pi_k||_inf",
        ),
        panel(
            "mass on non-optimal actions (max over states)",
            "",
            &["nonopt_mass"],
            "max_s pi_k(not A*_s | s)",
        ),
    ];
    for (panel, y) in panels
        .iter_mut()
        .zip(["value_gap_rho", "value_gap_inf", "nonopt_mass"])
    {
        mark_exact_optimum(panel, runs, y);
    }
    panels.push(panel("step size", "", &["eta"], "eta_k"));
    Figure {
        title,
        panels,
        columns: 2,
        panel_size: (820, 560),
    }
}

/// Marks, on each run's curve of `y`, the iteration from which the policy is exactly optimal
/// (the `optimal` column is 1 from there on): the gap is 0 there, which a log axis cannot
/// show, so the curve would otherwise just stop.
fn mark_exact_optimum(panel: &mut Panel, runs: &[RunData<Pmd>], y: &str) {
    for run in runs {
        for (group_key, rows) in run.rows.group_keys(&["divergence"]) {
            let (Some(iters), Some(optimal), Some(values)) =
                (rows.num("iter"), rows.num("optimal"), rows.num(y))
            else {
                continue;
            };
            let from = optimal.iter().rposition(|o| *o != 1.0).map_or(0, |i| i + 1);
            if from == 0 || from >= optimal.len() {
                continue;
            }
            // Drawn at the curve's last positive value, at the first exactly optimal
            // iteration, in the colour of the curve (same key as line_panel gives it).
            let Some(last) = values[..from].iter().rev().copied().find(|v| *v > 0.0) else {
                continue;
            };
            let mut key = run.key.clone();
            for part in group_key {
                if !key.iter().any(|(axis, _)| *axis == part.0) {
                    key.push(part);
                }
            }
            panel.series.push(Series {
                label: "exactly optimal from this iteration on".into(),
                points: vec![(iters[from], last)],
                style: Style::Markers,
                marker: Marker::Triangle,
                marker_size: 6,
                key,
                ..Default::default()
            });
        }
    }
}

/// "PMD on 50 states x 10 actions, gamma 0.9, Delta 3.1e-3, schedule constant, eta 10".
fn describe(run: &RunData<Pmd>) -> String {
    let get = |k: &str| {
        run.spec
            .table()
            .get(k)
            .map(crate::spec::value_label)
            .unwrap_or_default()
    };
    let size = run
        .summary
        .mdp
        .as_ref()
        .map(|m| format!("{} states x {} actions", m.states, m.actions))
        .unwrap_or_default();
    let delta = run
        .summary
        .gap_delta
        .map_or("none".into(), |d| format!("{d:.2e}"));
    format!(
        "PMD, {} MDP ({size}), gamma {}, Delta {delta}, {} steps, eta {}",
        get("mdp"),
        get("gamma"),
        get("schedule"),
        get("eta")
    )
}

/// The value polytope {V^pi} of a 2-state MDP with the PMD trajectories on it. The MDP is
/// rebuilt from the saved spec (its seed, or its `mdp_file`).
fn landscape(run: &RunData<Pmd>) -> Result<Figure> {
    let mdp = build_mdp(&run.spec)?;
    let eval = Evaluator::new(&mdp, run.spec.gamma, EvalMethod::Lu);
    // Policies: a grid for two actions, random points of each state's simplex otherwise,
    // plus every deterministic policy (the vertices).
    let a = mdp.actions;
    let mut policies: Vec<Array2<f64>> = Vec::new();
    if a == 2 {
        let n = 60;
        for i in 0..=n {
            for j in 0..=n {
                let (x, y) = (i as f64 / n as f64, j as f64 / n as f64);
                policies.push(ndarray::array![[x, 1.0 - x], [y, 1.0 - y]]);
            }
        }
    } else {
        let mut rng = run.rng("polytope");
        for _ in 0..4000 {
            let mut p = Array2::from_shape_fn((2, a), |_| -(1.0 - rng.random::<f64>()).ln());
            for mut row in p.rows_mut() {
                let total = row.sum();
                row /= total;
            }
            policies.push(p);
        }
    }
    for a0 in 0..a {
        for a1 in 0..a {
            let mut p = Array2::zeros((2, a));
            p[(0, a0)] = 1.0;
            p[(1, a1)] = 1.0;
            policies.push(p);
        }
    }
    let cloud: Vec<(f64, f64)> = policies
        .iter()
        .map(|p| {
            let v = eval.evaluate(p.view(), None);
            (v[0], v[1])
        })
        .collect();
    // V* dominates every V^pi state by state: the deterministic policy (the last a^2
    // points) with the largest sum is it.
    let optimum = cloud[cloud.len() - a * a..]
        .iter()
        .copied()
        .max_by(|p, q| (p.0 + p.1).total_cmp(&(q.0 + q.1)));
    let mut panel = Panel {
        title: "value polytope {V^pi} and PMD trajectories V^pi_k".into(),
        x_label: "V(s0)".into(),
        y_label: "V(s1)".into(),
        logx: false,
        logy: false,
        series: vec![Series {
            label: "V^pi of policies".into(),
            points: cloud,
            style: Style::Cloud,
            color: Colour::Palette(7),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut start = None;
    for (i, (label, rows)) in run.rows.groups(&["divergence"]).into_iter().enumerate() {
        if let Some(points) = xy_points(&rows, "v_0", "v_1") {
            start = start.or(points.first().copied());
            panel.series.push(Series {
                label,
                points,
                style: Style::LineWithMarkers,
                color: Colour::Palette(i),
                ..Default::default()
            });
        }
    }
    for (point, label, marker) in [
        (start, "start V^pi_0", Marker::Square),
        (optimum, "optimum V*", Marker::Cross),
    ] {
        if let Some(point) = point {
            panel.series.push(Series {
                label: label.into(),
                points: vec![point],
                style: Style::Markers,
                color: Colour::Grey,
                marker,
                marker_size: 7,
                ..Default::default()
            });
        }
    }
    let mut figure = Figure::single(panel);
    figure.title = describe(run);
    Ok(figure)
}
