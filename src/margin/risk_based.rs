//! Risk-based margin: Expected Shortfall over historical or Monte Carlo
//! scenarios, scaled to the margin period of risk, with the
//! anti-procyclicality (APC) tools of EMIR. The calculation and its
//! regulatory sources are documented on [`es_margin`].

use crate::error::{Error, Result, non_negative};
use crate::margin::MarginRequirement;
use crate::measure::{
    QuantileRule, attribute_risk, expected_shortfall, finite_result, tail_size, value_at_risk,
};
use crate::pnl::{RiskArrays, portfolio_pnl, position_pnl};
use crate::portfolio::Portfolio;
use crate::units::{Confidence, DayBasis};
use crate::volatility::{EwmaEstimate, GarchEstimate};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Minimum liquidation period for financial instruments other than OTC
/// derivatives (exchange-traded derivatives), in business days: RTS 153/2013
/// Art. 26(1)(b).
pub const EMIR_MIN_MPOR_DAYS_EXCHANGE_TRADED: u32 = 2;
/// Minimum liquidation period for OTC derivatives, in business days:
/// RTS 153/2013 Art. 26(1)(a).
pub const EMIR_MIN_MPOR_DAYS_OTC: u32 = 5;
/// Minimum confidence for financial instruments other than OTC derivatives:
/// RTS 153/2013 Art. 24(1)(b).
pub const EMIR_MIN_CONFIDENCE_EXCHANGE_TRADED: f64 = 0.99;
/// Minimum confidence for OTC derivatives: RTS 153/2013 Art. 24(1)(a).
pub const EMIR_MIN_CONFIDENCE_OTC: f64 = 0.995;
/// Smallest APC buffer, as a fraction of the calculated margin (0.25 is
/// 25%): RTS 153/2013 Art. 28(1)(a).
pub const EMIR_MIN_APC_BUFFER: f64 = 0.25;
/// Smallest weight of stressed observations (0.25 is 25%): RTS 153/2013
/// Art. 28(1)(b).
pub const EMIR_MIN_STRESSED_WEIGHT: f64 = 0.25;
/// Length of the floor's lookback, in years: RTS 153/2013 Art. 28(1)(c).
pub const EMIR_FLOOR_LOOKBACK_YEARS: u32 = 10;

/// Default confidence of [`EsMarginPolicy::default`].
const DEFAULT_CONFIDENCE: f64 = 0.99;
/// Default maintenance fraction of [`EsMarginPolicy::default`].
const DEFAULT_MAINTENANCE_FRACTION: f64 = 1.0;

/// How the scenario P&L relates to the margin period of risk (MPOR).
///
/// # Which to use
/// Scenarios built at the MPOR horizon (historical returns over
/// `mpor_days`-day overlapping windows, see
/// [`HistoricalConfig::new`](crate::HistoricalConfig::new), or Monte Carlo
/// shocks over the MPOR) are the better choice: an option book's P&L is
/// not linear in the shock, so scaling a 1-day P&L by `sqrt(days)` misses
/// the convexity of the larger move (short gamma is under-margined), and it
/// ignores autocorrelation of returns. The square-root rule is exact only
/// for P&L linear in i.i.d. zero-mean returns.
///
/// ```
/// use portfolio_margin::HorizonScaling;
/// assert_eq!(HorizonScaling::default(), HorizonScaling::SquareRootOfTime);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HorizonScaling {
    /// The P&L is over one day; ES and VaR are multiplied by
    /// `sqrt(mpor_days)`. The default, because it is the conservative
    /// mistake: 2-day scenarios scaled again over-margin by `sqrt(2)`,
    /// whereas 1-day scenarios taken as 2-day ones would under-margin.
    #[default]
    SquareRootOfTime,
    /// The P&L is already over the MPOR; no scaling (factor 1).
    ScenariosAtHorizon,
}

/// The EMIR product class whose regulatory minimums apply
/// (see [`EsMarginPolicy::check_emir_minimums`]).
///
/// ```
/// use portfolio_margin::EmirProductClass;
/// assert_ne!(EmirProductClass::ExchangeTraded, EmirProductClass::OverTheCounter);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum EmirProductClass {
    /// Financial instruments other than OTC derivatives (listed futures
    /// and options): 99% confidence, 2-day liquidation period.
    ExchangeTraded,
    /// OTC derivatives: 99.5% confidence, 5-day liquidation period.
    OverTheCounter,
}

/// Which part of the margin a [`SpeedLimit`] may hold back.
///
/// ```
/// use portfolio_margin::SpeedLimitScope;
/// assert_eq!(SpeedLimitScope::default(), SpeedLimitScope::AntiProcyclicalComponent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum SpeedLimitScope {
    /// Only the anti-procyclical add-ons (buffer and stressed weight) are
    /// phased in: the margin never falls below the calculated margin `C`
    /// nor, when configured, the 10-year floor `F`. A jump in `C` itself
    /// passes through in full. This keeps the EMIR Art. 41 coverage (the
    /// default).
    #[default]
    AntiProcyclicalComponent,
    /// The whole margin is capped. When the cap binds below
    /// `max(C, F)` the account is under-collateralised relative to the
    /// model; the gap is reported in
    /// [`SpeedLimitEffect::under_collateralisation`]. Not compatible with
    /// EMIR; for venues outside it that accept that risk.
    Total,
}

/// A cap on how fast the initial margin may rise from the previous margin:
/// `margin <= (1 + max_increase) x previous`.
///
/// Speed limits are not one of the RTS 153/2013 Art. 28 tools; they smooth
/// margin calls but, by construction, hold margin below the risk the model
/// measures while they bind. Hence the default
/// [`SpeedLimitScope::AntiProcyclicalComponent`]: the cap only delays the
/// APC add-ons and never takes margin below the calculated margin (EMIR
/// Art. 41 coverage) or the 10-year floor when that tool is used.
///
/// The limit is per margin run; run it once a day against the previous
/// day's requirement of the **same positions**. New trades should not be
/// phased in: compare against a previous margin recomputed for the current
/// positions, or pass no previous margin. Decreases are never limited. A
/// previous margin of 0 (a new account) applies no limit.
///
/// ```
/// use portfolio_margin::{SpeedLimit, SpeedLimitScope};
/// let limit = SpeedLimit::new(0.10, SpeedLimitScope::AntiProcyclicalComponent)?; // +10% a day
/// assert_eq!(limit.max_increase(), 0.10);
/// assert!(SpeedLimit::new(0.0, SpeedLimitScope::Total).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::SpeedLimit", into = "raw::SpeedLimit")
)]
pub struct SpeedLimit {
    max_increase: f64,
    scope: SpeedLimitScope,
}

impl SpeedLimit {
    /// A limit of `max_increase` (fraction of the previous margin per run:
    /// `0.10` allows +10%) over `scope`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `max_increase` is finite and `> 0`.
    pub fn new(max_increase: f64, scope: SpeedLimitScope) -> Result<Self> {
        crate::error::positive("speed limit max increase", max_increase)?;
        Ok(SpeedLimit {
            max_increase,
            scope,
        })
    }

    /// Largest allowed rise per run, as a fraction of the previous margin.
    pub fn max_increase(&self) -> f64 {
        self.max_increase
    }

    /// Which part of the margin the cap may hold back.
    pub fn scope(&self) -> SpeedLimitScope {
        self.scope
    }
}

/// RTS 153/2013 Art. 28(1)(c): the margin is never below the margin
/// computed from a long (10-year) lookback.
///
/// The long-lookback P&L is supplied per account
/// ([`EsMarginInputs::with_long_lookback_pnl`]): the book revalued over
/// unfiltered scenarios covering the last 10 years, at the same horizon as
/// the current scenarios. `min_scenarios` guards against a short history
/// being passed by mistake.
///
/// ```
/// use portfolio_margin::{DayBasis, LongLookbackFloor};
/// assert_eq!(LongLookbackFloor::ten_years(DayBasis::Trading252).min_scenarios(), 2520);
/// assert_eq!(LongLookbackFloor::ten_years(DayBasis::Calendar365).min_scenarios(), 3650);
/// assert!(LongLookbackFloor::new(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::LongLookbackFloor", into = "raw::LongLookbackFloor")
)]
pub struct LongLookbackFloor {
    min_scenarios: usize,
}

