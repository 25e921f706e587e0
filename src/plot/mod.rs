//! Figures: a small description of panels and series, rendered with plotters to PNG or SVG.
//!
//! Text is drawn with an embedded DejaVu Sans (the `dejavu` crate), so a machine with no fonts
//! installed renders the same labels. Log axes are drawn as log10 of the data on a linear axis
//! with labels `1e-3`, `0.01`, ..., which keeps tick labels readable whatever the range.

pub mod landscape;
mod render;

pub use render::render;

use crate::table::Table;

/// A run as a line panel sees it: a legend label and its rows.
pub trait LabelledRows {
    fn label(&self) -> &str;
    fn rows(&self) -> &Table;
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    /// Theory bounds and reference curves.
    Dashed,
    /// A cloud of small grey points (e.g. the value polytope), not in the legend.
    Cloud,
    /// A line with a marker at every point (trajectories).
    LineWithMarkers,
    /// A filled polygon, light, not in the legend: the spread around a median line. Its
    /// points run along the upper edge and back along the lower one.
    Band,
    /// Thin grey lines, not in the legend (contour lines); points separated by NaN breaks.
    Contour,
    /// Vertical bars from 0 to y, centred at x, of the width of the points' spacing.
    Bars,
    /// Coloured points, no line (a scatter), in the legend.
    Markers,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// Index into the palette.
    pub color: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub logx: bool,
    pub logy: bool,
    pub series: Vec<Series>,
    /// Drawn first, under the series: a scalar field or a map of categories.
    pub heatmap: Option<Heatmap>,
    /// A vector field: (x, y, dx, dy) arrows, drawn over the heatmap.
    pub arrows: Vec<[f64; 4]>,
}

/// Values on a regular grid: `values[iy * nx + ix]` at x_range.0 + ix * step, etc.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub nx: usize,
    pub ny: usize,
    pub values: Vec<f64>,
    /// Category names: values are indices into them (a basin map); `None`: a continuous
    /// field drawn with the viridis colour map (of log10 values when `log`).
    pub categories: Option<Vec<String>>,
    pub log: bool,
}

impl Heatmap {
    /// The grid point (ix, iy).
    pub fn point(&self, ix: usize, iy: usize) -> (f64, f64) {
        let step = |(lo, hi): (f64, f64), n: usize, i: usize| {
            lo + (hi - lo) * i as f64 / (n.max(2) - 1) as f64
        };
        (
            step(self.x_range, self.nx, ix),
            step(self.y_range, self.ny, iy),
        )
    }
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
    /// Size of one panel in pixels.
    pub panel_size: (u32, u32),
}

impl Panel {
    /// Whether it has nothing to draw: no heatmap, no arrows, and no point its axes can show
    /// (a log axis cannot show values <= 0).
    pub fn is_empty(&self) -> bool {
        let shown = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        self.heatmap.is_none()
            && self.arrows.is_empty()
            && !self.series.iter().any(|s| {
                s.points
                    .iter()
                    .any(|&(x, y)| shown(x, self.logx) && shown(y, self.logy))
            })
    }
}

impl Figure {
    /// Whether no panel has anything to draw.
    pub fn is_empty(&self) -> bool {
        self.panels.iter().all(Panel::is_empty)
    }

    pub fn single(panel: Panel) -> Figure {
        Figure {
            title: String::new(),
            panels: vec![panel],
            columns: 1,
            panel_size: (900, 620),
        }
    }
}

/// What a line panel shows: x, one or more y columns, and how to split rows into series.
pub struct LineRequest<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub ys: &'a [&'a str],
    /// Text columns whose joint values split a run's rows into series.
    pub group: &'a [&'a str],
    pub logx: bool,
    pub logy: bool,
    pub y_label: &'a str,
}

/// Whether a column is a theory bound (drawn dashed in the colour of its series).
pub fn is_bound(column: &str) -> bool {
    column.starts_with("bound_")
}

