//! The sweep grammar: which words of `lab sweep EXP ...` are axes, and their values.
//!
//! A `KEY=VALUE` word keeps exactly its `lab run` meaning (one value for every run; a list
//! field's commas make a list inside one run). A key that varies is written so that it cannot
//! be read as a list:
//!
//! - `KEY={A,B,C}`: these values. Unquoted, the shell expands it into `KEY=A KEY=B KEY=C`,
//!   which means the same: a key given more than once is an axis.
//! - `KEY=LO..HI`: the integers LO, LO+1, ..., HI-1 (HI excluded, as in Rust);
//!   `KEY=LO..HI:STEP` from LO by STEP (may be negative or a real), HI excluded.
//! - `KEY=LO..HI:log:N` / `KEY=LO..HI:lin:N`: N points from LO to HI, both included, spaced
//!   evenly on a log or a linear scale (log-spaced values rounded to 4 significant digits so
//!   names and legends stay readable).

use toml::Value;

use crate::spec::{Domain, Field, nearest, render_value};

/// One varying setting and its values, checked against the field's domain.
#[derive(Debug, Clone)]
pub struct Axis {
    pub key: &'static str,
    pub values: Vec<Value>,
}

/// The words of a sweep, split into fixed `key=value` settings and axes.
#[derive(Debug, Default)]
pub struct Words {
    /// `key=value` words given once: applied to every point, as in `lab run`.
    pub fixed: Vec<String>,
    /// The axes, in the fields' order (so the order on the command line does not change the
    /// points' names).
    pub axes: Vec<Axis>,
}

