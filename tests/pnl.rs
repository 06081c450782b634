//! Revaluation stage: full revaluation against `price` on shocked snapshots,
//! the sensitivity approximation's error, determinism, book P&L and VaR/ES.
//!
//! Run with `--nocapture` to see the measured figures.

mod common;

use common::{days, flat_market, id};
use portfolio_margin::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Full revaluation vs repricing the applied snapshot with `price`, relative
/// to the larger of the two values compared (batch kernel accuracy 1e-13).
const FULL_VS_PRICE_RELATIVE: f64 = 1e-12;

fn market() -> MarketSnapshot {
    flat_market(&[
        ("BTC", 100_000.0, 0.04, 0.01, 0.55),
        ("SPX", 6_000.0, 0.045, 0.015, 0.18),
    ])
}

/// One of every kind: BSM, Black-76, inverse options; linear and inverse
/// futures and perpetuals; spot; an option expiring within the horizon.
fn instruments() -> InstrumentSet {
    let btc = id("BTC");
    let spx = id("SPX");
    let opt = |u: &UnderlyingId, k: OptionKind, strike: f64, d: f64| {
        OptionContract::new(u.clone(), k, strike, days(d)).unwrap()
    };
    let list: Vec<(&str, Instrument)> = vec![
        (
            "SPX-C",
            Instrument::Option(
                opt(&spx, OptionKind::Call, 6_100.0, 30.0)
                    .with_multiplier(100.0)
                    .unwrap(),
            ),
        ),
        (
            "SPX-P-B76",
            Instrument::Option(
                opt(&spx, OptionKind::Put, 5_800.0, 90.0).with_model(OptionModel::Black76),
            ),
        ),
        (
            "BTC-C-INV",
            Instrument::Option(
                opt(&btc, OptionKind::Call, 110_000.0, 30.0).with_settlement(Settlement::Inverse),
            ),
        ),
        (
            "BTC-P-INV-B76",
            Instrument::Option(
                opt(&btc, OptionKind::Put, 90_000.0, 60.0)
                    .with_settlement(Settlement::Inverse)
                    .with_model(OptionModel::Black76),
            ),
        ),
        (
            "BTC-FUT",
            Instrument::Future(
                FutureContract::new(btc.clone(), days(45.0))
                    .with_multiplier(0.1)
                    .unwrap(),
            ),
        ),
        (
            "BTC-FUT-INV",
            Instrument::Future(
                FutureContract::new(btc.clone(), days(45.0))
                    .with_multiplier(100.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
        ),
        (
            "BTC-PERP",
            Instrument::Perpetual(PerpetualContract::new(btc.clone())),
        ),
        (
            "BTC-PERP-INV",
            Instrument::Perpetual(
                PerpetualContract::new(btc.clone())
                    .with_multiplier(10.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
        ),
        ("BTC", Instrument::Spot(btc.clone())),
    ];
    let mut set = InstrumentSet::new();
    for (name, instrument) in list {
        set.insert(InstrumentId::new(name).unwrap(), instrument)
            .unwrap();
    }
    set
}

/// Random scenarios shocking every factor of both underlyings.
fn scenarios(n: usize, horizon_days: f64, scale: f64, seed: u64) -> ScenarioSet {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut factors = Vec::new();
    for u in ["BTC", "SPX"] {
        factors.push((RiskFactor::Spot(id(u)), ShockKind::Log));
        factors.push((RiskFactor::Vol(id(u)), ShockKind::Relative));
        factors.push((RiskFactor::Rate(id(u)), ShockKind::Absolute));
        factors.push((RiskFactor::CarryYield(id(u)), ShockKind::Absolute));
    }
    let mut sizes = Vec::new();
    for _ in 0..n {
        for _ in 0..2 {
            sizes.push(scale * rng.random_range(-0.2..0.2));
            sizes.push(scale * rng.random_range(-0.3..0.3));
            sizes.push(scale * rng.random_range(-0.01..0.01));
            sizes.push(scale * rng.random_range(-0.01..0.01));
        }
    }
    let horizon = YearFraction::from_days(horizon_days, DayBasis::Calendar365).unwrap();
    ScenarioSet::new(factors, sizes, horizon).unwrap()
}

#[test]
fn full_revaluation_equals_price_on_applied_snapshot() {
    let (set, base) = (instruments(), market());
    let scenarios = scenarios(50, 3.0, 1.0, 1);
    let arrays = RiskArrays::compute(&set, &base, &scenarios, Revaluation::Full).unwrap();
    let mut worst = 0.0f64;
    for item in set.iter() {
        let array = arrays.get(&item.id).unwrap();
        let mult = item.instrument.multiplier();
        let v0 = price(&item.instrument, &base).unwrap();
        assert!(
            (array.base_value() - mult * v0).abs() <= FULL_VS_PRICE_RELATIVE * (mult * v0).abs()
        );
        for i in 0..scenarios.len() {
            let shocked = scenarios.apply(i, &base).unwrap();
            let v1 = price(&item.instrument, &shocked).unwrap();
            let expected = mult * (v1 - v0);
            let got = array.native()[i];
            let scale = mult * v0.abs().max(v1.abs());
            let err = (got - expected).abs() / scale;
            worst = worst.max(err);
            assert!(
                err <= FULL_VS_PRICE_RELATIVE,
                "{} scenario {i}: got {got}, expected {expected}",
                item.id
            );
            let spot = shocked
                .underlying(item.instrument.underlying())
                .unwrap()
                .spot();
            match item.instrument.settlement() {
                Settlement::Linear => assert_eq!(array.quote()[i], got),
                Settlement::Inverse => assert_eq!(array.quote()[i], got * spot),
            }
        }
    }
    println!("full vs price on applied snapshot: max relative error {worst:.2e}");
}

#[test]
fn option_expiring_within_horizon_is_worth_intrinsic() {
    let base = market();
    let mut set = InstrumentSet::new();
    let call = OptionContract::new(id("BTC"), OptionKind::Call, 100_000.0, days(2.0)).unwrap();
    set.insert(
        InstrumentId::new("C").unwrap(),
        Instrument::Option(call.clone()),
    )
    .unwrap();
    let put = call.clone().with_settlement(Settlement::Inverse);
    let put = OptionContract::new(id("BTC"), OptionKind::Put, 100_000.0, put.expiry())
        .unwrap()
        .with_settlement(Settlement::Inverse);
    set.insert(InstrumentId::new("P").unwrap(), Instrument::Option(put))
        .unwrap();
    let scenarios = ScenarioSet::new(
        vec![(RiskFactor::Spot(id("BTC")), ShockKind::Relative)],
        vec![-0.1, 0.1],
        YearFraction::from_days(5.0, DayBasis::Calendar365).unwrap(),
    )
    .unwrap();
    let arrays = RiskArrays::compute(&set, &base, &scenarios, Revaluation::Full).unwrap();
    let c = arrays.get(&InstrumentId::new("C").unwrap()).unwrap();
    let c0 = c.base_value();
    assert!((c.native()[0] - (0.0 - c0)).abs() < 1e-9);
    assert!((c.native()[1] - (10_000.0 - c0)).abs() < 1e-9);
    let p = arrays.get(&InstrumentId::new("P").unwrap()).unwrap();
    let p0 = p.base_value();
    assert!((p.native()[0] - (10_000.0 / 90_000.0 - p0)).abs() < 1e-15);
    assert!((p.native()[1] - (0.0 - p0)).abs() < 1e-15);
    assert!((p.quote()[0] - p.native()[0] * 90_000.0).abs() < 1e-9);
}

#[test]
fn zero_shock_and_zero_horizon_give_zero_pnl() {
    let (set, base) = (instruments(), market());
    let scenarios = scenarios(3, 0.0, 0.0, 2);
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        let arrays = RiskArrays::compute(&set, &base, &scenarios, method).unwrap();
        for a in arrays.arrays() {
            assert!(
                a.native().iter().all(|&x| x == 0.0),
                "{} {method:?}",
                a.id()
            );
            assert!(a.quote().iter().all(|&x| x == 0.0), "{} {method:?}", a.id());
        }
    }
}

#[test]
fn sensitivity_converges_to_full_at_third_order() {
    let base = market();
    let set = instruments();
    // Spot and vol shocks only, no horizon: the expansion is complete to
    // second order, so the error falls by ~8 when the shocks halve.
    let set_for = |eps: f64| {
        let mut factors = Vec::new();
        let mut sizes = Vec::new();
        for u in ["BTC", "SPX"] {
            factors.push((RiskFactor::Spot(id(u)), ShockKind::Log));
            factors.push((RiskFactor::Vol(id(u)), ShockKind::Absolute));
        }
        for (s, v) in [(0.08, 0.05), (-0.08, 0.05), (0.08, -0.05), (-0.06, -0.02)] {
            sizes.extend([eps * s, eps * v, eps * s, eps * v]);
        }
        ScenarioSet::new(factors, sizes, YearFraction::ZERO).unwrap()
    };
    let errors = |eps: f64| -> Vec<f64> {
        let s = set_for(eps);
        let full = RiskArrays::compute(&set, &base, &s, Revaluation::Full).unwrap();
        let approx = RiskArrays::compute(&set, &base, &s, Revaluation::Sensitivity).unwrap();
        full.arrays()
            .iter()
            .zip(approx.arrays())
            .map(|(f, a)| {
                f.native()
                    .iter()
                    .zip(a.native())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
            })
            .collect()
    };
    let (e1, e2, e4) = (errors(1.0), errors(0.5), errors(0.25));
    for (k, item) in set.iter().enumerate() {
        println!(
            "{:>14}: max |full - sensitivity| at shocks x1 {:.3e}, x1/2 {:.3e}, x1/4 {:.3e}",
            item.id, e1[k], e2[k], e4[k]
        );
        let convex = matches!(item.instrument, Instrument::Option(_))
            || item.instrument.settlement() == Settlement::Inverse;
        if convex {
            let (r1, r2) = (e1[k] / e2[k], e2[k] / e4[k]);
            assert!(
                (6.0..10.0).contains(&r1) && (6.0..10.0).contains(&r2),
                "{}: {r1} {r2}",
                item.id
            );
        } else {
            // Linear quote-currency contracts: exact up to rounding.
            assert!(e1[k] <= 1e-9, "{}: {}", item.id, e1[k]);
        }
    }
}

#[cfg(feature = "rayon")]
fn bits(arrays: &RiskArrays) -> Vec<u64> {
    arrays
        .arrays()
        .iter()
        .flat_map(|a| a.native().iter().chain(a.quote()).map(|x| x.to_bits()))
        .collect()
}

#[cfg(feature = "rayon")]
#[test]
fn results_do_not_depend_on_thread_count() {
    let (set, base) = (instruments(), market());
    let scenarios = scenarios(300, 1.0, 1.0, 3);
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| RiskArrays::compute(&set, &base, &scenarios, method).unwrap())
        };
        assert_eq!(bits(&run(1)), bits(&run(2)));
        assert_eq!(bits(&run(1)), bits(&run(3)));
    }
}

