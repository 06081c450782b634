//! Collateral: what an account's balances are worth as margin.
//!
//! Unified-margin venues (Binance, OKX and Bybit unified accounts, Deribit
//! cross-collateral) and prime brokers accept several assets as collateral,
//! each valued at its market price less a haircut, and let accounts borrow
//! (a negative balance), counted as a liability. This module values a list of
//! [`Balance`]s under a [`CollateralPolicy`]:
//!
//! * every asset is priced in the quote currency ([`PriceSource`]): from a
//!   [`MarketSnapshot`] underlying's spot (BTC collateral at the BTC
//!   underlying's spot), or at a fixed price (USD = 1, USDC = 1);
//! * a held balance keeps `market value x (1 - haircut)`, the haircut being
//!   a volatility haircut over a liquidation horizon
//!   ([`VolatilityHaircut`]) plus a size-tiered liquidity haircut
//!   ([`LiquidityTiers`]), applied per tier slice and capped at 100%;
//! * a borrowed balance counts as a liability of `market value x (1 +
//!   uplift)` ([`BorrowUplift`]);
//! * totals are reported in the quote currency and in the account's
//!   settlement currency (an asset of the policy, converted at its price).
//!
//! [`health`](crate::account_health) adds positions and margin;
//! [`plan_liquidation`](crate::plan_liquidation) orders reductions.
//!
//! At exchange scale the per-snapshot work is done once: a
//! [`PricedCollateral`] holds every asset's price and volatility haircut,
//! [`GridMarginEngine::positions_value`](crate::GridMarginEngine::positions_value)
//! marks positions from the risk arrays' base values, and
//! [`health_from_valuation`](crate::health_from_valuation) assesses each
//! account from the two (900 ns per account in `examples/exchange_simulation.rs`
//! on two threads, against 5.8 µs pricing every option again).

pub(crate) mod health;
pub(crate) mod liquidation;

use crate::error::{Error, Result, non_negative, positive};
use crate::instrument::UnderlyingId;
use crate::market::MarketSnapshot;
use crate::math::inverse_norm_cdf;
use crate::units::Confidence;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Default confidence of the volatility haircut: 99%.
pub const DEFAULT_HAIRCUT_CONFIDENCE: f64 = 0.99;

/// Default liquidation horizon of the volatility haircut: 1 calendar day
/// (crypto venues liquidate collateral around the clock).
pub const DEFAULT_LIQUIDATION_HORIZON_DAYS: f64 = 1.0;

/// Default cap on the volatility haircut: 50% (fraction).
pub const DEFAULT_VOLATILITY_HAIRCUT_CAP: f64 = 0.5;

/// Longest asset id accepted, in bytes.
pub const MAX_ASSET_ID_LEN: usize = 64;

/// Checks that a computed number is finite.
pub(crate) fn finite_result(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteResult { what, value })
    }
}

/// Identifier of a collateral asset, e.g. `"BTC"`, `"USDC"`, `"USD"`.
///
/// Non-empty, at most [`MAX_ASSET_ID_LEN`] bytes, with no whitespace or
/// control characters (ids are ticker symbols).
///
/// ```
/// use portfolio_margin::AssetId;
/// let usdc = AssetId::new("USDC")?;
/// assert_eq!(usdc.as_str(), "USDC");
/// assert!(AssetId::new("").is_err());
/// assert!(AssetId::new("US DC").is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "String", into = "String")
)]
pub struct AssetId(String);

impl AssetId {
    /// From a ticker-like string.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`what: "asset id"`) if `id` is empty, longer
    /// than [`MAX_ASSET_ID_LEN`] bytes, or contains whitespace or a control
    /// character; `value` is the length in bytes.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= MAX_ASSET_ID_LEN
            && !id.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(AssetId(id))
        } else {
            Err(Error::InvalidInput {
                what: "asset id",
                rule: "1 to 64 bytes without whitespace or control characters",
                value: id.len() as f64,
            })
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AssetId {
    type Error = Error;
    fn try_from(id: String) -> Result<Self> {
        AssetId::new(id)
    }
}

impl TryFrom<&str> for AssetId {
    type Error = Error;
    fn try_from(id: &str) -> Result<Self> {
        AssetId::new(id)
    }
}

impl From<AssetId> for String {
    fn from(id: AssetId) -> String {
        id.0
    }
}

/// What kind of asset a collateral is (reporting; haircuts are configured
/// per asset, not per kind).
///
/// ```
/// use portfolio_margin::AssetKind;
/// assert_ne!(AssetKind::Coin, AssetKind::Stablecoin);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum AssetKind {
    /// A volatile crypto asset (BTC, ETH).
    Coin,
    /// A token pegged to a fiat currency (USDC, USDT).
    Stablecoin,
    /// A fiat currency (USD, EUR).
    Fiat,
}

/// How an asset is priced in the quote currency.
///
/// The price is validated when the asset is built ([`CollateralAsset::new`]).
///
/// ```
/// use portfolio_margin::{PriceSource, UnderlyingId};
/// let btc = PriceSource::Underlying(UnderlyingId::new("BTC")?);
/// let usd = PriceSource::Fixed(1.0);
/// assert_ne!(btc, usd);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum PriceSource {
    /// The spot of this underlying in the [`MarketSnapshot`] (quote currency
    /// per unit of the asset).
    Underlying(UnderlyingId),
    /// A fixed price, quote currency per unit (finite and `> 0`), e.g. 1 for
    /// USD or USDC when the quote currency is USD.
    Fixed(f64),
}

impl PriceSource {
    /// The price in the quote currency per unit of the asset.
    ///
    /// # Errors
    /// [`Error::MissingUnderlying`] if the snapshot lacks the underlying;
    /// [`Error::InvalidInput`] for a fixed price that is not finite and `> 0`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// assert_eq!(PriceSource::Underlying(btc).price(&market)?, 100_000.0);
    /// assert_eq!(PriceSource::Fixed(1.0).price(&market)?, 1.0);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn price(&self, market: &MarketSnapshot) -> Result<f64> {
        match self {
            PriceSource::Underlying(u) => Ok(market.underlying(u)?.spot()),
            PriceSource::Fixed(p) => positive("fixed asset price", *p),
        }
    }
}

