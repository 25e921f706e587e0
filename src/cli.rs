//! The command line. `lab run EXP` gets one named flag per spec field, generated from the
//! experiment's field table, so every setting has a flag and its `--help` line.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

use crate::contract::AnyExperiment;
use crate::experiments::registry;
use crate::spec::SpecLayers;

const ABOUT: &str = "Run, check and plot experiments from optimization and learning-theory papers";

const LONG_ABOUT: &str = "\
Run, check and plot experiments from optimization and learning-theory papers.

Each experiment is a paper: `lab list` names them, `lab show EXP` prints every setting with \
its meaning and range, `lab run EXP` runs it (CSV streamed to out/, manifest, plots, claim \
verdicts), `lab sweep EXP` runs a resumable grid of runs (or writes a Slurm job array), `lab \
plot` overlays runs, `lab runs` lists the runs on disk, `lab report` writes an HTML page of them, \
`lab verify` checks every paper's claims on small instances.";

const EXAMPLES: &str = "\
Examples:
  lab list
  lab show pmd > my.toml                      # every setting, commented; edit and reuse
  lab run pmd --divergence euclidean          # defaults + one flag
  lab run --spec my.toml eta=1 iterations=500 # the file names its experiment
  lab plot out/pmd-*.csv --logy
  for eta in 0.1 1 10; do lab run pmd --eta $eta; done   # a sweep as a shell loop
  lab sweep pmd 'eta={0.1,1,10}' --seeds 0..5 -j 2     # or a resumable grid with sweep.csv
  lab runs out/ --where divergence=kl
  lab report out/pmd-sweep=eta+seed                   # one static HTML page
  lab verify pmd

Settings resolve as: defaults < --spec FILE < named flags < KEY=VALUE overrides.
Exit codes: 0 success; 1 the run failed (or a claim failed under --strict / in verify);
2 bad input (spec, flags, files); 130 interrupted by Ctrl-C or SIGTERM (rows kept).";

/// The whole `lab` command.
pub fn command() -> Command {
    Command::new("lab")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .after_help(EXAMPLES)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("threads")
                .long("threads")
                .global(true)
                .value_name("N")
                .value_parser(value_parser!(usize))
                .help("Worker threads (default: all cores); results do not depend on it"),
        )
        .subcommand(Command::new("list").about("List the experiments, one line each with its paper's arXiv id"))
        .subcommand(
            Command::new("show")
                .about("Print an experiment's default spec as commented TOML (accepted by --spec as is)")
                .arg(Arg::new("experiment").required(true).value_name("EXP")),
        )
        .subcommand(run_command())
        .subcommand(sweep_command())
        .subcommand(plot_command())
        .subcommand(runs_command())
        .subcommand(report_command())
        .subcommand(
            Command::new("verify")
                .about("Check every claim of the papers on small instances: a PASS/FAIL table")
                .long_about(
                    "Check every claim of the papers on small instances, in memory (no files \
                     written), and print a table of verdicts with the measured figures and where \
                     each claim comes from (verified in a source, or reconstructed). A claim \
                     recorded as an expected deviation from the paper prints DEVIATES with its \
                     reason. Exit code 0 when every claim passes or deviates as declared; 1 when \
                     one fails, is inconclusive, or a declared deviation passes.",
                )
                .arg(Arg::new("experiment").value_name("EXP").help("Only this experiment")),
        )
}

fn run_command() -> Command {
    let mut run = Command::new("run")
        .about("Run an experiment: CSV streamed to out/, manifest, plots and claim verdicts")
        .long_about(
            "Run an experiment. Writes NAME.csv (rows flushed as they come), NAME.run.json (the \
             manifest: resolved spec, seed, version, status, summary, claim verdicts) and \
             NAME.png/.svg, where NAME defaults to out/EXP-<settings that differ>-seed=N. \
             `lab run EXP --help` lists every setting as a flag.",
        )
        .after_help(
            "`lab run EXP --help` lists the options (--spec, --out, --force, --format, -q, --strict) and \
             every setting of EXP as a flag. `lab run --spec FILE` runs the experiment FILE \
             names (a spec with experiment = \"EXP\", as `lab show` prints, or a \
             NAME.run.json).",
        )
        .subcommand_required(true)
        .arg_required_else_help(true);
    for exp in registry() {
        run = run.subcommand(run_options(experiment_command(exp, true)));
    }
    run
}

