//! `cnncost compare` and the generated zoo table.

use std::process::Command;

fn cnncost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn docs_zoo_md_is_up_to_date() {
    let o = cnncost(&["zoo", "--markdown"]);
    assert!(o.status.success());
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/zoo.md")).unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout) == doc,
        "docs/zoo.md is out of date: run `cargo run -- zoo --markdown > docs/zoo.md`"
    );
}

#[test]
fn the_chart_labels_every_imagenet_network_and_only_those() {
    let path = std::env::temp_dir().join(format!("cnncost-zoo-{}.svg", std::process::id()));
    let o = cnncost(&["compare", "--zoo", "--plot", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&path).unwrap();
    // torchvision's published ImageNet accuracies are in the zoo's meta lines
    // (IMAGENET1K_V1); the CIFAR networks' accuracies are on another data set.
    for name in [
        "resnet50 (25.6M)",
        "vgg16 (138.4M)",
        "googlenet (6.6M)",
        "alexnet_torchvision (61.1M)",
    ] {
        assert!(svg.contains(name), "{name} is labelled");
    }
    assert!(
        !svg.contains("resnet20 ("),
        "CIFAR networks are not mixed in"
    );
    let table = String::from_utf8_lossy(&o.stdout);
    let r50 = table.lines().find(|l| l.starts_with("resnet50 ")).unwrap();
    assert!(r50.contains("25,557,032") && r50.contains("4,089,184,256") && r50.contains("76.13"));
    let o = cnncost(&["compare", "zoo/lenet5.net", "--plot", "x.pdf"]);
    assert_eq!(o.status.code(), Some(1));
}