/// A haircut: the fraction of market value *not* counted as collateral, in
/// `[0, 1]`.
///
/// `Haircut::new(0.15)` keeps 85% of the market value.
///
/// ```
/// use portfolio_margin::Haircut;
/// let h = Haircut::new(0.15)?;
/// assert_eq!(h.fraction(), 0.15);
/// assert_eq!(h.kept_fraction(), 0.85);
/// assert_eq!(h.apply(1_000.0), 850.0);
/// assert!(Haircut::new(15.0).is_err()); // a fraction, not a percent
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "f64", into = "f64")
)]
pub struct Haircut(f64);

impl Haircut {
    /// No haircut: the full market value counts.
    pub const ZERO: Haircut = Haircut(0.0);
    /// A 100% haircut: nothing counts.
    pub const FULL: Haircut = Haircut(1.0);

    /// From a fraction of market value.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `fraction` is in `[0, 1]`.
    pub fn new(fraction: f64) -> Result<Self> {
        Haircut::named("haircut", fraction)
    }

    /// [`Haircut::new`], the error naming the input `what`.
    fn named(what: &'static str, fraction: f64) -> Result<Self> {
        if (0.0..=1.0).contains(&fraction) {
            Ok(Haircut(fraction))
        } else {
            Err(Error::InvalidInput {
                what,
                rule: "a fraction in [0, 1]",
                value: fraction,
            })
        }
    }

    /// The haircut as a fraction of market value.
    pub const fn fraction(self) -> f64 {
        self.0
    }

    /// The fraction of market value kept: `1 - haircut`.
    pub fn kept_fraction(self) -> f64 {
        1.0 - self.0
    }

    /// `value x (1 - haircut)`, in the unit of `value`.
    pub fn apply(self, value: f64) -> f64 {
        value * self.kept_fraction()
    }

    /// The sum of two haircuts, capped at 100%.
    ///
    /// ```
    /// use portfolio_margin::Haircut;
    /// let h = Haircut::new(0.7)?.saturating_add(Haircut::new(0.5)?);
    /// assert_eq!(h, Haircut::FULL);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn saturating_add(self, other: Haircut) -> Haircut {
        Haircut((self.0 + other.0).min(1.0))
    }

    /// Clamps a computed fraction into `[0, 1]` (rounding can step outside).
    fn clamped(fraction: f64) -> Haircut {
        Haircut(fraction.clamp(0.0, 1.0))
    }
}

impl TryFrom<f64> for Haircut {
    type Error = Error;
    fn try_from(fraction: f64) -> Result<Self> {
        Haircut::new(fraction)
    }
}

impl From<Haircut> for f64 {
    fn from(h: Haircut) -> f64 {
        h.0
    }
}

/// Where the volatility of a [`VolatilityHaircut`] comes from.
///
/// ```
/// use portfolio_margin::VolatilitySource;
/// let fixed = VolatilitySource::Fixed(0.8); // 80% a year
/// assert_ne!(fixed, VolatilitySource::MarketAtm);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum VolatilitySource {
    /// A configured annualised volatility (decimal, finite and `>= 0`;
    /// `0` means no volatility haircut).
    Fixed(f64),
    /// The at-the-money-forward implied volatility of the asset's priced
    /// underlying in the [`MarketSnapshot`], at an expiry equal to the
    /// liquidation horizon. Only for assets priced by
    /// [`PriceSource::Underlying`].
    MarketAtm,
}

/// The market-risk haircut: how far the asset may fall, at a confidence
/// level, while a venue liquidates it.
///
/// `h = min(cap, z_c x sigma x sqrt(horizon_days / 365))`, with
/// `z_c = Phi^{-1}(confidence)` ([`crate::math::inverse_norm_cdf`]) and
/// `sigma` the annualised volatility from [`VolatilitySource`]: the
/// lognormal one-tailed quantile approximated to first order, the
/// square-root-of-time rule of Basel's haircut formula (BCBS, *Basel II*,
/// 2006, paragraph 162) and of CCP collateral haircut models.
///
/// Defaults: confidence [`DEFAULT_HAIRCUT_CONFIDENCE`] (0.99), horizon
/// [`DEFAULT_LIQUIDATION_HORIZON_DAYS`] (1 day), cap
/// [`DEFAULT_VOLATILITY_HAIRCUT_CAP`] (0.5).
///
/// ```
/// use portfolio_margin::{VolatilityHaircut, VolatilitySource};
/// let rule = VolatilityHaircut::with_defaults(VolatilitySource::Fixed(0.8))?;
/// // 2.326348 x 0.80 x sqrt(1/365) = 0.097413
/// assert!((rule.haircut_at(0.8)?.fraction() - 0.097_413).abs() < 1e-6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::VolatilityHaircut", into = "raw::VolatilityHaircut")
)]
pub struct VolatilityHaircut {
    source: VolatilitySource,
    /// Validated through [`Confidence`], `>= 0.5`.
    confidence: f64,
    horizon_days: f64,
    cap: Haircut,
}

impl VolatilityHaircut {
    /// No volatility haircut (a fixed volatility of zero), e.g. for fiat.
    pub const NONE: VolatilityHaircut = VolatilityHaircut {
        source: VolatilitySource::Fixed(0.0),
        confidence: DEFAULT_HAIRCUT_CONFIDENCE,
        horizon_days: DEFAULT_LIQUIDATION_HORIZON_DAYS,
        cap: Haircut(DEFAULT_VOLATILITY_HAIRCUT_CAP),
    };

