//! Inputs a hostile user gives (issue 15), each refused with a clear error
//! rather than a crash, an endless read or an unbounded allocation, and
//! kills at any moment of a run.
//!
//! The campaign's other cases live beside the code they test: bad data
//! files in data/tests/malformed.rs; bad settings files in
//! tests/docs_training.rs and here; corrupt and non-finite checkpoints,
//! concurrent writers, changed settings on resume and unreadable logs in
//! tests/training.rs; the run directory's lock in runtime/src/run_dir.rs;
//! sizes in tests/ir_memory.rs.

mod support {
    pub mod run_weights;
}
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::run_weights::run_weights;

/// Runs cnncost, killing it if it runs past `limit` (an endless read would
/// otherwise hang the suite).
fn cnncost_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnncost"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let start = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("cnncost {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cnncost-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn devices_and_directories_are_not_read() {
    for path in ["/dev/zero", "/dev/urandom", "docs"] {
        if !std::path::Path::new(path).exists() {
            continue;
        }
        let o = cnncost_within(&[path], Duration::from_secs(20));
        assert_eq!(o.status.code(), Some(1), "{path}");
        assert!(
            stderr(&o).contains("not a regular file"),
            "{path}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
    let p = temp("huge.net");
    let line = "conv 16 k=3 p=1 | relu\n";
    let text = format!(
        "network huge\ninput 3x8x8\n{}",
        line.repeat((5 << 20) / line.len())
    );
    std::fs::write(&p, text).unwrap();
    let start = Instant::now();
    let o = cnncost_within(&[p.to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("larger than 4 MiB"), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(5), "refused late");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let p = temp("bom.net");
    std::fs::write(&p, "\u{feff}network bom\ninput 3x8x8\nconv 4 k=3 | relu\n").unwrap();
    let o = cnncost_within(&[p.to_str().unwrap()], Duration::from_secs(20));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn text_that_is_not_utf8_is_named_so() {
    let p = temp("latin1.net");
    std::fs::write(&p, b"network x\ninput 3x8x8\n# caf\xe9\nrelu\n").unwrap();
    let o = cnncost_within(&[p.to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
}

/// Issue 15, item 7: settings that make no sense are refused before a run,
/// each at its line of the config file.
#[test]
fn nonsense_settings_are_refused_at_their_line() {
    let cfg = temp("bad.yaml");
    std::fs::write(
        &cfg,
        "epochs: 2\n# decay\nweight_decay: -1\nschedule: multistep\nmilestones: [3, 1]\n",
    )
    .unwrap();
    let out = temp("bad-run");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "cifar_small",
            "--set",
            "width=8",
            "--data",
            "synthetic:100",
            "--quiet",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cnncost_within(&args, Duration::from_secs(60))
    };
    let o = train(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let at = |line: usize| format!("{}:{line}: ", cfg.display());
    assert!(err.contains(&format!("{}`weight_decay`", at(3))), "{err}");
    assert!(err.contains(&format!("{}`milestones`", at(5))), "{err}");
    assert!(!out.join("metrics.jsonl").exists(), "nothing ran");

    std::fs::write(&cfg, "augment:\n  cutout: 1000\n").unwrap();
    let o = train(&["--force"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("`cutout` (1000) is larger than the images (32x32)"),
        "{}",
        stderr(&o)
    );

    for args in [
        &[
            "train",
            "cifar_small",
            "--data",
            "synthetic:100",
            "--overfit",
            "0",
        ][..],
        &["predict", "lenet5", "--weights", "x", "--top", "0", "x.png"][..],
    ] {
        let o = cnncost_within(args, Duration::from_secs(60));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

/// Issue 15, item 4: what cannot fit in memory is refused with its size and
/// cause, never an allocator abort (exit 134).
#[test]
fn allocations_larger_than_the_machine_are_refused_not_aborted() {
    let out = temp("huge-run");
    let huge = temp("huge-conv.net");
    std::fs::write(
        &huge,
        "network huge\ninput 3x32x32\nconv 99999999999 k=3\ngap\nflatten\nlinear 10\n",
    )
    .unwrap();
    let wide = temp("wide-conv.net");
    std::fs::write(
        &wide,
        "network wide\ninput 3x32x32\nconv 100000 k=3 p=1 | relu\ngap\nflatten\nlinear 10\n",
    )
    .unwrap();
    for (args, says) in [
        (
            vec!["train", huge.to_str().unwrap(), "--data", "synthetic:100"],
            "training huge at batch 128",
        ),
        (
            vec!["train", wide.to_str().unwrap(), "--data", "synthetic:100"],
            "training wide at batch 128",
        ),
        (
            vec!["train", "cifar_small", "--data", "synthetic:10000000000"],
            "synthetic:10000000000 needs",
        ),
    ] {
        let mut args = args;
        args.extend(["--quiet", "--force", "--out", out.to_str().unwrap()]);
        let o = cnncost_within(&args, Duration::from_secs(60));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.contains("available"),
            "{args:?}: {err}"
        );
    }
}

/// Issue 15, item 10: an error on a line of megabytes shows a window of the
/// line, not all of it.
#[test]
fn an_error_on_a_huge_line_shows_a_window() {
    let p = temp("one-line.net");
    let body = "relu | ".repeat(300_000);
    std::fs::write(&p, format!("network x\ninput 3x8x8\n{body}relux\n")).unwrap();
    let o = cnncost_within(&[p.to_str().unwrap()], Duration::from_secs(60));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    assert!(
        err.contains(&format!("one-line.net:3:{}", body.len() + 1)),
        "{err}"
    );
    assert!(err.contains("^^^^^ not an op of the language"), "{err}");
}

/// Issue 15: SIGKILLs at any moment of a run (in a step, in a checkpoint
/// or log write, in a resume) never leave an unloadable checkpoint or a
/// torn metrics line, and resuming after each ends with exactly the
/// weights of a run never interrupted.
#[test]
fn kills_at_any_moment_lose_nothing_and_resumes_end_identical() {
    let dir = temp("kills");
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let args = |out: &std::path::Path, how: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "cifar_small",
            "--set",
            "width=8",
            "--data",
            "synthetic:200",
            "--epochs",
            "6",
            "--batch-size",
            "50",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(how.iter().map(|s| s.to_string()));
        if !how.contains(&"--resume") {
            a.extend(["--force".to_string(), "--out".to_string()]);
            a.push(out.to_str().unwrap().to_string());
        }
        a
    };
    let run = |a: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_cnncost"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(a)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs")
    };
    let o = run(&args(&whole, &[])).wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = run_weights(&whole);

    // Kill after a growing delay, then resume (or start over when no
    // checkpoint was written yet), until a run ends by itself.
    let checkpoint = killed.join(runtime::train::CHECKPOINT);
    let mut kills = 0;
    for delay_ms in (1..).map(|k| 40 * k) {
        let how: Vec<&str> = if checkpoint.exists() {
            vec!["--resume", killed.to_str().unwrap()]
        } else {
            vec![]
        };
        let mut child = run(&args(&killed, &how));
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            if checkpoint.exists() {
                run_weights(&killed);
            }
            if let Ok(log) = std::fs::read_to_string(killed.join(runtime::train::METRICS)) {
                for line in log.lines() {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("a torn metrics line {line:?}: {e}"));
                }
            }
            continue;
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "after {kills} kills: {}", stderr(&o));
        break;
    }
    eprintln!("{kills} kills, each followed by a resume");
    assert!(
        kills >= 3,
        "only {kills} kills: the run is too short to test"
    );
    assert!(
        run_weights(&killed) == expected,
        "after {kills} kills the resumed run ended with other weights"
    );
}
