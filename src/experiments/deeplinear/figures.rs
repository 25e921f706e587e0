//! Figures of deep linear runs: the loss gap (log) against t showing the stages, the
//! product's singular values against t (with the reduced ODE's for a balanced start), and
//! the alignment with each u_i v_i^T.

use anyhow::Result;

use crate::experiments::RunData;
use crate::plot::{Figure, LineRequest, line_panel};

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
    Ok(vec![(String::new(), figure)])
}
