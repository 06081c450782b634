//! Pricing: the value and Greeks of one instrument unit in a market snapshot.
//!
//! Values are per unit of the instrument (multiplier excluded) in its
//! settlement currency; [`InstrumentGreeks`] also gives them in the quote
//! currency.

mod black_scholes;
mod implied_vol;

pub use black_scholes::{
    BsInputs, MAX_ABS_RATE, MAX_PRICE, MAX_VOLATILITY, MAX_YEARS, MIN_PRICE, MIN_VOLATILITY,
    MIN_YEARS, black_scholes,
};
pub use implied_vol::{black_price, implied_volatility};

use crate::error::{Error, Result};
use crate::greeks::Greeks;
use crate::instrument::{Instrument, OptionContract, OptionModel, Settlement};
use crate::market::MarketSnapshot;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Value and Greeks of one instrument unit, in its settlement currency and
/// in the quote currency.
///
/// * `native`: derivatives of the value in the settlement currency. For
///   [`Settlement::Inverse`] that is the coin value `W = V / U` (`U` the
///   model's underlying price), so `native.delta` is coin per 1 quote-currency
///   move of `U`.
/// * `quote`: the same sensitivities converted to the quote currency at
///   today's price (`U` x each coin Greek for inverse contracts; equal to
///   `native` for linear ones). `quote.delta` of an inverse option is
///   `Delta_BS - W`, the "delta in coin" that coin-settled venues display.
///
/// Delta and gamma are with respect to the model's underlying: the spot, or
/// the forward for Black-76 options; `forward_per_spot` (`dU/dS`) converts.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct InstrumentGreeks {
    /// Currency of `native`.
    pub settlement: Settlement,
    /// Greeks in the settlement currency.
    pub native: Greeks,
    /// Greeks in the quote currency.
    pub quote: Greeks,
    /// Price of the model's underlying `U` (spot, or forward for Black-76).
    pub underlying_price: f64,
    /// `dU/dS`: 1 for spot-based instruments, `e^{(r-q)T}` for Black-76.
    pub forward_per_spot: f64,
}

/// Value of one unit of `instrument` (multiplier excluded) in its
/// settlement currency.
///
/// # Errors
/// [`Error::MissingUnderlying`], [`Error::Expired`], or
/// [`Error::InvalidInput`] for market data outside the kernel's domain.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let as_of = Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0)?;
/// let spx = UnderlyingId::new("SPX")?;
/// let market = MarketSnapshot::builder(as_of)
///     .underlying(spx.clone(), UnderlyingMarket::new(100.0, 0.05, 0.0, VolSurface::flat(0.2)?)?)
///     .build()?;
/// let expiry = Timestamp::from_ymd_hms(2027, 1, 1, 0, 0, 0)?;
/// let call = Instrument::Option(OptionContract::new(spx, OptionKind::Call, 100.0, expiry)?);
/// // Hull, Options Futures and Other Derivatives: S = K = 100, r = 5%, vol 20%, T = 1: 10.4506.
/// assert!((price(&call, &market)? - 10.4506).abs() < 1e-4);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn price(instrument: &Instrument, market: &MarketSnapshot) -> Result<f64> {
    instrument_greeks(instrument, market).map(|g| g.native.value)
}

/// Value and Greeks of one unit of `instrument`.
///
/// # Errors
/// As [`price`].
pub fn instrument_greeks(
    instrument: &Instrument,
    market: &MarketSnapshot,
) -> Result<InstrumentGreeks> {
    let m = market.underlying(instrument.underlying())?;
    let spot = m.spot();
    let (carry, years) = match instrument {
        Instrument::Spot(_) | Instrument::Perpetual(_) => (0.0, 0.0),
        Instrument::Future(f) => (
            m.rate() - m.carry_yield(),
            years_to_expiry(f.expiry(), market)?,
        ),
        Instrument::Option(o) => return option_greeks(o, market),
    };
    let settlement = instrument.settlement();
    let out = settle(
        delta_one_greeks(spot, carry, years, settlement),
        spot,
        settlement,
        1.0,
    );
    finite_greeks(out, "delta-one greeks")
}

/// Passes `greeks` through if every number is finite (market data at the
/// edge of `f64`, e.g. a huge carry over a long-dated future, can overflow).
fn finite_greeks(greeks: InstrumentGreeks, what: &'static str) -> Result<InstrumentGreeks> {
    let all = greeks
        .native
        .fields()
        .into_iter()
        .chain(greeks.quote.fields());
    match all.into_iter().find(|x| !x.is_finite()) {
        None => Ok(greeks),
        Some(value) => Err(Error::NonFiniteResult { what, value }),
    }
}

