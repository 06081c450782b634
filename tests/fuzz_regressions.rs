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
