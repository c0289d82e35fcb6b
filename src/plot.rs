//! `cnncost plot RUN_DIR`: the training curves of a run (the loss of every
//! step with its moving average; train and test accuracy per epoch), and
//! the lecture's reading of them.

use plotters::coord::Shift;
use plotters::prelude::*;
use runtime::train::{EpochMetrics, LOSSES, METRICS};
use std::path::Path;

/// A chart's file must be `.svg` or `.png`: checked before any work, so a
/// long run does not end on a bad name.
pub fn check_image_path(path: &Path) -> Result<(), String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        _ => Err(format!("{}: give a .png or .svg file", path.display())),
    }
}

/// One step's loss, from `losses.csv`.
pub struct StepLoss {
    pub step: u64,
    pub loss: f64,
}

/// Reads a run directory's `metrics.jsonl` and `losses.csv`.
pub fn read_run(dir: &Path) -> Result<(Vec<EpochMetrics>, Vec<StepLoss>), String> {
    let mpath = dir.join(METRICS);
    let text = std::fs::read_to_string(&mpath).map_err(|e| {
        format!(
            "{}: cannot read: {e} (is {} a directory written by `cnncost train`?)",
            mpath.display(),
            dir.display()
        )
    })?;
    let mut epochs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m: EpochMetrics = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not a metrics line: {e}", mpath.display(), i + 1))?;
        epochs.push(m);
    }
    let lpath = dir.join(LOSSES);
    let mut steps = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&lpath) {
        for (i, line) in text.lines().enumerate().skip(1) {
            let mut f = line.split(',');
            let step = f.next().and_then(|v| v.parse().ok());
            let loss = f.nth(1).and_then(|v| v.parse().ok());
            match (step, loss) {
                (Some(step), Some(loss)) => steps.push(StepLoss { step, loss }),
                _ => {
                    return Err(format!(
                        "{}:{}: expected step,epoch,loss,lr",
                        lpath.display(),
                        i + 1
                    ))
                }
            }
        }
    }
    if epochs.is_empty() {
        return Err(format!("{}: no epoch has finished yet", mpath.display()));
    }
    Ok((epochs, steps))
}

/// The lecture's reading of the curves: what each shape suggests.
pub fn read_curves(epochs: &[EpochMetrics], steps: &[StepLoss]) -> Vec<String> {
    let mut notes = Vec::new();
    // A flat start: over the first tenth of the steps the loss fell by
    // less than 2% (a bad initialisation, or a learning rate far too low).
    if steps.len() >= 20 {
        let k = (steps.len() / 20).max(1);
        let mean = |s: &[StepLoss]| s.iter().map(|x| x.loss).sum::<f64>() / s.len() as f64;
        let first = mean(&steps[..k]);
        let next = mean(&steps[k..2 * k]);
        if first.is_finite() && next > first * 0.98 {
            notes.push(format!(
                "the loss was flat at the start ({first:.3} over the first {k} steps, {next:.3} over the next {k}): a sign of a bad initialisation or too low a learning rate (`--check-init` style test: at initialisation the loss should be about ln(classes))"
            ));
        }
    }
    let last = &epochs[epochs.len() - 1];
    let gap = last.train_acc - last.test_acc;
    if gap > 10.0 {
        notes.push(format!(
            "training accuracy is {gap:.1} points above test accuracy ({:.1}% against {:.1}%): overfitting; add regularisation (weight decay, dropout, augmentation) or data",
            last.train_acc, last.test_acc
        ));
    } else if gap.abs() <= 2.0 && last.train_acc < 99.0 {
        notes.push(format!(
            "training and test accuracy are close ({:.1}% and {:.1}%): no overfitting yet, the model underfits; train longer or use a bigger model",
            last.train_acc, last.test_acc
        ));
    }
    if epochs.len() >= 2 {
        let rise = last.test_acc - epochs[epochs.len() - 2].test_acc;
        if rise > 0.5 {
            notes.push(format!(
                "test accuracy was still rising at the end (+{rise:.1} points in the last epoch): train longer"
            ));
        }
    }
    if notes.is_empty() {
        notes.push("no warning sign: the loss fell from the start, train and test accuracy are neither far apart nor still rising".to_string());
    }
    notes
}

