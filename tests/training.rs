//! Training runs end to end on small data: determinism (one seed, one
//! checkpoint, bit for bit), exact resumption, the stop on a non-finite
//! loss that keeps the last good checkpoint, and the train/eval/predict
//! commands with their errors.

use candle_core::{DType, Device};
use rand::SeedableRng;
use runtime::checkpoint;
use runtime::config::{AugmentConfig, TrainConfig};
use runtime::model::Model;
use runtime::train::{train, TrainJob, CHECKPOINT, LOSSES, METRICS};
use std::path::{Path, PathBuf};

mod support {
    pub mod run_weights;
}
use std::process::{Command, Output};
use support::run_weights::run_weights;

/// Conv, BN, dropout, augmentation and Mixup: every source of randomness.
const NET: &str = "network tiny(classes = 10)
input 3x32x32
conv1: conv 8 k=3 s=2 p=1 bias=false
bn1: bn | relu
pool: maxpool k=2
gap
flatten
drop: dropout 0.2
fc: linear classes
";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cnncost-training-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 32,
        seed: 7,
        ema: Some(0.9),
        augment: AugmentConfig {
            crop_padding: 2,
            flip: true,
            cutout: Some(4),
            mixup: Some(0.2),
            ..AugmentConfig::default()
        },
        ..TrainConfig::default()
    }
}

fn dataset() -> data::Dataset {
    data::load("synthetic:200").unwrap()
}

/// Trains a fresh model (initialised from the config's seed) into `out`.
fn run(
    out: &Path,
    config: TrainConfig,
    resume: bool,
    stop_after: Option<u64>,
) -> Result<(), String> {
    let net = dsl::compile("tiny.net", NET, &Default::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap();
    let data = dataset();
    let resume = resume.then(|| checkpoint::load(out).unwrap());
    let job = TrainJob {
        model: &model,
        source: NET,
        dataset: &data,
        config,
        out: out.to_path_buf(),
        resume,
        // Tests rerun into their directories: a fresh run starts over.
        force: true,
        progress: false,
        stop_after,
    };
    train(&job).map(|_| ()).map_err(|e| e.to_string())
}

/// The metrics without their timings.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(METRICS))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("images_per_s");
            v
        })
        .collect()
}

