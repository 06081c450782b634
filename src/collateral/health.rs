//! Account health: equity against maintenance margin.
//!
//! * **Equity** (quote currency) = haircut-adjusted collateral
//!   ([`value_collateral`]) + mark-to-market of the positions
//!   ([`positions_value`]).
//! * **Health factor** = equity / maintenance margin ([`HealthFactor`]),
//!   floored at 0, [`HealthFactor::Unbounded`] when nothing is required.
//! * **Status** from configurable bands ([`HealthBands`]): healthy, warning,
//!   reduce-only, liquidation, and bankrupt when equity is not positive.
//! * **Deposit to restore** a target health factor `t`:
//!   `max(0, t x maintenance - equity)`; **withdrawable**:
//!   `max(0, equity - initial)`.

use crate::collateral::{
    Balance, CollateralPolicy, CollateralValuation, finite_result, value_collateral,
};
use crate::error::{Error, Result, finite, non_negative, positive};
use crate::instrument::{Instrument, Settlement};
use crate::margin::MarginRequirement;
use crate::market::MarketSnapshot;
use crate::portfolio::{InstrumentSet, Portfolio};
use crate::pricing::price;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Default health factor below which an account is in
/// [`HealthStatus::Warning`]: 1.25.
pub const DEFAULT_WARNING_BELOW: f64 = 1.25;
/// Default health factor below which an account is
/// [`HealthStatus::ReduceOnly`]: 1.10.
pub const DEFAULT_REDUCE_ONLY_BELOW: f64 = 1.1;
/// Default health factor below which an account is in
/// [`HealthStatus::Liquidation`]: 1.00 (equity below maintenance margin).
pub const DEFAULT_LIQUIDATION_BELOW: f64 = 1.0;

/// Everything that values one account, gathered by reference: its
/// balances and positions, the listed instruments, the market and the
/// collateral policy.
///
/// ```
/// use portfolio_margin::*;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0)).build()?;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
/// let instruments = InstrumentSet::new();
/// let portfolio = Portfolio::new(AccountId::new("alice"), vec![], &instruments)?;
/// let balances = [Balance::new(usdc, 1_000.0)];
/// let account = Account { balances: &balances, portfolio: &portfolio, instruments: &instruments, market: &market, policy: &policy };
/// assert_eq!(account.equity()?, 1_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// Collateral balances (negative: borrowed).
    pub balances: &'a [Balance],
    /// Open positions.
    pub portfolio: &'a Portfolio,
    /// The instruments the positions refer to.
    pub instruments: &'a InstrumentSet,
    /// Prices, vols and rates.
    pub market: &'a MarketSnapshot,
    /// Which balances count, with which haircuts.
    pub policy: &'a CollateralPolicy,
}

impl Account<'_> {
    /// Equity, quote currency: adjusted collateral plus positions' value.
    ///
    /// # Errors
    /// As [`value_collateral`] and [`positions_value`];
    /// [`Error::NonFiniteResult`] if the sum overflows.
    pub fn equity(&self) -> Result<f64> {
        let (collateral, positions) = self.valuation()?;
        equity_of(&collateral, positions)
    }

    /// Collateral valuation and positions' value.
    fn valuation(&self) -> Result<(CollateralValuation, f64)> {
        let collateral = value_collateral(self.balances, self.market, self.policy)?;
        let positions = positions_value(self.portfolio, self.instruments, self.market)?;
        Ok((collateral, positions))
    }
}

/// Adjusted collateral plus positions' value, quote currency.
fn equity_of(collateral: &CollateralValuation, positions_value: f64) -> Result<f64> {
    finite_result(
        "account equity",
        collateral.adjusted_value + positions_value,
    )
}

