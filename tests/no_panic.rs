//! No input makes the compiler, the analyzer or a renderer panic, overflow
//! the stack or run away: property tests over random bytes, random token
//! soups and random networks (a fixed seed and a bounded number of cases, so
//! the run is quick and the same every time), then the pathological inputs
//! one by one.

use analyzer::render::{self, Columns};
use analyzer::{analyze, Options};
use dsl::Overrides;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::time::{Duration, Instant};

/// Runs `text` through everything a command could: compile (and render the
/// errors), analyze, the rows at three depths, every renderer, `expect`
/// and `explain`.
fn run_everything(text: &str) {
    let net = match dsl::compile("fuzz.net", text, &Overrides::default()) {
        Ok(net) => net,
        Err(e) => {
            let rendered = e.to_string();
            assert!(rendered.contains("error: could not compile `fuzz.net`"));
            return;
        }
    };
    let _ = render::dot(&net);
    for options in [
        Options::default(),
        Options {
            batch: 1 << 40,
            ..Options::default()
        },
    ] {
        let a = match analyze(&net, options) {
            Ok(a) => a,
            Err(d) => {
                let _ = d.render(&net.source);
                continue;
            }
        };
        let all = Columns::parse("all").expect("all columns");
        for depth in 1..=3 {
            let rows = analyzer::rows::rows(&a, depth);
            let _ = render::table(&a, &rows, all);
            let _ = render::table(&a, &rows, Columns::default());
            let _ = render::markdown(&a, &rows, all);
            let _ = render::csv(&a, &rows, all);
        }
        let _ = render::json(&a).to_string();
        let _ = render::conventions(&a);
        let _ = analyzer::expect::evaluate(&a);
        for node in net.graph.node_weights().take(3) {
            let _ = analyzer::explain::explain(&a, &node.name);
        }
        let _ = analyzer::explain::explain(&a, "no.such.name");
    }
}

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Words of the language (keywords, arguments; the ops come from
/// `dsl::ops::op_keywords`), numbers at the edges, shapes and punctuation:
/// random sequences of these reach the parser's corners much more often than
/// random bytes do.
const VOCABULARY: &[&str] = &[
    "network",
    "input",
    "define",
    "repeat",
    "as",
    "expect",
    "residual",
    "project",
    "zeropad",
    "head",
    "train",
    "concat",
    "add",
    "in",
    ".",
    "c",
    "h",
    "w",
    "k=",
    "s=",
    "p=",
    "d=",
    "g=",
    "bias=",
    "init=",
    "ceil",
    "exclude_pad",
    "eps=",
    "momentum=",
    "gamma=",
    "size=",
    "a=",
    "same",
    "true",
    "false",
    "kaiming",
    "xavier",
    "params",
    "macs",
    "flops",
    "depth",
    "output",
    "memory",
    "activations",
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "1000",
    "0.5",
    "1e-4",
    "-1",
    "1M",
    "2.5K",
    "9223372036854775807",
    "99999999999999999999",
    "3x32x32",
    "1x7",
    "7x7",
    "3x0x0",
    "0x0",
    "1x1x1",
    "{",
    "}",
    "(",
    ")",
    ",",
    ";",
    ":",
    "|",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "?",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "~",
    "±",
    "#",
    "x",
    "i",
    "blk",
    "blk(",
    "x:",
    "b{i}:",
    "\n",
    "\n",
    "\n",
];

fn vocabulary() -> Vec<&'static str> {
    VOCABULARY
        .iter()
        .copied()
        .chain(dsl::ops::op_keywords())
        .collect()
}

/// A prologue that parses, so that token soups also reach elaboration.
const PROLOGUE: &str =
    "network t(n = 2)\ninput 3x16x16\ndefine blk(c, s = 1) { conv c k=3 s=s p=1 | relu }\n";

fn token_soup() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec((prop::sample::select(vocabulary()), any::<bool>()), 0..60),
    )
        .prop_map(|(prologue, tokens)| {
            let mut text = if prologue {
                PROLOGUE.to_string()
            } else {
                String::new()
            };
            for (t, space) in tokens {
                text.push_str(t);
                if space {
                    text.push(' ');
                }
            }
            text
        })
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "5",
    "7",
    "16",
    "64",
    "1000",
    "4294967296",
    "9223372036854775807",
];
const INPUTS: &[&str] = &[
    "3x32x32",
    "1x1x1",
    "3x224x224",
    "64x1x1",
    "1x65536x65536",
    "1x4294967296x4294967296",
];