    /// A volatility haircut.
    ///
    /// # Units
    /// `horizon_days` in calendar days (converted with 365 days a year);
    /// `confidence` a probability; `cap` a fraction.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `confidence` is below 0.5, `horizon_days`
    /// is not finite and `> 0`, or a [`VolatilitySource::Fixed`] volatility
    /// is not finite and `>= 0`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{Confidence, Haircut, VolatilityHaircut, VolatilitySource};
    /// let rule = VolatilityHaircut::new(VolatilitySource::MarketAtm, Confidence::new(0.995)?, 2.0, Haircut::new(0.4)?)?;
    /// assert_eq!(rule.horizon_days(), 2.0);
    /// assert!(VolatilityHaircut::new(VolatilitySource::Fixed(-0.1), Confidence::new(0.99)?, 1.0, Haircut::FULL).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn new(
        source: VolatilitySource,
        confidence: Confidence,
        horizon_days: f64,
        cap: Haircut,
    ) -> Result<Self> {
        if let VolatilitySource::Fixed(sigma) = source {
            non_negative("haircut volatility", sigma)?;
        }
        if confidence.level() < 0.5 {
            return Err(Error::InvalidInput {
                what: "haircut confidence",
                rule: "in [0.5, 1)",
                value: confidence.level(),
            });
        }
        positive("liquidation horizon days", horizon_days)?;
        Ok(VolatilityHaircut {
            source,
            confidence: confidence.level(),
            horizon_days,
            cap,
        })
    }

    /// A volatility haircut with the default confidence, horizon and cap.
    ///
    /// # Errors
    /// As [`VolatilityHaircut::new`].
    pub fn with_defaults(source: VolatilitySource) -> Result<Self> {
        VolatilityHaircut::new(
            source,
            Confidence::new(DEFAULT_HAIRCUT_CONFIDENCE)?,
            DEFAULT_LIQUIDATION_HORIZON_DAYS,
            Haircut(DEFAULT_VOLATILITY_HAIRCUT_CAP),
        )
    }

    /// Where sigma comes from.
    pub fn source(&self) -> VolatilitySource {
        self.source
    }
    /// Confidence level of the haircut, a probability in `[0.5, 1)`.
    pub fn confidence_level(&self) -> f64 {
        self.confidence
    }
    /// Liquidation horizon, calendar days.
    pub fn horizon_days(&self) -> f64 {
        self.horizon_days
    }
    /// Largest volatility haircut (fraction).
    pub fn cap(&self) -> Haircut {
        self.cap
    }

    /// The haircut for an annualised volatility `sigma`:
    /// `min(cap, z_c x sigma x sqrt(horizon_days / 365))`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `sigma` is finite and `>= 0`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{VolatilityHaircut, VolatilitySource};
    /// let rule = VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?;
    /// assert_eq!(rule.haircut_at(0.0)?.fraction(), 0.0);
    /// assert_eq!(rule.haircut_at(50.0)?.fraction(), 0.5); // capped
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn haircut_at(&self, sigma: f64) -> Result<Haircut> {
        let sigma = non_negative("haircut volatility", sigma)?;
        let z = inverse_norm_cdf(self.confidence);
        let h = z * sigma * (self.horizon_days / 365.0).sqrt();
        // h >= 0 (z >= 0); an overflow to +inf is capped.
        Ok(Haircut::clamped(h.min(self.cap.fraction())))
    }

    /// The haircut of an asset priced by `price`, in `market`.
    fn haircut(&self, price: &PriceSource, market: &MarketSnapshot) -> Result<Haircut> {
        let sigma = match (self.source, price) {
            (VolatilitySource::Fixed(sigma), _) => sigma,
            (VolatilitySource::MarketAtm, PriceSource::Underlying(u)) => {
                let m = market.underlying(u)?;
                let years = self.horizon_days / 365.0;
                m.vol().atm_volatility(years, m.forward(years))
            }
            (VolatilitySource::MarketAtm, PriceSource::Fixed(_)) => {
                return Err(market_atm_needs_underlying());
            }
        };
        self.haircut_at(sigma)
    }
}

fn market_atm_needs_underlying() -> Error {
    Error::InvalidInput {
        what: "volatility source",
        rule: "market_atm only for an asset priced from an underlying",
        value: f64::NAN,
    }
}

/// One slice of a [`LiquidityTiers`] schedule: value from `from` (quote
/// currency) up to the next tier's `from` takes the extra `haircut`.
///
/// ```
/// use portfolio_margin::{Haircut, LiquidityTier};
/// let tier = LiquidityTier { from: 1_000_000.0, haircut: Haircut::new(0.05)? };
/// assert_eq!(tier.from, 1_000_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(deny_unknown_fields)
)]
pub struct LiquidityTier {
    /// Lower bound of the slice, quote currency (market value of the
    /// balance).
    pub from: f64,
    /// Extra haircut on the value inside the slice (fraction).
    pub haircut: Haircut,
}

/// A size-tiered liquidity haircut, like venues' tiered collateral ratios:
/// the balance's market value is cut into slices at each tier's `from`, and
/// each slice takes `min(1, volatility haircut + tier haircut)`.
///
/// Rules: the first tier starts at 0, `from` strictly increases, tier
/// haircuts never decrease. An empty schedule ([`LiquidityTiers::none`])
/// adds nothing.
///
/// ```
/// use portfolio_margin::{Haircut, LiquidityTier, LiquidityTiers};
/// let tiers = LiquidityTiers::new(vec![
///     LiquidityTier { from: 0.0, haircut: Haircut::ZERO },
///     LiquidityTier { from: 1e6, haircut: Haircut::new(0.05)? },
///     LiquidityTier { from: 5e6, haircut: Haircut::new(0.20)? },
/// ])?;
/// // 8M with a 5% volatility haircut: 1M x 0.95 + 4M x 0.90 + 3M x 0.75.
/// let kept = tiers.adjusted_value(8e6, Haircut::new(0.05)?)?;
/// assert!((kept - 6.8e6).abs() < 1e-6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "Vec<LiquidityTier>", into = "Vec<LiquidityTier>")
)]
pub struct LiquidityTiers {
    tiers: Vec<LiquidityTier>,
}

impl LiquidityTiers {
    /// No liquidity haircut.
    pub fn none() -> Self {
        LiquidityTiers { tiers: Vec::new() }
    }

    /// A tier schedule.
    ///
    /// # Errors
    /// [`Error::InvalidElement`] (`what: "liquidity tier from"`) if the first
    /// tier does not start at 0 or a `from` is not finite or not above the
    /// previous one; (`what: "liquidity tier haircut"`) if a haircut is
    /// below the previous tier's.
    pub fn new(tiers: Vec<LiquidityTier>) -> Result<Self> {
        let mut previous: Option<&LiquidityTier> = None;
        for (index, tier) in tiers.iter().enumerate() {
            let from_ok = tier.from.is_finite()
                && match previous {
                    None => tier.from == 0.0,
                    Some(p) => tier.from > p.from,
                };
            if !from_ok {
                return Err(Error::InvalidElement {
                    what: "liquidity tier from",
                    index,
                    rule: "finite, 0 for the first tier, then strictly increasing",
                    value: tier.from,
                });
            }
            if previous.is_some_and(|p| tier.haircut < p.haircut) {
                return Err(Error::InvalidElement {
                    what: "liquidity tier haircut",
                    index,
                    rule: "not below the previous tier's",
                    value: tier.haircut.fraction(),
                });
            }
            previous = Some(tier);
        }
        Ok(LiquidityTiers { tiers })
    }

    /// The tiers, in increasing `from`.
    pub fn tiers(&self) -> &[LiquidityTier] {
        &self.tiers
    }

