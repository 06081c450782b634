//! Inputs found by the cargo-fuzz targets in `fuzz/` (see fuzz/README.md),
//! kept as regression tests. Each test names the target and the fix.

use portfolio_margin::*;

fn id(s: &str) -> UnderlyingId {
    UnderlyingId::new(s).unwrap()
}

/// Decodes `json` as `T`, re-serialises it and decodes again: the value
/// must come back unchanged (what every `decode_*` target asserts).
#[cfg(feature = "serde")]
fn round_trip<T>(json: &str) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_str(json).unwrap();
    let text = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{json} re-serialised as {text}, which does not decode: {e}"));
    assert_eq!(back, value, "{text}");
    value
}

/// decode_market: a snapshot stamped with integer milliseconds outside the
/// years 0000..=9999 was written as text that RFC 3339 parsing rejects
/// (`"292278994-08-17T07:12:55.807Z"`, `"-002-12-17T14:13:20Z"`), so it did
/// not read back. Fixed by writing such instants as integer milliseconds
/// (src/units.rs, `raw::Timestamp`).
#[cfg(feature = "serde")]
#[test]
fn timestamps_outside_rfc3339_years_round_trip() {
    for json in [
        r#"{"as_of": 9223372036854775807, "underlyings": []}"#,
        r#"{"as_of": -62200000000000, "underlyings": []}"#,
    ] {
        round_trip::<MarketSnapshot>(json);
    }
    // Both ends of the RFC 3339 range are written as text, one step beyond
    // as integers; all read back.
    for (millis, text) in [
        (i64::MIN, None),
        (-62_167_219_200_001, None),
        (-62_167_219_200_000, Some("\"0000-01-01T00:00:00Z\"")),
        (0, Some("\"1970-01-01T00:00:00Z\"")),
        (253_402_300_799_999, Some("\"9999-12-31T23:59:59.999Z\"")),
        (253_402_300_800_000, None),
        (i64::MAX, None),
    ] {
        let t = Timestamp::from_millis(millis);
        let json = serde_json::to_string(&t).unwrap();
        match text {
            Some(text) => assert_eq!(json, text),
            None => assert_eq!(json, millis.to_string()),
        }
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
    // A scenario horizon that saturates the valuation time: the shocked
    // snapshot still round-trips.
    let market = MarketSnapshot::builder(Timestamp::from_millis(0))
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(100.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let set = ScenarioSet::new(
        vec![(RiskFactor::Spot(id("BTC")), ShockKind::Relative)],
        vec![0.1],
        YearFraction::new(1e300).unwrap(),
    )
    .unwrap();
    let shocked = set.apply(0, &market).unwrap();
    assert_eq!(shocked.as_of(), Timestamp::from_millis(i64::MAX));
    round_trip::<MarketSnapshot>(&serde_json::to_string(&shocked).unwrap());
}

/// pipeline (crash-2f9d7dda): a linear perpetual with multiplier 5.49e303 on
/// a 200 000 spot. Every scenario P&L was 0 (no move), so the arrays came
/// back `Ok` with an infinite base value. Fixed by checking the base value
/// per contract (src/pnl.rs, `revalue_inner`): a typed
/// `Error::NonFiniteResult`.
#[test]
fn risk_array_base_value_overflow_is_a_typed_error() {
    let market = MarketSnapshot::builder(Timestamp::from_millis(1_795_593_379_000))
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(
                200_000.0,
                0.2960,
                -0.0992,
                VolSurface::flat(0.0723).unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let mut set = InstrumentSet::new();
    set.insert(
        InstrumentId::new("I0").unwrap(),
        Instrument::Perpetual(
            PerpetualContract::new(id("BTC"))
                .with_multiplier(5.486_123_905_254_689e303)
                .unwrap(),
        ),
    )
    .unwrap();
    set.insert(
        InstrumentId::new("I1").unwrap(),
        Instrument::Spot(id("BTC")),
    )
    .unwrap();
    let grid = StressGrid::new(
        GridAxis::new(ShockKind::Relative, 0.0, 1).unwrap(),
        GridAxis::new(ShockKind::Relative, 0.0, 1).unwrap(),
        GridScope::AllTogether,
        YearFraction::ZERO,
    );
    let scenarios = grid.scenarios(&[id("BTC")]).unwrap();
    for method in [Revaluation::Full, Revaluation::Sensitivity] {
        let err = RiskArrays::compute(&set, &market, &scenarios, method).unwrap_err();
        match err {
            Error::InInstrument { id, source } => {
                assert_eq!(id.as_str(), "I0");
                assert!(
                    matches!(*source, Error::NonFiniteResult { value, .. } if value == f64::INFINITY),
                    "{source:?}"
                );
            }
            other => panic!("{method:?}: {other:?}"),
        }
    }
}

/// decode_policies (crash-ce549e8b): a `Concentration` decoded on its own
/// (its fields are public, so nothing had validated it) with a tier rate of
/// 505%; `add_on(f64::MAX, 1e-300)` returned `Ok(inf)`. Fixed by
/// validating the tiers in `Concentration::add_on`
/// (src/margin/grid_policy.rs): a typed `Error::InvalidElement` naming the
/// tier.
#[cfg(feature = "serde")]
#[test]
fn concentration_add_on_refuses_unvalidated_tiers() {
    let c: Concentration = round_trip(
        r#"{"default_depth":500000.0,"depths":[{"underlying":"BTC","notional":4000000.0}],
            "tiers":[{"above":1.0,"rate":0.82},{"above":3.0,"rate":5.05}]}"#,
    );
    for (exposure, depth) in [(f64::MAX, 1e-300), (5e6, 1e6)] {
        let err = c.add_on(exposure, depth).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidElement {
                    what: "concentration tier rate",
                    index: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // Tiers out of order are refused too; valid tiers stay finite at the
    // largest exposure.
    let unordered = Concentration {
        tiers: vec![
            ConcentrationTier {
                above: 3.0,
                rate: 0.05,
            },
            ConcentrationTier {
                above: 1.0,
                rate: 0.02,
            },
        ],
        ..c.clone()
    };
    assert!(unordered.add_on(5e6, 1e6).is_err());
    let valid = Concentration {
        tiers: vec![
            ConcentrationTier {
                above: 1.0,
                rate: 0.82,
            },
            ConcentrationTier {
                above: 3.0,
                rate: 1.0,
            },
        ],
        ..c
    };
    let add_on = valid.add_on(f64::MAX, 1e-300).unwrap();
    assert!(add_on.is_finite() && add_on <= f64::MAX);
    // 82% of 2M (1M..3M) + 100% of 2M (3M..5M).
    assert_eq!(valid.add_on(5e6, 1e6).unwrap(), 0.82 * 2e6 + 2e6);
}

/// margin_pipeline (crash-71b46eb8): a long spot holding under an isolated
/// policy with a (valid) long-spot rate of 3.2e-312 had isolated and cross
/// margin 2e-304, and FINRA grid margin 9.5e6 (its -15% move); the saving
/// fraction `-9.5e6 / 2e-304` was `-inf`. Fixed by checking it
/// (src/margin/explain.rs, `capital_efficiency`): a typed
/// `Error::NonFiniteResult`.
#[test]
fn capital_efficiency_refuses_an_overflowing_saving_fraction() {
    let isolated = MarginRequirement::new(2.008_656_251_112_167e-304, 0.5).unwrap();
    let grid = MarginRequirement::new(9_529_411.764_705_885, 1.0).unwrap();
    let err = capital_efficiency(&[
        (Methodology::Isolated, isolated),
        (Methodology::PortfolioGrid, grid),
    ])
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteResult {
                what: "saving fraction",
                value
            } if value == f64::NEG_INFINITY
        ),
        "{err:?}"
    );
    // A small but not overflowing baseline still gives a finite fraction.
    let small = MarginRequirement::new(1e-300, 0.5).unwrap();
    let report = capital_efficiency(&[
        (Methodology::Isolated, small),
        (
            Methodology::PortfolioGrid,
            MarginRequirement::new(1.0, 1.0).unwrap(),
        ),
    ])
    .unwrap();
    assert_eq!(
        report.methodologies[1].saving_fraction,
        (small.initial() - 1.0) / 1e-300
    );
    assert!(report.methodologies[1].saving_fraction.is_finite());
}

/// margin_pipeline's checks (input by hand, while writing the target's
/// breakdown check): a position whose net delta notional overflows
/// (1e4 contracts x 1e305 per contract) under a 1% SPAN grid, so every
/// scenario loss stays finite (at most 1.05e307). No charge used the delta
/// (SPAN has no delta charge: `0 x inf` is NaN, and NaN lost every
/// comparison), so `requirement` was `Ok` and `margin` reported an
/// infinite `delta_notional` and a NaN `delta_charge`. Fixed by refusing
/// non-finite per-underlying totals (src/margin/grid.rs, `combine`): a
/// typed `Error::NonFiniteResult`.
#[test]
fn grid_margin_refuses_an_overflowing_delta() {
    let market = btc_at_100k();
    let mut set = InstrumentSet::new();
    let perp = InstrumentId::new("PERP").unwrap();
    set.insert(perp.clone(), huge_perpetual()).unwrap();
    let policy = GridPolicy::cme_span_16(0.01, 0.04).unwrap();
    let engine = GridMarginEngine::new(&set, &market, policy).unwrap();
    // One contract: finite everywhere.
    let one = engine
        .account_from_positions(&[Position::new(perp.clone(), 1.0)])
        .unwrap();
    let m = engine.margin(&one).unwrap();
    assert!((m.underlyings[0].delta_notional / 1e305 - 1.0).abs() < 1e-12);
    assert!(m.requirement.initial().is_finite());
    // 1e4 contracts: the delta notional 1e309 overflows, the losses do not.
    let many = engine
        .account_from_positions(&[Position::new(perp, 1e4)])
        .unwrap();
    let losses = engine.scenario_losses(&many).unwrap();
    assert!(losses[0].1.iter().all(|x| x.is_finite()));
    for result in [
        engine.requirement(&many),
        engine.margin(&many).map(|m| m.requirement),
        engine.state(&many).map(|s| s.requirement()),
        engine
            .margin_batch(std::slice::from_ref(&many))
            .into_results()[0]
            .clone(),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteResult { what: "grid delta notional", value } if value == f64::INFINITY),
            "{err:?}"
        );
    }
}

