//! Collateral valuation, account health and liquidation plans: hand-computed
//! values, band boundaries, known liquidation answers, monotonicity of health
//! in adverse prices, and no NaN at extreme inputs.

mod common;

use common::{as_of, flat_market, id as uid};
use portfolio_margin::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// Relative tolerance on closed forms evaluated in a different order than
/// the library (a few ulp).
const REL_TOL: f64 = 1e-14;
/// Relative slack when comparing health across prices (option prices are
/// monotone in spot only up to rounding).
const MONOTONE_REL_TOL: f64 = 1e-12;

/// Standard normal quantiles (Wichura AS241, 16 digits).
const Z_99: f64 = 2.326_347_874_040_841;
const Z_995: f64 = 2.575_829_303_548_900_4;

fn close(got: f64, expected: f64, rel: f64) -> bool {
    (got - expected).abs() <= rel * expected.abs().max(1e-300)
}

macro_rules! assert_close {
    ($got:expr, $expected:expr) => {
        assert_close!($got, $expected, REL_TOL)
    };
    ($got:expr, $expected:expr, $rel:expr) => {{
        let (g, e) = ($got, $expected);
        assert!(
            close(g, e, $rel),
            "got {g:e}, expected {e:e} (rel tol {:e})",
            $rel
        );
    }};
}

fn id(s: &str) -> AssetId {
    AssetId::new(s).unwrap()
}
fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}
fn h(x: f64) -> Haircut {
    Haircut::new(x).unwrap()
}

fn market_at(btc: f64, eth: f64) -> MarketSnapshot {
    flat_market(&[("BTC", btc, 0.04, 0.0, 0.55), ("ETH", eth, 0.04, 0.0, 0.7)])
}

fn market() -> MarketSnapshot {
    market_at(100_000.0, 4_000.0)
}

fn usdc() -> CollateralAsset {
    CollateralAsset::at_par(id("USDC"), AssetKind::Stablecoin, 1.0).unwrap()
}

fn coin(name: &str, haircut: HaircutPolicy) -> CollateralAsset {
    CollateralAsset::new(
        id(name),
        AssetKind::Coin,
        PriceSource::Underlying(uid(name)),
        haircut,
    )
    .unwrap()
}

fn tiers(t: &[(f64, f64)]) -> LiquidityTiers {
    LiquidityTiers::new(
        t.iter()
            .map(|&(from, x)| LiquidityTier {
                from,
                haircut: h(x),
            })
            .collect(),
    )
    .unwrap()
}

/// A haircut policy with only liquidity tiers (no volatility haircut).
fn tiers_only(t: &[(f64, f64)], uplift: BorrowUplift) -> HaircutPolicy {
    HaircutPolicy::new(VolatilityHaircut::NONE, tiers(t), uplift).unwrap()
}

fn usdc_policy() -> CollateralPolicy {
    CollateralPolicy::new(id("USDC"), vec![usdc()]).unwrap()
}

// ---------------------------------------------------------------- haircuts

#[test]
fn volatility_haircut_matches_formula() {
    // h = min(cap, z_c sigma sqrt(days / 365)).
    let defaults = VolatilityHaircut::with_defaults(VolatilitySource::Fixed(0.8)).unwrap();
    assert_eq!(defaults.confidence_level(), 0.99);
    assert_eq!(defaults.horizon_days(), 1.0);
    assert_eq!(defaults.cap(), h(0.5));
    let expected = Z_99 * 0.8 * (1.0f64 / 365.0).sqrt();
    assert_close!(expected, 0.097_413_290_363_188_92);
    assert_close!(defaults.haircut_at(0.8).unwrap().fraction(), expected);

    let two_days = VolatilityHaircut::new(
        VolatilitySource::Fixed(0.6),
        Confidence::new(0.995).unwrap(),
        2.0,
        h(0.3),
    )
    .unwrap();
    let expected = Z_995 * 0.6 * (2.0f64 / 365.0).sqrt();
    assert_close!(expected, 0.114_402_863_657_223_87);
    assert_close!(two_days.haircut_at(0.6).unwrap().fraction(), expected);
    // The cap binds.
    assert_eq!(two_days.haircut_at(5.0).unwrap(), h(0.3));
    assert_eq!(two_days.haircut_at(f64::MAX).unwrap(), h(0.3));
    assert_eq!(two_days.haircut_at(0.0).unwrap(), Haircut::ZERO);
    assert!(two_days.haircut_at(-0.1).is_err());
    assert!(two_days.haircut_at(f64::NAN).is_err());
    // Confidence below one half would give a negative haircut.
    assert!(
        VolatilityHaircut::new(
            VolatilitySource::MarketAtm,
            Confidence::new(0.4).unwrap(),
            1.0,
            h(0.5)
        )
        .is_err()
    );
    assert!(
        VolatilityHaircut::new(
            VolatilitySource::MarketAtm,
            Confidence::new(0.99).unwrap(),
            0.0,
            h(0.5)
        )
        .is_err()
    );
}

#[test]
fn market_atm_haircut_reads_the_snapshot_vol() {
    let btc = coin(
        "BTC",
        HaircutPolicy::new(
            VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm).unwrap(),
            LiquidityTiers::none(),
            BorrowUplift::MirrorHaircut,
        )
        .unwrap(),
    );
    let got = btc.volatility_haircut(&market()).unwrap().fraction();
    assert_close!(got, Z_99 * 0.55 * (1.0f64 / 365.0).sqrt());
    assert_close!(got, 0.066_971_637_124_692_38);
    // Valued: 1 BTC keeps 100k x (1 - h).
    let policy = CollateralPolicy::new(id("USDC"), vec![usdc(), btc]).unwrap();
    let v = value_collateral(&[Balance::new(id("BTC"), 1.0)], &market(), &policy).unwrap();
    assert_close!(v.adjusted_value, 100_000.0 * (1.0 - got));
    assert_close!(v.lines[0].haircut.fraction(), got, 1e-12);
}

#[test]
fn liquidity_tiers_apply_per_slice() {
    let t = tiers(&[(0.0, 0.0), (1e6, 0.05), (5e6, 0.20)]);
    let base = h(0.05);
    // Below the first break: one slice.
    assert_close!(t.adjusted_value(0.5e6, base).unwrap(), 0.475e6);
    assert_close!(t.adjusted_value(1e6, base).unwrap(), 0.95e6);
    // 1M x 0.95 + 2M x 0.90.
    assert_close!(t.adjusted_value(3e6, base).unwrap(), 2.75e6);
    // 1M x 0.95 + 4M x 0.90 + 3M x 0.75.
    assert_close!(t.adjusted_value(8e6, base).unwrap(), 6.8e6);
    assert_close!(t.effective_haircut(8e6, base).unwrap().fraction(), 0.15);
    // Each slice's total haircut is capped at 100%: with a 90% base the
    // slice above 5M keeps nothing.
    assert_close!(t.adjusted_value(8e6, h(0.9)).unwrap(), 0.1e6 + 4e6 * 0.05);
    assert_eq!(t.adjusted_value(0.0, base).unwrap(), 0.0);
    assert!(t.adjusted_value(-1.0, base).is_err());

    // Through value_collateral: 80 BTC at 100k, tiers only.
    let policy = CollateralPolicy::new(
        id("USDC"),
        vec![
            usdc(),
            coin(
                "BTC",
                tiers_only(
                    &[(0.0, 0.0), (1e6, 0.05), (5e6, 0.20)],
                    BorrowUplift::MirrorHaircut,
                ),
            ),
        ],
    )
    .unwrap();
    let v = value_collateral(&[Balance::new(id("BTC"), 80.0)], &market(), &policy).unwrap();
    // 1M + 4M x 0.95 + 3M x 0.80.
    assert_close!(v.adjusted_value, 1e6 + 3.8e6 + 2.4e6);
    assert_close!(v.lines[0].haircut.fraction(), 0.1);
    assert_eq!(v.market_value, 8e6);
}

