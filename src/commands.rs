//! The five commands: what each prints and which exit code it returns.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::ArgMatches;

use crate::claims::{Verdict, render_table};
use crate::cli::{PlotArgs, spec_layers};
use crate::experiments::{self, Experiment, RunData};
use crate::input_error;
use crate::plot::{Figure, LineRequest, line_panel, render};
use crate::run::{self, RunOptions, Status, with_suffix};
use crate::spec::{render_commented, resolve, value_label};
use crate::table::Table;

/// Exit code of an interrupted run (the shell convention for SIGINT).
const INTERRUPTED: u8 = 130;

pub fn dispatch(matches: &ArgMatches) -> Result<ExitCode> {
    if let Some(&threads) = matches.get_one::<usize>("threads") {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {threads} threads: {e}"))?;
    }
    // Dense factorizations stay sequential: no speed-up at these sizes on 2 cores, and the
    // bits of the result must not depend on the thread count.
    faer::set_global_parallelism(faer::Par::Seq);
    match matches.subcommand() {
        Some(("list", _)) => list(),
        Some(("show", m)) => show(m.get_one::<String>("experiment").expect("required")),
        Some(("run", m)) => {
            let (name, sub) = m.subcommand().expect("subcommand required");
            run(experiments::find(name)?, sub)
        }
        Some(("plot", m)) => plot(&PlotArgs::from_matches(m)),
        Some(("verify", m)) => verify(m.get_one::<String>("experiment").map(String::as_str)),
        _ => unreachable!("clap requires a subcommand"),
    }
}

fn list() -> Result<ExitCode> {
    let all = experiments::registry();
    let width = all.iter().map(|e| e.name().len()).max().unwrap_or(0);
    for exp in all {
        println!("{:<width$} {}", exp.name(), exp.title());
        println!("{:<width$} paper: {}", "", exp.paper());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(name: &str) -> Result<ExitCode> {
    let exp = experiments::find(name)?;
    let title = format!(
        "lab show {}: {}\nPaper: {}\n\nEvery setting with its meaning and allowed values; this file is a valid\n\
         spec: `lab run {} --spec FILE`.",
        exp.name(),
        exp.title(),
        exp.paper(),
        exp.name()
    );
    print!(
        "{}",
        render_commented(&title, exp.fields(), &exp.default_spec())?
    );
    println!(
        "\n# --- claims checked on every run where they apply (`lab verify {}` checks all) ---",
        exp.name()
    );
    for claim in exp.claim_docs() {
        println!("#");
        println!("# {} [{}]", claim.id, claim.provenance.tag());
        println!("#   {}", claim.statement);
        println!("#   source: {}", claim.provenance.note());
    }
    Ok(ExitCode::SUCCESS)
}

fn run(exp: &'static dyn Experiment, m: &ArgMatches) -> Result<ExitCode> {
    let spec = resolve(
        exp.name(),
        exp.fields(),
        exp.default_spec(),
        &spec_layers(exp, m),
    )?;
    if let (Some(exporter), Some(path)) = (exp.exporter(), m.get_one::<PathBuf>("export")) {
        if path.exists() && !m.get_flag("force") {
            return Err(input_error!(
                "{} exists; not overwriting it (use --force)",
                path.display()
            ));
        }
        println!("{}", (exporter.write)(&spec, path)?);
        return Ok(ExitCode::SUCCESS);
    }
    let quiet = m.get_flag("quiet");
    // First Ctrl-C (or SIGTERM): stop at the next iteration and keep the rows. Second: leave
    // at once.
    let _ = ctrlc::set_handler(|| {
        if run::CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
    });
    let options = RunOptions {
        out: m.get_one::<PathBuf>("out").cloned(),
        force: m.get_flag("force"),
        progress: !quiet && std::io::stderr().is_terminal(),
        command_line: std::env::args().collect(),
    };
    let report = run::execute(exp, spec, &options)?;
    let failed_claims = report.claims.iter().any(|c| c.verdict == Verdict::Fail);
    if !quiet {
        print_report(exp, &report);
    }
    Ok(match &report.status {
        Status::Done if failed_claims && m.get_flag("strict") => ExitCode::from(1),
        Status::Done | Status::Running => ExitCode::SUCCESS,
        Status::Interrupted => {
            eprintln!(
                "interrupted: {} rows kept in {}",
                report.rows.len(),
                report.files[0].display()
            );
            ExitCode::from(INTERRUPTED)
        }
        Status::Failed(why) => {
            eprintln!("error: run failed: {why}");
            ExitCode::from(1)
        }
    })
}

fn print_report(exp: &dyn Experiment, report: &run::RunReport) {
    let name = report.prefix.display();
    println!(
        "{name}: {} ({} rows)",
        report.status.text(),
        report.rows.len()
    );
    let keys = report.rows.text_columns();
    for (label, rows) in report.rows.groups(&keys) {
        let last = rows.len().saturating_sub(1);
        let iter = rows
            .num("iter")
            .map(|v| format!("iter {}", v[last]))
            .unwrap_or_default();
        let figures: Vec<String> = exp
            .headline_columns()
            .iter()
            .filter_map(|c| rows.num(c).map(|v| format!("{c} {}", short(v[last]))))
            .collect();
        println!("  {label}: {iter}: {}", figures.join(", "));
    }
    for line in exp.describe_summary(&report.summary) {
        println!("  {line}");
    }
    if !report.claims.is_empty() {
        let count = |v: Verdict| report.claims.iter().filter(|c| c.verdict == v).count();
        println!(
            "theory: {} claims checked: {} pass, {} fail, {} inconclusive",
            report.claims.len(),
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive)
        );
        for line in render_table(&report.claims).lines() {
            println!("  {line}");
        }
    }
    let files: Vec<String> = report
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!("wrote {}", files.join(", "));
}

fn short(x: f64) -> String {
    if x == 0.0 || (1e-3..1e5).contains(&x.abs()) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3e}")
    }
}

