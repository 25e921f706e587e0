//! Drawing a [`Figure`] with plotters, the same code for the PNG and the SVG backend.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Colour, Figure, LegendEntry, Marker, Panel, Pattern, Style};

const FONT: &str = "sans-serif";

/// A colour-blind-friendly qualitative palette (the "tab10" colours).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded DejaVu Sans once per process; plotters' ab_glyph backend has no
/// other source of glyphs.
fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded font could not be loaded"))
    }
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Which parts of a figure to draw. A file gets all of them; the tests draw them one at a
/// time to find, in pixel space, where each legend is and where the data are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// Titles, axes, grid, tick and axis labels.
    pub axes: bool,
    /// Series, heatmaps and arrows.
    pub data: bool,
    /// Legends and colour bars.
    pub guides: bool,
}

impl Layers {
    pub const ALL: Layers = Layers {
        axes: true,
        data: true,
        guides: true,
    };
}

/// A figure drawn in memory: `pixels` holds RGB triples row by row.
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

const FIGURE_TITLE_HEIGHT: u32 = 40;

fn figure_size(figure: &Figure) -> (u32, u32) {
    let rows = figure.panels.len().div_ceil(figure.columns.max(1)).max(1) as u32;
    let columns = figure.columns.max(1) as u32;
    let title_height = if figure.title.is_empty() {
        0
    } else {
        FIGURE_TITLE_HEIGHT
    };
    (
        figure.panel_size.0 * columns,
        figure.panel_size.1 * rows + title_height,
    )
}

/// Writes `figure` to `path`; the extension (`.png`, `.svg` or `.pdf`) chooses the format.
pub fn render(figure: &Figure, path: &Path) -> Result<()> {
    register_fonts()?;
    let ext = path.extension().and_then(|e| e.to_str());
    // (A PDF is written whole once converted: a failed conversion leaves no empty file.)
    if matches!(ext, Some("png" | "svg")) {
        // The backends report a file they cannot write only as their own error type: find
        // out first, and say it as a user reads it.
        std::fs::File::create(path)
            .map_err(|e| crate::input_error!("cannot write {}: {e}", path.display()))?;
    }
    let size = figure_size(figure);
    match ext {
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, figure, Layers::ALL)?;
            root.present().map_err(plot_err)
        }
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, figure, Layers::ALL)?;
            root.present().map_err(plot_err)
        }
        Some("pdf") => {
            let svg = render_svg(figure)?;
            std::fs::write(path, svg_to_pdf(&svg)?)
                .map_err(|e| crate::input_error!("cannot write {}: {e}", path.display()))
        }
        _ => Err(crate::input_error!(
            "{}: unknown image type: expected a file name ending in .png, .svg or .pdf",
            path.display()
        )),
    }
}

/// `figure` as the text of an SVG image (for pages that inline it, and for PDFs).
pub fn render_svg(figure: &Figure) -> Result<String> {
    register_fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure_size(figure)).into_drawing_area();
        draw(&root, figure, Layers::ALL)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A PDF of an SVG drawn by lab, by svg2pdf (vector, text kept as text in the embedded
/// DejaVu Sans, which plotters' SVG names `sans-serif`).
fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    use svg2pdf::usvg;
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_font_data(dejavu::sans::regular().to_vec());
    fonts.load_font_data(dejavu::sans::bold().to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    let tree = usvg::Tree::from_str(svg, &options).map_err(plot_err)?;
    svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(plot_err)
}

/// Draws the chosen layers of `figure` in memory, on white.
pub fn render_rgb(figure: &Figure, layers: Layers) -> Result<RgbImage> {
    register_fonts()?;
    let (width, height) = figure_size(figure);
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root, figure, layers)?;
        root.present().map_err(plot_err)?;
    }
    Ok(RgbImage {
        width,
        height,
        pixels,
    })
}

fn centred(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Center))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
    layers: Layers,
) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    let area = if figure.title.is_empty() {
        root.clone()
    } else {
        let (top, rest) = root.split_vertically(FIGURE_TITLE_HEIGHT);
        if layers.axes {
            let (w, h) = top.dim_in_pixel();
            top.draw(&Text::new(
                figure.title.clone(),
                (w as i32 / 2, h as i32 / 2),
                centred(20.0),
            ))
            .map_err(plot_err)?;
        }
        rest
    };
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let cells = area.split_evenly((rows, columns));
    for (panel, cell) in figure.panels.iter().zip(cells.iter()) {
        draw_panel(cell, panel, layers)?;
    }
    Ok(())
}

/// Maps a data value to plot coordinates: log10 on log axes (non-positive values dropped).
fn to_axis(v: f64, log: bool) -> Option<f64> {
    let t = if log {
        if v > 0.0 { v.log10() } else { return None }
    } else {
        v
    };
    t.is_finite().then_some(t)
}

/// Tick label: on log axes the decades (`0.01`, `1`, `1e-6`), nothing between them.
fn tick_label(v: f64, log: bool) -> String {
    if log {
        let k = v.round();
        if (v - k).abs() > 1e-6 {
            return String::new();
        }
        let k = k as i32;
        match k {
            -3..=-1 => format!("{}", 10f64.powi(k)),
            0..=3 => format!("{}", 10i64.pow(k as u32)),
            _ => format!("1e{k}"),
        }
    } else if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.1e}").replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}

/// About `count` round ticks (steps of 1, 2 or 5 times a power of ten) inside [lo, hi].
fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Multiples of the step, so zero is exactly 0 and not -2.1e-25.
    (first..=last).map(|k| k as f64 * step).collect()
}

fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    Some(if log {
        let (a, b) = (lo.floor(), hi.ceil());
        let (a, b) = if a == b { (a - 1.0, b + 1.0) } else { (a, b) };
        // Data on a decade at the edge would lie on the frame: leave a little room.
        let pad = 0.03 * (b - a);
        (
            if lo - a < pad { a - pad } else { a },
            if b - hi < pad { b + pad } else { b },
        )
    } else if lo == hi {
        let pad = lo.abs().max(1.0) * 0.5;
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.04;
        (lo - pad, hi + pad)
    })
}

fn label_count(range: (f64, f64), log: bool) -> usize {
    if log {
        // One label per decade when that is few enough; otherwise plotters picks a round step.
        ((range.1 - range.0) as usize + 1).clamp(2, 10)
    } else {
        8
    }
}

/// Most points a line keeps: a panel is under 1000 pixels wide, and an SVG of a million-row
/// run stays small.
const MAX_LINE_POINTS: usize = 4000;

/// Every k-th point of a long line, always keeping the last.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_LINE_POINTS {
        return points;
    }
    let stride = points.len().div_ceil(MAX_LINE_POINTS);
    let last = *points.last().expect("non-empty");
    let mut kept: Vec<(f64, f64)> = points.into_iter().step_by(stride).collect();
    if kept.last() != Some(&last) {
        kept.push(last);
    }
    kept
}

fn rgb(colour: Colour) -> RGBColor {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    match colour {
        Colour::Palette(i) => PALETTE[i % PALETTE.len()],
        // The light yellow end of viridis is left out: it vanishes on white.
        Colour::Sequential(t) => {
            ViridisRGB.get_color_normalized(SEQUENTIAL_END * t.clamp(0.0, 1.0), 0.0, 1.0)
        }
        Colour::Grey => RGBColor(80, 80, 80),
    }
}

/// The part of viridis that series colours use.
const SEQUENTIAL_END: f64 = 0.88;

/// On and off lengths in pixels.
fn dashes(pattern: Pattern) -> &'static [f64] {
    match pattern {
        Pattern::Solid => &[],
        Pattern::Dashed => &[8.0, 5.0],
        Pattern::Dotted => &[2.0, 4.0],
        Pattern::DashDot => &[9.0, 4.0, 2.0, 4.0],
        Pattern::LongDash => &[16.0, 6.0],
    }
}

/// The drawn pieces of a pixel polyline under a dash pattern.
fn dash_pieces(line: &[(f64, f64)], pattern: &[f64]) -> Vec<Vec<(f64, f64)>> {
    if pattern.is_empty() {
        return vec![line.to_vec()];
    }
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let (mut k, mut left, mut on) = (0usize, pattern[0], true);
    let mut current: Vec<(f64, f64)> = line.first().map_or(Vec::new(), |p| vec![*p]);
    for w in line.windows(2) {
        let (mut a, b) = (w[0], w[1]);
        let mut length = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        while length > left {
            let t = left / length;
            let cut = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            if on {
                current.push(cut);
                pieces.push(std::mem::take(&mut current));
            } else {
                current = vec![cut];
            }
            length -= left;
            a = cut;
            on = !on;
            k = (k + 1) % pattern.len();
            left = pattern[k];
        }
        left -= length;
        if on {
            current.push(b);
        }
    }
    if on && current.len() > 1 {
        pieces.push(current);
    }
    pieces
}

/// What a legend entry shows before its text.
#[derive(Clone, Copy)]
enum Swatch {
    Line(RGBColor, Pattern),
    Marker(RGBColor, Marker),
    Block(RGBColor),
    Arrow(RGBColor),
}

fn swatch_of(entry: &LegendEntry) -> Swatch {
    let colour = rgb(entry.color);
    match entry.style {
        Style::Line | Style::LineWithMarkers => Swatch::Line(colour, entry.pattern),
        Style::Dashed => Swatch::Line(
            colour,
            if entry.pattern == Pattern::Solid {
                Pattern::Dashed
            } else {
                entry.pattern
            },
        ),
        Style::Markers => Swatch::Marker(colour, entry.marker),
        Style::Cloud => Swatch::Marker(RGBColor(170, 170, 170), Marker::Circle),
        Style::Bars | Style::Band | Style::Contour => Swatch::Block(colour),
        Style::Arrow => Swatch::Arrow(colour),
    }
}

