//! Gradient checks for every op of the language, through the lowering:
//! a tiny network per op, in f64, its training loss (cross-entropy with
//! label smoothing, plus an auxiliary head where one is written) and
//! candle's gradients with respect to the input and every parameter,
//! against central finite differences. The kernels' own checks
//! (runtime/tests/kernels_*.rs) cover conv and pooling geometry in depth;
//! these cover the lowering of each op and the ops composed from candle's.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use runtime::loss::training_loss;
use runtime::model::{Mode, Model};

/// |analytic - numeric| <= TOL * max(1, |analytic|, |numeric|).
const TOL: f64 = 1e-6;
const EPS: f64 = 1e-6;

fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// Builds the network `body` on a 3x6x6 input (batch 2), checks every
/// gradient; `mode` picks BN's statistics and dropout.
fn check(body: &str, mode: Mode) {
    let text = format!("network t(classes = 3)\ninput 3x6x6\n{body}\n");
    let net = dsl::compile("t.net", &text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = Model::new(&net, &Device::Cpu, DType::F64, &mut rng).unwrap();
    // Non-trivial BN running statistics, so evaluation mode is tested too.
    for t in &model.tensors {
        let n = t.var.elem_count();
        let v = if t.name.ends_with("running_var") {
            random(n, &mut rng).iter().map(|v| 1.0 + 0.5 * v).collect()
        } else if t.name.ends_with("running_mean") {
            random(n, &mut rng)
        } else {
            continue;
        };
        t.var
            .set(&Tensor::from_vec(v, t.var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let x = Var::from_tensor(
        &Tensor::from_vec(random(2 * 3 * 36, &mut rng), (2, 3, 6, 6), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    let loss = |x: &Tensor| -> f64 {
        // The same dropout masks for every evaluation.
        let mut r = ChaCha8Rng::seed_from_u64(7);
        let out = model.forward(x, mode, &mut r).unwrap();
        training_loss(&out, &labels, 0.3, 0.1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let mut r = ChaCha8Rng::seed_from_u64(7);
    let out = model.forward(x.as_tensor(), mode, &mut r).unwrap();
    let grads = training_loss(&out, &labels, 0.3, 0.1)
        .unwrap()
        .backward()
        .unwrap();

    let mut targets: Vec<(String, &Var)> = vec![("input".to_string(), &x)];
    targets.extend(model.params().map(|p| (p.name.clone(), &p.var)));
    for (name, var) in targets {
        let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
            None => vec![0.0; var.elem_count()],
        };
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..base.len() {
            let mut v = base.clone();
            v[i] = base[i] + EPS;
            var.set(&Tensor::from_vec(v.clone(), var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let plus = loss(x.as_tensor());
            v[i] = base[i] - EPS;
            var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let minus = loss(x.as_tensor());
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let numeric = (plus - minus) / (2.0 * EPS);
            let a = analytic[i];
            let scale = 1f64.max(a.abs()).max(numeric.abs());
            assert!(
                (a - numeric).abs() <= TOL * scale,
                "`{body}` ({mode:?}): d loss / d {name}[{i}]: candle {a:.9e}, finite differences {numeric:.9e}"
            );
        }
    }
}

const HEAD: &str = "flatten | linear classes";

#[test]
fn conv_with_bias_same_padding_groups_dilation() {
    check(
        &format!(
            "conv 4 k=3 p=same\nconv 6 k=1x3 s=2 p=0x1 g=2\nconv 6 k=2 d=2 p=1 bias=false\n{HEAD}"
        ),
        Mode::Train,
    );
}

#[test]
fn linear() {
    check(
        "flatten | linear 5 | linear classes bias=false",
        Mode::Train,
    );
}

#[test]
fn pooling() {
    check(&format!("maxpool k=3 s=2 p=1 ceil\n{HEAD}"), Mode::Train);
    check(
        &format!("avgpool k=3 s=2 p=1 exclude_pad\n{HEAD}"),
        Mode::Train,
    );
    check(&format!("avgpool k=2 s=1 p=1\n{HEAD}"), Mode::Train);
    check(&format!("adaptive_avgpool 4x4\n{HEAD}"), Mode::Train);
    check(&format!("gap\n{HEAD}"), Mode::Train);
}

#[test]
fn batch_norm_in_both_modes() {
    let body = format!("conv 4 k=3 p=1 | bn | relu\n{HEAD}");
    check(&body, Mode::Train);
    check(&body, Mode::Eval);
    // BN on flat features (BatchNorm1d).
    check(
        "flatten | linear 6 | bn eps=1e-3 | linear classes",
        Mode::Train,
    );
}

#[test]
fn local_response_norm() {
    check(
        &format!("conv 5 k=1 | lrn size=3 alpha=0.5 beta=0.75 k=2\n{HEAD}"),
        Mode::Train,
    );
}

#[test]
fn dropout_in_training() {
    check(&format!("conv 4 k=1 | dropout 0.3\n{HEAD}"), Mode::Train);
}

#[test]
fn activations() {
    for act in [
        "relu",
        "leaky_relu a=0.1",
        "elu a=0.7",
        "selu",
        "gelu",
        "sigmoid",
        "tanh",
        "prelu",
    ] {
        check(&format!("conv 4 k=1 | {act}\n{HEAD}"), Mode::Train);
    }
    check("flatten | linear 5 | softmax | linear classes", Mode::Train);
}

#[test]
fn concat_add_and_shortcuts() {
    check(
        &format!(
            "concat {{ conv 2 k=1; {{ conv 3 k=3 p=1 | relu }}; maxpool k=3 s=1 p=1 }}\n{HEAD}"
        ),
        Mode::Train,
    );
    check(
        &format!("residual {{ conv 3 k=3 p=1 | tanh }}\n{HEAD}"),
        Mode::Train,
    );
    check(
        &format!("residual {{ conv 8 k=3 s=2 p=1 }} project zeropad\n{HEAD}"),
        Mode::Train,
    );
    check(
        &format!("residual {{ conv 8 k=3 s=2 p=1 }} project {{ conv 8 k=1 s=2 }}\n{HEAD}"),
        Mode::Train,
    );
}

#[test]
fn auxiliary_heads_add_their_weighted_loss() {
    check(
        &format!(
            "conv 4 k=3 p=1 | relu\naux: head train {{ gap | flatten | linear classes }}\n{HEAD}"
        ),
        Mode::Train,
    );
}