/// One panel with a line per (run, group, y column). Columns absent from a run or without a
/// single number are skipped, so one request serves runs of different settings.
pub fn line_panel<R: LabelledRows>(runs: &[R], request: &LineRequest) -> Panel {
    let mut panel = Panel {
        title: request.title.to_string(),
        x_label: request.x.to_string(),
        y_label: request.y_label.to_string(),
        logx: request.logx,
        logy: request.logy,
        series: Vec::new(),
        ..Default::default()
    };
    let several_ys = request.ys.iter().filter(|y| !is_bound(y)).count() > 1;
    let grouped: Vec<Vec<(String, Table)>> = runs
        .iter()
        .map(|run| {
            let group: Vec<&str> = request
                .group
                .iter()
                .copied()
                .filter(|g| run.rows().has(g))
                .collect();
            run.rows().groups(&group)
        })
        .collect();
    // A group label shared by every series tells nothing: leave it out of the legend.
    let mut distinct: Vec<&str> = grouped.iter().flatten().map(|(l, _)| l.as_str()).collect();
    distinct.dedup();
    let show_groups = distinct.len() > 1;
    let mut color = 0usize;
    for (run, groups) in runs.iter().zip(&grouped) {
        for (group_label, rows) in groups {
            // Leave out what the legend says already: a group shared by every series, or a
            // setting the run label names (a group column that is also a differing setting).
            let run_parts: Vec<&str> = run.label().split(", ").collect();
            let group_label = if show_groups {
                group_label
                    .split(", ")
                    .filter(|part| !run_parts.contains(part))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            };
            let mut drew_any = false;
            for y in request.ys {
                let Some(points) = xy_points(rows, request.x, y) else {
                    continue;
                };
                let bound = is_bound(y);
                if !bound && drew_any {
                    color += 1;
                }
                let mut label_parts: Vec<&str> = Vec::new();
                if !run.label().is_empty() {
                    label_parts.push(run.label());
                }
                if !group_label.is_empty() {
                    label_parts.push(&group_label);
                }
                if several_ys || bound || label_parts.is_empty() {
                    label_parts.push(y);
                }
                panel.series.push(Series {
                    label: label_parts.join(", "),
                    points,
                    style: if bound { Style::Dashed } else { Style::Line },
                    color,
                });
                drew_any = true;
            }
            if drew_any {
                color += 1;
            }
        }
    }
    panel
}

/// The (x, y) pairs of two numeric columns, skipping missing values; `None` if either column
/// is absent or has no number at all.
pub fn xy_points(rows: &Table, x: &str, y: &str) -> Option<Vec<(f64, f64)>> {
    let xs = rows.num(x)?;
    let ys = rows.num(y)?;
    let points: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|(a, b)| (*a, *b))
        .collect();
    (!points.is_empty()).then_some(points)
}

/// (x, y) points of a line or polygon.
pub type Points = Vec<(f64, f64)>;

/// The median of several step paths (each sorted by x) and the min-max band around it, on
/// the union of their x values. A path's value at x is its last point at or before x; past
/// its end it keeps its final value (a run that stopped at the tolerance stays there).
/// Returns (median line, band polygon).
pub fn median_band(paths: &[Points]) -> (Points, Points) {
    let mut grid: Vec<f64> = paths.iter().flatten().map(|p| p.0).collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let mut cursor = vec![0usize; paths.len()];
    let (mut median, mut upper, mut lower) = (Vec::new(), Vec::new(), Vec::new());
    let mut values = Vec::with_capacity(paths.len());
    for &x in &grid {
        values.clear();
        for (path, k) in paths.iter().zip(cursor.iter_mut()) {
            while *k + 1 < path.len() && path[*k + 1].0 <= x {
                *k += 1;
            }
            if path.first().is_some_and(|p| p.0 <= x) {
                values.push(path[*k].1);
            }
        }
        if values.is_empty() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let m = values.len();
        let mid = if m % 2 == 1 {
            values[m / 2]
        } else {
            0.5 * (values[m / 2 - 1] + values[m / 2])
        };
        median.push((x, mid));
        upper.push((x, values[m - 1]));
        lower.push((x, values[0]));
    }
    lower.reverse();
    upper.extend(lower);
    (median, upper)
}