impl LongLookbackFloor {
    /// A floor whose P&L vector must hold at least `min_scenarios`
    /// scenarios.
    ///
    /// # Errors
    /// [`Error::TooFew`] if `min_scenarios` is 0.
    pub fn new(min_scenarios: usize) -> Result<Self> {
        if min_scenarios == 0 {
            return Err(Error::TooFew {
                what: "long-lookback floor scenarios",
                min: 1,
                got: 0,
            });
        }
        Ok(LongLookbackFloor { min_scenarios })
    }

    /// Ten years of daily scenarios on `basis`: `10 x 252 = 2520` trading
    /// days or `10 x 365 = 3650` calendar days (crypto venues). With
    /// overlapping `h`-day windows, build them from `min_scenarios + h`
    /// prices.
    pub fn ten_years(basis: DayBasis) -> Self {
        let days = match basis {
            DayBasis::Trading252 => 252,
            DayBasis::Calendar365 => 365,
        };
        LongLookbackFloor {
            min_scenarios: EMIR_FLOOR_LOOKBACK_YEARS as usize * days,
        }
    }

    /// Fewest scenarios the long-lookback P&L must have.
    pub fn min_scenarios(&self) -> usize {
        self.min_scenarios
    }
}

/// The anti-procyclicality tools of RTS 153/2013 Art. 28(1), any
/// combination, plus an optional [`SpeedLimit`].
///
/// * **(a) buffer** `f >= 0.25`: margin `+ f (1 - r) C`, with `C` the
///   calculated margin and `r` the fraction released by the CCP
///   ([`EsMarginInputs::with_buffer_release`]) in periods where calculated
///   margins rise significantly.
/// * **(b) stressed weight** `w` in `[0.25, 1]`: "at least 25% weight to
///   stressed observations". Applied, as ESMA's guidelines describe it, as
///   a weighted average of margins: `(1 - w) C + w S`, with `S` the margin
///   of the same book over the stressed-period observations (same
///   confidence, rule and MPOR). When the current period is more stressed
///   than the stressed period (`S < C`) the average would fall below the
///   calculated margin; the margin is then kept at `C` (the Art. 24
///   coverage is a minimum and Art. 28(1) forbids APC tools that weaken the
///   CCP), and the stressed period should be reviewed. So the add-on is
///   `w max(0, S - C)`.
/// * **(c) long-lookback floor**: margin `>= F`, the margin over a 10-year
///   lookback ([`LongLookbackFloor`]).
///
/// EMIR requires at least one of (a), (b), (c): see
/// [`EsMarginPolicy::check_emir_minimums`]. The default is the 25% buffer,
/// the one tool that needs no extra data.
///
/// ```
/// use portfolio_margin::*;
/// let apc = AntiProcyclicality::none()
///     .with_buffer(0.25)?
///     .with_stressed_weight(0.25)?
///     .with_long_lookback_floor(LongLookbackFloor::ten_years(DayBasis::Trading252))
///     .with_speed_limit(SpeedLimit::new(0.2, SpeedLimitScope::AntiProcyclicalComponent)?);
/// assert_eq!(apc.emir_tools(), 3);
/// assert_eq!(AntiProcyclicality::default().buffer(), Some(0.25));
/// assert!(AntiProcyclicality::none().with_buffer(0.2).is_err()); // below 25%
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::AntiProcyclicality", into = "raw::AntiProcyclicality")
)]
pub struct AntiProcyclicality {
    buffer: Option<f64>,
    stressed_weight: Option<f64>,
    long_lookback_floor: Option<LongLookbackFloor>,
    speed_limit: Option<SpeedLimit>,
}

impl Default for AntiProcyclicality {
    /// A 25% buffer (RTS 153/2013 Art. 28(1)(a)), no speed limit.
    fn default() -> Self {
        AntiProcyclicality {
            buffer: Some(EMIR_MIN_APC_BUFFER),
            ..AntiProcyclicality::none()
        }
    }
}

impl AntiProcyclicality {
    /// No tool at all (not EMIR-compliant on its own).
    pub const fn none() -> Self {
        AntiProcyclicality {
            buffer: None,
            stressed_weight: None,
            long_lookback_floor: None,
            speed_limit: None,
        }
    }

    /// Tool (a): a buffer of `fraction` of the calculated margin (`0.25` is
    /// 25%).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `fraction` is finite and
    /// `>= 0.25` ([`EMIR_MIN_APC_BUFFER`]).
    pub fn with_buffer(mut self, fraction: f64) -> Result<Self> {
        if !(fraction.is_finite() && fraction >= EMIR_MIN_APC_BUFFER) {
            return Err(Error::InvalidInput {
                what: "APC buffer fraction",
                rule: "finite and >= 0.25 (RTS 153/2013 Art. 28(1)(a))",
                value: fraction,
            });
        }
        self.buffer = Some(fraction);
        Ok(self)
    }

    /// Tool (b): weight `weight` of the stressed-period margin.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `weight` is in `[0.25, 1]`
    /// ([`EMIR_MIN_STRESSED_WEIGHT`]).
    pub fn with_stressed_weight(mut self, weight: f64) -> Result<Self> {
        if !(EMIR_MIN_STRESSED_WEIGHT..=1.0).contains(&weight) {
            return Err(Error::InvalidInput {
                what: "APC stressed-observation weight",
                rule: "in [0.25, 1] (RTS 153/2013 Art. 28(1)(b))",
                value: weight,
            });
        }
        self.stressed_weight = Some(weight);
        Ok(self)
    }

    /// Tool (c): the long-lookback floor.
    pub fn with_long_lookback_floor(mut self, floor: LongLookbackFloor) -> Self {
        self.long_lookback_floor = Some(floor);
        self
    }

    /// A speed limit on rises of the margin.
    pub fn with_speed_limit(mut self, limit: SpeedLimit) -> Self {
        self.speed_limit = Some(limit);
        self
    }

    /// Buffer fraction of tool (a), if used.
    pub fn buffer(&self) -> Option<f64> {
        self.buffer
    }

    /// Stressed weight of tool (b), if used.
    pub fn stressed_weight(&self) -> Option<f64> {
        self.stressed_weight
    }

    /// Tool (c), if used.
    pub fn long_lookback_floor(&self) -> Option<LongLookbackFloor> {
        self.long_lookback_floor
    }

    /// The speed limit, if any.
    pub fn speed_limit(&self) -> Option<SpeedLimit> {
        self.speed_limit
    }

    /// How many of the Art. 28(1) tools (a), (b), (c) are used (0 to 3;
    /// the speed limit does not count).
    pub fn emir_tools(&self) -> usize {
        usize::from(self.buffer.is_some())
            + usize::from(self.stressed_weight.is_some())
            + usize::from(self.long_lookback_floor.is_some())
    }
}

