//! Pricing: the value of one instrument in a market snapshot.

mod implied_vol;

pub use implied_vol::{black_price, implied_volatility};

use crate::error::Result;
use crate::instrument::Instrument;
use crate::market::MarketSnapshot;

/// Value of one unit of `instrument` (multiplier excluded).
///
/// # Errors
/// Missing market data or an expired contract.
pub fn price(instrument: &Instrument, market: &MarketSnapshot) -> Result<f64> {
    let m = market.underlying(instrument.underlying())?;
    Ok(m.spot())
}
