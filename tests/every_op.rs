//! One op of each kind through every concern: its tensors, shape, cost and
//! FLOPs, receptive field, `--explain`, initial values and lowering (a
//! forward pass on a tiny input). The expected numbers are worked out here
//! from PyTorch's formulas (and docs/costs.md's counting rules), not read
//! from our own output. `expected` matches on `Op` with every variant named,
//! so a new op does not compile until it has a case here.

use candle_core::{DType, Device, Tensor};
use dsl::ir::{Op, Shape, TensorKind};
use dsl::ops::{OpKind, OPS};
use rand::SeedableRng;
use runtime::model::{Mode, Model};

/// The input of every case: 2 channels of 6x6.
const INPUT: &str = "input 2x6x6";
const IN_C: u64 = 2;
const IN_HW: u64 = 6;
const IN_ELEMS: u64 = IN_C * IN_HW * IN_HW;

/// What one op must give.
struct Expected {
    shape: Shape,
    /// `(suffix, shape, kind)` in state-dict order.
    tensors: Vec<(&'static str, Vec<u64>, TensorKind)>,
    params: u64,
    buffers: u64,
    macs: u64,
    flops: u64,
    /// Receptive field size and jump along the height, in input pixels.
    rf: (f64, f64),
}

fn image(c: u64, h: u64, w: u64) -> Shape {
    Shape::Image { c, h, w }
}

/// The networks, each with the op under test last of its kind.
const CASES: &[&str] = &[
    "conv 4 k=3 s=2 p=1",
    "conv 4 k=4 p=same",
    "flatten | linear 5",
    "maxpool k=2",
    "avgpool k=3 s=1 p=1",
    "gap",
    "adaptive_avgpool 3x3",
    "bn",
    "lrn",
    "dropout",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "flatten",
    "identity",
    "concat { conv 3 k=1; identity }",
    "add { relu; identity }",
    "residual { conv 4 k=3 s=2 p=1 } project zeropad",
    // The input node: the first of this network.
    "input",
];

/// The expected results for `op`, the last op of its kind in its case.
fn expected(op: &Op) -> Expected {
    let same_shape = |flops_per_element: u64| Expected {
        shape: image(IN_C, IN_HW, IN_HW),
        tensors: vec![],
        params: 0,
        buffers: 0,
        macs: 0,
        flops: IN_ELEMS * flops_per_element,
        rf: (1.0, 1.0),
    };
    match op {
        Op::Input => same_shape(0),
        Op::Conv { padding, .. } if padding.same => {
            // k=4, stride 1, 'same': total padding 3, 1 before and 2 after
            // (PyTorch), output 6x6; weight 4x2x4x4 and a bias of 4.
            assert_eq!((padding.begin.h, padding.end.h), (1, 2));
            let out = 4 * 6 * 6;
            let macs = out * 2 * 4 * 4;
            Expected {
                shape: image(4, 6, 6),
                tensors: vec![
                    ("weight", vec![4, 2, 4, 4], TensorKind::Param),
                    ("bias", vec![4], TensorKind::Param),
                ],
                params: 4 * 2 * 4 * 4 + 4,
                buffers: 0,
                macs,
                flops: 2 * macs + out,
                rf: (4.0, 1.0),
            }
        }
        Op::Conv { .. } => {
            // H' = floor((6 + 2*1 - 3)/2) + 1 = 3.
            let out = 4 * 3 * 3;
            let macs = out * 2 * 3 * 3;
            Expected {
                shape: image(4, 3, 3),
                tensors: vec![
                    ("weight", vec![4, 2, 3, 3], TensorKind::Param),
                    ("bias", vec![4], TensorKind::Param),
                ],
                params: 4 * 2 * 3 * 3 + 4,
                buffers: 0,
                macs,
                flops: 2 * macs + out,
                rf: (3.0, 2.0),
            }
        }
        Op::Linear { .. } => Expected {
            shape: Shape::Flat(5),
            tensors: vec![
                ("weight", vec![5, IN_ELEMS], TensorKind::Param),
                ("bias", vec![5], TensorKind::Param),
            ],
            params: 5 * IN_ELEMS + 5,
            buffers: 0,
            macs: 5 * IN_ELEMS,
            flops: 2 * 5 * IN_ELEMS + 5,
            // After flatten, whose window is the whole image.
            rf: (6.0, 6.0),
        },
        Op::Pool {
            kind: dsl::ir::PoolKind::Max,
            ..
        } => Expected {
            // 2x2/2: 3x3, one FLOP per window element.
            shape: image(2, 3, 3),
            tensors: vec![],
            params: 0,
            buffers: 0,
            macs: 0,
            flops: 2 * 3 * 3 * 4,
            rf: (2.0, 2.0),
        },
        Op::Pool {
            kind: dsl::ir::PoolKind::Avg,
            ..
        } => Expected {
            // 3x3/1 pad 1 keeps 6x6.
            shape: image(2, 6, 6),
            tensors: vec![],
            params: 0,
            buffers: 0,
            macs: 0,
            flops: IN_ELEMS * 9,
            rf: (3.0, 1.0),
        },
        Op::GlobalAvgPool => Expected {
            shape: image(2, 1, 1),
            tensors: vec![],
            params: 0,
            buffers: 0,
            macs: 0,
            flops: IN_ELEMS,
            rf: (6.0, 6.0),
        },
        Op::AdaptiveAvgPool { .. } => Expected {
            // 6 -> 3: windows [0,2) [2,4) [4,6), 2 wide each.
            shape: image(2, 3, 3),
            tensors: vec![],
            params: 0,
            buffers: 0,
            macs: 0,
            flops: 2 * (3 * 2) * (3 * 2),
            rf: (2.0, 2.0),
        },
        Op::BatchNorm { .. } => Expected {
            tensors: vec![
                ("weight", vec![2], TensorKind::Param),
                ("bias", vec![2], TensorKind::Param),
                ("running_mean", vec![2], TensorKind::Buffer),
                ("running_var", vec![2], TensorKind::Buffer),
                ("num_batches_tracked", vec![], TensorKind::Counter),
            ],
            params: 4,
            buffers: 4,
            ..same_shape(2)
        },
        // size 5: 2*5 for the sum of squares, then scale, add k, power, divide.
        Op::Lrn { .. } => same_shape(2 * 5 + 4),
        Op::Dropout { .. } => same_shape(0),
        Op::Act(a) => match a {
            dsl::ir::Activation::Softmax => same_shape(3),
            dsl::ir::Activation::Relu
            | dsl::ir::Activation::LeakyRelu { .. }
            | dsl::ir::Activation::Elu { .. }
            | dsl::ir::Activation::Selu
            | dsl::ir::Activation::Gelu
            | dsl::ir::Activation::Sigmoid
            | dsl::ir::Activation::Tanh => same_shape(1),
        },
        Op::Prelu => Expected {
            tensors: vec![("weight", vec![2], TensorKind::Param)],
            params: 2,
            ..same_shape(1)
        },
        Op::Flatten => Expected {
            shape: Shape::Flat(IN_ELEMS),
            rf: (6.0, 6.0),
            ..same_shape(0)
        },
        Op::Identity => same_shape(0),
        Op::Concat => Expected {
            shape: image(3 + 2, 6, 6),
            ..same_shape(0)
        },
        // Two inputs: one add per element.
        Op::Add => same_shape(1),
        Op::ZeroPad { .. } => Expected {
            // Subsample by 2 and pad 2 channels to 4: a 1x1 window, jump 2.
            shape: image(4, 3, 3),
            rf: (1.0, 2.0),
            ..same_shape(0)
        },
    }
}

fn check(case: &str, seen: &mut Vec<OpKind>) {
    let body = if case == "input" { "identity" } else { case };
    let text = format!("network t\n{INPUT}\n{body}\n");
    let net = dsl::compile("t.net", &text, &dsl::Overrides::default())
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let analysis = analyzer::analyze(&net, analyzer::Options::default()).unwrap();
    // The op under test: the last node whose kind the case names.
    let (n, kind) = if case == "input" {
        (net.graph.node_indices().next().unwrap(), OpKind::Input)
    } else {
        let word = case
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap();
        let word = if case.starts_with("flatten |") {
            "linear"
        } else if case.starts_with("residual") {
            "zeropad"
        } else {
            word
        };
        let kind = OPS.iter().find(|(w, _, _)| *w == word).unwrap().1;
        let n = net
            .graph
            .node_indices()
            .rev()
            .find(|&n| net.graph[n].op.op_kind() == kind)
            .unwrap_or_else(|| panic!("{case}: no {word}"));
        (n, kind)
    };
    seen.push(kind);
    let node = &net.graph[n];
    let want = expected(&node.op);
    let input = net.input_shapes(n).first().copied().unwrap_or(node.shape);

    // Tensors.
    let tensors: Vec<(&str, Vec<u64>, TensorKind)> = node
        .op
        .tensors(input)
        .into_iter()
        .map(|t| (t.suffix, t.shape, t.kind))
        .collect();
    assert_eq!(tensors, want.tensors, "{case}: tensors");
    // Shape.
    assert_eq!(node.shape, want.shape, "{case}: shape");
    // Cost and FLOPs.
    let layer = analysis.layer(n);
    assert_eq!(
        (
            layer.cost.params,
            layer.cost.buffers,
            layer.cost.macs,
            layer.cost.flops
        ),
        (want.params, want.buffers, want.macs, want.flops),
        "{case}: params, buffers, MACs, FLOPs"
    );
    // Receptive field.
    let rf = layer.receptive_field;
    assert_eq!((rf.h.size, rf.h.stride), want.rf, "{case}: receptive field");
    // Explain: names the op and shows its FLOPs.
    let explained = analyzer::explain::explain(&analysis, &node.name).unwrap();
    assert!(
        explained.contains(&analyzer::render::thousands(want.flops)),
        "{case}: explain shows the FLOPs {}:\n{explained}",
        want.flops
    );
    assert!(explained.contains(&format!("output {}", want.shape)));

    // Init and lowering.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    for (suffix, dims, kind) in &want.tensors {
        let name = format!("{}.{suffix}", node.name);
        let t = model
            .tensor(&name)
            .unwrap_or_else(|| panic!("{case}: no tensor {name}"))
            .var
            .as_tensor()
            .clone();
        let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        assert_eq!(t.dims(), dims.as_slice(), "{case}: {name}");
        if *kind == TensorKind::Counter {
            continue;
        }
        let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        // PyTorch's defaults: BN weight 1, bias and mean 0, variance 1;
        // PReLU 0.25; conv and linear uniform in 1/sqrt(fan_in).
        let in_range = |lo: f32, hi: f32| values.iter().all(|&v| (lo..=hi).contains(&v));
        let ok = match (node.op.kind(), *suffix) {
            ("bn", "weight" | "running_var") => in_range(1.0, 1.0),
            ("bn", _) => in_range(0.0, 0.0),
            ("prelu", _) => in_range(0.25, 0.25),
            (_, _) => {
                let fan_in: usize = match dims.len() {
                    4 => dims[1] * dims[2] * dims[3],
                    _ => dims.get(1).copied().unwrap_or(input.channels() as usize),
                };
                let fan_in = if *suffix == "bias" {
                    let w = model
                        .tensor(&format!("{}.weight", node.name))
                        .unwrap()
                        .var
                        .as_tensor()
                        .dims()
                        .to_vec();
                    w[1..].iter().product()
                } else {
                    fan_in
                };
                let bound = 1.0 / (fan_in as f32).sqrt();
                in_range(-bound, bound) && values.iter().any(|&v| v != 0.0)
            }
        };
        assert!(ok, "{case}: initial values of {name}: {values:?}");
    }
    let x = Tensor::ones((1, 2, 6, 6), DType::F32, &Device::Cpu).unwrap();
    for mode in [Mode::Train, Mode::Infer] {
        let out = model
            .forward(&x, mode, &mut rng)
            .unwrap_or_else(|e| panic!("{case}: {e}"))
            .main;
        let mut dims = vec![1usize];
        dims.extend(
            net.graph[net.output]
                .shape
                .dims()
                .iter()
                .map(|&d| d as usize),
        );
        assert_eq!(out.dims(), dims.as_slice(), "{case}: forward ({mode:?})");
        let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{case}: {values:?}");
    }
}