/// Settings of the ES margin methodology.
///
/// # Defaults ([`EsMarginPolicy::default`])
///
/// | setting | default | source / reason |
/// |---|---|---|
/// | confidence | 0.99 | RTS 153/2013 Art. 24(1)(b): 99% for instruments other than OTC derivatives. ES at `c` is never below VaR at `c`, so the 99% coverage holds by construction (use 0.995 for OTC derivatives, Art. 24(1)(a)). |
/// | quantile rule | [`QuantileRule::Empirical`] | whole tail scenarios: reproducible, and Euler-allocable to positions |
/// | MPOR | 2 days | RTS 153/2013 Art. 26(1)(b) (5 days for OTC, Art. 26(1)(a)) |
/// | horizon scaling | [`HorizonScaling::SquareRootOfTime`] | the conservative choice if the P&L horizon is unknown |
/// | maintenance fraction | 1.0 | EMIR knows a single initial margin; venues with a liquidation ladder set it below 1 |
/// | anti-procyclicality | 25% buffer | RTS 153/2013 Art. 28(1)(a); needs no extra data |
///
/// ```
/// use portfolio_margin::*;
/// let policy = EsMarginPolicy::default();
/// assert_eq!(policy.confidence().level(), 0.99);
/// assert_eq!(policy.mpor_days(), 2);
/// assert!((policy.horizon_factor() - 2f64.sqrt()).abs() < 1e-15);
/// policy.check_emir_minimums(EmirProductClass::ExchangeTraded)?;
/// assert!(policy.check_emir_minimums(EmirProductClass::OverTheCounter).is_err());
///
/// let otc = EsMarginPolicy::new(Confidence::new(0.995)?, 5)?
///     .with_horizon_scaling(HorizonScaling::ScenariosAtHorizon)
///     .with_maintenance_fraction(0.8)?;
/// otc.check_emir_minimums(EmirProductClass::OverTheCounter)?;
/// assert_eq!(otc.horizon_factor(), 1.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::EsMarginPolicy", into = "raw::EsMarginPolicy")
)]
pub struct EsMarginPolicy {
    confidence: Confidence,
    quantile_rule: QuantileRule,
    mpor_days: u32,
    horizon_scaling: HorizonScaling,
    maintenance_fraction: f64,
    anti_procyclicality: AntiProcyclicality,
}

impl Default for EsMarginPolicy {
    fn default() -> Self {
        EsMarginPolicy {
            confidence: default_confidence(),
            quantile_rule: QuantileRule::Empirical,
            mpor_days: EMIR_MIN_MPOR_DAYS_EXCHANGE_TRADED,
            horizon_scaling: HorizonScaling::SquareRootOfTime,
            maintenance_fraction: DEFAULT_MAINTENANCE_FRACTION,
            anti_procyclicality: AntiProcyclicality::default(),
        }
    }
}

fn default_confidence() -> Confidence {
    // 0.99 lies in (0, 1); a unit test checks it against Confidence::new.
    Confidence::from_constant(DEFAULT_CONFIDENCE)
}

impl EsMarginPolicy {
    /// A policy at `confidence` over an MPOR of `mpor_days` business days;
    /// the other settings at their defaults.
    ///
    /// # Errors
    /// [`Error::TooFew`] if `mpor_days` is 0.
    pub fn new(confidence: Confidence, mpor_days: u32) -> Result<Self> {
        if mpor_days == 0 {
            return Err(Error::TooFew {
                what: "margin period of risk (days)",
                min: 1,
                got: 0,
            });
        }
        Ok(EsMarginPolicy {
            confidence,
            mpor_days,
            ..EsMarginPolicy::default()
        })
    }

    /// Sets the quantile rule.
    pub fn with_quantile_rule(mut self, rule: QuantileRule) -> Self {
        self.quantile_rule = rule;
        self
    }

    /// Sets how the P&L horizon relates to the MPOR.
    pub fn with_horizon_scaling(mut self, scaling: HorizonScaling) -> Self {
        self.horizon_scaling = scaling;
        self
    }

    /// Sets maintenance margin as a fraction of initial margin.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `fraction` is in `[0, 1]`.
    pub fn with_maintenance_fraction(mut self, fraction: f64) -> Result<Self> {
        // Same rule as MarginRequirement::new.
        MarginRequirement::new(0.0, fraction)?;
        self.maintenance_fraction = fraction;
        Ok(self)
    }

    /// Sets the anti-procyclicality tools.
    pub fn with_anti_procyclicality(mut self, apc: AntiProcyclicality) -> Self {
        self.anti_procyclicality = apc;
        self
    }

    /// Confidence of the ES and VaR.
    pub fn confidence(&self) -> Confidence {
        self.confidence
    }

    /// Quantile rule of the ES and VaR.
    pub fn quantile_rule(&self) -> QuantileRule {
        self.quantile_rule
    }

    /// Margin period of risk, business days.
    pub fn mpor_days(&self) -> u32 {
        self.mpor_days
    }

    /// How the P&L horizon relates to the MPOR.
    pub fn horizon_scaling(&self) -> HorizonScaling {
        self.horizon_scaling
    }

    /// Maintenance margin as a fraction of initial margin, in `[0, 1]`.
    pub fn maintenance_fraction(&self) -> f64 {
        self.maintenance_fraction
    }

    /// The anti-procyclicality tools.
    pub fn anti_procyclicality(&self) -> AntiProcyclicality {
        self.anti_procyclicality
    }

    /// The factor applied to the scenario ES and VaR: `sqrt(mpor_days)`
    /// under [`HorizonScaling::SquareRootOfTime`], 1 otherwise.
    pub fn horizon_factor(&self) -> f64 {
        match self.horizon_scaling {
            HorizonScaling::SquareRootOfTime => f64::from(self.mpor_days).sqrt(),
            HorizonScaling::ScenariosAtHorizon => 1.0,
        }
    }

    /// Checks the policy against the EMIR minimums for `class`: confidence
    /// (RTS 153/2013 Art. 24), MPOR (Art. 26) and at least one APC tool
    /// (Art. 28(1)). The lookback (Art. 25, at least 12 months) is a
    /// property of the scenario set and is not checked here.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first rule broken.
    pub fn check_emir_minimums(&self, class: EmirProductClass) -> Result<()> {
        let (min_confidence, min_days, confidence_rule, days_rule) = match class {
            EmirProductClass::ExchangeTraded => (
                EMIR_MIN_CONFIDENCE_EXCHANGE_TRADED,
                EMIR_MIN_MPOR_DAYS_EXCHANGE_TRADED,
                ">= 0.99 for exchange-traded derivatives (RTS 153/2013 Art. 24(1)(b))",
                ">= 2 business days for exchange-traded derivatives (RTS 153/2013 Art. 26(1)(b))",
            ),
            EmirProductClass::OverTheCounter => (
                EMIR_MIN_CONFIDENCE_OTC,
                EMIR_MIN_MPOR_DAYS_OTC,
                ">= 0.995 for OTC derivatives (RTS 153/2013 Art. 24(1)(a))",
                ">= 5 business days for OTC derivatives (RTS 153/2013 Art. 26(1)(a))",
            ),
        };
        if self.confidence.level() < min_confidence {
            return Err(Error::InvalidInput {
                what: "ES margin confidence",
                rule: confidence_rule,
                value: self.confidence.level(),
            });
        }
        if self.mpor_days < min_days {
            return Err(Error::InvalidInput {
                what: "margin period of risk (days)",
                rule: days_rule,
                value: f64::from(self.mpor_days),
            });
        }
        if self.anti_procyclicality.emir_tools() == 0 {
            return Err(Error::InvalidInput {
                what: "anti-procyclicality tools in use",
                rule: ">= 1 of buffer, stressed weight, 10-year floor (RTS 153/2013 Art. 28(1))",
                value: 0.0,
            });
        }
        Ok(())
    }
}

/// Per-account, per-run inputs of the anti-procyclicality tools: the
/// account's P&L over the stressed period and the 10-year lookback, the
/// previous margin, and how much of the buffer the CCP has released.
///
/// Inputs a policy does not use are ignored (a stressed P&L without tool
/// (b), a buffer release without tool (a), a previous margin without a
/// speed limit).
///
/// ```
/// use portfolio_margin::EsMarginInputs;
/// let stressed = [-30.0, 5.0];
/// let inputs = EsMarginInputs::new()
///     .with_stressed_pnl(&stressed)?
///     .with_previous_initial_margin(100.0)?
///     .with_buffer_release(0.5)?;
/// assert_eq!(inputs.previous_initial_margin(), Some(100.0));
/// assert!(EsMarginInputs::new().with_stressed_pnl(&[f64::NAN]).is_err());
/// assert!(EsMarginInputs::new().with_buffer_release(1.5).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EsMarginInputs<'a> {
    stressed_pnl: Option<&'a [f64]>,
    long_lookback_pnl: Option<&'a [f64]>,
    previous_initial_margin: Option<f64>,
    buffer_release: f64,
}

