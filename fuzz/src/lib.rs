//! Shared checks of the fuzz targets: JSON round trips and "every number is
//! finite" walks over the crate's validated types.

pub mod finite_walk;
pub mod input;

pub use finite_walk::assert_finite_numbers;

use portfolio_margin::{
    CollateralValuation, EsMargin, Greeks, HistoricalConfig, Instrument, InstrumentSet,
    MarginRequirement, MarketSnapshot, MonteCarloConfig, PortfolioGreeks, QuantileRule, RiskArrays,
    ScenarioSet, ShockDistribution, SpeedLimitScope, StressGrid, VolSurface, VolatilityFilter,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The examples' book format (`examples/data/sample_book.json`): format 1,
/// or 2 with optional `balances` and `collateral`. The examples' own type,
/// so the target decodes exactly what they read.
#[path = "../../examples/common/book_file.rs"]
mod book_file;
pub use book_file::BookFile as Book;

/// Decodes `data` as JSON `T`; if that succeeds, re-serialises, decodes
/// again and asserts the value is equal and the text stable.
pub fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let text = match serde_json::to_string(&value) {
        Ok(text) => text,
        Err(e) => panic!("decoded value does not serialise: {e}\n{value:?}"),
    };
    let back: T = match serde_json::from_str(&text) {
        Ok(back) => back,
        Err(e) => panic!("re-serialised value does not decode: {e}\n{text}\n{value:?}"),
    };
    assert_eq!(back, value, "round trip changed the value: {text}");
    let again = serde_json::to_string(&back).expect("serialises once, serialises twice");
    assert_eq!(again, text, "serialisation is not stable");
    Some(value)
}

/// Asserts `x` is finite.
#[track_caller]
pub fn finite(what: &str, x: f64) {
    assert!(x.is_finite(), "{what} is not finite: {x}");
}

/// Asserts every element is finite.
#[track_caller]
pub fn all_finite(what: &str, xs: &[f64]) {
    if let Some((i, x)) = xs.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        panic!("{what}[{i}] is not finite: {x}");
    }
}

/// Every number of a surface, and a few lookups, are finite and positive.
pub fn check_surface(surface: &VolSurface) {
    if let Some(v) = surface.flat_volatility() {
        finite("flat vol", v);
    }
    all_finite("surface expiries", surface.expiries());
    all_finite("surface strikes", surface.strikes());
    all_finite("surface vols", surface.vols());
    for years in [0.0, 1e-9, 0.02, 0.5, 1.0, 3.0, 50.0] {
        for forward in [1e-6, 1.0, 100.0, 1e6] {
            let atm = surface.atm_volatility(years, forward);
            assert!(atm.is_finite() && atm > 0.0, "atm vol {atm}");
            for strike in [1e-6, 0.5 * forward, forward, 2.0 * forward, 1e9] {
                let v = surface.volatility(years, strike, forward);
                assert!(
                    v.is_finite() && v > 0.0,
                    "vol {v} at {years}, {strike}, {forward}"
                );
            }
        }
    }
}

/// Every number of a market is finite.
pub fn check_market(market: &MarketSnapshot) {
    for (_, m) in market.underlyings() {
        finite("spot", m.spot());
        finite("rate", m.rate());
        finite("carry yield", m.carry_yield());
        check_surface(m.vol());
    }
}

/// Every number of an instrument is finite.
pub fn check_instrument(instrument: &Instrument) {
    finite("multiplier", instrument.multiplier());
    if let Instrument::Option(o) = instrument {
        finite("strike", o.strike());
    }
}

/// Every number of an instrument set is finite.
pub fn check_instruments(set: &InstrumentSet) {
    for listed in set.iter() {
        check_instrument(&listed.instrument);
    }
}

/// Every number of a scenario set is finite.
pub fn check_scenarios(set: &ScenarioSet) {
    all_finite("scenario sizes", set.sizes());
    finite("horizon", set.horizon().years());
    assert_eq!(set.sizes().len(), set.len() * set.n_factors());
}

/// Every number of a stress grid is finite.
pub fn check_stress_grid(grid: &StressGrid) {
    finite("spot max move", grid.spot().max_move());
    finite("vol max move", grid.vol().max_move());
    finite("horizon", grid.horizon().years());
}

/// Every number of a Monte Carlo configuration is finite.
pub fn check_monte_carlo_config(config: &MonteCarloConfig) {
    finite("horizon", config.horizon().years());
    if let ShockDistribution::StudentT { degrees_of_freedom } = config.distribution() {
        finite("degrees of freedom", degrees_of_freedom);
    }
}