#[test]
fn book_pnl_is_the_sum_of_quantity_times_array_and_var_es_are_sane() {
    let (set, base) = (instruments(), market());
    let scenarios = scenarios(500, 1.0, 0.5, 4);
    let arrays = RiskArrays::compute(&set, &base, &scenarios, Revaluation::Full).unwrap();
    let quantities = [3.0, -5.0, 2.0, -1.5, 4.0, -200.0, -0.5, 30.0, 0.25];
    let positions: Vec<Position> = set
        .iter()
        .zip(quantities)
        .map(|(item, q)| Position::new(item.id.clone(), q))
        .collect();
    let book = Portfolio::new(AccountId::new("acct"), positions, &set).unwrap();
    let total = portfolio_pnl(&book, &arrays).unwrap();
    let per_position = position_pnl(&book, &arrays).unwrap();
    for i in 0..scenarios.len() {
        let mut sum = 0.0;
        for (p, item) in book.positions().iter().zip(set.iter()) {
            sum += p.quantity * arrays.get(&item.id).unwrap().quote()[i];
        }
        assert_eq!(total[i], sum);
        let from_positions: f64 = per_position.iter().fold(0.0, |acc, v| acc + v[i]);
        assert_eq!(total[i], from_positions);
    }
    let c = Confidence::new(0.99).unwrap();
    let var = value_at_risk(&total, c, QuantileRule::Empirical).unwrap();
    let es = expected_shortfall(&total, c, QuantileRule::Empirical).unwrap();
    println!("book of 9 positions, 500 scenarios: VaR99 {var:.2}, ES99 {es:.2}");
    assert!(var.is_finite() && es.is_finite() && es >= var && var > 0.0);
    let refs: Vec<&[f64]> = per_position.iter().map(Vec::as_slice).collect();
    let attribution = attribute_risk(&refs, c).unwrap();
    assert!((attribution.total.value_at_risk - var).abs() <= 1e-9 * var.abs());
}