#[test]
fn one_seed_gives_identical_checkpoints_and_a_resumed_run_ends_the_same() {
    let a = temp_dir("a");
    let b = temp_dir("b");
    run(&a, config(), false, None).unwrap();
    run(&b, config(), false, None).unwrap();
    let bytes_a = std::fs::read(a.join(CHECKPOINT)).unwrap();
    let bytes_b = std::fs::read(b.join(CHECKPOINT)).unwrap();
    assert!(
        bytes_a == bytes_b,
        "two runs with one seed wrote different checkpoints"
    );
    assert_eq!(metrics(&a).len(), 3);

    // Interrupted after the first epoch, then resumed: the same end.
    let c = temp_dir("c");
    run(&c, config(), false, Some(1)).unwrap();
    assert_eq!(metrics(&c).len(), 1);
    run(&c, config(), true, None).unwrap();
    assert!(
        run_weights(&a) == run_weights(&c),
        "the resumed run ended with other weights"
    );
    assert_eq!(metrics(&a), metrics(&c));
    let losses = |d: &Path| std::fs::read_to_string(d.join(LOSSES)).unwrap();
    assert_eq!(
        losses(&a),
        losses(&c),
        "per-step losses differ after resuming"
    );

    // Another seed is another run.
    let d = temp_dir("d");
    run(
        &d,
        TrainConfig {
            seed: 8,
            ..config()
        },
        false,
        None,
    )
    .unwrap();
    assert!(run_weights(&a) != run_weights(&d));
    for dir in [a, b, c, d] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    let dir = temp_dir("nan");
    run(&dir, config(), false, Some(1)).unwrap();
    let good = std::fs::read(dir.join(CHECKPOINT)).unwrap();
    let wild = TrainConfig {
        lr: Some(1e30),
        schedule: runtime::schedule::ScheduleKind::Constant,
        ..config()
    };
    let e = run(&dir, wild, true, None).unwrap_err();
    assert!(e.contains("the training loss became"), "{e}");
    assert!(e.contains("epoch 2"), "{e}");
    assert!(e.contains("last good checkpoint"), "{e}");
    assert!(
        std::fs::read(dir.join(CHECKPOINT)).unwrap() == good,
        "the checkpoint changed"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn cnncost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn train_eval_and_predict_from_the_command_line() {
    let dir = temp_dir("cli");
    let out = dir.join("run");
    let o = cnncost(&[
        "train",
        "cifar_small",
        "--data",
        "synthetic:300",
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--set",
        "width=8",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines = std::fs::read_to_string(out.join(METRICS)).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    for key in [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
        "images_per_s",
        "seconds",
    ] {
        assert!(last.get(key).is_some(), "metrics lack {key}: {last}");
    }

    // plot: both pictures, and a reading of the curves.
    let o = cnncost(&["plot", out.to_str().unwrap()]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for f in ["curves.png", "curves.svg"] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{f} is {len} bytes");
    }
    assert!(stdout.lines().any(|l| l.starts_with("- ")), "{stdout}");
    let losses = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    // 300 training images in batches of 50, 2 epochs: 12 steps.
    assert_eq!(losses.lines().count(), 1 + 12, "{losses}");

    // eval --format json: the fields the issue names, and a confusion
    // matrix that counts every test image once.
    let o = cnncost(&[
        "eval",
        "cifar_small",
        "--set",
        "width=8",
        "--weights",
        out.to_str().unwrap(),
        "--data",
        "synthetic:300",
        "--format",
        "json",
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let images = v["images"].as_u64().unwrap();
    assert_eq!(images, 60, "synthetic:300 has 60 test images");
    let counted: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, images);
    let diagonal: u64 = (0..10)
        .map(|i| v["confusion"][i][i].as_u64().unwrap())
        .sum();
    let top1 = v["top1"].as_f64().unwrap();
    assert!((top1 - 100.0 * diagonal as f64 / images as f64).abs() < 1e-9);
    // The epoch's own evaluation said the same.
    assert!((top1 - last["test_acc"].as_f64().unwrap()).abs() < 1e-9);
    assert!(v["top5"].as_f64().unwrap() >= top1);
    assert_eq!(v["per_class"].as_object().unwrap().len(), 10);

    // Test-time augmentation: every test image still counted once.
    for tta in ["flip", "10crop", "multiscale"] {
        let o = cnncost(&[
            "eval",
            "cifar_small",
            "--set",
            "width=8",
            "--weights",
            out.to_str().unwrap(),
            "--data",
            "synthetic:300",
            "--format",
            "json",
            "--tta",
            tta,
        ]);
        let (stdout, err) = text(&o);
        assert!(o.status.success(), "{tta}: {err}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["images"].as_u64(), Some(60), "{tta}");
    }

    // An ensemble of one model twice is that model: the same accuracy as
    // eval's.
    let o = cnncost(&[
        "ensemble",
        "cifar_small",
        "--set",
        "width=8",
        "--weights",
        out.to_str().unwrap(),
        out.to_str().unwrap(),
        "--data",
        "synthetic:300",
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let accs: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("top-1").nth(1))
        .map(|r| r.trim().split('%').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(accs.len(), 3, "{stdout}");
    assert!(
        accs.iter().all(|&a| (a - top1).abs() < 1e-9),
        "{stdout} vs {top1}"
    );

    // predict: one block per image, the top classes by probability.
    let png = dir.join("x.png");
    image_file(&png);
    let o = cnncost(&[
        "predict",
        "cifar_small",
        "--set",
        "width=8",
        "--weights",
        out.to_str().unwrap(),
        png.to_str().unwrap(),
        "--top",
        "3",
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let probs: Vec<f64> = stdout
        .lines()
        .skip(1)
        .map(|l| l.trim().split('%').next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(probs.len(), 3, "{stdout}");
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{stdout}");

    // Weights of another network: an error that names the first tensor that does not fit.
    let o = cnncost(&[
        "eval",
        "cifar_small",
        "--weights",
        out.to_str().unwrap(),
        "--data",
        "synthetic:300",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("checkpoint.safetensors") && err.contains("`stage1.0.weight` has shape [8, 3, 3, 3] in the file, the network expects [32, 3, 3, 3]"), "{err}");

    // A damaged checkpoint: a clear error, not a panic.
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let o = cnncost(&[
        "eval",
        "cifar_small",
        "--weights",
        bad.to_str().unwrap(),
        "--data",
        "synthetic:300",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("bad.safetensors: not a safetensors file"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A 32x32 RGB gradient as PNG.
fn image_file(path: &Path) {
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 128])
    });
    img.save(path).unwrap();
}

#[test]
fn a_state_dict_from_elsewhere_needs_its_normalisation() {
    // PyTorch's resnet20 weights (../shared/fixtures) as a plain safetensors
    // state dict: they load by name; with no statistics in the file, eval
    // asks for --mean and --std.
    let weights = "../shared/fixtures/resnet20_cifar.safetensors";
    let data = "cifar10:../shared/data/cifar10-bin";
    let o = cnncost(&["eval", "resnet20", "--weights", weights, "--data", data]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("carry no normalisation statistics") && err.contains("--mean"),
        "{err}"
    );
    let o = cnncost(&[
        "eval",
        "resnet20",
        "--weights",
        weights,
        "--data",
        data,
        "--mean",
        "0.4914,0.4822,0.4465",
        "--std",
        "0.247,0.243,0.261",
        "--format",
        "json",
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["images"].as_u64(),
        Some(1000),
        "cifar10-bin's test batch holds 1,000 records"
    );
    // The fixture's extra `ref.` tensors are reported, not silently ignored.
    assert!(err.contains("not used by the network"), "{err}");
    // A wrong number of channel statistics is an error.
    let o = cnncost(&[
        "eval",
        "resnet20",
        "--weights",
        weights,
        "--data",
        data,
        "--mean",
        "0.5,0.5",
        "--std",
        "0.25",
    ]);
    let (_, err) = text(&o);
    assert!(err.contains("--mean has 2 values; give 1 or 3"), "{err}");
}

#[test]
fn the_lectures_sanity_checks() {
    let net = ["cifar_small", "--set", "width=8", "--data", "synthetic:300"];
    // At initialisation the loss is about ln(10): a verdict, exit 0.
    let o = cnncost(&[&["train"], &net[..], &["--check-init"]].concat());
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{stdout}{err}");
    let loss: f64 = stdout.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!((loss - 10f64.ln()).abs() < 0.25 * 10f64.ln(), "{stdout}");
    assert!(stdout.contains("as expected"), "{stdout}");
    // One batch overfits to 100%; at a rate of 1e-9 the loss does not fall
    // and the check fails with that diagnosis.
    let o = cnncost(
        &[
            &["train"],
            &net[..],
            &["--overfit", "1", "--batch-size", "16", "--lr", "0.05"],
        ]
        .concat(),
    );
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{stdout}{err}");
    assert!(
        stdout.contains("reached 100% training accuracy"),
        "{stdout}"
    );
    let o = cnncost(
        &[
            &["train"],
            &net[..],
            &["--overfit", "1", "--lr", "1e-9", "--overfit-steps", "10"],
        ]
        .concat(),
    );
    let (stdout, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout.contains("the loss did not fall"), "{stdout}");
    // The range test draws its plot and suggests a rate inside its range.
    let dir = temp_dir("lr");
    let png = dir.join("lr.png");
    let o = cnncost(
        &[
            &["lr-find"],
            &net[..],
            &[
                "--steps",
                "20",
                "--min",
                "1e-4",
                "--max",
                "1",
                "--out",
                png.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let rate: f64 = stdout
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1e-4..=1.0).contains(&rate), "{stdout}");
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The values of a model's tensor, by name.
fn values(model: &Model, name: &str) -> Vec<f32> {
    model
        .tensor(name)
        .unwrap()
        .var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn tiny(classes: i64, seed: u64) -> Model {
    let overrides = dsl::Overrides {
        set: vec![("classes".to_string(), dsl::value::Value::Int(classes))],
        ..Default::default()
    };
    let net = dsl::compile("tiny.net", NET, &overrides).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap()
}

#[test]
fn transfer_learning_loads_replaces_the_head_and_freezes() {
    let dir = temp_dir("transfer");
    let source = dir.join("source");
    run(
        &source,
        TrainConfig {
            epochs: 1,
            ..config()
        },
        false,
        None,
    )
    .unwrap();
    let ckpt = source.join(CHECKPOINT).display().to_string();
    let trained = checkpoint::load(&source).unwrap();
    let stored = |name: &str| -> Vec<f32> {
        trained.tensors[name]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };

    // Another number of classes without replace_head: an error that says what to do.
    let mut five = tiny(5, 1);
    let wanting = TrainConfig {
        init: Some(ckpt.clone()),
        ..config()
    };
    let e = runtime::transfer::prepare(&mut five, &wanting, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`fc.weight` has shape [10, 8] in the file, the network expects [5, 8]")
            && e.contains("replace-head"),
        "{e}"
    );

    // With it: the backbone is the checkpoint's, the head fresh.
    let mut model = tiny(10, 1);
    let transfer = TrainConfig {
        init: Some(ckpt),
        replace_head: true,
        freeze: vec!["conv1".into(), "bn1".into()],
        backbone_lr_scale: 0.1,
        epochs: 1,
        ..config()
    };
    let notes = runtime::transfer::prepare(&mut model, &transfer, false).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("the head (fc.weight, fc.bias) starts fresh")),
        "{notes:?}"
    );
    assert_eq!(values(&model, "conv1.weight"), stored("conv1.weight"));
    assert_ne!(values(&model, "fc.weight"), stored("fc.weight"));
    let before_head = values(&model, "fc.weight");

    // Training moves the head only: frozen weights and BN statistics stay.
    let data = dataset();
    let out = dir.join("target");
    let job = TrainJob {
        model: &model,
        source: NET,
        dataset: &data,
        config: transfer.clone(),
        out: out.clone(),
        resume: None,
        force: false,
        progress: false,
        stop_after: None,
    };
    train(&job).unwrap();
    for frozen in [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
    ] {
        assert_eq!(values(&model, frozen), stored(frozen), "{frozen} moved");
    }
    assert_ne!(
        values(&model, "fc.weight"),
        before_head,
        "the head did not train"
    );

    // A prefix that names nothing is an error, not a silent no-op.
    let mut other = tiny(10, 1);
    let e = runtime::transfer::prepare(
        &mut other,
        &TrainConfig {
            freeze: vec!["conv".into()],
            ..config()
        },
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no op is named `conv`"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_moving_average_of_the_weights() {
    // Decay 0: the average is the weights themselves, and so is its accuracy.
    let dir = temp_dir("ema0");
    run(
        &dir,
        TrainConfig {
            epochs: 1,
            ema: Some(0.0),
            ..config()
        },
        false,
        None,
    )
    .unwrap();
    let c = checkpoint::load(&dir).unwrap();
    let v = |k: &str| -> Vec<f32> { c.tensors[k].flatten_all().unwrap().to_vec1().unwrap() };
    assert_eq!(v("ema.fc.weight"), v("fc.weight"));
    assert_eq!(v("ema.bn1.running_mean"), v("bn1.running_mean"));
    let m = &metrics(&dir)[0];
    assert_eq!(m["ema_test_acc"], m["test_acc"]);
    // Decay 0.9: an average over the run, not the last weights.
    let dir9 = temp_dir("ema9");
    run(
        &dir9,
        TrainConfig {
            epochs: 1,
            ..config()
        },
        false,
        None,
    )
    .unwrap();
    let c9 = checkpoint::load(&dir9).unwrap();
    let w = |k: &str| -> Vec<f32> { c9.tensors[k].flatten_all().unwrap().to_vec1().unwrap() };
    assert_ne!(w("ema.fc.weight"), w("fc.weight"));
    for d in [dir, dir9] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn snapshot_ensembles_keep_one_snapshot_per_cycle() {
    let dir = temp_dir("snapshots");
    let cfg = TrainConfig {
        epochs: 4,
        schedule: runtime::schedule::ScheduleKind::CosineRestarts,
        cycles: 2,
        snapshots: true,
        ..config()
    };
    run(&dir, cfg, false, None).unwrap();
    // Cycles of 2 epochs: snapshots after epochs 2 and 4; the last is the
    // final weights.
    assert!(
        dir.join("snapshot-1.safetensors").exists() && dir.join("snapshot-2.safetensors").exists()
    );
    assert!(!dir.join("snapshot-3.safetensors").exists());
    let last = checkpoint::load(&dir.join("snapshot-2.safetensors")).unwrap();
    let end = checkpoint::load(&dir).unwrap();
    let v = |c: &checkpoint::Checkpoint, k: &str| -> Vec<f32> {
        c.tensors[k].flatten_all().unwrap().to_vec1().unwrap()
    };
    assert_eq!(v(&last, "fc.weight"), v(&end, "fc.weight"));
    let first = checkpoint::load(&dir.join("snapshot-1.safetensors")).unwrap();
    assert_ne!(v(&first, "fc.weight"), v(&end, "fc.weight"));
    // Epochs must split into whole cycles.
    let bad = TrainConfig {
        epochs: 3,
        ..TrainConfig {
            schedule: runtime::schedule::ScheduleKind::CosineRestarts,
            cycles: 2,
            ..config()
        }
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("multiple of `cycles`"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tune_runs_every_trial_once_and_resumes() {
    let dir = temp_dir("tune");
    let out = dir.join("search");
    let args = [
        "tune",
        "cifar_small",
        "--set",
        "width=8",
        "--data",
        "synthetic:200",
        "--grid",
        "lr=[0.1,0.01] wd=[1e-4,0]",
        "--epochs",
        "1",
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = cnncost(&args);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("4 trials of 1 epochs (0 already done)"),
        "{err}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    // Each trial trained with its own settings.
    let cfg = std::fs::read_to_string(out.join("trial-003/config.yaml")).unwrap();
    assert!(
        cfg.contains("lr: 0.01") && cfg.contains("weight_decay: 0.0001"),
        "{cfg}"
    );
    assert!(std::fs::metadata(out.join("tune.png")).unwrap().len() > 1000);
    // Sorted by accuracy, best first.
    let accs: Vec<f64> = stdout
        .lines()
        .filter(|l| l.contains("trial-"))
        .map(|l| {
            l.trim_end()
                .trim_end_matches('%')
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(accs.len(), 4, "{stdout}");
    assert!(accs.windows(2).all(|w| w[0] >= w[1]), "{stdout}");
    // Again: nothing left to run, the same table.
    let o = cnncost(&args);
    let (again, err) = text(&o);
    assert!(
        err.contains("(4 already done)") && !err.contains("started"),
        "{err}"
    );
    assert_eq!(again, stdout);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Issue 15, items 1 and 2: a second `train` into a run directory is refused
/// (naming `--resume` and `--force`) and leaves the first run as it was; two
/// writers never share a directory.
#[test]
fn a_run_directory_is_never_overwritten_or_shared() {
    let dir = temp_dir("guard");
    let out = dir.join("run");
    let train = |extra: &[&str], epochs: &str| {
        let mut args = vec![
            "train",
            "cifar_small",
            "--data",
            "synthetic:200",
            "--epochs",
            epochs,
            "--batch-size",
            "50",
            "--set",
            "width=8",
            "--quiet",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        cnncost(&args)
    };
    let o = train(&[], "1");
    assert!(o.status.success(), "{}", text(&o).1);
    let metrics = std::fs::read(out.join(METRICS)).unwrap();
    let checkpoint = std::fs::read(out.join(CHECKPOINT)).unwrap();
    assert!(
        !out.join(runtime::run_dir::LOCK).exists(),
        "the lock goes with the run"
    );

    // The same command again: refused, the run untouched.
    let o = train(&[], "1");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(out.join(METRICS)).unwrap(), metrics);
    assert_eq!(std::fs::read(out.join(CHECKPOINT)).unwrap(), checkpoint);

    // --force starts over.
    let o = train(&["--force"], "1");
    assert!(o.status.success(), "{}", text(&o).1);

    // A writer at work: a second run, fresh or resumed, is refused with its PID.
    let mut first = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "cifar_small",
            "--data",
            "synthetic:2000",
            "--epochs",
            "50",
            "--batch-size",
            "50",
            "--set",
            "width=8",
            "--quiet",
            "--force",
            "--out",
        ])
        .arg(&out)
        .spawn()
        .unwrap();
    let lock = out.join(runtime::run_dir::LOCK);
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim() != first.id().to_string()) {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for extra in [&["--force"][..], &["--resume", out.to_str().unwrap()][..]] {
        let o = train(extra, "1");
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(&format!("process {}", first.id())), "{err}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed, it leaves its lock; the next run takes it over.
    assert!(lock.exists());
    let o = train(&["--force"], "1");
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(!lock.exists());
}

/// Issue 15, item 5: a checkpoint whose bytes changed is refused by its
/// checksum; one holding NaN weights is refused unless `--allow-nonfinite`;
/// and training from NaN weights stops (the loss stays finite: a ReLU turns
/// NaN into 0) without writing a checkpoint.
#[test]
fn damaged_and_nonfinite_checkpoints_are_refused() {
    let dir = temp_dir("nonfinite");
    let out = dir.join("run");
    // No batch norm: a NaN weight's output goes through the ReLU as 0.
    let net = dir.join("relu.net");
    std::fs::write(
        &net,
        "network relu(classes = 10)\ninput 3x32x32\nconv1: conv 4 k=3 | relu\ngap\nflatten\nfc: linear classes\n",
    )
    .unwrap();
    let net = net.to_str().unwrap();
    let common = ["--data", "synthetic:200"];
    let o = cnncost(
        &[
            &[
                "train",
                net,
                "--epochs",
                "1",
                "--batch-size",
                "50",
                "--quiet",
                "--out",
            ][..],
            &[out.to_str().unwrap()],
            &common,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let path = out.join(CHECKPOINT);
    let good = std::fs::read(&path).unwrap();
    let eval = |extra: &[&str]| {
        cnncost(
            &[
                &["eval", net, "--weights", out.to_str().unwrap()][..],
                &common,
                extra,
            ]
            .concat(),
        )
    };
    let o = eval(&[]);
    assert!(o.status.success(), "{}", text(&o).1);

    // One flipped bit in the tensor data.
    let header = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut bad = good.clone();
    bad[8 + header + 17] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    let o = eval(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("checksum"), "{}", text(&o).1);

    // A NaN planted in conv1's weights, in a well-formed file.
    std::fs::write(&path, &good).unwrap();
    let c = checkpoint::load(&out).unwrap();
    let mut tensors: Vec<(String, candle_core::Tensor)> = c.tensors.clone().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let (name, t) = tensors
        .iter_mut()
        .find(|(n, _)| n.ends_with(".weight"))
        .unwrap();
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[0] = f32::NAN;
    *t = candle_core::Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap();
    let name = name.clone();
    checkpoint::save(&path, &tensors, &c.meta).unwrap();
    let planted = std::fs::read(&path).unwrap();
    let o = eval(&[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&name) && err.contains("--allow-nonfinite"),
        "{err}"
    );
    assert!(eval(&["--allow-nonfinite"]).status.success());
    let o = cnncost(&[
        "train",
        net,
        "--resume",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
        "--allow-nonfinite",
    ]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the weight conv1.weight became NaN or infinite"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        planted,
        "the checkpoint was rewritten"
    );
}

/// A small CIFAR network, quick to train: `cnncost train` arguments.
const SMALL: [&str; 6] = [
    "cifar_small",
    "--set",
    "width=8",
    "--batch-size",
    "50",
    "--quiet",
];

/// One epoch of [`SMALL`] on `data` into `out`, which must succeed.
fn train_small_epoch(out: &Path, data: &str) {
    let o = cnncost(
        &[
            &["train"][..],
            &SMALL,
            &[
                "--data",
                data,
                "--epochs",
                "1",
                "--out",
                out.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o).1);
}

/// Issue 15, item 6: `--resume` with other data or settings names each
/// difference and refuses, unless `--force`; raising `--epochs` is allowed.
#[test]
fn resume_refuses_changed_settings() {
    let dir = temp_dir("resume-settings");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    train_small_epoch(&out, "synthetic:200");
    for (extra, named) in [
        (&["--batch-size", "25"][..], "batch_size 50 -> 25"),
        (&["--seed", "7"][..], "seed 0 -> 7"),
        (
            &["--optimizer", "adam"][..],
            "optimizer \"sgd\" -> \"adam\"",
        ),
        (&["--freeze", "stage1"][..], "freeze"),
        (
            &["--data", "synthetic:300"][..],
            "data synthetic:200 -> synthetic:300",
        ),
    ] {
        let o = cnncost(
            &[
                &["train", "cifar_small", "--set", "width=8", "--quiet"][..],
                &["--resume", out_s, "--epochs", "2"],
                extra,
            ]
            .concat(),
        );
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains(named) && err.contains("--force"),
            "{extra:?}: {err}"
        );
    }
    // Raising the epochs alone continues; so does a difference with --force.
    let o = cnncost(&[
        "train",
        "cifar_small",
        "--set",
        "width=8",
        "--quiet",
        "--resume",
        out_s,
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = cnncost(&[
        "train",
        "cifar_small",
        "--set",
        "width=8",
        "--quiet",
        "--resume",
        out_s,
        "--epochs",
        "3",
        "--seed",
        "7",
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
}

/// Issue 15, item 9: a metrics log that does not read stops a resume instead
/// of being dropped; batch norm refuses one value per channel, as PyTorch.
#[test]
fn unreadable_logs_and_single_value_batch_norm_are_errors() {
    let dir = temp_dir("leftovers");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    train_small_epoch(&out, "synthetic:100");
    let mut log = std::fs::read(out.join(METRICS)).unwrap();
    log.extend_from_slice(b"\xff\xfe garbage\n");
    std::fs::write(out.join(METRICS), &log).unwrap();
    // Evaluated on other data: said.
    let o = cnncost(&[
        "eval",
        "cifar_small",
        "--set",
        "width=8",
        "--weights",
        out_s,
        "--data",
        "synthetic:150",
    ]);
    let err = text(&o).1;
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("was trained on synthetic:100; evaluating it on synthetic:150"),
        "{err}"
    );
    let o = cnncost(
        &[
            &["train"][..],
            &SMALL,
            &["--resume", out_s, "--epochs", "2"],
        ]
        .concat(),
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read the run's metrics"), "{err}");
    assert_eq!(
        std::fs::read(out.join(METRICS)).unwrap(),
        log,
        "the log was rewritten"
    );

    let net = dir.join("bn1d.net");
    std::fs::write(
        &net,
        "network bn1d(classes = 10)\ninput 3x32x32\nflatten\nlinear 8\nbn\nlinear classes\n",
    )
    .unwrap();
    let o = cnncost(&[
        "train",
        net.to_str().unwrap(),
        "--data",
        "synthetic:3",
        "--batch-size",
        "1",
        "--quiet",
        "--out",
        dir.join("bn").to_str().unwrap(),
    ]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("more than one value per channel"), "{err}");
}

/// Issue 15, item 11: the loss an epoch ends with, not its mean, is read
/// against ln C. PyTorch's stuck runs of the default recipe without warmup
/// (tests/reference/pytorch_seeds.json, seeds 2 and 3) had epoch means of
/// 5.30 and 2.43 from a blown-up start, and ended at ln 10.
#[test]
fn a_loss_that_ends_at_chance_is_reported() {
    use runtime::train::stuck_at_chance;
    // ln 10 = 2.3026: uniform guessing over ten classes.
    let mut blown_up = vec![40.0; 20];
    blown_up.extend(std::iter::repeat_n(2.302, 180));
    let w = stuck_at_chance(&blown_up, 10, 0).expect("ends at ln 10");
    assert!(
        w.contains("lower --lr") && w.contains("warmup") && w.contains("--check-init"),
        "{w}"
    );
    assert!(w.contains("the mean of its last 20 steps"), "{w}");
    // Learning: the start is at ln 10, the end is not.
    let mut learning = vec![2.302; 150];
    learning.extend(std::iter::repeat_n(0.4, 50));
    assert!(stuck_at_chance(&learning, 10, 0).is_none(), "learning");
    assert!(stuck_at_chance(&[0.7], 2, 3).is_some(), "ln 2 = 0.693");
    assert!(stuck_at_chance(&[0.1], 1, 0).is_none());
    assert!(stuck_at_chance(&[], 10, 0).is_none());
    // PyTorch's twenty runs of the default recipe: the rule flags exactly
    // the runs that ended at chance accuracy.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/pytorch_seeds.json"
    );
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut flagged = 0;
    for recipe in reference["runs"].as_object().unwrap().values() {
        for run in recipe["seeds"].as_array().unwrap() {
            let tail = run["last_tenth_train_loss"].as_f64().unwrap();
            let at_chance = run["test_acc"].as_f64().unwrap() < 20.0;
            assert_eq!(
                stuck_at_chance(&[tail], 10, 0).is_some(),
                at_chance,
                "{run}"
            );
            flagged += usize::from(at_chance);
        }
    }
    assert_eq!(flagged, 2, "seeds 2 and 3 without warmup");
}

/// Issue 15, item 11: `train` says so when a layer's ReLUs are dead after an
/// epoch, naming the layer, and when the loss ends at ln C.
#[test]
fn train_warns_about_dead_relus_and_a_loss_at_chance() {
    let dir = temp_dir("dead");
    let net = dir.join("dead.net");
    std::fs::write(
        &net,
        "network dead\ninput 3x32x32\nc1: conv 4 k=3 s=2 init=zeros | relu\ngap\nflatten\nfc: linear 10\n",
    )
    .unwrap();
    let o = cnncost(&[
        "train",
        net.to_str().unwrap(),
        "--data",
        "synthetic:200",
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--quiet",
        "--force",
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    let err = text(&o).1;
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("`c1.relu` outputs only zeros") && err.contains("dead ReLUs"),
        "{err}"
    );
    // Nothing reaches the classifier: it learns the class prior at best.
    assert!(err.contains("the loss of uniform guessing"), "{err}");
}

/// Issue 15, item 11: a ReLU whose every output is zero is found by name.
/// Zero weights and biases make `conv` output zeros, so its ReLU is dead;
/// a freshly initialised network has none.
#[test]
fn dead_relus_are_found_by_name() {
    let text = "network d\ninput 3x8x8\nc1: conv 4 k=3 init=zeros | relu\nc2: conv 4 k=3 | relu\nflatten\nfc: linear 10 | relu\nout: linear 2\n";
    let net = dsl::compile("d.net", text, &Default::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap();
    let x = candle_core::Tensor::randn(0f32, 1.0, (4, 3, 8, 8), &Device::Cpu).unwrap();
    let dead = model.dead_relus(&x).unwrap();
    // (c2's input is all zeros: its output is its bias, dead or not by the
    // draw.)
    assert_eq!(
        dead.first().map(String::as_str),
        Some("c1.relu"),
        "{dead:?}"
    );
    let healthy = tiny(10, 0);
    let x = candle_core::Tensor::randn(0f32, 1.0, (4, 3, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(healthy.dead_relus(&x).unwrap(), Vec::<String>::new());
    let w = runtime::train::dead_relus_warning(&dead[..1], 4, 0).unwrap();
    assert!(
        w.contains("`c1.relu` outputs only zeros") && w.contains("lower --lr"),
        "{w}"
    );
    assert!(runtime::train::dead_relus_warning(&[], 4, 0).is_none());
}