/// Splits `words` into fixed settings and axes. `seeds` is `--seeds`' range, an axis over
/// `seed`. Every error names the word and says what was expected.
pub fn parse(fields: &[Field], words: &[String], seeds: Option<&str>) -> Result<Words, String> {
    // Words grouped by key, in order of first appearance.
    let mut by_key: Vec<(&'static str, Vec<&str>)> = Vec::new();
    let mut all: Vec<String> = words.to_vec();
    if let Some(seeds) = seeds {
        if words
            .iter()
            .any(|w| w.split_once('=').is_some_and(|(k, _)| k.trim() == "seed"))
        {
            return Err(format!(
                "--seeds {seeds} and a seed=... word both set the seed: keep one"
            ));
        }
        let t = seeds.trim();
        let braces = t.starts_with('{') && t.ends_with('}');
        if !(t.contains("..") || braces) {
            return Err(format!(
                "--seeds {seeds}: expected a range such as 0..5 (seeds 0 to 4) or {{0,7,42}}; \
                 one seed is --seed {seeds}"
            ));
        }
        all.push(format!("seed={seeds}"));
    }
    for word in &all {
        let (key, text) = word.split_once('=').ok_or_else(|| {
            format!(
                "'{word}' is not a setting: expected KEY=VALUE (fixed) or an axis such as \
                 KEY={{A,B}} or KEY=LO..HI"
            )
        })?;
        let key = key.trim();
        let field = fields.iter().find(|f| f.key == key).ok_or_else(|| {
            let hint = nearest(fields.iter().map(|f| f.key), key)
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            format!("'{word}': unknown key '{key}'{hint} (`lab show` lists every key)")
        })?;
        match by_key.iter_mut().find(|(k, _)| *k == field.key) {
            Some((_, texts)) => texts.push(text),
            None => by_key.push((field.key, vec![text])),
        }
    }
    let mut out = Words::default();
    for (key, texts) in by_key {
        let field = fields.iter().find(|f| f.key == key).expect("found above");
        let single = texts.len() == 1;
        let is_axis = |t: &str| is_axis(&field.domain, t);
        if let Some(bad) = texts.iter().find(|t| {
            let t = t.trim();
            t.starts_with('{') != t.ends_with('}') || t.starts_with('[')
        }) {
            return Err(format!(
                "'{key}={bad}': an axis is written {key}={{A,B,...}}, with both braces (and no \
                 brackets)"
            ));
        }
        let values = if single && !is_axis(texts[0]) {
            let text = texts[0];
            if text.contains(',') && !is_list(&field.domain) {
                return Err(format!(
                    "'{key}={text}': {key} takes one value per run, so a comma cannot separate \
                     values here; to sweep it write {key}={{{text}}} (quoted, or let the shell \
                     expand it)"
                ));
            }
            out.fixed.push(format!("{key}={text}"));
            continue;
        } else if single {
            axis_values(field, texts[0])?
        } else {
            // A key given several times: each word is one value (the shell's expansion of
            // KEY={A,B}); a brace or range word among them is ambiguous.
            if let Some(bad) = texts.iter().find(|t| is_axis(t)) {
                return Err(format!(
                    "'{key}={bad}': {key} is given {} times; write its values once, as \
                     {key}={{A,B,...}} or one KEY=VALUE word per value",
                    texts.len()
                ));
            }
            texts
                .iter()
                .map(|t| check(field, t))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut seen = std::collections::HashSet::new();
        for v in &values {
            if !seen.insert(render_value(v)) {
                return Err(format!(
                    "axis {key} has the value {} twice",
                    render_value(v)
                ));
            }
        }
        out.axes.push(Axis { key, values });
    }
    let position = |key: &str| fields.iter().position(|f| f.key == key);
    out.axes.sort_by_key(|a| position(a.key));
    Ok(out)
}

/// Whether a value text is an axis rather than one value: braces, or a range (never for a
/// path, so `../data/x` stays a path).
fn is_axis(domain: &Domain, text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('{') && t.ends_with('}'))
        || (!matches!(domain, Domain::Path) && t.contains(".."))
}

fn is_numeric(domain: &Domain) -> bool {
    matches!(
        domain,
        Domain::Real { .. } | Domain::Int { .. } | Domain::IntList { .. } | Domain::RealList { .. }
    )
}

fn is_list(domain: &Domain) -> bool {
    matches!(
        domain,
        Domain::ChoiceList(_) | Domain::IntList { .. } | Domain::RealList { .. }
    )
}

/// One value of `field` from its text, checked.
fn check(field: &Field, text: &str) -> Result<Value, String> {
    field
        .domain
        .parse_text(text)
        .map_err(|e| format!("'{}={text}': {e}", field.key))
}

/// The values of an axis word (`{A,B}` or a range).
fn axis_values(field: &Field, text: &str) -> Result<Vec<Value>, String> {
    let key = field.key;
    let word = format!("{key}={text}");
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let items: Vec<&str> = inner.split(',').map(str::trim).collect();
        if inner.trim().is_empty() || items.iter().any(|i| i.is_empty()) {
            return Err(format!(
                "'{word}': an empty value; expected {key}={{A,B,...}} with at least one value"
            ));
        }
        return items.iter().map(|i| check(field, i)).collect();
    }
    if !is_numeric(&field.domain) {
        return Err(format!(
            "'{word}': a range needs a numeric setting, and {key} is {}; list its values as \
             {key}={{A,B}}",
            field.domain.describe()
        ));
    }
    let integer = matches!(field.domain, Domain::Int { .. } | Domain::IntList { .. });
    // log and lin spacing of an integer setting go through the reals below.
    if integer && !t.contains(":log:") && !t.contains(":lin:") {
        let values = integer_range(t).ok_or_else(|| {
            format!(
                "'{word}': an integer range is LO..HI or LO..HI:STEP with whole numbers from \
                 {} to {}",
                i64::MIN,
                i64::MAX
            )
        })?;
        return values
            .map_err(|e| format!("'{word}': {e}"))?
            .iter()
            .map(|i| check(field, &i.to_string()))
            .collect();
    }
    let numbers = range(t).map_err(|e| format!("'{word}': {e}"))?;
    numbers
        .into_iter()
        .map(|x| {
            let text = if integer {
                if x.fract() != 0.0 {
                    return Err(format!(
                        "'{word}': {key} is an integer setting, and this range gives {x}"
                    ));
                }
                format!("{}", x as i64)
            } else {
                format!("{x}")
            };
            check(field, &text)
        })
        .collect()
}

/// The most values one axis takes.
const MOST: usize = 100_000;

