//! Every kind of compile error, with the whole rendered message: the
//! `file:line:col`, the source line with a caret under the culprit, what was
//! expected and what was found, what to do, and inside a block the chain of
//! calls that led there. A change to any message shows here as a diff to
//! read, not as a silently weaker test.

use dsl::value::Value;
use dsl::Overrides;

/// The rendered errors of a source that must fail to compile.
fn errors(text: &str) -> String {
    errors_with(text, &Overrides::default())
}

fn errors_with(text: &str, overrides: &Overrides) -> String {
    match dsl::compile("test.net", text, overrides) {
        Ok(_) => panic!("compiled without errors:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// `--set name=value` for each pair.
fn set(pairs: &[(&str, i64)]) -> Overrides {
    Overrides {
        set: pairs
            .iter()
            .map(|&(n, v)| (n.to_string(), Value::Int(v)))
            .collect(),
        ..Default::default()
    }
}

/// The 1-based number of the line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?}"))
        + 1
}

/// The acceptance case: zoo/resnet50.net with its `project` clause removed
/// fails at the `residual`, inside `bottleneck` inside `stage`. The first
/// failing call is reported with its chain; the three other stages that fail
/// the same way are counted. (Line numbers are read from the zoo file, so
/// that editing its comments does not break the test.)
#[test]
fn resnet50_without_project_fails_at_the_residual_with_the_call_chain() {
    let zoo = include_str!("../zoo/resnet50.net");
    let start = zoo.find(" project downsample {").expect("the clause");
    let end = start + zoo[start..].find('}').expect("its end") + 1;
    let text = format!("{}{}", &zoo[..start], &zoo[end..]);
    let residual = line_of(&text, "  residual {");
    let call = line_of(&text, "  bottleneck(width, stride)");
    let layer1 = line_of(&text, "layer1: stage(");
    // The gutter is as wide as the number of the line shown.
    let width = residual.to_string().len();
    let pad = " ".repeat(width);
    let got = match dsl::compile("resnet50.net", &text, &Overrides::default()) {
        Ok(_) => panic!("compiled without its projection"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        got,
        format!(
            "error: channel mismatch in residual
{pad} ┌─ resnet50.net:{residual}:3
{pad} │
{residual:>width$} │   residual {{
{pad} │   ^^^^^^^^ body gives 256x56x56, input is 64x56x56
{pad} │
{pad} = help: add a `project` clause (e.g. `project {{ conv 256 k=1 }}`), or make the body keep 64 channels at 56x56
{pad} = note: in block `bottleneck` called at resnet50.net:{call}:3 (layer1.0)
{pad} = note: in block `stage` called at resnet50.net:{layer1}:1 (layer1)
{pad} = note: the same error occurs in 3 other calls (not shown)

error: could not compile `resnet50.net` (1 error)"
        )
    );
}

/// Cost overflow is the analyzer's to find (the shapes fit in 64 bits, the
/// MACs do not); it renders the same way.
#[test]
fn cost_overflow_is_reported_by_the_analyzer() {
    let net = dsl::compile(
        "test.net",
        "network t\ninput 1048576x1024x1024\nbig: conv 1048576 k=5 p=2\n",
        &Overrides::default(),
    )
    .expect("the shapes fit");
    let d = analyzer::analyze(&net, analyzer::Options::default()).expect_err("MACs overflow");
    assert_eq!(
        d.render(&net.source),
        "error: costs of `big` overflow 64 bits
  ┌─ test.net:3:6
  │
3 │ big: conv 1048576 k=5 p=2
  │      ^^^^^^^^^^^^^^^^^^^^ the count is larger than 18,446,744,073,709,551,615
  │
  = help: check the input size, the channel counts and `--batch`

"
    );
}

/// `--input` with a zero dimension: the note says where the shape came from.
#[test]
fn input_override_with_a_zero_dimension() {
    let overrides = Overrides {
        input: Some([3, 0, 32]),
        ..Default::default()
    };
    assert_eq!(
        errors_with("network t\ninput 3x32x32\nrelu\n", &overrides),
        "error: the input shape has a zero dimension
  ┌─ test.net:2:1
  │
2 │ input 3x32x32
  │ ^^^^^^^^^^^^^ 3x0x32 has no elements
  │
  = help: every dimension of the input must be at least 1
  = note: the shape comes from `--input`

error: could not compile `test.net` (1 error)"
    );
}

/// Blocks that call the next one twice, with counts that come from
/// parameters: 2^30 ops, refused before expanding anything.
#[test]
fn runaway_block_calls_are_refused_before_expanding() {
    let mut text = String::from("network t\ninput 3x8x8\n");
    for i in 0..30 {
        text += &format!(
            "define e{i}(n = 1) {{ repeat n {{ e{0}(); e{0}() }} }}\n",
            i + 1
        );
    }
    text += "define e30() { relu }\ne0()\n";
    let started = std::time::Instant::now();
    assert_eq!(
        errors(&text),
        "error: block `e0` would make the network larger than 2000000 ops
   ┌─ test.net:34:1
   │
34 │ e0()
   │ ^^ this call makes at least 1073741824 ops
   │
   = help: the limit is 2000000 ops in all

error: could not compile `test.net` (1 error)"
    );
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
}

/// Statements nested too deep through block calls: one error, with the call
/// chain cut short.
#[test]
fn block_calls_nested_too_deep() {
    let mut text = String::from("network t\ninput 3x8x8\n");
    for i in 0..120 {
        text += &format!("define b{i}() {{ x: b{}() }}\n", i + 1);
    }
    text += "define b120() { relu }\nb0()\n";
    // `b0` is called unlabelled (scope `0`); each call inside is `x`.
    let scope = |depth: usize| format!("0{}", ".x".repeat(depth));
    let (x99, x98, x97) = (scope(99), scope(98), scope(97));
    assert_eq!(
        errors(&text),
        format!(
            "error: statements nested deeper than 100 levels
    ┌─ test.net:102:16
    │
102 │ define b99() {{ x: b100() }}
    │                ^^^^^^^ too deep, counting through block calls
    │
    = help: flatten the nesting of groups and block calls
    = note: in block `b99` called at test.net:101:16 ({x99})
    = note: in block `b98` called at test.net:100:16 ({x98})
    = note: in block `b97` called at test.net:99:16 ({x97})
    = note: ... 94 more calls ...
    = note: in block `b2` called at test.net:4:15 (0.x.x)
    = note: in block `b1` called at test.net:3:15 (0.x)
    = note: in block `b0` called at test.net:124:1 (0)

error: could not compile `test.net` (1 error)"
        )
    );
}

/// Nesting past the parser's limit stops the parse with one error: no stack
/// overflow, and no flood of follow-on errors.
#[test]
fn parentheses_nested_too_deep() {
    let (open, close) = ("(".repeat(70), ")".repeat(70));
    let caret = " ".repeat(69);
    assert_eq!(
        errors(&format!(
            "network t\ninput 3x8x8\nconv {open}1{close} k=1\n"
        )),
        format!(
            "error: expression nested deeper than 64 levels
  ┌─ test.net:3:70
  │
3 │ conv {open}1{close} k=1
  │ {caret}^ the parser stops here
  │
  = help: simplify the expression, or compute parts of it in block parameters

error: could not compile `test.net` (1 error)"
        )
    );
}

#[test]
fn braces_nested_too_deep() {
    let (open, close) = ("{".repeat(70), "}".repeat(70));
    let caret = " ".repeat(64);
    assert_eq!(
        errors(&format!("network t\ninput 3x8x8\n{open}relu{close}\n")),
        format!(
            "error: braces nested deeper than 64 levels
  ┌─ test.net:3:65
  │
3 │ {open}relu{close}
  │ {caret}^ the parser stops here
  │
  = help: split the network into `define`d blocks

error: could not compile `test.net` (1 error)"
        )
    );
}

/// Past 100 errors the rest are counted, not shown.
#[test]
fn at_most_100_errors_are_shown() {
    let text = format!("network t\ninput 3x8x8\n{}", "relu x=1\n".repeat(150));
    let got = errors(&text);
    assert_eq!(
        got.matches("error: unknown argument `x` of `relu`").count(),
        100
    );
    assert!(
        got.ends_with("\n\nerror: could not compile `test.net` (150 errors; the first 100 shown)"),
        "{got}"
    );
}

/// Syntax errors: each is reported at its own place, and the parser
/// recovers at the next statement, so one run finds them all.
#[test]
fn syntax_errors_on_different_lines_are_all_reported() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1 )
relu
conv 8 k=
maxpool k=2 | | relu
define blk {
  relu
}
expect params = 3 ±
"#
        ),
        r#"error: expected an argument of `conv`, `|` or the end of the statement, found `)`
  ┌─ test.net:3:17
  │
3 │ conv 16 k=3 p=1 )
  │                 ^ expected an argument of `conv`, `|` or the end of the statement

error: expected a value, found end of line
  ┌─ test.net:5:10
  │
5 │ conv 8 k=
  │          ^ expected a value

error: expected an op name, found `|`
  ┌─ test.net:6:15
  │
6 │ maxpool k=2 | | relu
  │               ^ expected an op name

error: expected `(` and the block's parameters, found `{`
  ┌─ test.net:7:12
  │
7 │ define blk {
  │            ^ expected `(` and the block's parameters
  │
  = help: a block without parameters is written `define blk() { ... }`

error: expected a tolerance such as `0.5%` or `1M`, found end of line
   ┌─ test.net:10:20
   │
10 │ expect params = 3 ±
   │                    ^ expected a tolerance such as `0.5%` or `1M`

error: could not compile `test.net` (5 errors)"#
    );
}

/// A bad character, a number running into letters and a number too large:
/// one error each, and no follow-on error from the parser.
#[test]
fn lexical_errors_do_not_cascade() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 8 k=3 @
conv 12abc k=3
conv 99999999999999999999 k=3
"#
        ),
        r#"error: unexpected character `@`
  ┌─ test.net:3:12
  │