/// Draws the two panels to `path` (.png or .svg).
pub fn draw_curves(
    path: &Path,
    title: &str,
    epochs: &[EpochMetrics],
    steps: &[StepLoss],
) -> Result<(), String> {
    let size = (1400, 560);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            title,
            epochs,
            steps,
        ),
        Some("png") => draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            title,
            epochs,
            steps,
        ),
        _ => Err(format!("{}: give a .png or .svg file", path.display())),
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    epochs: &[EpochMetrics],
    steps: &[StepLoss],
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the curves: {err}");
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(e)?;
    let (left, right) = root.split_horizontally(700);

    // Loss per step: the points, and a moving average over a 50th of the run.
    let max_step = steps.last().map_or(1, |s| s.step).max(1);
    let finite: Vec<f64> = steps
        .iter()
        .map(|s| s.loss)
        .filter(|l| l.is_finite())
        .collect();
    let ymax = finite.iter().copied().fold(0f64, f64::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .margin(20)
        .caption("training loss per step", ("sans-serif", 20))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..max_step, 0f64..ymax)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    let light = RGBColor(120, 160, 220);
    chart
        .draw_series(
            steps
                .iter()
                .filter(|s| s.loss.is_finite())
                .map(|s| Circle::new((s.step, s.loss), 1, light.mix(0.5).filled())),
        )
        .map_err(e)?;
    let w = (steps.len() / 50).max(1);
    let mut avg = Vec::new();
    let mut sum = 0f64;
    for (i, s) in steps.iter().enumerate() {
        sum += s.loss;
        if i >= w {
            sum -= steps[i - w].loss;
        }
        if i + 1 >= w && sum.is_finite() {
            avg.push((s.step, sum / w as f64));
        }
    }
    chart
        .draw_series(LineSeries::new(avg, RGBColor(20, 60, 160).stroke_width(2)))
        .map_err(e)?
        .label(format!("moving average ({w} steps)"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(20, 60, 160)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;

    // Accuracy per epoch.
    let n = epochs.len() as u64;
    let lo = epochs
        .iter()
        .flat_map(|m| [m.train_acc, m.test_acc])
        .fold(100f64, f64::min);
    let mut chart = ChartBuilder::on(&right)
        .margin(20)
        .caption("accuracy per epoch", ("sans-serif", 20))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..n + 1, (lo - 5.0).max(0.0).floor()..100f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(230, 120, 20);
    for (name, colour, values) in [
        (
            "train",
            blue,
            epochs
                .iter()
                .map(|m| (m.epoch, m.train_acc))
                .collect::<Vec<_>>(),
        ),
        (
            "test",
            orange,
            epochs
                .iter()
                .map(|m| (m.epoch, m.test_acc))
                .collect::<Vec<_>>(),
        ),
    ] {
        chart
            .draw_series(LineSeries::new(values.clone(), colour.stroke_width(2)))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(
                values
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// The learning-rate range test: smoothed loss against rate (log scale),
/// with the suggested rate marked.
pub fn draw_lr_find(
    path: &Path,
    name: &str,
    points: &[(f64, f64)],
    suggested: f64,
) -> Result<(), String> {
    let size = (900, 600);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw_lr(
            SVGBackend::new(path, size).into_drawing_area(),
            name,
            points,
            suggested,
        ),
        Some("png") => draw_lr(
            BitMapBackend::new(path, size).into_drawing_area(),
            name,
            points,
            suggested,
        ),
        _ => Err(format!("{}: give a .png or .svg file", path.display())),
    }
}

fn draw_lr<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    name: &str,
    points: &[(f64, f64)],
    suggested: f64,
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the plot: {err}");
    root.fill(&WHITE).map_err(e)?;
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let (y0, y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .caption(
            format!("{name}: learning-rate range test"),
            ("sans-serif", 24),
        )
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (y0 * 0.95)..(y1 * 1.05))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("learning rate (log scale)")
        .y_desc("smoothed training loss")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(
            points.to_vec(),
            RGBColor(31, 119, 180).stroke_width(2),
        ))
        .map_err(e)?;
    let red = RGBColor(200, 30, 30);
    chart
        .draw_series(LineSeries::new(
            vec![(suggested, y0 * 0.95), (suggested, y1 * 1.05)],
            red.stroke_width(1),
        ))
        .map_err(e)?
        .label(format!("suggested {suggested:.1e}"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// `cnncost sweep --plot`: four panels, params, MACs, peak live activations
/// and the training step's peak, a bar per configuration (numbered as the
/// table's rows); within the budget blue, the largest within it red, the
/// others grey.
pub fn draw_sweep(
    path: &Path,
    name: &str,
    points: &[crate::cmd::sweep::Point],
    largest: Option<usize>,
) -> Result<(), String> {
    let size = (1200, 800);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw_sweep_on(
            SVGBackend::new(path, size).into_drawing_area(),
            name,
            points,
            largest,
        ),
        Some("png") => draw_sweep_on(
            BitMapBackend::new(path, size).into_drawing_area(),
            name,
            points,
            largest,
        ),
        _ => Err(format!("{}: give a .png or .svg file", path.display())),
    }
}

fn draw_sweep_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    name: &str,
    points: &[crate::cmd::sweep::Point],
    largest: Option<usize>,
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the sweep: {err}");
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(
            &match largest {
                Some(_) => format!(
                    "{name}: the sweep's configurations (blue: within the budget, red: the largest within it)"
                ),
                None => format!("{name}: the sweep's configurations"),
            },
            ("sans-serif", 22),
        )
        .map_err(e)?;
    let panels = root.split_evenly((2, 2));
    type Metric = fn(&analyzer::sweep::Figures) -> f64;
    let metrics: [(&str, Metric); 4] = [
        ("params (M)", |f| f.params as f64 / 1e6),
        ("MACs (M)", |f| f.macs as f64 / 1e6),
        ("peak live activations (MiB)", |f| {
            f.memory as f64 / (1u64 << 20) as f64
        }),
        ("training step's peak (MiB)", |f| {
            f.peak as f64 / (1u64 << 20) as f64
        }),
    ];
    let n = points.len() as u32;
    for (panel, (title, metric)) in panels.iter().zip(metrics) {
        let ymax = points
            .iter()
            .filter_map(|p| p.figures.as_ref().ok().map(metric))
            .fold(0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .margin(15)
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d((1u32..n).into_segmented(), 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("configuration (row of the table)")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        let color_of = |i: usize| match (points[i].within, largest == Some(i)) {
            (_, true) => RGBColor(200, 40, 40),
            (true, false) => RGBColor(60, 100, 190),
            (false, false) => RGBColor(180, 180, 180),
        };
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .margin(6)
                    .style_func(|x, _| match x {
                        SegmentValue::Exact(x) | SegmentValue::CenterOf(x) => {
                            color_of(*x as usize - 1).filled()
                        }
                        SegmentValue::Last => BLACK.filled(),
                    })
                    .data(points.iter().enumerate().filter_map(|(i, p)| {
                        Some((i as u32 + 1, metric(p.figures.as_ref().ok()?)))
                    })),
            )
            .map_err(e)?;
    }
    root.present().map_err(e)
}

/// `cnncost profile --plot`: each row's predicted time against its
/// measured time (log-log), the line where they are equal, and the rows
/// named; points under the line were predicted too fast.
pub fn draw_profile(path: &Path, title: &str, rows: &[(String, f64, f64)]) -> Result<(), String> {
    let size = (900, 800);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            draw_profile_on(SVGBackend::new(path, size).into_drawing_area(), title, rows)
        }
        Some("png") => draw_profile_on(
            BitMapBackend::new(path, size).into_drawing_area(),
            title,
            rows,
        ),
        _ => Err(format!("{}: give a .png or .svg file", path.display())),
    }
}

fn draw_profile_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    rows: &[(String, f64, f64)],
) -> Result<(), String> {
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the profile: {err}");
    root.fill(&WHITE).map_err(e)?;
    // Microseconds; rows without a time on either side are left out.
    let points: Vec<(&str, f64, f64)> = rows
        .iter()
        .filter(|r| r.1 > 0.0 && r.2 > 0.0)
        .map(|r| (r.0.as_str(), r.1 * 1e6, r.2 * 1e6))
        .collect();
    let lo = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold(f64::MAX, f64::min)
        .min(1.0);
    let hi = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold(0f64, f64::max)
        .max(lo * 10.0);
    let range = (lo / 2.0)..(hi * 2.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(range.clone().log_scale(), range.clone().log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("measured (µs, log scale)")
        .y_desc("predicted (µs, log scale)")
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(
            [(range.start, range.start), (range.end, range.end)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))
        .map_err(e)?;
    chart
        .draw_series(points.iter().map(|p| {
            EmptyElement::at((p.1, p.2))
                + Circle::new((0, 0), 4, RGBColor(40, 80, 180).filled())
                + Text::new(p.0.to_string(), (6, -6), ("sans-serif", 13))
        }))
        .map_err(e)?;
    root.present().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: u64, train_acc: f64, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0,
            train_acc,
            test_loss: 1.0,
            test_acc,
            test_top5: 100.0,
            lr: 0.1,
            images_per_s: 1.0,
            seconds: 1.0,
            ema_test_acc: None,
        }
    }

    fn falling(n: u64) -> Vec<StepLoss> {
        (1..=n)
            .map(|step| StepLoss {
                step,
                loss: 2.3 / step as f64,
            })
            .collect()
    }

    #[test]
    fn the_lecture_reading_names_each_shape() {
        let over = read_curves(&[epoch(1, 80.0, 70.0), epoch(2, 99.0, 71.0)], &falling(100));
        assert!(over.iter().any(|n| n.contains("overfitting")), "{over:?}");
        let under = read_curves(&[epoch(1, 50.0, 49.0), epoch(2, 52.0, 51.5)], &falling(100));
        assert!(under.iter().any(|n| n.contains("underfits")), "{under:?}");
        assert!(
            under.iter().any(|n| n.contains("still rising")),
            "{under:?}"
        );
        let flat: Vec<StepLoss> = (1..=100)
            .map(|step| StepLoss { step, loss: 2.30 })
            .collect();
        let notes = read_curves(&[epoch(1, 10.0, 10.0)], &flat);
        assert!(
            notes.iter().any(|n| n.contains("flat at the start")),
            "{notes:?}"
        );
        let fine = read_curves(&[epoch(1, 90.0, 85.0), epoch(2, 92.0, 85.2)], &falling(100));
        assert_eq!(fine.len(), 1, "{fine:?}");
        assert!(fine[0].starts_with("no warning sign"));
    }
}
