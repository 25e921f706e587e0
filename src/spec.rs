//! Spec loading, layering and validation.
//!
//! Every experiment describes its settings as a table of [`Field`]s: key, documentation and
//! [`Domain`] (type and allowed range). That one table drives `lab show` (commented TOML), the
//! named flags of `lab run EXP`, the parsing of `key=value` overrides and the range checks, so
//! documentation and validation cannot drift apart.
//!
//! Settings resolve as: built-in defaults < `--spec FILE` < named flags < `key=value` overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use toml::{Table, Value};

use crate::input_error;

/// Type and allowed values of one setting.
#[derive(Debug, Clone, Copy)]
pub enum Domain {
    /// A real number in the interval from `min` to `max`; `*_open` excludes the end point.
    Real {
        min: f64,
        max: f64,
        min_open: bool,
        max_open: bool,
    },
    /// An integer in `[min, max]`.
    Int { min: i64, max: i64 },
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// One or more of the listed words (TOML array, or comma-separated on the command line).
    ChoiceList(&'static [&'static str]),
    /// One or more integers in `[min, max]` (TOML array, or comma-separated).
    IntList { min: i64, max: i64 },
    /// One or more real numbers in `[min, max]` (TOML array, or comma-separated).
    RealList { min: f64, max: f64 },
    /// A file path; empty means "none". Relative paths in a spec file are taken relative to
    /// that file, never to a changed working directory.
    Path,
}

impl Domain {
    /// A real number in (0, max]: a tolerance, a step decay, a fraction.
    pub const fn up_to(max: f64) -> Domain {
        Domain::Real {
            min: 0.0,
            max,
            min_open: true,
            max_open: false,
        }
    }

    /// A root seed: any non-negative integer.
    pub const fn seed() -> Domain {
        Domain::Int {
            min: 0,
            max: i64::MAX,
        }
    }

    pub const fn positive_real() -> Domain {
        Domain::Real {
            min: 0.0,
            max: f64::INFINITY,
            min_open: true,
            max_open: true,
        }
    }

    /// What the domain allows, in words, for `lab show` and error messages.
    pub fn describe(&self) -> String {
        match *self {
            Domain::Real {
                min,
                max,
                min_open,
                max_open,
            } => match (min.is_finite(), max.is_finite()) {
                (true, true) => format!(
                    "a number in {}{}, {}{}",
                    if min_open { "(" } else { "[" },
                    fmt_num(min),
                    fmt_num(max),
                    if max_open { ")" } else { "]" }
                ),
                (true, false) => {
                    format!(
                        "a number {} {}",
                        if min_open { ">" } else { ">=" },
                        fmt_num(min)
                    )
                }
                (false, true) => {
                    format!(
                        "a number {} {}",
                        if max_open { "<" } else { "<=" },
                        fmt_num(max)
                    )
                }
                (false, false) => "a finite number".to_string(),
            },
            Domain::Int { min, max } => {
                if max == i64::MAX {
                    format!("an integer >= {min}")
                } else {
                    format!("an integer in [{min}, {max}]")
                }
            }
            Domain::Choice(options) => format!("one of: {}", options.join(", ")),
            Domain::ChoiceList(options) => {
                format!("one or more of: {} (comma-separated)", options.join(", "))
            }
            Domain::IntList { min, max } => {
                format!("integers in [{min}, {max}] (comma-separated; [] for none)")
            }
            Domain::RealList { min, max } => format!(
                "numbers in [{}, {}] (comma-separated; [] for none)",
                fmt_num(min),
                fmt_num(max)
            ),
            Domain::Path => "a file path (\"\" for none)".to_string(),
        }
    }