3 │ conv 8 k=3 @
  │            ^ not part of the language

error: malformed number `12abc`
  ┌─ test.net:4:6
  │
4 │ conv 12abc k=3
  │      ^^^^^ a number cannot run into letters
  │
  = help: separate the number from the word after it with a space

error: number `99999999999999999999` is too large
  ┌─ test.net:5:6
  │
5 │ conv 99999999999999999999 k=3
  │      ^^^^^^^^^^^^^^^^^^^^ a whole number must be at most 9223372036854775807 (2^63 - 1)

error: could not compile `test.net` (3 errors)"#
    );
}

/// An unclosed `{` points at the brace; a stray `}` at top level is one error.
#[test]
fn unclosed_brace_and_stray_brace() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
}}
residual {
  conv 3 k=3 p=1
"#
        ),
        r#"error: unmatched `}`
  ┌─ test.net:3:1
  │
3 │ }}
  │ ^^ no `{` is open here
  │
  = help: remove it, or add the `{` it should close

error: unclosed `{`
  ┌─ test.net:4:10
  │
4 │ residual {
  │          ^ this `{` is never closed
  │
  = help: add the matching `}`

error: could not compile `test.net` (2 errors)"#
    );
}

/// Unknown op (line 4), argument (line 6) and flag (line 7): independent, all
/// reported, each with a suggestion.
#[test]
fn unknown_op_argument_and_flag_in_one_run() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1
convv 16 k=3
relu
conv 8 k=3 stride=2
maxpool k=2 ciel
"#
        ),
        r#"error: unknown op `convv`
  ┌─ test.net:4:1
  │
