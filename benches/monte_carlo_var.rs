//! Streamed Monte Carlo VaR/ES with full revaluation: 1,000,000 paths x 100
//! options on 5 correlated underlyings (the book of
//! `examples/monte_carlo_var.rs`), on a one-thread pool and on all threads of
//! the default pool (bit-identical results: `tests/determinism.rs`).
//!
//! Run: `cargo bench --bench monte_carlo_var -- --warm-up-time 1 --measurement-time 30`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portfolio_margin::*;
use std::hint::black_box;

const PATHS: usize = 1_000_000;

#[path = "common/mc_book.rs"]
mod mc_book;
use mc_book::setup;

fn bench(c: &mut Criterion) {
    let s = setup(PATHS).unwrap();
    let mut group = c.benchmark_group("monte_carlo_var");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        (PATHS * s.book.positions().len()) as u64,
    ));
    let run = || {
        monte_carlo_risk(
            &s.book,
            &s.instruments,
            &s.market,
            &s.generator,
            Confidence::new(0.99).unwrap(),
            Revaluation::Full,
        )
        .unwrap()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function(
        "1M paths x 100 options, full revaluation, one thread",
        |b| one.install(|| b.iter(|| black_box(run()))),
    );
    group.bench_function(
        "1M paths x 100 options, full revaluation, all threads",
        |b| b.iter(|| black_box(run())),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
