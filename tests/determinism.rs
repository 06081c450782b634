//! Same inputs and seed, same bits: Monte Carlo scenarios, Monte Carlo
//! VaR/ES, historical VaR/ES, risk arrays, batch Greeks, ES margin (Monte
//! Carlo and historical P&L), grid margin (batch and breakdown) and
//! isolated and cross margin are compared with `f64::to_bits` across
//! repeated runs and (with the `rayon` feature) on 1-, 2- and 4-thread
//! pools.
//!
//! Sizes are chosen to exercise the parallel paths (several Monte Carlo
//! chunks, more instruments than threads, an option batch above the batch
//! kernel's parallel threshold, a margin batch above rayon's split length)
//! while the file runs in a few seconds in release.

mod common;

use common::{as_of, id};
use portfolio_margin::*;

/// Thread counts every computation is repeated on.
const THREADS: [usize; 3] = [1, 2, 4];
/// Runs per thread count.
const REPEATS: usize = 2;

fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}

fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// `run` on a 1-, 2- and 4-thread pool, `REPEATS` times each (without the
/// `rayon` feature: `3 * REPEATS` times on the calling thread); every result
/// must equal the first, as compared by `key`.
fn assert_same_bits<T, K>(what: &str, run: impl Fn() -> T + Sync, key: impl Fn(&T) -> K)
where
    T: Send,
    K: PartialEq + std::fmt::Debug,
{
    let mut first: Option<K> = None;
    for threads in THREADS {
        for repeat in 0..REPEATS {
            #[cfg(feature = "rayon")]
            let result = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(&run);
            #[cfg(not(feature = "rayon"))]
            let result = run();
            let k = key(&result);
            match &first {
                None => first = Some(k),
                Some(f) => assert!(
                    *f == k,
                    "{what}: run {repeat} on {threads} thread(s) differs from the first run"
                ),
            }
        }
    }
}

