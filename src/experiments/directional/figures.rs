//! Figures of directional runs: the angle to w* (log) against t, the norm against t on
//! log-log axes with the derived slope, the loss; and a `.field` figure: the population
//! vector field of the linear predictor in the (along w*, across w*) plane with the runs'
//! paths, or for two-node runs the units' angles and the loss over them.

use anyhow::Result;

use super::model::{Network, PopulationObjective};
use super::population::RadialTable;
use super::spec::{DirectionalSpec, LawName, LossName, Model};
use super::{DirectionalExperiment, Theory, network, population};
use crate::contract::{Figures, RunData};
use crate::flow::Objective;
use crate::plot::landscape::{arrows, contours, log_levels, sample};
use crate::plot::{Colour, Figure, LineRequest, Panel, Series, Style, clip_path, line_panel};

type Runs = [RunData<DirectionalExperiment>];

impl Figures for DirectionalExperiment {
    /// Angle, norm and loss against t, and the `.field` figure of the first run's model.
    fn figures(runs: &Runs) -> Result<Vec<(String, Figure)>> {
        let mut figures = vec![(String::new(), convergence(runs))];
        if let Some(run) = runs.first() {
            let field = match run.spec.model {
                Model::Linear => linear_field(&run.spec, runs)?,
                Model::TwoNode => two_node_field(&run.spec, runs)?,
            };
            figures.push((".field".into(), field));
        }
        Ok(figures)
    }
}

fn convergence(runs: &Runs) -> Figure {
    let panel = |title, x, ys: &'static [&'static str], logx, logy, y_label| {
        line_panel(
            runs,
            &LineRequest {
                title,
                x,
                ys,
                group: &["method"],
                logx,
                logy,
                y_label,
            },
        )
    };
    let mut norm = panel("norm against t", "t", &["norm"], true, true, "norm");
    let specs: Vec<&DirectionalSpec> = runs.iter().map(|r| &*r.spec).collect();
    // The derived growth ((N+2) K t)^(N/(N+2)) of each depth present, dashed.
    let mut drawn = Vec::new();
    for spec in specs.iter().filter(|s| s.model == Model::Linear) {
        let key = (spec.depth, spec.law, spec.loss, spec.dim);
        if drawn.contains(&key) {
            continue;
        }
        drawn.push(key);
        let theory = Theory::new(&population(spec), spec.depth);
        let n = spec.depth as f64;
        let points = (0..=60)
            .map(|k| spec.t_end * 1e-3f64.powf(1.0 - k as f64 / 60.0))
            .map(|t| (t, ((n + 2.0) * theory.k * t).powf(n / (n + 2.0))))
            .collect();
        let setting = if (spec.law, spec.loss) == (LawName::Gaussian, LossName::Logistic) {
            String::new()
        } else {
            format!(" ({:?} {:?})", spec.law, spec.loss).to_lowercase()
        };
        norm.series.push(Series {
            label: format!(
                "((N+2) K t)^(N/(N+2)), N = {}{setting}, reconstructed",
                spec.depth
            ),
            points,
            style: Style::Dashed,
            color: Colour::Palette(7 + drawn.len()),
            ..Default::default()
        });
    }
    Figure {
        title: "directional convergence to w* (population loss)".into(),
        panels: vec![
            panel("angle to w*", "t", &["angle"], false, true, "angle (rad)"),
            norm,
            panel("population loss", "t", &["loss"], true, true, "loss"),
        ],
        columns: 3,
        panel_size: (620, 520),
    }
}

