//! Margin: how much collateral an account must hold.
//!
//! Four methodologies, each a configurable policy with documented defaults:
//!
//! * **isolated** (per-position rules, the baseline),
//! * **cross** (netting per underlying, spread credits between underlyings),
//! * **portfolio grid** (worst loss over a price x vol scenario grid per
//!   underlying, in the style of SPAN, OCC TIMS, FINRA 4210 and Deribit),
//! * **risk-based** (Expected Shortfall over historical or Monte Carlo
//!   scenarios, with anti-procyclicality tools).
//!
//! Every methodology returns a [`MarginRequirement`]: initial and
//! maintenance margin in the quote currency, finite and non-negative.

mod risk_based;

pub use risk_based::{
    AntiProcyclicality, BufferEffect, EMIR_FLOOR_LOOKBACK_YEARS, EMIR_MIN_APC_BUFFER,
    EMIR_MIN_CONFIDENCE_EXCHANGE_TRADED, EMIR_MIN_CONFIDENCE_OTC,
    EMIR_MIN_MPOR_DAYS_EXCHANGE_TRADED, EMIR_MIN_MPOR_DAYS_OTC, EMIR_MIN_STRESSED_WEIGHT,
    EmirProductClass, EsMargin, EsMarginInputs, EsMarginPolicy, FloorEffect, HorizonScaling,
    LongLookbackFloor, ProjectedEsMargin, SpeedLimit, SpeedLimitEffect, SpeedLimitScope,
    StressedEffect, VolatilityForecast, es_margin, es_margin_with_positions, portfolio_es_margin,
    projected_es_margin,
};

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

mod cross;
mod explain;
mod grid;
mod grid_policy;
mod isolated;
mod offsets;

pub use cross::{CrossMargin, CrossPolicy, UnderlyingMargin, cross_margin};
pub use isolated::{
    IsolatedMargin, IsolatedPolicy, IsolatedRule, PositionMargin, PutMinimumBasis, isolated_margin,
};
pub use offsets::{AppliedCredit, OffsetPolicy, ResolvedOffsets, SpreadCredit, UnderlyingExposure};

pub use explain::{
    CapitalEfficiency, MarginChange, MarginState, MethodologyMargin, UnderlyingChange,
    capital_efficiency, explain_margin_change,
};

pub use grid::{
    AccountState, BatchMargins, GridAccount, GridCharge, GridMargin, GridMarginEngine,
    InstrumentIndex, Order, PositionContribution, UnderlyingGridMargin,
};
pub use grid_policy::{
    Concentration, ConcentrationTier, ExtremeMoves, ExtremeScale, ExtremeVol, FinraPortfolioType,
    GridPoint, GridPolicy, MAX_STEPS_PER_SIDE, MarketDepth, MinimumScope, OptionMinimum,
    PriceRange, UnderlyingRange, VolPoint, VolScenarios, VolShocks, ZeroMove,
};

/// Which of the two requirements is meant.
///
/// Initial margin must be posted to open or increase risk; maintenance
/// margin must be held to avoid liquidation. Maintenance is never above
/// initial.
///
/// ```
/// use portfolio_margin::MarginKind;
/// assert_ne!(MarginKind::Initial, MarginKind::Maintenance);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum MarginKind {
    /// Required to open or increase positions.
    Initial,
    /// Required to keep positions open.
    Maintenance,
}

/// A margin methodology, as named in reports.
///
/// ```
/// use portfolio_margin::Methodology;
/// assert_eq!(Methodology::ALL.len(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Methodology {
    /// Per-position rules, no offsets.
    Isolated,
    /// Netting per underlying and spread credits between underlyings.
    Cross,
    /// Worst loss over a scenario grid per underlying, with add-ons.
    PortfolioGrid,
    /// Expected Shortfall over historical or Monte Carlo scenarios.
    ExpectedShortfall,
}

impl Methodology {
    /// Every methodology, baseline first.
    pub const ALL: [Methodology; 4] = [
        Methodology::Isolated,
        Methodology::Cross,
        Methodology::PortfolioGrid,
        Methodology::ExpectedShortfall,
    ];
}

/// Initial and maintenance margin, quote currency.
///
/// Built by the margin methodologies, which guarantee both numbers are
/// finite, non-negative and `maintenance <= initial`.
///
/// ```
/// use portfolio_margin::{MarginKind, MarginRequirement};
/// let r = MarginRequirement::new(100.0, 0.8)?;
/// assert_eq!(r.initial(), 100.0);
/// assert_eq!(r.maintenance(), 80.0);
/// assert_eq!(r.get(MarginKind::Maintenance), 80.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct MarginRequirement {
    initial: f64,
    maintenance: f64,
}

impl MarginRequirement {
    /// Zero margin.
    pub const ZERO: MarginRequirement = MarginRequirement {
        initial: 0.0,
        maintenance: 0.0,
    };

    /// A requirement from its initial margin and the maintenance fraction
    /// (`maintenance = fraction x initial`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] unless `initial` is finite and `>= 0`
    /// and `fraction` is in `[0, 1]`.
    pub fn new(initial: f64, maintenance_fraction: f64) -> crate::Result<Self> {
        let initial = crate::error::non_negative("initial margin", initial)?;
        if !(0.0..=1.0).contains(&maintenance_fraction) {
            return Err(crate::Error::InvalidInput {
                what: "maintenance fraction",
                rule: "in [0, 1]",
                value: maintenance_fraction,
            });
        }
        Ok(MarginRequirement {
            initial,
            maintenance: initial * maintenance_fraction,
        })
    }

    /// Initial margin, quote currency.
    pub fn initial(&self) -> f64 {
        self.initial
    }

    /// Maintenance margin, quote currency.
    pub fn maintenance(&self) -> f64 {
        self.maintenance
    }

    /// The requirement of one kind.
    pub fn get(&self, kind: MarginKind) -> f64 {
        match kind {
            MarginKind::Initial => self.initial,
            MarginKind::Maintenance => self.maintenance,
        }
    }
}
