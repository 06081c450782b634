//! Margin benchmarks: risk arrays of 2,000 listed options on a 63-scenario
//! grid, batch margin of 100,000 accounts x 20 positions, and one pre-trade
//! what-if on a cached account.
//!
//! Run: `cargo bench --bench margin -- --warm-up-time 1 --measurement-time 5`.

#[path = "common/random.rs"]
mod random;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portfolio_margin::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use random::either;
use std::hint::black_box;

const OPTIONS: usize = 2_000;
const ACCOUNTS: usize = 100_000;
const POSITIONS: usize = 20;

/// Deribit-style grid without the extended table: 21 price points x 3 vols.
fn policy_63() -> GridPolicy {
    let mut p = GridPolicy::deribit_style();
    p.steps_per_side = 10;
    p.extreme = None;
    assert_eq!(p.scenario_count(), 63);
    p
}

/// 1,200 BTC coin-settled options (Black-76) and 800 ETH linear options,
/// strikes within +-40% of spot, 1 to 180 days; BTC and ETH perpetuals and
/// two futures each.
fn listing() -> (InstrumentSet, MarketSnapshot, Vec<InstrumentId>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let btc = UnderlyingId::new("BTC").unwrap();
    let eth = UnderlyingId::new("ETH").unwrap();
    let market = MarketSnapshot::builder(as_of)
        .underlying(
            btc.clone(),
            UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.55).unwrap()).unwrap(),
        )
        .underlying(
            eth.clone(),
            UnderlyingMarket::new(4_000.0, 0.0, 0.0, VolSurface::flat(0.70).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let mut set = InstrumentSet::new();
    let mut ids = Vec::new();
    let mut add = |name: String, i: Instrument, ids: &mut Vec<InstrumentId>| {
        let id = InstrumentId::new(name).unwrap();
        set.insert(id.clone(), i).unwrap();
        ids.push(id);
    };
    for k in 0..OPTIONS {
        let (u, spot) = if k < 1_200 {
            (&btc, 100_000.0)
        } else {
            (&eth, 4_000.0)
        };
        let kind = either(&mut rng, OptionKind::Call, OptionKind::Put);
        let strike = (spot * rng.random_range(0.6..1.4f64)).round();
        let days = rng.random_range(1.0..180.0f64).round();
        let expiry =
            as_of.plus_years(YearFraction::from_days(days, DayBasis::Calendar365).unwrap());
        let mut o = OptionContract::new(u.clone(), kind, strike, expiry).unwrap();
        if k < 1_200 {
            o = o
                .with_settlement(Settlement::Inverse)
                .with_model(OptionModel::Black76);
        }
        add(format!("O{k}"), Instrument::Option(o), &mut ids);
    }
    for (u, name) in [(&btc, "BTC"), (&eth, "ETH")] {
        add(
            format!("{name}-PERP"),
            Instrument::Perpetual(PerpetualContract::new(u.clone())),
            &mut ids,
        );
        for d in [30.0, 90.0] {
            let expiry =
                as_of.plus_years(YearFraction::from_days(d, DayBasis::Calendar365).unwrap());
            add(
                format!("{name}-F{d}"),
                Instrument::Future(FutureContract::new(u.clone(), expiry)),
                &mut ids,
            );
        }
    }
    (set, market, ids)
}

/// `ACCOUNTS` accounts of `POSITIONS` distinct instruments drawn uniformly
/// from the whole listing, quantities -10..10.
fn accounts(engine: &GridMarginEngine, ids: &[InstrumentId]) -> Vec<GridAccount> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    (0..ACCOUNTS)
        .map(|_| {
            let mut picked: Vec<usize> = Vec::with_capacity(POSITIONS);
            while picked.len() < POSITIONS {
                let k = rng.random_range(0..ids.len());
                if !picked.contains(&k) {
                    picked.push(k);
                }
            }
            let positions: Vec<Position> = picked
                .iter()
                .map(|&k| {
                    Position::new(
                        ids[k].clone(),
                        (rng.random_range(-10..=10i32) as f64).max(0.5),
                    )
                })
                .collect();
            engine.account_from_positions(&positions).unwrap()
        })
        .collect()
}

/// Copies of `accounts` made with an allocation of 200-500 bytes between
/// each two (freed afterwards), so that no two accounts' positions are
/// neighbours in memory.
fn scattered(accounts: &[GridAccount]) -> Vec<GridAccount> {
    let mut spacers = Vec::with_capacity(accounts.len());
    accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            spacers.push(vec![0u8; 200 + (i * 37) % 300]);
            a.clone()
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let (set, market, ids) = listing();
    let threads = [
        1,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    ];

    let mut g = c.benchmark_group("risk_arrays_2000_options_63_scenarios");
    g.sample_size(20);
    g.throughput(Throughput::Elements((set.len() * 63) as u64));
    for &t in &threads {
        let p = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| {
                p.install(|| GridMarginEngine::new(black_box(&set), &market, policy_63()).unwrap())
            })
        });
    }
    g.finish();

    let engine = GridMarginEngine::new(&set, &market, policy_63()).unwrap();
    let accounts = accounts(&engine, &ids);
    let mut g = c.benchmark_group("batch_margin_100k_accounts_20_positions");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ACCOUNTS as u64));
    for &t in &threads {
        let p = pool(t);
        g.bench_with_input(BenchmarkId::new("threads", t), &t, |b, _| {
            b.iter(|| p.install(|| engine.margin_batch(black_box(&accounts))))
        });
    }
    // The same accounts with their positions spread through the heap, as
    // accounts rebuilt at different times over a day end up.
    let scattered = scattered(&accounts);
    let p = pool(1);
    g.bench_function("scattered_threads/1", |b| {
        b.iter(|| p.install(|| engine.margin_batch(black_box(&scattered))))
    });
    // The accounts by reference in a shuffled order, as a venue gathers
    // them from its own records (`margin_batch_of`).
    let mut refs: Vec<&GridAccount> = scattered.iter().collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    for i in (1..refs.len()).rev() {
        refs.swap(i, rng.random_range(0..=i));
    }
    g.bench_function("shuffled_references_threads/1", |b| {
        b.iter(|| p.install(|| engine.margin_batch_of(black_box(&refs))))
    });
    g.finish();

    let state = engine.state(&accounts[0]).unwrap();
    let order = Order {
        instrument: engine.instrument_index(&ids[5]).unwrap(),
        quantity: 3.0,
    };
    let mut g = c.benchmark_group("what_if");
    g.bench_function("one_order_cached_20_position_account", |b| {
        b.iter(|| engine.what_if(black_box(&state), black_box(order)).unwrap())
    });
    g.bench_function("full_margin_same_account", |b| {
        b.iter(|| engine.requirement(black_box(&accounts[0])).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