4 │ convv 16 k=3
  │ ^^^^^ not an op of the language
  │
  = help: did you mean `conv`?

error: unknown argument `stride` of `conv`
  ┌─ test.net:6:12
  │
6 │ conv 8 k=3 stride=2
  │            ^^^^^^ not an argument of this op
  │
  = help: `conv` takes k=, s=, p=, d=, g=, bias=, init=
  = help: `stride` is written `s=` here

error: unknown flag `ciel` of `maxpool`
  ┌─ test.net:7:13
  │
7 │ maxpool k=2 ciel
  │             ^^^^ not a flag of this op, nor a name in scope
  │
  = help: `maxpool` takes k=, s=, p=, ceil
  = help: did you mean `ceil`?

error: could not compile `test.net` (3 errors)"#
    );
}

/// A required argument left out: the caret is under the op.
#[test]
fn missing_required_arguments() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 p=1
maxpool s=2
flatten
linear
"#
        ),
        r#"error: missing the kernel size `k` of `conv`
  ┌─ test.net:3:1
  │
3 │ conv 16 p=1
  │ ^^^^ `conv` needs the kernel size `k`
  │
  = help: write e.g. `conv 64 k=3`

error: missing the window size `k` of `maxpool`
  ┌─ test.net:4:1
  │
4 │ maxpool s=2
  │ ^^^^^^^ `maxpool` needs the window size `k`
  │
  = help: write e.g. `maxpool k=2`

error: missing the number of outputs of `linear`
  ┌─ test.net:6:1
  │
6 │ linear
  │ ^^^^^^ `linear` needs the number of outputs
  │
  = help: write e.g. `linear 4096`

error: could not compile `test.net` (3 errors)"#
    );
}

/// A call of a block that is not defined, with the closest name.
#[test]
fn undefined_block() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define basic(c) {
  conv c k=3 p=1 | relu
}
basci(16)
"#
        ),
        r#"error: undefined block `basci`
  ┌─ test.net:6:1
  │
6 │ basci(16)
  │ ^^^^^ no `define` of this name
  │
  = help: did you mean `basic`?

error: could not compile `test.net` (1 error)"#
    );
}

/// Too many arguments (one error for all the extra ones), a missing one, and
/// an unknown one, each with the block's signature.
#[test]
fn wrong_arity_of_a_block_call() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define basic(c, s = 1) {
  conv c k=3 s=s p=1 | relu
}
basic(16, 1, 2, 3)
basic(s=2)
basic(16, pad=1)
"#
        ),
        r#"error: block `basic` takes 2 arguments, 4 given
  ┌─ test.net:6:14
  │
6 │ basic(16, 1, 2, 3)
  │              ^^^^ 2 extra arguments
  │
  = help: remove the extra arguments, or add parameters to the block
  = note: `define basic(c, s = 1)` is at test.net:3:1

error: missing argument `c` of block `basic`
  ┌─ test.net:7:1
  │
7 │ basic(s=2)
  │ ^^^^^ `c` has no value here
  │
  = help: pass it, e.g. `basic(c = ...)`, or give the parameter a default
  = note: `define basic(c, s = 1)` is at test.net:3:1