    /// Value kept from a market value of `value` (quote currency, `>= 0`)
    /// when every slice also takes the haircut `base`: the sum over slices
    /// of `slice x (1 - min(1, base + tier haircut))`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `value` is finite and `>= 0`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{Haircut, LiquidityTiers};
    /// let kept = LiquidityTiers::none().adjusted_value(100.0, Haircut::new(0.1)?)?;
    /// assert_eq!(kept, 90.0);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn adjusted_value(&self, value: f64, base: Haircut) -> Result<f64> {
        let value = non_negative("collateral value", value)?;
        if self.tiers.is_empty() {
            return Ok(base.apply(value));
        }
        let mut kept = 0.0;
        for (i, tier) in self.tiers.iter().enumerate() {
            if value <= tier.from {
                break;
            }
            let upper = self.tiers.get(i + 1).map_or(value, |n| n.from.min(value));
            kept += (upper - tier.from) * base.saturating_add(tier.haircut).kept_fraction();
        }
        Ok(kept)
    }

    /// The effective (value-weighted) haircut of a market value of `value`:
    /// `1 - adjusted_value / value`; for a zero value, the first slice's
    /// haircut.
    ///
    /// # Errors
    /// As [`LiquidityTiers::adjusted_value`].
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{Haircut, LiquidityTier, LiquidityTiers};
    /// let tiers = LiquidityTiers::new(vec![
    ///     LiquidityTier { from: 0.0, haircut: Haircut::ZERO },
    ///     LiquidityTier { from: 100.0, haircut: Haircut::new(0.5)? },
    /// ])?;
    /// assert_eq!(tiers.effective_haircut(200.0, Haircut::ZERO)?.fraction(), 0.25);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn effective_haircut(&self, value: f64, base: Haircut) -> Result<Haircut> {
        let kept = self.adjusted_value(value, base)?;
        if value > 0.0 {
            Ok(Haircut::clamped(1.0 - kept / value))
        } else {
            let first = self.tiers.first().map_or(Haircut::ZERO, |t| t.haircut);
            Ok(base.saturating_add(first))
        }
    }
}

impl TryFrom<Vec<LiquidityTier>> for LiquidityTiers {
    type Error = Error;
    fn try_from(tiers: Vec<LiquidityTier>) -> Result<Self> {
        LiquidityTiers::new(tiers)
    }
}

impl From<LiquidityTiers> for Vec<LiquidityTier> {
    fn from(t: LiquidityTiers) -> Self {
        t.tiers
    }
}

/// How much a borrowed balance (negative amount) counts as a liability,
/// above its market value: `liability = market value x (1 + uplift)`.
///
/// The default, [`BorrowUplift::MirrorHaircut`], is the asset haircut's
/// mirror image, as in mango-v4's liability weights (`1 + (1 - asset
/// weight)`): a borrowed asset can rise, before the venue buys it back, by
/// as much as a held one can fall, so the uplift is the effective haircut
/// (volatility plus liquidity tiers) the same market value would take if
/// held. Borrowed stablecoins and fiat with no haircut count at par.
///
/// ```
/// use portfolio_margin::BorrowUplift;
/// assert_eq!(BorrowUplift::default(), BorrowUplift::MirrorHaircut);
/// let fixed = BorrowUplift::Fixed(0.10); // borrowed value counts 110%
/// # let _ = fixed;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum BorrowUplift {
    /// The uplift is the effective haircut the borrowed market value would
    /// take if held (so at most 100%).
    #[default]
    MirrorHaircut,
    /// A fixed uplift, fraction of market value (finite and `>= 0`).
    Fixed(f64),
}

/// The haircut schedule of one asset: a [`VolatilityHaircut`], a
/// [`LiquidityTiers`] schedule, and the [`BorrowUplift`] for borrowed
/// balances.
///
/// ```
/// use portfolio_margin::*;
/// // Par value for a fiat currency.
/// let usd = HaircutPolicy::none();
/// assert_eq!(usd.haircut_at(1e9, 0.0)?, Haircut::ZERO);
/// // A coin: 99%, 1-day volatility haircut from the market's ATM vol.
/// let btc = HaircutPolicy::new(
///     VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?,
///     LiquidityTiers::none(),
///     BorrowUplift::MirrorHaircut,
/// )?;
/// assert!(btc.haircut_at(1e6, 0.5)?.fraction() > 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::HaircutPolicy", into = "raw::HaircutPolicy")
)]
pub struct HaircutPolicy {
    volatility: VolatilityHaircut,
    liquidity: LiquidityTiers,
    borrow_uplift: BorrowUplift,
}

impl HaircutPolicy {
    /// No haircut and par borrowing: fiat and the settlement stablecoin.
    pub fn none() -> Self {
        HaircutPolicy {
            volatility: VolatilityHaircut::NONE,
            liquidity: LiquidityTiers::none(),
            borrow_uplift: BorrowUplift::MirrorHaircut,
        }
    }

    /// A haircut schedule.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a [`BorrowUplift::Fixed`] uplift that is
    /// not finite and `>= 0`.
    pub fn new(
        volatility: VolatilityHaircut,
        liquidity: LiquidityTiers,
        borrow_uplift: BorrowUplift,
    ) -> Result<Self> {
        if let BorrowUplift::Fixed(u) = borrow_uplift {
            non_negative("borrow uplift", u)?;
        }
        Ok(HaircutPolicy {
            volatility,
            liquidity,
            borrow_uplift,
        })
    }

    /// The volatility haircut.
    pub fn volatility(&self) -> &VolatilityHaircut {
        &self.volatility
    }
    /// The liquidity tiers.
    pub fn liquidity(&self) -> &LiquidityTiers {
        &self.liquidity
    }
    /// The liability uplift of borrowed balances.
    pub fn borrow_uplift(&self) -> BorrowUplift {
        self.borrow_uplift
    }

