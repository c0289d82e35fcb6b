//! Every command shown in docs/review.md is run, and its output must be
//! the one the document shows.
//!
//! A ` ```console` block is one command: its first line `$ cnncost ARGS`
//! (single quotes group words, as in a shell), then the output, standard
//! output first and standard error after it, then `[exit status N]` when
//! the status is not 0. Any other block is prose.

use std::process::Command;

struct Example {
    line: usize,
    args: Vec<String>,
    expected: String,
}

/// Words of a command line; `'...'` is one word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((i, l)) = lines.next() {
        if l.trim() != "```console" {
            continue;
        }
        let (_, command) = lines.next().expect("a command after ```console");
        let rest = command
            .strip_prefix("$ cnncost ")
            .unwrap_or_else(|| panic!("line {}: `$ cnncost ...` expected", i + 2));
        let mut expected = String::new();
        for (_, l) in lines.by_ref() {
            if l == "```" {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
        }
        out.push(Example {
            line: i + 1,
            args: words(rest),
            expected,
        });
    }
    out
}

#[test]
fn every_command_in_the_review_guide_prints_what_it_shows() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/review.md")).unwrap();
    let all = examples(&doc);
    assert!(all.len() >= 3, "the guide's examples were not found");
    let mut failures = Vec::new();
    for e in all {
        let o = Command::new(env!("CARGO_BIN_EXE_cnncost"))
            .current_dir(root)
            .args(&e.args)
            .output()
            .unwrap();
        let mut got = String::from_utf8_lossy(&o.stdout).into_owned();
        got.push_str(&String::from_utf8_lossy(&o.stderr));
        match o.status.code() {
            Some(0) => {}
            Some(c) => got.push_str(&format!("[exit status {c}]\n")),
            None => got.push_str("[killed]\n"),
        }
        if got != e.expected {
            failures.push(format!(
                "docs/review.md:{}: `cnncost {}` printed:\n{got}",
                e.line,
                e.args.join(" ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
