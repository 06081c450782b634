//! Greeks benchmarks: one option through the scalar kernel, and batches of
//! mixed options (price + delta, gamma, vega, theta, rho) on one thread and
//! on all threads.
//!
//! The 1,000-option batch runs from the cache; the 1,000,000-option batch
//! (seven input and six output columns, 104 MB) streams from main memory,
//! so it measures the kernel's memory traffic as well as its arithmetic.
//! Both include the batch's second pass (about 1% of this book's options
//! are repriced there).
//!
//! Run: `cargo bench --bench greeks`. Figures in the README.

#[path = "common/random.rs"]
mod random;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portfolio_margin::{
    BsInputs, GreeksBatch, OptionBatch, OptionKind, OptionModel, black_scholes,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use random::either;
use std::hint::black_box;

/// A deterministic book of mixed options: calls and puts, BSM and Black-76,
/// strikes within +-50% (log) of spot, vols 10%..120%, 1 day to 2 years.
fn mixed_options(n: usize, seed: u64) -> OptionBatch {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut batch = OptionBatch::with_capacity(n);
    for _ in 0..n {
        let kind = either(&mut rng, OptionKind::Call, OptionKind::Put);
        let model = either(
            &mut rng,
            OptionModel::BlackScholesMerton,
            OptionModel::Black76,
        );
        let spot = 100.0;
        let strike = spot * rng.random_range(-0.5..0.5f64).exp();
        let years = rng.random_range(1.0 / 365.0..2.0);
        let vol = rng.random_range(0.1..1.2);
        let rate = rng.random_range(0.0..0.08);
        let carry = rng.random_range(0.0..0.04);
        let inputs = BsInputs::new(kind, model, spot, strike, years, vol, rate, carry).unwrap();
        batch.push(&inputs);
    }
    batch
}

fn bench_scalar(c: &mut Criterion) {
    let inputs = BsInputs::new(
        OptionKind::Call,
        OptionModel::BlackScholesMerton,
        100.0,
        105.0,
        0.5,
        0.3,
        0.04,
        0.01,
    )
    .unwrap();
    c.bench_function("greeks/scalar_one_option_all_greeks", |b| {
        b.iter(|| black_scholes(black_box(&inputs)))
    });
}

fn bench_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("greeks/batch");
    group.sample_size(10);
    for &n in &[1_000usize, 1_000_000] {
        let batch = mixed_options(n, 42);
        let mut out = GreeksBatch::default();
        batch.greeks(&mut out).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        group.bench_with_input(BenchmarkId::new("one_thread", n), &n, |b, _| {
            one.install(|| b.iter(|| batch.greeks(black_box(&mut out)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("all_threads", n), &n, |b, _| {
            b.iter(|| batch.greeks(black_box(&mut out)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_scalar, bench_batch);
criterion_main!(benches);
