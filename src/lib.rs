//! # portfolio-margin
//!
//! A portfolio-margin risk engine: how much collateral must each account
//! hold, from the net risk of everything it holds?
//!
//! Data flows one way:
//!
//! ```text
//! MarketSnapshot + InstrumentSet + Portfolio
//!   --pricing--> InstrumentGreeks, PortfolioGreeks      (Black-Scholes-Merton, Black-76; linear or coin-settled)
//!   --scenario--> ScenarioSet                           (historical, Monte Carlo, stress grids)
//!   --pnl--> RiskArrays (one P&L vector per instrument, shared by every account)
//!   --> portfolio_pnl (quantity-weighted sum) --measure--> VaR / ES, attribution, backtests
//!
//!   --margin--> MarginRequirement (initial, maintenance; quote currency)
//!       isolated_margin     per-position rules, no netting (the baseline)
//!       cross_margin        netting per underlying, vertical spreads, spread credits between underlyings
//!       GridMarginEngine    worst loss over a price x vol grid per underlying, add-ons
//!                           (GridPolicy: CME SPAN 16, FINRA 4210, Deribit-style); what-ifs, explain_margin_change
//!       es_margin           Expected Shortfall at the margin period of risk, anti-procyclicality (EMIR)
//!
//!   Balances --collateral--> value_collateral (volatility + liquidity haircuts, borrow uplift)
//!   + positions' value - margin --> account_health (equity, health factor, bands, deposit, withdrawable)
//!   --> plan_liquidation (greedy ordered reductions back to a target health factor)
//! ```
//!
//! The formulas, defaults and public sources of every margin and collateral
//! model are in [`_methodology`]; the reasons behind the design in
//! [`_design`].
//!
//! Every input is validated when it is built (or deserialised) and every
//! error is a typed [`Error`] naming what was wrong; no public function
//! returns NaN. Units: time in year fractions (ACT/365F from timestamps),
//! vols and rates as annual decimals, Greeks as raw derivatives (see
//! [`Greeks`]), P&L positive for gains, VaR and ES positive for losses.
//!
//! ```
//! use portfolio_margin::*;
//! // The market at one instant.
//! let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
//! let btc = UnderlyingId::new("BTC")?;
//! let market = MarketSnapshot::builder(as_of)
//!     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.55)?)?)
//!     .build()?;
//!
//! // Listed instruments and one account's book: short a call, long the perpetual.
//! let mut instruments = InstrumentSet::new();
//! let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
//! let call = InstrumentId::new("BTC-25DEC26-110000-C")?;
//! instruments.insert(call.clone(), Instrument::Option(OptionContract::new(btc.clone(), OptionKind::Call, 110_000.0, expiry)?))?;
//! let perp = InstrumentId::new("BTC-PERP")?;
//! instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
//! let book = Portfolio::new(AccountId::new("alice"), vec![Position::new(call, -10.0), Position::new(perp, 3.0)], &instruments)?;
//!
//! // Greeks per underlying.
//! let greeks = portfolio_greeks(&book, &instruments, &market)?;
//! assert_eq!(greeks.per_underlying.len(), 1);
//!
//! // A stress grid: spot -20%..+20% in 9 steps, with vol -30%/0/+30% (relative).
//! let mut sizes = Vec::new();
//! for i in 0..9 {
//!     for vol in [-0.3, 0.0, 0.3] {
//!         sizes.extend([-0.2 + 0.05 * f64::from(i), vol]);
//!     }
//! }
//! let scenarios = ScenarioSet::new(
//!     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Relative), (RiskFactor::Vol(btc), ShockKind::Relative)],
//!     sizes,
//!     YearFraction::from_days(1.0, DayBasis::Calendar365)?,
//! )?;
//!
//! // Risk arrays once per snapshot, then the book's P&L and its tail.
//! let arrays = RiskArrays::compute(&instruments, &market, &scenarios, Revaluation::Full)?;
//! let pnl = portfolio_pnl(&book, &arrays)?;
//! let confidence = Confidence::new(0.95)?;
//! let var = value_at_risk(&pnl, confidence, QuantileRule::Empirical)?;
//! let es = expected_shortfall(&pnl, confidence, QuantileRule::Empirical)?;
//! assert!(var > 0.0 && es >= var);
//!
//! // Margin: the isolated baseline, cross netting, and a Deribit-style grid.
//! let isolated = isolated_margin(&book, &instruments, &market, &IsolatedPolicy::default())?;
//! let cross = cross_margin(&book, &instruments, &market, &CrossPolicy::default())?;
//! assert!(cross.requirement.initial() <= isolated.requirement.initial());
//! let engine = GridMarginEngine::new(&instruments, &market, GridPolicy::deribit_style())?;
//! let grid = engine.margin(&engine.account(&book)?)?;
//! // A naked short call's worst case is the extended table's +500% move,
//! // of which 5% counts; maintenance is 80% of initial.
//! let worst = &grid.underlyings[0].worst_scenario_name;
//! assert!(worst.starts_with("extreme price +500.00%"), "{worst}");
//! assert!((grid.requirement.maintenance() - 0.8 * grid.requirement.initial()).abs() < 1e-6);
//! println!("grid margin {:.0} (worst: {worst})", grid.requirement.initial());
//!
//! // Collateral and health: 1.5M USDC against the grid margin.
//! let usdc = AssetId::new("USDC")?;
//! let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
//! let balances = [Balance::new(usdc, 1_500_000.0)];
//! let account = Account { balances: &balances, portfolio: &book, instruments: &instruments, market: &market, policy: &policy };
//! let health = account_health(&account, grid.requirement, &HealthBands::default())?;
//! assert_eq!(health.status, HealthStatus::Healthy);
//! // Equity is the cash less the short calls' value; above initial margin it may be withdrawn.
//! assert!((health.withdrawable - (health.equity - grid.requirement.initial())).abs() < 1e-6);
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod collateral;
mod error;
mod greeks;
mod instrument;
mod margin;
mod market;
pub mod math;
mod measure;
mod pnl;
mod portfolio;
mod pricing;
mod progress;
mod risk;
mod scenario;
mod units;
mod volatility;

