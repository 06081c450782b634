//! Revaluation benchmarks: full revaluation of a book of options under
//! historical-like scenarios on one thread and on all threads, then VaR/ES
//! of the book's P&L.
//!
//! Run: `cargo bench --bench pnl -- --warm-up-time 1 --measurement-time 5`.

#[path = "common/random.rs"]
mod random;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portfolio_margin::*;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StudentT};
use rand_xoshiro::Xoshiro256PlusPlus;
use random::either;
use std::hint::black_box;

const OPTIONS: usize = 1_000;
const SCENARIOS: usize = 2_500;

struct Setup {
    instruments: InstrumentSet,
    market: MarketSnapshot,
    scenarios: ScenarioSet,
    book: Portfolio,
}

/// 1 000 BTC options (calls and puts, BSM and Black-76, linear and inverse,
/// strikes within +-50% log of spot, 1 day to 1 year) and 2 500 scenarios of
/// Student-t(4) daily spot log returns (3.5% scale) and vol log moves (6%).
fn setup(seed: u64) -> Setup {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let btc = UnderlyingId::new("BTC").unwrap();
    let market = MarketSnapshot::builder(as_of)
        .underlying(
            btc.clone(),
            UnderlyingMarket::new(100_000.0, 0.04, 0.01, VolSurface::flat(0.55).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let mut instruments = InstrumentSet::new();
    let mut positions = Vec::new();
    for k in 0..OPTIONS {
        let kind = either(&mut rng, OptionKind::Call, OptionKind::Put);
        let model = either(
            &mut rng,
            OptionModel::BlackScholesMerton,
            OptionModel::Black76,
        );
        let settlement = either(&mut rng, Settlement::Linear, Settlement::Inverse);
        let strike = 100_000.0 * rng.random_range(-0.5..0.5f64).exp();
        let days = rng.random_range(1.0..365.0f64);
        let expiry =
            as_of.plus_years(YearFraction::from_days(days, DayBasis::Calendar365).unwrap());
        let option = OptionContract::new(btc.clone(), kind, strike, expiry)
            .unwrap()
            .with_model(model)
            .with_settlement(settlement);
        let id = InstrumentId::new(format!("OPT-{k}")).unwrap();
        instruments
            .insert(id.clone(), Instrument::Option(option))
            .unwrap();
        positions.push(Position::new(id, rng.random_range(-10.0..10.0f64)));
    }
    let t = StudentT::new(4.0).unwrap();
    let scale = (2.0f64 / 4.0).sqrt(); // unit variance for t(4)
    let mut sizes = Vec::with_capacity(2 * SCENARIOS);
    for _ in 0..SCENARIOS {
        let x: f64 = t.sample(&mut rng);
        let y: f64 = t.sample(&mut rng);
        sizes.push((0.035 * scale * x).clamp(-0.5, 0.5));
        sizes.push((0.06 * scale * (0.5 * y - 0.5 * x)).clamp(-0.7, 0.7));
    }
    let scenarios = ScenarioSet::new(
        vec![
            (RiskFactor::Spot(btc.clone()), ShockKind::Log),
            (RiskFactor::Vol(btc), ShockKind::Log),
        ],
        sizes,
        YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap(),
    )
    .unwrap();
    let book = Portfolio::new(AccountId::new("bench"), positions, &instruments).unwrap();
    Setup {
        instruments,
        market,
        scenarios,
        book,
    }
}

fn bench_full(c: &mut Criterion) {
    let s = setup(7);
    let mut group = c.benchmark_group("pnl/full_revaluation");
    group.sample_size(10);
    group.throughput(Throughput::Elements((OPTIONS * SCENARIOS) as u64));
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let label = format!("{OPTIONS}x{SCENARIOS}");
    let revalue = |method| {
        RiskArrays::compute(black_box(&s.instruments), &s.market, &s.scenarios, method).unwrap()
    };
    group.bench_with_input(BenchmarkId::new("one_thread", &label), &(), |b, _| {
        one.install(|| b.iter(|| revalue(Revaluation::Full)))
    });
    group.bench_with_input(BenchmarkId::new("all_threads", &label), &(), |b, _| {
        b.iter(|| revalue(Revaluation::Full))
    });
    // The floor: the value kernel alone on the same number of options.
    let mut kernel = OptionBatch::with_capacity(OPTIONS * SCENARIOS);
    for k in 0..OPTIONS * SCENARIOS {
        let (kind, model) = if k % 2 == 0 {
            (OptionKind::Call, OptionModel::BlackScholesMerton)
        } else {
            (OptionKind::Put, OptionModel::Black76)
        };
        let strike = 100_000.0 * (((k % 997) as f64) / 997.0 - 0.5).exp();
        let years = 1.0 / 365.0 + (k % 365) as f64 / 365.0;
        kernel
            .push(&BsInputs::new(kind, model, 100_000.0, strike, years, 0.55, 0.04, 0.01).unwrap());
    }
    let mut out = Vec::new();
    group.bench_with_input(
        BenchmarkId::new("kernel_values_one_thread", &label),
        &(),
        |b, _| one.install(|| b.iter(|| kernel.values(black_box(&mut out)).unwrap())),
    );
    group.bench_with_input(
        BenchmarkId::new("sensitivity_one_thread", &label),
        &(),
        |b, _| one.install(|| b.iter(|| revalue(Revaluation::Sensitivity))),
    );
    group.finish();

    let arrays =
        RiskArrays::compute(&s.instruments, &s.market, &s.scenarios, Revaluation::Full).unwrap();
    let c99 = Confidence::new(0.99).unwrap();
    let mut group = c.benchmark_group("pnl/book");
    group.bench_function("portfolio_pnl_1000_positions", |b| {
        b.iter(|| portfolio_pnl(black_box(&s.book), &arrays).unwrap())
    });
    let pnl = portfolio_pnl(&s.book, &arrays).unwrap();
    group.bench_function("var_es_99", |b| {
        b.iter(|| {
            let var = value_at_risk(black_box(&pnl), c99, QuantileRule::Empirical).unwrap();
            let es = expected_shortfall(black_box(&pnl), c99, QuantileRule::Empirical).unwrap();
            (var, es)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_full);
criterion_main!(benches);
