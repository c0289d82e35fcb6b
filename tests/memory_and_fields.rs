//! Activation memory, peak live memory and receptive fields against
//! published figures and hand counts.

use analyzer::{analyze, Options};

fn compile(text: &str) -> dsl::Network {
    dsl::compile("test.net", text, &dsl::Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// CS231n's VGG-16 walkthrough (no adaptive pool): its rows add up to
/// 15,237,608 activations (input, 13 conv, 5 pool and 3 fc outputs;
/// ../shared/reference/published.md), which is what `activations` counts:
/// stored tensors, input included, in-place ReLU and views left out.
#[test]
fn cs231n_vgg16_activation_count() {
    let net = compile(
        "network vgg16_cs231n
input 3x224x224
repeat 2 { conv 64 k=3 p=1 | relu }
maxpool k=2
repeat 2 { conv 128 k=3 p=1 | relu }
maxpool k=2
repeat 3 { conv 256 k=3 p=1 | relu }
maxpool k=2
repeat 3 { conv 512 k=3 p=1 | relu }
maxpool k=2
repeat 3 { conv 512 k=3 p=1 | relu }
maxpool k=2
flatten
linear 4096 | relu | dropout 0.5
linear 4096 | relu | dropout 0.5
linear 1000
expect activations = 15_237_608
",
    );
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.activation_bytes, 15_237_608 * 4);
    let outcomes = analyzer::expect::evaluate(&a);
    assert!(outcomes.iter().all(|o| o.pass));
}

/// A chain by hand, in elements: input 16; conv 32 (input still alive: 48);
/// relu in place (32); conv 64 (96, the peak); flatten is a view; linear 10
/// (74). Stored: 16 + 32 + 64 + 10 = 122.
#[test]
fn peak_of_a_chain() {
    let net = compile(
        "network t
input 1x4x4
conv 2 k=1 | relu
conv 4 k=1
flatten
linear 10
",
    );
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.peak_activation_bytes, 96 * 4);
    assert_eq!(a.totals.activation_bytes, 122 * 4);
}

/// A residual keeps its input alive until the add: input 16; conv a (32);
/// relu in place; conv b: x, a and b alive (48); add: x, b and the sum (48).
#[test]
fn residual_input_lives_until_the_add() {
    let net = compile(
        "network t
input 1x4x4
residual {
  a: conv 1 k=1 | relu
  b: conv 1 k=1
}
",
    );
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.peak_activation_bytes, 48 * 4);
    // The relu's input feeds only the relu, so it runs in place; the
    // network input feeds the conv and the add, so a relu on it could not.
    let relu = net.node_by_name("a.relu").unwrap();
    assert!(!a.layer(relu).stores_output);
}

/// Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
/// Neural Networks", Distill 2019, Table 1: VGG-16's pool5 has a receptive
/// field of 212 pixels, effective stride 32 and effective padding 90, so the
/// first window is centred at -90 + (212 - 1)/2 = 15.5.
#[test]
fn vgg16_pool5_receptive_field() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/zoo/vgg16.net")).unwrap();
    let net = compile(&text);
    let a = analyze(&net, Options::default()).unwrap();
    let rf = a
        .layer(net.node_by_name("features.30").unwrap())
        .receptive_field;
    assert_eq!((rf.h.size, rf.h.stride, rf.h.start), (212.0, 32.0, 15.5));
    assert_eq!(rf.h, rf.w);
}

/// `depth` counts conv and linear layers on the longest path, leaving out
/// projection shortcuts and heads (costs.md).
#[test]
fn depth_leaves_out_shortcuts_and_heads() {
    let net = compile(
        "network t
input 3x8x8
conv 8 k=3 p=1
residual { conv 16 k=3 p=1; conv 16 k=3 p=1 } project { conv 16 k=1; conv 16 k=1; conv 16 k=1 }
head train { gap; flatten; linear 4; linear 4; linear 4; linear 4 }
gap
flatten
linear 10
",
    );
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.depth, 4);
    // The training head adds its parameters to the training totals only.
    assert_eq!(
        a.train_totals.params - a.totals.params,
        3 * (4 * 4 + 4) + 16 * 4 + 4
    );
}
