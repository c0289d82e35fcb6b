//! Parse + elaborate + analyze time for ResNet-50 and for generated chains of
//! 10k, 100k and 1M ops (`repeat N { conv 64 k=3 p=1 | relu }`). Targets
//! (issue 2): ResNet-50 under 2 ms, 1M ops under 2 s, time linear in size:
//! criterion's throughput line (ops/s) should stay flat across sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

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
}

criterion_group!(benches, bench);
criterion_main!(benches);