impl<'a> EsMarginInputs<'a> {
    /// No APC inputs: buffer held in full, no previous margin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's P&L per scenario of the stressed period (tool (b)),
    /// quote currency, positive = gain, at the same horizon as the current
    /// scenarios.
    ///
    /// # Errors
    /// [`Error::TooFew`] if empty; [`Error::InvalidElement`] at the first
    /// non-finite element.
    pub fn with_stressed_pnl(mut self, pnl: &'a [f64]) -> Result<Self> {
        self.stressed_pnl = Some(check_vector("stressed-period P&L", pnl)?);
        Ok(self)
    }

    /// The account's P&L per scenario of the 10-year lookback (tool (c)),
    /// quote currency, positive = gain, at the same horizon as the current
    /// scenarios.
    ///
    /// # Errors
    /// [`Error::TooFew`] if empty; [`Error::InvalidElement`] at the first
    /// non-finite element.
    pub fn with_long_lookback_pnl(mut self, pnl: &'a [f64]) -> Result<Self> {
        self.long_lookback_pnl = Some(check_vector("long-lookback P&L", pnl)?);
        Ok(self)
    }

    /// The previous run's initial margin of the same positions, quote
    /// currency (for the speed limit).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_previous_initial_margin(mut self, margin: f64) -> Result<Self> {
        self.previous_initial_margin = Some(non_negative("previous initial margin", margin)?);
        Ok(self)
    }

    /// Fraction of the buffer (tool (a)) released by the CCP, in `[0, 1]`:
    /// 0 holds the full buffer, 1 exhausts it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless in `[0, 1]`.
    pub fn with_buffer_release(mut self, fraction: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::InvalidInput {
                what: "APC buffer release fraction",
                rule: "in [0, 1]",
                value: fraction,
            });
        }
        self.buffer_release = fraction;
        Ok(self)
    }

    /// The stressed-period P&L, if given.
    pub fn stressed_pnl(&self) -> Option<&'a [f64]> {
        self.stressed_pnl
    }

    /// The long-lookback P&L, if given.
    pub fn long_lookback_pnl(&self) -> Option<&'a [f64]> {
        self.long_lookback_pnl
    }

    /// The previous initial margin, quote currency, if given.
    pub fn previous_initial_margin(&self) -> Option<f64> {
        self.previous_initial_margin
    }

    /// Fraction of the buffer released, in `[0, 1]`.
    pub fn buffer_release(&self) -> f64 {
        self.buffer_release
    }
}

fn check_vector<'a>(what: &'static str, values: &'a [f64]) -> Result<&'a [f64]> {
    if values.is_empty() {
        return Err(Error::TooFew {
            what,
            min: 1,
            got: 0,
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::InvalidElement {
            what,
            index,
            rule: "finite",
            value: values[index],
        }),
        None => Ok(values),
    }
}

/// Tool (b) as applied: the stressed-period margin and the add-on it
/// causes.
///
/// # Units
/// Quote currency, except `weight` (a fraction).
///
/// # Examples
/// See [`EsMargin`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct StressedEffect {
    /// ES of the stressed-period P&L at the MPOR (`h x ES`, not floored).
    pub stressed_expected_shortfall: f64,
    /// `S = max(0, stressed_expected_shortfall)`.
    pub stressed_margin: f64,
    /// Weight `w` of the stressed observations.
    pub weight: f64,
    /// The literal weighted average `(1 - w) C + w S`.
    pub weighted_margin: f64,
    /// What the tool adds to the margin: `w max(0, S - C)` (0 when the
    /// weighted average is below `C`).
    pub add_on: f64,
}

/// Tool (a) as applied.
///
/// # Units
/// `amount` in quote currency; the others are fractions.
///
/// # Examples
/// See [`EsMargin`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct BufferEffect {
    /// Buffer as a fraction of the calculated margin (e.g. 0.25).
    pub fraction: f64,
    /// Fraction of the buffer released, in `[0, 1]`.
    pub released: f64,
    /// Buffer held: `fraction x (1 - released) x C`.
    pub amount: f64,
}

/// Tool (c) as applied.
///
/// # Units
/// Quote currency.
///
/// # Examples
/// See [`EsMargin`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct FloorEffect {
    /// ES of the long-lookback P&L at the MPOR (`h x ES`, not floored).
    pub long_lookback_expected_shortfall: f64,
    /// `F = max(0, long_lookback_expected_shortfall)`.
    pub floor: f64,
    /// How much the floor raised the margin (0 when it does not bind).
    pub add_on: f64,
}

impl FloorEffect {
    /// Whether the floor raised the margin.
    pub fn binds(&self) -> bool {
        self.add_on > 0.0
    }
}

/// The speed limit as applied (only when a previous margin `> 0` was given).
///
/// # Units
/// Quote currency.
///
/// # Examples
/// See [`EsMargin`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct SpeedLimitEffect {
    /// The previous initial margin.
    pub previous_margin: f64,
    /// The cap `(1 + max_increase) x previous_margin`.
    pub cap: f64,
    /// The scope the cap applied to.
    pub scope: SpeedLimitScope,
    /// How much the limit took off the margin (`>= 0`; 0 for a decrease).
    pub reduction: f64,
    /// How far the final margin is below `max(C, F)`, the margin the model
    /// and the floor require; always 0 under
    /// [`SpeedLimitScope::AntiProcyclicalComponent`].
    pub under_collateralisation: f64,
}

/// An account's ES margin, itemised.
///
/// # Units
/// Quote currency; ES and VaR positive = loss; `horizon_factor` pure.
///
/// # Examples
/// Every tool at once, with numbers that can be checked by hand:
/// ```
/// use portfolio_margin::*;
/// let pnl: Vec<f64> = (1..=10).map(|i| -f64::from(i)).collect(); // losses 1..=10
/// let stressed: Vec<f64> = pnl.iter().map(|x| 10.0 * x).collect(); // losses 10..=100
/// let long: Vec<f64> = pnl.iter().map(|x| 3.0 * x).collect(); // losses 3..=30
/// let apc = AntiProcyclicality::none()
///     .with_buffer(0.25)?
///     .with_stressed_weight(0.25)?
///     .with_long_lookback_floor(LongLookbackFloor::new(10)?)
///     .with_speed_limit(SpeedLimit::new(0.25, SpeedLimitScope::AntiProcyclicalComponent)?);
/// let policy = EsMarginPolicy::new(Confidence::new(0.8)?, 4)?.with_anti_procyclicality(apc);
/// let inputs = EsMarginInputs::new()
///     .with_stressed_pnl(&stressed)?
///     .with_long_lookback_pnl(&long)?
///     .with_previous_initial_margin(50.0)?;
/// let m = es_margin(&pnl, &inputs, &policy)?;
/// // 80% of 10 scenarios: the 2 largest losses. VaR 9, ES 9.5; MPOR 4 days: x 2.
/// assert_eq!((m.value_at_risk, m.expected_shortfall), (9.0, 9.5));
/// assert_eq!(m.calculated_margin, 19.0);
/// // (b) stressed ES 95 x 2 = 190: add-on 0.25 x (190 - 19) = 42.75.
/// assert_eq!(m.stressed.map(|s| s.add_on), Some(42.75));
/// // (a) buffer 0.25 x 19 = 4.75.
/// assert_eq!(m.buffer.map(|b| b.amount), Some(4.75));
/// // (c) floor 28.5 x 2 = 57 does not bind under 19 + 42.75 + 4.75 = 66.5.
/// assert_eq!(m.floor.map(|f| f.binds()), Some(false));
/// assert_eq!(m.margin_before_speed_limit, 66.5);
/// // Speed limit: at most 50 x 1.25 = 62.5 (never below max(C, F) = 57).
/// assert_eq!(m.speed_limit.map(|s| s.reduction), Some(4.0));
/// assert_eq!(m.requirement.initial(), 62.5);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct EsMargin {
    /// Number of scenarios in the account's P&L.
    pub scenarios: usize,
    /// VaR of the scenario P&L at the policy's confidence and rule, at the
    /// scenarios' horizon (not scaled, not floored).
    pub value_at_risk: f64,
    /// ES of the scenario P&L, at the scenarios' horizon (not scaled, not
    /// floored).
    pub expected_shortfall: f64,
    /// The factor `h` taking the scenario horizon to the MPOR
    /// ([`EsMarginPolicy::horizon_factor`]).
    pub horizon_factor: f64,
    /// `h x value_at_risk`.
    pub mpor_value_at_risk: f64,
    /// `h x expected_shortfall`.
    pub mpor_expected_shortfall: f64,
    /// `C = max(0, mpor_expected_shortfall)`: the calculated margin before
    /// anti-procyclicality. A book that gains in every tail scenario has a
    /// negative ES; its margin is 0, never a credit.
    pub calculated_margin: f64,
    /// Tool (b), if the policy uses it.
    pub stressed: Option<StressedEffect>,
    /// Tool (a), if the policy uses it.
    pub buffer: Option<BufferEffect>,
    /// Tool (c), if the policy uses it.
    pub floor: Option<FloorEffect>,
    /// `C` plus the stressed add-on and buffer, raised to the floor.
    pub margin_before_speed_limit: f64,
    /// The speed limit, if the policy has one and a previous margin `> 0`
    /// was given.
    pub speed_limit: Option<SpeedLimitEffect>,
    /// The final requirement: initial = the margin after every tool,
    /// maintenance = the policy's fraction of it.
    pub requirement: MarginRequirement,
    /// Euler component ES of each position at the MPOR (`h x` component
    /// ES), in position order; they sum to `mpor_expected_shortfall` up to
    /// rounding. Empty when no positions were given. They allocate the
    /// calculated ES, not the APC add-ons.
    pub position_contributions: Vec<f64>,
}