/// BTC on a smile (log-moneyness grid), ETH and SOL flat.
fn market() -> MarketSnapshot {
    let smile = VolSurface::grid(
        vec![0.02, 0.1, 0.5],
        StrikeAxis::LogMoneyness,
        vec![-0.3, -0.1, 0.0, 0.1, 0.3],
        vec![
            0.80, 0.62, 0.55, 0.58, 0.70, //
            0.72, 0.60, 0.54, 0.56, 0.66, //
            0.66, 0.58, 0.53, 0.55, 0.62,
        ],
    )
    .unwrap();
    MarketSnapshot::builder(as_of())
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(95_000.0, 0.04, 0.01, smile).unwrap(),
        )
        .underlying(
            id("ETH"),
            UnderlyingMarket::new(3_400.0, 0.04, 0.0, VolSurface::flat(0.68).unwrap()).unwrap(),
        )
        .underlying(
            id("SOL"),
            UnderlyingMarket::new(180.0, 0.03, 0.0, VolSurface::flat(0.9).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}

/// 20 instruments (linear and coin-settled options of both models, a
/// future, perpetuals and a spot holding) and a book holding all of them.
fn book() -> (InstrumentSet, Portfolio) {
    let mut set = InstrumentSet::new();
    let mut positions = Vec::new();
    let m = market();
    let expiries = [7.0, 30.0, 90.0]
        .map(|d| as_of().plus_years(YearFraction::from_days(d, DayBasis::Calendar365).unwrap()));
    for (u, name) in ["BTC", "ETH", "SOL"].into_iter().enumerate() {
        let spot = m.underlying(&id(name)).unwrap().spot();
        for (k, (kind, moneyness, quantity)) in [
            (OptionKind::Call, 1.1, -5.0),
            (OptionKind::Put, 0.85, -7.0),
            (OptionKind::Call, 1.0, 3.0),
            (OptionKind::Put, 1.0, 2.0),
            (OptionKind::Call, 1.4, 9.0),
        ]
        .into_iter()
        .enumerate()
        {
            let mut option = OptionContract::new(
                id(name),
                kind,
                spot * moneyness,
                expiries[(u + k) % expiries.len()],
            )
            .unwrap();
            if u == 0 {
                option = option
                    .with_settlement(Settlement::Inverse)
                    .with_model(OptionModel::Black76);
            }
            let key = iid(&format!("{name}-{k}"));
            set.insert(key.clone(), Instrument::Option(option)).unwrap();
            positions.push(Position::new(key, quantity * 10_000.0 / spot));
        }
    }
    let extras = [
        (
            "BTC-FUT",
            Instrument::Future(
                FutureContract::new(id("BTC"), expiries[2])
                    .with_multiplier(10.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
            950.0,
        ),
        (
            "BTC-PERP",
            Instrument::Perpetual(
                PerpetualContract::new(id("BTC"))
                    .with_multiplier(10.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
            -2_000.0,
        ),
        (
            "ETH-PERP",
            Instrument::Perpetual(PerpetualContract::new(id("ETH"))),
            4.0,
        ),
        ("SOL", Instrument::Spot(id("SOL")), 50.0),
        (
            "ETH-FUT",
            Instrument::Future(FutureContract::new(id("ETH"), expiries[1])),
            -3.0,
        ),
    ];
    for (name, instrument, quantity) in extras {
        set.insert(iid(name), instrument).unwrap();
        positions.push(Position::new(iid(name), quantity));
    }
    let book = Portfolio::new(AccountId::new("det"), positions, &set).unwrap();
    (set, book)
}

/// Spot and vol (both log shocks) of every underlying, correlated.
fn generator(seed: u64, paths: usize, chunk: usize) -> MonteCarloGenerator {
    let horizon = YearFraction::from_days(2.0, DayBasis::Calendar365).unwrap();
    let config = MonteCarloConfig::new(seed, paths, horizon)
        .unwrap()
        .with_chunk_size(chunk)
        .unwrap()
        .with_distribution(ShockDistribution::StudentT {
            degrees_of_freedom: 5.0,
        })
        .unwrap();
    let mut factors = Vec::new();
    for (name, vol) in [("BTC", 0.6), ("ETH", 0.75), ("SOL", 1.0)] {
        factors
            .push(SimulatedFactor::new(RiskFactor::Spot(id(name)), ShockKind::Log, vol).unwrap());
        factors.push(SimulatedFactor::new(RiskFactor::Vol(id(name)), ShockKind::Log, 1.2).unwrap());
    }
    // Spots 0.7 correlated with each other, each vol -0.5 with its spot.
    let n = factors.len();
    let mut rho = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            rho[i * n + j] = match (i == j, i % 2, j % 2) {
                (true, _, _) => 1.0,
                (false, 0, 0) => 0.7,
                _ if i / 2 == j / 2 => -0.5,
                _ => 0.0,
            };
        }
    }
    let correlation = CorrelationMatrix::new(n, rho).unwrap();
    MonteCarloGenerator::new(config, factors, &correlation).unwrap()
}

fn arrays_bits(arrays: &RiskArrays) -> Vec<Vec<u64>> {
    arrays
        .arrays()
        .iter()
        .map(|a| {
            let mut b = vec![a.base_value().to_bits()];
            b.extend(bits(a.native()));
            b.extend(bits(a.quote()));
            b
        })
        .collect()
}

#[test]
fn monte_carlo_scenarios_are_bit_identical() {
    // 2 500 paths in chunks of 256: ten chunks, the last one short.
    let g = generator(7, 2_500, 256);
    assert_same_bits(
        "MC scenarios",
        || g.generate().unwrap(),
        |s| bits(s.sizes()),
    );
    // Streaming chunk by chunk gives the same bits as generating at once.
    let all = g.generate().unwrap();
    let streamed = g
        .for_each_chunk(|_, chunk| Ok(chunk.sizes().to_vec()))
        .unwrap()
        .concat();
    assert_eq!(bits(&streamed), bits(all.sizes()));
    // A different seed gives different draws (the comparison can fail).
    assert_ne!(
        bits(generator(8, 2_500, 256).generate().unwrap().sizes()),
        bits(all.sizes())
    );
}

#[test]
fn monte_carlo_var_and_es_are_bit_identical() {
    let (set, book) = book();
    let market = market();
    let g = generator(11, 2_000, 200);
    let confidence = Confidence::new(0.99).unwrap();
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        assert_same_bits(
            "monte_carlo_risk",
            || monte_carlo_risk(&book, &set, &market, &g, confidence, method).unwrap(),
            |r| {
                [
                    r.value_at_risk,
                    r.expected_shortfall,
                    r.var_standard_error,
                    r.es_standard_error,
                ]
                .map(f64::to_bits)
            },
        );
    }
    let risk = monte_carlo_risk(&book, &set, &market, &g, confidence, Revaluation::Full).unwrap();
    assert!(risk.value_at_risk.is_finite() && risk.expected_shortfall >= risk.value_at_risk);
}

/// A deterministic random walk of `n` prices (an LCG, so no RNG crate).
fn walk(seed: u64, start: f64, daily_vol: f64, n: usize) -> Vec<f64> {
    let mut state = seed;
    let mut price = start;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(price);
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        price *= (daily_vol * (2.0 * u - 1.0) * 3f64.sqrt()).exp();
    }
    out
}

/// `n` days of spot and vol history for BTC, ETH and SOL: underlying `k`'s
/// spot walks from seed `spot_seed + k`, its vol level from `vol_seed + k`.
fn histories(spot_seed: u64, vol_seed: u64, n: usize) -> Vec<PriceHistory> {
    let mut histories = Vec::new();
    for (k, (name, spot, vol)) in [
        ("BTC", 95_000.0, 0.035),
        ("ETH", 3_400.0, 0.045),
        ("SOL", 180.0, 0.06),
    ]
    .into_iter()
    .enumerate()
    {
        let k = k as u64;
        histories.push(
            PriceHistory::new(
                RiskFactor::Spot(id(name)),
                walk(spot_seed + k, spot, vol, n),
            )
            .unwrap(),
        );
        histories.push(
            PriceHistory::new(RiskFactor::Vol(id(name)), walk(vol_seed + k, 0.6, 0.04, n)).unwrap(),
        );
    }
    histories
}

/// `config` over the last 250 windows, EWMA-filtered (default lambda).
fn ewma_filtered(config: HistoricalConfig) -> HistoricalConfig {
    config
        .with_lookback(250)
        .unwrap()
        .with_filter(VolatilityFilter::Ewma {
            lambda: EWMA_DEFAULT_LAMBDA,
        })
        .unwrap()
}

#[test]
fn historical_var_and_es_are_bit_identical() {
    let (set, book) = book();
    let market = market();
    let histories = histories(1, 10, 400);
    let horizon = YearFraction::from_days(2.0, DayBasis::Trading252).unwrap();
    let plain = HistoricalConfig::new(2, ReturnKind::Log, horizon).unwrap();
    let filtered = ewma_filtered(HistoricalConfig::new(2, ReturnKind::Simple, horizon).unwrap());
    let confidence = Confidence::new(0.975).unwrap();
    for config in [plain, filtered] {
        for method in [Revaluation::Full, Revaluation::Sensitivity] {
            assert_same_bits(
                "historical VaR/ES",
                || {
                    let scenarios = historical_scenarios(&histories, None, &config).unwrap();
                    let arrays = RiskArrays::compute(&set, &market, &scenarios, method).unwrap();
                    let pnl = portfolio_pnl(&book, &arrays).unwrap();
                    let mut out = bits(scenarios.sizes());
                    out.extend(bits(&pnl));
                    for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
                        out.push(value_at_risk(&pnl, confidence, rule).unwrap().to_bits());
                        out.push(
                            expected_shortfall(&pnl, confidence, rule)
                                .unwrap()
                                .to_bits(),
                        );
                    }
                    out
                },
                Vec::clone,
            );
        }
    }
}

