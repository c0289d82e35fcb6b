//! What a compile costs per op and per byte of source (issue 15, item 3:
//! "memory is unbounded before the op limit"). A counting allocator
//! measures the bytes a compiled network holds, and the peak while
//! compiling, for a network built by `repeat` and for networks written out
//! line by line, the worst a file can do per byte (docs/language.md,
//! "Limits").
//!
//! One test in this file: the allocator counts the whole process.

mod support {
    pub mod counting_alloc;
}
use support::counting_alloc::{live, peak, reset_peak, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A compiled network may hold at most this many bytes per op. Names were
/// stored twice before (node and row, and a third time while compiling),
/// 360-400 bytes per op for a network written out.
const HELD_PER_OP: usize = 320;

/// A file at the size limit, of the worst kind, or a `repeat` at the op
/// limit, may take at most this much at the peak of its compile (with the
/// limits of before, 16 MiB and 5,000,000 ops: 2.4 and 1.6 GB).
const PEAK_AT_LIMIT: u64 = 1 << 30;

struct Compiled {
    ops: usize,
    held: usize,
    peak: usize,
}

fn measure(text: &str) -> Compiled {
    let before = live();
    reset_peak();
    let net = dsl::compile("t.net", text, &Default::default()).expect("compiles");
    let held = live() - before;
    let peak = peak() - before;
    let ops = net.graph.node_count();
    drop(net);
    Compiled { ops, held, peak }
}

fn written_out(line: &str, times: usize) -> String {
    format!("network w\ninput 16x8x8\n{}", line.repeat(times))
}

#[test]
fn a_compile_holds_little_per_op_and_a_file_at_the_limit_stays_under_a_gigabyte() {
    let cases = [
        (
            "repeat",
            "network r\ninput 16x8x8\nrepeat 100000 { conv 16 k=3 p=1 | relu }\n".to_string(),
        ),
        (
            "conv lines",
            written_out("conv 16 k=3 p=1 | relu\n", 100_000),
        ),
        ("relu lines", written_out("relu\n", 200_000)),
        (
            "one chain",
            written_out("|relu", 200_000).replacen('|', "", 1),
        ),
    ];
    let mut failures = Vec::new();
    for (what, text) in &cases {
        let c = measure(text);
        let held_per_op = c.held / c.ops;
        // A file's worst case is per byte (a token per byte, a tree per
        // statement); a `repeat`'s is per op, up to the op limit.
        let at_limit = match *what {
            "repeat" => (c.peak / c.ops * dsl::elaborate::MAX_OPS) as u64,
            _ => (c.peak as f64 / text.len() as f64 * dsl::MAX_SOURCE_BYTES as f64) as u64,
        };
        eprintln!(
            "{what:>12}: {} ops, {held_per_op} bytes per op held, peak {} per op, {} MB for a file at the limit",
            c.ops,
            c.peak / c.ops,
            at_limit >> 20
        );
        if held_per_op > HELD_PER_OP {
            failures.push(format!("{what}: {held_per_op} bytes per op held"));
        }
        if at_limit > PEAK_AT_LIMIT {
            failures.push(format!("{what}: {} MB at the limit", at_limit >> 20));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