#[test]
fn bad_shocks_name_instrument_scenario_and_factor() {
    let base = market();
    let mut set = InstrumentSet::new();
    let call = OptionContract::new(id("BTC"), OptionKind::Call, 100_000.0, days(30.0)).unwrap();
    set.insert(InstrumentId::new("C").unwrap(), Instrument::Option(call))
        .unwrap();
    let spot_through_zero = ScenarioSet::new(
        vec![(RiskFactor::Spot(id("BTC")), ShockKind::Absolute)],
        vec![0.0, -100_000.0],
        YearFraction::ZERO,
    )
    .unwrap();
    match RiskArrays::compute(&set, &base, &spot_through_zero, Revaluation::Full) {
        Err(Error::InInstrument { id, source }) => {
            assert_eq!(id.as_str(), "C");
            assert!(
                matches!(
                    *source,
                    Error::InvalidShock {
                        scenario: 1,
                        factor: RiskFactor::Spot(_),
                        ..
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let vol_below_zero = ScenarioSet::new(
        vec![(RiskFactor::Vol(id("BTC")), ShockKind::Absolute)],
        vec![0.1, 0.0, -0.6],
        YearFraction::ZERO,
    )
    .unwrap();
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        match RiskArrays::compute(&set, &base, &vol_below_zero, method) {
            Err(Error::InInstrument { source, .. }) => assert!(matches!(
                *source,
                Error::InvalidShock {
                    scenario: 2,
                    factor: RiskFactor::Vol(_),
                    ..
                }
            )),
            other => panic!("{other:?}"),
        }
    }
    // A rate pushed outside the kernel's domain names the rate factor.
    let rate_too_high = ScenarioSet::new(
        vec![(RiskFactor::Rate(id("BTC")), ShockKind::Absolute)],
        vec![2.0],
        YearFraction::ZERO,
    )
    .unwrap();
    match RiskArrays::compute(&set, &base, &rate_too_high, Revaluation::Full) {
        Err(Error::InInstrument { source, .. }) => assert!(matches!(
            *source,
            Error::InvalidShock {
                scenario: 0,
                factor: RiskFactor::Rate(_),
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
    // An instrument on an underlying without market data.
    set.insert(
        InstrumentId::new("ETH-PERP").unwrap(),
        Instrument::Perpetual(PerpetualContract::new(id("ETH"))),
    )
    .unwrap();
    assert!(matches!(
        RiskArrays::compute(&set, &base, &vol_below_zero, Revaluation::Full),
        Err(Error::InInstrument { .. })
    ));
}
