//! Position and portfolio Greeks, per underlying and in total.

use crate::error::{Error, Result};
use crate::greeks::Greeks;
use crate::instrument::UnderlyingId;
use crate::market::MarketSnapshot;
use crate::portfolio::{InstrumentSet, Portfolio};
use crate::pricing::instrument_greeks;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Aggregated Greeks of every position on one underlying, in the quote
/// currency and in spot terms (Black-76 deltas converted with `dF/dS`).
///
/// `greeks` are plain position Greeks: `delta` in units of the underlying,
/// `gamma` per unit of underlying price, `vega` per 1.00 vol, `theta` per
/// year, `rho` per 1.00. The `cash_*` fields are desk units.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct UnderlyingGreeks {
    /// The underlying.
    pub underlying: UnderlyingId,
    /// Spot price used for the cash conversions.
    pub spot: f64,
    /// Sum of position Greeks (unit Greeks x quantity x multiplier).
    pub greeks: Greeks,
    /// Delta in currency: `delta * spot`.
    pub cash_delta: f64,
    /// Change of cash delta for a 1% move up: `gamma * spot^2 / 100`.
    pub cash_gamma_per_pct: f64,
    /// Vega per vol point: `vega / 100`.
    pub vega_per_vol_point: f64,
    /// Theta per calendar day: `theta / 365`.
    pub theta_per_day: f64,
}

/// Greeks of a whole portfolio: per underlying and the currency totals.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PortfolioGreeks {
    /// One entry per underlying, in id order.
    pub per_underlying: Vec<UnderlyingGreeks>,
    /// Total value of the positions, in the quote currency.
    pub value: f64,
    /// Sum of cash deltas.
    pub cash_delta: f64,
    /// Sum of cash gammas per 1%.
    pub cash_gamma_per_pct: f64,
    /// Sum of vegas per vol point.
    pub vega_per_vol_point: f64,
    /// Sum of thetas per calendar day.
    pub theta_per_day: f64,
}

/// Position Greeks of `portfolio`, per underlying and in total, in the quote
/// currency (coin-settled positions converted at today's price).
///
/// Totals across underlyings add currency amounts and assume one quote
/// currency for all underlyings.
///
/// # Errors
/// Any pricing error, wrapped in [`Error::InInstrument`] naming the
/// instrument; [`Error::NonFiniteResult`] if an aggregate overflows.
pub fn portfolio_greeks(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
) -> Result<PortfolioGreeks> {
    let mut per: std::collections::BTreeMap<UnderlyingId, Greeks> = Default::default();
    for position in portfolio.positions() {
        let instrument = instruments.get(&position.instrument)?;
        let unit = instrument_greeks(instrument, market).map_err(|e| Error::InInstrument {
            id: position.instrument.clone(),
            source: Box::new(e),
        })?;
        let d = unit.forward_per_spot;
        let q = unit.quote;
        // Spot terms: dV/dS = dV/dU dU/dS, d2V/dS2 = d2V/dU2 (dU/dS)^2.
        let spot_terms = Greeks {
            delta: q.delta * d,
            gamma: q.gamma * d * d,
            vanna: q.vanna * d,
            charm: q.charm * d,
            ..q
        };
        let scaled = spot_terms * (position.quantity * instrument.multiplier());
        let entry = per.entry(instrument.underlying().clone()).or_default();
        *entry = *entry + scaled;
    }
    let mut out = PortfolioGreeks {
        per_underlying: Vec::with_capacity(per.len()),
        value: 0.0,
        cash_delta: 0.0,
        cash_gamma_per_pct: 0.0,
        vega_per_vol_point: 0.0,
        theta_per_day: 0.0,
    };
    for (underlying, greeks) in per {
        let spot = market.underlying(&underlying)?.spot();
        let u = UnderlyingGreeks {
            cash_delta: greeks.delta * spot,
            cash_gamma_per_pct: greeks.gamma * spot * spot / 100.0,
            vega_per_vol_point: greeks.vega_per_vol_point(),
            theta_per_day: greeks.theta_per_day(crate::units::DayBasis::Calendar365),
            underlying,
            spot,
            greeks,
        };
        out.value += u.greeks.value;
        out.cash_delta += u.cash_delta;
        out.cash_gamma_per_pct += u.cash_gamma_per_pct;
        out.vega_per_vol_point += u.vega_per_vol_point;
        out.theta_per_day += u.theta_per_day;
        out.per_underlying.push(u);
    }
    let totals = [
        out.value,
        out.cash_delta,
        out.cash_gamma_per_pct,
        out.vega_per_vol_point,
        out.theta_per_day,
    ];
    if let Some(bad) = totals.iter().find(|x| !x.is_finite()) {
        return Err(Error::NonFiniteResult {
            what: "portfolio greeks",
            value: *bad,
        });
    }
    if out.per_underlying.iter().any(|u| !u.greeks.is_finite()) {
        return Err(Error::NonFiniteResult {
            what: "underlying greeks",
            value: f64::INFINITY,
        });
    }
    Ok(out)
}
