//! Figures: a small description of panels and series, rendered with plotters to PNG or SVG,
//! and to PDF through svg2pdf.
//!
//! Text is drawn with an embedded DejaVu Sans (the `dejavu` crate), so a machine with no fonts
//! installed renders the same labels. Log axes are drawn as log10 of the data on a linear axis
//! with labels `1e-3`, `0.01`, ..., which keeps tick labels readable whatever the range.
//!
//! A figure says *what* its series are; the renderer decides how to tell them apart. A series
//! with a [`Series::key`] (the settings of its run, its group, its column) is styled by
//! [`style`]: colour from one varying setting (a sequential colour map with a colour bar when
//! the setting is numeric and ordered), line pattern from a second, bounds dashed in the
//! colour of their series, and a legend of one entry per value rather than per series. Legends
//! go in a corner of the plot only where they cover no data, otherwise beside it; heatmaps get
//! a colour bar.

pub mod landscape;
mod render;
mod style;

pub use render::{Layers, RgbImage, render, render_rgb, render_svg};

use crate::table::Table;

/// What tells one series apart from the others of a figure: (setting, value) pairs, e.g.
/// `[("divergence", "kl"), ("eta", "10")]`. The axis [`SERIES_AXIS`] holds a column name,
/// shown bare in legends.
pub type Key = Vec<(String, String)>;

/// The key axis of a column name (several y columns of one run).
pub const SERIES_AXIS: &str = "series";

