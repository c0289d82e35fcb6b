//! A search's results: the finished trials sorted by test accuracy, as a
//! table, as CSV, and as one scatter plot per setting.

use super::scheduler::{finished, trial_dir};
use super::Trial;
use plotters::prelude::*;
use std::path::Path;

/// The finished trials of a search, best first, and how many did not finish.
pub struct Results {
    /// The searched settings, in the order the search names them.
    keys: Vec<&'static str>,
    /// (settings, final test accuracy, trial index), best first.
    rows: Vec<(Trial, f64, usize)>,
    /// Trials without all their epochs.
    pub failed: usize,
}

impl Results {
    /// Reads each trial's final test accuracy from its directory under `out`.
    pub fn collect(trials: &[Trial], out: &Path, epochs: u64) -> Results {
        let mut rows: Vec<(Trial, f64, usize)> = trials
            .iter()
            .enumerate()
            .filter_map(|(i, t)| finished(&trial_dir(out, i), epochs).map(|a| (t.clone(), a, i)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let keys: Vec<&'static str> = trials
            .first()
            .map(|t| t.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        Results {
            keys,
            failed: trials.len() - rows.len(),
            rows,
        }
    }

    /// Whether no trial finished.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rank, trial, its settings and test accuracy per line; then how many
    /// trials failed, if any.
    pub fn table(&self) -> String {
        let mut table = format!(
            "{:<5} {:<10} {}  test acc\n",
            "rank",
            "trial",
            self.keys
                .iter()
                .map(|k| format!("{k:>14}"))
                .collect::<String>()
        );
        for (rank, (t, a, i)) in self.rows.iter().enumerate() {
            let vals: String = t.iter().map(|(_, v)| format!("{v:>14.4e}")).collect();
            table.push_str(&format!(
                "{:<5} {:<10} {vals}  {a:.2}%\n",
                rank + 1,
                format!("trial-{:03}", i + 1)
            ));
        }
        if self.failed > 0 {
            table.push_str(&format!(
                "{} trial(s) failed (their stderr.txt says why)\n",
                self.failed
            ));
        }
        table
    }

    /// `results.csv`: trial number, settings and test accuracy, best first.
    pub fn csv(&self) -> String {
        let mut csv = format!("trial,{},test_acc\n", self.keys.join(","));
        for (t, a, i) in &self.rows {
            csv.push_str(&format!(
                "{},{},{a}\n",
                i + 1,
                t.iter()
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        csv
    }

    /// One scatter plot per setting: test accuracy against it.
    pub fn plot(&self, path: &Path) -> Result<(), String> {
        let rows = &self.rows;
        let keys: Vec<&str> = rows
            .first()
            .map(|r| r.0.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        let width = 520 * keys.len().max(1) as u32;
        let root = BitMapBackend::new(path, (width, 440)).into_drawing_area();
        let e = |err: DrawingAreaErrorKind<_>| format!("cannot draw {}: {err}", path.display());
        root.fill(&WHITE).map_err(e)?;
        let panels = root.split_evenly((1, keys.len().max(1)));
        let (ymin, ymax) = rows
            .iter()
            .fold((100f64, 0f64), |(a, b), r| (a.min(r.1), b.max(r.1)));
        for (i, (key, panel)) in keys.iter().zip(panels.iter()).enumerate() {
            let xs: Vec<f64> = rows.iter().map(|r| r.0[i].1).collect();
            let positive = xs.iter().all(|&x| x > 0.0);
            let (lo, hi) = xs
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let pad = if hi > lo {
                (hi - lo) * 0.1
            } else {
                lo.abs().max(1e-3) * 0.5
            };
            let y = (ymin - 2.0).max(0.0)..(ymax + 2.0).min(100.0);
            let dots = rows.iter().map(|r| (r.0[i].1, r.1));
            let colour = RGBColor(31, 119, 180).filled();
            if positive && hi / lo > 10.0 {
                let mut c = ChartBuilder::on(panel)
                    .margin(15)
                    .caption(format!("test accuracy against {key}"), ("sans-serif", 18))
                    .x_label_area_size(40)
                    .y_label_area_size(50)
                    .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), y)
                    .map_err(e)?;
                c.configure_mesh()
                    .x_desc(*key)
                    .y_desc("test accuracy (%)")
                    .x_label_formatter(&|v| format!("{v:.0e}"))
                    .draw()
                    .map_err(e)?;
                c.draw_series(dots.map(|p| Circle::new(p, 5, colour)))
                    .map_err(e)?;
            } else {
                let mut c = ChartBuilder::on(panel)
                    .margin(15)
                    .caption(format!("test accuracy against {key}"), ("sans-serif", 18))
                    .x_label_area_size(40)
                    .y_label_area_size(50)
                    .build_cartesian_2d(lo - pad..hi + pad, y)
                    .map_err(e)?;
                c.configure_mesh()
                    .x_desc(*key)
                    .y_desc("test accuracy (%)")
                    .draw()
                    .map_err(e)?;
                c.draw_series(dots.map(|p| Circle::new(p, 5, colour)))
                    .map_err(e)?;
            }
        }
        root.present().map_err(e)?;
        Ok(())
    }
}