/// `lab run EXP`'s own options, besides the settings.
fn run_options(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("out")
            .long("out")
            .value_name("PREFIX")
            .value_parser(value_parser!(PathBuf))
            .help("Output prefix: PREFIX.csv, PREFIX.run.json, PREFIX.png, ...; a directory gets the default name"),
    )
    .arg(
        Arg::new("force")
            .long("force")
            .action(ArgAction::SetTrue)
            .help("Replace an earlier run with the same name"),
    )
    .arg(
        Arg::new("quiet")
            .long("quiet")
            .short('q')
            .action(ArgAction::SetTrue)
            .help("No progress bar and no summary (errors still go to stderr)"),
    )
    .arg(
        Arg::new("strict")
            .long("strict")
            .action(ArgAction::SetTrue)
            .help("Exit with code 1 if a claim checked on this run fails"),
    )
    .arg(
        Arg::new("overrides")
            .value_name("KEY=VALUE")
            .num_args(0..)
            .help("Settings overriding the spec file and flags, e.g. eta=10 gamma=0.99"),
    )
}

const SWEEP_GRAMMAR: &str = "\
Words after the flags:
  KEY=VALUE        a fixed setting, exactly as in `lab run` (a list field's commas make a
                   list inside each run: method=svrs,svrp is one run comparing both)
  KEY={A,B,C}      an axis: one point per value. Quote it, or let the shell expand it into
                   KEY=A KEY=B KEY=C, which means the same (a key given twice is an axis)
  KEY=LO..HI       the integers LO, LO+1, ..., HI-1 (HI excluded, as in Rust)
  KEY=LO..HI:STEP  from LO by STEP (negative, or a real), HI excluded
  KEY=LO..HI:log:N N points log-spaced from LO to HI, both included (4 significant digits)
  KEY=LO..HI:lin:N N points evenly spaced from LO to HI, both included
A comma in a setting that takes one value (eta=0.1,1) is refused: write eta={0.1,1}.
The grid is every combination of the axes; each point is a normal run (CSV, manifest,
figures) in the sweep directory, named by the values that vary (eta=0.1-seed=0).

Resume: run the same command again. Points done with the same settings and lab version
are skipped; interrupted, failed and missing points run; a point done with other settings
is an error unless --force. sweep.csv (one row per point and series: settings, status,
final metrics, claim verdicts) is rewritten atomically as points finish.

Examples:
  lab sweep pmd 'eta={0.1,1,10}' 'divergence={kl,euclidean}' --seeds 0..5 -j 2
  lab sweep pmd eta=1e-2..1e2:log:9 --iterations 200
  lab plot out/pmd-sweep=divergence+eta+seed/sweep.csv --x eta --y final_value_gap_rho --group divergence --logx --logy
  lab sweep pmd 'eta={0.1,1,10}' --seeds 0..100 --emit slurm --tasks 10 --throttle 4 --time 10 --mem 1G
  lab sweep pmd 'eta={0.1,1}' --emit commands | xargs -d '\\n' -P 2 -I{} sh -c {}

Exit codes: 0 every point done (or being run by another lab process); 1 a point failed or
could not start; 2 bad input (nothing written); 130 interrupted by Ctrl-C (finished points
kept; run the command again to finish).";

fn sweep_command() -> Command {
    let mut sweep = Command::new("sweep")
        .about("Run a grid of runs of one experiment: resumable, shardable, with a sweep.csv table")
        .long_about(
            "Run a cartesian grid of runs of one experiment in process (-j points at once), each \
             a normal run in the sweep directory. `lab sweep EXP --help` lists the settings; \
             --emit writes a Slurm job array or one command per point instead of running.",
        )
        .after_help(SWEEP_GRAMMAR)
        .subcommand_required(true)
        .arg_required_else_help(true);
    for exp in registry() {
        sweep = sweep
            .subcommand(sweep_options(experiment_command(exp, false)).after_help(SWEEP_GRAMMAR));
    }
    sweep
}

