//! Landscape pictures any experiment can use: a 2-D slice of a function as a heatmap with
//! contour lines (the `contour` crate's marching squares), a vector field with trajectories
//! (phase portrait), a map of where starts end (basin map) and a histogram with a marker.

use anyhow::{Result, anyhow};
use rayon::prelude::*;

use super::{Colour, Heatmap, Panel, Series, Style};

/// f evaluated on an nx x ny grid over the ranges (in parallel; the values do not depend on
/// the thread count).
/// `label` names the quantity and its units for the colour bar.
pub fn sample(
    x_range: (f64, f64),
    y_range: (f64, f64),
    n: (usize, usize),
    label: &str,
    f: impl Fn(f64, f64) -> f64 + Sync,
) -> Heatmap {
    let mut map = Heatmap {
        x_range,
        y_range,
        nx: n.0,
        ny: n.1,
        values: Vec::new(),
        categories: None,
        log: false,
        label: label.to_string(),
    };
    map.values = (0..n.0 * n.1)
        .into_par_iter()
        .map(|k| {
            let (x, y) = map.point(k % n.0, k / n.0);
            f(x, y)
        })
        .collect();
    map
}

/// Contour lines of a continuous heatmap at the given levels, as one `Contour` series whose
/// pieces are separated by NaN points.
pub fn contours(map: &Heatmap, levels: &[f64]) -> Result<Series> {
    let dx = (map.x_range.1 - map.x_range.0) / (map.nx.max(2) - 1) as f64;
    let dy = (map.y_range.1 - map.y_range.0) / (map.ny.max(2) - 1) as f64;
    // d3-contour puts value i at the centre of pixel [i, i + 1], i.e. at i + 0.5.
    let builder = contour::ContourBuilder::new(map.nx, map.ny, true)
        .x_origin(map.x_range.0 - 0.5 * dx)
        .y_origin(map.y_range.0 - 0.5 * dy)
        .x_step(dx)
        .y_step(dy);
    let lines = builder
        .lines(&map.values, levels)
        .map_err(|e| anyhow!("contour lines: {e:?}"))?;
    // Rings close along the frame of the grid, half a cell outside the sampled range; those
    // stretches are not contour lines, so the lines break there.
    let outside = |x: f64, y: f64| {
        x < map.x_range.0 - 0.25 * dx
            || x > map.x_range.1 + 0.25 * dx
            || y < map.y_range.0 - 0.25 * dy
            || y > map.y_range.1 + 0.25 * dy
    };
    let mut points = Vec::new();
    for line in &lines {
        for piece in &line.geometry().0 {
            for c in &piece.0 {
                if outside(c.x, c.y) {
                    points.push((f64::NAN, f64::NAN));
                } else {
                    points.push((c.x, c.y));
                }
            }
            points.push((f64::NAN, f64::NAN));
        }
    }
    Ok(Series {
        label: String::new(),
        points,
        style: Style::Contour,
        color: Colour::Palette(0),
        ..Default::default()
    })
}

/// Levels spaced evenly in log10 between the smallest positive value and the largest.
pub fn log_levels(map: &Heatmap, count: usize) -> Vec<f64> {
    let positive = map
        .values
        .iter()
        .copied()
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if lo >= hi || lo.is_nan() {
        return Vec::new();
    }
    let (a, b) = (lo.log10(), hi.log10());
    (1..=count)
        .map(|k| 10f64.powf(a + (b - a) * k as f64 / (count + 1) as f64))
        .collect()
}

/// Arrows of a vector field on a coarse grid, scaled so the longest is `length`.
pub fn arrows(
    x_range: (f64, f64),
    y_range: (f64, f64),
    n: usize,
    length: f64,
    field: impl Fn(f64, f64) -> (f64, f64),
) -> Vec<[f64; 4]> {
    let mut raw = Vec::new();
    for iy in 0..n {
        for ix in 0..n {
            let x = x_range.0 + (x_range.1 - x_range.0) * (ix as f64 + 0.5) / n as f64;
            let y = y_range.0 + (y_range.1 - y_range.0) * (iy as f64 + 0.5) / n as f64;
            let (dx, dy) = field(x, y);
            raw.push([x, y, dx, dy]);
        }
    }
    // Directions with a compressed magnitude: far arrows would otherwise hide near ones.
    let size = |a: &[f64; 4]| (a[2] * a[2] + a[3] * a[3]).sqrt();
    let longest = raw.iter().map(|a| size(a).sqrt()).fold(0.0, f64::max);
    if longest > 0.0 {
        for a in &mut raw {
            let s = size(a);
            if s > 0.0 {
                let k = length * s.sqrt() / longest / s;
                a[2] *= k;
                a[3] *= k;
            }
        }
    }
    raw
}