/// The ES margin of one account from its scenario P&L.
///
/// `pnl` is the account's P&L per scenario, quote currency, positive =
/// gain (e.g. [`portfolio_pnl`](crate::portfolio_pnl) over historical or
/// Monte Carlo scenarios). The calculation is described in the
/// sections below and itemised in the returned [`EsMargin`].
///
/// # The calculation
///
/// For one account with scenario P&L `P(s)` (quote currency, positive =
/// gain), confidence `c` and quantile rule `R` of an [`EsMarginPolicy`]:
///
/// ```text
/// ES      = expected_shortfall(P, c, R)            raw, at the scenarios' horizon
/// h       = sqrt(MPOR days) | 1                    HorizonScaling
/// C       = max(0, h ES)                           calculated margin (RTS 153/2013 Art. 24-26)
/// (b)  S  = max(0, h ES(stressed P))               stressed-period margin
///      +  w max(0, S - C)                          stressed add-on, weight w >= 25%
/// (a)  +  f (1 - r) C                              buffer f >= 25% of C, released fraction r
/// (c)  M  = max(M, F),  F = max(0, h ES(10y P))    long-lookback floor
/// speed limit: M = min(M, (1 + g) previous)        never below max(C, F) unless scope = Total
/// initial = M,  maintenance = fraction x M
/// ```
///
/// Every intermediate is reported in an [`EsMargin`], together with the VaR
/// at the same confidence and, when positions are given, each position's
/// Euler contribution to the ES.
///
/// # Regulatory sources
///
/// * EMIR (Regulation (EU) No 648/2012) Art. 41: margins sufficient to cover
///   the potential exposure until the positions are liquidated, over an
///   appropriate time horizon, at least 99% of the exposure movements.
/// * Commission Delegated Regulation (EU) No 153/2013 (the CCP RTS):
///   Art. 24 confidence (99.5% for OTC derivatives, 99% for other financial
///   instruments), Art. 25 lookback (at least the latest 12 months), Art. 26
///   liquidation period (5 business days OTC, 2 business days for other
///   instruments), Art. 27 portfolio margining, Art. 28 procyclicality
///   (at least one of: (a) a buffer of at least 25% of the calculated margin,
///   which may be temporarily exhausted when calculated margins rise
///   significantly; (b) at least 25% weight to stressed observations; (c) a
///   floor at the margin from a 10-year lookback).
/// * ESMA Guidelines on EMIR anti-procyclicality margin measures
///   (ESMA70-151-1293, 2018) and ESMA's 2023 review of the RTS
///   (ESMA91-1505572268-3217): how the three tools are applied.
/// * Speed limits (a cap on the daily rise of margin) are not an Art. 28
///   tool; they are discussed by the ESRB (2020), "Mitigating the
///   procyclicality of margins and haircuts in derivatives markets and
///   securities financing transactions", and BCBS-CPMI-IOSCO (2022),
///   "Review of margining practices". See [`SpeedLimit`] for why they are
///   applied only to the anti-procyclical part by default.
///
/// Expected Shortfall: Artzner, Delbaen, Eber & Heath (1999), "Coherent
/// measures of risk"; Acerbi & Tasche (2002). Filtered historical
/// simulation: Barone-Adesi, Giannopoulos & Vosper (1999).
///
/// # Units
/// Quote currency.
///
/// # Errors
/// - [`Error::TooFew`] / [`Error::InvalidElement`] for an empty or
///   non-finite `pnl`;
/// - [`Error::TooFew`] if the policy uses tool (b) or (c) and the matching
///   P&L is missing from `inputs`, or the long-lookback P&L is shorter than
///   [`LongLookbackFloor::min_scenarios`];
/// - [`Error::NonFiniteResult`] if a figure overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// // Ten 1-day scenarios; losses 1..=10.
/// let pnl: Vec<f64> = (1..=10).map(|i| -f64::from(i)).collect();
/// // 80% ES: mean of the 2 largest losses = 9.5; MPOR 4 days: x sqrt(4) = 19.
/// let policy = EsMarginPolicy::new(Confidence::new(0.8)?, 4)?;
/// let m = es_margin(&pnl, &EsMarginInputs::new(), &policy)?;
/// assert_eq!(m.expected_shortfall, 9.5);
/// assert_eq!(m.calculated_margin, 19.0);
/// // Default APC: a 25% buffer on top.
/// assert_eq!(m.buffer.map(|b| b.amount), Some(4.75));
/// assert_eq!(m.requirement.initial(), 23.75);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn es_margin(
    pnl: &[f64],
    inputs: &EsMarginInputs<'_>,
    policy: &EsMarginPolicy,
) -> Result<EsMargin> {
    compute(pnl, Vec::new(), inputs, policy)
}

