//! Parity with PyTorch, the checks that tests/parity.rs and tests/portable.rs run: the fixtures in ../shared/fixtures (PyTorch 2.15,
//! CPU, float32) hold small models' weights, a batch, and PyTorch's outputs,
//! losses, gradients, BN running statistics and optimizer steps. Each model
//! is written as a `.net` file (tests/nets/, and the zoo's resnet20), loads
//! the weights by name, and must reproduce every reference.
//!
//! Tolerances (the fixtures' README: float32 on different kernels differs in
//! the last bits): outputs, losses and BN statistics within 1e-4 relative,
//! gradients and optimizer steps within 1e-3 relative, where "relative" is
//! the largest absolute difference over the reference's largest magnitude.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use runtime::loss::training_loss;
use runtime::model::{Mode, Model};
use runtime::optim::{Optimizer, OptimizerKind, OptimizerSettings};
use std::collections::HashMap;
use std::path::Path;

pub const OUTPUT_TOL: f64 = 1e-4;
pub const GRAD_TOL: f64 = 1e-3;

/// The checkout: `CNNCOST_ROOT` (a copy elsewhere, as on the GPU machine), else the
/// one the tests were built in.
pub fn root() -> String {
    std::env::var("CNNCOST_ROOT").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}

/// A file of ../shared: under `CNNCOST_SHARED` when set, else beside [`root`].
pub fn shared(path: &str) -> String {
    match std::env::var("CNNCOST_SHARED") {
        Ok(dir) => format!("{dir}/{path}"),
        Err(_) => format!("{}/../shared/{path}", root()),
    }
}

/// The device the checks run on: `CNNCOST_TEST_DEVICE` (`cpu`, `cuda`, `cuda:N`; the
/// GPU script sets it), else the CPU. Fixtures load on the CPU and move.
pub fn test_device() -> Device {
    match std::env::var("CNNCOST_TEST_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => Device::Cpu,
        Ok(s) => {
            runtime::device::open(s).unwrap_or_else(|e| panic!("CNNCOST_TEST_DEVICE={s}: {e}"))
        }
    }
}

/// A fixture's tensor on the model's device.
pub fn on(m: &Model, t: &Tensor) -> Tensor {
    t.to_device(m.device()).unwrap()
}

pub fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = shared(&format!("fixtures/{name}.safetensors"));
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub fn model(net_path: &str, weights: &HashMap<String, Tensor>) -> Model {
    model_in(net_path, weights, DType::F32)
}

pub fn model_in(net_path: &str, weights: &HashMap<String, Tensor>, dtype: DType) -> Model {
    let path = Path::new(&root()).join(net_path);
    let text = std::fs::read_to_string(&path).unwrap();
    let net = dsl::compile(net_path, &text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let m = Model::new(&net, &test_device(), dtype, &mut rng).unwrap();
    let unused = m.load_weights(weights).unwrap();
    // Everything in the fixture is either ours or a reference.
    let stray: Vec<&String> = unused.iter().filter(|k| !k.starts_with("ref.")).collect();
    assert!(
        stray.is_empty(),
        "{net_path}: tensors the network has no place for: {stray:?}"
    );
    m
}

/// max |got - want| / max |want|.
pub fn relative_error(got: &Tensor, want: &Tensor) -> f64 {
    let got: Vec<f64> = got
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let want: Vec<f64> = want
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(got.len(), want.len(), "element counts differ");
    // NaN and infinities fail (f64::max would pass over a NaN difference).
    if got.iter().any(|g| !g.is_finite()) {
        return f64::INFINITY;
    }
    let scale = want.iter().fold(0f64, |a, b| a.max(b.abs())).max(1e-12);
    let diff = got
        .iter()
        .zip(&want)
        .fold(0f64, |a, (g, w)| a.max((g - w).abs()));
    diff / scale
}

pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let e = relative_error(got, want);
    assert!(e <= tol, "{what}: relative error {e:.3e} over {tol:.0e}");
}

pub fn labels(m: &Model, f: &HashMap<String, Tensor>) -> Tensor {
    on(m, &f["ref.labels"].to_dtype(DType::U32).unwrap())
}

/// Eval-mode logits, step by step (Eval) and with inference's fused convolutions
/// (Infer: batch norms folded into the weights, bias and ReLU in the conv).
pub fn check_eval(net: &str, f: &HashMap<String, Tensor>) {
    let m = model(net, f);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for mode in [Mode::Eval, Mode::Infer] {
        let out = m.forward(&on(&m, &f["ref.input"]), mode, &mut rng).unwrap();
        assert_close(
            &format!("{net}: {mode:?} logits"),
            &out.main,
            &f["ref.logits_eval"],
            OUTPUT_TOL,
        );
    }
}