/// `lab sweep EXP`'s own options, besides the settings.
fn sweep_options(cmd: Command) -> Command {
    let slurm = "Slurm (--emit slurm)";
    cmd.arg(
        Arg::new("out")
            .long("out")
            .value_name("DIR")
            .value_parser(value_parser!(PathBuf))
            .help("Sweep directory (default: out/EXP-<fixed settings>-sweep=<axes>)"),
    )
    .arg(
        Arg::new("force")
            .long("force")
            .action(ArgAction::SetTrue)
            .help("Re-run points done with other settings or another lab version, replacing them"),
    )
    .arg(
        Arg::new("quiet")
            .long("quiet")
            .short('q')
            .action(ArgAction::SetTrue)
            .help("No progress and no line per point (errors still go to stderr)"),
    )
    .arg(
        Arg::new("jobs")
            .long("jobs")
            .short('j')
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("Points run at once (default: the worker threads, --threads)"),
    )
    .arg(
        Arg::new("seeds")
            .long("seeds")
            .value_name("LO..HI")
            .help("An axis over the seed: --seeds 0..5 is seed=0..5 (seeds 0 to 4)"),
    )
    .arg(
        Arg::new("shard")
            .long("shard")
            .value_name("i/N")
            .help("Run only the points whose index is i modulo N (a job array's task)"),
    )
    .arg(
        Arg::new("emit")
            .long("emit")
            .value_name("ENGINE")
            .value_parser(["slurm", "commands"])
            .help("Do not run: write DIR/sweep.sbatch (a Slurm job array), or print one `lab run` command per point not done"),
    )
    .arg(Arg::new("tasks").long("tasks").value_name("N").value_parser(value_parser!(usize)).help_heading(slurm).help("Array tasks, each a shard of the points (default: one per point, at most 1000)"))
    .arg(Arg::new("throttle").long("throttle").value_name("K").value_parser(value_parser!(usize)).help_heading(slurm).help("At most K tasks at once (--array=...%K)"))
    .arg(Arg::new("time").long("time").value_name("LIMIT").default_value("1:00:00").help_heading(slurm).help("Time limit per task, as sbatch reads it (30, 1:00:00)"))
    .arg(Arg::new("mem").long("mem").value_name("SIZE").default_value("2G").help_heading(slurm).help("Memory per task, as sbatch reads it (500M, 4G)"))
    .arg(Arg::new("cpus").long("cpus").value_name("N").value_parser(value_parser!(usize)).default_value("1").help_heading(slurm).help("CPUs per task (lab's --threads in the task)"))
    .arg(Arg::new("partition").long("partition").value_name("NAME").help_heading(slurm).help("Slurm partition"))
    .arg(
        Arg::new("words")
            .value_name("AXIS|KEY=VALUE")
            .num_args(0..)
            .help("Axes (KEY={A,B}, KEY=LO..HI, KEY=LO..HI:log:N) and fixed settings (KEY=VALUE); see below"),
    )
}

/// The arguments every experiment subcommand shares (`lab run EXP`, `lab sweep EXP`): the
/// spec file, the figure formats, and one flag per setting.
fn experiment_command(exp: &dyn AnyExperiment, export: bool) -> Command {
    let mut cmd = Command::new(exp.name())
        .about(exp.title())
        .after_help(format!(
            "Paper: {}\n\nEvery flag above is a spec field; `lab show {}` prints them all as a \
             spec file. KEY=VALUE words override flags and files (lists: divergence=kl,euclidean).",
            exp.paper(),
            exp.name()
        ))
        .allow_negative_numbers(true)
        .arg(
            Arg::new("spec")
                .long("spec")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Spec file (TOML, as `lab show` prints), or a NAME.run.json to re-run"),
        )
        .arg(
            Arg::new("format")
                .long("format")
                .value_name("FORMATS")
                .value_delimiter(',')
                .value_parser(["png", "svg", "pdf"])
                .default_values(["png", "svg"])
                .help("Image formats of the figures, e.g. --format png,pdf (pdf for LaTeX)"),
        );
    if let Some((flag, help)) = exp.export_flag().filter(|_| export) {
        cmd = cmd.arg(
            Arg::new("export")
                .long(flag)
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help(help),
        );
    }
    for field in exp.fields() {
        let first_line = field.doc.lines().next().unwrap_or("").trim();
        cmd = cmd.arg(
            Arg::new(field.key)
                .long(field.flag())
                .value_name("VALUE")
                .help(format!("{first_line} [{}]", field.domain.describe()))
                .long_help(format!(
                    "{}\nAllowed: {}",
                    field
                        .doc
                        .lines()
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" "),
                    field.domain.describe()
                ))
                .help_heading(field.group),
        );
    }
    cmd
}

