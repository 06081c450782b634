//! Market data: an immutable snapshot of spots, rates, carry yields and
//! implied volatility surfaces at one valuation time.

mod risk_factor;
mod vol;

pub use risk_factor::RiskFactor;
pub use vol::{ButterflyViolation, StrikeAxis, VolSurface};

use crate::error::{Error, Result, finite, positive};
use crate::instrument::UnderlyingId;
use crate::units::Timestamp;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Market data for one underlying.
///
/// ```
/// use portfolio_margin::{UnderlyingMarket, VolSurface};
/// let btc = UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.55)?)?;
/// assert_eq!(btc.spot(), 100_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::UnderlyingMarket", into = "raw::UnderlyingMarket")
)]
pub struct UnderlyingMarket {
    spot: f64,
    rate: f64,
    carry_yield: f64,
    vol: VolSurface,
}

impl UnderlyingMarket {
    /// Spot price, discount rate of the quote currency, carry yield, and
    /// implied volatility surface.
    ///
    /// # Units
    /// `spot` in the quote currency; `rate` and `carry_yield` continuously
    /// compounded annual decimals (may be zero or negative).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `spot > 0` and every number is finite.
    pub fn new(spot: f64, rate: f64, carry_yield: f64, vol: VolSurface) -> Result<Self> {
        positive("spot", spot)?;
        finite("rate", rate)?;
        finite("carry yield", carry_yield)?;
        Ok(UnderlyingMarket {
            spot,
            rate,
            carry_yield,
            vol,
        })
    }

    /// Spot price in the quote currency.
    pub fn spot(&self) -> f64 {
        self.spot
    }
    /// Discount rate, continuously compounded, per year.
    pub fn rate(&self) -> f64 {
        self.rate
    }
    /// Carry (dividend, funding) yield, continuously compounded, per year.
    pub fn carry_yield(&self) -> f64 {
        self.carry_yield
    }
    /// The implied volatility surface.
    pub fn vol(&self) -> &VolSurface {
        &self.vol
    }

    /// Forward price for a horizon of `years`: `S e^{(r-q)T}`.
    ///
    /// # Units
    /// Quote currency.
    pub fn forward(&self, years: f64) -> f64 {
        self.spot * ((self.rate - self.carry_yield) * years).exp()
    }
}

/// Every market number the crate prices with, at one instant.
///
/// Immutable and `Sync`: share one snapshot across threads and accounts.
///
/// ```
/// use portfolio_margin::{MarketSnapshot, Timestamp, UnderlyingId, UnderlyingMarket, VolSurface};
/// let snapshot = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(UnderlyingId::new("BTC")?, UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.55)?)?)
///     .build()?;
/// assert_eq!(snapshot.underlying(&UnderlyingId::new("BTC")?)?.spot(), 100_000.0);
/// assert!(snapshot.underlying(&UnderlyingId::new("ETH")?).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::MarketSnapshot", into = "raw::MarketSnapshot")
)]
pub struct MarketSnapshot {
    as_of: Timestamp,
    underlyings: BTreeMap<UnderlyingId, UnderlyingMarket>,
}

impl MarketSnapshot {
    /// Starts a snapshot valued at `as_of`.
    pub fn builder(as_of: Timestamp) -> MarketSnapshotBuilder {
        MarketSnapshotBuilder {
            as_of,
            underlyings: Vec::new(),
        }
    }

    /// Valuation instant.
    pub fn as_of(&self) -> Timestamp {
        self.as_of
    }

    /// Market data of one underlying.
    ///
    /// # Errors
    /// [`Error::MissingUnderlying`] if the snapshot has none.
    pub fn underlying(&self, id: &UnderlyingId) -> Result<&UnderlyingMarket> {
        self.underlyings
            .get(id)
            .ok_or_else(|| Error::MissingUnderlying(id.clone()))
    }