#[test]
fn risk_arrays_are_bit_identical() {
    let (set, book) = book();
    let market = market();
    let grid = StressGrid::new(
        GridAxis::new(ShockKind::Relative, 0.3, 13).unwrap(),
        GridAxis::new(ShockKind::Relative, 0.4, 5).unwrap(),
        GridScope::PerUnderlying,
        YearFraction::from_days(1.0, DayBasis::Calendar365).unwrap(),
    );
    let stress = grid.scenarios(&[id("BTC"), id("ETH"), id("SOL")]).unwrap();
    let monte_carlo = generator(3, 600, 128).generate().unwrap();
    for scenarios in [&stress, &monte_carlo] {
        for method in [Revaluation::Full, Revaluation::Sensitivity] {
            assert_same_bits(
                "risk arrays",
                || RiskArrays::compute(&set, &market, scenarios, method).unwrap(),
                |arrays| {
                    let mut b = arrays_bits(arrays);
                    b.push(bits(&portfolio_pnl(&book, arrays).unwrap()));
                    b
                },
            );
        }
    }
}

#[test]
fn batch_greeks_are_bit_identical() {
    // Above the batch kernel's parallel threshold (4 x 4096 options).
    const OPTIONS: usize = 20_000;
    let mut batch = OptionBatch::with_capacity(OPTIONS);
    for i in 0..OPTIONS {
        let f = i as f64;
        let (kind, model) = match i % 4 {
            0 => (OptionKind::Call, OptionModel::BlackScholesMerton),
            1 => (OptionKind::Put, OptionModel::BlackScholesMerton),
            2 => (OptionKind::Call, OptionModel::Black76),
            _ => (OptionKind::Put, OptionModel::Black76),
        };
        let inputs = BsInputs::new(
            kind,
            model,
            100.0,
            40.0 + (f * 0.618).rem_euclid(1.0) * 140.0,
            1.0 / 365.0 + (f * 0.377).rem_euclid(1.0) * 2.0,
            0.05 + (f * 0.271).rem_euclid(1.0) * 1.5,
            0.03,
            0.01,
        )
        .unwrap();
        batch.push(&inputs);
    }
    assert_same_bits(
        "batch greeks",
        || {
            let mut out = GreeksBatch::default();
            batch.greeks(&mut out).unwrap();
            let mut values = Vec::new();
            batch.values(&mut values).unwrap();
            (out, values)
        },
        |(g, values)| {
            [
                bits(&g.value),
                bits(&g.delta),
                bits(&g.gamma),
                bits(&g.vega),
                bits(&g.theta),
                bits(&g.rho),
                bits(values),
            ]
        },
    );
}

