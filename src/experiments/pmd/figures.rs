//! PMD figures: convergence panels (value gaps with the theory bounds dashed, non-optimal mass,
//! step sizes) and, for 2-state MDPs, the value polytope with each divergence's trajectory.

use anyhow::Result;
use ndarray::Array2;
use rand::Rng;

use super::evaluation::{EvalMethod, Evaluator};
use super::{Pmd, build_mdp};
use crate::contract::{Figures, RunData};
use crate::plot::{Colour, Figure, LineRequest, Panel, Series, Style, line_panel, xy_points};

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
    let panel = |title, ys: &[&str], y_label| {
        line_panel(
            runs,
            &LineRequest {
                title,
                x: "iter",
                ys,
                group: &group,
                logx: false,
                logy: true,
                y_label,
            },
        )
    };
    let title = match runs {
        [run] => describe(run),
        _ => "policy mirror descent".to_string(),
    };
    Figure {
        title,
        panels: vec![
            panel(
                "rho-weighted value gap, Xiao bounds dashed",
                &["value_gap_rho", "bound_xiao_thm8", "bound_xiao_thm10"],
                "V*_rho - V^pi_k_rho",
            ),
            panel(
                "sup-norm value gap, Johnson et al. bound dashed",
                &["value_gap_inf", "bound_johnson"],
                "||V* - V^pi_k||_inf",
            ),
            panel(
                "mass on non-optimal actions (max over states)",
                &["nonopt_mass"],
                "max_s pi_k(not A*_s | s)",
            ),
            panel("step size", &["eta"], "eta_k"),
        ],
        columns: 2,
        panel_size: (820, 560),
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
    for (i, (label, rows)) in run.rows.groups(&["divergence"]).into_iter().enumerate() {
        if let Some(points) = xy_points(&rows, "v_0", "v_1") {
            panel.series.push(Series {
                label,
                points,
                style: Style::LineWithMarkers,
                color: Colour::Palette(i),
                ..Default::default()
            });
        }
    }
    let mut figure = Figure::single(panel);
    figure.title = describe(run);
    Ok(figure)
}