/// Mark-to-market value of a portfolio's positions, quote currency, by the
/// convention of unified-margin accounts:
///
/// * futures and perpetuals settle variation margin into balances, so their
///   value here is **0** (their P&L is already in the collateral);
/// * options are worth their premium, [`price`] x multiplier x quantity:
///   positive when long, negative when short;
/// * spot holdings held as positions are worth spot x quantity (hold them as
///   [`Balance`]s instead to apply haircuts);
/// * coin-settled (inverse) values, in coin, are converted at the
///   underlying's spot.
///
/// # Errors
/// [`Error::UnknownInstrument`]; [`Error::InInstrument`] wrapping a pricing
/// error (missing underlying, expired option);
/// [`Error::MissingUnderlying`]; [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let as_of = Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0)?;
/// let spx = UnderlyingId::new("SPX")?;
/// let market = MarketSnapshot::builder(as_of)
///     .underlying(spx.clone(), UnderlyingMarket::new(100.0, 0.05, 0.0, VolSurface::flat(0.2)?)?)
///     .build()?;
/// let mut set = InstrumentSet::new();
/// let call = OptionContract::new(spx.clone(), OptionKind::Call, 100.0, Timestamp::from_ymd_hms(2027, 1, 1, 0, 0, 0)?)?
///     .with_multiplier(100.0)?;
/// set.insert(InstrumentId::new("C")?, Instrument::Option(call))?;
/// set.insert(InstrumentId::new("F")?, Instrument::Perpetual(PerpetualContract::new(spx)))?;
/// let book = Portfolio::new(AccountId::new("a"), vec![
///     Position::new(InstrumentId::new("C")?, -2.0),
///     Position::new(InstrumentId::new("F")?, 5.0),
/// ], &set)?;
/// // Short 2 calls worth 10.4506 x 100 each; the perpetual counts 0.
/// assert!((positions_value(&book, &set, &market)? + 2_090.12).abs() < 0.01);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn positions_value(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
) -> Result<f64> {
    let mut total = 0.0;
    for position in portfolio.positions() {
        let instrument = instruments.get(&position.instrument)?;
        let value = match instrument {
            Instrument::Future(_) | Instrument::Perpetual(_) => 0.0,
            Instrument::Spot(u) => market.underlying(u)?.spot() * position.quantity,
            Instrument::Option(o) => {
                let unit = price(instrument, market).map_err(|e| Error::InInstrument {
                    id: position.instrument.clone(),
                    source: Box::new(e),
                })?;
                let native = unit * o.multiplier() * position.quantity;
                match o.settlement() {
                    Settlement::Linear => native,
                    Settlement::Inverse => native * market.underlying(o.underlying())?.spot(),
                }
            }
        };
        total += finite_result("position value", value)?;
    }
    finite_result("positions value", total)
}

/// Equity over maintenance margin, finite by construction.
///
/// `Ratio(max(0, equity) / maintenance)` when maintenance is positive;
/// [`HealthFactor::Unbounded`] when the account has positive equity and
/// nothing (or so little that the ratio exceeds `f64::MAX`) is required.
/// With zero maintenance and no positive equity the factor is `Ratio(0)`.
/// Unbounded ranks above every ratio.
///
/// ```
/// use portfolio_margin::HealthFactor;
/// assert_eq!(HealthFactor::new(1_500.0, 1_000.0)?, HealthFactor::Ratio(1.5));
/// assert_eq!(HealthFactor::new(1_500.0, 0.0)?, HealthFactor::Unbounded);
/// assert_eq!(HealthFactor::new(-10.0, 1_000.0)?, HealthFactor::Ratio(0.0));
/// assert!(HealthFactor::Unbounded > HealthFactor::Ratio(1e300));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum HealthFactor {
    /// No maintenance margin is required and equity is positive.
    Unbounded,
    /// `equity / maintenance`, finite and `>= 0`.
    Ratio(f64),
}

impl HealthFactor {
    /// The health factor of `equity` against `maintenance` (both quote
    /// currency).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `equity` is not finite or `maintenance` is
    /// not finite and `>= 0`.
    pub fn new(equity: f64, maintenance: f64) -> Result<Self> {
        let equity = finite("equity", equity)?;
        let maintenance = non_negative("maintenance margin", maintenance)?;
        if equity <= 0.0 {
            return Ok(HealthFactor::Ratio(0.0));
        }
        let ratio = equity / maintenance;
        Ok(if ratio.is_finite() {
            HealthFactor::Ratio(ratio)
        } else {
            HealthFactor::Unbounded
        })
    }

    /// The ratio, or `None` when unbounded.
    pub fn ratio(self) -> Option<f64> {
        match self {
            HealthFactor::Unbounded => None,
            HealthFactor::Ratio(r) => Some(r),
        }
    }

