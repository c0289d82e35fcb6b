//! `cnncost sweep` (issue 17): its `--set` lists, their combinations, the
//! budgets (every message for a bad one in full), EfficientNet's compound
//! rule on hand-computed cases, and the CIFAR ResNet family against the
//! paper's parameter counts.

use analyzer::sweep::{combinations, compound, parse_axis, parse_budget, ALPHA, BETA, GAMMA};
use dsl::value::Value;
use std::process::Command;

#[test]
fn set_lists_parse_and_combine_first_axis_slowest() {
    let depth = parse_axis("depth=[3, 5,7]").unwrap();
    assert_eq!(
        depth.values,
        vec![Value::Int(3), Value::Int(5), Value::Int(7)]
    );
    let width = parse_axis("width=[0.5,1]").unwrap();
    assert_eq!(width.values, vec![Value::Float(0.5), Value::Int(1)]);
    let fixed = parse_axis("classes=100").unwrap();
    let all = combinations(&[depth, width, fixed]).unwrap();
    assert_eq!(all.len(), 6);
    let first: Vec<String> = all
        .iter()
        .map(|c| {
            c.iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(first[0], "depth=3 width=0.5 classes=100");
    assert_eq!(first[1], "depth=3 width=1 classes=100");
    assert_eq!(first[5], "depth=7 width=1 classes=100");
    let many = parse_axis(&format!("n=[{}]", vec!["1"; 101].join(","))).unwrap();
    assert_eq!(
        combinations(&[many.clone(), many]).unwrap_err(),
        "the sweep has more than 10000 configurations: give fewer values"
    );
}

#[test]
fn every_bad_set_has_its_message() {
    for (text, message) in [
        ("depth", "`depth`: expected NAME=VALUE or NAME=[V1,V2,...]"),
        ("=3", "`=3`: `` is not a parameter name"),
        ("de pth=3", "`de pth=3`: `de pth` is not a parameter name"),
        ("depth=[3,5", "`depth=[3,5`: the list has no closing `]`"),
        ("depth=[]", "`depth=[]`: give at least one value"),
        (
            "depth=[3,x]",
            "`depth=[3,x]`: `x` is not an integer, a number, true or false",
        ),
    ] {
        assert_eq!(parse_axis(text).unwrap_err(), message, "{text}");
    }
}

/// Tan and Le 2019, section 4: alpha = 1.2, beta = 1.1, gamma = 1.15, chosen
/// so that alpha * beta^2 * gamma^2 is about 2.
#[test]
fn compound_scaling_by_hand() {
    let flops_factor = ALPHA * BETA * BETA * GAMMA * GAMMA;
    assert!((flops_factor - 1.92).abs() < 0.01, "{flops_factor}");
    assert_eq!(compound(0.0, 3, 16, 32), (3, 16, 32));
    // depth 3 * 1.2 = 3.6 -> 4; width 16 * 1.1 = 17.6 -> 16 (the nearest
    // multiple of 8, within 10%); resolution 32 * 1.15 = 36.8 -> 37.
    assert_eq!(compound(1.0, 3, 16, 32), (4, 16, 37));
    // 3 * 1.44 = 4.32 -> 5; 16 * 1.21 = 19.36: 16 is more than 10% under,
    // so 24; 32 * 1.3225 = 42.32 -> 42.
    assert_eq!(compound(2.0, 3, 16, 32), (5, 24, 42));
    // EfficientNet-B0's stem (32 channels) at B1's width (1.0) and B4's
    // (1.4): round_filters gives 32 and 48 (its code, and the B4 stem).
    assert_eq!(compound(BETA.powf(0.0).ln(), 1, 32, 224).1, 32);
    assert_eq!(compound(1.4f64.ln() / BETA.ln(), 1, 32, 224).1, 48);
}

#[test]
fn budgets_parse_with_counts_and_sizes() {
    let b = parse_budget("macs<=600M params<5.5M, peak<=16GiB depth>=10").unwrap();
    let got: Vec<(&str, u64)> = b.0.iter().map(|b| (b.quantity.name(), b.value)).collect();
    assert_eq!(
        got,
        vec![
            ("macs", 600_000_000),
            ("params", 5_500_000),
            ("peak", 16 << 30),
            ("depth", 10)
        ]
    );
}

#[test]
fn every_bad_budget_has_its_message() {
    let q = "params, buffers, macs, flops, activations, memory, depth, backward_macs, saved, peak";
    for (text, message) in [
        ("", "--budget is empty: give bounds such as 'macs<=600M params<=5M'".to_string()),
        (
            "macs600M",
            "`macs600M` has no comparison: write QUANTITY, then <=, <, >= or >, then a value, such as macs<=600M".to_string(),
        ),
        ("mac<=1M", format!("unknown quantity `mac` in `mac<=1M` (did you mean `macs`?): one of {q}")),
        ("macs=1M", "`macs=1M`: the comparison must be <=, <, >= or >".to_string()),
        (
            "macs<=lots",
            "`lots` in `macs<=lots` is not a count: write a number with an optional K, M or G, such as 600M".to_string(),
        ),
        (
            "macs<=-5",
            "`-5` in `macs<=-5` is not a count: write a number with an optional K, M or G, such as 600M".to_string(),
        ),
        (
            "peak<=16 parsecs",
            "`parsecs` has no comparison: write QUANTITY, then <=, <, >= or >, then a value, such as macs<=600M".to_string(),
        ),
        (
            "peak<=16XB",
            "`peak<=16XB`: unknown unit `xb` in `16XB` (B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)".to_string(),
        ),
    ] {
        assert_eq!(parse_budget(text).unwrap_err(), message, "{text:?}");
    }
}

fn cnncost(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// He et al. 2016, Table 6: ResNet-20, 32, 44, 56 and 110 have 0.27M,
/// 0.46M, 0.66M, 0.85M and 1.7M parameters; resnet_cifar with depth n =
/// 3, 5, 7, 9, 18 is each of them. With a budget of 0.7M, ResNet-44 is the
/// largest that fits.
#[test]
fn the_cifar_resnet_family_and_its_budget() {
    let (code, out, err) = cnncost(&[
        "sweep",
        "resnet_cifar",
        "--set",
        "depth=[3,5,7,9,18]",
        "--budget",
        "params<=0.7M",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["configurations"].as_array().unwrap();
    let published = [0.27, 0.46, 0.66, 0.85, 1.7];
    for (row, paper) in rows.iter().zip(published) {
        let m = row["params"].as_u64().unwrap() as f64 / 1e6;
        let digits = if paper >= 1.0 { 10.0 } else { 100.0 };
        assert_eq!((m * digits).round() / digits, paper, "{row}");
    }
    let largest: Vec<&str> = rows
        .iter()
        .filter(|r| r["largest"] == true)
        .map(|r| r["settings"]["depth"].as_str().unwrap())
        .collect();
    assert_eq!(largest, vec!["7"]);
    let within = rows.iter().filter(|r| r["within_budget"] == true).count();
    assert_eq!(within, 3);
}

#[test]
fn sweep_errors_and_exit_status() {
    let (code, _, err) = cnncost(&["sweep", "resnet_cifar", "--set", "blocks=[1,2]"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(
            "`blocks` is not a parameter of `resnet_cifar`: it declares classes, width, depth"
        ),
        "{err}"
    );
    let (code, _, err) = cnncost(&["sweep", "resnet_cifar", "--budget", "params<=1K"]);
    assert_eq!(code, Some(3), "nothing within the budget is status 3");
    assert!(
        err.contains("no configuration is within the budget"),
        "{err}"
    );
    let (code, _, err) = cnncost(&[
        "sweep",
        "resnet_cifar",
        "--compound",
        "1",
        "--set",
        "depth=[3,5]",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--compound chooses depth, width and resolution itself"),
        "{err}"
    );
    let (code, _, err) = cnncost(&["sweep", "lenet5", "--compound", "1"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--compound needs whole-number `width` and `depth` parameters"),
        "{err}"
    );
    // Found in review: a coefficient out of range, a name given twice, a
    // fixed resolution under --compound.
    let (code, _, err) = cnncost(&["sweep", "resnet_cifar", "--compound=inf"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--compound inf: give coefficients between -20 and 20"),
        "{err}"
    );
    let (code, _, err) = cnncost(&[
        "sweep",
        "resnet_cifar",
        "--set",
        "depth=3",
        "--set",
        "depth=[5,7]",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("`--set depth` is given twice"), "{err}");
    let (code, out, err) = cnncost(&[
        "sweep",
        "resnet_cifar",
        "--compound",
        "1",
        "--set",
        "resolution=64",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines().nth(1).unwrap().contains(" 74 "),
        "64 x 1.15 = 73.6: {out}"
    );
    let (code, _, err) = cnncost(&["sweep", "resnet_cifar", "--set", "depth=[0,-1]"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no configuration compiles"), "{err}");
    // A configuration that does not compile is a row, not the end.
    let (code, out, err) = cnncost(&["sweep", "resnet_cifar", "--set", "resolution=[32,0]"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().nth(2).unwrap().contains("error:"), "{out}");
}

/// `resolution` sets the input: MACs grow with its square.
#[test]
fn resolution_scales_the_input() {
    let (code, out, err) = cnncost(&[
        "sweep",
        "resnet_cifar",
        "--set",
        "resolution=[32,64]",
        "--format",
        "csv",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let macs: Vec<u64> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        macs[1],
        4 * macs[0] - 3 * 640,
        "the linear layer's MACs do not grow"
    );
}
