//! `lab sweep`: a cartesian grid of runs of one experiment, run in process on rayon, each
//! point a normal run (CSV, manifest, figures) under the sweep's directory, named by the
//! settings that vary. Resumable: a point whose manifest says `done` with the same resolved
//! spec and lab version is skipped. Shardable (`--shard i/N`) for job arrays, whose scripts
//! [`emit`] writes.

pub mod emit;
pub mod grammar;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use toml::Value;

use crate::contract::AnyExperiment;
use crate::input_error;
use crate::manifest::{Manifest, Status};
use crate::run::{self, CANCEL, RunLock, RunOptions, with_suffix};
use crate::spec::{Domain, SpecLayers, render_value, resolve, value_label};

pub use grammar::Axis;
pub use summary::SWEEP_CSV;

/// The file that says which sweep a directory holds.
pub const SWEEP_JSON: &str = "sweep.json";

/// What `lab sweep EXP ...` was asked for.
#[derive(Debug, Clone, Default)]
pub struct SweepArgs {
    /// `--spec FILE` and the named flags (fixed settings).
    pub layers: SpecLayers,
    /// The trailing words: fixed `KEY=VALUE` settings and axes.
    pub words: Vec<String>,
    /// `--seeds LO..HI`.
    pub seeds: Option<String>,
    pub out: Option<PathBuf>,
    /// Points run at once (`-j`); default: the worker threads.
    pub jobs: Option<usize>,
    pub force: bool,
    pub formats: Vec<String>,
    pub quiet: bool,
    pub progress: bool,
    /// `--shard i/N`: this process runs the points whose index is i modulo N.
    pub shard: Option<Shard>,
    pub command_line: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `i/N` with `0 <= i < N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |why: &str| {
            input_error!("--shard {text}: {why}; expected i/N with 0 <= i < N, e.g. 0/4")
        };
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("i is not a whole number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "shard {index} does not exist among {count} (0 to {})",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    fn owns(&self, point: usize) -> bool {
        point % self.count == self.index
    }
}

/// One point of the grid: its name (the settings that vary) and its resolved spec.
#[derive(Debug, Clone)]
pub struct Point {
    pub name: String,
    /// The axes' values at this point, in the axes' order.
    pub settings: Vec<(&'static str, Value)>,
    pub spec: toml::Table,
}

/// `sweep.json`: which sweep a directory holds, and how to run it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepFile {
    pub experiment: String,
    /// The keys that vary, in the fields' order: a directory holds one sweep's points.
    pub axes: Vec<String>,
    /// The points, in grid order.
    pub points: Vec<String>,
    /// `lab sweep` arguments that give this grid again (fixed settings and axes written out).
    pub arguments: Vec<String>,
}

/// A resolved sweep: its experiment, directory, axes and points.
pub struct Plan {
    pub exp: &'static dyn AnyExperiment,
    pub dir: PathBuf,
    pub axes: Vec<Axis>,
    pub points: Vec<Point>,
    /// The `lab sweep` arguments that give this grid (absolute paths).
    pub arguments: Vec<String>,
}

/// Resolves the grid, checking every point's settings; writes nothing.
pub fn plan(exp: &'static dyn AnyExperiment, args: &SweepArgs) -> Result<Plan> {
    let fields = exp.fields();
    let words = grammar::parse(fields, &args.words, args.seeds.as_deref())
        .map_err(|e| input_error!("{e}"))?;
    if words.axes.is_empty() {
        return Err(input_error!(
            "nothing varies: name at least one axis, e.g. eta={{0.1,1,10}}, seed=0..5 or \
             --seeds 0..5 (a single run is `lab run {}`)",
            exp.name()
        ));
    }
    for axis in &words.axes {
        if let Some((key, text)) = args.layers.flags.iter().find(|(k, _)| k == axis.key) {
            return Err(input_error!(
                "{key} is fixed by --{} {text} and swept by an axis: keep one",
                key.replace('_', "-")
            ));
        }
    }
    let layers = SpecLayers {
        file: args.layers.file.clone(),
        flags: args.layers.flags.clone(),
        overrides: words.fixed.clone(),
    };
    let base = resolve(exp.name(), fields, exp.default_spec(), &layers)?;
    let size: usize = words.axes.iter().map(|a| a.values.len()).product();
    const MOST_POINTS: usize = 1_000_000;
    if size > MOST_POINTS {
        return Err(input_error!(
            "the grid has {size} points; a sweep takes at most {MOST_POINTS}"
        ));
    }
    let mut points = Vec::with_capacity(size);
    for index in 0..size {
        // The last axis varies fastest.
        let mut rest = index;
        let mut settings = Vec::with_capacity(words.axes.len());
        for axis in words.axes.iter().rev() {
            settings.push((axis.key, axis.values[rest % axis.values.len()].clone()));
            rest /= axis.values.len();
        }
        settings.reverse();
        let mut spec = base.clone();
        for (key, value) in &settings {
            spec.insert(key.to_string(), absolute(fields, key, value.clone()));
        }
        exp.validate(&spec)
            .map_err(|e| input_error!("the point {}: {e:#}", point_name(&settings)))?;
        points.push(Point {
            name: point_name(&settings),
            settings,
            spec,
        });
    }
    let mut names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(input_error!(
            "two points would share the name {}: their values print the same (files with one \
             name in different folders?)",
            w[0]
        ));
    }
    let dir = match &args.out {
        Some(out) => out.clone(),
        None => Path::new("out").join(default_dir_name(exp, &base, &words.axes)),
    };
    let arguments = arguments(exp, &base, &words.axes);
    Ok(Plan {
        exp,
        dir,
        axes: words.axes,
        points,
        arguments,
    })
}

/// A path value made absolute, as `resolve` does for settings.
fn absolute(fields: &[crate::spec::Field], key: &str, value: Value) -> Value {
    let is_path = fields
        .iter()
        .any(|f| f.key == key && matches!(f.domain, Domain::Path));
    match value {
        Value::String(s) if is_path && !s.is_empty() => {
            Value::String(std::path::absolute(&s).map_or(s, |p| p.to_string_lossy().into_owned()))
        }
        other => other,
    }
}

/// `eta=0.1-divergence=kl-seed=0`: the axes' values, safe as a file name.
fn point_name(settings: &[(&'static str, Value)]) -> String {
    let parts: Vec<String> = settings
        .iter()
        .map(|(k, v)| {
            let mut text = value_label(v);
            if let Value::String(s) = v
                && s.contains('/')
            {
                text = Path::new(s)
                    .file_stem()
                    .map_or(text.clone(), |s| s.to_string_lossy().into_owned());
            }
            format!("{k}={text}")
        })
        .collect();
    run::file_name(&parts)
}

/// `pmd-divergence=kl-sweep=eta+seed`: the experiment, the fixed settings that differ from
/// the defaults, and the keys that vary.
fn default_dir_name(exp: &dyn AnyExperiment, base: &toml::Table, axes: &[Axis]) -> String {
    let defaults = exp.default_spec();
    let mut parts = vec![exp.name().to_string()];
    for field in exp.fields() {
        if field.key == "seed" || axes.iter().any(|a| a.key == field.key) {
            continue;
        }
        if let Some(v) = base.get(field.key)
            && defaults.get(field.key) != Some(v)
        {
            let mut text = value_label(v);
            if matches!(field.domain, Domain::Path) {
                text = Path::new(&text)
                    .file_stem()
                    .map_or(text.clone(), |s| s.to_string_lossy().into_owned());
            }
            parts.push(format!("{}={text}", field.key));
        }
    }
    let keys: Vec<&str> = axes.iter().map(|a| a.key).collect();
    parts.push(format!("sweep={}", keys.join("+")));
    run::file_name(&parts)
}

/// The `lab sweep` arguments that give this grid again: the fixed settings that differ from
/// the defaults as `KEY=VALUE`, then each axis with its values written out.
fn arguments(exp: &dyn AnyExperiment, base: &toml::Table, axes: &[Axis]) -> Vec<String> {
    let defaults = exp.default_spec();
    let mut words = Vec::new();
    for field in exp.fields() {
        if axes.iter().any(|a| a.key == field.key) {
            continue;
        }
        if let Some(v) = base.get(field.key)
            && defaults.get(field.key) != Some(v)
        {
            words.push(format!("{}={}", field.key, command_text(v)));
        }
    }
    for axis in axes {
        let values: Vec<String> = axis.values.iter().map(command_text).collect();
        words.push(format!("{}={{{}}}", axis.key, values.join(",")));
    }
    words
}

/// A value as a command-line word reads it back (`kl,euclidean`, `0.1`, `file.mdp`).
pub fn command_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(command_text).collect::<Vec<_>>().join(","),
        Value::Float(x) => format!("{x}"),
        other => render_value(other),
    }
}

/// What to do with one point, decided from what its files say.
#[derive(Debug, Clone, PartialEq)]
enum Plan1 {
    /// Nothing there yet.
    Run,
    /// Interrupted, failed, or killed while running: run again, replacing its files.
    Rerun(String),
    /// Done with the same spec and lab version.
    Skip,
    /// Being written by another live lab process.
    Busy,
    /// Done with another spec or version, or files that are not a run: `--force` replaces it.
    Conflict(String),
}

fn decide(dir: &Path, point: &Point, force: bool) -> Plan1 {
    let prefix = dir.join(&point.name);
    let manifest = Manifest::read(&with_suffix(&prefix, ".run.json"));
    let has_csv = with_suffix(&prefix, ".csv").exists();
    let conflict = |why: String| {
        if force {
            Plan1::Rerun(why)
        } else {
            Plan1::Conflict(why)
        }
    };
    match manifest {
        Err(e) => conflict(format!("its manifest cannot be read: {e:#}")),
        Ok(None) if has_csv => conflict("a CSV without a manifest".into()),
        Ok(None) => Plan1::Run,
        Ok(Some(m)) => match &m.status {
            Status::Done => {
                if m.spec != point.spec {
                    conflict(format!(
                        "done with other settings: {}",
                        spec_change(&m.spec, &point.spec)
                    ))
                } else if m.lab_version != env!("CARGO_PKG_VERSION") {
                    conflict(format!(
                        "done by lab {}, this is lab {}",
                        m.lab_version,
                        env!("CARGO_PKG_VERSION")
                    ))
                } else {
                    Plan1::Skip
                }
            }
            Status::Running => match RunLock::acquire(&prefix) {
                Ok(_free) => Plan1::Rerun("killed while running".into()),
                Err(_) => Plan1::Busy,
            },
            Status::Interrupted => Plan1::Rerun("interrupted".into()),
            Status::Failed(_) => Plan1::Rerun("failed".into()),
        },
    }
}

/// "eta: 0.1 -> 0.2, iterations: 100 -> 200" between a stored spec and the point's.
fn spec_change(old: &toml::Table, new: &toml::Table) -> String {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| v.map_or("(none)".into(), render_value);
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| format!("{k}: {} -> {}", show(old.get(k)), show(new.get(k))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `dir` holds nothing, or this sweep's points; returns its `sweep.json` to write.
fn claim_directory(plan: &Plan) -> Result<SweepFile> {
    let file = SweepFile {
        experiment: plan.exp.name().to_string(),
        axes: plan.axes.iter().map(|a| a.key.to_string()).collect(),
        points: plan.points.iter().map(|p| p.name.clone()).collect(),
        arguments: plan.arguments.clone(),
    };
    let dir = &plan.dir;
    if let Some(f) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        return Err(input_error!(
            "cannot use {} as the sweep directory: {} is a file",
            dir.display(),
            f.display()
        ));
    }
    if !dir.exists() {
        return Ok(file);
    }
    let path = dir.join(SWEEP_JSON);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let old: SweepFile = serde_json::from_str(&text)
                .map_err(|e| input_error!("{}: not a sweep file: {e}", path.display()))?;
            if old.experiment != file.experiment || old.axes != file.axes {
                return Err(input_error!(
                    "{} holds another sweep's points ({} over {}); this sweep is {} over {}: \
                     choose another directory with --out",
                    dir.display(),
                    old.experiment,
                    old.axes.join(", "),
                    file.experiment,
                    file.axes.join(", ")
                ));
            }
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| input_error!("cannot read {}: {e}", dir.display()))?;
            if let Some(other) = entries.filter_map(|e| e.ok()).next() {
                return Err(input_error!(
                    "{} is not empty and holds no sweep ({} is there, no {SWEEP_JSON}): choose \
                     another directory with --out",
                    dir.display(),
                    other.file_name().to_string_lossy()
                ));
            }
            Ok(file)
        }
        Err(e) => Err(input_error!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `sweep.json` atomically (shards of one sweep write the same text).
fn write_sweep_file(dir: &Path, file: &SweepFile) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| input_error!("cannot create {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(file)?;
    let tmp = dir.join(format!(".{SWEEP_JSON}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .map_err(|e| input_error!("cannot write in {}: {e}", dir.display()))?;
    std::fs::rename(&tmp, dir.join(SWEEP_JSON))
        .map_err(|e| input_error!("cannot write {}: {e}", dir.join(SWEEP_JSON).display()))
}

/// How a sweep call ended.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Points of this call (its shard).
    pub points: usize,
    pub ran: usize,
    pub skipped: usize,
    pub busy: usize,
    pub failed: usize,
    /// Not started because of Ctrl-C, or stopped by it.
    pub interrupted: usize,
}

/// What `decide` found for the points this call owns: indices to run (with whether old files
/// are replaced), and the counts of the others. Conflicts are an error naming them.
fn triage(plan: &Plan, shard: Option<Shard>, force: bool) -> Result<(Vec<(usize, bool)>, Tally)> {
    let owned: Vec<usize> = (0..plan.points.len())
        .filter(|&i| shard.is_none_or(|s| s.owns(i)))
        .collect();
    let decisions: Vec<(usize, Plan1)> = owned
        .par_iter()
        .map(|&i| (i, decide(&plan.dir, &plan.points[i], force)))
        .collect();
    let conflicts: Vec<String> = decisions
        .iter()
        .filter_map(|(i, d)| match d {
            Plan1::Conflict(why) => Some(format!("  {}: {why}", plan.points[*i].name)),
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        let n = conflicts.len();
        let shown: Vec<&String> = conflicts.iter().take(5).collect();
        return Err(input_error!(
            "{n} point(s) in {} hold runs this sweep would replace:\n{}{}\nrun with --force to \
             replace them, or choose another directory with --out",
            plan.dir.display(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            if n > 5 {
                format!("\n  ... and {} more", n - 5)
            } else {
                String::new()
            }
        ));
    }
    let mut tally = Tally {
        points: owned.len(),
        ..Default::default()
    };
    let mut to_run = Vec::new();
    for (i, d) in decisions {
        match d {
            Plan1::Run => to_run.push((i, false)),
            Plan1::Rerun(_) => to_run.push((i, true)),
            Plan1::Skip => tally.skipped += 1,
            Plan1::Busy => tally.busy += 1,
            Plan1::Conflict(_) => unreachable!("returned above"),
        }
    }
    Ok((to_run, tally))
}

/// Checks the directory and the points (conflicts, a dataset a point reads), then claims the
/// directory: `sweep.json` and a first `sweep.csv`. Returns the points to run and the counts
/// of the others. Nothing is written when an input error is returned.
fn open(plan: &Plan, shard: Option<Shard>, force: bool) -> Result<(Vec<(usize, bool)>, Tally)> {
    let file = claim_directory(plan)?;
    let (to_run, tally) = triage(plan, shard, force)?;
    if let Some(&(first, _)) = to_run.first() {
        plan.exp.prepare(&plan.points[first].spec)?;
    }
    write_sweep_file(&plan.dir, &file)?;
    summary::SweepTable::load(plan)?.write()?;
    Ok((to_run, tally))
}

/// `--emit slurm`: claims the directory and writes `DIR/sweep.sbatch`; returns its path and
/// the number of array tasks.
pub fn emit_slurm(
    plan: &Plan,
    args: &SweepArgs,
    lab: &Path,
    options: &emit::SlurmOptions,
) -> Result<(PathBuf, usize)> {
    open(plan, None, args.force)?;
    let (script, tasks) = emit::slurm_script(plan, lab, &args.formats, options);
    let logs = plan.dir.join("slurm");
    std::fs::create_dir_all(&logs)
        .map_err(|e| input_error!("cannot create {}: {e}", logs.display()))?;
    let path = plan.dir.join("sweep.sbatch");
    std::fs::write(&path, script)
        .map_err(|e| input_error!("cannot write {}: {e}", path.display()))?;
    Ok((path, tasks))
}

/// `--emit commands`: claims the directory; one `lab run` command per point not done.
pub fn emit_commands(plan: &Plan, args: &SweepArgs, lab: &Path) -> Result<Vec<String>> {
    let (to_run, _) = open(plan, None, args.force)?;
    let points: Vec<&Point> = to_run.iter().map(|&(i, _)| &plan.points[i]).collect();
    Ok(emit::commands(plan, &points, lab, &args.formats))
}

/// Runs the points of `plan` that are not done (this shard's), writing `sweep.csv` as they
/// finish. Input errors happen before anything is written.
pub fn execute(plan: &Plan, args: &SweepArgs) -> Result<Tally> {
    let (to_run, mut tally) = open(plan, args.shard, args.force)?;
    let table = summary::SweepTable::load(plan)?;

    let jobs = args.jobs.unwrap_or_else(rayon::current_num_threads).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start {jobs} threads: {e}"))?;
    let bar = progress_bar(args.progress && !args.quiet, to_run.len());
    let counts = Mutex::new(tally.clone());
    let table = Mutex::new(table);
    let total = to_run.len();
    pool.install(|| {
        to_run
            .par_iter()
            .with_max_len(1)
            .for_each(|&(index, replace)| {
                if CANCEL.load(Ordering::SeqCst) {
                    counts.lock().expect("no panic holds it").interrupted += 1;
                    return;
                }
                let point = &plan.points[index];
                let started = Instant::now();
                let options = RunOptions {
                    out: Some(plan.dir.join(&point.name)),
                    force: replace,
                    formats: args.formats.clone(),
                    progress: false,
                    command_line: args.command_line.clone(),
                };
                let outcome = run::execute(plan.exp, point.spec.clone(), &options);
                let seconds = started.elapsed().as_secs_f64();
                let line = {
                    let mut c = counts.lock().expect("no panic holds it");
                    let word = match &outcome {
                        Ok(report) => match &report.status {
                            Status::Done | Status::Running => {
                                c.ran += 1;
                                "done".to_string()
                            }
                            Status::Interrupted => {
                                c.interrupted += 1;
                                "interrupted".to_string()
                            }
                            Status::Failed(why) => {
                                c.failed += 1;
                                format!("failed: {why}")
                            }
                        },
                        Err(e) => {
                            c.failed += 1;
                            format!("not run: {e:#}")
                        }
                    };
                    let n = c.ran + c.failed + c.interrupted;
                    format!(
                        "[{n:>w$}/{total}] {} {word} ({seconds:.2} s)",
                        point.name,
                        w = total.to_string().len()
                    )
                };
                if let Some(bar) = &bar {
                    bar.inc(1);
                    bar.println(line);
                } else if !args.quiet {
                    println!("{line}");
                }
                let mut t = table.lock().expect("no panic holds it");
                t.update(index);
                if let Err(e) = t.write_soon() {
                    eprintln!("warning: {e:#}");
                }
            });
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    tally = counts.into_inner().expect("no panic holds it");
    let mut table = table.into_inner().expect("no panic holds it");
    table.reload_all();
    table.write()?;
    Ok(tally)
}

fn progress_bar(enabled: bool, len: usize) -> Option<indicatif::ProgressBar> {
    if !enabled || len == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:32} {pos}/{len} points ETA {eta}",
        )
        .expect("valid template"),
    );
    Some(bar)
}
