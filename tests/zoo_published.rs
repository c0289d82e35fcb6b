//! Published figures of the zoo that `expect` lines cannot express, and the
//! zoo-wide run of `cnncost check zoo/` (every expect line of every file).
//! Sources: ../shared/reference/published.md.

use analyzer::{analyze, Options};
use dsl::ir::{Shape, TensorKind};
use std::path::Path;
use std::process::Command;

fn zoo_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/zoo"))
}

fn compile_zoo(file: &str) -> dsl::Network {
    let path = zoo_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    dsl::compile(&format!("zoo/{file}"), &text, &dsl::Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn zoo_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(zoo_dir())
        .expect("zoo/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".net"))
        .collect();
    files.sort();
    files
}

fn shape_of(net: &dsl::Network, name: &str) -> Shape {
    let n = net
        .node_by_name(name)
        .unwrap_or_else(|| panic!("{}: no op named {name}", net.name));
    net.graph[n].shape
}

fn image(c: u64, h: u64, w: u64) -> Shape {
    Shape::Image { c, h, w }
}

/// ZFNet (Zeiler and Fergus 2014, Figure 3; published.md): 224 -> 110 -> 55
/// -> 26 -> 13 -> 13 -> 13 -> 6, with Caffe-style (ceil) pooling. Floor
/// pooling would give 54 after pool1 and break the chain.
#[test]
fn zfnet_spatial_sizes_of_figure_3() {
    let net = compile_zoo("zfnet.net");
    assert_eq!(net.input, image(3, 224, 224));
    let sizes = [
        ("conv1", image(96, 110, 110)),
        ("pool1", image(96, 55, 55)),
        ("conv2", image(256, 26, 26)),
        ("pool2", image(256, 13, 13)),
        ("conv3", image(384, 13, 13)),
        ("conv4", image(384, 13, 13)),
        ("conv5", image(256, 13, 13)),
        ("pool5", image(256, 6, 6)),
        ("fc6", Shape::Flat(4096)),
        ("fc7", Shape::Flat(4096)),
        ("fc8", Shape::Flat(1000)),
    ];
    for (name, shape) in sizes {
        assert_eq!(shape_of(&net, name), shape, "zfnet {name}");
    }
    let a = analyze(&net, Options::default()).expect("analyzes");
    assert_eq!(a.totals.depth, 8);
}

/// GoogLeNet's spatial sizes (Szegedy et al. 2015, Table 1): 112, 56, 28,
/// 14, 7, 1, in both zoo versions (ceil pooling), and the auxiliary heads
/// see 4x4 maps ("4x4x512 output for the (4a), and 4x4x528 for the (4d)").
#[test]
fn googlenet_table_1_sizes() {
    for (file, conv1, aux_pool) in [
        ("googlenet.net", "conv1.conv", "aux1.0"),
        ("googlenet_paper.net", "conv1", "aux1.0"),
    ] {
        let net = compile_zoo(file);
        assert_eq!(shape_of(&net, conv1), image(64, 112, 112), "{file}");
        assert_eq!(shape_of(&net, "maxpool1"), image(64, 56, 56), "{file}");
        assert_eq!(shape_of(&net, "maxpool2"), image(192, 28, 28), "{file}");
        assert_eq!(shape_of(&net, "maxpool3"), image(480, 14, 14), "{file}");
        assert_eq!(shape_of(&net, "maxpool4"), image(832, 7, 7), "{file}");
        assert_eq!(shape_of(&net, aux_pool), image(512, 4, 4), "{file}");
        assert_eq!(shape_of(&net, "aux2.0"), image(528, 4, 4), "{file}");
        assert_eq!(shape_of(&net, "avgpool"), image(1024, 1, 1), "{file}");
    }
}

/// Parameters of the conv and linear layers only (BN's gamma and beta left
/// out), from the IR's tensors.
fn weight_layer_params(net: &dsl::Network) -> u64 {
    net.graph
        .node_indices()
        .filter(|&n| net.graph[n].op.is_weight_layer())
        .map(|n| {
            let input = net.graph[net.inputs(n)[0]].shape;
            net.graph[n]
                .op
                .tensors(input)
                .iter()
                .filter(|t| t.kind == TensorKind::Param)
                .map(|t| t.shape.iter().product::<u64>())
                .sum::<u64>()
        })
        .sum()
}

/// Pre-activation ResNets (He et al. 2016b): 1.7M and 10.2M parameters.
/// ResNet-1001 with BN's gamma and beta counted has 10,327,706 (10.3M), so
/// zoo/preact_resnet1001.net cannot say `expect params ~ 10.2M`; the
/// published figure is the conv and linear weights alone. ResNet-164 rounds
/// to 1.7M either way (its file checks the full count).
#[test]
fn preact_resnet_published_params() {
    let millions_1dp = |n: u64| (n as f64 / 1e5).round() / 10.0;

    let net = compile_zoo("preact_resnet164.net");
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.depth, 164);
    assert_eq!(millions_1dp(a.totals.params), 1.7);
    assert_eq!(millions_1dp(weight_layer_params(&net)), 1.7);

    let net = compile_zoo("preact_resnet1001.net");
    let a = analyze(&net, Options::default()).unwrap();
    assert_eq!(a.totals.depth, 1001);
    assert_eq!(weight_layer_params(&net), 10_178_490);
    assert_eq!(millions_1dp(weight_layer_params(&net)), 10.2);
    // With BN's trainable parameters, as every other zoo file counts.
    assert_eq!(a.totals.params, 10_327_706);
}

/// The CIFAR ResNets are 6n+2 deep with 32x32, 16x16 and 8x8 stages, and
/// the option A shortcuts add no parameters: every parameter is in a conv,
/// a BN or the linear layer of the main path.
#[test]
fn cifar_resnet_stages_and_option_a() {
    for (depth, n) in [
        (20u64, 3u64),
        (32, 5),
        (44, 7),
        (56, 9),
        (110, 18),
        (1202, 200),
    ] {
        let net = compile_zoo(&format!("resnet{depth}.net"));
        assert_eq!(6 * n + 2, depth);
        let last = n - 1;
        assert_eq!(
            shape_of(&net, &format!("layer1.{last}.conv2")),
            image(16, 32, 32)
        );
        assert_eq!(shape_of(&net, "layer2.0.conv1"), image(32, 16, 16));
        assert_eq!(
            shape_of(&net, &format!("layer3.{last}.conv2")),
            image(64, 8, 8)
        );
        // Two shape changes (stages 2 and 3), each shortcut a parameter-free
        // zero-pad of the block's input.
        let shortcuts: Vec<_> = net
            .graph
            .node_indices()
            .filter(|&i| net.graph[i].role == dsl::ir::Role::Shortcut)
            .collect();
        assert_eq!(shortcuts.len(), 2, "resnet{depth}");
        for i in shortcuts {
            let input = net.graph[net.inputs(i)[0]].shape;
            assert!(
                matches!(net.graph[i].op, dsl::ir::Op::ZeroPad { .. }),
                "resnet{depth}"
            );
            assert!(net.graph[i].op.tensors(input).is_empty(), "resnet{depth}");
        }
    }
}

/// Every zoo file has a header comment naming its source, checks its depth,
/// and passes `cnncost check` (all its expect lines).
#[test]
fn every_zoo_file_has_a_header_and_a_depth_check() {
    let files = zoo_files();
    assert!(files.len() >= 30, "zoo files: {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(zoo_dir().join(file)).unwrap();
        let stem = file.trim_end_matches(".net");
        assert!(
            text.starts_with(&format!("# {file}: ")),
            "{file}: the first line is `# {file}: <source>`"
        );
        assert!(
            text.contains(&format!("\nnetwork {stem}("))
                || text.contains(&format!("\nnetwork {stem}\n")),
            "{file}: the network is named {stem}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("expect depth = ")),
            "{file}: checks its depth"
        );
        let net = compile_zoo(file);
        assert!(!net.expectations.is_empty(), "{file}");
    }
}

#[test]
fn cnncost_check_passes_for_the_whole_zoo() {
    let out = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .arg("check")
        .arg(zoo_dir())
        .output()
        .expect("runs cnncost");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cnncost check zoo/ failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(!stdout.contains("no expect lines"), "{stdout}");
    // Every file was checked.
    for file in zoo_files() {
        assert!(
            stdout.contains(&format!("{file}:")),
            "{file} not in the output of cnncost check:\n{stdout}"
        );
    }
    let summary = stdout.lines().last().unwrap_or("");
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
}