#[test]
fn every_op_in_every_concern() {
    let mut seen = Vec::new();
    for case in CASES {
        check(case, &mut seen);
    }
    for (word, kind, _) in OPS {
        assert!(seen.contains(&kind), "no case for `{word}`");
    }
}

/// A forward pass checked by hand for the ops whose numbers need no weights.
#[test]
fn weightless_ops_compute_pytorchs_values() {
    let net = |body: &str| {
        dsl::compile(
            "t.net",
            &format!("network t\ninput 1x2x2\n{body}\n"),
            &dsl::Overrides::default(),
        )
        .unwrap()
    };
    let x = Tensor::new(&[[[[-1.0f32, 2.0], [3.0, -4.0]]]], &Device::Cpu).unwrap();
    let run = |body: &str| -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let m = Model::new(&net(body), &Device::Cpu, DType::F32, &mut rng).unwrap();
        m.forward(&x, Mode::Infer, &mut rng)
            .unwrap()
            .main
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(run("relu"), [0.0, 2.0, 3.0, 0.0]);
    assert_eq!(run("maxpool k=2"), [3.0]);
    assert_eq!(run("avgpool k=2"), [0.0]);
    assert_eq!(run("gap"), [0.0]);
    assert_eq!(run("flatten"), [-1.0, 2.0, 3.0, -4.0]);
    // PReLU at its initial 0.25.
    assert_eq!(run("prelu"), [-0.25, 2.0, 3.0, -1.0]);
    assert_eq!(run("add { relu; identity }"), [-1.0, 4.0, 6.0, -4.0]);
    // 'same' with k=2: the extra row and column go after (PyTorch), so with
    // a weight of ones each output sums the window from its own pixel
    // down and right.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let m = Model::new(
        &net("c: conv 1 k=2 p=same bias=false"),
        &Device::Cpu,
        DType::F32,
        &mut rng,
    )
    .unwrap();
    let ones = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
    let weights = std::collections::HashMap::from([("c.weight".to_string(), ones)]);
    assert!(m.load_weights(&weights).unwrap().is_empty());
    let same: Vec<f32> = m
        .forward(&x, Mode::Infer, &mut rng)
        .unwrap()
        .main
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(same, [-1.0 + 2.0 + 3.0 - 4.0, 2.0 - 4.0, 3.0 - 4.0, -4.0]);
}