/// Draws markers centred at `points` (pixel offsets around each point, so their size does
/// not depend on the axes), half transparent so markers under others still show.
fn draw_markers<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    points: &[CT::From],
    marker: Marker,
    colour: RGBColor,
    size: i32,
) -> Result<()>
where
    CT::From: Clone,
{
    let fill = colour.mix(0.55).filled();
    for p in points {
        let at = EmptyElement::at(p.clone());
        match marker {
            Marker::Circle => area.draw(&(at + Circle::new((0, 0), size, fill))),
            Marker::Triangle => area.draw(&(at + TriangleMarker::new((0, 0), size + 2, fill))),
            Marker::Square => {
                area.draw(&(at + Rectangle::new([(-size, -size), (size, size)], fill)))
            }
            Marker::Cross => area.draw(&(at + Cross::new((0, 0), size, colour.stroke_width(2)))),
        }
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Sizes of the legend in pixels.
const LEGEND_FONT: f64 = 13.0;
const LEGEND_ROW: i32 = 19;
const LEGEND_PAD: i32 = 7;
const SWATCH_WIDTH: i32 = 26;
const MARGIN: i32 = 14;
const X_LABEL_AREA: i32 = 48;
const Y_LABEL_AREA: i32 = 76;
const PANEL_TITLE_HEIGHT: u32 = 30;
/// Colour bar: the bar, its ticks, their labels and the rotated label.
const BAR_WIDTH: i32 = 16;

/// A legend laid out: its entries and the size of a column.
struct Legend {
    entries: Vec<(String, Swatch)>,
    column_width: i32,
}

impl Legend {
    /// The legend of `entries` for a plot `height` tall, at most `room` wide beside it (labels
    /// cut with "..." to fit).
    fn fit(
        mut entries: Vec<(String, Swatch)>,
        height: i32,
        room: i32,
        measure: &dyn Fn(&str) -> i32,
    ) -> Legend {
        let widest = entries.iter().map(|(l, _)| measure(l)).max().unwrap_or(0);
        let mut legend = Legend {
            column_width: widest + SWATCH_WIDTH + 2 * LEGEND_PAD,
            entries: Vec::new(),
        };
        let rows = Legend::rows_for(entries.len(), height);
        let columns = entries.len().div_ceil(rows).max(1) as i32;
        let column_room = (room - LEGEND_PAD) / columns;
        if legend.column_width > column_room {
            let text_room = (column_room - SWATCH_WIDTH - 2 * LEGEND_PAD).max(40);
            for (label, _) in &mut entries {
                if measure(label) > text_room {
                    let mut cut: Vec<char> = label.chars().collect();
                    while !cut.is_empty()
                        && measure(&format!("{}...", cut.iter().collect::<String>())) > text_room
                    {
                        cut.pop();
                    }
                    *label = format!("{}...", cut.iter().collect::<String>().trim_end());
                }
            }
            let widest = entries.iter().map(|(l, _)| measure(l)).max().unwrap_or(0);
            legend.column_width = widest + SWATCH_WIDTH + 2 * LEGEND_PAD;
        }
        legend.entries = entries;
        legend
    }

    /// Rows of a column of `entries` entries beside a plot `height` tall.
    fn rows_for(entries: usize, height: i32) -> usize {
        (((height - 2 * LEGEND_PAD) / LEGEND_ROW).max(1) as usize).min(entries.max(1))
    }

    fn rows_per_column(&self, height: i32) -> usize {
        Legend::rows_for(self.entries.len(), height)
    }

    /// (width, height) when the legend may be `height` tall.
    fn size(&self, height: i32) -> (i32, i32) {
        let rows = self.rows_per_column(height);
        let columns = self.entries.len().div_ceil(rows) as i32;
        (
            columns * self.column_width + LEGEND_PAD,
            rows as i32 * LEGEND_ROW + 2 * LEGEND_PAD,
        )
    }
}

/// A colour bar: positions lo..hi on the full viridis map (a heatmap) or its series part (a
/// sweep's ordered setting).
struct Bar {
    lo: f64,
    hi: f64,
    log: bool,
    label: String,
    truncated_map: bool,
    /// Marked values (positions, text), else round values.
    marks: Vec<(f64, String)>,
}

impl Bar {
    fn colour(&self, position: f64) -> RGBColor {
        use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
        let t = if self.hi > self.lo {
            (position - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        let end = if self.truncated_map {
            SEQUENTIAL_END
        } else {
            1.0
        };
        ViridisRGB.get_color_normalized(end * t.clamp(0.0, 1.0), 0.0, 1.0)
    }

    /// Tick positions and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if !self.marks.is_empty() {
            return self.marks.clone();
        }
        if self.log {
            let decades: Vec<f64> = ((self.lo.ceil() as i64)..=(self.hi.floor() as i64))
                .map(|k| k as f64)
                .collect();
            if decades.len() >= 2 {
                // At most about eight labelled decades.
                let every = decades.len().div_ceil(8) as i64;
                return decades
                    .into_iter()
                    .filter(|d| (*d as i64).rem_euclid(every) == 0)
                    .map(|d| (d, tick_label(d, true)))
                    .collect();
            }
            // Less than a decade: round values, placed at their logarithms.
            return nice_ticks(10f64.powf(self.lo), 10f64.powf(self.hi), 6)
                .into_iter()
                .filter(|v| *v > 0.0)
                .map(|v| (v.log10(), tick_label(v, false)))
                .collect();
        }
        nice_ticks(self.lo, self.hi, 5)
            .into_iter()
            .map(|v| (v, tick_label(v, false)))
            .collect()
    }

    fn width(&self, measure: &dyn Fn(&str) -> i32) -> i32 {
        let widest = self
            .ticks()
            .iter()
            .map(|(_, t)| measure(t))
            .max()
            .unwrap_or(0);
        BAR_WIDTH + 6 + widest + 10 + 20 + LEGEND_PAD
    }
}

/// What the data cover, in pixels: for finding a corner the legend may take.
#[derive(Default)]
struct Covered {
    lines: Vec<Vec<(f64, f64)>>,
    polygons: Vec<Vec<(f64, f64)>>,
    boxes: Vec<[f64; 4]>,
}

/// Whether the segment a-b meets the box [x0, y0, x1, y1].
fn segment_meets_box(a: (f64, f64), b: (f64, f64), r: [f64; 4]) -> bool {
    // Liang-Barsky clipping: the part of the segment inside each slab.
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    for (p, q) in [
        (-dx, a.0 - r[0]),
        (dx, r[2] - a.0),
        (-dy, a.1 - r[1]),
        (dy, r[3] - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

fn inside_polygon(p: (f64, f64), polygon: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + n - 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1) {
            inside = !inside;
        }
    }
    inside
}

impl Covered {
    fn meets(&self, r: [f64; 4]) -> bool {
        let line_meets = |line: &[(f64, f64)]| match line {
            [p] => segment_meets_box(*p, *p, r),
            _ => line.windows(2).any(|w| segment_meets_box(w[0], w[1], r)),
        };
        self.lines.iter().any(|l| line_meets(l))
            || self
                .boxes
                .iter()
                .any(|b| b[0] <= r[2] && r[0] <= b[2] && b[1] <= r[3] && r[1] <= b[3])
            || self.polygons.iter().any(|poly| {
                let mut closed = poly.clone();
                if let Some(first) = poly.first() {
                    closed.push(*first);
                }
                line_meets(&closed) || inside_polygon((r[0], r[1]), poly)
            })
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn build_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<Chart<'a, DB>> {
    ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(plot_err)
}

/// The pixels the series cover on this chart.
fn covered<DB: DrawingBackend>(
    chart: &Chart<'_, DB>,
    panel: &Panel,
    series: &[(usize, Vec<(f64, f64)>)],
) -> Covered {
    let px = |p: &(f64, f64)| {
        let (x, y) = chart.backend_coord(p);
        (x as f64, y as f64)
    };
    let mut c = Covered::default();
    for (i, points) in series {
        let finite = points.iter().filter(|p| p.0.is_finite());
        match panel.series[*i].style {
            Style::Band => c.polygons.push(finite.map(px).collect()),
            Style::Bars => {
                let half = bar_half_width(points);
                for &(x, y) in points {
                    let (a, b) = (px(&(x - half, 0.0)), px(&(x + half, y)));
                    c.boxes
                        .push([a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)]);
                }
            }
            Style::Cloud | Style::Markers => {
                // A marker's reach: its size, 2 more for a triangle, 1 for a stroke.
                let spec = &panel.series[*i];
                let size = if spec.marker_size > 0 {
                    spec.marker_size
                } else {
                    3
                };
                let r = f64::from(size + 3);
                for p in finite {
                    let (x, y) = px(p);
                    c.boxes.push([x - r, y - r, x + r, y + r]);
                }
            }
            _ => {
                for piece in points.split(|p| p.0.is_nan()) {
                    if !piece.is_empty() {
                        c.lines.push(piece.iter().map(px).collect());
                    }
                }
            }
        }
    }
    for &[x, y, dx, dy] in &panel.arrows {
        if let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
            to_axis(x, panel.logx),
            to_axis(y, panel.logy),
            to_axis(x + dx, panel.logx),
            to_axis(y + dy, panel.logy),
        ) {
            c.lines.push(vec![px(&(x0, y0)), px(&(x1, y1))]);
        }
    }
    c
}

fn bar_half_width(points: &[(f64, f64)]) -> f64 {
    let width = points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).abs())
        .fold(f64::INFINITY, f64::min);
    if width.is_finite() && width > 0.0 {
        0.45 * width
    } else {
        0.45
    }
}