fn plot_command() -> Command {
    Command::new("plot")
        .about(
            "Plot one or many run CSVs; overlaid runs get a legend from the settings that differ",
        )
        .long_about(
            "Plot one or many CSVs (shell globs work). Without --y, runs of one experiment get \
             that experiment's standard figure. With --y, one panel of the named columns \
             against --x. Columns named bound_* are drawn dashed. The legend names the settings \
             that differ between the runs' manifests (NAME.run.json beside each CSV).",
        )
        .arg(
            Arg::new("csv")
                .required(true)
                .num_args(1..)
                .value_name("CSV")
                .value_parser(value_parser!(PathBuf)),
        )
        .arg(
            Arg::new("x")
                .long("x")
                .value_name("COL")
                .help("x column (default: iter)"),
        )
        .arg(
            Arg::new("y")
                .long("y")
                .value_name("COL")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .help("y column(s): --y a --y b or --y a,b"),
        )
        .arg(
            Arg::new("logx")
                .long("logx")
                .action(ArgAction::SetTrue)
                .help("Log x axis"),
        )
        .arg(
            Arg::new("logy")
                .long("logy")
                .action(ArgAction::SetTrue)
                .help("Log y axis"),
        )
        .arg(
            Arg::new("group")
                .long("group")
                .value_name("COL")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .help(
                    "Split each run's rows into series by this column (default: every text column)",
                ),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Image to write, .png, .svg or .pdf (default: beside the first CSV)"),
        )
        .arg(
            Arg::new("title")
                .long("title")
                .value_name("TEXT")
                .help("Figure title"),
        )
}

fn runs_command() -> Command {
    Command::new("runs")
        .about("A table of the runs under a directory: status, settings that differ, finals, claims")
        .long_about(
            "A table of the runs under a directory (every NAME.run.json below it): name, \
             experiment, status, start date, wall time, the settings that differ between the \
             runs, the final value of each headline metric (one row per series, e.g. per \
             method), and the claims' verdicts. --csv prints it as CSV for a pipeline.",
        )
        .after_help(
            "Examples:\n  lab runs\n  lab runs out/ --where divergence=kl --status done\n  \
             lab runs out/ --csv | column -s, -t",
        )
        .arg(
            Arg::new("dir")
                .value_name("DIR")
                .default_value("out")
                .value_parser(value_parser!(PathBuf))
                .help("Directory searched for runs, with its subdirectories"),
        )
        .arg(
            Arg::new("where")
                .long("where")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help("Only runs whose setting (or series key, or experiment) KEY is VALUE; repeat to require several"),
        )
        .arg(
            Arg::new("status")
                .long("status")
                .value_name("STATUS")
                .value_parser(["done", "failed", "interrupted", "running"])
                .help("Only runs with this status"),
        )
        .arg(
            Arg::new("csv")
                .long("csv")
                .action(ArgAction::SetTrue)
                .help("Print CSV (a header row, one row per run and series)"),
        )
}

fn report_command() -> Command {
    Command::new("report")
        .about("Write one self-contained HTML page of the runs under a directory (a sweep or any runs)")
        .long_about(
            "Write one static HTML page (no network, no server) of the runs under DIR: the sweep \
             table (sweep.csv) or the runs table, every run's standard figures (SVG inline), each \
             run's claim table with provenance, and the command lines that reproduce them.",
        )
        .arg(
            Arg::new("dir")
                .required(true)
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf)),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("The page to write (default: DIR/report.html)"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("Replace an existing page"),
        )
}

/// What `lab plot` was asked for.
#[derive(Debug, Clone, Default)]
pub struct PlotArgs {
    pub csvs: Vec<PathBuf>,
    pub x: Option<String>,
    pub ys: Vec<String>,
    pub logx: bool,
    pub logy: bool,
    pub group: Option<Vec<String>>,
    pub out: Option<PathBuf>,
    pub title: Option<String>,
}

impl PlotArgs {
    pub fn from_matches(m: &ArgMatches) -> PlotArgs {
        let strings = |id: &str| -> Vec<String> {
            m.get_many::<String>(id)
                .map(|v| v.cloned().collect())
                .unwrap_or_default()
        };
        PlotArgs {
            csvs: m
                .get_many::<PathBuf>("csv")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            x: m.get_one::<String>("x").cloned(),
            ys: strings("y"),
            logx: m.get_flag("logx"),
            logy: m.get_flag("logy"),
            group: m.contains_id("group").then(|| strings("group")),
            out: m.get_one::<PathBuf>("out").cloned(),
            title: m.get_one::<String>("title").cloned(),
        }
    }
}