    /// True when the factor is at least `target`.
    ///
    /// ```
    /// use portfolio_margin::HealthFactor;
    /// assert!(HealthFactor::Ratio(1.25).meets(1.25));
    /// assert!(!HealthFactor::Ratio(1.2).meets(1.25));
    /// assert!(HealthFactor::Unbounded.meets(1e300));
    /// ```
    pub fn meets(self, target: f64) -> bool {
        match self {
            HealthFactor::Unbounded => true,
            HealthFactor::Ratio(r) => r >= target,
        }
    }
}

impl PartialOrd for HealthFactor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (HealthFactor::Unbounded, HealthFactor::Unbounded) => Some(Ordering::Equal),
            (HealthFactor::Unbounded, HealthFactor::Ratio(_)) => Some(Ordering::Greater),
            (HealthFactor::Ratio(_), HealthFactor::Unbounded) => Some(Ordering::Less),
            (HealthFactor::Ratio(a), HealthFactor::Ratio(b)) => a.partial_cmp(b),
        }
    }
}

/// An account's standing, from best to worst (the derived order ranks
/// severity: `Healthy < Warning < ... < Bankrupt`).
///
/// ```
/// use portfolio_margin::HealthStatus;
/// assert!(HealthStatus::Healthy < HealthStatus::Liquidation);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HealthStatus {
    /// Health factor at least the warning threshold.
    Healthy,
    /// Below the warning threshold: margin call.
    Warning,
    /// Below the reduce-only threshold: only risk-reducing orders accepted.
    ReduceOnly,
    /// Below the liquidation threshold: positions are liquidated.
    Liquidation,
    /// Equity is zero or negative: losses exceed the account's collateral.
    Bankrupt,
}

/// Health-factor thresholds of the [`HealthStatus`] bands.
///
/// A factor exactly at a threshold belongs to the better band:
/// `Healthy` if `f >= warning_below`; `Warning` if `reduce_only_below <= f
/// < warning_below`; `ReduceOnly` if `liquidation_below <= f <
/// reduce_only_below`; `Liquidation` if `f < liquidation_below`;
/// `Bankrupt` whenever equity `<= 0`. Defaults:
/// [`DEFAULT_WARNING_BELOW`] (1.25), [`DEFAULT_REDUCE_ONLY_BELOW`] (1.10),
/// [`DEFAULT_LIQUIDATION_BELOW`] (1.00).
///
/// ```
/// use portfolio_margin::{HealthBands, HealthFactor, HealthStatus};
/// let bands = HealthBands::default();
/// assert_eq!(bands.status(100.0, HealthFactor::Ratio(1.25)), HealthStatus::Healthy);
/// assert_eq!(bands.status(100.0, HealthFactor::Ratio(1.0)), HealthStatus::ReduceOnly);
/// assert_eq!(bands.status(100.0, HealthFactor::Ratio(0.99)), HealthStatus::Liquidation);
/// assert_eq!(bands.status(0.0, HealthFactor::Ratio(0.0)), HealthStatus::Bankrupt);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::HealthBands", into = "raw::HealthBands")
)]
pub struct HealthBands {
    warning_below: f64,
    reduce_only_below: f64,
    liquidation_below: f64,
}

impl Default for HealthBands {
    fn default() -> Self {
        HealthBands {
            warning_below: DEFAULT_WARNING_BELOW,
            reduce_only_below: DEFAULT_REDUCE_ONLY_BELOW,
            liquidation_below: DEFAULT_LIQUIDATION_BELOW,
        }
    }
}