/// Where the legend goes.
enum LegendPlace {
    None,
    /// Top-left pixel (absolute) inside the plot area.
    Inside(i32, i32),
    Beside,
}

fn draw_panel<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    panel: &Panel,
    layers: Layers,
) -> Result<()> {
    let mut panel = panel.clone();
    let guides = super::style::apply(&mut panel);
    let panel = &panel;
    let body = if panel.title.is_empty() {
        cell.clone()
    } else {
        let (top, rest) = cell.split_vertically(PANEL_TITLE_HEIGHT);
        if layers.axes {
            let (w, h) = top.dim_in_pixel();
            top.draw(&Text::new(
                panel.title.clone(),
                (w as i32 / 2, h as i32 / 2 + 4),
                centred(18.0),
            ))
            .map_err(plot_err)?;
        }
        rest
    };
    let series: Vec<(usize, Vec<(f64, f64)>)> = panel
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Contour lines keep their breaks as NaN points.
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(
                    |&(x, y)| match (to_axis(x, panel.logx), to_axis(y, panel.logy)) {
                        (Some(x), Some(y)) => Some((x, y)),
                        _ if s.style == Style::Contour => Some((f64::NAN, f64::NAN)),
                        _ => None,
                    },
                )
                .collect();
            let points = match s.style {
                Style::Cloud | Style::Band | Style::Contour | Style::Bars | Style::Markers => {
                    points
                }
                _ => thin(points),
            };
            (i, points)
        })
        .collect();
    let corners: Vec<(f64, f64)> = panel
        .heatmap
        .iter()
        .flat_map(|h| [(h.x_range.0, h.y_range.0), (h.x_range.1, h.y_range.1)])
        .filter_map(|(x, y)| Some((to_axis(x, panel.logx)?, to_axis(y, panel.logy)?)))
        .collect();
    let all = || {
        series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|p| p.0.is_finite())
            .chain(corners.iter())
    };
    // Bars start at 0 (at 1 on a log axis): the axis shows where.
    let bar_base: Option<f64> = panel
        .series
        .iter()
        .any(|s| s.style == Style::Bars)
        .then_some(0.0);
    let (Some(xr), Some(yr)) = (
        axis_range(all().map(|p| p.0), panel.logx),
        axis_range(all().map(|p| p.1).chain(bar_base), panel.logy),
    ) else {
        let message = format!(
            "{}: nothing to draw{}",
            panel.title,
            if panel.logy {
                " (no positive values on the log axis)"
            } else {
                ""
            }
        );
        if layers.axes {
            body.draw(&Text::new(message, (40, 40), (FONT, 16).into_font()))
                .map_err(plot_err)?;
        }
        return Ok(());
    };

    // The guides: legend entries and a colour bar.
    let legend_font = (FONT, LEGEND_FONT).into_font();
    let measure = |text: &str| -> i32 {
        body.estimate_text_size(text, &TextStyle::from(legend_font.clone()))
            .map_or(7 * text.len() as i32, |(w, _)| w as i32)
    };
    let mut entries: Vec<(String, Swatch)> = Vec::new();
    if let Some(map) = &panel.heatmap
        && let Some(names) = &map.categories
    {
        // The categories the map shows.
        for (k, name) in names.iter().enumerate() {
            if map.values.contains(&(k as f64)) {
                entries.push((name.clone(), Swatch::Block(category_colour(k))));
            }
        }
    }
    for entry in &guides.legend {
        entries.push((entry.label.clone(), swatch_of(entry)));
    }
    let bar = heatmap_bar(panel).or_else(|| {
        guides.colour_bar.as_ref().map(|b| Bar {
            lo: if b.log { b.range.0.log10() } else { b.range.0 },
            hi: if b.log { b.range.1.log10() } else { b.range.1 },
            log: b.log,
            label: b.label.clone(),
            truncated_map: true,
            marks: b
                .ticks
                .iter()
                .map(|(v, t)| (if b.log { v.log10() } else { *v }, t.clone()))
                .collect(),
        })
    });
    let bar_width = bar.as_ref().map_or(0, |b| b.width(&measure));
    let (body_w, _) = body.dim_in_pixel();
    let body_w = body_w as i32;
    // The plot area's height does not depend on what is beside it: measure it once, and lay
    // the legend out for it whether it goes inside or beside.
    // A chart beside the colour bar, as the plot would be with the legend inside.
    let (trial, _) = body.split_horizontally(body_w - bar_width);
    let trial = build_chart(&trial, xr, yr)?;
    let (trial_xs, trial_ys) = trial.plotting_area().get_pixel_range();
    let plot_height = trial_ys.end - trial_ys.start;
    // Inside, the legend is whole; beside the plot, legend and colour bar take at most 45% of
    // the panel's width, and longer labels are cut with an ellipsis.
    let strip_room = (body_w * 45 / 100 - bar_width).max(0);
    let mut legend = Legend::fit(entries.clone(), plot_height, i32::MAX, &measure);

    // A corner of the plot area if the legend covers no data there; otherwise beside it.
    let mut place = LegendPlace::None;
    if !legend.entries.is_empty() {
        place = LegendPlace::Beside;
        if panel.heatmap.is_none() {
            let (xs, ys) = (trial_xs, trial_ys);
            let (w, h) = legend.size(plot_height);
            let cover = covered(&trial, panel, &series);
            let inset = 6;
            let candidates = [
                (xs.end - inset - w, ys.start + inset),
                (xs.start + inset, ys.start + inset),
                (xs.end - inset - w, ys.end - inset - h),
                (xs.start + inset, ys.end - inset - h),
            ];
            // The legend and 3 pixels around it must be free of data.
            let free = |&&(x, y): &&(i32, i32)| {
                let r = [x - 3, y - 3, x + w + 3, y + h + 3].map(f64::from);
                !cover.meets(r)
            };
            if w < xs.end - xs.start - 2 * inset
                && h < ys.end - ys.start - 2 * inset
                && let Some(&(x, y)) = candidates.iter().find(free)
            {
                place = LegendPlace::Inside(x, y);
            }
        }
    }
    if let LegendPlace::Beside = place {
        legend = Legend::fit(entries, plot_height, strip_room, &measure);
    }
    let legend_beside = match place {
        LegendPlace::Beside => legend.size(plot_height).0 + LEGEND_PAD,
        _ => 0,
    };
    let (plot_area, _) = body.split_horizontally(body_w - bar_width - legend_beside);
    let mut chart = build_chart(&plot_area, xr, yr)?;
    let (logx, logy) = (panel.logx, panel.logy);
    if layers.axes {
        // plotters places ticks at lo + k * step: a tick at zero may carry round-off.
        let snap = |v: f64, r: (f64, f64)| if v.abs() < 1e-9 * (r.1 - r.0) { 0.0 } else { v };
        let x_fmt = move |v: &f64| tick_label(snap(*v, xr), logx);
        let y_fmt = move |v: &f64| tick_label(snap(*v, yr), logy);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .x_labels(if panel.x_names.is_empty() {
                label_count(xr, logx)
            } else {
                0
            })
            .y_labels(label_count(yr, logy))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 14).into_font())
            .axis_desc_style((FONT, 15).into_font())
            .light_line_style(RGBColor(240, 240, 240));
        mesh.draw().map_err(plot_err)?;
        // Category names under the axis, a line each part ("pgd\n195/200").
        for (x, name) in &panel.x_names {
            let (px, _) = chart.backend_coord(&(*x, yr.0));
            let (_, py) = chart.plotting_area().get_pixel_range();
            for (k, line) in name.lines().enumerate() {
                let at = (
                    px - body.get_base_pixel().0,
                    py.end - body.get_base_pixel().1 + 14 + 16 * k as i32,
                );
                body.draw(&Text::new(line.to_string(), at, centred(14.0)))
                    .map_err(plot_err)?;
            }
        }
    }
    if layers.data {
        draw_data(&mut chart, panel, &series)?;
    }
    if layers.guides {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let base = body.get_base_pixel();
        let mut strip_x = xs.end + MARGIN;
        if let Some(bar) = &bar {
            draw_bar(
                &body,
                bar,
                (strip_x - base.0, ys.start - base.1),
                ys.end - ys.start,
            )?;
            strip_x += bar_width;
        }
        match place {
            LegendPlace::Inside(x, y) => {
                draw_legend(&body, &legend, (x - base.0, y - base.1), plot_height)?
            }
            LegendPlace::Beside => draw_legend(
                &body,
                &legend,
                (strip_x - base.0, ys.start - base.1),
                plot_height,
            )?,
            LegendPlace::None => {}
        }
    }
    Ok(())
}

