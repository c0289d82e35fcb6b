//! The JSON writer (issue 17, item 3), which writes a layer at a time and
//! each layer field by field, prints exactly what `serde_json` prints for
//! the same document: for networks with and without training heads, with
//! and without `--train`, with flat and image shapes, receptive fields
//! that differ along the axes or are not whole, and with no layer.

use analyzer::render;
use analyzer::training::TrainOptions;
use analyzer::{analyze, Options};

fn compiled(text: &str) -> dsl::Network {
    dsl::compile("t.net", text, &Default::default()).unwrap()
}

fn zoo(name: &str) -> dsl::Network {
    let path = format!("{}/zoo/{name}.net", env!("CARGO_MANIFEST_DIR"));
    dsl::compile(
        &path,
        &std::fs::read_to_string(&path).unwrap(),
        &Default::default(),
    )
    .unwrap()
}

#[test]
fn streamed_json_is_the_whole_documents_pretty_print() {
    let nets = [
        zoo("alexnet"),
        zoo("googlenet"),
        zoo("resnet20"),
        compiled("network empty\ninput 3x8x8\n"),
        compiled("network odd\ninput 3x9x9\nconv 4 k=1x7 p=0x3 | relu\nmaxpool k=2 ceil\nconv 4 k=2 s=2\nflatten\nlinear 5 | relu\nlinear 2\n"),
    ];
    for net in &nets {
        for (train, device) in [(false, false), (true, false), (false, true)] {
            let a = analyze(
                net,
                Options {
                    batch: 2,
                    ..Options::default()
                },
            )
            .unwrap();
            let a = if train {
                analyzer::with_training(a, &TrainOptions::default()).unwrap()
            } else {
                a
            };
            let a = if device {
                let p = analyzer::device::DeviceProfile::built_in("a100").unwrap();
                analyzer::with_device(a, &p)
            } else {
                a
            };
            let whole = serde_json::to_string_pretty(&render::json(&a)).unwrap() + "\n";
            let mut streamed = Vec::new();
            render::write_json(&mut streamed, &a).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                whole,
                "{} (train {train}, device {device})",
                net.name
            );
        }
    }
}