#[test]
fn borrowed_balances_are_liabilities_with_uplift() {
    let policy = |uplift| {
        CollateralPolicy::new(
            id("USDC"),
            vec![
                usdc(),
                coin("BTC", tiers_only(&[(0.0, 0.0), (1e5, 0.1)], uplift)),
            ],
        )
        .unwrap()
    };
    let m = market();
    let value =
        |balances: &[Balance], uplift| value_collateral(balances, &m, &policy(uplift)).unwrap();
    // Borrowed stablecoin at par: no haircut, no uplift.
    let v = value(
        &[Balance::new(id("USDC"), -50_000.0)],
        BorrowUplift::MirrorHaircut,
    );
    assert_eq!(v.adjusted_value, -50_000.0);
    assert_eq!(v.liability_value, 50_000.0);
    assert_eq!(v.asset_value, 0.0);

    // 2 BTC borrowed, mirror uplift: the 200k would take 100k x 0 + 100k x
    // 10% = 5% if held, so the liability is 200k x 1.05.
    let v = value(
        &[Balance::new(id("BTC"), -2.0)],
        BorrowUplift::MirrorHaircut,
    );
    assert_close!(v.adjusted_value, -210_000.0);
    assert_close!(v.lines[0].borrow_uplift, 0.05);
    assert_eq!(v.lines[0].haircut, Haircut::ZERO);
    assert_eq!(v.market_value, -200_000.0);

    // Fixed 10% uplift.
    let v = value(
        &[
            Balance::new(id("BTC"), -2.0),
            Balance::new(id("USDC"), 300_000.0),
        ],
        BorrowUplift::Fixed(0.1),
    );
    assert_close!(v.lines[0].adjusted_value, -220_000.0);
    assert_close!(v.adjusted_value, 80_000.0);
    assert_eq!(v.market_value, 100_000.0);
    assert!(
        HaircutPolicy::new(
            VolatilityHaircut::NONE,
            LiquidityTiers::none(),
            BorrowUplift::Fixed(-0.1)
        )
        .is_err()
    );
}

#[test]
fn values_convert_to_a_btc_settlement_currency() {
    let policy = CollateralPolicy::new(
        id("BTC"),
        vec![
            usdc(),
            coin(
                "BTC",
                tiers_only(&[(0.0, 0.1)], BorrowUplift::MirrorHaircut),
            ),
            coin("ETH", HaircutPolicy::none()),
        ],
    )
    .unwrap();
    let m = market();
    let v = value_collateral(
        &[
            Balance::new(id("BTC"), 1.0),
            Balance::new(id("USDC"), 50_000.0),
            Balance::new(id("ETH"), -5.0),
        ],
        &m,
        &policy,
    )
    .unwrap();
    assert_eq!(v.settlement, id("BTC"));
    assert_eq!(v.settlement_price, 100_000.0);
    // 90k + 50k - 20k = 120k = 1.2 BTC.
    assert_close!(v.adjusted_value, 120_000.0);
    assert_close!(v.adjusted_value_settlement, 1.2);
    assert_close!(v.market_value_settlement, 1.3);
    assert_close!(v.lines[0].adjusted_value_settlement, 0.9);
    assert_close!(v.lines[1].market_value_settlement, 0.5);
    assert_close!(v.lines[2].adjusted_value_settlement, -0.2);

    // A coin amount (an inverse contract's value) in quote and settlement.
    let eth = policy.convert_coin(&uid("ETH"), 2.0, &m).unwrap();
    assert_eq!(eth.quote, 8_000.0);
    assert_close!(eth.settlement, 0.08);
    assert_eq!(policy.to_settlement(250_000.0, &m).unwrap(), 2.5);
    assert_eq!(coin_to_quote(0.5, &uid("BTC"), &m).unwrap(), 50_000.0);
    assert!(coin_to_quote(1.0, &uid("SOL"), &m).is_err());
}

