//! `cnncost plot RUN_DIR`: draws a run's training curves and prints what
//! they suggest.

use crate::common::{emit, fail, Failed};
use crate::plot;
use clap::Args;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Draw the curves of a training run from RUN_DIR/metrics.jsonl \
        and RUN_DIR/losses.csv: the training loss of every step (points) with its \
        moving average, and train and test accuracy per epoch. Writes \
        RUN_DIR/curves.png and RUN_DIR/curves.svg (or --out FILE.png|svg) and \
        prints the lecture's reading: a flat start (bad initialisation), a \
        train/test gap (overfitting: regularise or add data), no gap \
        (underfitting: train longer or a bigger model), accuracy still rising \
        (train longer).\n\nExample: cnncost plot runs/cifar_small";

#[derive(Args)]
pub struct PlotArgs {
    /// A run directory written by `cnncost train`
    run: PathBuf,
    /// Write only this file (.png or .svg)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: &PlotArgs) -> Result<(), Failed> {
    let dir = &args.run;
    let (epochs, mut steps) = plot::read_run(dir).map_err(fail)?;
    let mut title = format!("{} ({} epochs)", dir.display(), epochs.len());
    if steps.is_empty() {
        // A run without losses.csv: its per-epoch training loss stands in.
        steps = epochs
            .iter()
            .map(|m| plot::StepLoss {
                step: m.epoch,
                loss: m.train_loss,
            })
            .collect();
        title.push_str(": no per-step losses, the loss panel shows epochs");
    }
    let files = match &args.out {
        Some(o) => vec![o.clone()],
        None => vec![dir.join("curves.png"), dir.join("curves.svg")],
    };
    for f in &files {
        plot::draw_curves(f, &title, &epochs, &steps).map_err(fail)?;
    }
    let mut text = format!(
        "wrote {}\n",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for note in plot::read_curves(&epochs, &steps) {
        text.push_str(&format!("- {note}\n"));
    }
    emit(&text)
}
