//! Every example of docs/language.md is checked against the implementation.
//!
//! The document's fenced code blocks are read by their info string:
//!
//! - ` ```net [file=NAME]`: a whole `.net` file. It must compile, and every
//!   `expect` line in it must pass.
//! - ` ```net-fragment`: statements or definitions that are not a whole file.
//!   They are compiled after the header `network t` / `input 3x32x32`, and
//!   must compile; their `expect` lines, if any, must pass.
//! - ` ```net-error [file=NAME]`: a file that must fail to compile.
//! - ` ```text names`, right after a `net` or `net-fragment` block: one op per
//!   line, `NAME [KIND [SHAPE]]`, in execution order. The names (and the op
//!   kinds and output shapes, where given) must equal the compiled graph's,
//!   the input node left out.
//! - ` ```text error`, right after a `net-error` block: the rendered errors,
//!   exactly as `cnncost` prints them (the block's `file=` names the file).
//! - ` ```text check`, right after a `net` block: the output of
//!   `cnncost check NAME` on that block, saved as its `file=` name.
//! - ` ```text approx`: one `expect` line per line, then `# ± ALLOWED`.
//!   The difference `cnncost check` allows for the line (a `~` line's
//!   tolerance or rounding) must equal `ALLOWED`.
//! - a plain ` ```text` or ` ```sh` block is prose and not checked.
//!
//! A fence without an info string, or of any other kind, is itself a
//! failure: no example is skipped silently.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a `net-fragment` block is compiled after.
const FRAGMENT_HEADER: &str = "network t\ninput 3x32x32\n";

/// The name a block is compiled under when it gives no `file=`.
const DEFAULT_FILE: &str = "example.net";

#[derive(Debug)]
struct Block {
    /// The info string after the opening fence, trimmed.
    info: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

impl Block {
    fn kind(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }
    /// The second word of the info string (`names` in "text names").
    fn role(&self) -> &str {
        self.info.split_whitespace().nth(1).unwrap_or("")
    }
    fn attr(&self, key: &str) -> Option<&str> {
        self.info
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
    fn file(&self) -> &str {
        self.attr("file").unwrap_or(DEFAULT_FILE)
    }
}

/// The fenced code blocks of a Markdown text (fences at the start of a line).
fn blocks(doc: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                open = Some(Block {
                    info: line.trim_start()[3..].trim().to_string(),
                    line: i + 1,
                    text: String::new(),
                });
            }
            (Some(_), true) => out.extend(open.take()),
            (Some(b), false) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, false) => {}
        }
    }
    match open {
        Some(b) => Err(format!("line {}: unclosed code block", b.line)),
        None => Ok(out),
    }
}

/// How many blocks of each checked kind a document has.
#[derive(Debug, Default)]
struct Counts {
    net: usize,
    fragments: usize,
    errors: usize,
    names: usize,
    error_texts: usize,
    checks: usize,
    approx: usize,
}

/// The result of compiling the last `net`/`net-fragment`/`net-error` block,
/// for the `text` block that may follow it.
enum Previous {
    None,
    Compiled {
        file: String,
        text: String,
        net: Box<dsl::Network>,
    },
    Failed {
        rendered: String,
    },
}

/// Checks every example of `doc`; returns the failures, one message each.
/// `cnncost` is the binary that `text check` blocks run.
fn check(doc: &str, cnncost: &Path) -> (Vec<String>, Counts) {
    let mut failures = Vec::new();
    let mut counts = Counts::default();
    let blocks = match blocks(doc) {
        Ok(b) => b,
        Err(e) => return (vec![e], counts),
    };
    let mut previous = Previous::None;
    for b in &blocks {
        let at = format!("line {} (```{})", b.line, b.info);
        let problems = match (b.kind(), b.role()) {
            ("net", _) => {
                counts.net += 1;
                let (p, problems) = compile_example(b, b.text.clone());
                previous = p;
                problems
            }
            ("net-fragment", _) => {
                counts.fragments += 1;
                let (p, problems) = compile_example(b, format!("{FRAGMENT_HEADER}{}", b.text));
                previous = p;
                problems
            }
            ("net-error", _) => {
                counts.errors += 1;
                match dsl::compile(b.file(), &b.text, &dsl::Overrides::default()) {
                    Ok(_) => {
                        previous = Previous::None;
                        vec!["compiles, but is shown as an error".to_string()]
                    }
                    Err(e) => {
                        previous = Previous::Failed {
                            rendered: e.to_string(),
                        };
                        Vec::new()
                    }
                }
            }
            ("text", "names") => {
                counts.names += 1;
                match &previous {
                    Previous::Compiled { net, .. } => {
                        compare_names(net, &b.text).into_iter().collect()
                    }
                    _ => vec!["no compiled `net` block right before this names list".to_string()],
                }
            }
            ("text", "error") => {
                counts.error_texts += 1;
                match &previous {
                    Previous::Failed { rendered } if trimmed(rendered) == trimmed(&b.text) => {
                        Vec::new()
                    }
                    Previous::Failed { rendered } => {
                        vec![format!(
                            "the error text differs; the tool prints:\n{rendered}"
                        )]
                    }
                    _ => vec!["no failing `net-error` block right before this error text".into()],
                }
            }
            ("text", "check") => {
                counts.checks += 1;
                match &previous {
                    Previous::Compiled { file, text, .. } => match run_check(cnncost, file, text) {
                        Ok(out) if trimmed(&out) == trimmed(&b.text) => Vec::new(),
                        Ok(out) => vec![format!("`cnncost check {file}` prints instead:\n{out}")],
                        Err(e) => vec![e],
                    },
                    _ => vec!["no compiled `net` block right before this check output".into()],
                }
            }
            ("text", "approx") => {
                counts.approx += 1;
                b.text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .filter_map(check_allowed)
                    .collect()
            }
            ("text", "") | ("sh", _) => Vec::new(),
            ("text", role) => vec![format!(
                "unknown kind of text `{role}` (names, error, check or none)"
            )],
            ("", _) => vec![
                "a code block needs an info string: net, net-fragment, net-error, text or sh"
                    .into(),
            ],
            (kind, _) => vec![format!("unknown kind of code block `{kind}`")],
        };
        failures.extend(problems.into_iter().map(|p| format!("{at}: {p}")));
        // A `text` block refers only to the block right before it.
        if b.kind() == "text" {
            previous = Previous::None;
        }
    }
    (failures, counts)
}