error: block `basic` has no parameter `pad`
  ┌─ test.net:8:11
  │
8 │ basic(16, pad=1)
  │           ^^^ unknown parameter
  │
  = note: `define basic(c, s = 1)` is at test.net:3:1

error: could not compile `test.net` (3 errors)"#
    );
}

/// A block that calls itself.
#[test]
fn direct_recursion() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define down(c) {
  conv c k=3 s=2 p=1
  down(c * 2)
}
down(16)
"#
        ),
        r#"error: recursive call of block `down`
  ┌─ test.net:5:3
  │
5 │   down(c * 2)
  │   ^^^^ calls itself: down -> down
  │
  = help: blocks cannot call themselves; use `repeat` for repetition
  = note: in block `down` called at test.net:7:1 (0)

error: could not compile `test.net` (1 error)"#
    );
}

/// Blocks that call each other: the label shows the cycle; the second call of
/// `ping` hits the same error and is counted, not repeated.
#[test]
fn mutual_recursion_is_reported_once() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define ping(c) {
  conv c k=3 p=1
  pong(c)
}
define pong(c) {
  relu
  ping(c)
}
ping(8)
ping(16)
"#
        ),
        r#"error: recursive call of block `ping`
  ┌─ test.net:9:3
  │
9 │   ping(c)
  │   ^^^^ calls itself: ping -> pong -> ping
  │
  = help: blocks cannot call themselves; use `repeat` for repetition
  = note: in block `pong` called at test.net:5:3 (0.1)
  = note: in block `ping` called at test.net:11:1 (0)
  = note: the same error occurs in 1 other call (not shown)

error: could not compile `test.net` (1 error)"#
    );
}

/// A label used twice, and a label inside `repeat` (which every copy would
/// take): the caret is under the label.
#[test]
fn duplicate_labels() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv1: conv 16 k=3 p=1
conv1: conv 16 k=3 p=1
repeat 2 { block: conv 16 k=3 p=1 }
"#
        ),
        r#"error: duplicate name `conv1`
  ┌─ test.net:4:1
  │
4 │ conv1: conv 16 k=3 p=1
  │ ^^^^^ this name is already taken
  │
  = help: labels must be unique in their scope: rename one of them
  = note: `conv1` was first used at test.net:3:1

error: duplicate name `block`
  ┌─ test.net:5:12
  │
5 │ repeat 2 { block: conv 16 k=3 p=1 }
  │            ^^^^^ every copy made by `repeat` gets this same name
  │
  = help: give each copy its own name with a template such as `block{i}:` (and `repeat N as i`), or remove the label

error: could not compile `test.net` (2 errors)"#
    );
}

/// Inside a block, the full name and the call chain are shown.
#[test]
fn duplicate_label_inside_a_block() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define unit() {
  act: relu
  act: relu
}
stem: unit()
"#
        ),
        r#"error: duplicate name `stem.act`
  ┌─ test.net:5:3
  │
5 │   act: relu
  │   ^^^ this name is already taken
  │
  = help: labels must be unique in their scope: rename one of them
  = note: `stem.act` was first used at test.net:4:3
  = note: in block `unit` called at test.net:7:1 (stem)

error: could not compile `test.net` (1 error)"#
    );
}

/// A block defined twice and a parameter declared twice.
#[test]
fn duplicate_block_and_parameter() {
    assert_eq!(
        errors(
            r#"network t(width = 8, width = 16)
input 3x32x32
define unit() { relu }
define unit() { bn }
unit()
"#
        ),
        r#"error: parameter `width` is declared twice
  ┌─ test.net:1:22
  │
1 │ network t(width = 8, width = 16)
  │                      ^^^^^ second declaration
  │
  = help: give each parameter a different name
  = note: the first declaration is at test.net:1:11

error: block `unit` is defined twice
  ┌─ test.net:4:8
  │
4 │ define unit() { bn }
  │        ^^^^ second definition
  │
  = help: rename one of the blocks
  = note: the first definition is at test.net:3:8

error: could not compile `test.net` (2 errors)"#
    );
}

/// Grouped convolution: channels must divide into the groups.
#[test]
fn channels_not_divisible_by_groups() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1 g=3
"#
        ),
        r#"error: output channels 16 are not divisible by groups=3
  ┌─ test.net:3:1
  │
3 │ conv 16 k=3 p=1 g=3
  │ ^^^^^^^^^^^^^^^^^^^ 16 output channels in 3 groups
  │
  = help: make both input and output channels multiples of `g`

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn input_channels_not_divisible_by_groups() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 6 k=3 p=1 g=2
"#
        ),
        r#"error: input channels 3 are not divisible by groups=2
  ┌─ test.net:3:1
  │
3 │ conv 6 k=3 p=1 g=2
  │ ^^^^^^^^^^^^^^^^^^ 3 input channels in 2 groups
  │
  = help: make both input and output channels multiples of `g`

error: could not compile `test.net` (1 error)"#
    );
}

