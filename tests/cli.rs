//! The command line end to end: formats, options, exit statuses.

use std::process::{Command, Output};

fn cnncost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp_net(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cnncost-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_fails_with_status_1_on_a_wrong_expectation() {
    let p = temp_net(
        "wrong.net",
        "network t\ninput 3x8x8\nconv 4 k=3\nexpect params = 112\nexpect params = 999\n",
    );
    let o = cnncost(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    // 4*3*3*3 + 4 = 112 parameters: the first line passes, the second fails.
    assert!(out.contains("ok   ") && out.contains("FAIL "), "{out}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
}

#[test]
fn check_passes_for_the_zoo() {
    let o = cnncost(&[
        "check",
        "zoo/alexnet.net",
        "zoo/vgg16.net",
        "zoo/resnet50.net",
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn a_compile_error_exits_1_and_names_the_place() {
    let p = temp_net("bad.net", "network t\ninput 3x8x8\nconv 4 k=9\n");
    let o = cnncost(&[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.net:3:1"), "{err}");
}

#[test]
fn csv_has_exact_integers_and_depth_expands_rows() {
    let o = cnncost(&["zoo/resnet50.net", "--format", "csv", "--columns", "all"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let total = out
        .lines()
        .find(|l| l.starts_with("total,"))
        .expect("total line");
    let cells: Vec<&str> = total.split(',').collect();
    // torchvision's num_params and _ops for resnet50 (published.md).
    assert_eq!(cells[4], "25557032");
    assert_eq!(cells[5], "4089184256");
    let rows = |depth: &str| {
        stdout(&cnncost(&[
            "zoo/resnet50.net",
            "--format",
            "csv",
            "--depth",
            depth,
        ]))
        .lines()
        .filter(|l| l.starts_with("layer1"))
        .count()
    };
    // Depth 1: one `layer1` row; depth 2: its three bottlenecks.
    assert_eq!(rows("1"), 1);
    assert_eq!(rows("2"), 3);
}

#[test]
fn explain_fills_in_the_lecture_numbers() {
    let o = cnncost(&["zoo/alexnet.net", "--explain", "conv1"]);
    assert!(o.status.success());
    let out = stdout(&o);
    // costs.md: conv1 params 23,296 = 64*3*11*11 + 64; MACs 72,855,552.
    assert!(out.contains("64*3*11*11 + 64 = 23,296"), "{out}");
    assert!(out.contains("64*56*56*3*11*11 = 72,855,552"), "{out}");
    let o = cnncost(&["zoo/alexnet.net", "--explain", "conv9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `conv1`"));
}

#[test]
fn graph_writes_one_dot_node_per_op() {
    let o = cnncost(&["graph", "zoo/resnet50.net"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("digraph \"resnet50\" {"));
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/zoo/resnet50.net")).unwrap();
    let net = dsl::compile("r", &text, &dsl::Overrides::default()).unwrap();
    let nodes = out
        .lines()
        .filter(|l| l.contains("[label=\"") && !l.contains("->"))
        .count();
    let edges = out.lines().filter(|l| l.contains(" -> n")).count();
    assert_eq!(nodes, net.graph.node_count());
    assert_eq!(edges, net.graph.edge_count());
}

#[test]
fn set_and_input_override_the_network() {
    let o = cnncost(&["zoo/alexnet.net", "--set", "classes=10", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fc8 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "fc8")
        .unwrap()
        .clone();
    assert_eq!(fc8["params"], 4096 * 10 + 10);
    let o = cnncost(&["zoo/resnet50.net", "--input", "3x32x32", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["input"], serde_json::json!([3, 32, 32]));
    let o = cnncost(&["zoo/alexnet.net", "--set", "clases=10"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `classes`"));
}

#[test]
fn zoo_names_work_as_paths_and_weights_lists_the_state_dict() {
    let o = cnncost(&["weights", "resnet18"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.starts_with("conv1.weight\t[64, 3, 7, 7]\tparam\n"),
        "{out}"
    );
    // torchvision's resnet18 num_params.
    assert!(out.contains("# 11,689,512 params"), "{out}");
    let o = cnncost(&["zoo"]);
    assert!(stdout(&o)
        .lines()
        .any(|l| l.starts_with("resnet50 ") && l.contains("25,557,032")));
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["zoo/resnet152.net", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let o = cnncost(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

#[test]
fn train_counts_resnet50_with_adam() {
    let v = json_of(&[
        "resnet50",
        "--train",
        "--batch",
        "32",
        "--optimizer",
        "adam",
        "--format",
        "json",
    ]);
    let t = &v["training"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("training.{k}"));
    assert_eq!(v["format_version"], 2);
    assert_eq!(t["optimizer"], "adam");
    // torchvision's num_params for resnet50, 4 bytes each; Adam keeps two moments.
    assert_eq!(n("gradients_bytes"), 25_557_032 * 4);
    assert_eq!(n("optimizer_state_bytes"), 2 * n("gradients_bytes"));
    // Every weight gets a gradient: as many MACs as the forward (torchvision's
    // 4,089,184,256 per image); every input but the network's: less conv1's
    // 64*112*112 * 3*7*7 = 118,013,952.
    assert_eq!(n("backward_weight_macs"), 4_089_184_256 * 32);
    assert_eq!(n("backward_input_macs"), (4_089_184_256 - 118_013_952) * 32);
    assert_eq!(
        n("backward_macs"),
        n("backward_input_macs") + n("backward_weight_macs")
    );
    let parts = n("weights_bytes") + n("gradients_bytes") + n("optimizer_state_bytes");
    assert!(n("peak_bytes") > parts + n("workspace_bytes"));
    let layer_sum: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["backward_macs"].as_u64().unwrap())
        .sum();
    assert_eq!(layer_sum, n("backward_macs"));
    // The table: the training summary under it.
    let table = stdout(&cnncost(&[
        "resnet50",
        "--train",
        "--batch",
        "32",
        "--optimizer",
        "adam",
    ]));
    assert!(
        table.contains("bwd MACs (M)") && table.contains("optimizer adam"),
        "{table}"
    );
}

#[test]
fn fit_finds_the_largest_batch_under_the_budget() {
    let o = cnncost(&["vgg16", "--train", "--fit", "16GiB"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let batch: u64 = out
        .strip_prefix("fits: batch ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let peak = |b: u64| {
        json_of(&[
            "vgg16",
            "--train",
            "--batch",
            &b.to_string(),
            "--format",
            "json",
        ])["training"]["peak_bytes"]
            .as_u64()
            .unwrap()
    };
    assert!(peak(batch) <= 16 << 30);
    assert!(peak(batch + 1) > 16 << 30);
    let o = cnncost(&["vgg16", "--train", "--fit", "1MiB"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not even a batch of 1 fits"));
}

#[test]
fn train_options_need_train_and_explain_shows_the_backward() {
    let o = cnncost(&["resnet18", "--optimizer", "adam"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--optimizer without --train is refused"
    );
    let text = stdout(&cnncost(&[
        "resnet18",
        "--train",
        "--explain",
        "layer1.0.conv1",
        "--saved",
        "pytorch",
    ]));
    // 64*56*56 * 64*3*3 = 115,605,504 MACs each way.
    assert!(
        text.contains("dX = dY * W^T (the transposed product): 115,605,504 MACs"),
        "{text}"
    );
    assert!(
        text.contains("dW = X^T * dY summed over the batch: 115,605,504 MACs"),
        "{text}"
    );
    assert!(text.contains("keeps input"), "{text}");
}

/// Issue 16: `calibrate --quick` writes a profile that `profile` predicts
/// with; a short profile of LeNet-5 gives a measured and a predicted time
/// for every row (no timing is asserted: machines differ).
#[test]
fn calibrate_then_profile_a_tiny_network() {
    let dir = std::env::temp_dir().join(format!("cnncost-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = dir.join("device.yaml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .args(["calibrate", "--quick", "--out"])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let profile = analyzer::device::DeviceProfile::parse(
        &std::fs::read_to_string(&yaml).unwrap(),
        "device.yaml",
    )
    .unwrap();
    assert_eq!(profile.source, "measured");
    assert!(profile.efficiency.contains_key("conv"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "profile",
            "lenet5",
            "--iters",
            "2",
            "--format",
            "json",
            "--device-profile",
        ])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "one per row of `cnncost lenet5`");
    for r in rows {
        assert!(r["measured_seconds"].as_f64().unwrap() >= 0.0, "{r}");
        assert!(r["predicted_seconds"].as_f64().is_some(), "{r}");
    }
    assert!(v["totals"]["measured_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["totals"]["predicted_seconds"].as_f64().unwrap() > 0.0);

    // A training step: every row's parts, the loss and the update add up
    // to the step (the backward is split between the ops, none of it lost),
    // and the convs' and linear layers' weight gradients are timed.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "profile",
            "lenet5",
            "--train",
            "--batch",
            "8",
            "--iters",
            "2",
            "--format",
            "json",
            "--device-profile",
        ])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k}: {r}"));
    let mut sum = 0.0;
    for r in rows {
        let parts =
            f(r, "forward_seconds") + f(r, "input_grad_seconds") + f(r, "weight_grad_seconds");
        assert!((parts - f(r, "measured_seconds")).abs() < 1e-12, "{r}");
        sum += parts;
    }
    for name in ["conv1", "conv2", "fc1"] {
        let r = rows.iter().find(|r| r["name"] == name).unwrap();
        assert!(f(r, "weight_grad_seconds") > 0.0, "{r}");
        assert!(f(r, "predicted_weight_grad_seconds") > 0.0, "{r}");
    }
    sum += f(&v["loss"], "measured_seconds") + f(&v["update"], "measured_seconds");
    let total = f(&v["totals"], "measured_seconds");
    assert!(
        (sum - total).abs() < 1e-9 * total.max(1.0),
        "{sum} against {total}"
    );
    assert!(f(&v["totals"], "predicted_seconds") > 0.0);
    std::fs::remove_dir_all(&dir).ok();
}
