//! Keys for the numbers a market snapshot holds and scenarios shock.

use crate::instrument::UnderlyingId;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::fmt;

/// One market observable that prices depend on and scenarios move.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum RiskFactor {
    /// Spot (index) price of an underlying, in its quote currency.
    Spot(UnderlyingId),
    /// Implied volatility level of an underlying (the whole surface moves).
    Vol(UnderlyingId),
    /// Continuously compounded discount rate of the underlying's quote currency.
    Rate(UnderlyingId),
    /// Continuous carry yield (dividend yield, funding basis) of an underlying.
    CarryYield(UnderlyingId),
}

impl RiskFactor {
    /// The underlying the factor belongs to.
    pub fn underlying(&self) -> &UnderlyingId {
        match self {
            RiskFactor::Spot(u)
            | RiskFactor::Vol(u)
            | RiskFactor::Rate(u)
            | RiskFactor::CarryYield(u) => u,
        }
    }
}

impl fmt::Display for RiskFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskFactor::Spot(u) => write!(f, "spot({u})"),
            RiskFactor::Vol(u) => write!(f, "vol({u})"),
            RiskFactor::Rate(u) => write!(f, "rate({u})"),
            RiskFactor::CarryYield(u) => write!(f, "carry_yield({u})"),
        }
    }
}
