//! Runs a search's trials: each in its directory under the search's
//! (`trial-NNN`, with its `config.yaml` and `stderr.txt`) as a
//! `cnncost train` process, a few at a time. A trial with all its epochs in
//! its metrics is finished and skipped; one with a checkpoint is resumed.

use super::Trial;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A search: its trials and how each one's `cnncost train` is started.
pub struct Search<'a> {
    /// This program, run as `train` for each trial.
    pub exe: &'a Path,
    /// The .net file or zoo name.
    pub network: &'a Path,
    /// The dataset spec.
    pub data: &'a str,
    /// `NAME=VALUE` network overrides, passed on as `--set`.
    pub sets: &'a [String],
    /// The search directory.
    pub out: &'a Path,
    /// Epochs per trial.
    pub epochs: u64,
    pub trials: &'a [Trial],
}

impl Search<'_> {
    /// Writes the config (`base` with the trial's settings over it) of
    /// every trial not finished yet; returns their indices.
    pub fn prepare(&self, base: &serde_yaml::Mapping) -> Result<Vec<usize>, String> {
        let mut pending: Vec<usize> = Vec::new();
        for (i, t) in self.trials.iter().enumerate() {
            let dir = trial_dir(self.out, i);
            if finished(&dir, self.epochs).is_none() {
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                std::fs::write(dir.join("config.yaml"), trial_yaml(base, t, self.epochs))
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                pending.push(i);
            }
        }
        Ok(pending)
    }

    /// Runs the `pending` trials, `jobs` at a time, saying on stderr as each
    /// starts and ends.
    pub fn run(&self, pending: Vec<usize>, jobs: usize) -> Result<(), String> {
        let mut running: Vec<(usize, Child)> = Vec::new();
        let mut queue = pending.into_iter();
        loop {
            while running.len() < jobs.max(1) {
                let Some(i) = queue.next() else { break };
                running.push((i, self.start(i)?));
            }
            if running.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut still = Vec::new();
            for (i, mut c) in running {
                match c.try_wait() {
                    Ok(Some(status)) => {
                        let acc = finished(&trial_dir(self.out, i), self.epochs);
                        match (status.success(), acc) {
                            (true, Some(a)) => eprintln!("trial {} done: {a:.2}%", i + 1),
                            _ => eprintln!(
                                "trial {} failed: see {}",
                                i + 1,
                                trial_dir(self.out, i).join("stderr.txt").display()
                            ),
                        }
                    }
                    Ok(None) => still.push((i, c)),
                    Err(e) => return Err(format!("trial {}: {e}", i + 1)),
                }
            }
            running = still;
        }
        Ok(())
    }

    /// Starts trial `i`'s process: resumed from its checkpoint if it has
    /// one, else from its config.
    fn start(&self, i: usize) -> Result<Child, String> {
        let dir = trial_dir(self.out, i);
        let mut cmd = Command::new(self.exe);
        cmd.arg("train")
            .arg(self.network)
            .arg("--quiet")
            .arg("--out")
            .arg(&dir);
        if dir.join(runtime::train::CHECKPOINT).exists() {
            cmd.arg("--resume").arg(&dir);
        } else {
            // The trial's directory is the search's own: a trial killed before its
            // first checkpoint starts over.
            cmd.arg("--force")
                .arg("--data")
                .arg(self.data)
                .arg("--config")
                .arg(dir.join("config.yaml"));
        }
        for s in self.sets {
            cmd.arg("--set").arg(s);
        }
        let log = std::fs::File::create(dir.join("stderr.txt"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        cmd.stderr(log).stdout(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a trial: {e}"))?;
        let settings: Vec<String> = self.trials[i]
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!("trial {} started: {}", i + 1, settings.join(" "));
        Ok(child)
    }
}

/// A trial's config: the base YAML's keys with the trial's settings over them.
pub fn trial_yaml(base: &serde_yaml::Mapping, trial: &[(&str, f64)], epochs: u64) -> String {
    let mut m = base.clone();
    for (k, v) in trial {
        let value = if *k == "batch_size" {
            serde_yaml::Value::from(v.round() as u64)
        } else {
            serde_yaml::Value::from(*v)
        };
        m.insert(serde_yaml::Value::from(*k), value);
    }
    m.insert("epochs".into(), serde_yaml::Value::from(epochs));
    serde_yaml::to_string(&m).unwrap_or_default()
}

/// The final test accuracy of a finished trial (all `epochs` in its metrics).
pub fn finished(dir: &Path, epochs: u64) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(runtime::train::METRICS)).ok()?;
    let last: runtime::train::EpochMetrics = serde_json::from_str(text.lines().last()?).ok()?;
    (last.epoch >= epochs).then_some(last.test_acc)
}

/// Where trial `i` lives.
pub fn trial_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("trial-{:03}", i + 1))
}
