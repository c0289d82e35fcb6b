//! Parse + elaborate + analyze time for ResNet-50 and for generated chains of
//! 10k, 100k and 1M ops (`repeat N { conv 64 k=3 p=1 | relu }`). Targets
//! (issue 2): ResNet-50 under 2 ms, 1M ops under 2 s, time linear in size:
//! criterion's throughput line (ops/s) should stay flat across sizes.
//!
//! Then every output format of the 1M-op chain (issue 17): each must take
//! under 2 s, at no more than 1.5x the analysis's own peak memory. Before
//! the timings, a report gives each format's peak (a counting allocator)
//! against the compile and analysis's peak, measured in this process.

use analyzer::render::{self, Columns};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// The formats of `cnncost NET --format F`, written to `out`.
const FORMATS: [&str; 4] = ["table", "markdown", "csv", "json"];

fn write_format(out: &mut dyn Write, a: &analyzer::Analysis, format: &str) {
    // What `cnncost NET` does: the rows (JSON lists ops, not rows), then
    // the format's writer.
    let rows = match format {
        "json" => Vec::new(),
        _ => analyzer::rows::rows(a, 1),
    };
    let cols = Columns::default();
    match format {
        "table" => render::write_table(out, a, &rows, cols),
        "markdown" => render::write_markdown(out, a, &rows, cols),
        "csv" => render::write_csv(out, a, &rows, cols),
        _ => render::write_json(out, a),
    }
    .expect("writes");
}

/// Peak bytes of the compile and analysis of `text`, and of each format
/// written after it (the whole process's peak, the analysis held).
fn memory_report(text: &str) {
    let before = counting_alloc::live();
    counting_alloc::reset_peak();
    let net = dsl::compile("bench.net", text, &dsl::Overrides::default()).expect("compiles");
    let a = analyzer::analyze(&net, analyzer::Options::default()).expect("analyzes");
    let analysis_peak = counting_alloc::peak() - before;
    let mb = |b: usize| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "memory, 1M ops: compile and analysis peak {:.0} MiB",
        mb(analysis_peak)
    );
    for format in FORMATS {
        counting_alloc::reset_peak();
        let start = std::time::Instant::now();
        write_format(&mut std::io::sink(), &a, format);
        let peak = counting_alloc::peak() - before;
        eprintln!(
            "  --format {format:<8}: peak {:.0} MiB, {:.2}x the analysis's (goal <= 1.5x), {:.2} s once",
            mb(peak),
            peak as f64 / analysis_peak as f64,
            start.elapsed().as_secs_f64()
        );
    }
}

fn parse_and_analyze(text: &str) -> u64 {
    let net = dsl::compile("bench.net", text, &dsl::Overrides::default()).expect("compiles");
    let a = analyzer::analyze(&net, analyzer::Options::default()).expect("analyzes");
    a.totals.macs
}

/// A chain of `ops` ops: `ops / 2` repeats of a conv and a ReLU.
pub fn generated(ops: usize) -> String {
    format!(
        "network generated\ninput 64x8x8\nrepeat {} {{ conv 64 k=3 p=1 | relu }}\n",
        ops / 2
    )
}

fn bench(c: &mut Criterion) {
    let resnet50 =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/zoo/resnet50.net"))
            .expect("zoo/resnet50.net");
    c.bench_function("resnet50", |b| {
        b.iter(|| parse_and_analyze(black_box(&resnet50)))
    });

    let mut group = c.benchmark_group("generated");
    group.sample_size(10);
    for ops in [10_000usize, 100_000, 1_000_000] {
        let text = generated(ops);
        group.throughput(Throughput::Elements(ops as u64));
        group.bench_with_input(BenchmarkId::from_parameter(ops), &text, |b, t| {
            b.iter(|| parse_and_analyze(black_box(t)))
        });
    }
    group.finish();

    let text = generated(1_000_000);
    memory_report(&text);
    let net = dsl::compile("bench.net", &text, &dsl::Overrides::default()).expect("compiles");
    let a = analyzer::analyze(&net, analyzer::Options::default()).expect("analyzes");
    let mut group = c.benchmark_group("format_1M_ops");
    group.sample_size(10);
    for format in FORMATS {
        group.bench_function(format, |b| {
            b.iter(|| write_format(&mut std::io::sink(), black_box(&a), format))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