    /// Parses a command-line word (`--eta 10`, `eta=10`) into a checked value.
    pub fn parse_text(&self, text: &str) -> std::result::Result<Value, String> {
        let text = text.trim();
        let value = match self {
            // `first_mask=[]` (or `first_mask=`): no entries, as `[]` in a spec file.
            Domain::IntList { .. } | Domain::RealList { .. } if text.is_empty() || text == "[]" => {
                Value::Array(Vec::new())
            }
            Domain::Real { .. } => Value::Float(
                text.parse::<f64>()
                    .map_err(|_| format!("'{text}' is not a number"))?,
            ),
            Domain::Int { .. } => Value::Integer(
                text.parse::<i64>()
                    .map_err(|_| format!("'{text}' is not an integer"))?,
            ),
            Domain::Choice(_) | Domain::Path => Value::String(text.to_string()),
            Domain::ChoiceList(_) => Value::Array(
                text.split(',')
                    .map(|word| Value::String(word.trim().to_string()))
                    .collect(),
            ),
            Domain::IntList { .. } => Value::Array(
                text.split(',')
                    .map(|word| {
                        let word = word.trim();
                        word.parse::<i64>()
                            .map(Value::Integer)
                            .map_err(|_| format!("'{word}' is not an integer"))
                    })
                    .collect::<std::result::Result<_, _>>()?,
            ),
            Domain::RealList { .. } => Value::Array(
                text.split(',')
                    .map(|word| {
                        let word = word.trim();
                        word.parse::<f64>()
                            .map(Value::Float)
                            .map_err(|_| format!("'{word}' is not a number"))
                    })
                    .collect::<std::result::Result<_, _>>()?,
            ),
        };
        self.check(value)
    }

    /// Checks a value read from a spec file (TOML or JSON) and normalizes its type
    /// (an integer where a real is expected becomes a float; a single word becomes a list).
    pub fn check(&self, value: Value) -> std::result::Result<Value, String> {
        match (self, value) {
            (
                &Domain::Real {
                    min,
                    max,
                    min_open,
                    max_open,
                },
                v @ (Value::Float(_) | Value::Integer(_)),
            ) => {
                let x = match v {
                    Value::Float(x) => x,
                    Value::Integer(i) => i as f64,
                    _ => unreachable!("matched above"),
                };
                let below = if min_open { x <= min } else { x < min };
                let above = if max_open { x >= max } else { x > max };
                if x.is_nan() || below || above {
                    return Err(format!(
                        "{} is out of range: expected {}",
                        fmt_num(x),
                        self.describe()
                    ));
                }
                Ok(Value::Float(x))
            }
            (&Domain::Int { min, max }, Value::Integer(i)) => {
                if i < min || i > max {
                    return Err(format!("{i} is out of range: expected {}", self.describe()));
                }
                Ok(Value::Integer(i))
            }
            (Domain::Choice(options), Value::String(s)) => {
                check_word(options, &s)?;
                Ok(Value::String(s))
            }
            (Domain::ChoiceList(_), Value::String(s)) => self.check(Value::Array(
                s.split(',')
                    .map(|w| Value::String(w.trim().to_string()))
                    .collect(),
            )),
            (Domain::ChoiceList(options), Value::Array(items)) => {
                if items.is_empty() {
                    return Err(format!("the list is empty: expected {}", self.describe()));
                }
                let mut words = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => {
                            check_word(options, &s)?;
                            if words.iter().any(|w: &Value| w.as_str() == Some(&s)) {
                                return Err(format!("'{s}' is listed twice"));
                            }
                            words.push(Value::String(s));
                        }
                        other => {
                            return Err(format!(
                                "{} is not a word: expected {}",
                                other,
                                self.describe()
                            ));
                        }
                    }
                }
                Ok(Value::Array(words))
            }
            (Domain::IntList { .. }, v @ Value::Integer(_))
            | (Domain::RealList { .. }, v @ (Value::Integer(_) | Value::Float(_))) => {
                self.check(Value::Array(vec![v]))
            }
            // An empty list stands for "none" (no custom mask); where a field needs entries
            // (widths), its experiment's cross-field check says how many.
            (&Domain::IntList { min, max }, Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::Integer(i) if (min..=max).contains(&i) => Ok(Value::Integer(i)),
                    Value::Integer(i) => {
                        Err(format!("{i} is out of range: expected {}", self.describe()))
                    }
                    other => Err(format!(
                        "{other} is not an integer: expected {}",
                        self.describe()
                    )),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Value::Array),
            // An empty list of reals is allowed: it stands for "none" (e.g. no custom weights).
            (&Domain::RealList { min, max }, Value::Array(items)) => items
                .into_iter()
                .map(|item| {
                    let x = match item {
                        Value::Float(x) => x,
                        Value::Integer(i) => i as f64,
                        other => {
                            return Err(format!(
                                "{other} is not a number: expected {}",
                                self.describe()
                            ));
                        }
                    };
                    if x.is_nan() || x < min || x > max {
                        return Err(format!(
                            "{} is out of range: expected {}",
                            fmt_num(x),
                            self.describe()
                        ));
                    }
                    Ok(Value::Float(x))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Value::Array),
            (Domain::Path, Value::String(s)) => Ok(Value::String(s)),
            (_, other) => Err(format!(
                "{} has the wrong type ({}): expected {}",
                other,
                other.type_str(),
                self.describe()
            )),
        }
    }
}