#[test]
fn valuation_errors_are_typed() {
    let policy = usdc_policy();
    let m = market();
    let err = value_collateral(&[Balance::new(id("BTC"), 1.0)], &m, &policy).unwrap_err();
    assert_eq!(err, Error::UnknownAsset(id("BTC")));
    let err = value_collateral(
        &[Balance::new(id("USDC"), 1.0), Balance::new(id("USDC"), 2.0)],
        &m,
        &policy,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateId {
                what: "balance",
                ..
            }
        ),
        "{err}"
    );
    let err = value_collateral(&[Balance::new(id("USDC"), f64::NAN)], &m, &policy).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidElement {
                what: "balance amount",
                index: 0,
                ..
            }
        ),
        "{err}"
    );
    // An asset priced off an underlying the snapshot lacks.
    let sol = CollateralPolicy::new(id("USDC"), vec![usdc(), coin("SOL", HaircutPolicy::none())])
        .unwrap();
    let err = value_collateral(&[Balance::new(id("SOL"), 1.0)], &m, &sol).unwrap_err();
    assert_eq!(err, Error::MissingUnderlying(uid("SOL")));
    // Policy construction.
    assert!(CollateralPolicy::new(id("USDC"), vec![usdc(), usdc()]).is_err());
    assert_eq!(
        CollateralPolicy::new(id("USD"), vec![usdc()]).unwrap_err(),
        Error::UnknownAsset(id("USD"))
    );
    assert!(CollateralAsset::at_par(id("USD"), AssetKind::Fiat, 0.0).is_err());
    assert!(CollateralAsset::at_par(id("USD"), AssetKind::Fiat, f64::INFINITY).is_err());
    for bad in ["", " BTC", "B\tC", &"X".repeat(65)] {
        assert!(AssetId::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn huge_balances_give_typed_errors_not_infinity() {
    let policy =
        CollateralPolicy::new(id("USDC"), vec![usdc(), coin("BTC", HaircutPolicy::none())])
            .unwrap();
    let m = market();
    // 1e300 BTC at 1e5 is 1e305: finite.
    let v = value_collateral(&[Balance::new(id("BTC"), 1e300)], &m, &policy).unwrap();
    assert_close!(v.adjusted_value, 1e305);
    assert_close!(v.adjusted_value_settlement, 1e305);
    // 1e305 BTC at 1e5 overflows, held or borrowed.
    for amount in [1e305, -1e305] {
        let err = value_collateral(&[Balance::new(id("BTC"), amount)], &m, &policy).unwrap_err();
        assert!(matches!(err, Error::NonFiniteResult { .. }), "{err}");
    }
    // Two balances whose sum overflows.
    let err = value_collateral(
        &[
            Balance::new(id("USDC"), 1.7e308),
            Balance::new(id("BTC"), 1.7e303),
        ],
        &m,
        &policy,
    )
    .unwrap_err();
    assert!(matches!(err, Error::NonFiniteResult { .. }), "{err}");
}

// ---------------------------------------------------------------- health

/// An account with only a USDC balance and an empty book, assessed at
/// `margin`.
fn cash_health(cash: f64, margin: MarginRequirement, bands: &HealthBands) -> AccountHealth {
    let instruments = InstrumentSet::new();
    let book = Portfolio::new(AccountId::new("a"), vec![], &instruments).unwrap();
    let balances = [Balance::new(id("USDC"), cash)];
    let m = market();
    let policy = usdc_policy();
    let account = Account {
        balances: &balances,
        portfolio: &book,
        instruments: &instruments,
        market: &m,
        policy: &policy,
    };
    account_health(&account, margin, bands).unwrap()
}

#[test]
fn health_band_boundaries() {
    let bands = HealthBands::default();
    let margin = MarginRequirement::new(2_000.0, 0.5).unwrap(); // maintenance 1000
    let cases = [
        (1e6, HealthStatus::Healthy),
        (1_250.0, HealthStatus::Healthy),
        (1_249.99, HealthStatus::Warning),
        (1_100.0, HealthStatus::Warning),
        (1_099.99, HealthStatus::ReduceOnly),
        (1_000.0, HealthStatus::ReduceOnly),
        (999.99, HealthStatus::Liquidation),
        (1e-9, HealthStatus::Liquidation),
        (0.0, HealthStatus::Bankrupt),
        (-5.0, HealthStatus::Bankrupt),
    ];
    for (equity, status) in cases {
        let health = cash_health(equity, margin, &bands);
        assert_eq!(health.status, status, "equity {equity}");
        let expected = HealthFactor::Ratio((equity / 1_000.0).max(0.0));
        assert_eq!(health.health_factor, expected, "equity {equity}");
    }
    // No maintenance margin: unbounded (healthy) with positive equity,
    // Ratio(0) and bankrupt without.
    let health = cash_health(1.0, MarginRequirement::ZERO, &bands);
    assert_eq!(health.health_factor, HealthFactor::Unbounded);
    assert_eq!(health.status, HealthStatus::Healthy);
    let health = cash_health(0.0, MarginRequirement::ZERO, &bands);
    assert_eq!(health.health_factor, HealthFactor::Ratio(0.0));
    assert_eq!(health.status, HealthStatus::Bankrupt);

    // Custom bands; equal thresholds empty a band.
    let tight = HealthBands::new(1.5, 1.0, 1.0).unwrap();
    assert_eq!(
        cash_health(1_000.0, margin, &tight).status,
        HealthStatus::Warning
    );
    assert_eq!(
        cash_health(999.0, margin, &tight).status,
        HealthStatus::Liquidation
    );
    assert!(HealthBands::new(1.2, 1.3, 1.0).is_err());
    assert!(HealthBands::new(1.2, 1.1, 1.15).is_err());
    assert!(HealthBands::new(1.2, 1.1, 0.0).is_err());
    assert!(HealthBands::new(f64::INFINITY, 1.1, 1.0).is_err());
}

#[test]
fn deposit_to_restore_and_withdrawable() {
    let bands = HealthBands::default();
    let margin = MarginRequirement::new(2_000.0, 0.5).unwrap();
    let health = cash_health(900.0, margin, &bands);
    // 1.25 x 1000 - 900.
    assert_eq!(health.deposit_to_healthy, 350.0);
    assert_eq!(health.deposit_to_reach(1.0).unwrap(), 100.0);
    assert_eq!(health.deposit_to_reach(0.5).unwrap(), 0.0);
    assert_eq!(health.withdrawable, 0.0);
    assert!(health.deposit_to_reach(0.0).is_err());
    // A deposit of exactly that amount restores the target.
    let restored = cash_health(900.0 + 350.0, margin, &bands);
    assert_eq!(restored.status, HealthStatus::Healthy);
    assert_eq!(restored.deposit_to_healthy, 0.0);

    let rich = cash_health(2_500.0, margin, &bands);
    assert_eq!(rich.withdrawable, 500.0);
    assert_eq!(rich.deposit_to_healthy, 0.0);
    assert_eq!(rich.equity_settlement, 2_500.0);
    assert_eq!(deposit_to_reach(-100.0, 0.0, 1.25).unwrap(), 100.0);
}

#[test]
fn health_in_a_btc_settled_account() {
    let policy =
        CollateralPolicy::new(id("BTC"), vec![usdc(), coin("BTC", HaircutPolicy::none())]).unwrap();
    let instruments = InstrumentSet::new();
    let book = Portfolio::new(AccountId::new("a"), vec![], &instruments).unwrap();
    let balances = [
        Balance::new(id("BTC"), 0.5),
        Balance::new(id("USDC"), 10_000.0),
    ];
    let m = market();
    let account = Account {
        balances: &balances,
        portfolio: &book,
        instruments: &instruments,
        market: &m,
        policy: &policy,
    };
    let health = account_health(
        &account,
        MarginRequirement::new(50_000.0, 0.8).unwrap(),
        &HealthBands::default(),
    )
    .unwrap();
    assert_eq!(health.equity, 60_000.0);
    assert_close!(health.equity_settlement, 0.6);
    assert_close!(health.withdrawable_settlement, 0.1);
    // Maintenance 40k: factor 1.5, healthy.
    assert_eq!(health.health_factor, HealthFactor::Ratio(1.5));
    assert_eq!(health.deposit_to_healthy_settlement, 0.0);
}

/// A BTC future "F" expiring at `expiry`, an ETH perpetual "P" and ETH
/// spot "S".
fn add_delta_one(set: &mut InstrumentSet, expiry: Timestamp) {
    set.insert(
        iid("F"),
        Instrument::Future(FutureContract::new(uid("BTC"), expiry)),
    )
    .unwrap();
    set.insert(
        iid("P"),
        Instrument::Perpetual(PerpetualContract::new(uid("ETH"))),
    )
    .unwrap();
    set.insert(iid("S"), Instrument::Spot(uid("ETH"))).unwrap();
}

#[test]
fn positions_are_marked_by_convention() {
    let m = market();
    let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0).unwrap();
    let call = OptionContract::new(uid("BTC"), OptionKind::Call, 110_000.0, expiry).unwrap();
    let inverse_call = call
        .clone()
        .with_multiplier(0.1)
        .unwrap()
        .with_settlement(Settlement::Inverse);
    let mut set = InstrumentSet::new();
    set.insert(iid("C"), Instrument::Option(call.clone()))
        .unwrap();
    set.insert(iid("IC"), Instrument::Option(inverse_call))
        .unwrap();
    add_delta_one(&mut set, expiry);
    let premium = price(&Instrument::Option(call), &m).unwrap();
    let value = |positions: Vec<Position>| {
        let book = Portfolio::new(AccountId::new("a"), positions, &set).unwrap();
        positions_value(&book, &set, &m).unwrap()
    };
    // Futures and perpetuals: 0 (variation margin is in the balances).
    assert_eq!(
        value(vec![
            Position::new(iid("F"), 3.0),
            Position::new(iid("P"), -7.0)
        ]),
        0.0
    );
    // Long and short options: +- premium x quantity.
    assert_close!(value(vec![Position::new(iid("C"), 2.0)]), 2.0 * premium);
    assert_close!(value(vec![Position::new(iid("C"), -3.0)]), -3.0 * premium);
    // Coin-settled: coin premium x multiplier x quantity x spot equals the
    // linear premium for the same exposure.
    assert_close!(
        value(vec![Position::new(iid("IC"), -10.0)]),
        -premium,
        1e-12
    );
    // Spot held as a position: spot x quantity.
    assert_eq!(value(vec![Position::new(iid("S"), 2.0)]), 8_000.0);

    // Expired options name the instrument.
    let late = market_at(100_000.0, 4_000.0);
    let mut late_set = InstrumentSet::new();
    let gone = OptionContract::new(uid("BTC"), OptionKind::Put, 90_000.0, as_of()).unwrap();
    late_set.insert(iid("X"), Instrument::Option(gone)).unwrap();
    let book = Portfolio::new(
        AccountId::new("a"),
        vec![Position::new(iid("X"), 1.0)],
        &late_set,
    )
    .unwrap();
    let err = positions_value(&book, &late_set, &late).unwrap_err();
    assert!(matches!(err, Error::InInstrument { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, rng_seed: proptest::test_runner::RngSeed::Fixed(41), ..ProptestConfig::default() })]

    /// One policy priced once per snapshot values account after account
    /// as a fresh value_collateral values each (nothing carries over from
    /// one account to the next), errors included: an asset priced off an
    /// underlying the snapshot lacks, a duplicate, an unknown asset, a
    /// non-finite or overflowing amount.
    #[test]
    fn priced_collateral_values_each_account_afresh(
        accounts in proptest::collection::vec(
            proptest::collection::vec((0usize..6, prop_oneof![
                8 => -1e6f64..1e6,
                1 => Just(f64::NAN),
                1 => Just(1e305),
            ]), 0..8),
            1..12,
        ),
    ) {
        let m = market();
        let market_atm = |name: &str| coin(name, HaircutPolicy::new(
            VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm).unwrap(),
            tiers(&[(0.0, 0.01), (1e6, 0.05)]),
            BorrowUplift::MirrorHaircut,
        ).unwrap());
        let policy = CollateralPolicy::new(id("USDC"), vec![
            usdc(),
            market_atm("BTC"),
            market_atm("ETH"),
            // Priced off an underlying the snapshot lacks.
            market_atm("SOL"),
            coin("XRP", tiers_only(&[(0.0, 0.2)], BorrowUplift::Fixed(0.1))),
        ]).unwrap();
        let names = ["USDC", "BTC", "ETH", "SOL", "XRP", "DOGE"];
        let priced = PricedCollateral::new(&policy, &m);
        for picks in &accounts {
            let balances: Vec<Balance> = picks
                .iter()
                .map(|&(k, amount)| Balance::new(id(names[k]), amount))
                .collect();
            // Compared as printed: a NaN in an error is not equal to
            // itself, and f64's Debug form round-trips every other value.
            prop_assert_eq!(
                format!("{:?}", priced.value(&balances)),
                format!("{:?}", value_collateral(&balances, &m, &policy))
            );
        }
    }
}