fn category_colour(k: usize) -> RGBColor {
    let c = PALETTE[k % PALETTE.len()];
    let mix = |a: u8| ((a as f64 + 255.0) / 2.0) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// The colour bar of a continuous heatmap (log10 values when the map is log).
fn heatmap_bar(panel: &Panel) -> Option<Bar> {
    let map = panel.heatmap.as_ref()?;
    if map.categories.is_some() {
        return None;
    }
    let (lo, hi) = heatmap_range(map);
    (lo <= hi).then(|| Bar {
        lo,
        hi,
        log: map.log,
        label: map.label.clone(),
        truncated_map: false,
        marks: Vec::new(),
    })
}

/// The range of a continuous heatmap's shown values (log10 when `log`).
fn heatmap_range(map: &super::Heatmap) -> (f64, f64) {
    let (lo, hi) = map
        .values
        .iter()
        .map(|&v| if map.log { v.log10() } else { v })
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if map.log {
        (lo.max(hi - LOG_MAP_DECADES), hi)
    } else {
        (lo, hi)
    }
}

/// Most decades a log colour map spans: a loss that is exactly zero on a curve reaches 1e-31
/// beside it, and forty decades would leave one colour for the rest. Lower values take the
/// darkest colour.
const LOG_MAP_DECADES: f64 = 12.0;

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &Legend,
    (x0, y0): (i32, i32),
    height: i32,
) -> Result<()> {
    let (w, h) = legend.size(height);
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        WHITE.mix(0.9).filled(),
    ))
    .map_err(plot_err)?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        RGBColor(180, 180, 180).stroke_width(1),
    ))
    .map_err(plot_err)?;
    let rows = legend.rows_per_column(height);
    let text =
        TextStyle::from((FONT, LEGEND_FONT).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, (label, swatch)) in legend.entries.iter().enumerate() {
        let x = x0 + LEGEND_PAD + (k / rows) as i32 * legend.column_width;
        let y = y0 + LEGEND_PAD + (k % rows) as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        match *swatch {
            Swatch::Line(colour, pattern) => {
                let line = [
                    (x as f64, y as f64),
                    ((x + SWATCH_WIDTH - 6) as f64, y as f64),
                ];
                for piece in dash_pieces(&line, dashes(pattern)) {
                    let piece: Vec<(i32, i32)> =
                        piece.iter().map(|p| (p.0 as i32, p.1 as i32)).collect();
                    area.draw(&PathElement::new(piece, colour.stroke_width(2)))
                        .map_err(plot_err)?;
                }
            }
            Swatch::Marker(colour, marker) => {
                draw_markers(area, &[(x + 10, y)], marker, colour, 4)?;
            }
            Swatch::Arrow(colour) => {
                draw_arrow(
                    area,
                    (x as f64, y as f64),
                    ((x + SWATCH_WIDTH - 6) as f64, y as f64),
                    colour,
                )?;
            }
            Swatch::Block(colour) => {
                area.draw(&Rectangle::new(
                    [(x + 2, y - 6), (x + 16, y + 6)],
                    colour.filled(),
                ))
                .map_err(plot_err)?;
            }
        }
        area.draw(&Text::new(
            label.clone(),
            (x + SWATCH_WIDTH, y),
            text.clone(),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

fn draw_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bar: &Bar,
    (x0, y0): (i32, i32),
    height: i32,
) -> Result<()> {
    let height = height.max(40);
    let steps = height.max(1);
    let span = bar.hi - bar.lo;
    let position = |row: i32| bar.lo + span * (1.0 - row as f64 / (steps - 1).max(1) as f64);
    for row in 0..steps {
        area.draw(&Rectangle::new(
            [(x0, y0 + row), (x0 + BAR_WIDTH, y0 + row + 1)],
            bar.colour(position(row)).filled(),
        ))
        .map_err(plot_err)?;
    }
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + BAR_WIDTH, y0 + height)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))
    .map_err(plot_err)?;
    let text = TextStyle::from((FONT, 13.0).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut widest = 0;
    // Labels at least a line apart: a dense sweep marks every other value, and so on.
    let mut last_y = i32::MAX;
    for (v, label) in bar.ticks() {
        let t = if span > 0.0 { (v - bar.lo) / span } else { 0.5 };
        let y = y0 + ((1.0 - t) * (height - 1) as f64).round() as i32;
        if (last_y - y).abs() < 16 {
            continue;
        }
        last_y = y;
        area.draw(&PathElement::new(
            vec![(x0 + BAR_WIDTH, y), (x0 + BAR_WIDTH + 4, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err)?;
        widest = widest.max(
            area.estimate_text_size(&label, &text)
                .map_or(0, |(w, _)| w as i32),
        );
        area.draw(&Text::new(label, (x0 + BAR_WIDTH + 6, y), text.clone()))
            .map_err(plot_err)?;
    }
    let rotated = TextStyle::from(
        (FONT, 14.0)
            .into_font()
            .transform(plotters::style::FontTransform::Rotate270),
    )
    .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        bar.label.clone(),
        (x0 + BAR_WIDTH + 6 + widest + 14, y0 + height / 2),
        rotated,
    ))
    .map_err(plot_err)?;
    Ok(())
}

/// An arrow in pixels: a shaft and a head of two 9-pixel strokes at 25 degrees.
fn draw_arrow<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    from: (f64, f64),
    to: (f64, f64),
    colour: RGBColor,
) -> Result<()> {
    let (dx, dy) = (from.0 - to.0, from.1 - to.1);
    let length = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (9.0 * dx / length, 9.0 * dy / length);
    let head = |angle: f64| {
        let (c, s) = (angle.cos(), angle.sin());
        (
            (to.0 + c * ux - s * uy).round() as i32,
            (to.1 + s * ux + c * uy).round() as i32,
        )
    };
    let tip = (to.0.round() as i32, to.1.round() as i32);
    let style = colour.stroke_width(2);
    area.draw(&PathElement::new(
        vec![(from.0.round() as i32, from.1.round() as i32), tip],
        style,
    ))
    .map_err(plot_err)?;
    area.draw(&PathElement::new(vec![head(0.44), tip, head(-0.44)], style))
        .map_err(plot_err)
}