fn check_word(options: &[&str], word: &str) -> std::result::Result<(), String> {
    if options.contains(&word) {
        return Ok(());
    }
    let hint = nearest(options.iter().copied(), word)
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default();
    Err(format!(
        "'{word}' is not allowed{hint}: expected one of: {}",
        options.join(", ")
    ))
}

/// Formats a number the way a user would type it back.
pub fn fmt_num(x: f64) -> String {
    if x == f64::INFINITY {
        "inf".into()
    } else if x == f64::NEG_INFINITY {
        "-inf".into()
    } else if x != 0.0 && !(1e-4..1e15).contains(&x.abs()) {
        // `1e-300`, not three hundred zeros.
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// One setting of an experiment.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    /// Section heading in `lab show` (fields are listed in table order).
    pub group: &'static str,
    /// What the setting means; printed as a comment by `lab show` and as `--help` text.
    pub doc: &'static str,
    pub domain: Domain,
}

impl Field {
    /// The command-line flag of this field: `tsallis_q` -> `--tsallis-q`.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// The closest known word to `word`, if it is close enough to be a likely typo: at most one
/// edit (insertion, deletion, substitution or swap of neighbours) per three letters.
pub fn nearest<'a>(candidates: impl Iterator<Item = &'a str>, word: &str) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (strsim::osa_distance(c, word), c))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn find_field<'a>(fields: &'a [Field], key: &str) -> std::result::Result<&'a Field, String> {
    fields.iter().find(|f| f.key == key).ok_or_else(|| {
        let hint = nearest(fields.iter().map(|f| f.key), key)
            .map(|n| format!("; did you mean '{n}'?"))
            .unwrap_or_default();
        format!("unknown key '{key}'{hint} (`lab show` lists every key)")
    })
}

/// The layers above the built-in defaults, lowest precedence first.
#[derive(Debug, Default, Clone)]
pub struct SpecLayers {
    /// `--spec FILE`: a TOML spec, or a run manifest (`NAME.run.json`) whose spec is re-used.
    pub file: Option<PathBuf>,
    /// Named flags as (key, text), in field-table order (each field has one flag, so their
    /// order on the command line does not matter).
    pub flags: Vec<(String, String)>,
    /// Trailing `key=value` words.
    pub overrides: Vec<String>,
}

