//! Every example of docs/training.md holds (issue 15, item 8: docs and code
//! share one spelling): each YAML block is a valid settings file, and every
//! option a command line in the document uses is one its command takes.

use std::process::Command;

const DOC: &str = include_str!("../docs/training.md");

/// The fenced blocks of the document, with their info string.
fn blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in DOC.lines() {
        match (line.strip_prefix("```"), current.take()) {
            (Some(info), None) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(block)) => out.push(block),
            (None, Some((info, mut body))) => {
                body.push_str(line);
                body.push('\n');
                current = Some((info, body));
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn every_yaml_example_is_a_valid_settings_file() {
    let yaml: Vec<String> = blocks()
        .into_iter()
        .filter(|(info, _)| info == "yaml")
        .map(|(_, body)| body)
        .collect();
    assert!(!yaml.is_empty(), "docs/training.md has no yaml block");
    for body in yaml {
        runtime::config::TrainConfig::from_yaml("docs/training.md", &body)
            .unwrap_or_else(|e| panic!("{e}\n{body}"));
    }
}

#[test]
fn every_option_of_a_command_line_exists() {
    let mut checked = 0;
    for (_, body) in blocks() {
        // Command lines, joined across backslash continuations.
        let text = body.replace("\\\n", " ");
        for line in text.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("cnncost ") else {
                continue;
            };
            let Some(command) = rest.split_whitespace().next() else {
                continue;
            };
            let help = Command::new(env!("CARGO_BIN_EXE_cnncost"))
                .args([command, "--help"])
                .output()
                .expect("runs");
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            for word in rest.split_whitespace().filter(|w| w.starts_with("--")) {
                let flag = word
                    .split(['=', '[', ']', '\''])
                    .find(|s| !s.is_empty())
                    .unwrap_or(word);
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")) || help.contains(&format!("{flag} <")),
                    "docs/training.md: `{line}` uses {flag}, which `cnncost {command}` does not take"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} options checked");
}