#[test]
fn portfolio_greeks_are_bit_identical() {
    let (set, book) = book();
    let market = market();
    assert_same_bits(
        "portfolio greeks",
        || portfolio_greeks(&book, &set, &market).unwrap(),
        |g| {
            let mut b: Vec<u64> = g
                .per_underlying
                .iter()
                .flat_map(|u| u.greeks.fields().map(f64::to_bits))
                .collect();
            b.extend(bits(&[g.value, g.cash_delta, g.cash_gamma_per_pct]));
            b
        },
    );
}

/// Every number of an ES margin, in bits.
fn es_bits(m: &EsMargin) -> Vec<u64> {
    let mut v = bits(&[
        m.value_at_risk,
        m.expected_shortfall,
        m.horizon_factor,
        m.mpor_value_at_risk,
        m.mpor_expected_shortfall,
        m.calculated_margin,
        m.margin_before_speed_limit,
        m.requirement.initial(),
        m.requirement.maintenance(),
    ]);
    v.extend(bits(&m.position_contributions));
    if let Some(s) = &m.stressed {
        v.extend(bits(&[
            s.stressed_expected_shortfall,
            s.weighted_margin,
            s.add_on,
        ]));
    }
    if let Some(b) = &m.buffer {
        v.extend(bits(&[b.amount]));
    }
    if let Some(f) = &m.floor {
        v.extend(bits(&[f.long_lookback_expected_shortfall, f.add_on]));
    }
    if let Some(s) = &m.speed_limit {
        v.extend(bits(&[s.cap, s.reduction, s.under_collateralisation]));
    }
    v
}

