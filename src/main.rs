//! The `cnncost` command line: the clap definitions of the commands and
//! `main`, which runs the one asked for (`cmd::<name>::run`).

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use common::Failed;
use std::process::ExitCode;

mod cmd;
mod common;
mod compare;
mod plot;
mod tune;
mod zoo;

const ABOUT: &str = "Static cost analysis of convolutional networks written in the .net language, and their training";

const LONG_ABOUT: &str = "\
Static cost analysis of convolutional networks written in the .net language,
and their training.

`cnncost FILE.net` checks every shape and prints one row per statement: the
output shape, the activation memory, the parameters and the multiply-adds,
with totals. Nothing is allocated and nothing runs: a ResNet-50 takes a
fifth of a millisecond. `--train` adds a training step: the backward's work
(input and weight gradients), the tensors kept for it, the optimizer's state
and the step's peak memory (docs/costs.md, \"Training\").

Conventions (docs/costs.md): params are trainable parameters (BN running
statistics are `buffers`, reported apart); MACs are the multiply-accumulates
of conv and linear layers, bias excluded (torchvision's `_ops`, the ResNet
paper's \"FLOPs\"); FLOPs add 2 per MAC and the documented per-element costs;
memory is the output activation, KB = 1024 bytes.

The same file trains and runs on the CPU: `train`, `eval`, `predict`, and
the training practice around them (`augment`, `lr-find`, `plot`, `tune`,
`ensemble`); docs/training.md.

Examples:
  cnncost zoo/alexnet.net
  cnncost zoo/resnet50.net --depth 2 --columns flops,rf
  cnncost zoo/vgg16.net --batch 32 --dtype f16 --format json
  cnncost zoo/resnet50.net --explain layer1.0.conv2
  cnncost resnet50 --train --batch 32 --optimizer adam   (a training step: backward, saved, peak)
  cnncost vgg16 --train --fit 16GiB    (the largest batch whose training peak fits)
  cnncost check zoo/
  cnncost graph zoo/resnet50.net | dot -Tsvg > resnet50.svg
  cnncost zoo                      (the built-in networks; a zoo name works as a FILE)
  cnncost weights resnet18         (every state-dict name, shape and kind)
  cnncost compare --zoo --plot zoo.svg
  cnncost train lenet5 --data mnist:../shared/data/mnist --epochs 2
  cnncost eval lenet5 --weights runs/lenet5 --data mnist:../shared/data/mnist
  cnncost predict lenet5 --weights runs/lenet5 digit.png";

#[derive(Parser)]
#[command(
    name = "cnncost",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    analyze: cmd::analyze::AnalyzeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the `expect` lines of networks (exit status 1 if any fails)
    #[command(long_about = cmd::check::LONG_ABOUT)]
    Check(cmd::check::CheckArgs),
    /// Compare networks side by side, and draw the accuracy/cost chart
    #[command(long_about = cmd::compare::LONG_ABOUT)]
    Compare(cmd::compare::CompareArgs),
    /// Compare two networks op by op and in total; --fail-if for CI budgets
    #[command(long_about = cmd::diff::LONG_ABOUT)]
    Diff(cmd::diff::DiffArgs),
    /// A network's family over its parameters: costs per configuration, budgets, compound scaling
    #[command(long_about = cmd::sweep::LONG_ABOUT)]
    Sweep(cmd::sweep::SweepArgs),
    /// Time every row of the table with our runtime, beside the device profile's prediction
    #[command(long_about = cmd::profile::LONG_ABOUT)]
    Profile(cmd::profile::ProfileArgs),
    /// Measure this machine into a device profile (peak rate, bandwidth, per-op efficiency)
    #[command(long_about = cmd::calibrate::LONG_ABOUT)]
    Calibrate(cmd::calibrate::CalibrateArgs),
    /// List the built-in zoo: name, params, MACs, depth and source
    #[command(long_about = cmd::zoo::LONG_ABOUT)]
    Zoo(cmd::zoo::ZooArgs),
    /// List every parameter and buffer with its full name, shape and kind
    #[command(long_about = cmd::weights::LONG_ABOUT)]
    Weights(cmd::weights::WeightsArgs),
    /// Train a network on a dataset (checkpoints, metrics, resume)
    #[command(long_about = cmd::train::LONG_ABOUT)]
    Train(cmd::train::TrainArgs),
    /// Evaluate weights on a dataset's test split: top-1, top-5, per class, confusion
    #[command(long_about = cmd::eval::LONG_ABOUT)]
    Eval(cmd::eval::EvalArgs),
    /// Classify images with trained weights: the top classes with probabilities
    #[command(long_about = cmd::predict::LONG_ABOUT)]
    Predict(cmd::predict::PredictArgs),
    /// Draw a grid of augmented training images (what a config's augmentation does)
    #[command(long_about = cmd::augment::LONG_ABOUT)]
    Augment(cmd::augment::AugmentArgs),
    /// Average several trained models' probabilities: each one's accuracy and the ensemble's
    #[command(long_about = cmd::ensemble::LONG_ABOUT)]
    Ensemble(cmd::ensemble::EnsembleArgs),
    /// Hyper-parameter search: a short training per trial, in parallel processes, resumable
    #[command(long_about = cmd::tune::LONG_ABOUT)]
    Tune(cmd::tune::TuneArgs),
    /// Learning-rate range test: loss against a growing rate, plotted, with a suggestion
    #[command(name = "lr-find", long_about = cmd::lr_find::LONG_ABOUT)]
    LrFind(cmd::lr_find::LrFindArgs),
    /// Draw a run's training curves and say what they suggest
    #[command(long_about = cmd::plot::LONG_ABOUT)]
    Plot(cmd::plot::PlotArgs),
    /// Write the network's graph in Graphviz DOT (render with `dot -Tsvg`)
    Graph(cmd::graph::GraphArgs),
}

fn main() -> ExitCode {
    runtime::kernels::configure_process();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check(args)) => cmd::check::run(args),
        Some(Command::Compare(args)) => cmd::compare::run(args),
        Some(Command::Diff(args)) => cmd::diff::run(args),
        Some(Command::Sweep(args)) => cmd::sweep::run(args),
        Some(Command::Profile(args)) => cmd::profile::run(args),
        Some(Command::Calibrate(args)) => cmd::calibrate::run(args),
        Some(Command::Zoo(args)) => cmd::zoo::run(args),
        Some(Command::Weights(args)) => cmd::weights::run(args),
        Some(Command::Train(args)) => cmd::train::run(args),
        Some(Command::Eval(args)) => cmd::eval::run(args),
        Some(Command::Predict(args)) => cmd::predict::run(args),
        Some(Command::Augment(args)) => cmd::augment::run(args),
        Some(Command::Ensemble(args)) => cmd::ensemble::run(args),
        Some(Command::Tune(args)) => cmd::tune::run(args),
        Some(Command::LrFind(args)) => cmd::lr_find::run(args),
        Some(Command::Plot(args)) => cmd::plot::run(args),
        Some(Command::Graph(args)) => cmd::graph::run(args),
        None => cmd::analyze::run(&cli.analyze),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::FAILURE,
    }
}