fn verify(name: Option<&str>) -> Result<ExitCode> {
    let experiments = match name {
        Some(n) => vec![experiments::find(n)?],
        None => experiments::registry(),
    };
    let mut any_failed = false;
    for exp in experiments {
        println!("{}: {}", exp.name(), exp.title());
        let results = exp.verify()?;
        print!("{}", render_table(&results));
        let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
        println!(
            "{} passed, {} failed, {} inconclusive\n",
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive)
        );
        any_failed |= count(Verdict::Fail) > 0 || count(Verdict::Inconclusive) > 0;
    }
    Ok(if any_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A CSV and its manifest (if any), as plotting sees them.
struct LoadedRun {
    path: PathBuf,
    manifest: Option<serde_json::Value>,
    rows: Table,
}

fn load(path: &Path) -> Result<LoadedRun> {
    if path.extension().is_none_or(|e| e != "csv") {
        return Err(input_error!(
            "{}: expected a .csv file written by `lab run`",
            path.display()
        ));
    }
    let rows = Table::read_csv(path)?;
    let manifest_path = with_suffix(&path.with_extension(""), ".run.json");
    let manifest = run::manifest::read(&manifest_path).unwrap_or(None);
    Ok(LoadedRun {
        path: path.to_path_buf(),
        manifest,
        rows,
    })
}

/// Legend labels: the settings that differ between the runs' manifests; file names for runs
/// without one; nothing for a single run.
fn legend_labels(runs: &[LoadedRun]) -> Vec<String> {
    let stem = |r: &LoadedRun| {
        r.path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned())
    };
    if runs.len() < 2 {
        return vec![String::new(); runs.len()];
    }
    let specs: Vec<Option<toml::Table>> = runs
        .iter()
        .map(|r| {
            r.manifest
                .as_ref()
                .and_then(|m| serde_json::from_value::<toml::Table>(m.get("spec")?.clone()).ok())
        })
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for spec in specs.iter().flatten() {
        for key in spec.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    let differing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let values: Vec<Option<&toml::Value>> = specs
                .iter()
                .map(|s| s.as_ref().and_then(|s| s.get(*k)))
                .collect();
            values.iter().any(|v| *v != values[0])
        })
        .collect();
    runs.iter()
        .zip(&specs)
        .map(|(run, spec)| match spec {
            Some(spec) if !differing.is_empty() => differing
                .iter()
                .filter_map(|k| spec.get(*k).map(|v| format!("{k}={}", value_label(v))))
                .collect::<Vec<_>>()
                .join(", "),
            _ => stem(run),
        })
        .collect()
}

/// Whether a CSV is a second table of a run (`NAME.outcomes.csv`): it has no manifest of its
/// own, and the manifest of `NAME` lists it among its files.
fn is_side_table(path: &Path) -> bool {
    let own = with_suffix(&path.with_extension(""), ".run.json");
    if own.exists() {
        return false;
    }
    let Some(run) = path
        .with_extension("")
        .file_stem()
        .map(|s| path.with_file_name(s))
    else {
        return false;
    };
    let manifest = run::manifest::read(&with_suffix(&run, ".run.json")).unwrap_or(None);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    manifest
        .as_ref()
        .and_then(|m| m.get("files")?.as_array().cloned())
        .is_some_and(|files| files.iter().any(|f| f.as_str() == name.as_deref()))
}