impl HealthBands {
    /// Bands from their thresholds (health factors, dimensionless).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless every threshold is finite and `> 0`
    /// and `liquidation_below <= reduce_only_below <= warning_below` (equal
    /// thresholds empty a band).
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::HealthBands;
    /// assert!(HealthBands::new(1.5, 1.2, 1.0).is_ok());
    /// assert!(HealthBands::new(1.0, 1.2, 1.5).is_err());
    /// ```
    pub fn new(warning_below: f64, reduce_only_below: f64, liquidation_below: f64) -> Result<Self> {
        positive("warning threshold", warning_below)?;
        positive("reduce-only threshold", reduce_only_below)?;
        positive("liquidation threshold", liquidation_below)?;
        if reduce_only_below > warning_below {
            return Err(Error::InvalidInput {
                what: "reduce-only threshold",
                rule: "<= the warning threshold",
                value: reduce_only_below,
            });
        }
        if liquidation_below > reduce_only_below {
            return Err(Error::InvalidInput {
                what: "liquidation threshold",
                rule: "<= the reduce-only threshold",
                value: liquidation_below,
            });
        }
        Ok(HealthBands {
            warning_below,
            reduce_only_below,
            liquidation_below,
        })
    }

    /// Health factor below which the account is in warning.
    pub fn warning_below(&self) -> f64 {
        self.warning_below
    }
    /// Health factor below which the account is reduce-only.
    pub fn reduce_only_below(&self) -> f64 {
        self.reduce_only_below
    }
    /// Health factor below which the account is liquidated.
    pub fn liquidation_below(&self) -> f64 {
        self.liquidation_below
    }

    /// The status of an account with `equity` (quote currency) and health
    /// factor `factor`.
    pub fn status(&self, equity: f64, factor: HealthFactor) -> HealthStatus {
        if equity.is_nan() || equity <= 0.0 {
            return HealthStatus::Bankrupt;
        }
        if factor.meets(self.warning_below) {
            HealthStatus::Healthy
        } else if factor.meets(self.reduce_only_below) {
            HealthStatus::Warning
        } else if factor.meets(self.liquidation_below) {
            HealthStatus::ReduceOnly
        } else {
            HealthStatus::Liquidation
        }
    }

    /// Health factor and status of `equity` (quote currency) against
    /// `margin`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `equity` is not finite.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{HealthBands, HealthFactor, HealthStatus, MarginRequirement};
    /// let s = HealthBands::default().state(1_150.0, MarginRequirement::new(2_000.0, 0.5)?)?;
    /// assert_eq!(s.health_factor, HealthFactor::Ratio(1.15));
    /// assert_eq!(s.status, HealthStatus::Warning);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn state(&self, equity: f64, margin: MarginRequirement) -> Result<HealthState> {
        let health_factor = HealthFactor::new(equity, margin.maintenance())?;
        Ok(HealthState {
            margin,
            health_factor,
            status: self.status(equity, health_factor),
        })
    }
}

/// Margin, health factor and status at one point (an account, or a step of
/// a liquidation plan), built by [`HealthBands::state`].
///
/// ```
/// use portfolio_margin::{HealthBands, HealthStatus, MarginRequirement};
/// let s = HealthBands::default().state(-1.0, MarginRequirement::new(10.0, 0.5)?)?;
/// assert_eq!(s.status, HealthStatus::Bankrupt);
/// assert_eq!(s.margin.maintenance(), 5.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct HealthState {
    /// Initial and maintenance margin, quote currency.
    pub margin: MarginRequirement,
    /// Equity over maintenance margin.
    pub health_factor: HealthFactor,
    /// The band the factor falls in.
    pub status: HealthStatus,
}

/// The deposit that brings the health factor to `target`:
/// `max(0, target x maintenance - equity)`, quote currency, assuming an
/// asset deposited at no haircut.
///
/// # Errors
/// [`Error::InvalidInput`] for a non-finite `equity`, a negative or
/// non-finite `maintenance`, or a `target` that is not finite and `> 0`;
/// [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::deposit_to_reach;
/// // Equity 900 against maintenance 1000: 350 restores a factor of 1.25.
/// assert_eq!(deposit_to_reach(900.0, 1_000.0, 1.25)?, 350.0);
/// assert_eq!(deposit_to_reach(2_000.0, 1_000.0, 1.25)?, 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn deposit_to_reach(equity: f64, maintenance: f64, target: f64) -> Result<f64> {
    let equity = finite("equity", equity)?;
    let maintenance = non_negative("maintenance margin", maintenance)?;
    let target = positive("target health factor", target)?;
    let required = finite_result("target equity", target * maintenance)?;
    finite_result("deposit to restore health", (required - equity).max(0.0))
}