/// A kernel larger than the (padded) input.
#[test]
fn spatial_size_below_one_conv() {
    assert_eq!(
        errors(
            r#"network t
input 3x8x8
conv 16 k=5 s=2
conv 32 k=3
"#
        ),
        r#"error: `conv` output height is below 1
  ┌─ test.net:4:1
  │
4 │ conv 32 k=3
  │ ^^^^^^^^^^^ kernel 3 is larger than the padded input height 2 (2 + 2*0)
  │
  = help: use a smaller kernel or stride, more padding, or a larger input (`--input`)

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn spatial_size_below_one_pool() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=5 s=4
conv 32 k=5 s=4
maxpool k=3
"#
        ),
        r#"error: `maxpool` output height is below 1
  ┌─ test.net:5:1
  │
5 │ maxpool k=3
  │ ^^^^^^^^^^^ window 3 is larger than the padded input height 1 (1 + 2*0)
  │
  = help: use a smaller kernel or stride, more padding, or a larger input (`--input`)

error: could not compile `test.net` (1 error)"#
    );
}

/// `add` of branches that disagree.
#[test]
fn add_of_different_shapes() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1
add {
  conv 16 k=3 p=1
  conv 32 k=3 p=1
}
"#
        ),
        r#"error: channel mismatch in add
  ┌─ test.net:4:1
  │
4 │ add {
  │ ^^^ branch 1 gives 16x32x32, branch 2 gives 32x32x32
  │
  = help: every branch of `add` must give the same shape

error: could not compile `test.net` (1 error)"#
    );
}

/// A residual whose body changes the shape and has no `project`: the help
/// shows the usual projection.
#[test]
fn residual_without_project() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1
residual {
  conv 32 k=3 s=2 p=1
  bn
}
"#
        ),
        r#"error: channel mismatch in residual
  ┌─ test.net:4:1
  │
4 │ residual {
  │ ^^^^^^^^ body gives 32x16x16, input is 16x32x32
  │
  = help: add a `project` clause (e.g. `project { conv 32 k=1 s=2 }`), or make the body keep 16 channels at 32x32

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn projection_that_does_not_match() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1
residual {
  conv 32 k=3 s=2 p=1
} project {
  conv 32 k=1
}
"#
        ),
        r#"error: the projection does not match the body
  ┌─ test.net:6:3
  │
6 │ } project {
  │   ^^^^^^^ projection gives 32x32x32, body gives 32x16x16
  │
  = help: make the shortcut's last op give the body's shape (stride and channels)

error: could not compile `test.net` (1 error)"#
    );
}

/// `concat` joins along channels: spatial sizes must agree.
#[test]
fn concat_of_different_spatial_sizes() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
concat {
  conv 16 k=1
  conv 16 k=3
}
"#
        ),
        r#"error: spatial size mismatch in concat
  ┌─ test.net:3:1
  │
3 │ concat {
  │ ^^^^^^ branch 1 gives 16x32x32, branch 2 gives 16x30x30
  │
  = help: concat joins along channels: every branch must keep the same height and width

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn linear_on_an_unflattened_input() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=1
linear 10
"#
        ),
        r#"error: `linear` needs a flat input, found 16x32x32
  ┌─ test.net:4:1
  │
4 │ linear 10
  │ ^^^^^^^^^ input is 16x32x32
  │
  = help: add `flatten` (or `gap` then `flatten`) before it

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn spatial_op_after_flatten() {
    assert_eq!(
        errors(
            r#"network t
input 3x8x8
flatten
conv 8 k=3
"#
        ),
        r#"error: `conv` needs an image input, found a flat vector of 192
  ┌─ test.net:4:1
  │
4 │ conv 8 k=3
  │ ^^^^^^^^^^ input is 192 (flat)
  │
  = help: spatial ops must come before `flatten`

error: could not compile `test.net` (1 error)"#
    );
}