/// Compiles a `net` or `net-fragment` example (`text` is the whole file)
/// and evaluates its `expect` lines.
fn compile_example(b: &Block, text: String) -> (Previous, Vec<String>) {
    match dsl::compile(b.file(), &text, &dsl::Overrides::default()) {
        Ok(net) => {
            let problems = failed_expects(&net);
            let previous = Previous::Compiled {
                file: b.file().to_string(),
                text,
                net: Box::new(net),
            };
            (previous, problems)
        }
        Err(e) => (Previous::None, vec![format!("does not compile:\n{e}")]),
    }
}

/// The `expect` lines of `net` that do not hold.
fn failed_expects(net: &dsl::Network) -> Vec<String> {
    let a = match analyzer::analyze(net, analyzer::Options::default()) {
        Ok(a) => a,
        Err(d) => return vec![format!("analysis fails: {}", d.render(&net.source))],
    };
    analyzer::expect::evaluate(&a)
        .into_iter()
        .filter(|o| !o.pass)
        .map(|o| {
            format!(
                "`{}` fails (actual {})",
                o.expectation.text.trim(),
                o.actual
            )
        })
        .collect()
}

/// Checks one line `expect ... # ± ALLOWED` of a `text approx` block.
fn check_allowed(line: &str) -> Option<String> {
    let Some((expect, comment)) = line.split_once('#') else {
        return Some(format!("`{line}`: no `# ± ALLOWED` comment"));
    };
    // ALLOWED is read with the language's own number rules (`0.5M`).
    let word = comment.trim().strip_prefix('±')?.split_whitespace().next();
    let (tokens, _) = dsl::lexer::lex(word.unwrap_or(""));
    let Some(dsl::lexer::Tok::Number { value: want, .. }) = tokens.first().map(|t| &t.tok) else {
        return Some(format!("`{line}`: the comment must start with `± NUMBER`"));
    };
    let text = format!("network t\ninput 1x1x1\nflatten\n{expect}\n");
    let net = match dsl::compile("approx.net", &text, &dsl::Overrides::default()) {
        Ok(net) => net,
        Err(e) => return Some(format!("`{line}` does not compile:\n{e}")),
    };
    let a = analyzer::analyze(&net, analyzer::Options::default()).ok()?;
    let outcomes = analyzer::expect::evaluate(&a);
    match outcomes.first().and_then(|o| o.allowed) {
        Some(got) if (got - want).abs() <= want.abs() * 1e-9 => None,
        got => Some(format!(
            "`{line}`: the allowed difference is {got:?}, not {want}"
        )),
    }
}

