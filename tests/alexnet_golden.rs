//! The first golden test: the lecture's AlexNet table (EECS 498-007 / 598-005
//! lecture 8, "CNN architectures"), recomputed with the lecture's own
//! conventions in ../shared/design/costs.md. The lecture's printed fc6
//! (37,725,832 params) is a known typo: 9216 x 4096 + 4096 = 37,752,832
//! (../shared/reference/published.md).

use analyzer::{analyze, rows::rows, Options};
use std::process::Command;

fn alexnet() -> dsl::Network {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/zoo/alexnet.net");
    let text = std::fs::read_to_string(path).expect("zoo/alexnet.net");
    dsl::compile("zoo/alexnet.net", &text, &dsl::Overrides::default()).expect("compiles")
}

/// (layer, output, memory in KB, params, MACs), from costs.md.
const LECTURE: [(&str, &str, f64, u64, u64); 12] = [
    ("conv1", "64x56x56", 784.0, 23_296, 72_855_552),
    ("pool1", "64x27x27", 182.25, 0, 0),
    ("conv2", "192x27x27", 546.75, 307_392, 223_948_800),
    ("pool2", "192x13x13", 126.75, 0, 0),
    ("conv3", "384x13x13", 253.5, 663_936, 112_140_288),
    ("conv4", "256x13x13", 169.0, 884_992, 149_520_384),
    ("conv5", "256x13x13", 169.0, 590_080, 99_680_256),
    ("pool5", "256x6x6", 36.0, 0, 0),
    ("flatten", "9216", 36.0, 0, 0),
    ("fc6", "4096", 16.0, 37_752_832, 37_748_736),
    ("fc7", "4096", 16.0, 16_781_312, 16_777_216),
    ("fc8", "1000", 3.90625, 4_097_000, 4_096_000),
];

#[test]
fn every_row_and_total_of_the_lecture_table() {
    let net = alexnet();
    let a = analyze(&net, Options::default()).expect("analyzes");
    let table = rows(&a, 1);
    assert_eq!(table.len(), LECTURE.len(), "one row per statement");
    for (row, &(name, output, kb, params, macs)) in table.iter().zip(&LECTURE) {
        // The flatten statement is unlabelled: its row is named by position
        // and shows the op.
        if name == "flatten" {
            assert_eq!(&*row.ops, "flatten");
        } else {
            assert_eq!(&*row.name, name);
        }
        assert_eq!(row.output.to_string(), output, "{name} output");
        assert_eq!(row.output_bytes as f64, kb * 1024.0, "{name} memory");
        assert_eq!(row.cost.params, params, "{name} params");
        assert_eq!(row.cost.macs, macs, "{name} MACs");
    }
    assert_eq!(a.totals.params, 61_100_840);
    assert_eq!(a.totals.macs, 716_767_232);
    assert_eq!(
        a.totals.depth, 8,
        "eight learned layers (Krizhevsky et al. 2012)"
    );
    assert_eq!(a.totals.buffers, 0);
}

#[test]
fn pool_flops_count_window_elements() {
    // costs.md: pool1's flops count 419,904 window elements (64*27*27*9).
    let net = alexnet();
    let a = analyze(&net, Options::default()).unwrap();
    let pool1 = net.node_by_name("pool1").unwrap();
    assert_eq!(a.layer(pool1).cost.flops, 419_904);
    // conv1: 2 per MAC plus one bias add per output element.
    let conv1 = net.node_by_name("conv1").unwrap();
    assert_eq!(a.layer(conv1).cost.flops, 2 * 72_855_552 + 64 * 56 * 56);
}

#[test]
fn json_of_the_binary_matches_the_issue() {
    let out = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["zoo/alexnet.net", "--format", "json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["network"], "alexnet");
    assert_eq!(v["input"], serde_json::json!([3, 227, 227]));
    assert_eq!(v["batch"], 1);
    assert_eq!(v["dtype"], "f32");
    let layers = v["layers"].as_array().unwrap();
    let conv1 = layers.iter().find(|l| l["name"] == "conv1").expect("conv1");
    assert_eq!(conv1["op"], "conv");
    assert_eq!(conv1["output"], serde_json::json!([64, 56, 56]));
    assert_eq!(conv1["params"], 23_296);
    assert_eq!(conv1["macs"], 72_855_552u64);
    assert_eq!(conv1["activation_bytes"], 802_816);
    assert_eq!(conv1["source"]["line"], 10);
    assert_eq!(conv1["source"]["col"], 8);
    for name in [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8",
    ] {
        assert!(layers.iter().any(|l| l["name"] == name), "{name} is listed");
    }
    assert_eq!(v["totals"]["params"], 61_100_840);
    assert_eq!(v["totals"]["macs"], 716_767_232u64);
    assert_eq!(v["totals"]["depth"], 8);
}

#[test]
fn batch_and_dtype_scale_macs_and_memory_not_params() {
    let net = alexnet();
    let one = analyze(&net, Options::default()).unwrap();
    let big = analyze(
        &net,
        Options {
            batch: 32,
            dtype: analyzer::Dtype::F16,
        },
    )
    .unwrap();
    assert_eq!(big.totals.params, one.totals.params);
    assert_eq!(big.totals.macs, 32 * one.totals.macs);
    assert_eq!(
        big.totals.activation_bytes,
        16 * one.totals.activation_bytes
    );
    assert_eq!(
        big.totals.peak_activation_bytes,
        16 * one.totals.peak_activation_bytes
    );
}