/// Applies `layers` on top of `defaults` and returns the resolved, checked settings.
///
/// Every problem is an [`InputError`](crate::InputError) naming where it came from (file,
/// flag or override), the key, the value and what was expected.
pub fn resolve(
    experiment: &str,
    fields: &[Field],
    defaults: Table,
    layers: &SpecLayers,
) -> Result<Table> {
    let mut spec = defaults;
    if let Some(path) = &layers.file {
        let file_table = read_spec_file(experiment, path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        for (key, value) in file_table {
            let field =
                find_field(fields, &key).map_err(|e| input_error!("{}: {e}", path.display()))?;
            let mut value = field
                .domain
                .check(value)
                .map_err(|e| input_error!("{}: {key}: {e}", path.display()))?;
            if let (Domain::Path, Value::String(s)) = (&field.domain, &value)
                && !s.is_empty()
                && Path::new(s).is_relative()
            {
                value = Value::String(base.join(s).to_string_lossy().into_owned());
            }
            spec.insert(key, value);
        }
    }
    for (key, text) in &layers.flags {
        let field = find_field(fields, key).map_err(|e| input_error!("--{key}: {e}"))?;
        let value = field
            .domain
            .parse_text(text)
            .map_err(|e| input_error!("--{} {text}: {key}: {e}", field.flag()))?;
        spec.insert(key.clone(), value);
    }
    for word in &layers.overrides {
        let (key, text) = word.split_once('=').ok_or_else(|| {
            input_error!("'{word}' is not a setting: expected key=value (e.g. eta=10)")
        })?;
        let key = key.trim();
        let field = find_field(fields, key).map_err(|e| input_error!("'{word}': {e}"))?;
        let value = field
            .domain
            .parse_text(text)
            .map_err(|e| input_error!("'{word}': {key}: {e}"))?;
        spec.insert(key.to_string(), value);
    }
    // Paths are saved absolute, so the manifest re-runs from any working directory.
    for field in fields.iter().filter(|f| matches!(f.domain, Domain::Path)) {
        if let Some(Value::String(s)) = spec.get_mut(field.key)
            && !s.is_empty()
            && let Ok(absolute) = std::path::absolute(Path::new(s.as_str()))
        {
            *s = absolute.to_string_lossy().into_owned();
        }
    }
    Ok(spec)
}

/// Reads a TOML spec file or the `spec` of a run manifest.
fn read_spec_file(experiment: &str, path: &Path) -> Result<Table> {
    if path.extension().is_some_and(|e| e == "json") {
        let manifest = crate::manifest::Manifest::read(path)?.ok_or_else(|| {
            input_error!("cannot read spec file {}: no such file", path.display())
        })?;
        if manifest.experiment != experiment {
            return Err(input_error!(
                "{}: this manifest is a run of '{}', not '{experiment}'",
                path.display(),
                manifest.experiment
            ));
        }
        Ok(manifest.spec)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| input_error!("cannot read spec file {}: {e}", path.display()))?;
        let mut table = toml::from_str::<Table>(&text)
            .map_err(|e| input_error!("{}: not valid TOML: {e}", path.display()))?;
        // `experiment = "EXP"` names the experiment the file is for (`lab run --spec FILE`).
        match table.remove("experiment") {
            None => {}
            Some(Value::String(named)) if named == experiment => {}
            Some(Value::String(named)) => {
                return Err(input_error!(
                    "{}: this spec is for '{named}', not '{experiment}'",
                    path.display()
                ));
            }
            Some(other) => {
                return Err(input_error!(
                    "{}: experiment = {other}: expected the experiment's name as a string",
                    path.display()
                ));
            }
        }
        Ok(table)
    }
}

/// Renders `spec` as commented TOML that `--spec` accepts unchanged, naming its experiment.
pub fn render_commented(
    title: &str,
    experiment: &str,
    fields: &[Field],
    spec: &Table,
) -> Result<String> {
    let mut out = String::new();
    for line in title.lines() {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("\nexperiment = \"{experiment}\"\n"));
    // Fields under their heading, headings in order of first appearance (one section each,
    // even when a table lists a group's fields apart).
    let mut groups: Vec<&str> = Vec::new();
    for field in fields {
        if !groups.contains(&field.group) {
            groups.push(field.group);
        }
    }
    let ordered = groups
        .iter()
        .flat_map(|g| fields.iter().filter(move |f| f.group == *g));
    let mut group = "";
    for field in ordered {
        if field.group != group {
            group = field.group;
            out.push_str(&format!("\n# --- {group} ---\n"));
        }
        out.push('\n');
        for line in field.doc.lines() {
            out.push_str(&format!("# {}\n", line.trim()));
        }
        out.push_str(&format!("# allowed: {}\n", field.domain.describe()));
        let value = spec
            .get(field.key)
            .with_context(|| format!("internal: no default for '{}'", field.key))?;
        out.push_str(&format!("{} = {}\n", field.key, render_value(value)));
    }
    Ok(out)
}

/// A TOML value on one line; a one-word list is shown as the word.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::Array(items) if items.len() == 1 => items[0].to_string(),
        Value::Float(x) if x.is_infinite() => {
            if *x > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        // A valid TOML float either way (`1e-300` rather than three hundred zeros).
        Value::Float(x) if *x != 0.0 && !(1e-4..1e15).contains(&x.abs()) => format!("{x:e}"),
        other => other.to_string(),
    }
}

