//! `cnncost diff` (issue 17): the alignment of ops (renamed, inserted,
//! removed, reordered, a changed argument), the totals' changes, the
//! `--fail-if` conditions (every message for a bad one in full) and the
//! exit status.

use analyzer::diff::{diff, parse_conditions, Field, Status};
use analyzer::{analyze, Options};
use std::io::Write;
use std::process::{Command, Stdio};

/// (status, name in A, name in B, fields) for every op that differs.
type Changes = Vec<(Status, String, String, Vec<Field>)>;

fn changes(a: &str, b: &str) -> Changes {
    let na = dsl::compile("a.net", a, &Default::default()).unwrap();
    let nb = dsl::compile("b.net", b, &Default::default()).unwrap();
    let (aa, ab) = (
        analyze(&na, Options::default()).unwrap(),
        analyze(&nb, Options::default()).unwrap(),
    );
    let d = diff(&aa, &ab);
    let name = |net: &dsl::Network, n: Option<dsl::ir::NodeIndex>| {
        n.map_or(String::new(), |n| net.graph[n].name.to_string())
    };
    d.layers
        .iter()
        .filter(|l| l.status != Status::Same)
        .map(|l| (l.status, name(&na, l.a), name(&nb, l.b), l.fields.clone()))
        .collect()
}

const BASE: &str = "network n\ninput 3x32x32\nconv1: conv 16 k=3 p=1 | relu\nconv2: conv 32 k=3 s=2 p=1 | relu\ngap\nflatten\nfc: linear 10\n";

fn change(
    status: Status,
    a: &str,
    b: &str,
    fields: &[Field],
) -> (Status, String, String, Vec<Field>) {
    (status, a.to_string(), b.to_string(), fields.to_vec())
}

#[test]
fn the_same_network_has_no_changes() {
    assert_eq!(changes(BASE, BASE), Changes::new());
}

#[test]
fn a_changed_argument_changes_the_op_and_what_follows_from_it() {
    let b = BASE.replace("conv2: conv 32 k=3 s=2", "conv2: conv 64 k=3 s=2");
    assert_eq!(
        changes(BASE, &b),
        vec![
            change(
                Status::Changed,
                "conv2",
                "conv2",
                &[
                    Field::Args,
                    Field::Output,
                    Field::Params,
                    Field::Macs,
                    Field::Memory
                ]
            ),
            change(
                Status::Changed,
                "conv2.relu",
                "conv2.relu",
                &[Field::Output, Field::Memory]
            ),
            change(Status::Changed, "4", "4", &[Field::Output, Field::Memory]),
            change(Status::Changed, "5", "5", &[Field::Output, Field::Memory]),
            change(Status::Changed, "fc", "fc", &[Field::Params, Field::Macs]),
        ]
    );
}

#[test]
fn a_renamed_layer_is_matched_by_structure() {
    let b = BASE.replace("conv1:", "stem:");
    assert_eq!(
        changes(BASE, &b),
        vec![
            change(Status::Renamed, "conv1", "stem", &[]),
            change(Status::Renamed, "conv1.relu", "stem.relu", &[]),
        ]
    );
}

#[test]
fn an_inserted_and_a_removed_layer() {
    // A labelled op takes its place in the numbering of what follows:
    // `gap` (4) and `flatten` (5) become 6 and 7.
    let inserted = BASE.replace("gap\n", "extra: conv 32 k=3 p=1 | relu\ngap\n");
    assert_eq!(
        changes(BASE, &inserted),
        vec![
            change(Status::Added, "", "extra", &[]),
            change(Status::Added, "", "extra.relu", &[]),
            change(Status::Renamed, "4", "6", &[]),
            change(Status::Renamed, "5", "7", &[]),
        ]
    );
    assert_eq!(
        changes(&inserted, BASE),
        vec![
            change(Status::Removed, "extra", "", &[]),
            change(Status::Removed, "extra.relu", "", &[]),
            change(Status::Renamed, "6", "4", &[]),
            change(Status::Renamed, "7", "5", &[]),
        ]
    );
}