/// `LO..HI` or `LO..HI:STEP` with integer ends and step, in exact integer arithmetic (seeds
/// past 2^53 stay exact); `None` for another form.
fn integer_range(text: &str) -> Option<Result<Vec<i64>, String>> {
    let (bounds, step) = match text.split_once(':') {
        Some((b, s)) => (b, s.trim().parse::<i64>().ok()?),
        None => (text, 1),
    };
    let (lo, hi) = bounds.split_once("..")?;
    let (lo, hi): (i64, i64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    Some(if step == 0 {
        Err("a step of 0 never reaches the end".into())
    } else if lo == hi {
        Err(format!(
            "the range from {lo} to {hi} is empty (the end is excluded)"
        ))
    } else if (hi > lo) != (step > 0) {
        Err(format!(
            "a step of {step} goes away from the end: from {lo} to {hi} the step must be {}",
            if hi > lo { "positive" } else { "negative" }
        ))
    } else {
        let span = (i128::from(hi) - i128::from(lo)).unsigned_abs();
        let count = span.div_ceil(u128::from(step.unsigned_abs()));
        if count > MOST as u128 {
            Err(format!("{count} values; a sweep axis takes at most {MOST}"))
        } else {
            Ok((0..count as i64).map(|i| lo + i * step).collect())
        }
    })
}

/// The numbers of a range text: `LO..HI`, `LO..HI:STEP`, `LO..HI:log:N`, `LO..HI:lin:N`.
fn range(text: &str) -> Result<Vec<f64>, String> {
    const FORMS: &str = "LO..HI, LO..HI:STEP, LO..HI:log:N or LO..HI:lin:N";
    let (bounds, spacing) = match text.split_once(':') {
        Some((b, s)) => (b, Some(s)),
        None => (text, None),
    };
    let (lo, hi) = bounds
        .split_once("..")
        .ok_or_else(|| format!("expected a range {FORMS}"))?;
    let number = |s: &str, what: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{what} '{s}' is not a number (expected {FORMS})"))
    };
    let (lo, hi) = (number(lo, "the start")?, number(hi, "the end")?);
    let spaced = |kind: &str, n: &str| -> Result<Vec<f64>, String> {
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|&n| (2..=MOST).contains(&n))
            .ok_or_else(|| {
                format!(
                    "'{kind}:{n}': the number of points, both ends included, must be 2 to {MOST}"
                )
            })?;
        if n > 1 && lo == hi {
            return Err(format!("{n} points from {lo} to {lo} are all the same"));
        }
        let at = |i: usize| {
            if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            }
        };
        if kind == "log" {
            if lo <= 0.0 || hi <= 0.0 {
                return Err(format!(
                    "log spacing needs positive ends, got {lo} and {hi}"
                ));
            }
            let (a, b) = (lo.log10(), hi.log10());
            Ok((0..n)
                .map(|i| significant(10f64.powf(a + (b - a) * at(i)), 4))
                .collect())
        } else {
            Ok((0..n)
                .map(|i| significant(lo + (hi - lo) * at(i), 12))
                .collect())
        }
    };
    match spacing.map(|s| s.split_once(':').map_or((s, None), |(k, n)| (k, Some(n)))) {
        Some(("log", Some(n))) => spaced("log", n),
        Some(("lin", Some(n))) => spaced("lin", n),
        Some(("log" | "lin", None)) => Err(format!("expected the number of points: {FORMS}")),
        other => {
            let step = match other {
                None => 1.0,
                Some((step, None)) => number(step, "the step")?,
                Some(_) => return Err(format!("expected {FORMS}")),
            };
            if step == 0.0 {
                return Err("a step of 0 never reaches the end".into());
            }
            if lo == hi {
                return Err(format!(
                    "the range from {lo} to {hi} is empty (the end is excluded)"
                ));
            }
            if (hi - lo).signum() != step.signum() {
                return Err(format!(
                    "a step of {step} goes away from the end: from {lo} to {hi} the step must \
                     be {}",
                    if hi > lo { "positive" } else { "negative" }
                ));
            }
            // Counted, not accumulated, so 0.1 steps do not drift; the end is excluded.
            let count = ((hi - lo) / step - 1e-9).ceil();
            if count > MOST as f64 {
                return Err(format!("{count} values; a sweep axis takes at most {MOST}"));
            }
            Ok((0..count as usize)
                .map(|i| significant(lo + step * i as f64, 12))
                .collect())
        }
    }
}

