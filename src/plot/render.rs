//! Drawing a [`Figure`] with plotters, the same code for the PNG and the SVG backend.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{Figure, Panel, Style};

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

/// Writes `figure` to `path`; the extension (`.png` or `.svg`) chooses the format.
pub fn render(figure: &Figure, path: &Path) -> Result<()> {
    register_fonts()?;
    let ext = path.extension().and_then(|e| e.to_str());
    if matches!(ext, Some("png" | "svg")) {
        // The backends report a file they cannot write only as their own error type: find
        // out first, and say it as a user reads it.
        std::fs::File::create(path)
            .map_err(|e| crate::input_error!("cannot write {}: {e}", path.display()))?;
    }
    let rows = figure.panels.len().div_ceil(figure.columns.max(1)).max(1) as u32;
    let columns = figure.columns.max(1) as u32;
    let title_height = if figure.title.is_empty() { 0 } else { 40 };
    let size = (
        figure.panel_size.0 * columns,
        figure.panel_size.1 * rows + title_height,
    );
    match ext {
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, figure)?;
            root.present().map_err(plot_err)
        }
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, figure)?;
            root.present().map_err(plot_err)
        }
        _ => Err(crate::input_error!(
            "{}: unknown image type: expected a file name ending in .png or .svg",
            path.display()
        )),
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    let area = if figure.title.is_empty() {
        root.clone()
    } else {
        root.titled(&figure.title, (FONT, 20).into_font())
            .map_err(plot_err)?
    };
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let cells = area.split_evenly((rows, columns));
    for (panel, cell) in figure.panels.iter().zip(cells.iter()) {
        draw_panel(cell, panel)?;
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
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}

fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    Some(if log {
        let (lo, hi) = (lo.floor(), hi.ceil());
        if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        }
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

/// The corner of the plot area with the fewest data points, for the legend.
fn emptiest_corner(
    series: &[(usize, Vec<(f64, f64)>)],
    xr: (f64, f64),
    yr: (f64, f64),
) -> SeriesLabelPosition {
    // (position, x side, y side): side true = high end of the axis.
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let fraction = |v: f64, r: (f64, f64)| (v - r.0) / (r.1 - r.0);
    let count = |high_x: bool, high_y: bool| {
        series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|&&(x, y)| {
                let (fx, fy) = (fraction(x, xr), fraction(y, yr));
                (if high_x { fx > 0.55 } else { fx < 0.45 })
                    && (if high_y { fy > 0.6 } else { fy < 0.4 })
            })
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|&(_, hx, hy)| count(hx, hy))
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
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

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<()> {
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
    let (Some(xr), Some(yr)) = (
        axis_range(all().map(|p| p.0), panel.logx),
        axis_range(all().map(|p| p.1), panel.logy),
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
        area.draw(&Text::new(message, (40, 40), (FONT, 16).into_font()))
            .map_err(plot_err)?;
        return Ok(());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18).into_font())
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(76)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(plot_err)?;
    let (logx, logy) = (panel.logx, panel.logy);
    let x_fmt = move |v: &f64| tick_label(*v, logx);
    let y_fmt = move |v: &f64| tick_label(*v, logy);
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_labels(label_count(xr, logx))
        .y_labels(label_count(yr, logy))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 14).into_font())
        .axis_desc_style((FONT, 15).into_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(plot_err)?;

    let mut has_legend = false;
    if let Some(map) = &panel.heatmap {
        has_legend |= draw_heatmap(&mut chart, map)?;
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
    for (i, points) in &series {
        let spec = &panel.series[*i];
        if points.is_empty() {
            continue;
        }
        let color = PALETTE[spec.color % PALETTE.len()];
        let line = color.stroke_width(2);
        let label = spec.label.clone();
        match spec.style {
            Style::Line => {
                let drawn = chart
                    .draw_series(LineSeries::new(points.iter().copied(), line))
                    .map_err(plot_err)?;
                if !label.is_empty() {
                    has_legend = true;
                    drawn.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                    });
                }
            }
            Style::Dashed => {
                let drawn = chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().copied(),
                        7,
                        5,
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
                if !label.is_empty() {
                    has_legend = true;
                    drawn.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
                    });
                }
            }
            Style::LineWithMarkers | Style::Markers => {
                if spec.style == Style::LineWithMarkers {
                    chart
                        .draw_series(LineSeries::new(points.iter().copied(), line))
                        .map_err(plot_err)?;
                }
                let drawn = chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                    .map_err(plot_err)?;
                if !label.is_empty() {
                    has_legend = true;
                    drawn
                        .label(label)
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
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
                let width = points
                    .windows(2)
                    .map(|w| (w[1].0 - w[0].0).abs())
                    .fold(f64::INFINITY, f64::min);
                let half = if width.is_finite() { 0.45 * width } else { 0.5 };
                let drawn = chart
                    .draw_series(points.iter().map(|&(x, y)| {
                        Rectangle::new([(x - half, 0.0), (x + half, y)], color.mix(0.75).filled())
                    }))
                    .map_err(plot_err)?;
                if !label.is_empty() {
                    has_legend = true;
                    drawn.label(label).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
                }
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
                let drawn = chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 1, grey.filled())))
                    .map_err(plot_err)?;
                if !label.is_empty() {
                    has_legend = true;
                    drawn
                        .label(label)
                        .legend(move |(x, y)| Circle::new((x + 10, y), 3, grey.filled()));
                }
            }
        }
    }
    if has_legend {
        chart
            .configure_series_labels()
            .position(emptiest_corner(&series, xr, yr))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 13).into_font())
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Draws a heatmap's cells; categorical maps get a legend entry per category (returns
/// whether it added any).
fn draw_heatmap<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    map: &super::Heatmap,
) -> Result<bool> {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let shown = |v: f64| if map.log { v.log10() } else { v };
    let finite: Vec<f64> = map
        .values
        .iter()
        .map(|&v| shown(v))
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (hx, hy) = (
        0.5 * (map.x_range.1 - map.x_range.0) / (map.nx.max(2) - 1) as f64,
        0.5 * (map.y_range.1 - map.y_range.0) / (map.ny.max(2) - 1) as f64,
    );
    let cell_color = |v: f64| -> RGBColor {
        match &map.categories {
            Some(_) => {
                let c = PALETTE[v as usize % PALETTE.len()];
                let mix = |a: u8| ((a as f64 + 255.0) / 2.0) as u8;
                RGBColor(mix(c.0), mix(c.1), mix(c.2))
            }
            None => {
                let v = shown(v);
                if v.is_finite() && hi > lo {
                    ViridisRGB.get_color_normalized(v, lo, hi)
                } else {
                    RGBColor(255, 255, 255)
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
    let Some(names) = &map.categories else {
        return Ok(false);
    };
    for (k, name) in names.iter().enumerate() {
        let color = cell_color(k as f64);
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(plot_err)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    Ok(!names.is_empty())
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
    fn log_axis_drops_non_positive_values() {
        assert_eq!(to_axis(0.0, true), None);
        assert_eq!(to_axis(-1.0, true), None);
        assert_eq!(to_axis(100.0, true), Some(2.0));
        assert_eq!(to_axis(-1.0, false), Some(-1.0));
    }
}