/// The ES margin of one account from each position's scenario P&L, with
/// each position's Euler contribution to the ES.
///
/// `position_pnl[i][s]` is position `i`'s P&L in scenario `s` (quote
/// currency, quantity included, positive = gain), e.g. from
/// [`position_pnl`](crate::position_pnl). The account P&L is their sum,
/// added in position order (the same bits as
/// [`portfolio_pnl`](crate::portfolio_pnl)). Contributions: under
/// [`QuantileRule::Empirical`] the component ES of
/// [`attribute_risk`](crate::attribute_risk) (each position's mean loss over
/// the account's `k` tail scenarios); under [`QuantileRule::Linear`] the
/// same with the Acerbi-Tasche weights (`1/m` on the `floor(m)` largest
/// account losses, `(m - floor(m))/m` on the next). Ties in the account
/// loss are broken by scenario index. Both are scaled by the horizon
/// factor.
///
/// # Errors
/// As [`es_margin`], plus [`Error::TooFew`] for no positions,
/// [`Error::LengthMismatch`] if rows differ in length and
/// [`Error::InvalidElement`] for a non-finite element (index
/// `position x scenarios + scenario`).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let a = [-5.0, 1.0, -2.0, 0.5];
/// let b = [1.0, -4.0, -2.5, 0.0];
/// let policy = EsMarginPolicy::new(Confidence::new(0.5)?, 1)?
///     .with_anti_procyclicality(AntiProcyclicality::none());
/// let m = es_margin_with_positions(&[&a, &b], &EsMarginInputs::new(), &policy)?;
/// // Account losses 4, 3, 4.5, -0.5: the 2 largest are scenarios 2 and 0, ES = 4.25.
/// assert_eq!(m.expected_shortfall, 4.25);
/// // a loses (2 + 5) / 2 = 3.5 on average there, b loses (2.5 - 1) / 2 = 0.75.
/// assert_eq!(m.position_contributions, vec![3.5, 0.75]);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn es_margin_with_positions(
    position_pnl: &[&[f64]],
    inputs: &EsMarginInputs<'_>,
    policy: &EsMarginPolicy,
) -> Result<EsMargin> {
    let book = sum_positions(position_pnl)?;
    let confidence = policy.confidence;
    let contributions = match policy.quantile_rule {
        QuantileRule::Empirical => attribute_risk(position_pnl, confidence)?
            .positions
            .iter()
            .map(|p| p.component_es)
            .collect(),
        QuantileRule::Linear => linear_components(position_pnl, &book, confidence),
    };
    compute(&book, contributions, inputs, policy)
}

/// The ES margin of a portfolio from the risk arrays of its instruments,
/// with per-position contributions (in [`Portfolio::positions`] order).
///
/// The stressed-period and long-lookback P&L in `inputs` are the same book
/// over those scenario sets, e.g. [`portfolio_pnl`](crate::portfolio_pnl)
/// against risk arrays computed on them.
///
/// # Errors
/// As [`portfolio_pnl`](crate::portfolio_pnl) and
/// [`es_margin_with_positions`]; a portfolio with no positions has zero
/// P&L and zero margin.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// // Four 2-day spot moves: -10%, -5%, +2%, +8%.
/// let scenarios = ScenarioSet::new(
///     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Relative)],
///     vec![-0.10, -0.05, 0.02, 0.08],
///     YearFraction::ZERO,
/// )?;
/// let mut set = InstrumentSet::new();
/// let perp = InstrumentId::new("BTC-PERP")?;
/// set.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let arrays = RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full)?;
/// let book = Portfolio::new(AccountId::new("alice"), vec![Position::new(perp, 2.0)], &set)?;
///
/// let policy = EsMarginPolicy::new(Confidence::new(0.5)?, 2)?
///     .with_horizon_scaling(HorizonScaling::ScenariosAtHorizon)
///     .with_anti_procyclicality(AntiProcyclicality::none());
/// let m = portfolio_es_margin(&book, &arrays, &EsMarginInputs::new(), &policy)?;
/// // Losses 20 000 and 10 000 in the two worst scenarios: ES = 15 000.
/// assert!((m.requirement.initial() - 15_000.0).abs() < 1e-6);
/// assert_eq!(m.position_contributions.len(), 1);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn portfolio_es_margin(
    portfolio: &Portfolio,
    arrays: &RiskArrays,
    inputs: &EsMarginInputs<'_>,
    policy: &EsMarginPolicy,
) -> Result<EsMargin> {
    if portfolio.positions().is_empty() {
        return es_margin(&portfolio_pnl(portfolio, arrays)?, inputs, policy);
    }
    let rows = position_pnl(portfolio, arrays)?;
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    es_margin_with_positions(&refs, inputs, policy)
}

/// Validates position rows and adds them in position order.
fn sum_positions(rows: &[&[f64]]) -> Result<Vec<f64>> {
    let n = crate::measure::check_position_pnl(rows)?;
    let mut book = vec![0.0; n];
    for row in rows {
        for (b, &x) in book.iter_mut().zip(row.iter()) {
            *b += x;
        }
    }
    if let Some(&value) = book.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFiniteResult {
            what: "account P&L",
            value,
        });
    }
    Ok(book)
}

/// Acerbi-Tasche Euler components: with the account losses in descending
/// order (ties by scenario index) and `m = n (1 - c)`, weight `1/m` on the
/// `floor(m)` largest, `(m - floor(m))/m` on the next (weight 1 on the
/// largest when `m <= 1`).
fn linear_components(rows: &[&[f64]], book: &[f64], confidence: Confidence) -> Vec<f64> {
    let n = book.len();
    let mut order: Vec<usize> = (0..n).collect();
    // Larger loss = smaller P&L.
    order.sort_unstable_by(|&a, &b| book[a].total_cmp(&book[b]).then(a.cmp(&b)));
    let m = tail_size(n, confidence);
    let mut weights: Vec<(usize, f64)> = Vec::new();
    if m <= 1.0 {
        weights.extend(order.first().map(|&s| (s, 1.0)));
    } else {
        let whole = (m.floor() as usize).min(n);
        let frac = m - whole as f64;
        weights.extend(order.iter().take(whole).map(|&s| (s, 1.0 / m)));
        if frac > 0.0 {
            weights.extend(order.get(whole).map(|&s| (s, frac / m)));
        }
    }
    rows.iter()
        .map(|row| {
            let mut c = 0.0;
            for &(s, w) in &weights {
                c -= w * row[s];
            }
            c
        })
        .collect()
}

/// Every figure of an [`EsMargin`] from the account P&L and the raw
/// (unscaled) Euler contributions.
fn compute(
    pnl: &[f64],
    raw_contributions: Vec<f64>,
    inputs: &EsMarginInputs<'_>,
    policy: &EsMarginPolicy,
) -> Result<EsMargin> {
    let confidence = policy.confidence;
    let rule = policy.quantile_rule;
    let h = policy.horizon_factor();
    let apc = policy.anti_procyclicality;

    let raw_var = value_at_risk(pnl, confidence, rule)?;
    let raw_es = expected_shortfall(pnl, confidence, rule)?;
    let mpor_value_at_risk = finite_result("MPOR value at risk", h * raw_var)?;
    let mpor_expected_shortfall = finite_result("MPOR expected shortfall", h * raw_es)?;
    let calculated = mpor_expected_shortfall.max(0.0);

    // (b) stressed observations.
    let stressed = match apc.stressed_weight {
        None => None,
        Some(weight) => {
            let stressed_pnl = inputs.stressed_pnl.ok_or(Error::TooFew {
                what: "stressed-period P&L scenarios (APC tool (b))",
                min: 1,
                got: 0,
            })?;
            let es = finite_result(
                "stressed-period expected shortfall",
                h * expected_shortfall(stressed_pnl, confidence, rule)?,
            )?;
            let stressed_margin = es.max(0.0);
            let weighted_margin = finite_result(
                "stressed weighted margin",
                (1.0 - weight) * calculated + weight * stressed_margin,
            )?;
            let add_on = if stressed_margin > calculated {
                finite_result("stressed add-on", weight * (stressed_margin - calculated))?
            } else {
                0.0
            };
            Some(StressedEffect {
                stressed_expected_shortfall: es,
                stressed_margin,
                weight,
                weighted_margin,
                add_on,
            })
        }
    };

    // (a) buffer.
    let buffer = apc.buffer.map(|fraction| {
        let released = inputs.buffer_release;
        BufferEffect {
            fraction,
            released,
            amount: fraction * (1.0 - released) * calculated,
        }
    });

    let mut margin = calculated;
    if let Some(s) = &stressed {
        margin += s.add_on;
    }
    if let Some(b) = &buffer {
        margin += b.amount;
    }
    margin = finite_result("margin with APC add-ons", margin)?;

    // (c) long-lookback floor.
    let floor = match apc.long_lookback_floor {
        None => None,
        Some(setting) => {
            let long = inputs.long_lookback_pnl.ok_or(Error::TooFew {
                what: "long-lookback P&L scenarios (APC tool (c))",
                min: setting.min_scenarios,
                got: 0,
            })?;
            if long.len() < setting.min_scenarios {
                return Err(Error::TooFew {
                    what: "long-lookback P&L scenarios (APC tool (c))",
                    min: setting.min_scenarios,
                    got: long.len(),
                });
            }
            let es = finite_result(
                "long-lookback expected shortfall",
                h * expected_shortfall(long, confidence, rule)?,
            )?;
            let floor = es.max(0.0);
            let add_on = (floor - margin).max(0.0);
            margin = margin.max(floor);
            Some(FloorEffect {
                long_lookback_expected_shortfall: es,
                floor,
                add_on,
            })
        }
    };
    let margin_before_speed_limit = margin;
    let protected = calculated.max(floor.map_or(0.0, |f| f.floor));

    // Speed limit.
    let speed_limit = match (apc.speed_limit, inputs.previous_initial_margin) {
        (Some(limit), Some(previous)) if previous > 0.0 => {
            let cap = finite_result("speed-limit cap", previous * (1.0 + limit.max_increase))?;
            let capped = margin.min(cap);
            let limited = match limit.scope {
                SpeedLimitScope::AntiProcyclicalComponent => capped.max(protected),
                SpeedLimitScope::Total => capped,
            };
            let effect = SpeedLimitEffect {
                previous_margin: previous,
                cap,
                scope: limit.scope,
                reduction: margin - limited,
                under_collateralisation: (protected - limited).max(0.0),
            };
            margin = limited;
            Some(effect)
        }
        _ => None,
    };

    let position_contributions = raw_contributions
        .into_iter()
        .map(|c| finite_result("position ES contribution", h * c))
        .collect::<Result<Vec<f64>>>()?;

    Ok(EsMargin {
        scenarios: pnl.len(),
        value_at_risk: raw_var,
        expected_shortfall: raw_es,
        horizon_factor: h,
        mpor_value_at_risk,
        mpor_expected_shortfall,
        calculated_margin: calculated,
        stressed,
        buffer,
        floor,
        margin_before_speed_limit,
        speed_limit,
        requirement: MarginRequirement::new(margin, policy.maintenance_fraction)?,
        position_contributions,
    })
}

