//! The commands: what each prints and which exit code it returns.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::ArgMatches;

use crate::catalog;
use crate::claims::{ClaimResult, Outcome, Verdict, render_table};
use crate::cli::{PlotArgs, spec_layers};
use crate::contract::{AnyExperiment, StoredRun};
use crate::experiments;
use crate::input_error;
use crate::manifest::{Manifest, Status};
use crate::plot::{Figure, LabelledRows, LineRequest, line_panel, render};
use crate::run::{self, RunOptions, with_suffix};
use crate::spec::{render_commented, resolve, value_label};
use crate::sweep::{self, Shard, SweepArgs, emit::SlurmOptions};
use crate::table::{Table, short_real};

/// Exit code of an interrupted run (the shell convention for SIGINT).
const INTERRUPTED: u8 = 130;

/// How many worker threads per core `--threads` accepts: more only adds contention (a run
/// with thousands of threads stalls the machine).
const THREADS_PER_CORE: usize = 4;

pub fn dispatch(matches: &ArgMatches) -> Result<ExitCode> {
    if let Some(&threads) = matches.get_one::<usize>("threads") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most = THREADS_PER_CORE * cores;
        if threads == 0 || threads > most {
            return Err(input_error!(
                "--threads {threads}: expected 1 to {most} ({THREADS_PER_CORE} per core on this \
                 machine's {cores}); results do not depend on it"
            ));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
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
        Some(("sweep", m)) => {
            let (name, sub) = m.subcommand().expect("subcommand required");
            sweep(experiments::find(name)?, sub)
        }
        Some(("plot", m)) => plot(&PlotArgs::from_matches(m)),
        Some(("runs", m)) => runs(m),
        Some(("report", m)) => report(m),
        Some(("verify", m)) => verify(m.get_one::<String>("experiment").map(String::as_str)),
        _ => unreachable!("clap requires a subcommand"),
    }
}