/// Unlabelled ops are numbered in order: an insertion before them renames
/// them, and they are matched by structure, not by their old numbers.
#[test]
fn an_insertion_before_unlabelled_ops_renames_them() {
    let b = BASE.replace("gap\n", "maxpool k=2\ngap\n");
    assert_eq!(
        changes(BASE, &b),
        vec![
            change(Status::Added, "", "4", &[]),
            change(Status::Renamed, "4", "5", &[]),
            change(Status::Renamed, "5", "6", &[]),
        ]
    );
}

/// Found in review: in a chain of unlabelled convs and ReLUs, an inserted
/// conv and ReLU renumber everything after them, and the old numbers land
/// on ops of the same kinds; matched by name, the rest of the network would
/// show as changed. Positions are matched by structure.
#[test]
fn an_insertion_among_unlabelled_ops_of_alternating_kinds() {
    let a = "network s\ninput 3x8x8\nconv 16 k=3 p=1\nrelu\nconv 32 k=3 p=1\nrelu\nconv 64 k=3 p=1\nrelu\n";
    let b = a.replace("relu\nconv 32", "relu\nconv 24 k=3 p=1\nrelu\nconv 32");
    let c = changes(a, &b);
    let added: Vec<&str> = c
        .iter()
        .filter(|x| x.0 == Status::Added)
        .map(|x| x.2.as_str())
        .collect();
    assert_eq!(added, vec!["2", "3"], "{c:?}");
    assert!(
        c.iter()
            .all(|x| matches!(x.0, Status::Added | Status::Renamed)),
        "{c:?}"
    );
}

#[test]
fn reordered_layers_are_moved() {
    let a = "network n\ninput 3x8x8\na: relu\nb: sigmoid\nc: tanh\n";
    let b = "network n\ninput 3x8x8\nb: sigmoid\na: relu\nc: tanh\n";
    assert_eq!(
        changes(a, b),
        vec![change(Status::Moved, "a", "a", &[Field::Position])]
    );
}

#[test]
fn an_op_of_another_kind_under_the_same_name_is_changed() {
    let b = BASE.replace(
        "conv2: conv 32 k=3 s=2 p=1 | relu",
        "conv2: maxpool k=2 | relu",
    );
    let c = changes(BASE, &b);
    assert_eq!(c[0].0, Status::Changed);
    assert_eq!((c[0].1.as_str(), c[0].2.as_str()), ("conv2", "conv2"));
    assert_eq!(c[0].3[0], Field::Op);
}

/// The stride of ResNet-50's downsampling blocks moved from the 1x1 conv
/// (the paper's v1) to the 3x3 (torchvision's v1.5): in the first block of
/// stages 2 to 4, conv1 and conv2 change their arguments, and conv1's BN
/// and ReLU their output; nothing is added, removed or renamed.
#[test]
fn resnet50_against_v1_is_the_moved_stride() {
    let load = |n: &str| {
        let path = format!("{}/zoo/{n}.net", env!("CARGO_MANIFEST_DIR"));
        dsl::compile(
            &path,
            &std::fs::read_to_string(&path).unwrap(),
            &Default::default(),
        )
        .unwrap()
    };
    let (a, b) = (load("resnet50_v1"), load("resnet50"));
    let (aa, ab) = (
        analyze(&a, Options::default()).unwrap(),
        analyze(&b, Options::default()).unwrap(),
    );
    let d = diff(&aa, &ab);
    let mut changed: Vec<String> = d
        .layers
        .iter()
        .filter(|l| l.status != Status::Same)
        .map(|l| {
            assert_eq!(l.status, Status::Changed);
            b.graph[l.b.unwrap()].name.to_string()
        })
        .collect();
    changed.sort();
    let mut expected = Vec::new();
    for stage in 2..=4 {
        for op in ["conv1", "bn1", "bn1.relu", "conv2"] {
            expected.push(format!("layer{stage}.0.{op}"));
        }
    }
    expected.sort();
    assert_eq!(changed, expected);
    let params = d.total(analyzer::diff::Quantity::Params).unwrap();
    assert_eq!(params.delta(), 0, "moving a stride adds no weight");
}

#[test]
fn fail_if_conditions_parse() {
    let c = parse_conditions("macs>+5% params>+0, peak>=+10% depth<-1 flops<=-2M").unwrap();
    let got: Vec<(&str, f64, bool)> =
        c.0.iter()
            .map(|c| (c.quantity.name(), c.value, c.percent))
            .collect();
    assert_eq!(
        got,
        vec![
            ("macs", 5.0, true),
            ("params", 0.0, false),
            ("peak", 10.0, true),
            ("depth", -1.0, false),
            ("flops", -2e6, false),
        ]
    );
}