/// `divergence=kl, eta=10` (a column name bare).
pub fn key_label(key: &[(String, String)]) -> String {
    key.iter()
        .map(|(axis, value)| {
            if axis == SERIES_AXIS || axis == "method" {
                value.clone()
            } else {
                format!("{axis}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run as a line panel sees it: the settings that tell it apart from the other runs of the
/// figure, and its rows.
pub trait LabelledRows {
    fn key(&self) -> &[(String, String)];
    fn rows(&self) -> &Table;
}

/// A colour: one of the qualitative palette, a position in [0, 1] on the sequential colour
/// map (an ordered setting of a sweep), or grey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colour {
    Palette(usize),
    Sequential(f64),
    Grey,
}

impl Default for Colour {
    fn default() -> Self {
        Colour::Palette(0)
    }
}

/// The dash pattern of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pattern {
    #[default]
    Solid,
    Dashed,
    Dotted,
    DashDot,
    LongDash,
}

/// The shape of a scatter's markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Marker {
    #[default]
    Circle,
    Triangle,
    Square,
    Cross,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Line,
    /// Theory bounds and reference curves: dashed (or the series' own pattern).
    Dashed,
    /// A cloud of small grey points (e.g. the value polytope).
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
    /// Coloured points, no line (a scatter), half transparent, in the legend.
    Markers,
    /// An arrow from the first point to the second (a path that leaves the window).
    Arrow,
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The legend entry (none when empty). A keyed line's entry comes from its key instead; a
    /// keyed bound, mark or arrow is listed under its label.
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    pub color: Colour,
    pub pattern: Pattern,
    pub marker: Marker,
    /// Marker radius in pixels (0: the default, 3).
    pub marker_size: i32,
    /// When not empty, colour, pattern and legend come from the key (see [`style`]); a
    /// `Dashed` series with a key is a bound of the series with the same key, named by its
    /// label.
    pub key: Key,
}

/// One line of a legend, drawn as a sample of the style.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub style: Style,
    pub color: Colour,
    pub pattern: Pattern,
    pub marker: Marker,
}

/// A colour bar for series coloured on the sequential map: what the colours mean (the
/// renderer draws it, as it draws a continuous heatmap's).
#[derive(Debug, Clone, PartialEq)]
pub struct ColourBar {
    pub label: String,
    /// The setting's values at the two ends of the map.
    pub range: (f64, f64),
    /// Positions are log10 of the values.
    pub log: bool,
    /// The values to mark, with their text (a sweep's settings); none: round values.
    pub ticks: Vec<(f64, String)>,
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
    /// Names under the x axis at these positions, instead of numbers (bars of categories).
    pub x_names: Vec<(f64, String)>,
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
    /// What a continuous field's colour bar says: the quantity and its units.
    pub label: String,
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

/// One panel with a line per (run, group, y column), each keyed by what tells it apart (the
/// run's settings, its group, its column), so the renderer styles them. Columns absent from
/// a run or without a single number are skipped, so one request serves runs of different
/// settings.
pub fn line_panel<R: LabelledRows>(runs: &[R], request: &LineRequest) -> Panel {
    let mut panel = Panel {
        title: request.title.to_string(),
        x_label: request.x.to_string(),
        y_label: request.y_label.to_string(),
        logx: request.logx,
        logy: request.logy,
        ..Default::default()
    };
    let several_ys = request.ys.iter().filter(|y| !is_bound(y)).count() > 1;
    for run in runs {
        let group: Vec<&str> = request
            .group
            .iter()
            .copied()
            .filter(|g| run.rows().has(g))
            .collect();
        for (group_key, rows) in run.rows().group_keys(&group) {
            // A group column that is also a setting of the run says nothing new.
            let mut key: Key = run.key().to_vec();
            for part in group_key {
                if !key.iter().any(|(axis, _)| *axis == part.0) {
                    key.push(part);
                }
            }
            let mut owner = key.clone();
            for y in request.ys {
                let Some(points) = xy_points(&rows, request.x, y) else {
                    continue;
                };
                let bound = is_bound(y);
                let series_key = if bound {
                    owner.clone()
                } else if several_ys {
                    let mut k = key.clone();
                    k.push((SERIES_AXIS.to_string(), y.to_string()));
                    owner = k.clone();
                    k
                } else {
                    key.clone()
                };
                panel.series.push(Series {
                    // A bound is listed by its column; a line by its key.
                    label: if bound { y.to_string() } else { String::new() },
                    points,
                    style: if bound { Style::Dashed } else { Style::Line },
                    key: series_key,
                    ..Default::default()
                });
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

/// A path cut where it first leaves the box [x0, x1] x [y0, y1]: the part inside up to the
/// edge, and the arrow (last point inside, point on the edge) that shows it goes on; `None`
/// when it stays inside.
pub fn clip_path(
    points: &[(f64, f64)],
    x: (f64, f64),
    y: (f64, f64),
) -> (Points, Option<[(f64, f64); 2]>) {
    let inside = |p: &(f64, f64)| p.0 >= x.0 && p.0 <= x.1 && p.1 >= y.0 && p.1 <= y.1;
    let Some(out) = points.iter().position(|p| !inside(p)) else {
        return (points.to_vec(), None);
    };
    if out == 0 {
        return (Vec::new(), None);
    }
    let (a, b) = (points[out - 1], points[out]);
    // The largest t in [0, 1] with a + t (b - a) inside the box.
    let mut t = 1.0f64;
    for (lo, hi, p, q) in [(x.0, x.1, a.0, b.0), (y.0, y.1, a.1, b.1)] {
        if q > hi {
            t = t.min((hi - p) / (q - p));
        }
        if q < lo {
            t = t.min((lo - p) / (q - p));
        }
    }
    let edge = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
    let mut kept = points[..out].to_vec();
    kept.push(edge);
    (kept, Some([a, edge]))
}

/// The median of several step paths (each sorted by x) and the min-max band around it, on
/// the union of their x values. A path's value at x is its last point at or before x; past
/// its end it keeps its final value (a run that stopped at the tolerance stays there).
/// Returns (median line, band polygon).
pub fn median_band(paths: &[Points]) -> (Points, Points) {
    median_quantile_band(paths, 0.0)
}

/// The same with the band between the `q` and `1 - q` quantiles (0.25: the interquartile
/// band; 0: min-max). Quantiles interpolate linearly between order statistics.
pub fn median_quantile_band(paths: &[Points], q: f64) -> (Points, Points) {
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
        median.push((x, quantile(&values, 0.5)));
        upper.push((x, quantile(&values, 1.0 - q)));
        lower.push((x, quantile(&values, q)));
    }
    lower.reverse();
    upper.extend(lower);
    (median, upper)
}

/// The q-quantile of sorted values, interpolating between order statistics (numpy's
/// default, "linear").
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let (i, frac) = (h.floor() as usize, h - h.floor());
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}