/// An account's health: collateral, equity, margin, health factor and
/// status, the deposit that makes it healthy and the amount it may withdraw.
///
/// Amounts are in the quote currency unless named `_settlement` (units of
/// the policy's settlement asset, converted at
/// `collateral.settlement_price`). Built by [`account_health`] (see its
/// example).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct AccountHealth {
    /// The balances' valuation.
    pub collateral: CollateralValuation,
    /// Mark-to-market of the positions ([`positions_value`]).
    pub positions_value: f64,
    /// `collateral.adjusted_value + positions_value`.
    pub equity: f64,
    /// `equity` in the settlement currency.
    pub equity_settlement: f64,
    /// The margin the account was assessed against.
    pub margin: MarginRequirement,
    /// `equity / margin.maintenance()`.
    pub health_factor: HealthFactor,
    /// The band of the health factor.
    pub status: HealthStatus,
    /// Deposit that brings the factor to the bands' warning threshold (back
    /// to [`HealthStatus::Healthy`]): `max(0, warning_below x maintenance -
    /// equity)`.
    pub deposit_to_healthy: f64,
    /// `deposit_to_healthy` in the settlement currency.
    pub deposit_to_healthy_settlement: f64,
    /// Adjusted value that may be withdrawn while keeping initial margin:
    /// `max(0, equity - margin.initial())` (withdrawing an asset with
    /// haircut `h` frees `1 / (1 - h)` of market value per unit of adjusted
    /// value).
    pub withdrawable: f64,
    /// `withdrawable` in the settlement currency.
    pub withdrawable_settlement: f64,
}

impl AccountHealth {
    /// The deposit (quote currency, at no haircut) that brings the health
    /// factor to `target`; see [`deposit_to_reach`].
    ///
    /// # Errors
    /// As [`deposit_to_reach`].
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let market = MarketSnapshot::builder(Timestamp::from_millis(0)).build()?;
    /// let usdc = AssetId::new("USDC")?;
    /// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
    /// let instruments = InstrumentSet::new();
    /// let book = Portfolio::new(AccountId::new("a"), vec![], &instruments)?;
    /// let balances = [Balance::new(usdc, 900.0)];
    /// let account = Account { balances: &balances, portfolio: &book, instruments: &instruments, market: &market, policy: &policy };
    /// let health = account_health(&account, MarginRequirement::new(2_000.0, 0.5)?, &HealthBands::default())?;
    /// assert_eq!(health.deposit_to_healthy, 350.0); // to 1.25 x 1000
    /// assert_eq!(health.deposit_to_reach(1.0)?, 100.0);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn deposit_to_reach(&self, target: f64) -> Result<f64> {
        deposit_to_reach(self.equity, self.margin.maintenance(), target)
    }
}

/// Assesses an account against a margin requirement.
///
/// `margin` comes from any methodology (or a venue); the health factor is
/// `equity / margin.maintenance()` (see [`HealthFactor`]) and the status its
/// band in `bands`.
///
/// # Errors
/// As [`value_collateral`] and [`positions_value`];
/// [`Error::NonFiniteResult`] if a total overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc_u = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(btc_u.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let mut instruments = InstrumentSet::new();
/// instruments.insert(InstrumentId::new("BTC-PERP")?, Instrument::Perpetual(PerpetualContract::new(btc_u)))?;
/// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(InstrumentId::new("BTC-PERP")?, 1.0)], &instruments)?;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
/// let balances = [Balance::new(usdc, 9_000.0)];
/// let account = Account { balances: &balances, portfolio: &book, instruments: &instruments, market: &market, policy: &policy };
/// // 10% initial, 5% maintenance on 100k notional.
/// let health = account_health(&account, MarginRequirement::new(10_000.0, 0.5)?, &HealthBands::default())?;
/// assert_eq!(health.health_factor, HealthFactor::Ratio(1.8));
/// assert_eq!(health.status, HealthStatus::Healthy);
/// assert_eq!(health.withdrawable, 0.0);
/// assert_eq!(health.deposit_to_reach(2.0)?, 1_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn account_health(
    account: &Account<'_>,
    margin: MarginRequirement,
    bands: &HealthBands,
) -> Result<AccountHealth> {
    let (collateral, positions_value) = account.valuation()?;
    health_from_valuation(collateral, positions_value, margin, bands)
}