/// The text of a value for run names and legends: `euclidean+kl`, `0.5`, `file.mdp`.
pub fn value_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Float(x) => fmt_num(*x),
        Value::Integer(i) => i.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Array(items) => items.iter().map(value_label).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lists_parse_check_and_name_bad_items() {
        let widths = Domain::IntList { min: 1, max: 100 };
        assert_eq!(
            widths.parse_text("4, 1,2").unwrap(),
            Value::Array(vec![
                Value::Integer(4),
                Value::Integer(1),
                Value::Integer(2)
            ])
        );
        assert_eq!(
            widths.check(Value::Integer(3)).unwrap(),
            Value::Array(vec![Value::Integer(3)])
        );
        assert!(
            widths
                .parse_text("4,0")
                .unwrap_err()
                .contains("0 is out of range")
        );
        assert!(
            widths
                .parse_text("4,x")
                .unwrap_err()
                .contains("'x' is not an integer")
        );
        let spectrum = Domain::RealList { min: 0.0, max: 1e6 };
        assert_eq!(
            spectrum
                .check(Value::Array(vec![Value::Integer(3), Value::Float(0.5)]))
                .unwrap(),
            Value::Array(vec![Value::Float(3.0), Value::Float(0.5)])
        );
        assert!(
            spectrum
                .parse_text("-1")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            spectrum.check(Value::Array(vec![])).unwrap(),
            Value::Array(vec![])
        );
        assert_eq!(
            widths.check(Value::Array(vec![])).unwrap(),
            Value::Array(vec![])
        );
        assert_eq!(widths.parse_text("[]").unwrap(), Value::Array(vec![]));
        assert_eq!(spectrum.parse_text("").unwrap(), Value::Array(vec![]));
        assert!(
            Domain::ChoiceList(&["a"])
                .check(Value::Array(vec![]))
                .unwrap_err()
                .contains("empty")
        );
    }

    const FIELDS: &[Field] = &[
        Field {
            key: "gamma",
            group: "g",
            doc: "discount",
            domain: Domain::Real {
                min: 0.0,
                max: 1.0,
                min_open: true,
                max_open: true,
            },
        },
        Field {
            key: "states",
            group: "g",
            doc: "number of states",
            domain: Domain::Int { min: 1, max: 1000 },
        },
        Field {
            key: "divergence",
            group: "g",
            doc: "mirror maps",
            domain: Domain::ChoiceList(&["euclidean", "kl"]),
        },
    ];

    fn defaults() -> Table {
        toml::from_str("gamma = 0.9\nstates = 10\ndivergence = [\"kl\"]").unwrap()
    }

    #[test]
    fn layers_apply_in_order() {
        let layers = SpecLayers {
            file: None,
            flags: vec![("gamma".into(), "0.5".into())],
            overrides: vec!["gamma=0.25".into(), "divergence=euclidean,kl".into()],
        };
        let spec = resolve("x", FIELDS, defaults(), &layers).unwrap();
        assert_eq!(spec["gamma"].as_float(), Some(0.25));
        assert_eq!(spec["divergence"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unknown_key_names_the_nearest() {
        let layers = SpecLayers {
            overrides: vec!["gama=0.5".into()],
            ..Default::default()
        };
        let err = resolve("x", FIELDS, defaults(), &layers).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown key 'gama'"), "{msg}");
        assert!(msg.contains("did you mean 'gamma'"), "{msg}");
        assert!(err.downcast_ref::<crate::InputError>().is_some());
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        for (text, expect) in [("1.5", "(0, 1)"), ("0", "(0, 1)"), ("abc", "not a number")] {
            let layers = SpecLayers {
                overrides: vec![format!("gamma={text}")],
                ..Default::default()
            };
            let msg = resolve("x", FIELDS, defaults(), &layers)
                .unwrap_err()
                .to_string();
            assert!(msg.contains("gamma") && msg.contains(expect), "{msg}");
        }
        let layers = SpecLayers {
            overrides: vec!["states=0".into()],
            ..Default::default()
        };
        let msg = resolve("x", FIELDS, defaults(), &layers)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("states") && msg.contains("[1, 1000]"), "{msg}");
    }

    #[test]
    fn words_are_checked_with_a_hint() {
        let msg = Domain::ChoiceList(&["euclidean", "kl"])
            .parse_text("euclidian")
            .unwrap_err();
        assert!(msg.contains("did you mean 'euclidean'"), "{msg}");
    }

    #[test]
    fn rendered_spec_reads_back_identically() {
        let text = render_commented("test", "x", FIELDS, &defaults()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, &text).unwrap();
        let layers = SpecLayers {
            file: Some(path),
            ..Default::default()
        };
        let spec = resolve("x", FIELDS, Table::new(), &layers).unwrap();
        assert_eq!(spec, defaults());
    }
}