/// A categorical heatmap: `category(x, y)` is an index into `names`.
pub fn basin_map(
    x_range: (f64, f64),
    y_range: (f64, f64),
    n: usize,
    names: Vec<String>,
    category: impl Fn(f64, f64) -> usize + Sync,
) -> Heatmap {
    let mut map = sample(x_range, y_range, (n, n), "", |x, y| category(x, y) as f64);
    map.categories = Some(names);
    map
}

/// A histogram of `values` in `bins` bins as a `Bars` series, and a dashed vertical marker
/// (e.g. the global optimum) at `marker`.
pub fn histogram(values: &[f64], bins: usize, marker: Option<(f64, &str)>) -> Panel {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut panel = Panel::default();
    if finite.is_empty() {
        return panel;
    }
    // Values equal to round-off make one bin, not forty bins across 1e-16: a window around
    // them with an odd number of bins, so they fall in the middle one, not on both sides of
    // a bin edge.
    let scale = lo.abs().max(hi.abs()).max(1.0);
    let (lo, hi, bins) = if hi - lo <= 1e-12 * scale {
        let mid = 0.5 * (lo + hi);
        (mid - 1e-9 * scale, mid + 1e-9 * scale, bins | 1)
    } else {
        (lo, hi, bins)
    };
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0usize; bins];
    for v in &finite {
        let k = (((v - lo) / width) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let points: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (lo + width * (k as f64 + 0.5), c as f64))
        .collect();
    let top = counts.iter().copied().max().unwrap_or(1) as f64;
    panel.series.push(Series {
        label: String::new(),
        points,
        style: Style::Bars,
        color: Colour::Palette(0),
        ..Default::default()
    });
    if let Some((x, label)) = marker {
        panel.series.push(Series {
            label: label.to_string(),
            points: vec![(x, 0.0), (x, top * 1.05)],
            style: Style::Dashed,
            color: Colour::Palette(3),
            ..Default::default()
        });
    }
    panel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contours_of_a_paraboloid_are_circles() {
        let map = sample((-2.0, 2.0), (-2.0, 2.0), (81, 81), "x^2 + y^2", |x, y| {
            x * x + y * y
        });
        let series = contours(&map, &[1.0]).unwrap();
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite())
            .collect();
        assert!(points.len() > 20);
        for (x, y) in points {
            let r = (x * x + y * y).sqrt();
            assert!((r - 1.0).abs() < 2e-3, "radius {r}");
        }
    }

    #[test]
    fn histograms_count_every_value() {
        let values: Vec<f64> = (0..100).map(|k| k as f64).collect();
        let panel = histogram(&values, 10, Some((42.0, "optimum")));
        let total: f64 = panel.series[0].points.iter().map(|p| p.1).sum();
        assert_eq!(total, 100.0);
        assert_eq!(panel.series[1].points[0].0, 42.0);
    }

    #[test]
    fn values_equal_to_round_off_fall_in_one_bin() {
        let values = [0.5, 0.5 + 1e-16, 0.5 - 2e-16, 0.0 + 0.5];
        // The counts of the bins that hold any value.
        let filled = |values: &[f64]| -> Vec<f64> {
            histogram(values, 40, None).series[0]
                .points
                .iter()
                .map(|p| p.1)
                .filter(|c| *c > 0.0)
                .collect()
        };
        assert_eq!(filled(&values), vec![4.0]);
        // Gaps to an optimum at round-off, on both sides of 0.
        assert_eq!(filled(&[-2.8e-16, 0.0, 1.1e-16, 4.4e-16]), vec![4.0]);
    }

    #[test]
    fn arrows_keep_their_directions() {
        let a = arrows((-1.0, 1.0), (-1.0, 1.0), 4, 0.2, |x, y| (-x, -y));
        for [x, y, dx, dy] in a {
            assert!((x * dy - y * dx).abs() < 1e-12, "parallel to the position");
            assert!(x * dx + y * dy < 0.0, "pointing inwards");
        }
    }
}