#[test]
fn engine_marks_agree_with_the_pricer_and_feed_the_same_health() {
    let m = market();
    let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0).unwrap();
    let mut set = InstrumentSet::new();
    for (k, strike) in [80_000.0, 100_000.0, 130_000.0].into_iter().enumerate() {
        let call = OptionContract::new(uid("BTC"), OptionKind::Call, strike, expiry).unwrap();
        let put = OptionContract::new(uid("BTC"), OptionKind::Put, strike, expiry)
            .unwrap()
            .with_multiplier(0.1)
            .unwrap()
            .with_settlement(Settlement::Inverse)
            .with_model(OptionModel::Black76);
        set.insert(iid(&format!("C{k}")), Instrument::Option(call))
            .unwrap();
        set.insert(iid(&format!("IP{k}")), Instrument::Option(put))
            .unwrap();
    }
    let eth_call = OptionContract::new(uid("ETH"), OptionKind::Call, 4_200.0, expiry).unwrap();
    set.insert(iid("EC"), Instrument::Option(eth_call)).unwrap();
    add_delta_one(&mut set, expiry);
    let engine = GridMarginEngine::new(&set, &m, GridPolicy::deribit_style()).unwrap();
    let policy = usdc_policy();
    let balances = [Balance::new(id("USDC"), 250_000.0)];
    let books: [&[(&str, f64)]; 4] = [
        &[("C0", -3.0), ("IP1", 25.0), ("F", 2.0), ("S", 4.0)],
        &[("C2", 7.5), ("IP0", -40.0), ("EC", -12.0), ("P", -3.0)],
        &[("F", 1.0), ("P", 1.0)],
        &[],
    ];
    for positions in books {
        let positions = positions
            .iter()
            .map(|&(name, q)| Position::new(iid(name), q))
            .collect();
        let book = Portfolio::new(AccountId::new("a"), positions, &set).unwrap();
        let account = engine.account(&book).unwrap();
        let slow = positions_value(&book, &set, &m).unwrap();
        let fast = engine.positions_value(&account).unwrap();
        assert!(
            (fast - slow).abs() <= 1e-12 * slow.abs().max(1.0),
            "marks {fast} vs pricer {slow}"
        );
        // Health from the parts is account_health, bit for bit, when the
        // parts are the same numbers.
        let margin = engine.requirement(&account).unwrap();
        let view = Account {
            balances: &balances,
            portfolio: &book,
            instruments: &set,
            market: &m,
            policy: &policy,
        };
        let whole = account_health(&view, margin, &HealthBands::default()).unwrap();
        let collateral = value_collateral(&balances, &m, &policy).unwrap();
        let parts =
            health_from_valuation(collateral, slow, margin, &HealthBands::default()).unwrap();
        assert_eq!(whole, parts);
    }
    // A non-finite positions value is refused by name, not turned into a
    // NaN equity.
    let collateral = value_collateral(&balances, &m, &policy).unwrap();
    let err = health_from_valuation(
        collateral,
        f64::NAN,
        MarginRequirement::ZERO,
        &HealthBands::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("positions value"), "{err}");
    // An account resolved by another engine's listing is refused.
    let mut other = InstrumentSet::new();
    other
        .insert(iid("S"), Instrument::Spot(uid("ETH")))
        .unwrap();
    let other_engine = GridMarginEngine::new(&other, &m, GridPolicy::deribit_style()).unwrap();
    let book = Portfolio::new(
        AccountId::new("a"),
        vec![Position::new(iid("S"), 1.0)],
        &other,
    )
    .unwrap();
    let foreign = other_engine.account(&book).unwrap();
    assert!(matches!(
        engine.positions_value(&foreign),
        Err(Error::ListingMismatch)
    ));
}

// ---------------------------------------------------------------- liquidation

/// Instruments of the liquidation tests: a BTC perpetual (naked leg), and
/// an ETH future and perpetual (hedged pair).
fn liquidation_instruments() -> InstrumentSet {
    let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0).unwrap();
    let mut set = InstrumentSet::new();
    for (name, instrument) in [
        (
            "BTC-PERP",
            Instrument::Perpetual(PerpetualContract::new(uid("BTC"))),
        ),
        (
            "BTC-PERP-2",
            Instrument::Perpetual(PerpetualContract::new(uid("BTC"))),
        ),
        (
            "ETH-FUT",
            Instrument::Future(FutureContract::new(uid("ETH"), expiry)),
        ),
        (
            "ETH-PERP",
            Instrument::Perpetual(PerpetualContract::new(uid("ETH"))),
        ),
    ] {
        set.insert(iid(name), instrument).unwrap();
    }
    set
}