/// The default EMIR policy, and one using every APC tool with the linear
/// quantile rule.
fn es_policies() -> [EsMarginPolicy; 2] {
    let apc = AntiProcyclicality::none()
        .with_buffer(0.3)
        .unwrap()
        .with_stressed_weight(0.25)
        .unwrap()
        .with_long_lookback_floor(LongLookbackFloor::new(500).unwrap())
        .with_speed_limit(SpeedLimit::new(0.2, SpeedLimitScope::AntiProcyclicalComponent).unwrap());
    [
        EsMarginPolicy::default(),
        EsMarginPolicy::new(Confidence::new(0.975).unwrap(), 5)
            .unwrap()
            .with_quantile_rule(QuantileRule::Linear)
            .with_anti_procyclicality(apc),
    ]
}

/// `es_margin` on the book's P&L and `portfolio_es_margin` on its arrays,
/// with the stressed P&L (`stressed`) and a long lookback of both.
fn es_margins(
    book: &Portfolio,
    arrays: &RiskArrays,
    stressed: &[f64],
    policy: &EsMarginPolicy,
) -> Vec<u64> {
    let pnl = portfolio_pnl(book, arrays).unwrap();
    let long: Vec<f64> = pnl.iter().chain(stressed).copied().collect();
    let inputs = EsMarginInputs::new()
        .with_stressed_pnl(stressed)
        .unwrap()
        .with_long_lookback_pnl(&long)
        .unwrap()
        .with_previous_initial_margin(1e5)
        .unwrap();
    let mut out = bits(&pnl);
    out.extend(es_bits(&es_margin(&pnl, &inputs, policy).unwrap()));
    out.extend(es_bits(
        &portfolio_es_margin(book, arrays, &inputs, policy).unwrap(),
    ));
    out
}

#[test]
fn monte_carlo_es_margin_is_bit_identical() {
    let (set, book) = book();
    let market = market();
    let g = generator(19, 1_200, 128);
    let stressed = generator(23, 400, 64);
    for policy in es_policies() {
        for method in [Revaluation::Full, Revaluation::Sensitivity] {
            assert_same_bits(
                "Monte Carlo ES margin",
                || {
                    let arrays =
                        RiskArrays::compute(&set, &market, &g.generate().unwrap(), method).unwrap();
                    let stress =
                        RiskArrays::compute(&set, &market, &stressed.generate().unwrap(), method)
                            .unwrap();
                    let stressed_pnl: Vec<f64> = portfolio_pnl(&book, &stress)
                        .unwrap()
                        .iter()
                        .map(|x| 2.0 * x)
                        .collect();
                    es_margins(&book, &arrays, &stressed_pnl, &policy)
                },
                Vec::clone,
            );
        }
    }
}

#[test]
fn historical_es_margin_is_bit_identical() {
    let (set, book) = book();
    let market = market();
    let histories = histories(31, 41, 600);
    let horizon = YearFraction::from_days(1.0, DayBasis::Trading252).unwrap();
    let config = ewma_filtered(HistoricalConfig::new(1, ReturnKind::Log, horizon).unwrap());
    let stressed_config = HistoricalConfig::new(1, ReturnKind::Log, horizon).unwrap();
    for policy in es_policies() {
        assert_same_bits(
            "historical ES margin",
            || {
                let scenarios = historical_scenarios(&histories, None, &config).unwrap();
                let arrays =
                    RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full).unwrap();
                let all = historical_scenarios(&histories, None, &stressed_config).unwrap();
                let stress = RiskArrays::compute(&set, &market, &all, Revaluation::Full).unwrap();
                let stressed_pnl = portfolio_pnl(&book, &stress).unwrap();
                es_margins(&book, &arrays, &stressed_pnl, &policy)
            },
            Vec::clone,
        );
    }
}