/// The spec layers of `lab run EXP ...` (`lab sweep EXP ...` has no `overrides`: its words
/// are read by the sweep grammar).
pub fn spec_layers(exp: &dyn AnyExperiment, m: &ArgMatches) -> SpecLayers {
    SpecLayers {
        file: m.get_one::<PathBuf>("spec").cloned(),
        flags: exp
            .fields()
            .iter()
            .filter_map(|f| {
                m.get_one::<String>(f.key)
                    .map(|v| (f.key.to_string(), v.clone()))
            })
            .collect(),
        overrides: m
            .try_get_many::<String>("overrides")
            .ok()
            .flatten()
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
    }
}

/// The experiment a spec file names: `experiment = "EXP"` in a TOML spec, or the
/// `experiment` of a run manifest (`NAME.run.json`).
pub fn experiment_of_spec_file(path: &std::path::Path) -> anyhow::Result<String> {
    let named = if path.extension().is_some_and(|e| e == "json") {
        let manifest = crate::manifest::Manifest::read(path)?.ok_or_else(|| {
            crate::input_error!("cannot read spec file {}: no such file", path.display())
        })?;
        Some(manifest.experiment)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::input_error!("cannot read spec file {}: {e}", path.display()))?;
        toml::from_str::<toml::Table>(&text)
            .map_err(|e| crate::input_error!("{}: not valid TOML: {e}", path.display()))?
            .get("experiment")
            .and_then(|e| e.as_str())
            .map(String::from)
    };
    named.ok_or_else(|| {
        crate::input_error!(
            "{} does not say which experiment it is for: run `lab run EXP --spec {}`, or add \
             experiment = \"EXP\" to the file",
            path.display(),
            path.display()
        )
    })
}

/// `lab run --spec FILE ...` without an experiment name: the arguments with the name the file
/// gives inserted after `run` (other arguments are returned unchanged).
pub fn name_the_experiment(
    args: Vec<std::ffi::OsString>,
) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    // Skips the global `--threads N` wherever it stands before the word at `i`.
    let skip_threads = |mut i: usize| {
        loop {
            match word(i) {
                Some("--threads") => i += 2,
                Some(a) if a.starts_with("--threads=") => i += 1,
                _ => return i,
            }
        }
    };
    let run = skip_threads(1);
    if !matches!(word(run), Some("run" | "sweep")) {
        return Ok(args);
    }
    let at = skip_threads(run + 1);
    let file = match word(at) {
        Some("--spec") => args.get(at + 1).cloned(),
        Some(a) if a.starts_with("--spec=") => Some(a["--spec=".len()..].into()),
        _ => return Ok(args),
    };
    // `--spec` without a file, or followed by another flag: clap says what is missing.
    let Some(file) = file.filter(|f| !f.to_string_lossy().starts_with('-')) else {
        return Ok(args);
    };
    let path = std::path::Path::new(&file);
    let name = experiment_of_spec_file(path)?;
    crate::experiments::find(&name)
        .map_err(|e| crate::input_error!("{}: experiment = \"{name}\": {e:#}", path.display()))?;
    let mut args = args;
    args.insert(run + 1, name.into());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(args: &[&str]) -> Vec<String> {
        let os: Vec<std::ffi::OsString> = args.iter().map(|a| a.into()).collect();
        name_the_experiment(os)
            .unwrap()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_spec_file_names_the_experiment_wherever_the_global_flags_stand() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("s.toml");
        std::fs::write(&spec, "experiment = \"noise\"\nepochs = 2\n").unwrap();
        let file = spec.to_str().unwrap();
        for args in [
            vec!["lab", "run", "--spec", file, "-q"],
            vec!["lab", "--threads", "2", "run", "--spec", file],
            vec!["lab", "run", "--threads", "2", "--spec", file],
        ] {
            let out = rewritten(&args);
            let run = out.iter().position(|a| a == "run").unwrap();
            assert_eq!(out[run + 1], "noise", "{args:?}");
            assert_eq!(out.len(), args.len() + 1);
        }
        let eq = format!("--spec={file}");
        assert_eq!(rewritten(&["lab", "run", &eq])[2], "noise");
        // Named already, another command, or no file after --spec: unchanged.
        for args in [
            vec!["lab", "run", "noise", "--spec", file],
            vec!["lab", "plot", "--spec", file],
            vec!["lab", "run", "--spec", "--help"],
            vec!["lab", "run", "--spec"],
        ] {
            assert_eq!(rewritten(&args), args, "{args:?}");
        }
        // A file that names an unknown experiment says which file.
        std::fs::write(&spec, "experiment = \"nose\"\n").unwrap();
        let err = name_the_experiment(["lab", "run", "--spec", file].map(Into::into).to_vec())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.toml") && err.contains("did you mean 'noise'"),
            "{err}"
        );
    }
}
