//! How keyed series are told apart: the hue and style of a seaborn plot, decided once here.
//!
//! Among the series of a panel with a key, the settings whose values differ are the
//! *varying axes*. When two or more vary, one sets the line pattern: the last with at most
//! three values that is not an ordered number (below). The others set the colour. A single
//! numeric colour axis with three or more distinct finite values (not `seed`, whose numbers
//! name, not order) is ordered: it takes the sequential colour map and a colour bar (log-spaced
//! when its values span a decade or more); otherwise every combination gets a palette colour
//! (ten, then they repeat). Bounds (`Dashed` series with a key) take the colour of the series
//! with the same key and a pattern of their own per bound column, from a family (dashed, long
//! dashes) that settings never use; bands, marks and arrows (`Band`, `Markers`, `Arrow`) take
//! its colour. The legend lists each colour value and each pattern value once, then each bound
//! column and each mark, then the panel's unkeyed labelled series.

use super::{Colour, ColourBar, Key, LegendEntry, Marker, Panel, Pattern, SERIES_AXIS, Style};

/// Patterns of a pattern axis, in order.
const AXIS_PATTERNS: [Pattern; 3] = [Pattern::Solid, Pattern::Dotted, Pattern::DashDot];
/// Patterns of bound columns, in order (cycling past two).
const BOUND_PATTERNS: [Pattern; 2] = [Pattern::Dashed, Pattern::LongDash];

/// Most values a pattern axis may have (line patterns beyond three are hard to tell apart).
const MAX_PATTERNS: usize = 3;

/// What the keyed series of a panel need beside the plot: legend entries and a colour bar.
#[derive(Debug, Default)]
pub struct Guides {
    pub legend: Vec<LegendEntry>,
    pub colour_bar: Option<ColourBar>,
}

fn value<'a>(key: &'a Key, axis: &str) -> &'a str {
    key.iter()
        .find(|(a, _)| a == axis)
        .map_or("", |(_, v)| v.as_str())
}

/// The distinct values of an axis, numerically sorted when all are numbers, else in order of
/// first appearance.
fn values(keys: &[&Key], axis: &str) -> (Vec<String>, Option<Vec<f64>>) {
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let v = value(key, axis);
        if !seen.iter().any(|s| s == v) {
            seen.push(v.to_string());
        }
    }
    // Numbers order a setting only when every value is a finite number and the setting is not
    // an identifier.
    let numbers: Option<Vec<f64>> = if axis == "seed" {
        None
    } else {
        seen.iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect()
    };
    match numbers {
        Some(mut numbers) => {
            let mut paired: Vec<(f64, String)> = numbers.iter().copied().zip(seen).collect();
            paired.sort_by(|a, b| a.0.total_cmp(&b.0));
            numbers.sort_by(f64::total_cmp);
            (paired.into_iter().map(|p| p.1).collect(), Some(numbers))
        }
        None => (seen, None),
    }
}

fn part_label(axis: &str, value: &str) -> String {
    super::key_label(&[(axis.to_string(), value.to_string())])
}