/// Maintenance margin per underlying: 5% of |net notional| + 1% of gross
/// notional at spot; initial margin twice that.
fn net_gross_margin(
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
) -> impl Fn(&Portfolio) -> Result<MarginRequirement> {
    move |book: &Portfolio| {
        let mut per: HashMap<UnderlyingId, (f64, f64)> = HashMap::new();
        for p in book.positions() {
            let instrument = instruments.get(&p.instrument)?;
            let spot = market.underlying(instrument.underlying())?.spot();
            let notional = p.quantity * instrument.multiplier() * spot;
            let e = per.entry(instrument.underlying().clone()).or_default();
            e.0 += notional;
            e.1 += notional.abs();
        }
        let mut names: Vec<_> = per.keys().cloned().collect();
        names.sort();
        let mm: f64 = names
            .iter()
            .map(|u| {
                let (net, gross) = per[u];
                0.05 * net.abs() + 0.01 * gross
            })
            .sum();
        MarginRequirement::new(2.0 * mm, 0.5)
    }
}

struct Fixture {
    instruments: InstrumentSet,
    market: MarketSnapshot,
    policy: CollateralPolicy,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            instruments: liquidation_instruments(),
            market: market(),
            policy: usdc_policy(),
        }
    }

    /// The fixture's account with `book` and `balances`.
    fn account<'a>(&'a self, book: &'a Portfolio, balances: &'a [Balance]) -> Account<'a> {
        Account {
            balances,
            portfolio: book,
            instruments: &self.instruments,
            market: &self.market,
            policy: &self.policy,
        }
    }

    fn plan(
        &self,
        positions: &[(&str, f64)],
        cash: f64,
        policy: &LiquidationPolicy,
    ) -> LiquidationPlan {
        let book = Portfolio::new(
            AccountId::new("a"),
            positions
                .iter()
                .map(|&(n, q)| Position::new(iid(n), q))
                .collect(),
            &self.instruments,
        )
        .unwrap();
        let balances = [Balance::new(id("USDC"), cash)];
        let account = self.account(&book, &balances);
        let margin = net_gross_margin(&self.instruments, &self.market);
        plan_liquidation(&account, margin, &HealthBands::default(), policy).unwrap()
    }
}

/// Naked short 1 BTC (100k notional: maintenance 5000 + 1000) and a hedged
/// ETH pair, long 10 future / short 10 perpetual at 4000 (net 0, gross
/// 80k: maintenance 800). Total maintenance 6800.
const NAKED_AND_HEDGED: [(&str, f64); 3] =
    [("BTC-PERP", -1.0), ("ETH-FUT", 10.0), ("ETH-PERP", -10.0)];

#[test]
fn liquidation_closes_the_naked_leg_first() {
    let fx = Fixture::new();
    // Equity 6000 vs maintenance 6800: factor 0.882, liquidation.
    let plan = fx.plan(&NAKED_AND_HEDGED, 6_000.0, &LiquidationPolicy::default());
    assert_eq!(plan.equity, 6_000.0);
    assert_close!(plan.initial.margin.maintenance(), 6_800.0);
    assert_eq!(plan.initial.status, HealthStatus::Liquidation);
    // Reducing an ETH leg by 2.5 raises ETH maintenance from 800 to
    // 500 + 700 = 1200, so only BTC is ever cut: 25% lots of 1 BTC relieve
    // 1500 each (0.06 per unit of notional). After one lot: 5300 (factor
    // 1.132); after two: 3800 (factor 1.579 >= 1.25).
    assert!(plan.restored);
    assert_eq!(plan.stop, StopReason::Restored);
    assert_eq!(plan.steps.len(), 2);
    for (step, (remaining, mm)) in plan.steps.iter().zip([(-0.75, 5_300.0), (-0.5, 3_800.0)]) {
        assert_eq!(step.kind, StepKind::SinglePosition);
        assert_eq!(step.reductions.len(), 1);
        let r = &step.reductions[0];
        assert_eq!((r.position, r.instrument.as_str()), (0, "BTC-PERP"));
        assert_eq!(r.trade, 0.25);
        assert_eq!(r.remaining, remaining);
        assert_close!(r.notional, 25_000.0);
        assert_close!(step.relief, 1_500.0, 1e-12);
        assert_close!(step.after.margin.maintenance(), mm, 1e-12);
    }
    assert_eq!(plan.steps[0].after.status, HealthStatus::Warning);
    assert_eq!(plan.final_state.status, HealthStatus::Healthy);
    let HealthFactor::Ratio(f) = plan.final_state.health_factor else {
        panic!("bounded factor expected");
    };
    assert_close!(f, 6_000.0 / 3_800.0, 1e-12);
    let remaining: Vec<(String, f64)> = plan
        .remaining
        .positions()
        .iter()
        .map(|p| (p.instrument.to_string(), p.quantity))
        .collect();
    assert_eq!(
        remaining,
        [
            ("BTC-PERP".to_string(), -0.5),
            ("ETH-FUT".to_string(), 10.0),
            ("ETH-PERP".to_string(), -10.0)
        ]
    );
}

#[test]
fn healthy_accounts_get_an_empty_plan() {
    let fx = Fixture::new();
    let plan = fx.plan(&NAKED_AND_HEDGED, 10_000.0, &LiquidationPolicy::default());
    assert!(plan.restored);
    assert!(plan.steps.is_empty());
    assert_eq!(plan.final_state, plan.initial);
    assert_eq!(plan.remaining.positions().len(), 3);
}

#[test]
fn ties_go_to_the_earlier_position() {
    let fx = Fixture::new();
    // Two identical shorts on the same underlying, listed B then A: every
    // lot of either relieves the same margin; position order decides.
    let policy =
        LiquidationPolicy::new(1.25, LotSize::Contracts(0.5), HedgedUnwind::Keep, 100).unwrap();
    // Maintenance 0.06 x 200k = 12000; equity 9000 needs maintenance <= 7200,
    // at most 1.2 BTC left: two half-contract lots (3000 relief each), both
    // of BTC-PERP-2, the first listed.
    let plan = fx.plan(
        &[("BTC-PERP-2", -1.0), ("BTC-PERP", -1.0)],
        9_000.0,
        &policy,
    );
    let order: Vec<(usize, f64)> = plan
        .steps
        .iter()
        .map(|s| (s.reductions[0].position, s.reductions[0].remaining))
        .collect();
    assert_eq!(order, [(0, -0.5), (0, 0.0)]);
    assert!(plan.restored);
    assert_close!(plan.final_state.margin.maintenance(), 6_000.0, 1e-12);
    assert_eq!(
        plan.remaining.positions()[0].instrument.as_str(),
        "BTC-PERP"
    );
}

#[test]
fn hedged_books_are_kept_or_unwound_pro_rata() {
    let fx = Fixture::new();
    let pair = [("ETH-FUT", 10.0), ("ETH-PERP", -10.0)];
    // Equity 900 vs maintenance 800: factor 1.125 < 1.25.
    let keep = LiquidationPolicy::new(
        1.25,
        LotSize::FractionOfPosition(0.25),
        HedgedUnwind::Keep,
        100,
    )
    .unwrap();
    let plan = fx.plan(&pair, 900.0, &keep);
    assert!(!plan.restored);
    assert_eq!(plan.stop, StopReason::NoRelief);
    assert!(plan.steps.is_empty());

    // Pro rata: both legs by 2.5 at once, maintenance 600, factor 1.5.
    let plan = fx.plan(&pair, 900.0, &LiquidationPolicy::default());
    assert!(plan.restored);
    assert_eq!(plan.steps.len(), 1);
    let step = &plan.steps[0];
    assert_eq!(step.kind, StepKind::ProRata);
    let trades: Vec<(usize, f64)> = step
        .reductions
        .iter()
        .map(|r| (r.position, r.trade))
        .collect();
    assert_eq!(trades, [(0, -2.5), (1, 2.5)]);
    assert_close!(step.notional_closed, 20_000.0);
    assert_close!(step.after.margin.maintenance(), 600.0, 1e-12);
}

