//! Handing a sweep to an existing engine: an sbatch script for a Slurm job array (each task
//! runs `lab sweep ... --shard $SLURM_ARRAY_TASK_ID/N`), or one `lab run` command per point
//! for GNU parallel or `xargs -P`. Both only write text; the engine does the scheduling.

use std::path::Path;

use super::{Plan, Point, command_text};

/// The job array's shape and each task's resources.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// Array tasks (shards); default one per point, at most [`MOST_TASKS`].
    pub tasks: Option<usize>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub throttle: Option<usize>,
    /// Time limit per task, as sbatch reads it (`30`, `1:00:00`, `2-00:00:00`).
    pub time: String,
    /// Memory per task, as sbatch reads it (`500M`, `4G`).
    pub mem: String,
    /// CPUs per task (lab's `--threads` and `-j` inside the task).
    pub cpus: usize,
    pub partition: Option<String>,
}

impl SlurmOptions {
    /// A time limit as sbatch reads it: `MIN`, `MIN:SEC`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
    pub fn check_time(text: &str) -> anyhow::Result<()> {
        let (days, rest) = text
            .split_once('-')
            .map_or((None, text), |(d, r)| (Some(d), r));
        let numbers = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        let parts: Vec<&str> = rest.split(':').collect();
        let ok = days.is_none_or(numbers) && parts.iter().all(|p| numbers(p)) && parts.len() <= 3;
        if ok {
            Ok(())
        } else {
            Err(crate::input_error!(
                "--time {text}: expected a time limit as sbatch reads it: minutes (30), \
                 MM:SS, HH:MM:SS (1:00:00) or D-HH[:MM[:SS]] (2-00)"
            ))
        }
    }

    /// A memory size as sbatch reads it: a number of megabytes, or with a K, M, G or T suffix.
    pub fn check_mem(text: &str) -> anyhow::Result<()> {
        let digits = text.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
        let suffix = text.len() - digits.len();
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && suffix <= 1 {
            Ok(())
        } else {
            Err(crate::input_error!(
                "--mem {text}: expected a memory size as sbatch reads it: 500M, 4G, or a number \
                 of megabytes"
            ))
        }
    }
}

/// Slurm's default `MaxArraySize` is 1001 (task ids 0 to 1000).
pub const MOST_TASKS: usize = 1000;

/// `word` quoted for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=+:,-@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The sbatch script of `plan`, and its number of tasks.
pub fn slurm_script(
    plan: &Plan,
    lab: &Path,
    formats: &[String],
    o: &SlurmOptions,
) -> (String, usize) {
    let tasks = o
        .tasks
        .unwrap_or(plan.points.len())
        .clamp(1, plan.points.len().clamp(1, MOST_TASKS));
    let dir = absolute(&plan.dir);
    let logs = format!("{dir}/slurm");
    let throttle = o.throttle.map(|k| format!("%{k}")).unwrap_or_default();
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# {} points of `lab sweep {}` over {} in {tasks} array tasks, written by `lab sweep \
         --emit slurm`.\n# Submit with: sbatch {}\n# Submitting again runs only the points \
         that are not done (`lab runs {}` shows them).\n",
        plan.points.len(),
        plan.exp.name(),
        plan.axes
            .iter()
            .map(|a| a.key)
            .collect::<Vec<_>>()
            .join(", "),
        shell_quote(&format!("{dir}/sweep.sbatch")),
        shell_quote(&dir),
    );
    s += &format!("#SBATCH --job-name=lab-{}\n", plan.exp.name());
    s += &format!("#SBATCH --array=0-{}{throttle}\n", tasks - 1);
    s += &format!("#SBATCH --time={}\n", o.time);
    s += &format!("#SBATCH --mem={}\n", o.mem);
    s += &format!("#SBATCH --cpus-per-task={}\n", o.cpus);
    if let Some(p) = &o.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    s += &format!("#SBATCH --output={logs}/%A_%a.out\n");
    s += &format!("#SBATCH --error={logs}/%A_%a.err\n");
    s += "set -euo pipefail\n";
    let mut words = vec![
        shell_quote(&lab.to_string_lossy()),
        "--threads".into(),
        o.cpus.to_string(),
        "sweep".into(),
        plan.exp.name().into(),
        "--out".into(),
        shell_quote(&dir),
        "--format".into(),
        formats.join(","),
        "--shard".into(),
        format!("\"$SLURM_ARRAY_TASK_ID/{tasks}\""),
    ];
    words.extend(plan.arguments.iter().map(|w| shell_quote(w)));
    s += &format!("exec {}\n", words.join(" "));
    (s, tasks)
}

/// One `lab run` command per point, each writing the point's files in the sweep directory;
/// `--force` where the point replaces an interrupted or failed run.
pub fn commands(
    plan: &Plan,
    points: &[(&Point, bool)],
    lab: &Path,
    formats: &[String],
) -> Vec<String> {
    let defaults = plan.exp.default_spec();
    let dir = absolute(&plan.dir);
    points
        .iter()
        .map(|&(p, replace)| {
            let mut words = vec![
                shell_quote(&lab.to_string_lossy()),
                "run".into(),
                plan.exp.name().into(),
                "-q".into(),
                "--format".into(),
                formats.join(","),
                "--out".into(),
                shell_quote(&format!("{dir}/{}", p.name)),
            ];
            if replace {
                words.push("--force".into());
            }
            for field in plan.exp.fields() {
                if let Some(v) = p.spec.get(field.key)
                    && defaults.get(field.key) != Some(v)
                {
                    words.push(shell_quote(&format!("{}={}", field.key, command_text(v))));
                }
            }
            words.join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_times_and_sizes_are_checked_as_sbatch_reads_them() {
        for good in ["30", "10:00", "1:00:00", "2-00", "2-12:30", "1-00:00:00"] {
            assert!(SlurmOptions::check_time(good).is_ok(), "{good}");
        }
        for bad in ["abc", "", "1:2:3:4", "-5", "1h", "2-"] {
            assert!(SlurmOptions::check_time(bad).is_err(), "{bad}");
        }
        for good in ["500M", "4G", "1024", "2T"] {
            assert!(SlurmOptions::check_mem(good).is_ok(), "{good}");
        }
        for bad in ["foo", "", "4GB", "G", "1.5G"] {
            assert!(SlurmOptions::check_mem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_quote_round_trips_through_sh() {
        for word in ["eta={0.1,1}", "it's", "a b", "", "plain=1,2", "$HOME"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }
}