/// Styles the keyed series of a panel in place; returns the legend and colour bar they need.
pub fn apply(panel: &mut Panel) -> Guides {
    // Bands (the spread around a median), bounds and marks follow their line and add no
    // values.
    let is_main = |s: &super::Series| {
        !s.key.is_empty()
            && !matches!(
                s.style,
                Style::Dashed | Style::Band | Style::Markers | Style::Arrow
            )
    };
    let owned: Vec<Key> = panel
        .series
        .iter()
        .filter(|s| is_main(s))
        .map(|s| s.key.clone())
        .collect();
    let main_keys: Vec<&Key> = owned.iter().collect();
    let has_bounds = panel
        .series
        .iter()
        .any(|s| !s.key.is_empty() && s.style == Style::Dashed);
    let has_marks = panel.series.iter().any(|s| {
        !s.key.is_empty() && matches!(s.style, Style::Band | Style::Markers | Style::Arrow)
    });
    if main_keys.is_empty() && !has_bounds && !has_marks {
        return Guides {
            legend: unkeyed_entries(panel),
            colour_bar: None,
        };
    }
    let mut axes: Vec<String> = Vec::new();
    for key in &main_keys {
        for (axis, _) in key.iter() {
            if !axes.contains(axis) {
                axes.push(axis.clone());
            }
        }
    }
    let varying: Vec<String> = axes
        .into_iter()
        .filter(|a| values(&main_keys, a).0.len() > 1)
        .collect();
    // An ordered numeric setting keeps the colour map; the pattern goes to the last other
    // setting with at most three values.
    let ordered = |a: &String| {
        let (names, numbers) = values(&main_keys, a);
        numbers.is_some() && names.len() >= 3
    };
    let pattern_axis: Option<String> = if varying.len() >= 2 {
        let keep_colour = varying.iter().find(|a| ordered(a));
        varying
            .iter()
            .rev()
            .filter(|a| Some(*a) != keep_colour)
            .find(|a| values(&main_keys, a).0.len() <= MAX_PATTERNS)
            .cloned()
    } else {
        None
    };
    let colour_axes: Vec<String> = varying
        .iter()
        .filter(|a| Some(*a) != pattern_axis.as_ref())
        .cloned()
        .collect();

    // Colour of a key: sequential for one ordered numeric axis, else a palette index per
    // combination of the colour axes.
    let mut legend: Vec<LegendEntry> = Vec::new();
    let mut colour_bar = None;
    let sequential = match colour_axes.as_slice() {
        [axis] => match values(&main_keys, axis) {
            (names, Some(numbers))
                if names.len() >= 3 && numbers[0] < numbers[numbers.len() - 1] =>
            {
                Some((axis.clone(), numbers, names))
            }
            _ => None,
        },
        _ => None,
    };
    let combos: Vec<Vec<String>> = {
        let mut combos: Vec<Vec<String>> = Vec::new();
        if let [axis] = colour_axes.as_slice() {
            for v in values(&main_keys, axis).0 {
                combos.push(vec![v]);
            }
        } else {
            for key in &main_keys {
                let combo: Vec<String> = colour_axes
                    .iter()
                    .map(|a| value(key, a).to_string())
                    .collect();
                if !combos.contains(&combo) {
                    combos.push(combo);
                }
            }
        }
        combos
    };
    let colour_of = |key: &Key| -> Colour {
        if colour_axes.is_empty() {
            return Colour::Palette(0);
        }
        if let Some((axis, numbers, _)) = &sequential {
            let v: f64 = value(key, axis).parse().unwrap_or(f64::NAN);
            let (lo, hi) = (numbers[0], numbers[numbers.len() - 1]);
            let log = lo > 0.0 && hi / lo >= 10.0;
            let t = if log {
                (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
            } else {
                (v - lo) / (hi - lo)
            };
            // A series without the setting (a mark keyed apart) is grey, not NaN.
            return if t.is_finite() {
                Colour::Sequential(t)
            } else {
                Colour::Grey
            };
        }
        let combo: Vec<String> = colour_axes
            .iter()
            .map(|a| value(key, a).to_string())
            .collect();
        Colour::Palette(combos.iter().position(|c| *c == combo).unwrap_or(0))
    };
    let pattern_values: Vec<String> = pattern_axis
        .as_ref()
        .map_or(Vec::new(), |a| values(&main_keys, a).0);
    let pattern_of = |key: &Key| -> Pattern {
        match &pattern_axis {
            Some(axis) => {
                let v = value(key, axis);
                AXIS_PATTERNS[pattern_values.iter().position(|p| p == v).unwrap_or(0)]
            }
            None => Pattern::Solid,
        }
    };

    if let Some((axis, numbers, names)) = &sequential {
        let (lo, hi) = (numbers[0], numbers[numbers.len() - 1]);
        colour_bar = Some(ColourBar {
            label: axis.clone(),
            range: (lo, hi),
            log: lo > 0.0 && hi / lo >= 10.0,
            ticks: numbers.iter().copied().zip(names.iter().cloned()).collect(),
        });
    } else if !colour_axes.is_empty() {
        for (k, combo) in combos.iter().enumerate() {
            let label = colour_axes
                .iter()
                .zip(combo)
                .map(|(a, v)| part_label(a, v))
                .collect::<Vec<_>>()
                .join(", ");
            legend.push(line_entry(label, Colour::Palette(k), Pattern::Solid));
        }
    }
    if let Some(axis) = &pattern_axis {
        for (k, v) in pattern_values.iter().enumerate() {
            legend.push(line_entry(
                part_label(axis, v),
                Colour::Grey,
                AXIS_PATTERNS[k],
            ));
        }
    }
    // Bound columns: one pattern each.
    let free = BOUND_PATTERNS;
    let mut bound_names: Vec<String> = Vec::new();
    let mut marks: Vec<LegendEntry> = Vec::new();
    let main_styles: Vec<(Key, Colour)> = main_keys
        .iter()
        .map(|k| ((*k).clone(), colour_of(k)))
        .collect();
    for series in &mut panel.series {
        if series.key.is_empty() {
            continue;
        }
        if series.style == Style::Dashed {
            let k = match bound_names.iter().position(|b| *b == series.label) {
                Some(k) => k,
                None => {
                    bound_names.push(series.label.clone());
                    bound_names.len() - 1
                }
            };
            series.pattern = free[k % free.len()];
            series.color = main_styles
                .iter()
                .find(|(key, _)| *key == series.key)
                .map_or(Colour::Grey, |(_, c)| *c);
        } else if matches!(series.style, Style::Band | Style::Markers | Style::Arrow) {
            series.color = colour_of(&series.key);
            if series.style != Style::Band && !series.label.is_empty() {
                let entry = LegendEntry {
                    label: series.label.clone(),
                    style: series.style,
                    color: if colour_axes.is_empty() {
                        Colour::Palette(0)
                    } else {
                        Colour::Grey
                    },
                    pattern: Pattern::Solid,
                    marker: series.marker,
                };
                if !marks.contains(&entry) {
                    marks.push(entry);
                }
            }
        } else {
            series.color = colour_of(&series.key);
            series.pattern = pattern_of(&series.key);
        }
    }
    for (k, name) in bound_names.iter().enumerate() {
        let tied = if colour_axes.is_empty() {
            String::new()
        } else {
            " (colour of its series)".to_string()
        };
        legend.push(LegendEntry {
            label: format!("{name}{tied}"),
            style: Style::Dashed,
            color: if colour_axes.is_empty() {
                Colour::Palette(0)
            } else {
                Colour::Grey
            },
            pattern: free[k % free.len()],
            marker: Marker::Circle,
        });
    }
    if varying.is_empty() && !bound_names.is_empty() {
        // One series and its bounds: name the series too.
        if let Some(key) = main_keys.first() {
            let label = key_label_or_column(key);
            if !label.is_empty() {
                legend.insert(0, line_entry(label, Colour::Palette(0), Pattern::Solid));
            }
        }
    }
    legend.extend(marks);
    legend.extend(unkeyed_entries(panel));
    Guides { legend, colour_bar }
}

fn key_label_or_column(key: &Key) -> String {
    let column = value(key, SERIES_AXIS);
    if column.is_empty() {
        super::key_label(key)
    } else {
        column.to_string()
    }
}

fn line_entry(label: String, color: Colour, pattern: Pattern) -> LegendEntry {
    LegendEntry {
        label,
        style: Style::Line,
        color,
        pattern,
        marker: Marker::Circle,
    }
}

/// Legend entries of the series without a key that have a label.
fn unkeyed_entries(panel: &Panel) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = Vec::new();
    for s in &panel.series {
        if !s.key.is_empty() || s.label.is_empty() {
            continue;
        }
        let entry = LegendEntry {
            label: s.label.clone(),
            style: s.style,
            color: s.color,
            pattern: s.pattern,
            marker: s.marker,
        };
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::super::Series;
    use super::*;

    fn keyed(parts: &[(&str, &str)], style: Style, label: &str) -> Series {
        Series {
            label: label.into(),
            points: vec![(0.0, 1.0), (1.0, 2.0)],
            style,
            key: parts
                .iter()
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_ordered_numeric_setting_takes_the_sequential_map_in_numeric_order() {
        let mut panel = Panel::default();
        for lam in ["0.001", "5e-5", "0.00025"] {
            for m in ["svrs", "accsvrs"] {
                panel
                    .series
                    .push(keyed(&[("lambda", lam), ("method", m)], Style::Line, ""));
            }
        }
        let guides = apply(&mut panel);
        let bar = guides.colour_bar.clone().expect("a colour bar");
        assert_eq!(bar.label, "lambda");
        assert_eq!(bar.range, (5e-5, 0.001));
        assert!(bar.log);
        let at = |lam: &str| {
            panel
                .series
                .iter()
                .find(|s| s.key[0].1 == lam)
                .unwrap()
                .color
        };
        assert_eq!(at("5e-5"), Colour::Sequential(0.0));
        assert_eq!(at("0.001"), Colour::Sequential(1.0));
        // Methods are the pattern axis: two legend entries, not six.
        let labels: Vec<&str> = guides.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["svrs", "accsvrs"]);
        assert_eq!(panel.series[0].pattern, Pattern::Solid);
        assert_eq!(panel.series[1].pattern, Pattern::Dotted);
    }

    #[test]
    fn categories_keep_palette_colours_and_bounds_follow_their_series() {
        let mut panel = Panel::default();
        for d in ["kl", "euclidean"] {
            for eta in ["1", "10"] {
                let key = [("divergence", d), ("eta", eta)];
                panel.series.push(keyed(&key, Style::Line, ""));
                panel.series.push(keyed(&key, Style::Dashed, "bound_a"));
                panel.series.push(keyed(&key, Style::Dashed, "bound_b"));
            }
        }
        let guides = apply(&mut panel);
        assert!(guides.colour_bar.is_none());
        for triple in panel.series.chunks(3) {
            assert_eq!(
                triple[1].color, triple[0].color,
                "a bound takes its series' colour"
            );
            assert_eq!(triple[2].color, triple[0].color);
            assert_ne!(
                triple[1].pattern, triple[2].pattern,
                "bounds differ from each other"
            );
            assert_ne!(triple[1].pattern, triple[0].pattern);
        }
        // Two settings: divergence by colour, eta by pattern; the bounds take other patterns.
        let labels: Vec<&str> = guides.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "divergence=kl",
                "divergence=euclidean",
                "eta=1",
                "eta=10",
                "bound_a (colour of its series)",
                "bound_b (colour of its series)"
            ]
        );
        // Bounds are dashed (one pattern per column), settings never are.
        for s in &panel.series {
            let bound = s.style == Style::Dashed;
            assert_eq!(bound, BOUND_PATTERNS.contains(&s.pattern), "{s:?}");
        }
    }

    #[test]
    fn one_series_needs_no_legend() {
        let mut panel = Panel::default();
        panel
            .series
            .push(keyed(&[("series", "value_gap")], Style::Line, ""));
        let guides = apply(&mut panel);
        assert!(guides.legend.is_empty());
        assert!(guides.colour_bar.is_none());
    }

    #[test]
    fn identifiers_equal_numbers_and_a_text_pattern_keep_the_map_sane() {
        // Seeds name runs: palette colours, no colour bar.
        let mut panel = Panel::default();
        for seed in ["0", "1", "2"] {
            panel.series.push(keyed(&[("seed", seed)], Style::Line, ""));
        }
        let guides = apply(&mut panel);
        assert!(guides.colour_bar.is_none());
        assert_eq!(panel.series[2].color, Colour::Palette(2));
        // Three spellings of one number: no map over a zero range, no NaN colour.
        let mut panel = Panel::default();
        for v in ["1", "1.0", "1e0"] {
            panel.series.push(keyed(&[("eta", v)], Style::Line, ""));
        }
        let guides = apply(&mut panel);
        assert!(guides.colour_bar.is_none());
        assert!(
            panel
                .series
                .iter()
                .all(|s| matches!(s.color, Colour::Palette(_)))
        );
        // Five methods and three lambdas: lambda keeps the colour map, methods are colours
        // too (more than three), so no pattern axis takes the numbers.
        let mut panel = Panel::default();
        for lam in ["1e-3", "1e-4", "1e-5"] {
            for m in ["agd", "acceg", "svrp", "svrs", "accsvrs"] {
                panel
                    .series
                    .push(keyed(&[("lambda", lam), ("method", m)], Style::Line, ""));
            }
        }
        apply(&mut panel);
        assert!(panel.series.iter().all(|s| s.pattern == Pattern::Solid));
    }
}