#[test]
fn bankrupt_accounts_are_not_restored() {
    let fx = Fixture::new();
    // Equity -100: no reduction can restore a positive factor. The plan
    // closes the naked leg (4 lots), then the pair pro rata (4 steps), and
    // stops with the book closed.
    let plan = fx.plan(&NAKED_AND_HEDGED, -100.0, &LiquidationPolicy::default());
    assert!(!plan.restored);
    assert_eq!(plan.stop, StopReason::BookClosed);
    assert_eq!(plan.steps.len(), 8);
    let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds[..4], [StepKind::SinglePosition; 4]);
    assert_eq!(kinds[4..], [StepKind::ProRata; 4]);
    assert!(plan.remaining.positions().is_empty());
    assert_eq!(plan.final_state.margin, MarginRequirement::ZERO);
    assert_eq!(plan.final_state.health_factor, HealthFactor::Ratio(0.0));
    assert_eq!(plan.final_state.status, HealthStatus::Bankrupt);
    // Margin falls at every step.
    let mut previous = plan.initial.margin.maintenance();
    for step in &plan.steps {
        assert!(step.after.margin.maintenance() < previous);
        previous = step.after.margin.maintenance();
    }

    // The step bound.
    let short = LiquidationPolicy::new(
        1.25,
        LotSize::FractionOfPosition(0.25),
        HedgedUnwind::ProRata,
        3,
    )
    .unwrap();
    let plan = fx.plan(&NAKED_AND_HEDGED, -100.0, &short);
    assert_eq!(plan.stop, StopReason::StepLimit);
    assert_eq!(plan.steps.len(), 3);
    assert!(!plan.restored);
}

#[test]
fn margin_errors_propagate() {
    let fx = Fixture::new();
    let book = Portfolio::new(
        AccountId::new("a"),
        vec![Position::new(iid("BTC-PERP"), -1.0)],
        &fx.instruments,
    )
    .unwrap();
    let balances = [Balance::new(id("USDC"), 1.0)];
    let account = Account {
        balances: &balances,
        portfolio: &book,
        instruments: &fx.instruments,
        market: &fx.market,
        policy: &fx.policy,
    };
    let failing = |_: &Portfolio| -> Result<MarginRequirement> {
        Err(Error::TooFew {
            what: "scenarios",
            min: 1,
            got: 0,
        })
    };
    let err = plan_liquidation(
        &account,
        failing,
        &HealthBands::default(),
        &LiquidationPolicy::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TooFew { .. }));
}

// ---------------------------------------------------------------- serde

