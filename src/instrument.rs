//! Contract terms: what an instrument *is*, never what it is worth.
//!
//! Market data (spot, vol, rates) lives in [`crate::MarketSnapshot`]; an
//! [`Instrument`] only names its underlying. Every constructor validates its
//! inputs, and deserialisation goes through the same checks, so an
//! `Instrument` in hand always has positive, finite strikes and multipliers.

use crate::error::{Error, Result, positive};
use crate::units::Timestamp;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(try_from = "String", into = "String"))]
        pub struct $name(String);

        impl $name {
            /// From a non-empty string.
            ///
            /// # Errors
            /// [`Error::InvalidInput`] if `id` is empty or all whitespace.
            pub fn new(id: impl Into<String>) -> Result<Self> {
                let id = id.into();
                if id.trim().is_empty() {
                    return Err(Error::InvalidInput { what: $what, rule: "a non-empty string", value: f64::NAN });
                }
                Ok($name(id))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(id: String) -> Result<Self> {
                $name::new(id)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(id: &str) -> Result<Self> {
                $name::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

string_id!(
    /// Identifier of a listed instrument, e.g. `"BTC-27DEC26-100000-C"`.
    InstrumentId,
    "instrument id"
);
string_id!(
    /// Identifier of an underlying asset or index, e.g. `"BTC"` or `"SPX"`.
    UnderlyingId,
    "underlying id"
);

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum OptionKind {
    /// The right to buy at the strike.
    Call,
    /// The right to sell at the strike.
    Put,
}

impl OptionKind {
    /// `+1.0` for a call, `-1.0` for a put (the `phi` of Black's formula).
    pub const fn sign(self) -> f64 {
        match self {
            OptionKind::Call => 1.0,
            OptionKind::Put => -1.0,
        }
    }
}

/// The currency a contract's value and P&L are paid in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Settlement {
    /// Paid in the quote currency (USD, USDT): CME, Binance USD-M, Deribit linear.
    #[default]
    Linear,
    /// Paid in units of the underlying coin (Deribit BTC and ETH options,
    /// inverse perpetuals): value in coin = value in quote currency / spot.
    Inverse,
}

/// What an option's price is computed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum OptionModel {
    /// Black-Scholes-Merton on the spot with a continuous carry (dividend or
    /// funding) yield `q`; Greeks are with respect to spot.
    #[default]
    BlackScholesMerton,
    /// Black-76 on the forward `F = S e^{(r-q)T}` for the option's expiry;
    /// Greeks are with respect to the forward, rho holds the forward fixed.
    Black76,
}

/// A European option.
///
/// ```
/// use portfolio_margin::{OptionContract, OptionKind, Timestamp, UnderlyingId};
/// let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
/// let call = OptionContract::new(UnderlyingId::new("BTC")?, OptionKind::Call, 100_000.0, expiry)?;
/// assert_eq!(call.strike(), 100_000.0);
/// assert_eq!(call.multiplier(), 1.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::OptionContract", into = "raw::OptionContract")
)]
pub struct OptionContract {
    underlying: UnderlyingId,
    kind: OptionKind,
    strike: f64,
    expiry: Timestamp,
    multiplier: f64,
    settlement: Settlement,
    model: OptionModel,
}

impl OptionContract {
    /// A linear, spot-based (Black-Scholes-Merton) option with multiplier 1.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `strike` is finite and positive.
    pub fn new(
        underlying: UnderlyingId,
        kind: OptionKind,
        strike: f64,
        expiry: Timestamp,
    ) -> Result<Self> {
        positive("strike", strike)?;
        Ok(OptionContract {
            underlying,
            kind,
            strike,
            expiry,
            multiplier: 1.0,
            settlement: Settlement::Linear,
            model: OptionModel::BlackScholesMerton,
        })
    }

    /// Sets the contract multiplier (units of underlying per contract).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `multiplier` is finite and positive.
    pub fn with_multiplier(mut self, multiplier: f64) -> Result<Self> {
        self.multiplier = positive("multiplier", multiplier)?;
        Ok(self)
    }

    /// Sets the settlement currency.
    pub fn with_settlement(mut self, settlement: Settlement) -> Self {
        self.settlement = settlement;
        self
    }

    /// Sets the pricing model.
    pub fn with_model(mut self, model: OptionModel) -> Self {
        self.model = model;
        self
    }

