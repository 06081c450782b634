//! Monte Carlo scenario generation: 1 000 000 paths x 5 correlated factors,
//! one thread vs all threads (identical output either way).
//!
//! `cargo bench --bench monte_carlo -- --warm-up-time 1 --measurement-time 5`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portfolio_margin::*;
use std::hint::black_box;

const PATHS: usize = 1_000_000;

fn generator() -> MonteCarloGenerator {
    let id = |s: &str| UnderlyingId::new(s).unwrap();
    let factors = vec![
        SimulatedFactor::new(RiskFactor::Spot(id("BTC")), ShockKind::Log, 0.6).unwrap(),
        SimulatedFactor::new(RiskFactor::Spot(id("ETH")), ShockKind::Log, 0.8).unwrap(),
        SimulatedFactor::new(RiskFactor::Spot(id("SOL")), ShockKind::Log, 1.0).unwrap(),
        SimulatedFactor::new(RiskFactor::Vol(id("BTC")), ShockKind::Log, 1.2).unwrap(),
        SimulatedFactor::new(RiskFactor::Rate(id("BTC")), ShockKind::Absolute, 0.01).unwrap(),
    ];
    let correlation = CorrelationMatrix::new(
        5,
        vec![
            1.0, 0.8, 0.7, -0.4, 0.1, //
            0.8, 1.0, 0.75, -0.3, 0.1, //
            0.7, 0.75, 1.0, -0.3, 0.05, //
            -0.4, -0.3, -0.3, 1.0, 0.0, //
            0.1, 0.1, 0.05, 0.0, 1.0,
        ],
    )
    .unwrap();
    let horizon = YearFraction::from_days(10.0, DayBasis::Calendar365).unwrap();
    let config = MonteCarloConfig::new(42, black_box(PATHS), horizon).unwrap();
    MonteCarloGenerator::new(config, factors, &correlation).unwrap()
}

fn bench_generate(c: &mut Criterion) {
    let g = generator();
    let mut group = c.benchmark_group("monte_carlo_1m_paths_5_factors");
    group.sample_size(10);
    #[cfg(feature = "rayon")]
    let thread_counts = vec![1, rayon::current_num_threads()];
    #[cfg(not(feature = "rayon"))]
    let thread_counts = vec![1];
    for threads in thread_counts {
        #[cfg(feature = "rayon")]
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("generate", format!("{threads}_threads")),
            &threads,
            |b, _| {
                #[cfg(feature = "rayon")]
                b.iter(|| pool.install(|| black_box(g.generate().unwrap())));
                #[cfg(not(feature = "rayon"))]
                b.iter(|| black_box(g.generate().unwrap()));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("stream_sum", format!("{threads}_threads")),
            &threads,
            |b, _| {
                let stream = || {
                    g.for_each_chunk(|_, chunk| Ok(chunk.sizes().iter().sum::<f64>()))
                        .unwrap()
                        .iter()
                        .sum::<f64>()
                };
                #[cfg(feature = "rayon")]
                b.iter(|| pool.install(|| black_box(stream())));
                #[cfg(not(feature = "rayon"))]
                b.iter(|| black_box(stream()));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_generate);
criterion_main!(benches);