#[cfg(feature = "serde")]
#[test]
fn policies_deserialise_through_validation() {
    let json = r#"{
        "settlement": "USDC",
        "assets": [
            {"id": "USDC", "kind": "stablecoin", "price": {"fixed": 1.0}, "haircut": {}},
            {"id": "BTC", "kind": "coin", "price": {"underlying": "BTC"},
             "haircut": {"volatility": {"source": "market_atm", "horizon_days": 2},
                         "liquidity": [{"from": 0, "haircut": 0}, {"from": 1000000, "haircut": 0.05}],
                         "borrow_uplift": {"fixed": 0.1}}}
        ]
    }"#;
    let policy: CollateralPolicy = serde_json::from_str(json).unwrap();
    let btc = policy.asset(&id("BTC")).unwrap();
    let vol = btc.haircut_policy().volatility();
    assert_eq!(vol.horizon_days(), 2.0);
    assert_eq!(vol.confidence_level(), DEFAULT_HAIRCUT_CONFIDENCE);
    assert_eq!(btc.haircut_policy().liquidity().tiers().len(), 2);
    assert_eq!(
        btc.haircut_policy().borrow_uplift(),
        BorrowUplift::Fixed(0.1)
    );
    let back: CollateralPolicy =
        serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
    assert_eq!(back, policy);

    for (bad, needle) in [
        (json.replace("\"USDC\",\n", "\"EUR\",\n"), "EUR"),
        (
            json.replace("\"horizon_days\": 2", "\"horizon_days\": 0"),
            "horizon",
        ),
        (
            json.replace("\"haircut\": 0.05", "\"haircut\": 5"),
            "haircut",
        ),
        (json.replace("\"from\": 1000000", "\"from\": 0"), "tier"),
        (
            json.replace("{\"fixed\": 1.0}", "{\"fixed\": -1.0}"),
            "price",
        ),
        (
            json.replace("{\"fixed\": 0.1}", "{\"fixed\": -0.1}"),
            "uplift",
        ),
        (
            json.replace("\"horizon_days\"", "\"horizon\""),
            "unknown field",
        ),
        (
            json.replace("\"kind\": \"coin\"", "\"kind\": \"coin\", \"x\": 1"),
            "unknown field",
        ),
        (
            json.replace("{\"underlying\": \"BTC\"}", "{\"fixed\": 90000}"),
            "market_atm",
        ),
    ] {
        let err = serde_json::from_str::<CollateralPolicy>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }

    let balances: Vec<Balance> =
        serde_json::from_str(r#"[{"asset": "BTC", "amount": -1.5}]"#).unwrap();
    assert_eq!(balances, [Balance::new(id("BTC"), -1.5)]);
    assert!(serde_json::from_str::<Balance>(r#"{"asset": "BTC", "amount": 1, "a": 2}"#).is_err());
    assert!(serde_json::from_str::<Balance>(r#"{"asset": "", "amount": 1}"#).is_err());

    let bands: HealthBands = serde_json::from_str(r#"{"warning_below": 1.5}"#).unwrap();
    assert_eq!(bands.warning_below(), 1.5);
    assert_eq!(bands.liquidation_below(), DEFAULT_LIQUIDATION_BELOW);
    assert!(serde_json::from_str::<HealthBands>(r#"{"warning_below": 0.5}"#).is_err());
    assert!(serde_json::from_str::<HealthBands>(r#"{"warning": 1.5}"#).is_err());

    let lp: LiquidationPolicy =
        serde_json::from_str(r#"{"lot": {"contracts": 2}, "hedged_unwind": "keep"}"#).unwrap();
    assert_eq!(lp.lot(), LotSize::Contracts(2.0));
    assert_eq!(lp.hedged_unwind(), HedgedUnwind::Keep);
    assert_eq!(lp.target(), DEFAULT_LIQUIDATION_TARGET);
    assert!(serde_json::from_str::<LiquidationPolicy>(r#"{"max_steps": 0}"#).is_err());
    assert!(
        serde_json::from_str::<LiquidationPolicy>(r#"{"lot": {"fraction_of_position": 2}}"#)
            .is_err()
    );
}

// ---------------------------------------------------------------- properties

/// Which way a directional book leans.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// BTC held, long perpetual, long calls: hurt by a falling price.
    Long,
    /// BTC borrowed, short perpetual, long puts: hurt by a rising price.
    Short,
}

/// Entry price of the perpetual: its variation margin since entry is in the
/// USDC balance.
const ENTRY: f64 = 100_000.0;

/// A directional account at BTC spot `spot`: `coins` BTC held (long) or
/// borrowed (short), `cash` USDC plus the perpetuals' variation margin
/// since [`ENTRY`], `perps` perpetuals and `options` long calls (long) or
/// puts (short) struck at 100 000.
struct Directional {
    market: MarketSnapshot,
    instruments: InstrumentSet,
    book: Portfolio,
    policy: CollateralPolicy,
    balances: [Balance; 2],
}

impl Directional {
    fn new(
        direction: Direction,
        spot: f64,
        coins: f64,
        cash: f64,
        perps: f64,
        options: f64,
    ) -> Self {
        let market = market_at(spot, 4_000.0);
        let sign = match direction {
            Direction::Long => 1.0,
            Direction::Short => -1.0,
        };
        let kind = match direction {
            Direction::Long => OptionKind::Call,
            Direction::Short => OptionKind::Put,
        };
        let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0).unwrap();
        let mut instruments = InstrumentSet::new();
        instruments
            .insert(
                iid("PERP"),
                Instrument::Perpetual(PerpetualContract::new(uid("BTC"))),
            )
            .unwrap();
        instruments
            .insert(
                iid("OPT"),
                Instrument::Option(
                    OptionContract::new(uid("BTC"), kind, 100_000.0, expiry).unwrap(),
                ),
            )
            .unwrap();
        let mut positions = Vec::new();
        if perps > 0.0 {
            positions.push(Position::new(iid("PERP"), sign * perps));
        }
        if options > 0.0 {
            positions.push(Position::new(iid("OPT"), options));
        }
        let book = Portfolio::new(AccountId::new("p"), positions, &instruments).unwrap();
        let btc = HaircutPolicy::new(
            VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm).unwrap(),
            tiers(&[(0.0, 0.0), (2e5, 0.05), (5e5, 0.15)]),
            BorrowUplift::MirrorHaircut,
        )
        .unwrap();
        let policy = CollateralPolicy::new(id("USDC"), vec![usdc(), coin("BTC", btc)]).unwrap();
        let balances = [
            Balance::new(id("BTC"), sign * coins),
            Balance::new(id("USDC"), cash + sign * perps * (spot - ENTRY)),
        ];
        Directional {
            market,
            instruments,
            book,
            policy,
            balances,
        }
    }

    fn account(&self) -> Account<'_> {
        Account {
            balances: &self.balances,
            portfolio: &self.book,
            instruments: &self.instruments,
            market: &self.market,
            policy: &self.policy,
        }
    }
}

/// A directional account's health (see [`Directional`]) against a fixed
/// maintenance margin of 2000 per perpetual and 500 per option contract.
fn directional_health(
    direction: Direction,
    spot: f64,
    coins: f64,
    cash: f64,
    perps: f64,
    options: f64,
) -> AccountHealth {
    let d = Directional::new(direction, spot, coins, cash, perps, options);
    let margin = MarginRequirement::new(2.0 * (2_000.0 * perps + 500.0 * options), 0.5).unwrap();
    account_health(&d.account(), margin, &HealthBands::default()).unwrap()
}

fn config() -> ProptestConfig {
    // A fixed seed keeps CI deterministic; set PROPTEST_RNG_SEED (and
    // PROPTEST_CASES) to explore further.
    let mut config = ProptestConfig::with_cases(512);
    config.failure_persistence = None;
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0xC011A7);
    }
    config
}

fn factor_le(a: HealthFactor, b: HealthFactor) -> bool {
    match (a, b) {
        (HealthFactor::Ratio(x), HealthFactor::Ratio(y)) => x <= y + MONOTONE_REL_TOL * y.abs(),
        _ => a <= b,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Moving the price against a directional book never improves its
    /// health: equity and health factor fall, status worsens.
    #[test]
    fn health_falls_as_prices_move_against_the_book(
        a in 20_000.0f64..250_000.0,
        b in 20_000.0f64..250_000.0,
        coins in 0.0f64..8.0,
        cash in -300_000.0f64..300_000.0,
        perps in 0.0f64..5.0,
        options in 0.0f64..20.0,
        long in any::<bool>(),
    ) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let (direction, worse, better) = if long {
            (Direction::Long, low, high)
        } else {
            (Direction::Short, high, low)
        };
        let bad = directional_health(direction, worse, coins, cash, perps, options);
        let good = directional_health(direction, better, coins, cash, perps, options);
        let slack = MONOTONE_REL_TOL * good.equity.abs().max(1.0);
        prop_assert!(bad.equity <= good.equity + slack, "equity {} > {}", bad.equity, good.equity);
        prop_assert!(factor_le(bad.health_factor, good.health_factor),
            "factor {:?} > {:?}", bad.health_factor, good.health_factor);
        prop_assert!(bad.status >= good.status, "status {:?} < {:?}", bad.status, good.status);
        prop_assert!(bad.deposit_to_healthy + slack >= good.deposit_to_healthy);
    }

    /// Along a path of prices moving step by step against a directional
    /// book, health never improves. Against a fixed margin, equity, health
    /// factor and status fall at every step. With the margin recomputed at
    /// every price (a SPAN grid: each scenario's loss counted at its cover),
    /// equity and equity above initial margin (what may be withdrawn,
    /// before its floor at 0) fall at every step: equity less a scenario's
    /// covered loss is the book valued in that scenario, monotone in the
    /// price. The health factor against a recomputed margin need not fall:
    /// a long perpetual's grid margin shrinks with its price, so a
    /// well-funded account's factor rises as the price falls.
    #[test]
    fn health_falls_step_by_step_along_an_adverse_path(
        start in 40_000.0f64..200_000.0,
        steps in prop::collection::vec(0.0f64..0.08, 1..10),
        coins in 0.0f64..8.0,
        cash in -300_000.0f64..300_000.0,
        perps in 0.0f64..5.0,
        options in 0.0f64..20.0,
        long in any::<bool>(),
    ) {
        let direction = if long { Direction::Long } else { Direction::Short };
        let fixed = MarginRequirement::new(2.0 * (2_000.0 * perps + 500.0 * options), 0.5).unwrap();
        let bands = HealthBands::default();
        let span = GridPolicy::cme_span_16(0.1, 0.05).unwrap();
        let mut spot = start;
        let mut previous: Option<(AccountHealth, f64)> = None;
        for k in 0..=steps.len() {
            if k > 0 {
                let step = steps[k - 1];
                spot *= if long { 1.0 - step } else { 1.0 + step };
            }
            let d = Directional::new(direction, spot, coins, cash, perps, options);
            let account = d.account();
            let health = account_health(&account, fixed, &bands).unwrap();
            let engine = GridMarginEngine::new(&d.instruments, &d.market, span.clone()).unwrap();
            let grid = engine.requirement(&engine.account(&d.book).unwrap()).unwrap();
            let recomputed = account_health(&account, grid, &bands).unwrap();
            prop_assert_eq!(recomputed.equity, health.equity);
            let excess = recomputed.equity - grid.initial();
            if let Some((before, before_excess)) = &previous {
                let slack = MONOTONE_REL_TOL * (before.equity.abs() + grid.initial()).max(1.0);
                prop_assert!(health.equity <= before.equity + slack,
                    "step {k} to {spot}: equity {} > {}", health.equity, before.equity);
                prop_assert!(factor_le(health.health_factor, before.health_factor),
                    "step {k} to {spot}: factor {:?} > {:?}", health.health_factor, before.health_factor);
                prop_assert!(health.status >= before.status,
                    "step {k} to {spot}: status {:?} < {:?}", health.status, before.status);
                prop_assert!(excess <= before_excess + slack,
                    "step {k} to {spot}: equity over grid margin {excess} > {before_excess}");
                prop_assert!(recomputed.withdrawable <= before_excess.max(0.0) + slack);
            }
            previous = Some((health, excess));
        }
    }

    /// Extreme balances, prices and margins give finite outputs or a typed
    /// error, never NaN or infinity.
    #[test]
    fn no_nan_at_extreme_inputs(
        amounts in prop::collection::vec(
            prop_oneof![
                Just(0.0), Just(1e300), Just(-1e300), Just(f64::MAX), Just(-f64::MAX),
                Just(1e-300), Just(-1e-300), Just(f64::MIN_POSITIVE), -1e6f64..1e6,
            ],
            3,
        ),
        spot_exp in -300.0f64..300.0,
        maintenance in prop_oneof![Just(0.0), Just(1e-300), Just(1e300), Just(f64::MAX), 0.0f64..1e9],
        sigma in prop_oneof![Just(0.0), Just(1e300), 0.0f64..5.0],
    ) {
        let spot = 10f64.powf(spot_exp);
        let m = MarketSnapshot::builder(as_of())
            .underlying(uid("BTC"), UnderlyingMarket::new(spot, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap())
            .build()
            .unwrap();
        let btc = HaircutPolicy::new(
            VolatilityHaircut::with_defaults(VolatilitySource::Fixed(sigma)).unwrap(),
            tiers(&[(0.0, 0.0), (1e6, 0.1)]),
            BorrowUplift::MirrorHaircut,
        ).unwrap();
        let policy = CollateralPolicy::new(
            id("BTC"),
            vec![usdc(), coin("BTC", btc), CollateralAsset::at_par(id("USD"), AssetKind::Fiat, 1.0).unwrap()],
        ).unwrap();
        let balances = [
            Balance::new(id("BTC"), amounts[0]),
            Balance::new(id("USDC"), amounts[1]),
            Balance::new(id("USD"), amounts[2]),
        ];
        let set = InstrumentSet::new();
        let book = Portfolio::new(AccountId::new("x"), vec![], &set).unwrap();
        let account = Account { balances: &balances, portfolio: &book, instruments: &set, market: &m, policy: &policy };
        let margin = MarginRequirement::new(maintenance, 1.0).unwrap();
        match account_health(&account, margin, &HealthBands::default()) {
            Err(e) => prop_assert!(matches!(e, Error::NonFiniteResult { .. }), "{e}"),
            Ok(hl) => {
                let c = &hl.collateral;
                let mut numbers = vec![
                    hl.equity, hl.equity_settlement, hl.positions_value, hl.deposit_to_healthy,
                    hl.deposit_to_healthy_settlement, hl.withdrawable, hl.withdrawable_settlement,
                    c.asset_value, c.liability_value, c.market_value, c.adjusted_value,
                    c.market_value_settlement, c.adjusted_value_settlement, c.settlement_price,
                ];
                for l in &c.lines {
                    numbers.extend([l.price, l.market_value, l.haircut.fraction(), l.borrow_uplift,
                        l.adjusted_value, l.market_value_settlement, l.adjusted_value_settlement]);
                    prop_assert!((0.0..=1.0).contains(&l.haircut.fraction()));
                    prop_assert!(l.adjusted_value <= l.market_value);
                }
                prop_assert!(numbers.iter().all(|x| x.is_finite()), "{numbers:?}");
                if let HealthFactor::Ratio(r) = hl.health_factor {
                    prop_assert!(r.is_finite() && r >= 0.0);
                }
                let rounding = 1e-15 * (c.asset_value + c.liability_value);
                prop_assert!(c.adjusted_value <= c.market_value + rounding);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..config() })]

    /// The plan from quantities (candidates re-margined from the grid
    /// engine's indices) is the plan from portfolios (each candidate
    /// resolved by instrument id), step for step.
    #[test]
    fn a_plan_by_quantities_is_the_plan_by_portfolios(
        quantities in prop::collection::vec(-20.0f64..20.0, 4),
        held in prop::collection::vec(any::<bool>(), 4),
        cash in 0.0f64..60_000.0,
        lot in 0.05f64..1.0,
    ) {
        let fx = Fixture::new();
        let names = ["BTC-PERP", "BTC-PERP-2", "ETH-FUT", "ETH-PERP"];
        let positions: Vec<Position> = names
            .iter()
            .zip(&quantities)
            .zip(&held)
            .filter(|&((_, &q), &h)| h && q != 0.0)
            .map(|((&n, &q), _)| Position::new(iid(n), q))
            .collect();
        prop_assume!(!positions.is_empty());
        let book = Portfolio::new(AccountId::new("a"), positions, &fx.instruments).unwrap();
        let balances = [Balance::new(id("USDC"), cash)];
        let account = fx.account(&book, &balances);
        let engine =
            GridMarginEngine::new(&fx.instruments, &fx.market, GridPolicy::deribit_style()).unwrap();
        let policy =
            LiquidationPolicy::new(1.2, LotSize::FractionOfPosition(lot), HedgedUnwind::ProRata, 50)
                .unwrap();
        let bands = HealthBands::default();
        let by_portfolio = |p: &Portfolio| engine.requirement(&engine.account(p)?);
        let rows: Vec<InstrumentIndex> = book
            .positions()
            .iter()
            .map(|p| engine.instrument_index(&p.instrument).unwrap())
            .collect();
        let by_quantities =
            |q: &[f64]| engine.requirement(&engine.account_from_quantities(&rows, q)?);
        let slow = plan_liquidation(&account, by_portfolio, &bands, &policy);
        let fast = plan_liquidation_by_quantities(&account, by_quantities, &bands, &policy);
        prop_assert_eq!(fast, slow);
    }
}

#[test]
fn accounts_from_quantities_check_their_inputs() {
    let fx = Fixture::new();
    let engine =
        GridMarginEngine::new(&fx.instruments, &fx.market, GridPolicy::deribit_style()).unwrap();
    let perp = engine.instrument_index(&iid("BTC-PERP")).unwrap();
    let fut = engine.instrument_index(&iid("ETH-FUT")).unwrap();
    // Merged, zero dropped, in any order: the account the ids resolve to.
    let fast = engine
        .account_from_quantities(&[fut, perp, fut, perp], &[2.0, 1.0, -0.5, -1.0])
        .unwrap();
    let slow = engine
        .account_from_positions(&[Position::new(iid("ETH-FUT"), 1.5)])
        .unwrap();
    assert_eq!(fast, slow);
    assert!(matches!(
        engine.account_from_quantities(&[perp, fut], &[1.0]),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        engine.account_from_quantities(&[perp, fut], &[1.0, f64::NAN]),
        Err(Error::InvalidElement { index: 1, .. })
    ));
    // An index from a larger listing is refused, not read past the table.
    let mut big = fx.instruments.clone();
    for k in 0..8 {
        big.insert(
            iid(&format!("X{k}")),
            Instrument::Perpetual(PerpetualContract::new(uid("BTC"))),
        )
        .unwrap();
    }
    let wide = GridMarginEngine::new(&big, &fx.market, GridPolicy::deribit_style()).unwrap();
    let far = wide.instrument_index(&iid("X7")).unwrap();
    assert!(matches!(
        engine.account_from_quantities(&[perp, far], &[1.0, 1.0]),
        Err(Error::InvalidElement {
            what: "instrument index",
            index: 1,
            ..
        })
    ));
}