pub use collateral::health::{
    Account, AccountHealth, DEFAULT_LIQUIDATION_BELOW, DEFAULT_REDUCE_ONLY_BELOW,
    DEFAULT_WARNING_BELOW, HealthBands, HealthFactor, HealthState, HealthStatus, account_health,
    deposit_to_reach, health_from_valuation, positions_value,
};
pub use collateral::liquidation::{
    DEFAULT_LIQUIDATION_TARGET, DEFAULT_LOT_FRACTION, DEFAULT_MAX_STEPS, HedgedUnwind,
    LiquidationPlan, LiquidationPolicy, LiquidationStep, LotSize, MAX_LIQUIDATION_STEPS,
    MIN_RELATIVE_RELIEF, Reduction, StepKind, StopReason, plan_liquidation,
    plan_liquidation_by_quantities,
};
pub use collateral::{
    AssetId, AssetKind, AssetValuation, Balance, BorrowUplift, CollateralAsset, CollateralPolicy,
    CollateralValuation, ConvertedAmount, DEFAULT_HAIRCUT_CONFIDENCE,
    DEFAULT_LIQUIDATION_HORIZON_DAYS, DEFAULT_VOLATILITY_HAIRCUT_CAP, Haircut, HaircutPolicy,
    LiquidityTier, LiquidityTiers, MAX_ASSET_ID_LEN, PriceSource, PricedCollateral,
    VolatilityHaircut, VolatilitySource, coin_to_quote, value_collateral,
};
pub use error::{Error, Result};
pub use greeks::{
    Greeks, GreeksBatch, OptionBatch, PortfolioGreeks, UnderlyingGreeks, bump_greeks,
    portfolio_greeks,
};
pub use instrument::{
    FutureContract, Instrument, InstrumentId, OptionContract, OptionKind, OptionModel,
    PerpetualContract, Settlement, UnderlyingId,
};
pub use margin::{
    AccountState, BatchMargins, CapitalEfficiency, Concentration, ConcentrationTier, ExtremeMoves,
    ExtremeScale, ExtremeVol, FinraPortfolioType, GridAccount, GridCharge, GridMargin,
    GridMarginEngine, GridPoint, GridPolicy, InstrumentIndex, MAX_STEPS_PER_SIDE, MarginChange,
    MarginKind, MarginRequirement, MarginState, MarketDepth, Methodology, MethodologyMargin,
    MinimumScope, OptionMinimum, Order, PositionContribution, PriceRange, UnderlyingChange,
    UnderlyingGridMargin, UnderlyingRange, VolPoint, VolScenarios, VolShocks, ZeroMove,
    capital_efficiency, explain_margin_change,
};
pub use margin::{
    AntiProcyclicality, AppliedCredit, BufferEffect, CrossMargin, CrossPolicy,
    EMIR_FLOOR_LOOKBACK_YEARS, EMIR_MIN_APC_BUFFER, EMIR_MIN_CONFIDENCE_EXCHANGE_TRADED,
    EMIR_MIN_CONFIDENCE_OTC, EMIR_MIN_MPOR_DAYS_EXCHANGE_TRADED, EMIR_MIN_MPOR_DAYS_OTC,
    EMIR_MIN_STRESSED_WEIGHT, EmirProductClass, EsMargin, EsMarginInputs, EsMarginPolicy,
    FloorEffect, HorizonScaling, IsolatedMargin, IsolatedPolicy, IsolatedRule, LongLookbackFloor,
    OffsetPolicy, PositionMargin, ProjectedEsMargin, PutMinimumBasis, ResolvedOffsets, SpeedLimit,
    SpeedLimitEffect, SpeedLimitScope, SpreadCredit, StressedEffect, UnderlyingExposure,
    UnderlyingMargin, VolatilityForecast, cross_margin, es_margin, es_margin_with_positions,
    isolated_margin, portfolio_es_margin, projected_es_margin,
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
pub use pnl::{
    RISK_ARRAYS_STAGE, Revaluation, RiskArray, RiskArrays, portfolio_pnl, position_pnl, revalue,
};
pub use portfolio::{
    AccountId, InstrumentSet, ListedInstrument, MAX_ABS_QUANTITY, Portfolio, Position,
};
pub use pricing::{
    BsInputs, InstrumentGreeks, MAX_ABS_RATE, MAX_PRICE, MAX_VOLATILITY, MAX_YEARS, MIN_PRICE,
    MIN_VOLATILITY, MIN_YEARS, black_scholes, instrument_greeks, option_inputs,
};
pub use pricing::{black_price, implied_volatility, price};
pub use progress::{Flow, ProgressUpdate};
pub use risk::{
    MONTE_CARLO_STAGE, MonteCarloRisk, monte_carlo_pnl, monte_carlo_risk,
    monte_carlo_risk_with_progress,
};
pub use scenario::{
    CORRELATION_PSD_TOLERANCE, CORRELATION_SYMMETRY_TOLERANCE, CorrelationMatrix,
    DEFAULT_CHUNK_SIZE, EWMA_DEFAULT_LAMBDA, GridAxis, GridScope, HistoricalConfig,
    MonteCarloConfig, MonteCarloGenerator, NearestCorrelation, NearestCorrelationOptions,
    PriceHistory, ReturnKind, ScenarioSet, Shock, ShockDistribution, ShockKind, SimulatedFactor,
    StressGrid, StressScenario, UnderlyingColumns, VolTermScaling, VolatilityFilter,
    historical_scenarios, nearest_correlation, stress_scenarios,
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

/// Margin and collateral methodology: formulas, defaults and sources (docs/methodology.md).
#[doc = include_str!("../docs/methodology.md")]
pub mod _methodology {}

/// The JSON data format: documents, versions, fields and units, errors (docs/json_format.md).
#[cfg(feature = "serde")]
#[doc = include_str!("../docs/json_format.md")]
pub mod _json_format {}