#[test]
fn every_bad_fail_if_condition_has_its_message() {
    let q = "params, buffers, macs, flops, activations, memory, depth, backward_macs, saved, peak";
    for (text, message) in [
        ("", "--fail-if is empty: give conditions such as 'macs>+5% params>+0'".to_string()),
        (
            "macs+5%",
            "`macs+5%` has no comparison: write QUANTITY, then >, >=, < or <=, then a change, such as macs>+5%".to_string(),
        ),
        (
            "mac>+5%",
            format!("unknown quantity `mac` in `mac>+5%` (did you mean `macs`?): one of {q}"),
        ),
        ("bogus>1", format!("unknown quantity `bogus` in `bogus>1`: one of {q}")),
        (">+5%", format!("`>+5%` names no quantity: one of {q}")),
        (
            "macs=+5%",
            "`macs=+5%`: the comparison must be >, >=, < or <= (a change is bounded, not matched)".to_string(),
        ),
        (
            "macs>five",
            "`five` in `macs>five` is not a change: write a signed number with an optional K, M or G, or a percentage, such as +5%, -10% or +1M".to_string(),
        ),
        (
            "macs>+",
            "`+` in `macs>+` is not a change: write a signed number with an optional K, M or G, or a percentage, such as +5%, -10% or +1M".to_string(),
        ),
        (
            "macs>5M%",
            "`5M%` in `macs>5M%` is not a change: write a signed number with an optional K, M or G, or a percentage, such as +5%, -10% or +1M".to_string(),
        ),
    ] {
        assert_eq!(parse_conditions(text).unwrap_err(), message, "{text:?}");
    }
}

fn cnncost(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command refused before it reads its input (`diff - -`) may have exited and
    // closed the pipe already.
    if let Err(e) = input.write_all(stdin.unwrap_or("").as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// resnet20 to resnet56 (n = 3 to 9 blocks per stage, He et al. 2016,
/// CIFAR): 0.27M to 0.85M parameters (Table 6), so `params>+0` and
/// `macs>+5%` hold and `depth<0` does not.
#[test]
fn fail_if_sets_the_exit_status() {
    let (code, out, err) = cnncost(
        &["diff", "resnet20", "resnet56", "--fail-if", "params>+0"],
        None,
    );
    assert_eq!(code, Some(3), "a condition that holds is status 3: {err}");
    assert!(out.contains("params"), "{out}");
    assert!(err.contains("fail-if: `params>+0` holds"), "{err}");
    let (code, _, err) = cnncost(
        &[
            "diff",
            "resnet20",
            "resnet56",
            "--fail-if",
            "depth<0 params<-1%",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = cnncost(
        &["diff", "resnet20", "resnet56", "--fail-if", "peak>+10%"],
        None,
    );
    assert_eq!(code, Some(3), "a training quantity implies --train: {err}");
    assert!(
        err.contains("peak 6.1 MiB -> 15.8 MiB"),
        "bytes as the table prints them: {err}"
    );
    let (code, _, err) = cnncost(
        &["diff", "resnet20", "resnet56", "--fail-if", "mac>1"],
        None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown quantity `mac`"), "{err}");
}

#[test]
fn standard_input_markdown_and_json() {
    let text = std::fs::read_to_string(format!("{}/zoo/resnet20.net", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let (code, out, err) = cnncost(
        &["diff", "-", "resnet20", "--format", "markdown"],
        Some(&text),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("No op differs."), "{out}");
    assert!(out.contains("| params |"), "{out}");
    let (code, out, err) = cnncost(
        &[
            "diff", "resnet20", "resnet32", "--format", "json", "--train",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let added = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["change"] == "added")
        .count();
    // Two more blocks per stage, each conv, bn, relu, conv, bn, add+relu.
    assert!(added > 0, "{out}");
    assert!(v["totals"]["peak"]["b"].as_u64() > v["totals"]["peak"]["a"].as_u64());
    let (code, _, err) = cnncost(&["diff", "-", "-"], Some(&text));
    assert_eq!(code, Some(1));
    assert!(err.contains("only one of A and B can be `-`"), "{err}");
}