/// The population loss of the linear predictor beta = (b_1, b_2) in the plane of w* = e_1 and
/// e_2, its -grad field, and each run's path (r cos theta, r sin theta).
fn linear_field(spec: &DirectionalSpec, runs: &Runs) -> Result<Figure> {
    let pop = population(spec);
    let mut paths: Vec<Series> = Vec::new();
    let mut reach = 1.0f64;
    for run in runs {
        for (group_key, rows) in run.rows.group_keys(&["method"]) {
            let (Some(angle), Some(norm)) = (rows.num("angle"), rows.num("norm")) else {
                continue;
            };
            // The window: where the path turns (until the angle is below 0.05 rad).
            let points: Vec<(f64, f64)> = angle
                .iter()
                .zip(norm)
                .map(|(a, r)| (r * a.cos(), r * a.sin()))
                .collect();
            let turning = angle
                .iter()
                .position(|a| *a < 0.05)
                .unwrap_or(angle.len() - 1);
            for p in &points[..=turning] {
                reach = reach.max(p.0.abs()).max(p.1.abs());
            }
            paths.push(Series {
                points,
                key: run.key.iter().cloned().chain(group_key).collect(),
                ..Default::default()
            });
        }
    }
    let reach = 1.2 * reach;
    let x_range = (-reach, reach);
    let y_range = (0.0, reach);
    let loss = |x: f64, y: f64| {
        let mut g = [0.0; 2];
        pop.linear(&[x, y], &mut g)
    };
    let mut map = sample(
        x_range,
        y_range,
        (101, 51),
        "population loss (log scale)",
        loss,
    );
    map.log = true;
    let mut series = vec![contours(&map, &log_levels(&map, 12))?];
    // The window shows where a path turns; past it the norm keeps growing along w*: an
    // arrow at the edge says so.
    for mut path in paths {
        let (kept, exit) = clip_path(&path.points, x_range, y_range);
        path.points = kept;
        if let Some([from, to]) = exit {
            series.push(Series {
                label: "the path goes on beyond the window".into(),
                points: vec![from, to],
                style: Style::Arrow,
                key: path.key.clone(),
                ..Default::default()
            });
        }
        series.push(path);
    }
    let panel = Panel {
        title: format!(
            "{} {} loss of the linear predictor, -grad L, paths of the predictor",
            format!("{:?}", spec.law).to_lowercase(),
            format!("{:?}", spec.loss).to_lowercase()
        ),
        x_label: "along w*".into(),
        y_label: "across w*".into(),
        series,
        arrows: arrows(x_range, y_range, 15, 0.06 * reach, |x, y| {
            let mut g = [0.0; 2];
            pop.linear(&[x, y], &mut g);
            (-g[0], -g[1])
        }),
        heatmap: Some(map),
        ..Default::default()
    };
    Ok(Figure {
        title: "population vector field in the plane of w*".into(),
        panels: vec![panel],
        columns: 1,
        panel_size: (1000, 560),
    })
}

/// Two-node runs: each method's path in the plane of the units' angles (w_1 to w*, w_2 to
/// -w*) over the population loss at the run's final norm, both units on the +e_2 side.
fn two_node_field(spec: &DirectionalSpec, runs: &Runs) -> Result<Figure> {
    let network = network(spec);
    let Network::TwoNode { dim, .. } = network else {
        anyhow::bail!("a two-node figure needs a two-node spec");
    };
    let pop = population(spec);
    let table = RadialTable::new(pop.clone());
    let objective = PopulationObjective {
        network: &network,
        population: pop,
        table: Some(&table),
    };
    let mut series: Vec<Series> = Vec::new();
    let mut scale = 1.0;
    for run in runs {
        for (group_key, rows) in run.rows.group_keys(&["method"]) {
            let (Some(a1), Some(a2)) = (rows.num("angle_1"), rows.num("angle_2")) else {
                continue;
            };
            if let Some(r) = rows.num("norm").and_then(|n| n.last()) {
                scale = r / std::f64::consts::SQRT_2;
            }
            series.push(Series {
                points: a1.iter().zip(a2).map(|(x, y)| (*x, *y)).collect(),
                key: run.key.iter().cloned().chain(group_key).collect(),
                ..Default::default()
            });
        }
    }
    let pi = std::f64::consts::PI;
    let loss = |a1: f64, a2: f64| {
        let mut theta = vec![0.0; 2 * dim + 2];
        theta[0] = scale * a1.cos();
        theta[1] = scale * a1.sin();
        theta[dim] = -scale * a2.cos();
        theta[dim + 1] = scale * a2.sin();
        theta[2 * dim] = 1.0;
        theta[2 * dim + 1] = -1.0;
        objective.loss(&theta)
    };
    let mut map = sample(
        (0.0, pi),
        (0.0, pi),
        (41, 41),
        "population loss at this norm (log scale)",
        loss,
    );
    map.log = true;
    let mut all = vec![contours(&map, &log_levels(&map, 10))?];
    all.extend(series);
    Ok(Figure {
        title: "two-node network: the units' angles".into(),
        panels: vec![Panel {
            title: format!(
                "paths; loss at ||w_k|| = {scale:.3}, v = (1, -1), units on the +e_2 side"
            ),
            x_label: "angle(w_1, w*)".into(),
            y_label: "angle(w_2, -w*)".into(),
            series: all,
            heatmap: Some(map),
            ..Default::default()
        }],
        columns: 1,
        panel_size: (800, 700),
    })
}