/// Draws a line through pixel points with a dash pattern, on the plot area.
fn draw_pixel_line<DB: DrawingBackend>(
    chart: &Chart<'_, DB>,
    points: &[(f64, f64)],
    colour: RGBColor,
    pattern: Pattern,
    width: u32,
) -> Result<()> {
    let area = chart.plotting_area().strip_coord_spec();
    let base = chart.plotting_area().get_base_pixel();
    let pixels: Vec<(f64, f64)> = points
        .iter()
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            ((x - base.0) as f64, (y - base.1) as f64)
        })
        .collect();
    for piece in dash_pieces(&pixels, dashes(pattern)) {
        let piece: Vec<(i32, i32)> = piece
            .iter()
            .map(|p| (p.0.round() as i32, p.1.round() as i32))
            .collect();
        area.draw(&PathElement::new(piece, colour.stroke_width(width)))
            .map_err(plot_err)?;
    }
    Ok(())
}

fn draw_data<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    panel: &Panel,
    series: &[(usize, Vec<(f64, f64)>)],
) -> Result<()> {
    let (logx, logy) = (panel.logx, panel.logy);
    if let Some(map) = &panel.heatmap {
        draw_heatmap(chart, map)?;
    }
    for &[x, y, dx, dy] in &panel.arrows {
        let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
            to_axis(x, logx),
            to_axis(y, logy),
            to_axis(x + dx, logx),
            to_axis(y + dy, logy),
        ) else {
            continue;
        };
        // A head of two short strokes at 25 degrees either side of the shaft.
        let (ux, uy) = (x0 - x1, y0 - y1);
        let head = |angle: f64| {
            let (c, s) = (angle.cos(), angle.sin());
            (x1 + 0.3 * (c * ux - s * uy), y1 + 0.3 * (s * ux + c * uy))
        };
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, y0), (x1, y1)],
                grey.stroke_width(1),
            )))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![head(0.44), (x1, y1), head(-0.44)],
                grey.stroke_width(1),
            )))
            .map_err(plot_err)?;
    }
    for (i, points) in series {
        let spec = &panel.series[*i];
        if points.is_empty() {
            continue;
        }
        let color = rgb(spec.color);
        match spec.style {
            Style::Line | Style::LineWithMarkers => {
                // Over a heatmap a line gets a white edge, so no colour of the map hides it.
                if panel.heatmap.is_some() {
                    draw_pixel_line(chart, points, WHITE, Pattern::Solid, 5)?;
                }
                draw_pixel_line(chart, points, color, spec.pattern, 2)?;
                // A line of one point is a point.
                if points.len() == 1 {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(plot_err)?;
                }
                if spec.style == Style::LineWithMarkers {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(plot_err)?;
                }
            }
            Style::Dashed => {
                let pattern = if spec.pattern == Pattern::Solid {
                    Pattern::Dashed
                } else {
                    spec.pattern
                };
                draw_pixel_line(chart, points, color, pattern, 2)?;
            }
            Style::Markers => {
                let size = if spec.marker_size > 0 {
                    spec.marker_size
                } else {
                    3
                };
                draw_markers(chart.plotting_area(), points, spec.marker, color, size)?;
            }
            Style::Arrow => {
                if let [from, to] = points[..] {
                    let area = chart.plotting_area().strip_coord_spec();
                    let base = chart.plotting_area().get_base_pixel();
                    let px = |p: (f64, f64)| {
                        let (x, y) = chart.backend_coord(&p);
                        ((x - base.0) as f64, (y - base.1) as f64)
                    };
                    draw_arrow(&area, px(from), px(to), color)?;
                }
            }
            Style::Contour => {
                let grey = RGBColor(255, 255, 255).mix(0.7);
                for piece in points.split(|p| p.0.is_nan()) {
                    if piece.len() > 1 {
                        chart
                            .draw_series(LineSeries::new(
                                piece.iter().copied(),
                                grey.stroke_width(1),
                            ))
                            .map_err(plot_err)?;
                    }
                }
            }
            Style::Bars => {
                let half = bar_half_width(points);
                chart
                    .draw_series(points.iter().map(|&(x, y)| {
                        Rectangle::new([(x - half, 0.0), (x + half, y)], color.mix(0.75).filled())
                    }))
                    .map_err(plot_err)?;
            }
            Style::Band => {
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        points.clone(),
                        color.mix(0.18).filled(),
                    )))
                    .map_err(plot_err)?;
            }
            Style::Cloud => {
                let grey = RGBColor(170, 170, 170);
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 1, grey.filled())))
                    .map_err(plot_err)?;
            }
        }
    }
    Ok(())
}