/// Every number of a historical configuration is finite.
pub fn check_historical_config(config: &HistoricalConfig) {
    finite("horizon", config.horizon().years());
    if let Some(VolatilityFilter::Ewma { lambda }) = config.filter() {
        finite("lambda", lambda);
    }
}

/// Every Greek is finite.
pub fn check_greeks(what: &str, g: &Greeks) {
    all_finite(what, &g.fields());
}

/// Every number of portfolio Greeks is finite.
pub fn check_portfolio_greeks(g: &PortfolioGreeks) {
    for u in &g.per_underlying {
        finite("spot", u.spot);
        check_greeks("underlying greeks", &u.greeks);
        finite("cash delta", u.cash_delta);
        finite("cash gamma", u.cash_gamma_per_pct);
        finite("vega per point", u.vega_per_vol_point);
        finite("theta per day", u.theta_per_day);
    }
    finite("value", g.value);
    finite("cash delta", g.cash_delta);
    finite("cash gamma", g.cash_gamma_per_pct);
    finite("vega per point", g.vega_per_vol_point);
    finite("theta per day", g.theta_per_day);
}

/// Every number of a set of risk arrays is finite.
pub fn check_arrays(arrays: &RiskArrays, scenarios: usize) {
    assert_eq!(arrays.scenarios(), scenarios);
    for a in arrays.arrays() {
        finite("base value", a.base_value());
        assert_eq!(a.native().len(), scenarios);
        assert_eq!(a.quote().len(), scenarios);
        all_finite("native P&L", a.native());
        all_finite("quote P&L", a.quote());
    }
}

/// Every number of a collateral valuation is finite.
pub fn check_collateral(v: &CollateralValuation) {
    for line in &v.lines {
        finite("amount", line.amount);
        finite("price", line.price);
        finite("market value", line.market_value);
        finite("haircut", line.haircut.fraction());
        finite("borrow uplift", line.borrow_uplift);
        finite("adjusted value", line.adjusted_value);
        finite("market value (settlement)", line.market_value_settlement);
        finite(
            "adjusted value (settlement)",
            line.adjusted_value_settlement,
        );
    }
    finite("settlement price", v.settlement_price);
    finite("asset value", v.asset_value);
    finite("liability value", v.liability_value);
    finite("market value", v.market_value);
    finite("adjusted value", v.adjusted_value);
    finite("market value (settlement)", v.market_value_settlement);
    finite("adjusted value (settlement)", v.adjusted_value_settlement);
}

/// A requirement is finite, `initial >= 0` and `0 <= maintenance <= initial`.
#[track_caller]
pub fn check_requirement(what: &str, r: &MarginRequirement) {
    let (initial, maintenance) = (r.initial(), r.maintenance());
    assert!(
        initial.is_finite() && maintenance.is_finite(),
        "{what}: {r:?} is not finite"
    );
    assert!(initial >= 0.0, "{what}: initial margin {initial} < 0");
    assert!(
        (0.0..=initial).contains(&maintenance),
        "{what}: maintenance {maintenance} outside [0, initial {initial}]"
    );
}

/// An ES margin: every number finite, the requirement sane, ES at least
/// VaR under the empirical rule (the mean of the `k` largest losses is at
/// least the `k`-th largest), the requirement at least the calculated
/// margin unless a speed limit of the whole margin binds.
#[track_caller]
pub fn check_es_margin(what: &str, m: &EsMargin, rule: QuantileRule) {
    assert_finite_numbers(what, m);
    check_requirement(what, &m.requirement);
    if rule == QuantileRule::Empirical {
        assert!(
            m.expected_shortfall >= m.value_at_risk,
            "{what}: ES {} < VaR {}",
            m.expected_shortfall,
            m.value_at_risk
        );
    }
    assert!(m.calculated_margin >= 0.0, "{what}: {m:?}");
    let limited = m
        .speed_limit
        .is_some_and(|s| s.scope == SpeedLimitScope::Total);
    if !limited {
        assert!(
            m.requirement.initial() >= m.calculated_margin,
            "{what}: initial {} < calculated {}",
            m.requirement.initial(),
            m.calculated_margin
        );
    }
}

/// Notes that an input reached `stage` (an `Ok` of that step): with the
/// environment variable `FUZZ_STAGES` set, prints `stage: <name>` to
/// stderr, so replaying a corpus (`-runs=0`) shows how deep the inputs go:
/// `... 2>&1 | grep '^stage:' | sort | uniq -c`.
pub fn reached(stage: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("FUZZ_STAGES").is_some()) {
        eprintln!("stage: {stage}");
    }
}
