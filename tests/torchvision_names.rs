//! The zoo's names are torchvision's `state_dict` keys: for every model of
//! ../shared/fixtures/torchvision_keys.json (made from torchvision 0.29, see
//! ../shared/fixtures/README.md), the matching zoo file's tensors, built from
//! the IR as `{node name}.{suffix}` with `Op::tensors`, must equal the JSON's
//! list exactly (names, shapes, parameter or buffer, order), and its
//! trainable parameter count must equal torchvision's `num_params`.
//!
//! torchvision's `num_batches_tracked` is a buffer of shape []; our
//! `TensorKind::Counter` is that tensor, so it is listed as "buffer".
//!
//! One ordering difference is allowed, for GoogLeNet with its auxiliary
//! heads: torchvision registers `aux1` and `aux2` after `inception5b`, while
//! a `.net` head is written where it branches off (after inception4a and
//! inception4d), so its tensors come earlier in graph order. For that model
//! the main-flow tensors and the head tensors are each compared in order.

use dsl::ir::{Role, TensorKind};
use serde_json::Value;

/// (key, shape, "param" | "buffer")
type Entry = (String, Vec<u64>, String);

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/torchvision_keys.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("torchvision_keys.json parses")
}

fn compile_zoo(file: &str) -> dsl::Network {
    let path = format!("{}/zoo/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    dsl::compile(&format!("zoo/{file}"), &text, &dsl::Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The state dict of `net` in graph order, with or without the nodes of
/// `head train` branches; each entry tagged with whether it is in a head.
fn ir_state_dict(net: &dsl::Network, train_heads: bool) -> Vec<(Entry, bool)> {
    let mut out = Vec::new();
    for n in net.graph.node_indices() {
        let node = &net.graph[n];
        let in_head = matches!(node.role, Role::Head { .. });
        if node.role == (Role::Head { train: true }) && !train_heads {
            continue;
        }
        let Some(&first) = net.inputs(n).first() else {
            continue; // the input node
        };
        for t in node.op.tensors(net.graph[first].shape) {
            let kind = match t.kind {
                TensorKind::Param => "param",
                TensorKind::Buffer | TensorKind::Counter => "buffer",
            };
            out.push((
                (
                    format!("{}.{}", node.name, t.suffix),
                    t.shape.clone(),
                    kind.to_string(),
                ),
                in_head,
            ));
        }
    }
    out
}

fn json_state_dict(model: &Value) -> Vec<Entry> {
    model["state_dict"]
        .as_array()
        .expect("state_dict list")
        .iter()
        .map(|e| {
            let shape = e[1]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dimension"))
                .collect();
            (
                e[0].as_str().expect("key").to_string(),
                shape,
                e[2].as_str().expect("kind").to_string(),
            )
        })
        .collect()
}

/// The first difference between two lists, for a readable failure.
fn assert_same(model: &str, what: &str, ours: &[Entry], theirs: &[Entry]) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(
            a, b,
            "{model}: {what} entry {i} differs (ours, torchvision)"
        );
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{model}: {what}: {} tensors in the zoo file, {} in torchvision; first extra: {:?}",
        ours.len(),
        theirs.len(),
        ours.get(theirs.len()).or(theirs.get(ours.len()))
    );
}

fn check(model: &str, file: &str, train_heads: bool) {
    let fixtures = fixtures();
    let expected = &fixtures[model];
    assert!(expected.is_object(), "{model} missing from the fixture");
    let theirs = json_state_dict(expected);
    let net = compile_zoo(file);
    let ours = ir_state_dict(&net, train_heads);

    if ours.iter().any(|(_, in_head)| *in_head) {
        // Heads: compare the main flow and the heads separately, each in order.
        let head_keys: std::collections::HashSet<&str> = ours
            .iter()
            .filter(|(_, h)| *h)
            .map(|((k, _, _), _)| k.as_str())
            .collect();
        let (our_heads, our_main): (Vec<_>, Vec<_>) = ours.iter().cloned().partition(|(_, h)| *h);
        let (their_heads, their_main): (Vec<Entry>, Vec<Entry>) = theirs
            .iter()
            .cloned()
            .partition(|(k, _, _)| head_keys.contains(k.as_str()));
        let strip = |v: Vec<(Entry, bool)>| v.into_iter().map(|(e, _)| e).collect::<Vec<_>>();
        assert_same(model, "main flow", &strip(our_main), &their_main);
        assert_same(model, "heads", &strip(our_heads), &their_heads);
    } else {
        let ours: Vec<Entry> = ours.into_iter().map(|(e, _)| e).collect();
        assert_same(model, "state_dict", &ours, &theirs);
    }

    // Parameter count: from the listed tensors and from the analyzer.
    let num_params = expected["num_params"].as_u64().expect("num_params");
    let listed: u64 = theirs
        .iter()
        .filter(|(_, _, kind)| kind == "param")
        .map(|(_, shape, _)| shape.iter().product::<u64>())
        .sum();
    assert_eq!(listed, num_params, "{model}: fixture self-consistency");
    let a = analyzer::analyze(&net, analyzer::Options::default()).expect("analyzes");
    let totals = if train_heads {
        &a.train_totals
    } else {
        &a.totals
    };
    assert_eq!(totals.params, num_params, "{model}: num_params");
}