/// Draws a heatmap's cells.
fn draw_heatmap<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, map: &super::Heatmap) -> Result<()> {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let shown = |v: f64| if map.log { v.log10() } else { v };
    let (lo, hi) = heatmap_range(map);
    let (hx, hy) = (
        0.5 * (map.x_range.1 - map.x_range.0) / (map.nx.max(2) - 1) as f64,
        0.5 * (map.y_range.1 - map.y_range.0) / (map.ny.max(2) - 1) as f64,
    );
    let cell_color = |v: f64| -> RGBColor {
        match &map.categories {
            Some(_) => category_colour(v as usize),
            None => {
                let v = shown(v);
                if !v.is_finite() {
                    RGBColor(255, 255, 255)
                } else if hi > lo {
                    ViridisRGB.get_color_normalized(v.clamp(lo, hi), lo, hi)
                } else {
                    // A constant field: the middle colour, as its colour bar shows it.
                    ViridisRGB.get_color_normalized(0.5, 0.0, 1.0)
                }
            }
        }
    };
    chart
        .draw_series((0..map.ny).flat_map(|iy| {
            (0..map.nx).map(move |ix| {
                let (x, y) = map.point(ix, iy);
                let v = map.values[iy * map.nx + ix];
                Rectangle::new([(x - hx, y - hy), (x + hx, y + hy)], cell_color(v).filled())
            })
        }))
        .map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tick_labels_are_decades() {
        assert_eq!(tick_label(-2.0, true), "0.01");
        assert_eq!(tick_label(0.0, true), "1");
        assert_eq!(tick_label(2.0, true), "100");
        assert_eq!(tick_label(-12.0, true), "1e-12");
        assert_eq!(tick_label(-1.5, true), "");
        assert_eq!(tick_label(0.30000000000000004, false), "0.3");
        assert_eq!(tick_label(25000.0, false), "25000");
        assert_eq!(tick_label(250000.0, false), "2.5e5");
        assert_eq!(tick_label(1e-4, false), "1e-4");
    }

    #[test]
    fn long_lines_are_thinned_keeping_both_ends() {
        let points: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, 1.0)).collect();
        let kept = thin(points);
        assert!(kept.len() <= MAX_LINE_POINTS + 1);
        assert_eq!(kept[0].0, 0.0);
        assert_eq!(kept.last().unwrap().0, 10_000.0);
    }

    #[test]
    fn median_band_follows_step_paths_and_carries_ends() {
        let paths = vec![
            vec![(0.0, 1.0), (10.0, 0.1), (20.0, 0.01)],
            vec![(0.0, 1.0), (5.0, 0.5)],
            vec![(0.0, 1.0), (15.0, 0.001)],
        ];
        let (median, band) = crate::plot::median_band(&paths);
        let at = |x: f64| median.iter().find(|p| p.0 == x).unwrap().1;
        assert_eq!(at(0.0), 1.0);
        assert_eq!(at(5.0), 1.0); // values 1, 0.5, 1
        assert_eq!(at(10.0), 0.5); // 0.1, 0.5 (carried), 1
        assert_eq!(at(20.0), 0.01); // 0.01, 0.5, 0.001
        // Upper edge forward, lower edge back: max then min at x = 20.
        assert_eq!(band.len(), 2 * median.len());
        assert_eq!(band[median.len() - 1], (20.0, 0.5));
        assert_eq!(band[median.len()], (20.0, 0.001));
    }

    #[test]
    fn quartile_bands_match_numpy_percentiles() {
        // numpy.percentile([1, 2, 3, 4, 10], [25, 50, 75]) = [2, 3, 4].
        let paths: Vec<Vec<(f64, f64)>> = [1.0, 2.0, 3.0, 4.0, 10.0]
            .iter()
            .map(|&v| vec![(0.0, v)])
            .collect();
        let (median, band) = crate::plot::median_quantile_band(&paths, 0.25);
        assert_eq!(median, vec![(0.0, 3.0)]);
        assert_eq!(band, vec![(0.0, 4.0), (0.0, 2.0)]);
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75.
        let (_, band) = crate::plot::median_quantile_band(&paths[..4], 0.25);
        assert_eq!(band[1], (0.0, 1.75));
    }

    #[test]
    fn ticks_are_round_multiples_and_zero_is_exact() {
        // The round step above 0.12 / 5 is 0.05; zero is exactly 0, not -2.1e-25.
        assert_eq!(nice_ticks(-2.1e-25, 0.12, 5), vec![0.0, 0.05, 0.1]);
        let labels: Vec<String> = nice_ticks(-2.1e-25, 0.12, 6)
            .into_iter()
            .map(|v| tick_label(v, false))
            .collect();
        assert_eq!(labels, ["0", "0.02", "0.04", "0.06", "0.08", "0.1", "0.12"]);
        assert!(nice_ticks(-0.3, 0.3, 6).contains(&0.0));
    }

    #[test]
    fn dashes_cover_the_pattern_fraction_of_a_line() {
        let line = [(0.0, 0.0), (100.0, 0.0)];
        let pieces = dash_pieces(&line, &[8.0, 5.0]);
        let drawn: f64 = pieces.iter().map(|p| p.last().unwrap().0 - p[0].0).sum();
        // 7 whole periods of 13 and 9 px more: 7 * 8 + 8 = 64.
        assert!((drawn - 64.0).abs() < 1e-9, "{drawn}");
        assert_eq!(dash_pieces(&line, &[]), vec![line.to_vec()]);
    }

    #[test]
    fn boxes_meet_segments_that_cross_them_without_a_point_inside() {
        let r = [10.0, 10.0, 20.0, 20.0];
        assert!(segment_meets_box((0.0, 15.0), (30.0, 15.0), r));
        assert!(!segment_meets_box((0.0, 0.0), (30.0, 5.0), r));
        assert!(segment_meets_box((0.0, 0.0), (30.0, 30.0), r));
        assert!(inside_polygon(
            (15.0, 15.0),
            &[(0.0, 0.0), (30.0, 0.0), (30.0, 30.0), (0.0, 30.0)]
        ));
    }

    #[test]
    fn a_line_of_one_point_is_drawn_as_a_point() {
        let panel = Panel {
            series: vec![crate::plot::Series {
                points: vec![(2.0, 1.0)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let data_only = Layers {
            axes: false,
            data: true,
            guides: false,
        };
        let image = render_rgb(&Figure::single(panel), data_only).unwrap();
        let ink = image.pixels.iter().filter(|&&p| p != 255).count();
        assert!(ink > 10, "{ink} coloured bytes");
    }

    #[test]
    fn log_axis_drops_non_positive_values() {
        assert_eq!(to_axis(0.0, true), None);
        assert_eq!(to_axis(-1.0, true), None);
        assert_eq!(to_axis(100.0, true), Some(2.0));
        assert_eq!(to_axis(-1.0, false), Some(-1.0));
    }
}