/// One statement of a random network, from templates with edge-case numbers.
fn line() -> impl Strategy<Value = String> {
    let n = || prop::sample::select(NUMBERS);
    prop_oneof![
        (n(), n(), n(), n()).prop_map(|(c, k, s, p)| format!("conv {c} k={k} s={s} p={p}")),
        (n(), n(), n()).prop_map(|(c, k, g)| format!("conv {c} k={k} p=same g={g} bias=false")),
        (n(), n(), n()).prop_map(|(c, k, d)| format!("conv {c} k={k}x1 d={d}")),
        (n(), n(), n()).prop_map(|(k, s, p)| format!("maxpool k={k} s={s} p={p} ceil")),
        (n(), n()).prop_map(|(k, p)| format!("avgpool k={k} p={p} exclude_pad")),
        n().prop_map(|k| format!("adaptive_avgpool {k}x{k}")),
        n().prop_map(|c| format!("linear {c}")),
        Just("bn | relu".to_string()),
        Just("lrn | dropout 0.5 | prelu".to_string()),
        Just("gap".to_string()),
        Just("flatten".to_string()),
        Just("softmax | identity".to_string()),
        n().prop_map(|c| format!("residual {{ conv {c} k=3 p=1 | bn }}")),
        n().prop_map(|c| format!(
            "residual {{ conv {c} k=3 s=2 p=1 }} project down {{ conv {c} k=1 s=2 }}"
        )),
        n().prop_map(|c| format!("residual {{ conv {c} k=1 s=2 }} project zeropad")),
        n().prop_map(|c| format!("concat {{ conv {c} k=1; {{}}; maxpool k=3 s=1 p=1 }}")),
        n().prop_map(|c| format!("add {{ {{}}; conv {c} k=1 }}")),
        n().prop_map(|r| format!("repeat {r} {{ conv 8 k=3 p=1 }}")),
        n().prop_map(|r| format!("repeat {r} as i {{ b{{i}}: relu }}")),
        n().prop_map(|c| format!("x: blk({c})")),
        n().prop_map(|c| format!("blk({c}, s=2)")),
        n().prop_map(|c| format!("head train {{ gap; flatten; linear {c} }}")),
        Just("conv in.c / 2 k=1".to_string()),
        Just("expect params > 0".to_string()),
        Just("expect output = 10".to_string()),
    ]
}

fn network() -> impl Strategy<Value = String> {
    (
        prop::sample::select(INPUTS),
        prop::collection::vec(line(), 0..12),
    )
        .prop_map(|(input, lines)| {
            format!(
                "network t(n = 2)\ninput {input}\ndefine blk(c, s = 1) {{ conv c k=3 s=s p=1 | bn | relu }}\n{}\n",
                lines.join("\n")
            )
        })
}

proptest! {
    #![proptest_config(config(2000, 0x5eed_0001))]
    #[test]
    fn random_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        run_everything(&String::from_utf8_lossy(&bytes));
    }
}

proptest! {
    #![proptest_config(config(2000, 0x5eed_0002))]
    #[test]
    fn random_token_soups_do_not_panic(text in token_soup()) {
        run_everything(&text);
    }
}

proptest! {
    #![proptest_config(config(500, 0x5eed_0003))]
    #[test]
    fn random_networks_do_not_panic(text in network()) {
        run_everything(&text);
    }
}

/// Compiles `text`, which must fail, within `limit`; returns the first line
/// of the rendered errors.
fn fails_fast(text: &str, limit: Duration) -> String {
    let started = Instant::now();
    let result = dsl::compile("deep.net", text, &Overrides::default());
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}");
    match result {
        Ok(_) => panic!("compiled"),
        Err(e) => e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// 100,000 levels of nesting: one error at the limit, no stack overflow (on
/// a test thread's small stack, in a debug build).
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let head = "network t\ninput 3x8x8\n";
    let n = 100_000;
    let cases = [
        format!("{head}conv {}1{} k=1\n", "(".repeat(n), ")".repeat(n)),
        format!("{head}conv {}1 k=1\n", "(".repeat(n)),
        format!("{head}{}relu{}\n", "{".repeat(n), "}".repeat(n)),
        format!("{head}{}\n", "{".repeat(n)),
        format!("{head}{}\n", "}".repeat(n)),
        format!("{head}{}relu\n", "residual { ".repeat(n)),
        format!("{head}{}relu\n", "concat { ".repeat(n)),
        format!("{head}conv 8 k={}3\n", "-".repeat(n)),
        format!("{head}conv 8 k={}3\n", "!".repeat(n)),
        format!("{head}conv 8 k=1{}\n", "+1".repeat(n)),
        format!("{head}conv 8 k=1{}\n", "?1:1".repeat(n)),
        format!("{head}a{{{}1{}}}: relu\n", "(".repeat(n), ")".repeat(n)),
    ];
    for text in &cases {
        let first = fails_fast(text, Duration::from_secs(10));
        assert!(
            first.contains("nested deeper than 64 levels") || first.contains("unmatched `}`"),
            "{first}"
        );
    }
}

/// Long chains of block calls are cut at the depth limit.
#[test]
fn long_call_chains_are_an_error_not_a_stack_overflow() {
    let mut text = String::from("network t\ninput 3x8x8\n");
    for i in 0..5000 {
        text += &format!("define b{i}() {{ residual {{ b{}() }} }}\n", i + 1);
    }
    text += "define b5000() { relu }\nb0()\n";
    let first = fails_fast(&text, Duration::from_secs(10));
    assert_eq!(first, "error: statements nested deeper than 100 levels");
}