/// A volatility forecast over the margin period of risk, from the crate's
/// volatility models.
///
/// All volatilities are per period (e.g. daily) in the units of the return
/// series the model was fitted on, and must be in the same units as the
/// current volatility given to [`projected_es_margin`].
///
/// ```
/// use portfolio_margin::*;
/// let returns: Vec<f64> = (0..60).map(|t| if t % 2 == 0 { 0.01 } else { -0.01 }).collect();
/// let garch = evaluate_garch(&returns, GarchParams::new(4e-6, 0.05, 0.9)?)?;
/// // Over a 2-day MPOR: the mean of the next two daily variance forecasts.
/// let vol = VolatilityForecast::Garch(&garch).volatility(2)?;
/// let mean = (garch.forecast_variance(1)? + garch.forecast_variance(2)?) / 2.0;
/// assert!((vol - mean.sqrt()).abs() < 1e-15);
/// assert_eq!(VolatilityForecast::Given(0.02).volatility(2)?, 0.02);
/// assert!(VolatilityForecast::Given(-0.02).volatility(2).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VolatilityForecast<'a> {
    /// EWMA: the variance forecast is flat over every horizon, so the
    /// forecast volatility is `sqrt(next_variance)`.
    Ewma(&'a EwmaEstimate),
    /// GARCH(1,1): the root of the mean variance forecast over the MPOR,
    /// `sqrt(average_forecast_variance(mpor_days))`, which reverts from
    /// the next-day variance towards the long-run variance.
    Garch(&'a GarchEstimate),
    /// A forecast volatility from elsewhere (e.g. implied volatility
    /// converted to the same period), finite and `>= 0`.
    Given(f64),
}

impl VolatilityForecast<'_> {
    /// The forecast volatility per period over `mpor_days`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the forecast variance or volatility is
    /// negative or not finite; [`Error::InvalidInput`] from
    /// [`GarchEstimate::average_forecast_variance`] for a zero horizon.
    pub fn volatility(&self, mpor_days: u32) -> Result<f64> {
        let variance = match self {
            VolatilityForecast::Ewma(e) => e.next_variance,
            VolatilityForecast::Garch(g) => g.average_forecast_variance(mpor_days as usize)?,
            VolatilityForecast::Given(vol) => {
                return non_negative("forecast volatility", *vol);
            }
        };
        Ok(non_negative("forecast variance", variance)?.sqrt())
    }
}

/// The margin now and the margin if volatility moves to a forecast.
///
/// # Units
/// Volatilities per period (the model's units); margins quote currency.
///
/// # Examples
/// See [`projected_es_margin`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct ProjectedEsMargin {
    /// The volatility the current scenarios reflect.
    pub current_volatility: f64,
    /// The forecast volatility over the MPOR.
    pub forecast_volatility: f64,
    /// `forecast_volatility / current_volatility`: the factor applied to
    /// every scenario P&L.
    pub volatility_ratio: f64,
    /// The margin on the P&L as given.
    pub current: EsMargin,
    /// The margin on the rescaled P&L.
    pub projected: EsMargin,
    /// `projected - current` initial margin (positive = margin will rise).
    pub initial_margin_change: f64,
}

/// The margin the account would need if volatility moved from
/// `current_volatility` to `forecast` over the MPOR, so a venue can warn
/// before margin jumps.
///
/// Filtered historical simulation (Barone-Adesi, Giannopoulos & Vosper
/// 1999; Eurex Prisma): each scenario P&L is multiplied by
/// `sigma_forecast / sigma_now`, then [`es_margin`] runs with the same
/// `inputs` and `policy`. Since ES is positively homogeneous, the projected
/// raw ES is the current one times the ratio. Scaling the P&L is exact for
/// books linear in the returns and first order for options; for a full
/// re-run, rebuild the scenarios with the new volatility and revalue.
///
/// Only the current-period P&L is rescaled: the stressed-period and
/// long-lookback P&L are fixed history, and the previous margin for the
/// speed limit is as given (so the projection shows the limit's effect
/// too; [`EsMargin::margin_before_speed_limit`] shows the unlimited
/// figure).
///
/// `current_volatility` is the per-period volatility the P&L scenarios
/// reflect (for filtered historical scenarios, the volatility the returns
/// were rescaled to; e.g. yesterday's EWMA `sqrt(next_variance)`), in the
/// units of the forecast.
///
/// # Errors
/// [`Error::InvalidInput`] unless `current_volatility` is finite and
/// `> 0`, or from [`VolatilityForecast::volatility`];
/// [`Error::NonFiniteResult`] if the ratio or a scaled P&L overflows; as
/// [`es_margin`].
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let pnl: Vec<f64> = (1..=10).map(|i| -f64::from(i)).collect();
/// let policy = EsMarginPolicy::new(Confidence::new(0.8)?, 1)?
///     .with_anti_procyclicality(AntiProcyclicality::none());
/// // Scenarios reflect 1% daily vol; the EWMA now says 1.5%.
/// let returns = [0.015; 40];
/// let ewma = ewma_variance(&returns, RISKMETRICS_DAILY_LAMBDA)?;
/// let p = projected_es_margin(&pnl, &EsMarginInputs::new(), &policy, 0.01, VolatilityForecast::Ewma(&ewma))?;
/// assert!((p.volatility_ratio - 1.5).abs() < 1e-12);
/// assert_eq!(p.current.requirement.initial(), 9.5);
/// assert!((p.projected.requirement.initial() - 14.25).abs() < 1e-9);
/// assert!((p.initial_margin_change - 4.75).abs() < 1e-9);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn projected_es_margin(
    pnl: &[f64],
    inputs: &EsMarginInputs<'_>,
    policy: &EsMarginPolicy,
    current_volatility: f64,
    forecast: VolatilityForecast<'_>,
) -> Result<ProjectedEsMargin> {
    crate::error::positive("current volatility", current_volatility)?;
    let forecast_volatility = forecast.volatility(policy.mpor_days)?;
    let ratio = finite_result("volatility ratio", forecast_volatility / current_volatility)?;
    let current = es_margin(pnl, inputs, policy)?;
    let scaled: Vec<f64> = pnl.iter().map(|x| x * ratio).collect();
    if let Some(&value) = scaled.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFiniteResult {
            what: "volatility-scaled P&L",
            value,
        });
    }
    let projected = es_margin(&scaled, inputs, policy)?;
    let initial_margin_change = finite_result(
        "projected margin change",
        projected.requirement.initial() - current.requirement.initial(),
    )?;
    Ok(ProjectedEsMargin {
        current_volatility,
        forecast_volatility,
        volatility_ratio: ratio,
        current,
        projected,
        initial_margin_change,
    })
}