    /// The effective haircut of a held market value `value` (quote currency)
    /// for an annualised volatility `sigma` (ignored unless the source is
    /// [`VolatilitySource::MarketAtm`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a negative or non-finite `value` or
    /// `sigma`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let policy = HaircutPolicy::new(
    ///     VolatilityHaircut::with_defaults(VolatilitySource::Fixed(0.0))?,
    ///     LiquidityTiers::new(vec![
    ///         LiquidityTier { from: 0.0, haircut: Haircut::ZERO },
    ///         LiquidityTier { from: 100.0, haircut: Haircut::new(0.2)? },
    ///     ])?,
    ///     BorrowUplift::MirrorHaircut,
    /// )?;
    /// // 100 at 0% and 100 at 20%: 10% overall.
    /// assert!((policy.haircut_at(200.0, 0.0)?.fraction() - 0.1).abs() < 1e-15);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn haircut_at(&self, value: f64, sigma: f64) -> Result<Haircut> {
        let sigma = match self.volatility.source {
            VolatilitySource::Fixed(s) => s,
            VolatilitySource::MarketAtm => sigma,
        };
        let base = self.volatility.haircut_at(sigma)?;
        self.liquidity.effective_haircut(value, base)
    }
}

impl Default for HaircutPolicy {
    fn default() -> Self {
        HaircutPolicy::none()
    }
}

/// One collateral asset: its id, kind, price source and haircuts.
///
/// ```
/// use portfolio_margin::*;
/// let btc = CollateralAsset::new(
///     AssetId::new("BTC")?,
///     AssetKind::Coin,
///     PriceSource::Underlying(UnderlyingId::new("BTC")?),
///     HaircutPolicy::new(VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?, LiquidityTiers::none(), BorrowUplift::MirrorHaircut)?,
/// )?;
/// assert_eq!(btc.kind(), AssetKind::Coin);
/// // A market-ATM haircut needs a market price.
/// assert!(CollateralAsset::new(AssetId::new("USD")?, AssetKind::Fiat, PriceSource::Fixed(1.0),
///     HaircutPolicy::new(VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?, LiquidityTiers::none(), BorrowUplift::MirrorHaircut)?).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::CollateralAsset", into = "raw::CollateralAsset")
)]
pub struct CollateralAsset {
    id: AssetId,
    kind: AssetKind,
    price: PriceSource,
    haircut: HaircutPolicy,
}

impl CollateralAsset {
    /// An asset.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a [`PriceSource::Fixed`] price is not
    /// finite and `> 0`, or the haircut uses [`VolatilitySource::MarketAtm`]
    /// with a fixed price.
    pub fn new(
        id: AssetId,
        kind: AssetKind,
        price: PriceSource,
        haircut: HaircutPolicy,
    ) -> Result<Self> {
        if let PriceSource::Fixed(p) = price {
            positive("fixed asset price", p)?;
            if haircut.volatility.source == VolatilitySource::MarketAtm {
                return Err(market_atm_needs_underlying());
            }
        }
        Ok(CollateralAsset {
            id,
            kind,
            price,
            haircut,
        })
    }

    /// A fixed-price asset with no haircut (fiat, the settlement
    /// stablecoin).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `price` is finite and `> 0`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{AssetId, AssetKind, CollateralAsset};
    /// let usdc = CollateralAsset::at_par(AssetId::new("USDC")?, AssetKind::Stablecoin, 1.0)?;
    /// assert_eq!(usdc.id().as_str(), "USDC");
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn at_par(id: AssetId, kind: AssetKind, price: f64) -> Result<Self> {
        CollateralAsset::new(id, kind, PriceSource::Fixed(price), HaircutPolicy::none())
    }

    /// The id.
    pub fn id(&self) -> &AssetId {
        &self.id
    }
    /// The kind.
    pub fn kind(&self) -> AssetKind {
        self.kind
    }
    /// How it is priced.
    pub fn price_source(&self) -> &PriceSource {
        &self.price
    }
    /// Its haircuts.
    pub fn haircut_policy(&self) -> &HaircutPolicy {
        &self.haircut
    }

    /// Price in the quote currency per unit.
    ///
    /// # Errors
    /// As [`PriceSource::price`].
    pub fn price(&self, market: &MarketSnapshot) -> Result<f64> {
        self.price.price(market)
    }

    /// The volatility haircut in `market` (before liquidity tiers).
    ///
    /// # Errors
    /// [`Error::MissingUnderlying`] if the asset's underlying has no market
    /// data.
    pub fn volatility_haircut(&self, market: &MarketSnapshot) -> Result<Haircut> {
        self.haircut.volatility.haircut(&self.price, market)
    }
}

/// An amount of one asset held (positive) or borrowed (negative).
///
/// Validated when valued ([`value_collateral`]): the amount must be finite.
///
/// ```
/// use portfolio_margin::{AssetId, Balance};
/// let loan = Balance::new(AssetId::new("USDC")?, -5_000.0);
/// assert!(loan.amount < 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Balance {
    /// The asset.
    pub asset: AssetId,
    /// Units of the asset; negative when borrowed.
    pub amount: f64,
}

impl Balance {
    /// A balance of `amount` units of `asset`.
    pub fn new(asset: AssetId, amount: f64) -> Self {
        Balance { asset, amount }
    }
}

/// An amount in the quote currency and in the settlement currency.
///
/// ```
/// use portfolio_margin::ConvertedAmount;
/// let a = ConvertedAmount { quote: 50_000.0, settlement: 0.5 };
/// assert_eq!(a.quote / a.settlement, 100_000.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct ConvertedAmount {
    /// Quote currency.
    pub quote: f64,
    /// Units of the policy's settlement asset.
    pub settlement: f64,
}

/// Which assets count as collateral, their haircuts, and the account's
/// settlement currency (one of the assets).
///
/// ```
/// use portfolio_margin::*;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![
///     CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?,
/// ])?;
/// assert_eq!(policy.settlement(), &usdc);
/// // The settlement asset must be listed.
/// assert!(CollateralPolicy::new(AssetId::new("BTC")?, vec![]).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::CollateralPolicy", into = "raw::CollateralPolicy")
)]
pub struct CollateralPolicy {
    settlement: AssetId,
    assets: Vec<CollateralAsset>,
    index: HashMap<AssetId, usize>,
}

impl CollateralPolicy {
    /// A policy over `assets`, settling in `settlement`.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] (`what: "collateral asset"`) if an asset is
    /// listed twice; [`Error::UnknownAsset`] if `settlement` is not listed.
    pub fn new(settlement: AssetId, assets: Vec<CollateralAsset>) -> Result<Self> {
        let mut index = HashMap::with_capacity(assets.len());
        for (i, asset) in assets.iter().enumerate() {
            if index.insert(asset.id.clone(), i).is_some() {
                return Err(Error::DuplicateId {
                    what: "collateral asset",
                    id: asset.id.to_string(),
                });
            }
        }
        if !index.contains_key(&settlement) {
            return Err(Error::UnknownAsset(settlement));
        }
        Ok(CollateralPolicy {
            settlement,
            assets,
            index,
        })
    }