fn plot(args: &PlotArgs) -> Result<ExitCode> {
    // `lab plot out/*.csv` also matches runs' second tables: leave them out (with a note)
    // unless nothing else was named.
    let (side, main): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.csvs.iter().partition(|p| is_side_table(p));
    let chosen: Vec<&PathBuf> = if main.is_empty() {
        side
    } else {
        for path in &side {
            eprintln!(
                "note: leaving out {} (a second table of a run)",
                path.display()
            );
        }
        main
    };
    let loaded: Vec<LoadedRun> = chosen.iter().map(|p| load(p)).collect::<Result<_>>()?;
    let labels = legend_labels(&loaded);
    let experiment_names: Vec<Option<&str>> = loaded
        .iter()
        .map(|r| {
            r.manifest
                .as_ref()
                .and_then(|m| m.get("experiment")?.as_str())
        })
        .collect();
    let runs: Vec<RunData> = loaded
        .iter()
        .zip(labels)
        .map(|(r, label)| RunData {
            label,
            spec: r
                .manifest
                .as_ref()
                .and_then(|m| serde_json::from_value(m.get("spec")?.clone()).ok()),
            summary: r
                .manifest
                .as_ref()
                .and_then(|m| m.get("summary")?.as_object().cloned()),
            rows: r.rows.clone(),
        })
        .collect();

    let figures: Vec<(String, Figure)> = if args.ys.is_empty() {
        let first = experiment_names[0];
        let exp = match first {
            Some(name) if experiment_names.iter().all(|n| *n == first) => experiments::find(name)?,
            _ => {
                return Err(input_error!(
                    "name the columns to plot with --y: {} {} no manifest saying which experiment \
                     wrote {} (columns: {})",
                    loaded[0].path.display(),
                    if loaded.len() > 1 {
                        "and the others have"
                    } else {
                        "has"
                    },
                    if loaded.len() > 1 { "them" } else { "it" },
                    loaded[0].rows.names().join(", ")
                ));
            }
        };
        let mut figures = exp.figures(&runs)?;
        // --logx / --logy switch the axes of the standard convergence figure.
        if let Some((_, main)) = figures.iter_mut().find(|(suffix, _)| suffix.is_empty()) {
            for panel in &mut main.panels {
                panel.logx |= args.logx;
                panel.logy |= args.logy;
            }
        }
        figures
    } else {
        let x = args.x.clone().unwrap_or_else(|| {
            if runs[0].rows.has("iter") {
                "iter".into()
            } else {
                runs[0].rows.names()[0].clone()
            }
        });
        for (run, loaded) in runs.iter().zip(&loaded) {
            for column in std::iter::once(&x).chain(&args.ys) {
                if run.rows.num(column).is_none() {
                    let why = if run.rows.has(column) {
                        "is not numeric"
                    } else {
                        "does not exist"
                    };
                    return Err(input_error!(
                        "{}: column '{column}' {why}; its columns are: {}",
                        loaded.path.display(),
                        run.rows.names().join(", ")
                    ));
                }
            }
            if let Some(group) = &args.group {
                for g in group {
                    if !run.rows.has(g) {
                        return Err(input_error!(
                            "{}: no column '{g}' to group by; its columns are: {}",
                            loaded.path.display(),
                            run.rows.names().join(", ")
                        ));
                    }
                }
            }
        }
        let default_group: Vec<String>;
        let group: Vec<&str> = match &args.group {
            Some(g) => g.iter().map(String::as_str).collect(),
            None => {
                default_group = runs[0]
                    .rows
                    .text_columns()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                default_group.iter().map(String::as_str).collect()
            }
        };
        let ys: Vec<&str> = args.ys.iter().map(String::as_str).collect();
        let y_label = if ys.len() == 1 {
            ys[0].to_string()
        } else {
            String::new()
        };
        let panel = line_panel(
            &runs,
            &LineRequest {
                title: "",
                x: &x,
                ys: &ys,
                group: &group,
                logx: args.logx,
                logy: args.logy,
                y_label: &y_label,
            },
        );
        vec![(String::new(), Figure::single(panel))]
    };

    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_plot_path(&args.csvs),
    };
    let (stem, ext) = match out.extension().and_then(|e| e.to_str()) {
        Some(ext @ ("png" | "svg")) => (out.with_extension(""), ext.to_string()),
        _ => {
            return Err(input_error!(
                "{}: expected an image name ending in .png or .svg",
                out.display()
            ));
        }
    };
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| input_error!("cannot create {}: {e}", dir.display()))?;
    }
    for (suffix, mut figure) in figures {
        if let Some(title) = &args.title {
            figure.title = title.clone();
        }
        let path = with_suffix(&stem, &format!("{suffix}.{ext}"));
        render(&figure, &path)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `out/x.plot.png` for one CSV; `overlay-<hash>.png` beside the first of several.
fn default_plot_path(csvs: &[PathBuf]) -> PathBuf {
    let first = &csvs[0];
    if csvs.len() == 1 {
        return with_suffix(&first.with_extension(""), ".plot.png");
    }
    let joined: String = csvs
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("\n");
    let hash = run::stable_hash(&joined);
    first
        .parent()
        .unwrap_or(Path::new(""))
        .join(format!("overlay-{}.png", &format!("{hash:016x}")[..8]))
}
