//! The lock on a run name: an advisory file lock on `.NAME.lock` beside the run, held while
//! the run writes, so two lab processes never write (or `--force`-delete) the same run. A
//! killed process releases it with its file handles, so a `running` manifest whose lock is
//! free belongs to a dead run.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::input_error;
use crate::manifest::Manifest;

pub struct RunLock {
    path: PathBuf,
    /// Held open: closing it releases the lock.
    _file: File,
}

impl RunLock {
    /// Takes the lock of the run at `prefix`, or refuses if another process holds it.
    pub fn acquire(prefix: &Path) -> Result<RunLock> {
        let name = prefix
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
        let path = prefix.with_file_name(format!(".{name}.lock"));
        // The holder removes the file when it ends: if we locked a file that was removed in
        // between, the lock guards nothing, so take it again on the file now at the path.
        for _ in 0..10 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| input_error!("cannot create {}: {e}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let holder = Manifest::read(&super::with_suffix(prefix, ".run.json"))
                        .ok()
                        .flatten()
                        .map(|m| match (m.pid, m.host) {
                            (Some(pid), Some(host)) => {
                                format!(" (pid {pid} on {host}, started {})", m.started)
                            }
                            _ => String::new(),
                        })
                        .unwrap_or_default();
                    return Err(input_error!(
                        "{} is being written by another lab process{holder}; not touching it. \
                         Wait for it to end, or choose another name with --out",
                        prefix.display()
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(input_error!("cannot lock {}: {e}", path.display()));
                }
            }
            let same = |f: &std::fs::Metadata, p: &std::fs::Metadata| {
                f.ino() == p.ino() && f.dev() == p.dev()
            };
            if let (Ok(held), Ok(at_path)) = (file.metadata(), std::fs::metadata(&path))
                && same(&held, &at_path)
            {
                return Ok(RunLock { path, _file: file });
            }
        }
        Err(input_error!(
            "cannot lock {}: it keeps being replaced by other processes",
            path.display()
        ))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held, so a process that opens the path afterwards gets a new
        // file, and one that opened the old file sees it was removed (above).
        let _ = std::fs::remove_file(&self.path);
    }
}
