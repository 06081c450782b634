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
#![deny(unsafe_code)]

mod error;
mod greeks;
mod instrument;
mod market;
pub mod math;
mod measure;
mod pnl;
mod portfolio;
mod pricing;
mod risk;
mod scenario;
mod units;
mod volatility;

pub use error::{Error, Result};
pub use greeks::{
    Greeks, GreeksBatch, OptionBatch, PortfolioGreeks, UnderlyingGreeks, bump_greeks,
    portfolio_greeks,
};
pub use instrument::{
    FutureContract, Instrument, InstrumentId, OptionContract, OptionKind, OptionModel,
    PerpetualContract, Settlement, UnderlyingId,
};
pub use market::{
    ButterflyViolation, MarketSnapshot, MarketSnapshotBuilder, RiskFactor, StrikeAxis,
    UnderlyingMarket, VolSurface,
};
pub use measure::{
    BASEL_RED_PROBABILITY, BASEL_YELLOW_PROBABILITY, BacktestSummary, COVARIANCE_PSD_TOLERANCE,
    COVARIANCE_SYMMETRY_TOLERANCE, ChristoffersenTest, CovarianceMatrix, DeltaGammaVar,
    LikelihoodRatioTest, LossDistribution, PositionRisk, QuantileRule, RiskAttribution,
    RiskMeasures, TAIL_SIZE_SNAP, TrafficLight, TrafficLightZones, attribute_risk,
    attribute_risk_per_unit, backtest, christoffersen_test, delta_gamma_value_at_risk,
    delta_normal_risk, expected_shortfall, kupiec_test, tail_scenario_count, traffic_light,
    traffic_light_zones, value_at_risk, var_exceptions,
};
pub use pnl::{Revaluation, RiskArray, RiskArrays, portfolio_pnl, position_pnl, revalue};
pub use portfolio::{
    AccountId, InstrumentSet, ListedInstrument, MAX_ABS_QUANTITY, Portfolio, Position,
};
pub use pricing::{
    BsInputs, InstrumentGreeks, MAX_ABS_RATE, MAX_PRICE, MAX_VOLATILITY, MAX_YEARS, MIN_PRICE,
    MIN_VOLATILITY, MIN_YEARS, black_scholes, instrument_greeks, option_inputs,
};
pub use pricing::{black_price, implied_volatility, price};
pub use risk::{MonteCarloRisk, monte_carlo_risk};
pub use scenario::{
    CORRELATION_PSD_TOLERANCE, CORRELATION_SYMMETRY_TOLERANCE, CorrelationMatrix,
    DEFAULT_CHUNK_SIZE, EWMA_DEFAULT_LAMBDA, GridAxis, GridScope, HistoricalConfig,
    MonteCarloConfig, MonteCarloGenerator, NearestCorrelation, NearestCorrelationOptions,
    PriceHistory, ReturnKind, ScenarioSet, Shock, ShockDistribution, ShockKind, SimulatedFactor,
    StressGrid, StressScenario, UnderlyingColumns, VolatilityFilter, historical_scenarios,
    nearest_correlation, stress_scenarios,
};
pub use units::{
    BASIS_POINT, Confidence, DayBasis, MILLIS_PER_DAY, MILLIS_PER_YEAR, Timestamp, VOL_POINT,
    YearFraction,
};
pub use volatility::{
    BACKCAST_WINDOW, EwmaEstimate, GARCH_MIN_OBSERVATIONS, GarchEstimate, GarchParams,
    MAX_FITTED_PERSISTENCE, RISKMETRICS_DAILY_LAMBDA, evaluate_garch, ewma_variance, fit_garch,
};

/// Design notes: why the crate is built the way it is (DESIGN.md).
#[doc = include_str!("../DESIGN.md")]
pub mod _design {}