/// Shape arithmetic overflow, found by the compiler: an input whose element
/// count does not fit in 64 bits.
#[test]
fn input_too_large() {
    assert_eq!(
        errors(
            r#"network t
input 3x4294967296x4294967296
conv 8 k=1
"#
        ),
        r#"error: shape arithmetic overflow
  ┌─ test.net:2:1
  │
2 │ input 3x4294967296x4294967296
  │ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ the input 3x4294967296x4294967296 has more than 2^64 - 1 elements
  │
  = help: use a smaller input

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn output_too_large() {
    assert_eq!(
        errors(
            r#"network t
input 3x65536x65536
conv 4294967296 k=1
"#
        ),
        r#"error: shape arithmetic overflow
  ┌─ test.net:3:1
  │
3 │ conv 4294967296 k=1
  │ ^^^^^^^^^^^^^^^^^^^ the output 4294967296x65536x65536 has more than 2^64 - 1 elements
  │
  = help: check the input size and the channel counts

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn padding_overflow() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 8 k=1 p=9223372036854775807
"#
        ),
        r#"error: shape arithmetic overflow
  ┌─ test.net:3:1
  │
3 │ conv 8 k=1 p=9223372036854775807
  │ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ the padded input height (32 + 2*9223372036854775807) does not fit in 64 bits
  │
  = help: check the kernel, padding and dilation

error: could not compile `test.net` (1 error)"#
    );
}

/// Integer overflow in an expression names the computation.
#[test]
fn expression_overflow() {
    assert_eq!(
        errors(
            r#"network t(width = 4611686018427387904)
input 3x32x32
conv width * 2 k=1
"#
        ),
        r#"error: arithmetic overflow
  ┌─ test.net:3:6
  │
3 │ conv width * 2 k=1
  │      ^^^^^^^^^ 4611686018427387904 * 2 does not fit in a 64-bit integer (at most 9223372036854775807)
  │
  = help: integers in expressions are 64-bit; check the values

error: could not compile `test.net` (1 error)"#
    );
}

/// An error inside a block called three times: once, with the first call
/// chain, and a count of the others.
#[test]
fn error_in_a_block_called_three_times_is_reported_once() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
define unit(c) {
  conv c k=3 p=1 stride=1
  relu
}
unit(16)
unit(32)
unit(64)
"#
        ),
        r#"error: unknown argument `stride` of `conv`
  ┌─ test.net:4:18
  │
4 │   conv c k=3 p=1 stride=1
  │                  ^^^^^^ not an argument of this op
  │
  = help: `conv` takes k=, s=, p=, d=, g=, bias=, init=
  = help: `stride` is written `s=` here
  = note: in block `unit` called at test.net:7:1 (0)
  = note: the same error occurs in 2 other calls (not shown)

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn error_inside_repeat_is_reported_once() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
repeat 4 {
  conv 16 k=3 p=1 dilation=2
}
"#
        ),
        r#"error: unknown argument `dilation` of `conv`
  ┌─ test.net:4:19
  │
4 │   conv 16 k=3 p=1 dilation=2
  │                   ^^^^^^^^ not an argument of this op
  │
  = help: `conv` takes k=, s=, p=, d=, g=, bias=, init=
  = help: `dilation` is written `d=` here

error: could not compile `test.net` (1 error)"#
    );
}

/// A runaway `repeat` fails at once (the op limit would be reached only after
/// seconds and gigabytes).
#[test]
fn runaway_repeat_is_refused_before_expanding() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
repeat 1000000000 { conv 64 k=3 }
"#
        ),
        r#"error: this `repeat` would make the network larger than 2000000 ops
  ┌─ test.net:3:8
  │
3 │ repeat 1000000000 { conv 64 k=3 }
  │        ^^^^^^^^^^ 1000000000 copies of at least 1 op each
  │
  = help: the limit is 2000000 ops in all; check the count

error: could not compile `test.net` (1 error)"#
    );
}

/// A `repeat` whose copies grow with the loop variable: the copies are
/// summed, and the sum passes the limit before anything is expanded.
#[test]
fn runaway_repeat_growing_with_its_variable() {
    assert_eq!(
        errors("network t\ninput 3x32x32\nrepeat 4000 as i { repeat i { relu } }\n"),
        r#"error: this `repeat` would make the network larger than 2000000 ops
  ┌─ test.net:3:8
  │
3 │ repeat 4000 as i { repeat i { relu } }
  │        ^^^^ 4000 copies, making at least 2001000 ops
  │
  = help: the limit is 2000000 ops in all; check the count

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn padding_same_needs_stride_one() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=same s=2
"#
        ),
        r#"error: `p=same` needs stride 1
  ┌─ test.net:3:1
  │
3 │ conv 16 k=3 p=same s=2
  │ ^^^^^^^^^^^^^^^^^^^^^^ stride is 2
  │
  = help: PyTorch allows padding='same' only with stride 1; give `p` explicitly

error: could not compile `test.net` (1 error)"#
    );
}

/// Words that are not values of their argument.
#[test]
fn unknown_word_values() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv 16 k=3 p=valid
conv 16 k=3 init=kaimin
"#
        ),
        r#"error: unknown value `valid` for `p=` of `conv`
  ┌─ test.net:3:15
  │
3 │ conv 16 k=3 p=valid
  │               ^^^^^ expected a padding: a number, HxW such as 0x3, or `same`
  │
  = help: `valid` is not a value of `p=` nor a name in scope
  = help: PyTorch's padding='valid' is `p=0`, the default

error: unknown initialisation `kaimin`
  ┌─ test.net:4:18
  │
4 │ conv 16 k=3 init=kaimin
  │                  ^^^^^^ not an `init=` value
  │
  = help: one of: kaiming, kaiming_normal, kaiming_uniform, kaiming_normal_fan_out, kaiming_uniform_fan_out, xavier, zeros
  = help: did you mean `kaiming`?

error: could not compile `test.net` (2 errors)"#
    );
}

