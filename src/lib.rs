//! # portfolio-margin
//!
//! A portfolio-margin risk engine: how much collateral must each account hold?
//!
//! ```text
//! MarketSnapshot + Portfolio --pricing/greeks--> Greeks
//! ScenarioSet --revalue--> RiskArray --measure--> VaR / ES
//!   --margin--> MarginRequirement + Collateral --> health
//! ```
//!
//! ```
//! use portfolio_margin::*;
//! let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
//! let btc = UnderlyingId::new("BTC")?;
//! let market = MarketSnapshot::builder(as_of)
//!     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.55)?)?)
//!     .build()?;
//! let call = OptionContract::new(btc, OptionKind::Call, 110_000.0, Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?)?;
//! let value = price(&Instrument::Option(call), &market)?;
//! assert!(value > 0.0 && value < 100_000.0);
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod greeks;
mod instrument;
mod market;
pub mod math;
mod portfolio;
mod pricing;
mod units;

pub use error::{Error, Result};
pub use instrument::{
    FutureContract, Instrument, InstrumentId, OptionContract, OptionKind, OptionModel,
    PerpetualContract, Settlement, UnderlyingId,
};
pub use market::{MarketSnapshot, MarketSnapshotBuilder, RiskFactor, UnderlyingMarket, VolSurface};
pub use portfolio::{
    AccountId, InstrumentSet, ListedInstrument, MAX_ABS_QUANTITY, Portfolio, Position,
};
pub use pricing::{black_price, implied_volatility, price};
pub use units::{
    BASIS_POINT, Confidence, DayBasis, MILLIS_PER_DAY, MILLIS_PER_YEAR, Timestamp, VOL_POINT,
    YearFraction,
};