/// Unvalidated serde mirrors; converting them back runs the constructors.
#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SpeedLimit {
        max_increase: f64,
        #[serde(default)]
        scope: SpeedLimitScope,
    }

    impl TryFrom<SpeedLimit> for super::SpeedLimit {
        type Error = Error;
        fn try_from(r: SpeedLimit) -> Result<Self> {
            super::SpeedLimit::new(r.max_increase, r.scope)
        }
    }

    impl From<super::SpeedLimit> for SpeedLimit {
        fn from(s: super::SpeedLimit) -> Self {
            SpeedLimit {
                max_increase: s.max_increase,
                scope: s.scope,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LongLookbackFloor {
        min_scenarios: usize,
    }

    impl TryFrom<LongLookbackFloor> for super::LongLookbackFloor {
        type Error = Error;
        fn try_from(r: LongLookbackFloor) -> Result<Self> {
            super::LongLookbackFloor::new(r.min_scenarios)
        }
    }

    impl From<super::LongLookbackFloor> for LongLookbackFloor {
        fn from(f: super::LongLookbackFloor) -> Self {
            LongLookbackFloor {
                min_scenarios: f.min_scenarios,
            }
        }
    }

    /// Every field optional; a missing one means the tool is not used.
    #[derive(Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    pub struct AntiProcyclicality {
        #[serde(skip_serializing_if = "Option::is_none")]
        buffer: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stressed_weight: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        long_lookback_floor: Option<super::LongLookbackFloor>,
        #[serde(skip_serializing_if = "Option::is_none")]
        speed_limit: Option<super::SpeedLimit>,
    }

    impl TryFrom<AntiProcyclicality> for super::AntiProcyclicality {
        type Error = Error;
        fn try_from(r: AntiProcyclicality) -> Result<Self> {
            let mut apc = super::AntiProcyclicality::none();
            if let Some(f) = r.buffer {
                apc = apc.with_buffer(f)?;
            }
            if let Some(w) = r.stressed_weight {
                apc = apc.with_stressed_weight(w)?;
            }
            apc.long_lookback_floor = r.long_lookback_floor;
            apc.speed_limit = r.speed_limit;
            Ok(apc)
        }
    }

    impl From<super::AntiProcyclicality> for AntiProcyclicality {
        fn from(a: super::AntiProcyclicality) -> Self {
            AntiProcyclicality {
                buffer: a.buffer,
                stressed_weight: a.stressed_weight,
                long_lookback_floor: a.long_lookback_floor,
                speed_limit: a.speed_limit,
            }
        }
    }

    /// Every field optional, defaulting to [`super::EsMarginPolicy::default`].
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct EsMarginPolicy {
        confidence: Confidence,
        quantile_rule: QuantileRule,
        mpor_days: u32,
        horizon_scaling: HorizonScaling,
        maintenance_fraction: f64,
        anti_procyclicality: super::AntiProcyclicality,
    }

    impl Default for EsMarginPolicy {
        fn default() -> Self {
            super::EsMarginPolicy::default().into()
        }
    }

    impl TryFrom<EsMarginPolicy> for super::EsMarginPolicy {
        type Error = Error;
        fn try_from(r: EsMarginPolicy) -> Result<Self> {
            Ok(super::EsMarginPolicy::new(r.confidence, r.mpor_days)?
                .with_quantile_rule(r.quantile_rule)
                .with_horizon_scaling(r.horizon_scaling)
                .with_maintenance_fraction(r.maintenance_fraction)?
                .with_anti_procyclicality(r.anti_procyclicality))
        }
    }

    impl From<super::EsMarginPolicy> for EsMarginPolicy {
        fn from(p: super::EsMarginPolicy) -> Self {
            EsMarginPolicy {
                confidence: p.confidence,
                quantile_rule: p.quantile_rule,
                mpor_days: p.mpor_days,
                horizon_scaling: p.horizon_scaling,
                maintenance_fraction: p.maintenance_fraction,
                anti_procyclicality: p.anti_procyclicality,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    #[test]
    fn default_policy_is_valid_and_emir_compliant() {
        let p = EsMarginPolicy::default();
        assert_eq!(p.confidence().level(), 0.99);
        assert_eq!(p.anti_procyclicality().buffer(), Some(0.25));
        p.check_emir_minimums(EmirProductClass::ExchangeTraded)
            .unwrap();
        let none = p.with_anti_procyclicality(AntiProcyclicality::none());
        assert!(matches!(
            none.check_emir_minimums(EmirProductClass::ExchangeTraded),
            Err(Error::InvalidInput { value, .. }) if value == 0.0
        ));
        let short = EsMarginPolicy::new(c(0.995), 1).unwrap();
        assert!(matches!(
            short.check_emir_minimums(EmirProductClass::ExchangeTraded),
            Err(Error::InvalidInput { value, .. }) if value == 1.0
        ));
        assert!(EsMarginPolicy::new(c(0.99), 0).is_err());
        assert!(p.with_maintenance_fraction(1.01).is_err());
        assert!(p.with_maintenance_fraction(f64::NAN).is_err());
    }

    #[test]
    fn linear_components_sum_to_linear_es() {
        let a: Vec<f64> = (0..37).map(|s| ((s * 13 % 29) as f64) - 14.0).collect();
        let b: Vec<f64> = (0..37).map(|s| ((s * 7 % 31) as f64) * 0.5 - 6.0).collect();
        let rows = [a.as_slice(), b.as_slice()];
        let book = sum_positions(&rows).unwrap();
        for level in [0.5, 0.9, 0.95, 0.99] {
            let comps = linear_components(&rows, &book, c(level));
            let es = expected_shortfall(&book, c(level), QuantileRule::Linear).unwrap();
            let sum: f64 = comps.iter().sum();
            assert!(
                (sum - es).abs() <= 1e-12 * es.abs().max(1.0),
                "{level}: {sum} vs {es}"
            );
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_and_validation() {
        let policy = EsMarginPolicy::new(c(0.995), 5)
            .unwrap()
            .with_anti_procyclicality(
                AntiProcyclicality::none()
                    .with_stressed_weight(0.3)
                    .unwrap()
                    .with_long_lookback_floor(LongLookbackFloor::ten_years(DayBasis::Trading252))
                    .with_speed_limit(SpeedLimit::new(0.1, SpeedLimitScope::Total).unwrap()),
            );
        let json = serde_json::to_string(&policy).unwrap();
        let back: EsMarginPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
        let default: EsMarginPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(default, EsMarginPolicy::default());
        for bad in [
            r#"{"anti_procyclicality": {"buffer": 0.1}}"#,
            r#"{"anti_procyclicality": {"stressed_weight": 1.5}}"#,
            r#"{"anti_procyclicality": {"speed_limit": {"max_increase": -1}}}"#,
            r#"{"mpor_days": 0}"#,
            r#"{"confidence": 1.0}"#,
            r#"{"maintenance_fraction": 2.0}"#,
            r#"{"mpor": 2}"#,
        ] {
            assert!(
                serde_json::from_str::<EsMarginPolicy>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