#[test]
fn values_of_the_wrong_type() {
    assert_eq!(
        errors(
            r#"network t(deep = true)
input 3x32x32
conv deep k=3
dropout 1.5
repeat 2.5 { relu }
"#
        ),
        r#"error: `conv` expects output channels (a whole number >= 1), found true
  ┌─ test.net:3:6
  │
3 │ conv deep k=3
  │      ^^^^ expected output channels (a whole number >= 1)

error: `dropout` expects a drop probability in [0, 1), found 1.5
  ┌─ test.net:4:9
  │
4 │ dropout 1.5
  │         ^^^ expected a drop probability in [0, 1)

error: `repeat` needs a whole number >= 0, found 2.5
  ┌─ test.net:5:8
  │
5 │ repeat 2.5 { relu }
  │        ^^^ this is a number (2.5)
  │
  = help: the count of copies must be 0, 1, 2, ...

error: could not compile `test.net` (3 errors)"#
    );
}

/// An undefined name (with the closest one) and a division by zero. The
/// third line reads `in.c`, which is unknown once the line before failed:
/// that is a follow-on error, left out.
#[test]
fn expressions_undefined_names_and_division_by_zero() {
    assert_eq!(
        errors(
            r#"network t(width = 64)
input 3x32x32
conv widht k=3
conv width / 0 k=3
conv in.c * 2 k=3
"#
        ),
        r#"error: undefined name `widht`
  ┌─ test.net:3:6
  │
3 │ conv widht k=3
  │      ^^^^^ not a parameter or loop variable in scope
  │
  = help: did you mean `width`?

error: division by zero
  ┌─ test.net:4:14
  │
4 │ conv width / 0 k=3
  │              ^ this is 0

error: could not compile `test.net` (2 errors)"#
    );
}

#[test]
fn unknown_input_field() {
    assert_eq!(
        errors(
            r#"network t
input 3x32x32
conv in.x k=3
"#
        ),
        r#"error: unknown field `in.x`
  ┌─ test.net:3:9
  │
3 │ conv in.x k=3
  │         ^ expected `c`, `h` or `w`
  │
  = help: `in.c`, `in.h` and `in.w` are the statement's input channels, height and width

error: could not compile `test.net` (1 error)"#
    );
}

#[test]
fn missing_header_and_input() {
    assert_eq!(
        errors(
            r#"conv 16 k=3
"#
        ),
        r#"error: missing `network` header
  ┌─ test.net:1:1
  │
1 │ conv 16 k=3
  │ ^ the file must start with the network's name
  │
  = help: add a first line such as `network mynet(classes = 10)`

error: missing `input` line
  ┌─ test.net:1:1
  │
1 │ conv 16 k=3
  │ ^ the network needs its input shape
  │
  = help: add a line such as `input 3x224x224` after the header

error: could not compile `test.net` (2 errors)"#
    );
}

/// `--set` of a parameter the network does not have.
#[test]
fn unknown_parameter_in_set() {
    assert_eq!(
        errors_with(
            r#"network t(classes = 10)
input 3x32x32
flatten
linear classes
"#,
            &set(&[("clases", 100), ("depth", 3)])
        ),
        r#"error: `--set clases`: the network has no parameter `clases`
  ┌─ test.net:1:9
  │
1 │ network t(classes = 10)
  │         ^ parameters: classes
  │
  = help: did you mean `classes`?

error: `--set depth`: the network has no parameter `depth`
  ┌─ test.net:1:9
  │
1 │ network t(classes = 10)
  │         ^ parameters: classes

error: could not compile `test.net` (2 errors)"#
    );
}

/// `meta` lines: only at top level, a string or a number, strings closed on
/// their line.
#[test]
fn meta_line_syntax() {
    assert_eq!(
        errors(
            "network t
input 3x8x8
{ meta x = 1 }
meta paper = \"Unclosed
meta x = foo
"
        ),
        r#"error: `meta` is not allowed here
  ┌─ test.net:3:3
  │
3 │ { meta x = 1 }
  │   ^^^^ not a statement inside a body
  │
  = help: this line belongs at the top level of the file

error: unterminated string
  ┌─ test.net:4:14
  │
4 │ meta paper = "Unclosed
  │              ^^^^^^^^^ this string has no closing `"` on its line
  │
  = help: close the string with `"` before the end of the line

error: expected a string such as `"imagenet"` or a number, found `foo`
  ┌─ test.net:5:10
  │
5 │ meta x = foo
  │          ^^^ expected a string such as `"imagenet"` or a number

error: could not compile `test.net` (3 errors)"#
    );
}

#[test]
fn meta_key_given_twice() {
    assert_eq!(
        errors("network t\ninput 3x8x8\nrelu\nmeta top1 = 76.1\nmeta top1 = 77\n"),
        r#"error: `meta top1` is given twice
  ┌─ test.net:5:6
  │
5 │ meta top1 = 77
  │      ^^^^ second value
  │
  = help: give each `meta` key once
  = note: the first is at test.net:4:6

error: could not compile `test.net` (1 error)"#
    );
}