#[test]
fn alexnet() {
    check("alexnet", "alexnet_torchvision.net", false);
}

#[test]
fn vgg11() {
    check("vgg11", "vgg11.net", false);
}

#[test]
fn vgg11_bn() {
    check("vgg11_bn", "vgg11_bn.net", false);
}

#[test]
fn vgg13() {
    check("vgg13", "vgg13.net", false);
}

#[test]
fn vgg13_bn() {
    check("vgg13_bn", "vgg13_bn.net", false);
}

#[test]
fn vgg16() {
    check("vgg16", "vgg16.net", false);
}

#[test]
fn vgg16_bn() {
    check("vgg16_bn", "vgg16_bn.net", false);
}

#[test]
fn vgg19() {
    check("vgg19", "vgg19.net", false);
}

#[test]
fn vgg19_bn() {
    check("vgg19_bn", "vgg19_bn.net", false);
}

#[test]
fn googlenet() {
    check("googlenet", "googlenet.net", false);
}

#[test]
fn googlenet_aux() {
    check("googlenet_aux", "googlenet.net", true);
}

#[test]
fn resnet18() {
    check("resnet18", "resnet18.net", false);
}

#[test]
fn resnet34() {
    check("resnet34", "resnet34.net", false);
}

#[test]
fn resnet50() {
    check("resnet50", "resnet50.net", false);
}

#[test]
fn resnet101() {
    check("resnet101", "resnet101.net", false);
}

#[test]
fn resnet152() {
    check("resnet152", "resnet152.net", false);
}

/// The v1 ResNets move a stride, nothing else: same tensors as torchvision's.
#[test]
fn resnet_v1_names_equal_torchvision() {
    check("resnet50", "resnet50_v1.net", false);
    check("resnet101", "resnet101_v1.net", false);
    check("resnet152", "resnet152_v1.net", false);
}

/// Every model of the fixture is covered by a test above.
#[test]
fn every_fixture_model_is_checked() {
    let covered = [
        "alexnet",
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
        "googlenet",
        "googlenet_aux",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
    ];
    let fixtures = fixtures();
    let mut models: Vec<&str> = fixtures
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    models.sort_unstable();
    let mut covered = covered.to_vec();
    covered.sort_unstable();
    assert_eq!(models, covered);
}

/// The CIFAR ResNet-20 fixture (../shared/fixtures/resnet20_cifar.safetensors)
/// holds its weights under PyTorch's names (BN's num_batches_tracked
/// omitted, per resnet20_cifar.txt): zoo/resnet20.net must name and shape
/// them the same, so the fixture loads with no mapping.
#[test]
fn resnet20_cifar_fixture_names() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/resnet20_cifar.safetensors"
    );
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + len]).expect("safetensors header");
    let mut theirs: Vec<(String, Vec<u64>)> = header
        .as_object()
        .expect("object")
        .iter()
        .filter(|(k, _)| *k != "__metadata__" && !k.starts_with("ref."))
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dimension"))
                .collect();
            (k.clone(), shape)
        })
        .collect();
    theirs.sort();
    let net = compile_zoo("resnet20.net");
    let mut ours: Vec<(String, Vec<u64>)> = ir_state_dict(&net, false)
        .into_iter()
        .filter(|((k, _, _), _)| !k.ends_with(".num_batches_tracked"))
        .map(|((k, shape, _), _)| (k, shape))
        .collect();
    ours.sort();
    assert_eq!(ours, theirs);
}
