//! `lab report DIR`: one self-contained static HTML page of the runs under a directory: the
//! sweep table (or the runs table), every run's standard figures as inline SVG, its claims
//! with their provenance, and the command lines that reproduce it. No script, no network.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::catalog::{self, FoundRun, TextTable};
use crate::claims::Verdict;
use crate::input_error;
use crate::plot::{Figure, render_svg};
use crate::sweep::emit::shell_quote;
use crate::sweep::{SWEEP_CSV, SWEEP_JSON, SweepFile};

/// A written page and what it holds.
pub struct Page {
    pub html: String,
    pub runs: usize,
    pub figures: usize,
}

const STYLE: &str = "\
body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}
.table{max-height:32em;overflow:auto}
.pass{color:#17662a}.fail{color:#b00020;font-weight:bold}.inconclusive{color:#8a6d00}
code,pre{background:#f6f6f6;padding:2px 4px;font-size:12px;white-space:pre-wrap;word-break:break-all}
details{margin:.6em 0;border-top:1px solid #ddd;padding-top:.4em}
summary{cursor:pointer;font-weight:bold}
svg{max-width:100%;height:auto;display:block;margin:.5em 0}
";

/// Text made safe inside HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a run's standard figures are drawn from its CSV (`lab plot`'s way, handed in by the
/// command line), for runs that kept no SVG.
pub type DrawFigures<'a> = &'a dyn Fn(&Path) -> Result<Vec<(String, Figure)>>;

/// The page of the runs under `dir`.
pub fn page(dir: &Path, draw: DrawFigures) -> Result<Page> {
    let runs = catalog::find(dir)?;
    if runs.is_empty() {
        return Err(input_error!(
            "{}: no runs (no NAME.run.json) to report",
            dir.display()
        ));
    }
    let title = format!("lab report: {}", dir.display());
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let mut experiments: Vec<&str> = runs
        .iter()
        .map(|r| r.manifest.experiment.as_str())
        .collect();
    experiments.sort_unstable();
    experiments.dedup();
    let _ = writeln!(
        html,
        "<p>{} runs of {} &middot; written by lab {} &middot; {}</p>",
        runs.len(),
        escape(&experiments.join(", ")),
        env!("CARGO_PKG_VERSION"),
        crate::manifest::timestamp(std::time::SystemTime::now())
    );

    let sweep_file = std::fs::read_to_string(dir.join(SWEEP_JSON))
        .ok()
        .and_then(|t| serde_json::from_str::<SweepFile>(&t).ok());
    // A sweep's runs in grid order (runs outside its grid after them), others as found.
    let mut runs = runs;
    if let Some(sweep) = &sweep_file {
        let place = |r: &FoundRun| {
            sweep
                .points
                .iter()
                .position(|p| *p == r.name)
                .unwrap_or(usize::MAX)
        };
        runs.sort_by_key(|r| place(r));
    }
    match (&sweep_file, read_csv(&dir.join(SWEEP_CSV))) {
        (Some(sweep), Some(table)) => {
            let _ = writeln!(
                html,
                "<h2>Sweep: {} over {}</h2>\n<p>{} points. Run again, or resume, with:</p>\
                 <pre>{}</pre>",
                escape(&sweep.experiment),
                escape(&sweep.axes.join(", ")),
                sweep.points.len(),
                escape(&sweep_command(dir, sweep))
            );
            html += &html_table(&table, true);
        }
        _ => {
            html += "<h2>Runs</h2>\n";
            html += &html_table(&catalog::table(&runs), true);
        }
    }

    html += "<h2>Each run</h2>\n";
    let mut figures = 0;
    for (i, run) in runs.iter().enumerate() {
        figures += run_section(&mut html, run, i == 0, draw);
    }
    html += "</body></html>\n";
    Ok(Page {
        html,
        runs: runs.len(),
        figures,
    })
}

/// `lab sweep EXP --out DIR ...`: the command that gives (or resumes) the sweep.
fn sweep_command(dir: &Path, sweep: &SweepFile) -> String {
    let mut words = vec![
        "lab".to_string(),
        "sweep".into(),
        sweep.experiment.clone(),
        "--out".into(),
        shell_quote(&dir.to_string_lossy()),
    ];
    words.extend(sweep.arguments.iter().map(|w| shell_quote(w)));
    words.join(" ")
}

fn read_csv(path: &Path) -> Option<TextTable> {
    let mut reader = csv::Reader::from_path(path).ok()?;
    let header = reader.headers().ok()?.iter().map(String::from).collect();
    let rows = reader
        .records()
        .filter_map(|r| r.ok())
        .map(|r| r.iter().map(String::from).collect())
        .collect();
    Some(TextTable { header, rows })
}

/// A table; verdict words get their colour.
fn html_table(table: &TextTable, scroll: bool) -> String {
    let mut out = String::new();
    if scroll {
        out += "<div class=\"table\">";
    }
    out += "<table><thead><tr>";
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out += "</tr></thead><tbody>\n";
    for row in &table.rows {
        out += "<tr>";
        for cell in row {
            let class = match cell.as_str() {
                "pass" | "PASS" => " class=\"pass\"",
                "fail" | "FAIL" => " class=\"fail\"",
                "inconclusive" | "INCONCLUSIVE" => " class=\"inconclusive\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out += "</tr>\n";
    }
    out += "</tbody></table>";
    if scroll {
        out += "</div>";
    }
    out + "\n"
}

/// One run: its figures, claims and commands, in a `<details>` (the first one open).
/// Returns the number of figures.
fn run_section(html: &mut String, run: &FoundRun, open: bool, draw: DrawFigures) -> usize {
    let m = &run.manifest;
    let _ = writeln!(
        html,
        "<details{}><summary>{} &mdash; {} &mdash; {}</summary>",
        if open { " open" } else { "" },
        escape(&run.name),
        escape(&m.experiment),
        escape(&m.status.text())
    );
    let dir = run.manifest_path.parent().unwrap_or(Path::new(""));
    let mut figures = 0;
    for svg in m.files.iter().filter(|f| f.ends_with(".svg")) {
        match std::fs::read_to_string(dir.join(svg)) {
            Ok(text) => {
                let start = text.find("<svg").unwrap_or(0);
                let _ = writeln!(
                    html,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    &text[start..],
                    escape(svg)
                );
                figures += 1;
            }
            Err(e) => {
                let _ = writeln!(html, "<p>{}: {}</p>", escape(svg), escape(&e.to_string()));
            }
        }
    }
    // A run that kept no SVG (--format png): its standard figures, drawn again from its CSV.
    if figures == 0 {
        let csv = dir.join(format!("{}.csv", m.name));
        let drawn = draw(&csv).and_then(|figs| {
            figs.into_iter()
                .filter(|(_, f)| !f.is_empty())
                .map(|(suffix, f)| Ok((suffix, render_svg(&f)?)))
                .collect::<Result<Vec<_>>>()
        });
        match drawn {
            Ok(svgs) => {
                for (suffix, svg) in svgs {
                    let _ = writeln!(
                        html,
                        "<figure>{svg}<figcaption>{}{} (drawn from the CSV)</figcaption></figure>",
                        escape(&m.name),
                        escape(&suffix)
                    );
                    figures += 1;
                }
            }
            Err(e) => {
                let _ = writeln!(html, "<p>no figure: {}</p>", escape(&format!("{e:#}")));
            }
        }
    }
    if !m.claims.is_empty() {
        let table = TextTable {
            header: ["claim", "checked on", "verdict", "measured", "source"]
                .map(String::from)
                .to_vec(),
            rows: m
                .claims
                .iter()
                .map(|c| {
                    let kind = c
                        .provenance
                        .get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("");
                    let note = c
                        .provenance
                        .get("note")
                        .and_then(|k| k.as_str())
                        .unwrap_or("");
                    vec![
                        c.id.clone(),
                        c.on.clone(),
                        match c.verdict {
                            Verdict::Pass => "pass",
                            Verdict::Fail => "fail",
                            Verdict::Inconclusive => "inconclusive",
                        }
                        .to_string(),
                        c.measured.clone(),
                        format!("{kind}: {note}"),
                    ]
                })
                .collect(),
        };
        *html += &html_table(&table, false);
    }
    let manifest = run.manifest_path.to_string_lossy();
    let _ = writeln!(
        html,
        "<p>Re-run these settings: <code>lab run {} --spec {}</code><br>Command that wrote \
         it: <code>{}</code></p></details>",
        escape(&m.experiment),
        escape(&shell_quote(&manifest)),
        escape(
            &m.command_line
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        )
    );
    figures
}