/// Runaway sizes fail at once, before anything is expanded.
#[test]
fn runaway_sizes_fail_fast() {
    let head = "network t\ninput 3x32x32\n";
    let cases = [
        format!("{head}repeat 1000000000 {{ conv 64 k=3 }}\n"),
        format!("{head}repeat 9223372036854775807 {{ relu }}\n"),
        format!("{head}repeat 100000000 {{ }}\n"),
        format!("{head}repeat 3000 {{ repeat 3000 {{ relu }} }}\n"),
        format!("{head}define s(n) {{ repeat n {{ relu }} }}\ns(1000000000)\n"),
        format!("{head}repeat 4000 as i {{ repeat i {{ relu }} }}\n"),
        format!("{head}define s(n) {{ repeat n {{ relu }} }}\nrepeat 4000 as i {{ s(i) }}\n"),
        // No input: the flow is lost, the body is still checked, but not a
        // billion times.
        "network t\nrepeat 4000000 as i { repeat i { relu } }\n".to_string(),
    ];
    for text in &cases {
        let first = fails_fast(text, Duration::from_secs(2));
        assert!(
            first.contains("larger than 2000000 ops") || first.contains("missing `input`"),
            "{first}"
        );
    }
}

/// Blocks calling the next one twice (2^40 ops): refused before expanding,
/// with literal counts, counts from parameters, and counts from defaults.
#[test]
fn exponential_block_calls_fail_fast() {
    for body in [
        "{ e{n}(); e{n}() }",
        "{ repeat 2 { e{n}() } }",
        "{ repeat k { e{n}(k) } }",
    ] {
        let mut text = String::from("network t\ninput 3x8x8\n");
        for i in 0..40 {
            let b = body.replace("{n}", &(i + 1).to_string());
            text += &format!("define e{i}(k = 2) {b}\n");
        }
        text += "define e40(k = 2) { relu }\ne0()\n";
        let first = fails_fast(&text, Duration::from_secs(2));
        assert_eq!(
            first,
            "error: block `e0` would make the network larger than 2000000 ops"
        );
    }
}

/// Numbers and shapes at and past the 64-bit limits are errors, never a
/// panic.
#[test]
fn huge_numbers_do_not_panic() {
    let big = [
        "0",
        "1",
        "4294967296",
        "9223372036854775807",
        "18446744073709551615",
        "99999999999999999999",
        "1e308",
        "1e999",
        "9223372036854775807 * 2",
        "-9223372036854775807 - 1",
        "(-9223372036854775807 - 1) / -1",
        "(-9223372036854775807 - 1) % -1",
        "-(-9223372036854775807 - 1)",
        "4611686018427387904 + 4611686018427387904",
        "1 / 0",
        "1.0 / 0",
        "0.0 / 0",
    ];
    for v in big {
        for template in [
            "network t\ninput 3x32x32\nconv {v} k=1\n",
            "network t\ninput 3x32x32\nconv 8 k={v}\n",
            "network t\ninput 3x32x32\nconv 8 k=1 s={v} p={v} d={v}\n",
            "network t\ninput 3x32x32\nmaxpool k={v} s={v} p={v} ceil\n",
            "network t\ninput 3x32x32\nadaptive_avgpool {v}x{v}\n",
            "network t\ninput 3x32x32\nflatten\nlinear {v}\n",
            "network t\ninput {v}x{v}x{v}\nconv 8 k=1\nflatten\n",
            "network t\ninput 3x32x32\nrepeat {v} { relu }\n",
            "network t\ninput 3x32x32\nresidual { conv {v} k=1 s=2 } project zeropad\n",
            "network t\ninput 3x32x32\nbn eps={v} momentum={v}\ndropout {v}\n",
            "network t\ninput 3x32x32\nrelu\nexpect params ~ {v} ± {v}%\n",
        ] {
            let text = template.replace("{v}", v);
            let started = Instant::now();
            run_everything(&text);
            assert!(started.elapsed() < Duration::from_secs(2), "{text}");
        }
    }
}

/// Garbage of every kind: control characters, invalid UTF-8 made lossy,
/// a long run of symbols.
#[test]
fn garbage_does_not_panic() {
    let cases = [
        String::new(),
        "\0".repeat(1000),
        "\r\r\r\n\t\u{b}\u{c}".repeat(100),
        "$@`^".repeat(50_000),
        "é漢😀\u{200b}\u{feff}".repeat(1000),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x80, b'{', 0xc3]).into_owned(),
        "network".to_string(),
        "network t(".to_string(),
        "network t\ninput 3x".to_string(),
        "network t\ninput 3x8x8\nconv 8 k=3 |".to_string(),
        "network t\ninput 3x8x8\nexpect".to_string(),
        "network t\ninput 3x8x8\nx{".to_string(),
        "network t\ninput 3x8x8\nrelu\n#".to_string(),
    ];
    for text in &cases {
        let started = Instant::now();
        run_everything(text);
        assert!(started.elapsed() < Duration::from_secs(5), "{text:?}");
    }
}
