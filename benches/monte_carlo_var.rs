//! Streamed Monte Carlo VaR/ES with full revaluation: 1,000,000 paths x 100
//! options on 5 correlated underlyings (the book of
//! `examples/monte_carlo_var.rs`), on all threads of the default pool.
//!
//! Run: `cargo bench --bench monte_carlo_var -- --warm-up-time 1 --measurement-time 30`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portfolio_margin::*;
use std::hint::black_box;

const PATHS: usize = 1_000_000;

const UNDERLYINGS: [(&str, f64, f64); 5] = [
    ("BTC", 100_000.0, 0.55),
    ("ETH", 4_000.0, 0.70),
    ("SOL", 150.0, 0.90),
    ("SPX", 6_000.0, 0.18),
    ("GOLD", 2_600.0, 0.15),
];

struct Setup {
    instruments: InstrumentSet,
    market: MarketSnapshot,
    book: Portfolio,
    generator: MonteCarloGenerator,
}

fn setup(paths: usize) -> Result<Setup> {
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
    let mut builder = MarketSnapshot::builder(as_of);
    let mut instruments = InstrumentSet::new();
    let mut positions = Vec::new();
    let mut factors = Vec::new();
    for (u, &(name, spot, vol)) in UNDERLYINGS.iter().enumerate() {
        let id = UnderlyingId::new(name)?;
        builder = builder.underlying(
            id.clone(),
            UnderlyingMarket::new(spot, 0.04, 0.0, VolSurface::flat(vol)?)?,
        );
        factors.push(SimulatedFactor::new(
            RiskFactor::Spot(id.clone()),
            ShockKind::Log,
            vol,
        )?);
        for k in 0..20 {
            let kind = if k % 2 == 0 {
                OptionKind::Call
            } else {
                OptionKind::Put
            };
            let strike = spot * (0.8 + 0.02 * k as f64);
            let days = 7.0 + 9.0 * k as f64;
            let expiry = as_of.plus_years(YearFraction::from_days(days, DayBasis::Calendar365)?);
            let key = InstrumentId::new(format!("{name}-{k}"))?;
            instruments.insert(
                key.clone(),
                Instrument::Option(OptionContract::new(id.clone(), kind, strike, expiry)?),
            )?;
            let sign = if (k + u) % 3 == 0 { 1.0 } else { -1.0 };
            positions.push(Position::new(key, sign * 10_000.0 / spot));
        }
    }
    let market = builder.build()?;
    let book = Portfolio::new(AccountId::new("bench"), positions, &instruments)?;
    let n = UNDERLYINGS.len();
    let correlation: Vec<f64> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.5 })
        .collect();
    let generator = MonteCarloGenerator::new(
        MonteCarloConfig::new(
            42,
            paths,
            YearFraction::from_days(1.0, DayBasis::Calendar365)?,
        )?,
        factors,
        &CorrelationMatrix::new(n, correlation)?,
    )?;
    Ok(Setup {
        instruments,
        market,
        book,
        generator,
    })
}

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