/// The "grad mode" references: logits, loss, every gradient and (in train
/// mode) BN's running statistics after the forward.
pub fn check_grad_mode(net: &str, f: &HashMap<String, Tensor>, mode: Mode) {
    let m = model(net, f);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let out = m.forward(&on(&m, &f["ref.input"]), mode, &mut rng).unwrap();
    assert_close(
        &format!("{net}: logits"),
        &out.main,
        &f["ref.logits_grad_mode"],
        OUTPUT_TOL,
    );
    if let Some(aux) = f.get("ref.aux_grad_mode") {
        assert_eq!(out.heads.len(), 1, "{net}: one auxiliary head");
        assert_close(
            &format!("{net}: aux logits"),
            &out.heads[0],
            aux,
            OUTPUT_TOL,
        );
    }
    let loss = training_loss(&out, &labels(&m, f), 0.3, 0.0).unwrap();
    assert_close(
        &format!("{net}: loss"),
        &loss.reshape(1).unwrap(),
        &f["ref.loss"],
        OUTPUT_TOL,
    );
    let grads = loss.backward().unwrap();
    let mut checked = 0;
    for p in m.params() {
        let want = f
            .get(&format!("ref.grad.{}", p.name))
            .unwrap_or_else(|| panic!("{net}: the fixture has no gradient for {}", p.name));
        let got = grads
            .get(p.var.as_tensor())
            .unwrap_or_else(|| panic!("{net}: no gradient reached {}", p.name));
        assert_close(&format!("{net}: grad {}", p.name), got, want, GRAD_TOL);
        checked += 1;
    }
    let fixture_grads = f.keys().filter(|k| k.starts_with("ref.grad.")).count();
    assert_eq!(
        checked, fixture_grads,
        "{net}: every gradient of the fixture checked"
    );
    let mut stats = 0;
    for t in &m.tensors {
        if let Some(want) = f.get(&format!("ref.after_forward.{}", t.name)) {
            assert_close(
                &format!("{net}: {} after forward", t.name),
                t.var.as_tensor(),
                want,
                OUTPUT_TOL,
            );
            stats += 1;
        }
    }
    let fixture_stats = f
        .keys()
        .filter(|k| k.starts_with("ref.after_forward."))
        .count();
    assert_eq!(
        stats, fixture_stats,
        "{net}: every BN statistic of the fixture checked"
    );
}

/// Two steps of each optimizer from resnet20's weights on its batch, as
/// PyTorch took them (train-mode forward, cross-entropy, backward, step).
///
/// The model runs in f64 here: what is under test is the update rule, and
/// some of these points are ill-conditioned for f32 gradients (after
/// Nesterov's first step, our f32 and f64 gradients differ by 2.4e-3 while
/// PyTorch's f32 step agrees with our f64 one to 2e-6), and Adam divides by
/// each element's own gradient size, which amplifies a tiny gradient's float
/// noise to the update's full size. The f32 gradients are checked above.
pub fn check_optimizer(prefix: &str, settings: OptimizerSettings, lr: f64) {
    let weights = fixture("resnet20_cifar");
    let refs = fixture("resnet20_cifar_optim");
    let m = model_in("zoo/resnet20.net", &weights, DType::F64);
    let input = on(&m, &weights["ref.input"].to_dtype(DType::F64).unwrap());
    let adam = settings.kind != OptimizerKind::Sgd;
    let mut smallest_grad: HashMap<String, Tensor> = HashMap::new();
    let mut opt = Optimizer::new(settings);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for step in 1..=2 {
        let out = m.forward(&input, Mode::Train, &mut rng).unwrap();
        let loss = training_loss(&out, &labels(&m, &weights), 0.3, 0.0).unwrap();
        let grads = loss.backward().unwrap();
        let g: Vec<Option<Tensor>> = m
            .params()
            .map(|p| grads.get(p.var.as_tensor()).cloned())
            .collect();
        let before: Vec<Tensor> = m
            .params()
            .map(|p| p.var.as_tensor().copy().unwrap())
            .collect();
        opt.step(&m, &g, lr).unwrap();
        let mut checked = 0;
        for (p, before) in m.params().zip(&before) {
            let key = format!("ref.{prefix}.step{step}.{}", p.name);
            let want = refs
                .get(&key)
                .unwrap_or_else(|| panic!("no {key}"))
                .to_dtype(DType::F64)
                .and_then(|t| t.to_device(m.device()))
                .unwrap();
            // Compare the updates, not the weights: an update is small next
            // to its weight, and a wrong one would hide under a weight tolerance.
            let ours = (p.var.as_tensor() - before).unwrap();
            let theirs = (want - before).unwrap();
            let (ours, theirs) = if adam {
                // Adam's first steps divide by |g| + eps: where |g| is within a
                // hundred eps (one weight of 65,536 here has |g| = 6e-8), the
                // update follows the float noise of PyTorch's own f32
                // gradient. Those elements are held only to the update's size.
                let grad = grads.get(p.var.as_tensor()).unwrap().abs().unwrap();
                let small = smallest_grad
                    .entry(p.name.clone())
                    .and_modify(|s| *s = s.minimum(&grad).unwrap())
                    .or_insert(grad);
                let keep = small.ge(1e-6).unwrap().to_dtype(DType::F64).unwrap();
                let gap = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
                assert!(
                    gap.to_scalar::<f64>().unwrap() <= 2.0 * lr,
                    "{prefix}: an update is off by more than its size"
                );
                ((&ours * &keep).unwrap(), (&theirs * &keep).unwrap())
            } else {
                (ours, theirs)
            };
            assert_close(
                &format!("{prefix} step {step}: update of {}", p.name),
                &ours,
                &theirs,
                GRAD_TOL,
            );
            checked += 1;
        }
        assert_eq!(checked, 59, "resnet20 has 59 parameter tensors");
        // Go on from PyTorch's weights, so step 2 checks the optimizer's
        // state rather than the drift of our step 1 within tolerance.
        for p in m.params() {
            let w = &refs[&format!("ref.{prefix}.step{step}.{}", p.name)];
            p.var
                .set(&on(&m, &w.to_dtype(DType::F64).unwrap()))
                .unwrap();
        }
    }
}