    /// The settlement asset.
    pub fn settlement(&self) -> &AssetId {
        &self.settlement
    }

    /// The assets, in the order given.
    pub fn assets(&self) -> &[CollateralAsset] {
        &self.assets
    }

    /// Looks an asset up.
    ///
    /// # Errors
    /// [`Error::UnknownAsset`] if `id` is not listed.
    pub fn asset(&self, id: &AssetId) -> Result<&CollateralAsset> {
        self.asset_at(id).map(|(_, asset)| asset)
    }

    /// [`CollateralPolicy::asset`] with its index in the policy.
    fn asset_at(&self, id: &AssetId) -> Result<(usize, &CollateralAsset)> {
        self.index
            .get(id)
            .and_then(|&i| Some((i, self.assets.get(i)?)))
            .ok_or_else(|| Error::UnknownAsset(id.clone()))
    }

    /// Price of one unit of the settlement asset, quote currency.
    ///
    /// # Errors
    /// As [`PriceSource::price`].
    pub fn settlement_price(&self, market: &MarketSnapshot) -> Result<f64> {
        self.asset(&self.settlement)?.price(market)
    }

    /// Converts `quote` (quote currency) into units of the settlement asset.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `quote` is not finite;
    /// [`Error::NonFiniteResult`] if the conversion overflows.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc_id = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
    ///     .underlying(btc_id.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let btc = AssetId::new("BTC")?;
    /// let policy = CollateralPolicy::new(btc.clone(), vec![CollateralAsset::new(
    ///     btc, AssetKind::Coin, PriceSource::Underlying(btc_id), HaircutPolicy::none())?])?;
    /// assert_eq!(policy.to_settlement(50_000.0, &market)?, 0.5);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn to_settlement(&self, quote: f64, market: &MarketSnapshot) -> Result<f64> {
        let quote = crate::error::finite("quote amount", quote)?;
        finite_result("settlement amount", quote / self.settlement_price(market)?)
    }

    /// Converts an amount of a coin (the currency of coin-settled, inverse
    /// contracts on underlying `coin`) into the quote currency, at the
    /// coin's spot in `market`, and into the settlement currency.
    ///
    /// # Units
    /// `coin_amount` in units of the coin (e.g. BTC).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `coin_amount` is not finite;
    /// [`Error::MissingUnderlying`] if `market` lacks `coin`;
    /// [`Error::NonFiniteResult`] on overflow.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let usdc = AssetId::new("USDC")?;
    /// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc, AssetKind::Stablecoin, 1.0)?])?;
    /// // An inverse option worth 0.05 BTC.
    /// let value = policy.convert_coin(&btc, 0.05, &market)?;
    /// assert_eq!(value.quote, 5_000.0);
    /// assert_eq!(value.settlement, 5_000.0);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn convert_coin(
        &self,
        coin: &UnderlyingId,
        coin_amount: f64,
        market: &MarketSnapshot,
    ) -> Result<ConvertedAmount> {
        let quote = coin_to_quote(coin_amount, coin, market)?;
        Ok(ConvertedAmount {
            quote,
            settlement: self.to_settlement(quote, market)?,
        })
    }
}

/// Converts an amount of a coin into the quote currency at the coin's spot:
/// `coin_amount x spot(coin)`.
///
/// # Units
/// `coin_amount` in coins; result in the quote currency.
///
/// # Errors
/// [`Error::InvalidInput`] if `coin_amount` is not finite;
/// [`Error::MissingUnderlying`]; [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let eth = UnderlyingId::new("ETH")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(eth.clone(), UnderlyingMarket::new(4_000.0, 0.0, 0.0, VolSurface::flat(0.7)?)?)
///     .build()?;
/// assert_eq!(coin_to_quote(-0.5, &eth, &market)?, -2_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn coin_to_quote(
    coin_amount: f64,
    coin: &UnderlyingId,
    market: &MarketSnapshot,
) -> Result<f64> {
    let coin_amount = crate::error::finite("coin amount", coin_amount)?;
    let spot = market.underlying(coin)?.spot();
    finite_result("coin value in quote currency", coin_amount * spot)
}

/// One balance's valuation, a line of [`CollateralValuation`].
///
/// For a held balance, `adjusted_value = market_value x (1 - haircut)`;
/// for a borrowed one, `adjusted_value = market_value x (1 + borrow_uplift)`
/// (both negative).
///
/// ```
/// use portfolio_margin::*;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0)).build()?;
/// let usd = AssetId::new("USD")?;
/// let policy = CollateralPolicy::new(usd.clone(), vec![CollateralAsset::at_par(usd.clone(), AssetKind::Fiat, 1.0)?])?;
/// let v = value_collateral(&[Balance::new(usd, -10.0)], &market, &policy)?;
/// let line = &v.lines[0];
/// assert_eq!((line.market_value, line.borrow_uplift, line.adjusted_value), (-10.0, 0.0, -10.0));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct AssetValuation {
    /// The asset.
    pub asset: AssetId,
    /// Its kind.
    pub kind: AssetKind,
    /// Units held (negative: borrowed).
    pub amount: f64,
    /// Price, quote currency per unit.
    pub price: f64,
    /// `amount x price`, quote currency (negative: borrowed).
    pub market_value: f64,
    /// Effective haircut of a held balance (volatility plus liquidity tiers,
    /// value-weighted); zero for a borrowed one.
    pub haircut: Haircut,
    /// Liability uplift of a borrowed balance (fraction); zero for a held
    /// one.
    pub borrow_uplift: f64,
    /// Value counted as collateral, quote currency (negative: a liability).
    pub adjusted_value: f64,
    /// `market_value` in the settlement currency.
    pub market_value_settlement: f64,
    /// `adjusted_value` in the settlement currency.
    pub adjusted_value_settlement: f64,
}

/// The valuation of an account's balances under a [`CollateralPolicy`],
/// built by [`value_collateral`] (see its example).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CollateralValuation {
    /// One line per balance, in the order given.
    pub lines: Vec<AssetValuation>,
    /// The settlement asset.
    pub settlement: AssetId,
    /// Price of one unit of the settlement asset, quote currency.
    pub settlement_price: f64,
    /// Market value of held balances, quote currency (`>= 0`).
    pub asset_value: f64,
    /// Market value of borrowed balances, quote currency (`>= 0`, before
    /// uplift).
    pub liability_value: f64,
    /// Net market value, `asset_value - liability_value`, quote currency.
    pub market_value: f64,
    /// Net haircut-adjusted value (held balances after haircuts, minus
    /// borrowed balances after uplifts), quote currency.
    pub adjusted_value: f64,
    /// `market_value` in the settlement currency.
    pub market_value_settlement: f64,
    /// `adjusted_value` in the settlement currency.
    pub adjusted_value_settlement: f64,
}

