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
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// The settings every point shares (the resolved spec without the axes): a sweep with
    /// other fixed settings is another sweep. (Absent in the first sweep files.)
    #[serde(default)]
    pub fixed: Option<toml::Table>,
}

/// A resolved sweep: its experiment, directory, axes and points.
pub struct Plan {
    pub exp: &'static dyn AnyExperiment,
    pub dir: PathBuf,
    pub axes: Vec<Axis>,
    pub points: Vec<Point>,
    /// The `lab sweep` arguments that give this grid (absolute paths).
    pub arguments: Vec<String>,
    /// The resolved settings without the axes.
    pub fixed: toml::Table,
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
    // Paths on an axis are made absolute once, as `resolve` does for settings: the points,
    // their names and the arguments handed to cluster tasks all use the same values.
    let mut axes = words.axes;
    for axis in &mut axes {
        for value in &mut axis.values {
            *value = absolute(fields, axis.key, value.clone());
        }
    }
    const MOST_POINTS: usize = 1_000_000;
    let size = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|&n| n <= MOST_POINTS)
        .ok_or_else(|| {
            let sizes: Vec<String> = axes
                .iter()
                .map(|a| format!("{} {}", a.values.len(), a.key))
                .collect();
            input_error!(
                "the grid of {} has more than {MOST_POINTS} points, the most a sweep takes",
                sizes.join(" x ")
            )
        })?;
    let mut points = Vec::with_capacity(size);
    for index in 0..size {
        // The last axis varies fastest.
        let mut rest = index;
        let mut settings = Vec::with_capacity(axes.len());
        for axis in axes.iter().rev() {
            settings.push((axis.key, axis.values[rest % axis.values.len()].clone()));
            rest /= axis.values.len();
        }
        settings.reverse();
        let mut spec = base.clone();
        for (key, value) in &settings {
            spec.insert(key.to_string(), value.clone());
        }
        let name = point_name(fields, &settings);
        exp.validate(&spec)
            .map_err(|e| input_error!("the point {name}: {e:#}"))?;
        points.push(Point {
            name,
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
        None => Path::new("out").join(default_dir_name(exp, &base, &axes)),
    };
    let arguments = arguments(exp, &base, &axes);
    let mut fixed = base;
    for axis in &axes {
        fixed.remove(axis.key);
    }
    Ok(Plan {
        exp,
        dir,
        axes,
        points,
        arguments,
        fixed,
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

/// `eta=0.1-divergence=kl-seed=0`: the axes' values, safe as a file name; a path is named by
/// its file's stem (`channels_file=a`, never `a.csv`, which would read as a file type).
fn point_name(fields: &[crate::spec::Field], settings: &[(&'static str, Value)]) -> String {
    let parts: Vec<String> = settings
        .iter()
        .map(|(k, v)| {
            let is_path = fields
                .iter()
                .any(|f| f.key == *k && matches!(f.domain, Domain::Path));
            let mut text = value_label(v);
            if is_path && !text.is_empty() {
                text = Path::new(&text)
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
        if axes.iter().any(|a| a.key == field.key) {
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
        // A point that is a list of several (method=svrs,svrp) keeps its commas: one word per
        // point, the repeated key making the axis.
        let lists = axis
            .values
            .iter()
            .any(|v| matches!(v, Value::Array(items) if items.len() > 1));
        if lists {
            words.extend(values.iter().map(|v| format!("{}={v}", axis.key)));
        } else {
            words.push(format!("{}={{{}}}", axis.key, values.join(",")));
        }
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

/// The `sweep.json` of `plan`.
fn sweep_file(plan: &Plan) -> SweepFile {
    SweepFile {
        experiment: plan.exp.name().to_string(),
        axes: plan.axes.iter().map(|a| a.key.to_string()).collect(),
        points: plan.points.iter().map(|p| p.name.clone()).collect(),
        arguments: plan.arguments.clone(),
        fixed: Some(plan.fixed.clone()),
    }
}

/// Checks that `dir` holds nothing (but the dot files of a shard starting beside this one),
/// or this sweep: the same experiment and axes, and the same fixed settings unless `force`.
fn check_directory(plan: &Plan, force: bool) -> Result<()> {
    let dir = &plan.dir;
    if let Some(f) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        return Err(input_error!(
            "cannot use {} as the sweep directory: {} is a file",
            dir.display(),
            f.display()
        ));
    }
    if !dir.exists() {
        return Ok(());
    }
    let path = dir.join(SWEEP_JSON);
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<SweepFile>(&text)
            .map_err(|e| input_error!("{}: not a sweep file: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| input_error!("cannot read {}: {e}", dir.display()))?;
            let other = entries
                .filter_map(|e| e.ok())
                .find(|e| !e.file_name().to_string_lossy().starts_with('.'));
            if let Some(other) = other {
                return Err(input_error!(
                    "{} is not empty and holds no sweep ({} is there, no {SWEEP_JSON}): choose \
                     another directory with --out",
                    dir.display(),
                    other.file_name().to_string_lossy()
                ));
            }
            return Ok(());
        }
        Err(e) => return Err(input_error!("cannot read {}: {e}", path.display())),
    };
    let new = sweep_file(plan);
    if old.experiment != new.experiment || old.axes != new.axes {
        return Err(input_error!(
            "{} holds another sweep's points ({} over {}); this sweep is {} over {}: choose \
             another directory with --out",
            dir.display(),
            old.experiment,
            old.axes.join(", "),
            new.experiment,
            new.axes.join(", ")
        ));
    }
    if let (Some(old), Some(new)) = (&old.fixed, &new.fixed)
        && old != new
        && !force
    {
        return Err(input_error!(
            "{} holds this sweep with other fixed settings ({}): --force re-runs its points \
             with the new ones, or choose another directory with --out",
            dir.display(),
            spec_change(old, new)
        ));
    }
    Ok(())
}

/// Holds `DIR/.sweep.lock` (an advisory lock shared by the shards of a sweep) while alive.
pub(crate) struct DirLock {
    /// Held open: closing it releases the lock.
    _file: std::fs::File,
}

impl DirLock {
    pub(crate) fn take(dir: &Path) -> Result<DirLock> {
        let path = dir.join(".sweep.lock");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| input_error!("cannot create {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| input_error!("cannot lock {}: {e}", path.display()))?;
        Ok(DirLock { _file: file })
    }
}

/// Creates the directory and writes `sweep.json` under the sweep's lock, checking again what
/// a shard that started beside this one may have written meanwhile.
fn claim_directory(plan: &Plan, force: bool) -> Result<()> {
    let dir = &plan.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| input_error!("cannot create {}: {e}", dir.display()))?;
    let _lock = DirLock::take(dir)?;
    check_directory(plan, force)?;
    let text = serde_json::to_string_pretty(&sweep_file(plan))?;
    let tmp = dir.join(format!(".{SWEEP_JSON}.tmp"));
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

/// Checks the directory and the points (conflicts; the files and data the points read, once
/// per distinct path), then claims the directory: `sweep.json` and a first `sweep.csv`.
/// Returns the points to run and the counts of the others. Nothing is written when an input
/// error is returned.
fn open(plan: &Plan, shard: Option<Shard>, force: bool) -> Result<(Vec<(usize, bool)>, Tally)> {
    check_directory(plan, force)?;
    let (to_run, tally) = triage(plan, shard, force)?;
    let mut checked: Vec<Vec<&Value>> = Vec::new();
    let path_axes: Vec<usize> = plan
        .axes
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            plan.exp
                .fields()
                .iter()
                .any(|f| f.key == a.key && matches!(f.domain, Domain::Path))
        })
        .map(|(i, _)| i)
        .collect();
    for &(index, _) in &to_run {
        let point = &plan.points[index];
        let paths: Vec<&Value> = path_axes.iter().map(|&a| &point.settings[a].1).collect();
        if !checked.contains(&paths) {
            plan.exp
                .prepare(&point.spec)
                .map_err(|e| e.context(format!("the point {}", point.name)))?;
            checked.push(paths);
        }
    }
    claim_directory(plan, force)?;
    summary::write(plan)?;
    Ok((to_run, tally))
}

/// `--emit slurm`: claims the directory and writes `DIR/sweep.sbatch`; returns its path, the
/// number of array tasks and the number of points not done.
pub fn emit_slurm(
    plan: &Plan,
    args: &SweepArgs,
    lab: &Path,
    options: &emit::SlurmOptions,
) -> Result<(PathBuf, usize, usize)> {
    let dir = std::path::absolute(&plan.dir).unwrap_or_else(|_| plan.dir.clone());
    let text = dir.to_string_lossy();
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || *c == '%') {
        return Err(input_error!(
            "{}: sbatch reads output file names up to a space and expands '%' in them, and \
             this path has {c:?}: choose a sweep directory without it (--out)",
            dir.display()
        ));
    }
    let (to_run, _) = open(plan, None, args.force)?;
    let (script, tasks) = emit::slurm_script(plan, lab, &args.formats, options);
    let logs = plan.dir.join("slurm");
    std::fs::create_dir_all(&logs)
        .map_err(|e| input_error!("cannot create {}: {e}", logs.display()))?;
    let path = plan.dir.join("sweep.sbatch");
    std::fs::write(&path, script)
        .map_err(|e| input_error!("cannot write {}: {e}", path.display()))?;
    Ok((path, tasks, to_run.len()))
}

/// `--emit commands`: claims the directory; one `lab run` command per point not done (with
/// `--force` where it replaces an interrupted or failed run).
pub fn emit_commands(plan: &Plan, args: &SweepArgs, lab: &Path) -> Result<Vec<String>> {
    let (to_run, _) = open(plan, None, args.force)?;
    let points: Vec<(&Point, bool)> = to_run
        .iter()
        .map(|&(i, replace)| (&plan.points[i], replace))
        .collect();
    Ok(emit::commands(plan, &points, lab, &args.formats))
}

/// Runs the points of `plan` that are not done (this shard's), `-j` at a time, each on its
/// own thread (a point's own parallel work uses the shared rayon pool, so a point never
/// waits inside another), writing `sweep.csv` as they finish. Input errors happen before
/// anything is written.
pub fn execute(plan: &Plan, args: &SweepArgs) -> Result<Tally> {
    let (to_run, tally) = open(plan, args.shard, args.force)?;
    let jobs = args
        .jobs
        .unwrap_or_else(rayon::current_num_threads)
        .clamp(1, to_run.len().max(1));
    let bar = progress_bar(args.progress && !args.quiet, to_run.len());
    let counts = Mutex::new(tally);
    let table = Mutex::new(summary::Throttle::default());
    let next = AtomicUsize::new(0);
    let total = to_run.len();
    let width = total.to_string().len();
    let worker = || {
        loop {
            let slot = next.fetch_add(1, Ordering::SeqCst);
            let Some(&(index, replace)) = to_run.get(slot) else {
                return;
            };
            if CANCEL.load(Ordering::SeqCst) {
                counts.lock().expect("no panic holds it").interrupted += 1;
                continue;
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
            // A panic before the run's manifest exists (in preparing) fails this point only.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run::execute(plan.exp, point.spec.clone(), &options)
            }))
            .unwrap_or_else(|panic| {
                Err(anyhow::anyhow!(
                    "internal error (panic): {}",
                    crate::contract::panic_text(panic.as_ref())
                ))
            });
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
                    // Another lab process took the point first (the same sweep started twice):
                    // it is theirs, not a failure.
                    Err(_)
                        if matches!(decide(&plan.dir, point, false), Plan1::Busy | Plan1::Skip) =>
                    {
                        c.busy += 1;
                        "being run by another lab process".to_string()
                    }
                    Err(e) => {
                        c.failed += 1;
                        format!("could not start: {e:#}")
                    }
                };
                let n = c.ran + c.failed + c.interrupted;
                format!(
                    "[{n:>width$}/{total}] {} {word} ({seconds:.2} s)",
                    point.name
                )
            };
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.println(line);
            } else if outcome.as_ref().is_err() && !line.ends_with("another lab process") {
                // No manifest will say why: say it here, even under -q.
                eprintln!("{line}");
            } else if !args.quiet {
                println!("{line}");
            }
            if let Err(e) = table.lock().expect("no panic holds it").write_soon(plan) {
                eprintln!("warning: {e:#}");
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(worker);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary::write(plan)?;
    Ok(counts.into_inner().expect("no panic holds it"))
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