    /// The underlying.
    pub fn underlying(&self) -> &UnderlyingId {
        &self.underlying
    }
    /// Call or put.
    pub fn kind(&self) -> OptionKind {
        self.kind
    }
    /// Strike, in the underlying's quote currency.
    pub fn strike(&self) -> f64 {
        self.strike
    }
    /// Expiry instant.
    pub fn expiry(&self) -> Timestamp {
        self.expiry
    }
    /// Units of underlying per contract.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
    /// Settlement currency.
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }
    /// Pricing model.
    pub fn model(&self) -> OptionModel {
        self.model
    }
}

/// A dated futures contract: value is the forward `F = S e^{(r-q)T}`.
///
/// For [`Settlement::Inverse`] the multiplier is the contract's face value in
/// the quote currency (e.g. 10 USD) and P&L is paid in coin:
/// `multiplier * (1/F_then - 1/F_now)` per contract held long.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::FutureContract", into = "raw::FutureContract")
)]
pub struct FutureContract {
    underlying: UnderlyingId,
    expiry: Timestamp,
    multiplier: f64,
    settlement: Settlement,
}

impl FutureContract {
    /// A linear future with multiplier 1.
    pub fn new(underlying: UnderlyingId, expiry: Timestamp) -> Self {
        FutureContract {
            underlying,
            expiry,
            multiplier: 1.0,
            settlement: Settlement::Linear,
        }
    }
    /// Sets the multiplier (units of underlying per contract; quote-currency
    /// face value for inverse contracts).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `multiplier` is finite and positive.
    pub fn with_multiplier(mut self, multiplier: f64) -> Result<Self> {
        self.multiplier = positive("multiplier", multiplier)?;
        Ok(self)
    }
    /// Sets the settlement currency.
    pub fn with_settlement(mut self, settlement: Settlement) -> Self {
        self.settlement = settlement;
        self
    }
    /// The underlying.
    pub fn underlying(&self) -> &UnderlyingId {
        &self.underlying
    }
    /// Expiry instant.
    pub fn expiry(&self) -> Timestamp {
        self.expiry
    }
    /// Units of underlying per contract (quote-currency face value if inverse).
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
    /// Settlement currency.
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }
}

/// A perpetual swap: value tracks the spot (index) price; funding is cash
/// flow, not value.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::PerpetualContract", into = "raw::PerpetualContract")
)]
pub struct PerpetualContract {
    underlying: UnderlyingId,
    multiplier: f64,
    settlement: Settlement,
}

impl PerpetualContract {
    /// A linear perpetual with multiplier 1.
    pub fn new(underlying: UnderlyingId) -> Self {
        PerpetualContract {
            underlying,
            multiplier: 1.0,
            settlement: Settlement::Linear,
        }
    }
    /// Sets the multiplier.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `multiplier` is finite and positive.
    pub fn with_multiplier(mut self, multiplier: f64) -> Result<Self> {
        self.multiplier = positive("multiplier", multiplier)?;
        Ok(self)
    }
    /// Sets the settlement currency.
    pub fn with_settlement(mut self, settlement: Settlement) -> Self {
        self.settlement = settlement;
        self
    }
    /// The underlying.
    pub fn underlying(&self) -> &UnderlyingId {
        &self.underlying
    }
    /// Units of underlying per contract (quote-currency face value if inverse).
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
    /// Settlement currency.
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }
}

/// A tradable instrument's terms. A closed set: adding a product breaks every
/// `match` that must handle it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Instrument {
    /// A holding of the underlying itself (one unit per quantity).
    Spot(UnderlyingId),
    /// A dated future.
    Future(FutureContract),
    /// A perpetual swap.
    Perpetual(PerpetualContract),
    /// A European option.
    Option(OptionContract),
}

impl Instrument {
    /// The underlying this instrument's value depends on.
    pub fn underlying(&self) -> &UnderlyingId {
        match self {
            Instrument::Spot(u) => u,
            Instrument::Future(f) => f.underlying(),
            Instrument::Perpetual(p) => p.underlying(),
            Instrument::Option(o) => o.underlying(),
        }
    }