/// Values `balances` as collateral: per asset the market value, the haircut
/// (or borrow uplift) and the adjusted value, and the totals, in the quote
/// and the settlement currency.
///
/// Held balances keep `sum over tier slices of slice x (1 - min(1, h_vol +
/// h_tier))` (see [`LiquidityTiers`]); borrowed balances count as
/// liabilities of `|market value| x (1 + uplift)` (see [`BorrowUplift`]).
/// A zero balance is valued at zero.
///
/// # Errors
/// [`Error::InvalidElement`] (`what: "balance amount"`) for a non-finite
/// amount; [`Error::UnknownAsset`]; [`Error::DuplicateId`] (`what:
/// "balance"`) for an asset listed twice; [`Error::MissingUnderlying`] for
/// an asset priced off an underlying the snapshot lacks;
/// [`Error::NonFiniteResult`] if a value overflows (e.g. balances near
/// `1e300`).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc_u = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(btc_u.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let (usdc, btc) = (AssetId::new("USDC")?, AssetId::new("BTC")?);
/// let policy = CollateralPolicy::new(usdc.clone(), vec![
///     CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?,
///     CollateralAsset::new(btc.clone(), AssetKind::Coin, PriceSource::Underlying(btc_u),
///         HaircutPolicy::new(VolatilityHaircut::with_defaults(VolatilitySource::Fixed(0.0))?,
///             LiquidityTiers::new(vec![LiquidityTier { from: 0.0, haircut: Haircut::new(0.1)? }])?,
///             BorrowUplift::MirrorHaircut)?)?,
/// ])?;
/// let v = value_collateral(&[Balance::new(btc, 2.0), Balance::new(usdc, -50_000.0)], &market, &policy)?;
/// // 2 BTC at 100k less 10%, minus 50k borrowed at par.
/// assert_eq!(v.adjusted_value, 180_000.0 - 50_000.0);
/// assert_eq!(v.market_value, 150_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn value_collateral(
    balances: &[Balance],
    market: &MarketSnapshot,
    policy: &CollateralPolicy,
) -> Result<CollateralValuation> {
    PricedCollateral::new(policy, market).value(balances)
}

/// A [`CollateralPolicy`] priced against one market snapshot: the
/// settlement price and each asset's price and volatility haircut, taken
/// once. An exchange values every account's balances against it each
/// snapshot ([`PricedCollateral::value`]) at the cost of a lookup and the
/// tier arithmetic per balance; the numbers are [`value_collateral`]'s, bit
/// for bit (it is this type, made for one call).
///
/// Pricing errors (an asset priced off an underlying the snapshot lacks)
/// are kept per asset and returned by `value` for accounts that hold that
/// asset, as [`value_collateral`] returns them.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc_u = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(btc_u.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let (usdc, btc) = (AssetId::new("USDC")?, AssetId::new("BTC")?);
/// let policy = CollateralPolicy::new(usdc.clone(), vec![
///     CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?,
///     CollateralAsset::new(btc.clone(), AssetKind::Coin, PriceSource::Underlying(btc_u),
///         HaircutPolicy::new(VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?,
///             LiquidityTiers::none(), BorrowUplift::MirrorHaircut)?)?,
/// ])?;
/// let priced = PricedCollateral::new(&policy, &market);
/// for balances in [vec![Balance::new(btc.clone(), 2.0)], vec![Balance::new(usdc.clone(), -5_000.0)]] {
///     assert_eq!(priced.value(&balances)?, value_collateral(&balances, &market, &policy)?);
/// }
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PricedCollateral<'a> {
    policy: &'a CollateralPolicy,
    settlement_price: Result<f64>,
    /// Per asset of the policy, in its order: price and volatility haircut
    /// (each as the asset's own method returned it).
    assets: Vec<(Result<f64>, Result<Haircut>)>,
}

impl<'a> PricedCollateral<'a> {
    /// Prices every asset of `policy` in `market`.
    pub fn new(policy: &'a CollateralPolicy, market: &MarketSnapshot) -> Self {
        let assets = policy
            .assets
            .iter()
            .map(|asset| (asset.price(market), asset.volatility_haircut(market)))
            .collect();
        PricedCollateral {
            policy,
            settlement_price: policy.settlement_price(market),
            assets,
        }
    }

    /// Values `balances` as [`value_collateral`] does.
    ///
    /// # Errors
    /// As [`value_collateral`].
    pub fn value(&self, balances: &[Balance]) -> Result<CollateralValuation> {
        let policy = self.policy;
        let settlement_price = self.settlement_price.clone()?;
        let to_settlement = |what, quote: f64| finite_result(what, quote / settlement_price);
        // The policy's assets met so far, by index.
        let mut seen = vec![false; self.assets.len()];
        let mut lines = Vec::with_capacity(balances.len());
        let (mut asset_value, mut liability_value, mut adjusted_value) = (0.0, 0.0, 0.0);
        for (index, balance) in balances.iter().enumerate() {
            if !balance.amount.is_finite() {
                return Err(Error::InvalidElement {
                    what: "balance amount",
                    index,
                    rule: "finite",
                    value: balance.amount,
                });
            }
            let (i, asset) = policy.asset_at(&balance.asset)?;
            match seen.get_mut(i) {
                Some(met) if !*met => *met = true,
                _ => {
                    return Err(Error::DuplicateId {
                        what: "balance",
                        id: balance.asset.to_string(),
                    });
                }
            }
            let Some((price, base)) = self.assets.get(i) else {
                return Err(Error::UnknownAsset(balance.asset.clone()));
            };
            let price = price.clone()?;
            let market_value = finite_result("collateral market value", balance.amount * price)?;
            let base = base.clone()?;
            let tiers = &asset.haircut.liquidity;
            let (haircut, borrow_uplift, adjusted) = if market_value >= 0.0 {
                let kept = tiers.adjusted_value(market_value, base)?;
                let haircut = tiers.effective_haircut(market_value, base)?;
                asset_value += market_value;
                (haircut, 0.0, kept)
            } else {
                let owed = -market_value;
                let uplift = match asset.haircut.borrow_uplift {
                    BorrowUplift::MirrorHaircut => tiers.effective_haircut(owed, base)?.fraction(),
                    BorrowUplift::Fixed(u) => u,
                };
                liability_value += owed;
                let liability = finite_result("borrowed liability", owed * (1.0 + uplift))?;
                (Haircut::ZERO, uplift, -liability)
            };
            adjusted_value += adjusted;
            lines.push(AssetValuation {
                asset: balance.asset.clone(),
                kind: asset.kind,
                amount: balance.amount,
                price,
                market_value,
                haircut,
                borrow_uplift,
                adjusted_value: adjusted,
                market_value_settlement: to_settlement("market value in settlement", market_value)?,
                adjusted_value_settlement: to_settlement("adjusted value in settlement", adjusted)?,
            });
        }
        let asset_value = finite_result("collateral asset value", asset_value)?;
        let liability_value = finite_result("collateral liability value", liability_value)?;
        let market_value = finite_result("collateral market value", asset_value - liability_value)?;
        let adjusted_value = finite_result("collateral adjusted value", adjusted_value)?;
        Ok(CollateralValuation {
            lines,
            settlement: policy.settlement.clone(),
            settlement_price,
            asset_value,
            liability_value,
            market_value,
            adjusted_value,
            market_value_settlement: to_settlement("market value in settlement", market_value)?,
            adjusted_value_settlement: to_settlement(
                "adjusted value in settlement",
                adjusted_value,
            )?,
        })
    }
}