/// [`account_health`] from its parts: the balances' valuation
/// ([`value_collateral`]) and the positions' value computed elsewhere, as
/// an exchange does once per snapshot for every account:
/// [`crate::GridMarginEngine::positions_value`] values an account from
/// marks computed once for every listed instrument, in O(positions)
/// multiply-adds instead of pricing each option again. `account_health`
/// is this function on [`positions_value`]'s result.
///
/// # Errors
/// [`Error::InvalidInput`] for a non-finite `positions_value`; otherwise as
/// [`account_health`].
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0)).build()?;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
/// let collateral = value_collateral(&[Balance::new(usdc, 9_000.0)], &market, &policy)?;
/// // Short options marked at -1,000: equity 8,000 against 4,000 maintenance.
/// let margin = MarginRequirement::new(8_000.0, 0.5)?;
/// let health = health_from_valuation(collateral, -1_000.0, margin, &HealthBands::default())?;
/// assert_eq!(health.equity, 8_000.0);
/// assert_eq!(health.health_factor, HealthFactor::Ratio(2.0));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn health_from_valuation(
    collateral: CollateralValuation,
    positions_value: f64,
    margin: MarginRequirement,
    bands: &HealthBands,
) -> Result<AccountHealth> {
    let positions_value = crate::error::finite("positions value", positions_value)?;
    let equity = equity_of(&collateral, positions_value)?;
    let state = bands.state(equity, margin)?;
    let price = collateral.settlement_price;
    let settle = |what, quote: f64| finite_result(what, quote / price);
    let deposit_to_healthy = deposit_to_reach(equity, margin.maintenance(), bands.warning_below)?;
    let withdrawable = finite_result("withdrawable", (equity - margin.initial()).max(0.0))?;
    Ok(AccountHealth {
        equity_settlement: settle("equity in settlement", equity)?,
        deposit_to_healthy_settlement: settle("deposit in settlement", deposit_to_healthy)?,
        withdrawable_settlement: settle("withdrawable in settlement", withdrawable)?,
        collateral,
        positions_value,
        equity,
        margin,
        health_factor: state.health_factor,
        status: state.status,
        deposit_to_healthy,
        withdrawable,
    })
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn warning() -> f64 {
        DEFAULT_WARNING_BELOW
    }
    fn reduce_only() -> f64 {
        DEFAULT_REDUCE_ONLY_BELOW
    }
    fn liquidation() -> f64 {
        DEFAULT_LIQUIDATION_BELOW
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HealthBands {
        #[serde(default = "warning")]
        warning_below: f64,
        #[serde(default = "reduce_only")]
        reduce_only_below: f64,
        #[serde(default = "liquidation")]
        liquidation_below: f64,
    }

    impl TryFrom<HealthBands> for super::HealthBands {
        type Error = Error;
        fn try_from(r: HealthBands) -> Result<Self> {
            super::HealthBands::new(r.warning_below, r.reduce_only_below, r.liquidation_below)
        }
    }

    impl From<super::HealthBands> for HealthBands {
        fn from(b: super::HealthBands) -> Self {
            HealthBands {
                warning_below: b.warning_below,
                reduce_only_below: b.reduce_only_below,
                liquidation_below: b.liquidation_below,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bands_are_valid() {
        let d = HealthBands::default();
        assert_eq!(
            HealthBands::new(d.warning_below, d.reduce_only_below, d.liquidation_below).unwrap(),
            d
        );
    }

    #[test]
    fn factor_is_finite_at_extremes() {
        assert_eq!(
            HealthFactor::new(1e300, 1e-300).unwrap(),
            HealthFactor::Unbounded
        );
        assert_eq!(
            HealthFactor::new(-1e300, 1e-300).unwrap(),
            HealthFactor::Ratio(0.0)
        );
        assert_eq!(
            HealthFactor::new(0.0, 0.0).unwrap(),
            HealthFactor::Ratio(0.0)
        );
        assert!(HealthFactor::new(f64::NAN, 1.0).is_err());
        assert!(HealthFactor::new(1.0, -1.0).is_err());
    }
}
