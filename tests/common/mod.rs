//! Fixtures shared by the integration tests (`mod common;` in a test file).

// Each test file uses the fixtures it needs.
#![allow(dead_code)]

use portfolio_margin::{
    DayBasis, MarketSnapshot, Timestamp, UnderlyingId, UnderlyingMarket, VolSurface, YearFraction,
};

pub fn id(s: &str) -> UnderlyingId {
    UnderlyingId::new(s).unwrap()
}

/// The tests' valuation time: 2026-11-25 08:00 UTC.
pub fn as_of() -> Timestamp {
    Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap()
}

/// `d` calendar days after [`as_of`].
pub fn days(d: f64) -> Timestamp {
    as_of().plus_years(YearFraction::from_days(d, DayBasis::Calendar365).unwrap())
}

/// A market at [`as_of`] with a flat vol surface per underlying, given as
/// `(name, spot, rate, carry yield, vol)`.
pub fn flat_market(underlyings: &[(&str, f64, f64, f64, f64)]) -> MarketSnapshot {
    let mut builder = MarketSnapshot::builder(as_of());
    for &(name, spot, rate, carry, vol) in underlyings {
        builder = builder.underlying(
            id(name),
            UnderlyingMarket::new(spot, rate, carry, VolSurface::flat(vol).unwrap()).unwrap(),
        );
    }
    builder.build().unwrap()
}