/// Unvalidated serde mirrors; converting them back runs the constructors.
#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn default_confidence() -> f64 {
        DEFAULT_HAIRCUT_CONFIDENCE
    }
    fn default_horizon() -> f64 {
        DEFAULT_LIQUIDATION_HORIZON_DAYS
    }
    fn default_cap() -> f64 {
        DEFAULT_VOLATILITY_HAIRCUT_CAP
    }
    fn no_volatility() -> super::VolatilityHaircut {
        super::VolatilityHaircut::NONE
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct VolatilityHaircut {
        source: VolatilitySource,
        #[serde(default = "default_confidence")]
        confidence: f64,
        #[serde(default = "default_horizon")]
        horizon_days: f64,
        #[serde(default = "default_cap")]
        cap: f64,
    }

    impl TryFrom<VolatilityHaircut> for super::VolatilityHaircut {
        type Error = Error;
        fn try_from(r: VolatilityHaircut) -> Result<Self> {
            let confidence = Confidence::new(r.confidence)?;
            let cap = Haircut::named("volatility haircut cap", r.cap)?;
            super::VolatilityHaircut::new(r.source, confidence, r.horizon_days, cap)
        }
    }

    impl From<super::VolatilityHaircut> for VolatilityHaircut {
        fn from(v: super::VolatilityHaircut) -> Self {
            VolatilityHaircut {
                source: v.source,
                confidence: v.confidence,
                horizon_days: v.horizon_days,
                cap: v.cap.fraction(),
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HaircutPolicy {
        #[serde(default = "no_volatility")]
        volatility: super::VolatilityHaircut,
        #[serde(default)]
        liquidity: LiquidityTiers,
        #[serde(default)]
        borrow_uplift: BorrowUplift,
    }

    impl TryFrom<HaircutPolicy> for super::HaircutPolicy {
        type Error = Error;
        fn try_from(r: HaircutPolicy) -> Result<Self> {
            super::HaircutPolicy::new(r.volatility, r.liquidity, r.borrow_uplift)
        }
    }

    impl From<super::HaircutPolicy> for HaircutPolicy {
        fn from(h: super::HaircutPolicy) -> Self {
            HaircutPolicy {
                volatility: h.volatility,
                liquidity: h.liquidity,
                borrow_uplift: h.borrow_uplift,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CollateralAsset {
        id: AssetId,
        kind: AssetKind,
        price: PriceSource,
        haircut: super::HaircutPolicy,
    }

    impl TryFrom<CollateralAsset> for super::CollateralAsset {
        type Error = Error;
        fn try_from(r: CollateralAsset) -> Result<Self> {
            super::CollateralAsset::new(r.id, r.kind, r.price, r.haircut)
        }
    }

    impl From<super::CollateralAsset> for CollateralAsset {
        fn from(a: super::CollateralAsset) -> Self {
            CollateralAsset {
                id: a.id,
                kind: a.kind,
                price: a.price,
                haircut: a.haircut,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CollateralPolicy {
        settlement: AssetId,
        assets: Vec<super::CollateralAsset>,
    }

    impl TryFrom<CollateralPolicy> for super::CollateralPolicy {
        type Error = Error;
        fn try_from(r: CollateralPolicy) -> Result<Self> {
            super::CollateralPolicy::new(r.settlement, r.assets)
        }
    }

    impl From<super::CollateralPolicy> for CollateralPolicy {
        fn from(p: super::CollateralPolicy) -> Self {
            CollateralPolicy {
                settlement: p.settlement,
                assets: p.assets,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haircut_bounds() {
        for bad in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
            assert!(Haircut::new(bad).is_err(), "{bad}");
        }
        assert_eq!(Haircut::new(1.0).unwrap(), Haircut::FULL);
        assert_eq!(Haircut::clamped(-1e-17), Haircut::ZERO);
    }

    #[test]
    fn tiers_reject_bad_schedules() {
        let h = |x| Haircut::new(x).unwrap();
        let t = |from, haircut| LiquidityTier { from, haircut };
        assert!(LiquidityTiers::new(vec![t(1.0, h(0.0))]).is_err());
        assert!(LiquidityTiers::new(vec![t(0.0, h(0.0)), t(0.0, h(0.1))]).is_err());
        assert!(LiquidityTiers::new(vec![t(0.0, h(0.2)), t(5.0, h(0.1))]).is_err());
        assert!(LiquidityTiers::new(vec![t(0.0, h(0.0)), t(f64::INFINITY, h(0.1))]).is_err());
        assert!(LiquidityTiers::new(vec![t(0.0, h(0.0)), t(5.0, h(0.1))]).is_ok());
    }

    #[test]
    fn none_policy_is_valid() {
        let v = VolatilityHaircut::NONE;
        let c = Confidence::new(v.confidence).unwrap();
        assert_eq!(
            VolatilityHaircut::new(v.source, c, v.horizon_days, v.cap).unwrap(),
            v
        );
        assert_eq!(v.haircut_at(0.0).unwrap(), Haircut::ZERO);
    }
}