    /// All underlyings, in id order.
    pub fn underlyings(&self) -> impl Iterator<Item = (&UnderlyingId, &UnderlyingMarket)> {
        self.underlyings.iter()
    }

    /// Years from the valuation time to `expiry` (ACT/365F; negative if past).
    pub fn years_to(&self, expiry: Timestamp) -> f64 {
        self.as_of.years_until(expiry)
    }

    /// A copy with one underlying's data replaced (or added).
    pub fn with_underlying(&self, id: UnderlyingId, market: UnderlyingMarket) -> MarketSnapshot {
        let mut next = self.clone();
        next.underlyings.insert(id, market);
        next
    }
}

/// Builds a [`MarketSnapshot`]; rejects duplicate underlyings.
#[derive(Debug, Clone)]
pub struct MarketSnapshotBuilder {
    as_of: Timestamp,
    underlyings: Vec<(UnderlyingId, UnderlyingMarket)>,
}

impl MarketSnapshotBuilder {
    /// Adds one underlying's market data.
    pub fn underlying(mut self, id: UnderlyingId, market: UnderlyingMarket) -> Self {
        self.underlyings.push((id, market));
        self
    }

    /// Finishes the snapshot.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if an underlying was added twice.
    pub fn build(self) -> Result<MarketSnapshot> {
        let mut underlyings = BTreeMap::new();
        for (id, market) in self.underlyings {
            if underlyings.contains_key(&id) {
                return Err(Error::DuplicateId {
                    what: "underlying",
                    id: id.to_string(),
                });
            }
            underlyings.insert(id, market);
        }
        Ok(MarketSnapshot {
            as_of: self.as_of,
            underlyings,
        })
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UnderlyingMarket {
        spot: f64,
        #[serde(default)]
        rate: f64,
        #[serde(default)]
        carry_yield: f64,
        vol: VolSurface,
    }

    impl TryFrom<UnderlyingMarket> for super::UnderlyingMarket {
        type Error = Error;
        fn try_from(r: UnderlyingMarket) -> Result<Self> {
            super::UnderlyingMarket::new(r.spot, r.rate, r.carry_yield, r.vol)
        }
    }

    impl From<super::UnderlyingMarket> for UnderlyingMarket {
        fn from(m: super::UnderlyingMarket) -> Self {
            UnderlyingMarket {
                spot: m.spot,
                rate: m.rate,
                carry_yield: m.carry_yield,
                vol: m.vol,
            }
        }
    }

    /// One underlying's entry in a snapshot's JSON: the id beside its data.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UnderlyingEntry {
        id: UnderlyingId,
        spot: f64,
        #[serde(default)]
        rate: f64,
        #[serde(default)]
        carry_yield: f64,
        vol: VolSurface,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MarketSnapshot {
        as_of: Timestamp,
        underlyings: Vec<UnderlyingEntry>,
    }

    impl TryFrom<MarketSnapshot> for super::MarketSnapshot {
        type Error = Error;
        fn try_from(r: MarketSnapshot) -> Result<Self> {
            let mut builder = super::MarketSnapshot::builder(r.as_of);
            for e in r.underlyings {
                let market = super::UnderlyingMarket::new(e.spot, e.rate, e.carry_yield, e.vol)
                    .map_err(|source| Error::InUnderlying {
                        id: e.id.clone(),
                        source: Box::new(source),
                    })?;
                builder = builder.underlying(e.id, market);
            }
            builder.build()
        }
    }

    impl From<super::MarketSnapshot> for MarketSnapshot {
        fn from(s: super::MarketSnapshot) -> Self {
            MarketSnapshot {
                as_of: s.as_of,
                underlyings: s
                    .underlyings
                    .into_iter()
                    .map(|(id, m)| UnderlyingEntry {
                        id,
                        spot: m.spot,
                        rate: m.rate,
                        carry_yield: m.carry_yield,
                        vol: m.vol,
                    })
                    .collect(),
            }
        }
    }
}