    /// Contract multiplier (1 for spot holdings).
    pub fn multiplier(&self) -> f64 {
        match self {
            Instrument::Spot(_) => 1.0,
            Instrument::Future(f) => f.multiplier(),
            Instrument::Perpetual(p) => p.multiplier(),
            Instrument::Option(o) => o.multiplier(),
        }
    }

    /// Settlement currency (spot holdings are in the quote currency).
    pub fn settlement(&self) -> Settlement {
        match self {
            Instrument::Spot(_) => Settlement::Linear,
            Instrument::Future(f) => f.settlement(),
            Instrument::Perpetual(p) => p.settlement(),
            Instrument::Option(o) => o.settlement(),
        }
    }
}

/// Unvalidated serde mirrors; converting them back runs the constructors.
#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn one() -> f64 {
        1.0
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct OptionContract {
        underlying: UnderlyingId,
        kind: OptionKind,
        strike: f64,
        expiry: Timestamp,
        #[serde(default = "one")]
        multiplier: f64,
        #[serde(default)]
        settlement: Settlement,
        #[serde(default)]
        model: OptionModel,
    }

    impl TryFrom<OptionContract> for super::OptionContract {
        type Error = Error;
        fn try_from(r: OptionContract) -> Result<Self> {
            Ok(
                super::OptionContract::new(r.underlying, r.kind, r.strike, r.expiry)?
                    .with_multiplier(r.multiplier)?
                    .with_settlement(r.settlement)
                    .with_model(r.model),
            )
        }
    }

    impl From<super::OptionContract> for OptionContract {
        fn from(o: super::OptionContract) -> Self {
            OptionContract {
                underlying: o.underlying,
                kind: o.kind,
                strike: o.strike,
                expiry: o.expiry,
                multiplier: o.multiplier,
                settlement: o.settlement,
                model: o.model,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FutureContract {
        underlying: UnderlyingId,
        expiry: Timestamp,
        #[serde(default = "one")]
        multiplier: f64,
        #[serde(default)]
        settlement: Settlement,
    }

    impl TryFrom<FutureContract> for super::FutureContract {
        type Error = Error;
        fn try_from(r: FutureContract) -> Result<Self> {
            Ok(super::FutureContract::new(r.underlying, r.expiry)
                .with_multiplier(r.multiplier)?
                .with_settlement(r.settlement))
        }
    }

    impl From<super::FutureContract> for FutureContract {
        fn from(f: super::FutureContract) -> Self {
            FutureContract {
                underlying: f.underlying,
                expiry: f.expiry,
                multiplier: f.multiplier,
                settlement: f.settlement,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PerpetualContract {
        underlying: UnderlyingId,
        #[serde(default = "one")]
        multiplier: f64,
        #[serde(default)]
        settlement: Settlement,
    }

    impl TryFrom<PerpetualContract> for super::PerpetualContract {
        type Error = Error;
        fn try_from(r: PerpetualContract) -> Result<Self> {
            Ok(super::PerpetualContract::new(r.underlying)
                .with_multiplier(r.multiplier)?
                .with_settlement(r.settlement))
        }
    }

    impl From<super::PerpetualContract> for PerpetualContract {
        fn from(p: super::PerpetualContract) -> Self {
            PerpetualContract {
                underlying: p.underlying,
                multiplier: p.multiplier,
                settlement: p.settlement,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_terms() {
        let u = UnderlyingId::new("BTC").unwrap();
        let t = Timestamp::from_millis(0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(OptionContract::new(u.clone(), OptionKind::Call, bad, t).is_err());
            assert!(
                PerpetualContract::new(u.clone())
                    .with_multiplier(bad)
                    .is_err()
            );
        }
        assert!(UnderlyingId::new("  ").is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserialisation_validates() {
        let ok = r#"{"option":{"underlying":"BTC","kind":"call","strike":100000,"expiry":1798185600000}}"#;
        let i: Instrument = serde_json::from_str(ok).unwrap();
        assert!(matches!(i, Instrument::Option(ref o) if o.strike() == 100000.0));
        let bad = r#"{"option":{"underlying":"BTC","kind":"call","strike":-5,"expiry":0}}"#;
        let err = serde_json::from_str::<Instrument>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("strike"), "{err}");
        let unknown =
            r#"{"option":{"underlying":"BTC","kind":"call","strike":5,"expiry":0,"strik":1}}"#;
        assert!(serde_json::from_str::<Instrument>(unknown).is_err());
    }
}