/// One line per experiment: its name, title and paper (by its arXiv id; `lab show EXP`
/// gives the whole reference).
fn list() -> Result<ExitCode> {
    let all = experiments::registry();
    let width = all.iter().map(|e| e.name().len()).max().unwrap_or(0);
    for exp in all {
        let paper = exp
            .paper()
            .split_whitespace()
            .find(|w| w.starts_with("arXiv:"))
            .map(|w| w.trim_end_matches([',', ';', '.']).to_string())
            .unwrap_or_default();
        // One line: the title up to its colon (`lab show EXP` has the rest).
        let title = exp.title().split(':').next().unwrap_or_default();
        println!("{:<width$} {paper:<18} {title}", exp.name());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(name: &str) -> Result<ExitCode> {
    let exp = experiments::find(name)?;
    let title = format!(
        "lab show {}: {}\nPaper: {}\n\nEvery setting with its meaning and allowed values; this file is a valid\n\
         spec: `lab run --spec FILE`.",
        exp.name(),
        exp.title(),
        exp.paper(),
    );
    print!(
        "{}",
        render_commented(&title, exp.name(), exp.fields(), &exp.default_spec())?
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

fn run(exp: &'static dyn AnyExperiment, m: &ArgMatches) -> Result<ExitCode> {
    let spec = resolve(
        exp.name(),
        exp.fields(),
        exp.default_spec(),
        &spec_layers(exp, m),
    )?;
    if let Some(path) = m.get_one::<PathBuf>("export") {
        if path.exists() && !m.get_flag("force") {
            return Err(input_error!(
                "{} exists; not overwriting it (use --force)",
                path.display()
            ));
        }
        println!("{}", exp.export(&spec, path)?);
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
        formats: m
            .get_many::<String>("format")
            .map(|f| f.cloned().collect())
            .unwrap_or_default(),
        progress: !quiet && std::io::stderr().is_terminal(),
        command_line: command_line(),
    };
    let mut report = run::execute(exp, spec, &options)?;
    // A claim recorded as failing on this spec file (a finding, with its reason) prints as
    // the expected deviation it is, as `lab verify` prints it.
    let spec_file = m
        .get_one::<PathBuf>("spec")
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned());
    if let Some(file) = spec_file {
        for claim in report
            .claims
            .iter_mut()
            .filter(|c| c.verdict == Verdict::Fail)
        {
            if let Some((_, _, why)) = exp
                .findings()
                .iter()
                .find(|(f, id, _)| *f == file && *id == claim.id)
            {
                claim.deviation = Some(*why);
            }
        }
    }
    let fails = |c: &&ClaimResult| c.verdict == Verdict::Fail && c.deviation.is_none();
    let failed_claims = report.claims.iter().any(|c| fails(&c));
    if !quiet {
        print_report(&report);
    }
    Ok(match &report.status {
        Status::Done if failed_claims && m.get_flag("strict") => {
            let failed: Vec<&str> = report
                .claims
                .iter()
                .filter(fails)
                .map(|c| c.id.as_str())
                .collect();
            eprintln!(
                "error: --strict: {} claim(s) failed: {} (the manifest has the figures)",
                failed.len(),
                failed.join(", ")
            );
            ExitCode::from(1)
        }
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

/// Ctrl-C (or SIGTERM) once: stop at the next iteration and keep the rows; twice: leave at
/// once.
fn stop_on_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if run::CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
    });
}

fn command_line() -> Vec<String> {
    // A path that is not UTF-8 is recorded with replacement characters, not refused.
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn sweep(exp: &'static dyn AnyExperiment, m: &ArgMatches) -> Result<ExitCode> {
    let quiet = m.get_flag("quiet");
    if m.get_one::<usize>("jobs") == Some(&0) {
        return Err(input_error!("-j 0: expected 1 or more points at once"));
    }
    let shard = m
        .get_one::<String>("shard")
        .map(|s| Shard::parse(s))
        .transpose()?;
    let emit = m.get_one::<String>("emit").map(String::as_str);
    // Slurm's flags mean nothing without --emit slurm: say so rather than ignore them.
    for flag in ["tasks", "throttle", "time", "mem", "cpus", "partition"] {
        let given = m.value_source(flag) == Some(clap::parser::ValueSource::CommandLine);
        if given && emit != Some("slurm") {
            return Err(input_error!(
                "--{flag} shapes the Slurm job array: it goes with --emit slurm"
            ));
        }
    }
    if emit == Some("slurm") && m.get_one::<usize>("jobs").is_some() {
        return Err(input_error!(
            "-j with --emit slurm: each array task runs its points on --cpus N threads; give \
             --cpus instead"
        ));
    }
    if emit.is_some() && shard.is_some() {
        return Err(input_error!(
            "--shard runs a part of the points; --emit writes the whole sweep for an engine: \
             use one"
        ));
    }
    let args = SweepArgs {
        layers: spec_layers(exp, m),
        words: m
            .get_many::<String>("words")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        seeds: m.get_one::<String>("seeds").cloned(),
        out: m.get_one::<PathBuf>("out").cloned(),
        jobs: m.get_one::<usize>("jobs").copied(),
        force: m.get_flag("force"),
        formats: m
            .get_many::<String>("format")
            .map(|f| f.cloned().collect())
            .unwrap_or_default(),
        quiet,
        progress: !quiet && std::io::stderr().is_terminal(),
        shard,
        command_line: command_line(),
    };
    let plan = sweep::plan(exp, &args)?;
    let lab = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("lab"));
    match emit {
        Some("slurm") => {
            let options = SlurmOptions {
                tasks: m.get_one::<usize>("tasks").copied(),
                throttle: m.get_one::<usize>("throttle").copied(),
                time: m.get_one::<String>("time").cloned().unwrap_or_default(),
                mem: m.get_one::<String>("mem").cloned().unwrap_or_default(),
                cpus: m.get_one::<usize>("cpus").copied().unwrap_or(1),
                partition: m.get_one::<String>("partition").cloned(),
            };
            for (flag, value) in [
                ("--tasks", options.tasks),
                ("--throttle", options.throttle),
                ("--cpus", Some(options.cpus)),
            ] {
                if value == Some(0) {
                    return Err(input_error!("{flag} 0: expected 1 or more"));
                }
            }
            SlurmOptions::check_time(&options.time)?;
            SlurmOptions::check_mem(&options.mem)?;
            let (path, tasks, pending) = sweep::emit_slurm(&plan, &args, &lab, &options)?;
            println!(
                "wrote {} ({} points in {tasks} array tasks, {pending} of them not done); submit \
                 it with: sbatch {}",
                path.display(),
                plan.points.len(),
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(_) => {
            let commands = sweep::emit_commands(&plan, &args, &lab)?;
            for c in &commands {
                println!("{c}");
            }
            eprintln!(
                "{} of {} points to run; after they ran, `lab sweep` with the same arguments \
                 writes {}",
                commands.len(),
                plan.points.len(),
                plan.dir.join(sweep::SWEEP_CSV).display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    stop_on_ctrl_c();
    let tally = sweep::execute(&plan, &args)?;
    let shard_note = args
        .shard
        .map(|s| format!(", {} in shard {}/{}", tally.points, s.index, s.count))
        .unwrap_or_default();
    let mut parts = vec![
        format!("{} ran", tally.ran),
        format!("{} already done", tally.skipped),
    ];
    if tally.failed > 0 {
        parts.push(format!("{} failed", tally.failed));
    }
    if tally.busy > 0 {
        parts.push(format!("{} being run by another lab process", tally.busy));
    }
    if tally.interrupted > 0 {
        parts.push(format!("{} interrupted or not started", tally.interrupted));
    }
    println!(
        "sweep {}: {}{shard_note}: {}",
        plan.dir.display(),
        plural(plan.points.len(), "point"),
        parts.join(", ")
    );
    println!("wrote {}", plan.dir.join(sweep::SWEEP_CSV).display());
    Ok(if tally.interrupted > 0 {
        eprintln!(
            "interrupted: finished points are kept; run the same command again to run the rest"
        );
        ExitCode::from(INTERRUPTED)
    } else if tally.failed > 0 {
        eprintln!(
            "error: {} failed (the lines above and sweep.csv say why)",
            plural(tally.failed, "point")
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &run::RunReport) {
    let name = report.prefix.display();
    println!(
        "{name}: {} ({} rows)",
        report.status.text(),
        report.rows.len()
    );
    let keys = report.rows.text_columns();
    for (label, rows) in report.rows.groups(&keys) {
        let last = rows.len().saturating_sub(1);
        let mut parts: Vec<String> = rows
            .num("iter")
            .map(|v| format!("iter {}", v[last]))
            .into_iter()
            .collect();
        // A value the run did not compute (an empty cell) is left out, not printed as NaN.
        parts.extend(report.headline.iter().filter_map(|c| {
            let v = rows.num(c)?[last];
            (!v.is_nan()).then(|| format!("{c} {}", short_real(v)))
        }));
        // The last row of a group of several seeds or starts is one of them: say which.
        let mut names: Vec<String> = if label.is_empty() {
            Vec::new()
        } else {
            vec![label]
        };
        for column in ["seed", "start"] {
            if let Some(values) = rows.num(column) {
                let mut distinct = values.to_vec();
                distinct.sort_by(f64::total_cmp);
                distinct.dedup();
                if distinct.len() > 1 {
                    let n = distinct.len();
                    names.push(format!("{column} {} (the last of {n})", values[last]));
                }
            }
        }
        let label = names.join(", ");
        if parts.is_empty() {
            continue;
        }
        if label.is_empty() {
            println!("  {}", parts.join(", "));
        } else {
            println!("  {label}: {}", parts.join(", "));
        }
    }
    for line in &report.description {
        println!("  {line}");
    }
    if !report.claims.is_empty() {
        let count = |v: Verdict| {
            report
                .claims
                .iter()
                .filter(|c| c.verdict == v && c.deviation.is_none())
                .count()
        };
        let deviating = report
            .claims
            .iter()
            .filter(|c| c.deviation.is_some())
            .count();
        println!(
            "theory: {} checked: {} pass, {} fail, {} inconclusive{}",
            plural(report.claims.len(), "claim"),
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive),
            if deviating > 0 {
                format!(", {deviating} deviate as recorded in this spec file's findings")
            } else {
                String::new()
            }
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

/// "1 claim", "3 claims".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `lab verify`: exit 0 when every claim passes or deviates from the paper as declared; 1 when
/// one fails, is inconclusive, or a declared deviation passes (the record must be updated).
fn verify(name: Option<&str>) -> Result<ExitCode> {
    let experiments = match name {
        Some(n) => vec![experiments::find(n)?],
        None => experiments::registry().to_vec(),
    };
    let mut all_hold = true;
    for exp in experiments {
        println!("{}: {}", exp.name(), exp.title());
        let results = exp.verify()?;
        print!("{}", render_table(&results));
        let count = |o: Outcome| results.iter().filter(|r| r.outcome() == o).count();
        let mut tally = format!(
            "{} passed, {} failed, {} inconclusive",
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Inconclusive)
        );
        if count(Outcome::Deviates) > 0 {
            tally += &format!(", {} expected deviations", count(Outcome::Deviates));
        }
        if count(Outcome::UnexpectedPass) > 0 {
            tally += &format!(
                ", {} declared deviations now pass (update the record)",
                count(Outcome::UnexpectedPass)
            );
        }
        println!("{tally}\n");
        all_hold &= results.iter().all(|r| r.outcome().holds());
    }
    Ok(if all_hold {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A CSV and its manifest (if any), as plotting sees them.
struct LoadedRun {
    path: PathBuf,
    manifest_path: PathBuf,
    manifest: Option<Manifest>,
    rows: Table,
    /// For a sweep's table: what it varies, and how many points were left out.
    sweep: Option<SweepTable>,
}

/// A sweep's `sweep.csv` as `lab plot` reads it: only its done points are drawn, and its lines
/// are told apart by its axes and series keys (not by its status, claim or run columns).
struct SweepTable {
    axes: Vec<String>,
    series: Vec<String>,
    not_done: usize,
}

impl LabelledRows for (crate::plot::Key, &LoadedRun) {
    fn key(&self) -> &[(String, String)] {
        &self.0
    }
    fn rows(&self) -> &Table {
        &self.1.rows
    }
}

fn load(path: &Path) -> Result<LoadedRun> {
    if path.extension().is_none_or(|e| e != "csv") {
        return Err(input_error!(
            "{}: expected a .csv file written by `lab run`",
            path.display()
        ));
    }
    let mut rows = Table::read_csv(path)?;
    let manifest_path = with_suffix(&path.with_extension(""), ".run.json");
    let manifest = Manifest::read(&manifest_path)?;
    let mut sweep = None;
    if is_sweep_table(path) {
        let file = path.with_file_name(sweep::SWEEP_JSON);
        let axes = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<sweep::SweepFile>(&t).ok())
            .ok_or_else(|| input_error!("{}: not a sweep file", file.display()))?
            .axes;
        // The series keys stand between the axes and `status`.
        let names = rows.names().to_vec();
        let status = names
            .iter()
            .position(|n| n == "status")
            .unwrap_or(names.len());
        let series = names[axes.len().min(status)..status].to_vec();
        let done: Vec<bool> = rows.text("status").map_or(vec![true; rows.len()], |s| {
            s.iter().map(|s| s == "done").collect()
        });
        let not_done = done.iter().filter(|d| !**d).count();
        rows = rows.filter(|i| done[i]);
        sweep = Some(SweepTable {
            axes,
            series,
            not_done,
        });
    }
    Ok(LoadedRun {
        path: path.to_path_buf(),
        manifest_path,
        manifest,
        rows,
        sweep,
    })
}

/// What tells the runs apart: the settings that differ between their manifests, each number
/// of a setting in one format (`1e-3`, `2.5e-4`, `5e-5`); file names for runs without one;
/// nothing for a single run.
fn legend_keys(runs: &[LoadedRun]) -> Vec<crate::plot::Key> {
    let stem = |r: &LoadedRun| {
        r.path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned())
    };
    if runs.len() < 2 {
        return vec![Vec::new(); runs.len()];
    }
    let specs: Vec<Option<&toml::Table>> = runs
        .iter()
        .map(|r| r.manifest.as_ref().map(|m| &m.spec))
        .collect();
    let mut keys: Vec<&String> = Vec::new();
    for spec in specs.iter().flatten() {
        for key in spec.keys() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut differing: Vec<&String> = keys
        .into_iter()
        .filter(|k| {
            let values: Vec<Option<&toml::Value>> =
                specs.iter().map(|s| s.and_then(|s| s.get(*k))).collect();
            values.iter().any(|v| *v != values[0])
        })
        .collect();
    // Seeds of one setting are repetitions, not another setting: when the runs also differ in
    // something else, the seeds of a setting share its colour and pattern (one legend entry),
    // so a sweep over settings and seeds stays readable.
    if differing.len() > 1 {
        differing.retain(|k| *k != "seed");
    }
    let formats: Vec<NumberFormat> = differing
        .iter()
        .map(|k| NumberFormat::of(specs.iter().flatten().filter_map(|s| s.get(*k))))
        .collect();
    runs.iter()
        .zip(&specs)
        .map(|(run, spec)| match spec {
            Some(spec) if !differing.is_empty() => differing
                .iter()
                .zip(&formats)
                .filter_map(|(k, format)| spec.get(*k).map(|v| (k.to_string(), format.label(v))))
                .collect(),
            _ => vec![("run".to_string(), stem(run))],
        })
        .collect()
}

/// How the values of one setting print in legends: all in one format.
enum NumberFormat {
    /// Not all numbers, or all integers: as they are.
    AsIs,
    /// Reals of one order of magnitude: the shortest decimal.
    Plain,
    /// Reals across orders of magnitude: `2.5e-4`.
    Scientific,
}

impl NumberFormat {
    fn of<'a>(values: impl Iterator<Item = &'a toml::Value>) -> NumberFormat {
        let mut reals = Vec::new();
        for v in values {
            match v {
                toml::Value::Float(x) => reals.push(*x),
                toml::Value::Integer(_) => {}
                _ => return NumberFormat::AsIs,
            }
        }
        let magnitudes: Vec<f64> = reals
            .iter()
            .filter(|x| **x != 0.0)
            .map(|x| x.abs())
            .collect();
        let (lo, hi) = magnitudes
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        if reals.is_empty() {
            NumberFormat::AsIs
        } else if lo < 1e-3 || hi >= 1e5 || hi / lo >= 100.0 {
            NumberFormat::Scientific
        } else {
            NumberFormat::Plain
        }
    }

    fn label(&self, value: &toml::Value) -> String {
        let x = match value {
            toml::Value::Float(x) => *x,
            toml::Value::Integer(i) => *i as f64,
            other => return value_label(other),
        };
        match self {
            NumberFormat::AsIs => value_label(value),
            NumberFormat::Plain => format!("{x}"),
            NumberFormat::Scientific if x == 0.0 => "0".into(),
            NumberFormat::Scientific => format!("{x:e}"),
        }
    }
}

/// Orders runs by the settings that tell them apart, numbers by value.
fn sort_by_key(runs: &mut [(crate::plot::Key, LoadedRun)]) {
    runs.sort_by(|(a, _), (b, _)| {
        for ((_, x), (_, y)) in a.iter().zip(b) {
            let order = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => x.cmp(y),
            };
            if order.is_ne() {
                return order;
            }
        }
        std::cmp::Ordering::Equal
    });
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
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Manifest::read(&with_suffix(&run, ".run.json"))
        .ok()
        .flatten()
        .is_some_and(|m| m.files.iter().any(|f| Some(f) == name.as_ref()))
}

/// Whether a CSV is a sweep's table (`DIR/sweep.csv` beside `DIR/sweep.json`).
fn is_sweep_table(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == sweep::SWEEP_CSV)
        && path.with_file_name(sweep::SWEEP_JSON).exists()
}

fn plot(args: &PlotArgs) -> Result<ExitCode> {
    // `lab plot out/*.csv` also matches runs' second tables and a sweep's table: leave them
    // out (with a note) unless nothing else was named.
    let (side, main): (Vec<&PathBuf>, Vec<&PathBuf>) = args
        .csvs
        .iter()
        .partition(|p| is_side_table(p) || is_sweep_table(p));
    let chosen: Vec<&PathBuf> = if main.is_empty() {
        side
    } else {
        for path in &side {
            let what = if is_sweep_table(path) {
                "a sweep's table: plot it alone with --x SETTING --y final_METRIC"
            } else {
                "a second table of a run"
            };
            eprintln!("note: leaving out {} ({what})", path.display());
        }
        main
    };
    let loaded: Vec<LoadedRun> = chosen.iter().map(|p| load(p)).collect::<Result<_>>()?;
    let (keys, loaded) = keyed_runs(loaded);
    let figures = if args.ys.is_empty() {
        standard_figures(args, loaded, keys)?
    } else {
        let runs: Vec<(crate::plot::Key, &LoadedRun)> = keys.into_iter().zip(&loaded).collect();
        vec![(String::new(), Figure::single(column_panel(args, &runs)?))]
    };
    if figures.iter().all(|(_, f)| f.is_empty()) {
        return Err(input_error!(
            "nothing to draw: no numeric point of {} is left{}",
            if args.ys.is_empty() {
                "the standard figure".to_string()
            } else {
                args.ys.join(", ")
            },
            if args.logx || args.logy {
                " on log axes (values <= 0 cannot be drawn there)"
            } else {
                ""
            }
        ));
    }

    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_plot_path(&chosen),
    };
    let (stem, ext) = match out.extension().and_then(|e| e.to_str()) {
        Some(ext @ ("png" | "svg" | "pdf")) => (out.with_extension(""), ext.to_string()),
        _ => {
            return Err(input_error!(
                "{}: expected an image name ending in .png, .svg or .pdf",
                out.display()
            ));
        }
    };
    run::create_parent(&out)?;
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

/// The standard figures of runs of one experiment, as `lab plot CSV...` draws them: each with
/// its file suffix (`""`, `".landscape"`, ...).
pub fn standard_figures_of(csvs: &[PathBuf]) -> Result<Vec<(String, Figure)>> {
    let loaded: Vec<LoadedRun> = csvs.iter().map(|p| load(p)).collect::<Result<_>>()?;
    let (keys, loaded) = keyed_runs(loaded);
    let no_flags = PlotArgs {
        csvs: csvs.to_vec(),
        ..Default::default()
    };
    standard_figures(&no_flags, loaded, keys)
}

/// The runs in the order of the settings that tell them apart, with those settings.
fn keyed_runs(loaded: Vec<LoadedRun>) -> (Vec<crate::plot::Key>, Vec<LoadedRun>) {
    let mut keyed: Vec<(crate::plot::Key, LoadedRun)> =
        legend_keys(&loaded).into_iter().zip(loaded).collect();
    sort_by_key(&mut keyed);
    keyed.into_iter().unzip()
}

/// The experiment's standard figures for runs of one experiment (named by their manifests).
fn standard_figures(
    args: &PlotArgs,
    loaded: Vec<LoadedRun>,
    keys: Vec<crate::plot::Key>,
) -> Result<Vec<(String, Figure)>> {
    let without: Vec<&LoadedRun> = loaded.iter().filter(|r| r.manifest.is_none()).collect();
    if let Some(sweep) = without.first().and_then(|r| r.sweep.as_ref()) {
        let first = &without[0];
        let axis = sweep
            .axes
            .iter()
            .find(|a| first.rows.num(a).is_some())
            .map_or("SETTING", String::as_str);
        let metric = first
            .rows
            .names()
            .iter()
            .find(|n| n.starts_with("final_") && *n != "final_iter")
            .map_or("final_METRIC", String::as_str);
        return Err(input_error!(
            "{} is a sweep's table: name what to draw, e.g. --x {axis} --y {metric} (its \
             columns: {})",
            first.path.display(),
            first.rows.names().join(", ")
        ));
    }
    if let Some(first) = without.first() {
        return Err(input_error!(
            "name the columns to plot with --y: {} has no manifest ({}) saying which experiment \
             wrote it (its columns: {})",
            first.path.display(),
            first.manifest_path.display(),
            first.rows.names().join(", ")
        ));
    }
    let names: Vec<&str> = loaded
        .iter()
        .filter_map(|r| r.manifest.as_ref().map(|m| m.experiment.as_str()))
        .collect();
    if let Some(other) = names.iter().position(|n| *n != names[0]) {
        return Err(input_error!(
            "{} is a run of '{}' and {} a run of '{}': one standard figure draws runs of one \
             experiment; name the columns to compare with --y",
            loaded[0].path.display(),
            names[0],
            loaded[other].path.display(),
            names[other]
        ));
    }
    let exp = experiments::find(names[0])?;
    let runs: Vec<StoredRun> = loaded
        .into_iter()
        .zip(keys)
        .filter_map(|(r, key)| {
            r.manifest.map(|m| StoredRun {
                key,
                manifest_path: r.manifest_path,
                spec: m.spec,
                summary: m.summary,
                rows: r.rows,
            })
        })
        .collect();
    let mut figures = exp.figures(runs)?;
    // --logx / --logy switch the axes of the standard convergence figure.
    if let Some((_, main)) = figures.iter_mut().find(|(suffix, _)| suffix.is_empty()) {
        for panel in &mut main.panels {
            panel.logx |= args.logx;
            panel.logy |= args.logy;
        }
    }
    Ok(figures)
}

/// One panel of the named columns against `--x`.
fn column_panel(
    args: &PlotArgs,
    runs: &[(crate::plot::Key, &LoadedRun)],
) -> Result<crate::plot::Panel> {
    let first = &runs[0].1.rows;
    // Without --x: the run's step axis if it has one, else its first numeric column.
    let x = args.x.clone().unwrap_or_else(|| {
        ["iter", "step", "epoch", "comms", "t"]
            .iter()
            .find(|c| first.num(c).is_some())
            .map(|c| c.to_string())
            .or_else(|| {
                first
                    .names()
                    .iter()
                    .find(|c| first.num(c).is_some())
                    .cloned()
            })
            .unwrap_or_else(|| first.names()[0].clone())
    });
    for (_, loaded) in runs {
        for column in std::iter::once(&x).chain(&args.ys) {
            if loaded.rows.num(column).is_none() {
                let why = if loaded.rows.has(column) {
                    "is not numeric"
                } else {
                    "does not exist"
                };
                return Err(input_error!(
                    "{}: column '{column}' {why}; its columns are: {}",
                    loaded.path.display(),
                    loaded.rows.names().join(", ")
                ));
            }
        }
        for g in args.group.iter().flatten() {
            if !loaded.rows.has(g) {
                return Err(input_error!(
                    "{}: no column '{g}' to group by; its columns are: {}",
                    loaded.path.display(),
                    loaded.rows.names().join(", ")
                ));
            }
        }
    }
    let group: Vec<&str> = match (&args.group, &runs[0].1.sweep) {
        (Some(g), _) => g.iter().map(String::as_str).collect(),
        // A sweep's lines: its other axes (seeds drawn as a median and band) and series.
        (None, Some(sweep)) => sweep
            .axes
            .iter()
            .filter(|a| **a != x && *a != "seed")
            .chain(&sweep.series)
            .map(String::as_str)
            .collect(),
        (None, None) => first.text_columns(),
    };
    let ys: Vec<&str> = args.ys.iter().map(String::as_str).collect();
    let y_label = if ys.len() == 1 { ys[0] } else { "" };
    let mut panel = line_panel(
        runs,
        &LineRequest {
            title: "",
            x: &x,
            ys: &ys,
            group: &group,
            logx: args.logx,
            logy: args.logy,
            y_label,
        },
    );
    // A log axis cannot show values <= 0 (a gap of exactly 0 is a result): say how many.
    let hidden = panel
        .series
        .iter()
        .filter(|s| s.style == crate::plot::Style::Line)
        .flat_map(|s| &s.points)
        .filter(|(px, py)| (args.logx && *px <= 0.0) || (args.logy && *py <= 0.0))
        .count();
    let mut notes = Vec::new();
    if let Some(most) = median_over_repeated_x(&mut panel) {
        notes.push(format!(
            "median line; band: smallest to largest of the up to {most} rows at one {x}"
        ));
    }
    if hidden > 0 {
        notes.push(format!(
            "{} <= 0 not drawn on the log axis",
            plural(hidden, "value")
        ));
    }
    let not_done: usize = runs
        .iter()
        .filter_map(|(_, r)| r.sweep.as_ref())
        .map(|s| s.not_done)
        .sum();
    if not_done > 0 {
        notes.push(format!(
            "{} not done left out (lab runs lists them)",
            plural(not_done, "point")
        ));
    }
    panel.title = notes.join("; ");
    Ok(panel)
}

/// A line whose rows repeat x values (a sweep's seeds at one eta, a run's starts at one
/// iteration) would zigzag between them: it becomes the median at each x, with markers, over
/// the band from the smallest to the largest value there. Returns the most rows at one x, if
/// any line had repeats.
fn median_over_repeated_x(panel: &mut crate::plot::Panel) -> Option<usize> {
    use crate::plot::{Series, Style};
    let mut most = None;
    let mut series = Vec::with_capacity(panel.series.len());
    for s in std::mem::take(&mut panel.series) {
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let repeats = points.windows(2).any(|w| w[0].0 == w[1].0);
        if s.style != Style::Line || !repeats {
            series.push(s);
            continue;
        }
        let (mut median, mut upper, mut lower) = (Vec::new(), Vec::new(), Vec::new());
        for same_x in points.chunk_by(|a, b| a.0 == b.0) {
            let mut ys: Vec<f64> = same_x.iter().map(|p| p.1).collect();
            ys.sort_by(f64::total_cmp);
            let n = ys.len();
            most = Some(most.unwrap_or(0).max(n));
            let mid = if n % 2 == 1 {
                ys[n / 2]
            } else {
                0.5 * (ys[n / 2 - 1] + ys[n / 2])
            };
            let x = same_x[0].0;
            median.push((x, mid));
            upper.push((x, ys[n - 1]));
            lower.push((x, ys[0]));
        }
        lower.reverse();
        upper.extend(lower);
        series.push(Series {
            points: upper,
            style: Style::Band,
            key: s.key.clone(),
            ..Default::default()
        });
        series.push(Series {
            points: median,
            style: Style::LineWithMarkers,
            ..s
        });
    }
    panel.series = series;
    most
}

/// `out/x.plot.png` for one CSV; `overlay-<hash>.png` beside the first of several.
fn default_plot_path(csvs: &[&PathBuf]) -> PathBuf {
    let first = &csvs[0];
    if csvs.len() == 1 {
        return with_suffix(&first.with_extension(""), ".plot.png");
    }
    let joined: String = csvs
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("\n");
    let hash = crate::random::stable_hash(&joined);
    first
        .parent()
        .unwrap_or(Path::new(""))
        .join(format!("overlay-{}.png", &format!("{hash:016x}")[..8]))
}

/// `lab runs [DIR]`: the table of the runs under DIR.
fn runs(m: &ArgMatches) -> Result<ExitCode> {
    let dir = m.get_one::<PathBuf>("dir").expect("has a default");
    let filter = catalog::Filter {
        wheres: m
            .get_many::<String>("where")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        status: m.get_one::<String>("status").cloned(),
    };
    let found = catalog::find(dir)?;
    let total = found.len();
    let kept = catalog::filter(found, &filter)?;
    let table = catalog::table(&kept);
    if m.get_flag("csv") {
        print!("{}", table.to_csv()?);
    } else if kept.is_empty() {
        println!(
            "no runs{} under {} ({total} in all)",
            if total > 0 { " match" } else { "" },
            dir.display()
        );
    } else {
        print!("{}", table.aligned(40));
        println!(
            "{} of {total}; `lab runs {} --csv` prints every cell",
            plural(kept.len(), "run"),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab report DIR`: one static HTML page of the runs under DIR.
fn report(m: &ArgMatches) -> Result<ExitCode> {
    let dir = m.get_one::<PathBuf>("dir").expect("required");
    let out = m
        .get_one::<PathBuf>("out")
        .cloned()
        .unwrap_or_else(|| dir.join("report.html"));
    if out.extension().is_none_or(|e| e != "html") || out.is_dir() {
        return Err(input_error!(
            "{}: expected a file name ending in .html",
            out.display()
        ));
    }
    if out.exists() && !m.get_flag("force") {
        return Err(input_error!(
            "{} exists; not overwriting it (use --force)",
            out.display()
        ));
    }
    let draw = |csv: &Path| standard_figures_of(&[csv.to_path_buf()]);
    let page = crate::report::page(dir, &draw)?;
    run::create_parent(&out)?;
    std::fs::write(&out, page.html)
        .map_err(|e| input_error!("cannot write {}: {e}", out.display()))?;
    println!(
        "wrote {} ({}, {})",
        out.display(),
        plural(page.runs, "run"),
        plural(page.figures, "figure")
    );
    Ok(ExitCode::SUCCESS)
}