/// Greeks, in spot terms, of a delta-one contract worth the forward
/// `F = S e^{cT}` (a spot holding or perpetual has `T = 0`).
///
/// Linear settlement: `V = F`. Inverse settlement pays `1/F_then - 1/F_now`
/// coin per unit of quote-currency face, i.e. a coin value `W = -1/F`; it
/// is returned here as the quote-currency payoff `V = -S/F = -e^{-cT}` that
/// [`settle`] divides by `S`.
fn delta_one_greeks(spot: f64, carry: f64, years: f64, settlement: Settlement) -> Greeks {
    let growth = (carry * years).exp();
    match settlement {
        Settlement::Linear => {
            let forward = spot * growth;
            Greeks {
                value: forward,
                delta: growth,
                theta: -carry * forward,
                rho: years * forward,
                charm: -carry * growth,
                ..Greeks::default()
            }
        }
        Settlement::Inverse => {
            let value = -1.0 / growth;
            Greeks {
                value,
                theta: carry * value,
                rho: -years * value,
                ..Greeks::default()
            }
        }
    }
}

fn years_to_expiry(expiry: crate::units::Timestamp, market: &MarketSnapshot) -> Result<f64> {
    let years = market.years_to(expiry);
    if years > 0.0 {
        Ok(years)
    } else {
        Err(Error::Expired {
            expiry_millis: expiry.millis(),
            as_of_millis: market.as_of().millis(),
        })
    }
}

/// Kernel inputs of an option in a snapshot: time to expiry, the model's
/// underlying (spot or forward), and the surface's vol at (expiry, strike).
///
/// # Errors
/// As [`price`].
pub fn option_inputs(option: &OptionContract, market: &MarketSnapshot) -> Result<BsInputs> {
    let m = market.underlying(option.underlying())?;
    let years = years_to_expiry(option.expiry(), market)?;
    let forward = m.forward(years);
    let vol = m.vol().volatility(years, option.strike(), forward);
    let underlying = match option.model() {
        OptionModel::BlackScholesMerton => m.spot(),
        OptionModel::Black76 => forward,
    };
    BsInputs::new(
        option.kind(),
        option.model(),
        underlying,
        option.strike(),
        years,
        vol,
        m.rate(),
        m.carry_yield(),
    )
}

fn option_greeks(option: &OptionContract, market: &MarketSnapshot) -> Result<InstrumentGreeks> {
    let inputs = option_inputs(option, market)?;
    let greeks = black_scholes(&inputs);
    let forward_per_spot = match option.model() {
        OptionModel::BlackScholesMerton => 1.0,
        OptionModel::Black76 => {
            inputs.underlying() / market.underlying(option.underlying())?.spot()
        }
    };
    let out = settle(
        greeks,
        inputs.underlying(),
        option.settlement(),
        forward_per_spot,
    );
    finite_greeks(out, "option greeks")
}

/// Turns quote-currency Greeks of a linear payoff `V(U)` into the contract's
/// settlement currency.
fn settle(
    linear: Greeks,
    underlying_price: f64,
    settlement: Settlement,
    forward_per_spot: f64,
) -> InstrumentGreeks {
    let (native, quote) = match settlement {
        Settlement::Linear => (linear, linear),
        Settlement::Inverse => {
            let coin = coin_greeks(&linear, underlying_price);
            (coin, coin * underlying_price)
        }
    };
    InstrumentGreeks {
        settlement,
        native,
        quote,
        underlying_price,
        forward_per_spot,
    }
}

/// Greeks of `W = V / U` from those of `V` (quotient rule in `U`; `U` does
/// not move with vol, time or rate).
fn coin_greeks(v: &Greeks, u: f64) -> Greeks {
    let u2 = u * u;
    Greeks {
        value: v.value / u,
        delta: v.delta / u - v.value / u2,
        gamma: v.gamma / u - 2.0 * v.delta / u2 + 2.0 * v.value / (u2 * u),
        vega: v.vega / u,
        theta: v.theta / u,
        rho: v.rho / u,
        vanna: v.vanna / u - v.vega / u2,
        volga: v.volga / u,
        charm: v.charm / u - v.theta / u2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::{FutureContract, UnderlyingId};
    use crate::market::{UnderlyingMarket, VolSurface};
    use crate::units::Timestamp;

    #[test]
    fn overflowing_market_data_is_an_error_not_infinity() {
        let u = UnderlyingId::new("X").unwrap();
        let market = MarketSnapshot::builder(Timestamp::from_millis(0))
            .underlying(
                u.clone(),
                UnderlyingMarket::new(1e300, 50.0, 0.0, VolSurface::flat(0.2).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let future = Instrument::Future(FutureContract::new(
            u,
            Timestamp::from_ymd_hms(2000, 1, 1, 0, 0, 0).unwrap(),
        ));
        let err = instrument_greeks(&future, &market).unwrap_err();
        assert!(matches!(err, Error::NonFiniteResult { .. }), "{err}");
    }
}
