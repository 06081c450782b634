//! Streamed Monte Carlo VaR/ES with full revaluation: 1,000,000 paths x 100
//! options on 5 correlated underlyings (the book of
//! `examples/monte_carlo_var.rs`), on all threads of the default pool.
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
    group.bench_function("1M paths x 100 options, full revaluation", |b| {
        b.iter(|| {
            black_box(
                monte_carlo_risk(
                    &s.book,
                    &s.instruments,
                    &s.market,
                    &s.generator,
                    Confidence::new(0.99).unwrap(),
                    Revaluation::Full,
                )
                .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