/// Deribit-style grid, and SPAN with a BTC/ETH spread credit, a
/// correlation break and a concentration add-on.
fn grid_policies() -> [GridPolicy; 2] {
    let mut span = GridPolicy::cme_span_16(0.1, 0.05).unwrap();
    span.offsets = OffsetPolicy::new(vec![
        SpreadCredit::from_correlation(id("BTC"), id("ETH"), 0.8, 1.0).unwrap(),
    ])
    .unwrap();
    span.correlation_break = 0.3;
    span.concentration = Concentration {
        default_depth: Some(5e5),
        depths: vec![],
        tiers: vec![
            ConcentrationTier {
                above: 1.0,
                rate: 0.02,
            },
            ConcentrationTier {
                above: 3.0,
                rate: 0.05,
            },
        ],
    };
    [GridPolicy::deribit_style(), span]
}

/// 600 accounts over the book's instruments (more than rayon's minimum
/// split length of 256, so the batch is split across threads).
fn grid_accounts(set: &InstrumentSet) -> Vec<Vec<Position>> {
    let ids: Vec<InstrumentId> = set.iter().map(|l| l.id.clone()).collect();
    (0..600)
        .map(|i| {
            (0..1 + i % 7)
                .map(|j| {
                    let k = (i * 7 + j * 3) % ids.len();
                    let q = ((i + 5 * j) % 13) as f64 - 6.0;
                    Position::new(ids[k].clone(), if q == 0.0 { 0.5 } else { q })
                })
                .collect()
        })
        .collect()
}

#[test]
fn grid_margin_is_bit_identical() {
    let (set, book) = book();
    let market = market();
    let accounts = grid_accounts(&set);
    for policy in grid_policies() {
        assert_same_bits(
            "grid margin",
            || {
                let engine = GridMarginEngine::new(&set, &market, policy.clone()).unwrap();
                let resolved: Vec<GridAccount> = accounts
                    .iter()
                    .map(|p| engine.account_from_positions(p).unwrap())
                    .collect();
                let batch: Vec<u64> = engine
                    .margin_batch(&resolved)
                    .into_iter()
                    .flat_map(|r| {
                        let r = r.unwrap();
                        [r.initial().to_bits(), r.maintenance().to_bits()]
                    })
                    .collect();
                let account = engine.account(&book).unwrap();
                // Debug prints every f64 in its shortest round-trip form, so
                // equal text is equal bits.
                let breakdown = format!("{:?}", engine.margin(&account).unwrap());
                let losses = format!("{:?}", engine.scenario_losses(&account).unwrap());
                (batch, breakdown, losses)
            },
            Clone::clone,
        );
    }
    // The batch is the single-account path, entry by entry.
    let engine = GridMarginEngine::new(&set, &market, grid_policies()[1].clone()).unwrap();
    let resolved: Vec<GridAccount> = accounts
        .iter()
        .map(|p| engine.account_from_positions(p).unwrap())
        .collect();
    for (a, r) in resolved.iter().zip(engine.margin_batch(&resolved)) {
        assert_eq!(r.unwrap(), engine.requirement(a).unwrap());
    }
}

#[test]
fn isolated_and_cross_margin_are_bit_identical() {
    let (set, book) = book();
    let market = market();
    let offsets = OffsetPolicy::new(vec![
        SpreadCredit::from_correlation(id("BTC"), id("ETH"), 0.8, 1.0).unwrap(),
        SpreadCredit::new(id("ETH"), id("SOL"), 0.3, 2.0).unwrap(),
    ])
    .unwrap();
    let cross_policy = CrossPolicy::new(IsolatedPolicy::default(), offsets, 0.6).unwrap();
    assert_same_bits(
        "isolated and cross margin",
        || {
            let isolated =
                isolated_margin(&book, &set, &market, &IsolatedPolicy::default()).unwrap();
            let cross = cross_margin(&book, &set, &market, &cross_policy).unwrap();
            format!("{isolated:?}\n{cross:?}")
        },
        Clone::clone,
    );
}