/// margin_pipeline, 2026-12-02 (1,208,181 executions): losses that overflow
/// gave the fast path a NaN scan risk (the vector maximum is poisoned by
/// any non-finite lane) where the breakdown and the cached state report
/// the `+inf` loss. Every entry point now reports what the breakdown finds:
/// `+inf` when a loss overflows upward (an overflowed gain, `-inf`, loses
/// every comparison), and whatever the breakdown finds when overflows of
/// both signs meet.
#[test]
fn grid_margin_reports_an_overflowed_loss_as_the_breakdown_does() {
    let market = btc_at_100k();
    let mut set = InstrumentSet::new();
    let (perp, future) = (
        InstrumentId::new("PERP").unwrap(),
        InstrumentId::new("FUT").unwrap(),
    );
    let expiry = Timestamp::from_ymd_hms(1970, 3, 1, 0, 0, 0).unwrap();
    set.insert(perp.clone(), huge_perpetual()).unwrap();
    set.insert(
        future.clone(),
        Instrument::Future(
            FutureContract::new(id("BTC"), expiry)
                .with_multiplier(1e300)
                .unwrap(),
        ),
    )
    .unwrap();
    for policy in [
        GridPolicy::cme_span_16(0.01, 0.04).unwrap(),
        GridPolicy::deribit_style(),
    ] {
        let engine = GridMarginEngine::new(&set, &market, policy).unwrap();
        let books = [
            // Long 1e6 contracts of 1e305 notional: every down move loses
            // +inf, every up move gains (a loss of -inf).
            (vec![Position::new(perp.clone(), 1e6)], Some(f64::INFINITY)),
            // Long one, short the other: overflows of both signs meet.
            (
                vec![
                    Position::new(perp.clone(), 1e6),
                    Position::new(future.clone(), -1e6),
                ],
                None,
            ),
        ];
        for (positions, expected) in books {
            let account = engine.account_from_positions(&positions).unwrap();
            let breakdown = engine.margin(&account).map(|m| m.requirement).unwrap_err();
            let Error::NonFiniteResult {
                what: "grid scan risk",
                value,
            } = breakdown
            else {
                panic!("{breakdown:?}");
            };
            if let Some(expected) = expected {
                assert_eq!(value, expected);
            }
            for result in [
                engine.requirement(&account),
                engine.state(&account).map(|s| s.requirement()),
                engine
                    .margin_batch(std::slice::from_ref(&account))
                    .into_results()[0]
                    .clone(),
            ] {
                // As printed: an error carrying a NaN is not equal to itself.
                assert_eq!(
                    format!("{:?}", result.unwrap_err()),
                    format!("{breakdown:?}")
                );
            }
        }
    }
}

/// BTC at 100,000, no rates, 50% flat vol, valued at the epoch.
fn btc_at_100k() -> MarketSnapshot {
    MarketSnapshot::builder(Timestamp::from_millis(0))
        .underlying(
            id("BTC"),
            UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}

/// A BTC perpetual of 1e300 BTC per contract (1e305 notional at 100,000).
fn huge_perpetual() -> Instrument {
    Instrument::Perpetual(
        PerpetualContract::new(id("BTC"))
            .with_multiplier(1e300)
            .unwrap(),
    )
}