/// A fixture's model: eval-mode logits, then the grad-mode references in `mode`.
pub fn check_model(name: &str, net: &str, mode: Mode) {
    let f = fixture(name);
    check_eval(net, &f);
    check_grad_mode(net, &f, mode);
}

/// The settings of an optimizer test: `kind` with these momentum, Nesterov and decay.
pub fn settings(
    kind: OptimizerKind,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
) -> OptimizerSettings {
    OptimizerSettings {
        kind,
        momentum,
        nesterov,
        weight_decay,
        betas: (0.9, 0.999),
        eps: 1e-8,
    }
}

/// The parity tests, each calling `$setup` first (tests/parity.rs: nothing;
/// tests/portable.rs: the portable ops forced on the CPU).
#[macro_export]
macro_rules! parity_tests {
    ($setup:expr) => {
        use runtime::model::Mode;
        use runtime::optim::OptimizerKind;
        use $crate::support::parity::{check_model, check_optimizer, settings};

        #[test]
        fn resnet20_matches_pytorch() {
            $setup();
            check_model("resnet20_cifar", "zoo/resnet20.net", Mode::Train);
        }

        #[test]
        fn alexnet_small_matches_pytorch() {
            $setup();
            // The references were taken in eval mode (dropout off).
            check_model("alexnet_small", "tests/nets/alexnet_small.net", Mode::Eval);
        }

        #[test]
        fn googlenet_small_matches_pytorch() {
            $setup();
            check_model(
                "googlenet_small",
                "tests/nets/googlenet_small.net",
                Mode::Train,
            );
        }

        #[test]
        fn grouped_convs_match_pytorch() {
            $setup();
            check_model("grouped", "tests/nets/grouped.net", Mode::Train);
        }

        #[test]
        fn activations_match_pytorch() {
            $setup();
            check_model("activations", "tests/nets/activations.net", Mode::Eval);
        }

        #[test]
        fn sgd_with_momentum_and_weight_decay_matches_pytorch() {
            $setup();
            check_optimizer("sgd", settings(OptimizerKind::Sgd, 0.9, false, 5e-4), 0.1);
        }

        #[test]
        fn nesterov_matches_pytorch() {
            $setup();
            check_optimizer(
                "sgd_nesterov",
                settings(OptimizerKind::Sgd, 0.9, true, 5e-4),
                0.1,
            );
        }

        #[test]
        fn adamw_matches_pytorch() {
            $setup();
            check_optimizer(
                "adamw",
                settings(OptimizerKind::Adamw, 0.0, false, 0.01),
                1e-3,
            );
        }
    };
}
