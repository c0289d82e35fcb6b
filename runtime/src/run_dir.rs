//! A run directory, held by one writer: a fresh run refuses a directory that
//! already holds a run (unless forced), a lock file (`.lock`, the writer's
//! PID) refuses a second writer, and what a killed writer left behind (its
//! lock, its half-written temporary files) is cleaned up.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name in a run directory.
pub const LOCK: &str = ".lock";

/// Files whose presence means the directory holds a run.
const RUN_FILES: [&str; 3] = [
    crate::train::CHECKPOINT,
    crate::train::METRICS,
    crate::train::LOSSES,
];

/// How a training run means to use its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// A new run: the directory must not hold one, unless `force`.
    Fresh { force: bool },
    /// Continuing the run the directory holds.
    Resume,
}

/// A run directory this process writes to, locked until it is dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    lock: PathBuf,
}

impl RunDir {
    /// Creates (if need be) and locks `path` for a run with `intent`.
    pub fn open(path: &Path, intent: Intent) -> Result<RunDir> {
        std::fs::create_dir_all(path)
            .map_err(Error::io(path, "cannot create the run directory"))?;
        let lock = path.join(LOCK);
        take_lock(&lock)?;
        let dir = RunDir {
            path: path.to_path_buf(),
            lock,
        };
        // From here on the lock is ours (and dropped with `dir` on an error).
        if intent == (Intent::Fresh { force: false }) {
            if let Some(found) = RUN_FILES.iter().find(|f| path.join(f).exists()) {
                return Err(Error::RunDir(format!(
                    "{}: the directory already holds a run ({found}); continue it with `--resume {}`, \
                     start over with `--force` (its checkpoint and logs are replaced), or choose another `--out`",
                    path.display(),
                    path.display()
                )));
            }
        }
        dir.remove_stale_temporaries();
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes `.NAME.tmp-PID` files whose writer is gone: what a kill during
    /// a checkpoint write leaves behind.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let pid = name
                .strip_prefix('.')
                .and_then(|n| n.rsplit_once(".tmp-"))
                .and_then(|(_, pid)| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !process_alive(pid)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Creates the lock file with this process's PID; a lock whose process is
/// gone (a killed run) is taken over, a live one is an error naming it.
fn take_lock(lock: &Path) -> Result<()> {
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(mut f) => {
                writeln!(f, "{}", std::process::id())
                    .map_err(Error::io(lock, "cannot write the lock file"))?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(lock)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if process_alive(pid) => {
                        return Err(Error::RunDir(format!(
                            "{}: another run (process {pid}) is writing to this directory; wait for it, \
                             or choose another `--out`",
                            lock.parent().unwrap_or(lock).display()
                        )))
                    }
                    // Stale: its writer is gone. Remove it and try again.
                    _ => {
                        let _ = std::fs::remove_file(lock);
                    }
                }
            }
            Err(e) => return Err(Error::io(lock, "cannot create the lock file")(e)),
        }
    }
    Err(Error::RunDir(format!(
        "{}: cannot take the lock (another run keeps taking it)",
        lock.display()
    )))
}

/// Whether a process with this PID runs (Linux: `/proc/PID`; elsewhere every
/// PID counts as running, so a stale lock is reported, not taken over).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cnncost-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_writer_is_refused_and_the_lock_goes_with_the_first() {
        let d = temp("lock");
        let first = RunDir::open(&d, Intent::Fresh { force: false }).unwrap();
        let second = RunDir::open(&d, Intent::Resume).unwrap_err().to_string();
        assert!(
            second.contains(&format!("process {}", std::process::id())),
            "{second}"
        );
        drop(first);
        assert!(!d.join(LOCK).exists());
        RunDir::open(&d, Intent::Resume).unwrap();
    }

    #[test]
    fn a_dead_writers_lock_and_temporaries_are_cleaned_up() {
        let d = temp("stale");
        std::fs::create_dir_all(&d).unwrap();
        // PIDs above the kernel's maximum (4194304) never run.
        std::fs::write(d.join(LOCK), "4999999\n").unwrap();
        let tmp = d.join(".checkpoint.safetensors.tmp-4999999");
        std::fs::write(&tmp, b"half").unwrap();
        let live = d.join(format!(
            ".checkpoint.safetensors.tmp-{}",
            std::process::id()
        ));
        std::fs::write(&live, b"mine").unwrap();
        let dir = RunDir::open(&d, Intent::Resume).unwrap();
        assert!(!tmp.exists(), "a dead writer's temporary file is removed");
        assert!(live.exists(), "a live writer's is not");
        assert_eq!(
            std::fs::read_to_string(d.join(LOCK)).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(dir);
    }

    #[test]
    fn a_fresh_run_refuses_a_directory_holding_a_run_unless_forced() {
        let d = temp("fresh");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(crate::train::METRICS), "").unwrap();
        let e = RunDir::open(&d, Intent::Fresh { force: false })
            .unwrap_err()
            .to_string();
        assert!(e.contains("--resume") && e.contains("--force"), "{e}");
        assert!(!d.join(LOCK).exists(), "a refused run leaves no lock");
        RunDir::open(&d, Intent::Fresh { force: true }).unwrap();
        RunDir::open(&d, Intent::Resume).unwrap();
    }
}