/// The values of `meta` lines, as tools read them.
#[test]
fn meta_values() {
    let net = dsl::compile(
        "test.net",
        "network t\ninput 3x8x8\nrelu\nmeta top1 = 76.13\nmeta dataset = \"imagenet\"\nmeta year = 2016\n",
        &Overrides::default(),
    )
    .expect("compiles");
    assert_eq!(net.meta_number("top1"), Some(76.13));
    assert_eq!(net.meta_number("year"), Some(2016.0));
    assert_eq!(net.meta_text("dataset"), Some("imagenet"));
    assert_eq!(net.meta_text("top1"), None);
    assert_eq!(net.meta_number("dataset"), None);
    assert_eq!(net.meta_number("top5"), None);
}

#[test]
fn meta_keys_and_values_are_checked() {
    let text = "network t\ninput 3x8x8\nconv 4 k=3\nmeta top_1 = 50\nmeta top5 = 150\n";
    assert_eq!(
        errors(text),
        "\
error: unknown `meta` key `top_1`
  ┌─ test.net:4:6
  │
4 │ meta top_1 = 50
  │      ^^^^^ not a key cnncost knows
  │
  = help: one of: paper, year, dataset, top1, top5, accuracy_source, source, url
  = help: did you mean `top1`?

error: `meta top5` needs a percentage between 0 and 100
  ┌─ test.net:5:1
  │
5 │ meta top5 = 150
  │ ^^^^^^^^^^^^^^^ expected a percentage between 0 and 100

error: could not compile `test.net` (2 errors)"
    );
}

#[test]
fn a_tolerance_needs_approx_and_output_needs_equals() {
    let text =
        "network t\ninput 3x8x8\nconv 4 k=3\nexpect params = 100 ± 5\nexpect output < 1000\n";
    assert_eq!(
        errors(text),
        "\
error: a tolerance needs `~`
  ┌─ test.net:4:1
  │
4 │ expect params = 100 ± 5
  │ ^^^^^^^^^^^^^^^^^^^^^^^ `=` compares exactly, with no tolerance
  │
  = help: write `expect QUANTITY ~ VALUE ± TOLERANCE`

error: `expect output` compares shapes with `=`
  ┌─ test.net:5:1
  │
5 │ expect output < 1000
  │ ^^^^^^^^^^^^^^^^^^^^ `<` has no meaning for a shape
  │
  = help: write e.g. `expect output = 1000` or `expect output = 512x7x7`

error: could not compile `test.net` (2 errors)"
    );
}

#[test]
fn in_fields_have_no_value_in_expect_lines() {
    let text = "network t\ninput 3x8x8\nflatten\nexpect params = in.c - 3\n";
    assert_eq!(
        errors(text),
        "\
error: `in.c` has no value here
  ┌─ test.net:4:17
  │
4 │ expect params = in.c - 3
  │                 ^^^^ no input shape is known at this point
  │
  = help: `in.c`/`in.h`/`in.w` can be used in the arguments of ops and block calls

error: could not compile `test.net` (1 error)"
    );
}

/// `+-` is read as `±`, relative tolerances in percent; `%` is the
/// remainder of floor division, so (a/b)*b + a%b == a for every sign; a
/// label may be named `input` at the top level too.
#[test]
fn tolerances_remainders_and_an_input_label() {
    let text = "network t(a = 7, b = -2)
input 3x8x8
input: conv 4 k=3
c: conv (a/b)*b + a%b k=1
expect params ~ 110 +- 2%
expect params ~ 150 +- 10
";
    let net = dsl::compile("t.net", text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(net.node_by_name("input").is_some());
    let c = net.node_by_name("c").unwrap();
    assert_eq!(net.graph[c].shape.channels(), 7);
    let a = analyzer::analyze(&net, analyzer::Options::default()).unwrap();
    // conv 4 k=3: 112 params; conv 7 k=1 on 4 channels: 35.
    assert_eq!(a.totals.params, 147);
    let outcomes = analyzer::expect::evaluate(&a);
    assert!(!outcomes[0].pass, "147 is not within 2% of 110");
    assert!(outcomes[1].pass, "147 is within 10 of 150");
    assert_eq!(outcomes[0].allowed, Some(2.2));
}

/// A text over the size limit is refused before it is lexed, whoever calls
/// the compiler (the binary refuses such a file before reading it).
#[test]
fn a_text_over_the_size_limit_is_refused() {
    let text = format!(
        "network t\ninput 3x8x8\n{}",
        "relu\n".repeat(dsl::MAX_SOURCE_BYTES as usize / 5 + 1)
    );
    assert_eq!(
        errors(&text),
        r#"error: the text is larger than 4 MiB, the limit for a .net file
  ┌─ test.net:1:1
  │
1 │ network t
  │ ^
  │
  = help: write large networks with `repeat` and blocks (docs/language.md, "Limits")

error: could not compile `test.net` (1 error)"#
    );
}