/// Compares a `text names` list with the graph's ops in execution order.
fn compare_names(net: &dsl::Network, listing: &str) -> Option<String> {
    let actual: Vec<(String, String, String)> = net
        .graph
        .node_indices()
        .map(|n| &net.graph[n])
        .filter(|n| n.op != dsl::Op::Input)
        .map(|n| {
            (
                n.name.to_string(),
                n.op.kind().to_string(),
                n.shape.to_string(),
            )
        })
        .collect();
    let expected: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let table = || {
        actual
            .iter()
            .map(|(n, k, s)| format!("{n:<24} {k:<16} {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if expected.len() != actual.len() {
        return Some(format!(
            "lists {} ops, the network has {}:\n{}",
            expected.len(),
            actual.len(),
            table()
        ));
    }
    for (row, (name, kind, shape)) in expected.iter().zip(&actual) {
        let want = [name.as_str(), kind.as_str(), shape.as_str()];
        if row.len() > 3 || row.iter().zip(want).any(|(e, a)| *e != a) {
            return Some(format!(
                "`{}` differs from `{name} {kind} {shape}`; the network's ops:\n{}",
                row.join(" "),
                table()
            ));
        }
    }
    None
}

/// Runs `cnncost check FILE` on `text` saved under `file` in a fresh folder.
fn run_check(cnncost: &Path, file: &str, text: &str) -> Result<String, String> {
    // One folder per run: the tests of this file run in parallel.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cnncost-docs-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    let out = Command::new(cnncost)
        .arg("check")
        .arg(file)
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cnncost.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// The text with trailing blanks and blank lines at either end removed.
fn trimmed(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn cnncost() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cnncost"))
}

#[test]
fn every_example_of_the_language_reference_holds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/language.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (failures, counts) = check(&doc, cnncost());
    assert!(
        failures.is_empty(),
        "{} failing example(s) in docs/language.md:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The document is example-driven: a parse of it that finds (almost)
    // nothing means the fences changed, not that everything passed.
    assert!(counts.net >= 8, "too few ```net examples: {counts:?}");
    assert!(
        counts.fragments >= 5,
        "too few ```net-fragment examples: {counts:?}"
    );
    assert!(
        counts.errors >= 3,
        "too few ```net-error examples: {counts:?}"
    );
    assert!(counts.names >= 4, "too few ```text names lists: {counts:?}");
    assert!(
        counts.error_texts >= 2,
        "too few ```text error outputs: {counts:?}"
    );
    assert!(counts.checks >= 1, "no ```text check output: {counts:?}");
    assert!(counts.approx >= 1, "no ```text approx lines: {counts:?}");
}

/// The checker itself must catch a broken example of each kind.
#[test]
fn the_checker_catches_broken_examples() {
    let bad = [
        // An op the language does not have.
        "```net\nnetwork t\ninput 3x8x8\nconvv 8 k=3\n```\n",
        // A failing expect line.
        "```net\nnetwork t\ninput 3x8x8\nconv 8 k=3\nexpect depth = 2\n```\n",
        // A fragment that does not parse.
        "```net-fragment\nconv 8 k=3 |\n```\n",
        // An error example that compiles.
        "```net-error\nnetwork t\ninput 3x8x8\nconv 8 k=3\n```\n",
        // Wrong names, wrong kind, wrong shape, too few names.
        "```net-fragment\nconv 8 k=3 | relu\n```\n```text names\n0\nx\n```\n",
        "```net-fragment\nconv 8 k=3 | relu\n```\n```text names\n0 conv\n1 gelu\n```\n",
        "```net-fragment\nconv 8 k=3\n```\n```text names\n0 conv 8x32x32\n```\n",
        "```net-fragment\nconv 8 k=3 | relu\n```\n```text names\n0\n```\n",
        // A names list with no network before it.
        "```text names\n0\n```\n",
        // An error text that is not what the tool prints.
        concat!(
            "```net-error\nnetwork t\ninput 3x8x8\nconvv 8 k=3\n```\n",
            "```text error\nerror: something else\n```\n"
        ),
        // A check output that is not what `cnncost check` prints.
        concat!(
            "```net file=t.net\nnetwork t\ninput 3x8x8\nflatten\nexpect output = 192\n```\n",
            "```text check\nok   t.net:4: expect output = 192  (actual 193)\n",
            "1 passed, 0 failed\n```\n"
        ),
        // A wrong allowed difference for `~`, and a line without one.
        "```text approx\nexpect params ~ 61M   # ± 0.05M\n```\n",
        "```text approx\nexpect params ~ 61M\n```\n",
        "```text approx\nexpect params = 61M   # ± 0.5M\n```\n",
        // A misspelt kind of text block.
        "```net-fragment\nconv 8 k=3\n```\n```text nmes\n0\n```\n",
        // Fences without a kind, or of an unknown kind.
        "```\nnetwork t\n```\n",
        "```nett\nnetwork t\n```\n",
        // An unclosed fence.
        "```net\nnetwork t\n",
    ];
    for doc in bad {
        let (failures, _) = check(doc, cnncost());
        assert!(!failures.is_empty(), "no failure reported for:\n{doc}");
    }
    let good = concat!(
        "```text approx\nexpect params ~ 61M   # ± 0.5M\n```\n",
        "```net-fragment\nstem: conv 8 k=3 | relu\n```\n",
        "```text names\nstem conv 8x30x30\nstem.relu relu\n```\n",
        "```net file=t.net\nnetwork t\ninput 3x8x8\nflatten\nexpect output = 192\n```\n",
        "```text check\nok   t.net:4: expect output = 192  (actual 192)\n",
        "1 passed, 0 failed\n```\n"
    );
    let (failures, counts) = check(good, cnncost());
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        (counts.fragments, counts.names, counts.checks, counts.approx),
        (1, 1, 1, 1)
    );
}
