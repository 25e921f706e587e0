//! Histograms of the final losses over the random starts, as gaps to the optimum (or the
//! best loss found), sparse and dense, with the optimum marked at 0. Diverged starts are left
//! out of the bars.

use anyhow::Result;

use crate::experiments::RunData;
use crate::plot::Figure;
use crate::plot::landscape::histogram;

pub fn figures(runs: &[RunData]) -> Result<Vec<(String, Figure)>> {
    let mut panels = Vec::new();
    for run in runs {
        let (Some(masks), Some(gaps)) = (run.rows.text("mask"), run.rows.num("gap")) else {
            continue;
        };
        for name in ["sparse", "dense"] {
            let values: Vec<f64> = (0..gaps.len())
                .filter(|&i| masks[i] == name && gaps[i].is_finite())
                .map(|i| gaps[i])
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut panel = histogram(&values, 40, Some((0.0, "optimum (or best found)")));
            panel.title = format!(
                "{}{name} mask: final losses of {} starts",
                if run.label.is_empty() {
                    String::new()
                } else {
                    format!("{}, ", run.label)
                },
                values.len()
            );
            panel.x_label = "final loss - optimum".into();
            panel.y_label = "starts".into();
            panels.push(panel);
        }
    }
    let columns = panels.len().clamp(1, 2);
    Ok(vec![(
        String::new(),
        Figure {
            title: "sparse linear network: where gradient descent ends".into(),
            panels,
            columns,
            panel_size: (700, 520),
        },
    )])
}