/// `x` rounded to `digits` significant digits (0.30000000000000004 -> 0.3).
fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let text = format!("{:.*e}", (digits - 1) as usize, x);
    text.parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Domain;

    const FIELDS: &[Field] = &[
        Field {
            key: "divergence",
            group: "",
            doc: "",
            domain: Domain::ChoiceList(&["kl", "euclidean"]),
        },
        Field {
            key: "mdp",
            group: "",
            doc: "",
            domain: Domain::Choice(&["garnet", "chain"]),
        },
        Field {
            key: "eta",
            group: "",
            doc: "",
            domain: Domain::positive_real(),
        },
        Field {
            key: "iterations",
            group: "",
            doc: "",
            domain: Domain::Int { min: 1, max: 1000 },
        },
        Field {
            key: "seed",
            group: "",
            doc: "",
            domain: Domain::seed(),
        },
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn axes(w: &[&str]) -> Vec<(String, Vec<String>)> {
        parse(FIELDS, &words(w), None)
            .unwrap()
            .axes
            .into_iter()
            .map(|a| {
                (
                    a.key.to_string(),
                    a.values.iter().map(render_value).collect(),
                )
            })
            .collect()
    }

    fn error(w: &[&str], seeds: Option<&str>) -> String {
        parse(FIELDS, &words(w), seeds).unwrap_err()
    }

    #[test]
    fn braces_and_repeated_words_are_the_same_axis() {
        let braces = axes(&["eta={0.1,1,10}"]);
        assert_eq!(braces, axes(&["eta=0.1", "eta=1", "eta=10"]));
        assert_eq!(braces[0].1, ["0.1", "1.0", "10.0"]);
    }

    #[test]
    fn a_list_keeps_its_lab_run_meaning_and_a_scalar_list_is_refused() {
        let w = parse(
            FIELDS,
            &words(&["divergence=kl,euclidean", "eta={1,2}"]),
            None,
        )
        .unwrap();
        assert_eq!(w.fixed, ["divergence=kl,euclidean"]);
        assert_eq!(w.axes.len(), 1);
        // Each point of a list axis is a list of one.
        let w = parse(FIELDS, &words(&["divergence={kl,euclidean}"]), None).unwrap();
        assert_eq!(
            w.axes[0].values,
            [
                Value::Array(vec![Value::String("kl".into())]),
                Value::Array(vec![Value::String("euclidean".into())])
            ]
        );
        let e = error(&["eta=0.1,1"], None);
        assert!(
            e.contains("eta={0.1,1}") && e.contains("one value per run"),
            "{e}"
        );
    }

    #[test]
    fn ranges_follow_their_documented_ends() {
        assert_eq!(axes(&["seed=0..5"])[0].1, ["0", "1", "2", "3", "4"]);
        assert_eq!(axes(&["iterations=10..1:-3"])[0].1, ["10", "7", "4"]);
        assert_eq!(
            axes(&["eta=0.1..0.5:0.1"])[0].1,
            ["0.1", "0.2", "0.3", "0.4"]
        );
        assert_eq!(
            axes(&["eta=1e-3..10:log:5"])[0].1,
            ["0.001", "0.01", "0.1", "1.0", "10.0"]
        );
        assert_eq!(axes(&["eta=1..2:log:3"])[0].1, ["1.0", "1.414", "2.0"]);
        assert_eq!(axes(&["eta=1..2:lin:3"])[0].1, ["1.0", "1.5", "2.0"]);
        // Axes come in the fields' order, whatever the command line's.
        let keys: Vec<String> = axes(&["seed=0..2", "eta={1,2}"])
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(keys, ["eta", "seed"]);
    }

    #[test]
    fn bad_axes_say_what_was_expected() {
        for (w, seeds, expect) in [
            (vec!["etta={1,2}"], None, "did you mean 'eta'"),
            (vec!["seed=5..5"], None, "empty"),
            (vec!["seed=0..5:-1"], None, "must be positive"),
            (vec!["seed=0..5:0"], None, "step of 0"),
            (vec!["eta={}"], None, "empty value"),
            (vec!["eta={1,,2}"], None, "empty value"),
            (vec!["eta={1,1.0}"], None, "twice"),
            (vec!["eta=-1..1:log:3"], None, "positive ends"),
            (vec!["eta=1..3:log"], None, "number of points"),
            (vec!["eta=1..x"], None, "not a number"),
            (vec!["mdp=1..3"], None, "numeric setting"),
            (vec!["iterations=1..2:0.5"], None, "whole numbers"),
            (vec!["eta={1,2}", "eta=3"], None, "given 2 times"),
            (vec!["seed=1"], Some("0..3"), "keep one"),
            (vec!["eta"], None, "KEY=VALUE"),
            (vec!["iterations={5,2000}"], None, "iterations=2000"),
            (vec!["eta=1..2:lin:1000000000"], None, "2 to 100000"),
            (vec!["eta=1..2:log:1"], None, "2 to 100000"),
            (vec!["eta={1,2"], None, "both braces"),
            (vec!["eta=[1,2]"], None, "both braces"),
            (
                vec!["seed=18446744073709551613..18446744073709551615"],
                None,
                "whole numbers",
            ),
            (vec!["seed=0..1000000"], None, "at most 100000"),
            (vec!["eta=0..1000000"], None, "at most 100000"),
            (vec!["eta=1"], Some("3"), "expected a range"),
        ] {
            let e = error(&w, seeds);
            assert!(e.contains(expect), "{w:?}: {e}");
        }
    }

    #[test]
    fn integer_ranges_are_exact_and_paths_are_never_ranges() {
        let word = format!("seed={}..{}", 1i64 << 60, (1i64 << 60) + 3);
        assert_eq!(
            axes(&[&word])[0].1,
            [0, 1, 2].map(|i| ((1i64 << 60) + i).to_string())
        );
        let fields = [Field {
            key: "data_file",
            group: "",
            doc: "",
            domain: Domain::Path,
        }];
        let w = parse(&fields, &words(&["data_file=../data/a8a"]), None).unwrap();
        assert_eq!(w.fixed, ["data_file=../data/a8a"]);
        let w = parse(&fields, &words(&["data_file={../a,../b}"]), None).unwrap();
        assert_eq!(w.axes[0].values.len(), 2);
    }

    #[test]
    fn seeds_flag_is_an_axis_over_seed() {
        let w = parse(FIELDS, &words(&["eta=1"]), Some("0..3")).unwrap();
        assert_eq!(w.fixed, ["eta=1"]);
        assert_eq!(w.axes[0].key, "seed");
        assert_eq!(w.axes[0].values.len(), 3);
    }
}
