//! Revaluation: each instrument's P&L per contract over a [`ScenarioSet`]
//! (a [`RiskArray`]), computed once per snapshot and shared by every account
//! that holds the instrument; a book's P&L is `sum quantity x array`.
//!
//! Two methods ([`Revaluation`]):
//!
//! * **Full**: every instrument is repriced under every scenario. Options go
//!   through a vectorised value kernel specialised for one option under
//!   many scenarios (the contract terms, discount factors and `ln(S0/K)`
//!   computed once per option, `ln(S/S0)` and `1/S` once per underlying),
//!   with today's value computed by the same kernel, so a scenario that
//!   moves nothing gives exactly zero P&L. Scenarios with inputs outside the
//!   kernel's domain go through [`OptionBatch::values`] row by row, which
//!   names the offending scenario.
//! * **Sensitivity**: a second-order Taylor expansion in the Greeks at the
//!   base snapshot, so the approximation error can be read off against the
//!   full arrays.
//!
//! With the `rayon` feature instruments are revalued in parallel; every
//! array is computed independently and collected by index, so results are
//! bit-identical whatever the thread count.

use crate::error::{Error, Result};
use crate::greeks::{OptionBatch, ScenarioMarket, ScenarioOption, ScenarioRates, scenario_values};
use crate::instrument::{
    Instrument, InstrumentId, OptionContract, OptionModel, Settlement, UnderlyingId,
};
use crate::market::{MarketSnapshot, RiskFactor, UnderlyingMarket};
use crate::portfolio::{InstrumentSet, ListedInstrument, Portfolio};
use crate::pricing::{
    BsInputs, MAX_ABS_RATE, MAX_PRICE, MAX_VOLATILITY, MIN_PRICE, MIN_VOLATILITY,
    instrument_greeks, option_inputs,
};
use crate::progress::{Flow, ProgressUpdate, Tracker};
use crate::scenario::{ScenarioSet, ShockKind};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How instruments are revalued under a scenario.
///
/// # Full revaluation conventions
/// * The scenario's spot, vol, rate and carry-yield shocks are applied with
///   [`ShockKind::apply`] to the underlying's base values, and the valuation
///   time moves forward by [`ScenarioSet::horizon`] (as
///   [`ScenarioSet::apply`] does).
/// * **Sticky strike**: an option keeps the implied volatility read off
///   today's surface once, at today's time to expiry, its strike and today's
///   forward; the scenario's vol shock is applied to that number. The
///   surface is not re-read at the aged expiry or the shocked forward. On a
///   flat surface this equals repricing on the [`ScenarioSet::apply`]-ed
///   snapshot; on a smile it ignores the move along the smile.
/// * An option (or future) that expires within the horizon is valued at
///   expiry on the scenario's shocked spot: an option at its intrinsic value
///   `max(phi (S - K), 0)` (divided by `S` if coin-settled), a future at the
///   spot; the settlement proceeds earn no interest to the horizon.
/// * Futures, perpetuals and spot holdings are valued as in
///   [`crate::price`]: linear `F = S e^{(r-q)T}`, inverse `-1/F` coin per
///   unit of face value.
///
/// # Sensitivity revaluation
/// P&L per unit is
///
/// ```text
/// delta dU + gamma dU^2 / 2 + vega dsigma + vanna dU dsigma
///   + volga dsigma^2 / 2 + theta h + rho dr
/// ```
///
/// with the instrument's Greeks in its settlement currency at the base snapshot (see
/// [`crate::InstrumentGreeks`]). `U` is the model's underlying: the spot, or
/// for Black-76 options the forward to the option's expiry (its move `dU`
/// is computed exactly from the shocked spot, rate and carry yield and the
/// aged expiry). Carry-yield shocks of spot-based instruments, second-order
/// rate terms and cross terms with time are not captured; the error is
/// third order in spot and vol shocks at zero horizon.
///
/// ```
/// use portfolio_margin::Revaluation;
/// assert_eq!(Revaluation::default(), Revaluation::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Revaluation {
    /// Reprice every instrument under every scenario.
    #[default]
    Full,
    /// Second-order Greeks (Taylor) approximation at the base snapshot.
    Sensitivity,
}

/// One instrument's P&L per contract (multiplier included) over a scenario
/// set: entry `i` is the value after scenario `i` minus the value today.
///
/// # Units
/// [`RiskArray::native`] in the settlement currency (coin for
/// [`Settlement::Inverse`]); [`RiskArray::quote`] in the quote currency: the
/// coin P&L valued at the scenario's shocked spot for inverse contracts, the
/// same numbers as `native` for linear ones (stored once).
/// Positive = gain for a long contract.
///
/// The arrays of one [`RiskArrays`] share one allocation (cloning an array
/// is cheap, and keeps that allocation alive).
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let scenarios = ScenarioSet::new(
///     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Relative)],
///     vec![-0.10, 0.0, 0.10],
///     YearFraction::ZERO,
/// )?;
/// let perp = ListedInstrument {
///     id: InstrumentId::new("BTC-PERP")?,
///     instrument: Instrument::Perpetual(PerpetualContract::new(btc).with_multiplier(0.001)?),
/// };
/// let array = revalue(&perp, &market, &scenarios, Revaluation::Full)?;
/// assert_eq!(array.quote().len(), 3);
/// assert!((array.quote()[0] + 10.0).abs() < 1e-9); // -10% of 100 USD
/// assert_eq!(array.quote()[1], 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Clone)]
pub struct RiskArray {
    id: InstrumentId,
    settlement: Settlement,
    base_value: f64,
    /// P&L storage, shared by every array of one [`RiskArrays`] (one
    /// allocation per computation rather than one or two per instrument):
    /// `native` at `start..start + len`, then, for inverse contracts, the
    /// quote-currency P&L (`None`: linear, equal to `native`).
    storage: Arc<Vec<f64>>,
    start: usize,
    len: usize,
    quote_start: Option<usize>,
}

impl PartialEq for RiskArray {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.settlement == other.settlement
            && self.base_value == other.base_value
            && self.native() == other.native()
            && self.quote_only() == other.quote_only()
    }
}

impl std::fmt::Debug for RiskArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskArray")
            .field("id", &self.id)
            .field("settlement", &self.settlement)
            .field("base_value", &self.base_value)
            .field("native", &self.native())
            .field("quote", &self.quote_only())
            .finish()
    }
}

#[cfg(feature = "serde")]
impl Serialize for RiskArray {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("RiskArray", 5)?;
        state.serialize_field("id", &self.id)?;
        state.serialize_field("settlement", &self.settlement)?;
        state.serialize_field("base_value", &self.base_value)?;
        state.serialize_field("native", self.native())?;
        state.serialize_field("quote", &self.quote_only())?;
        state.end()
    }
}

impl RiskArray {
    /// The instrument.
    pub fn id(&self) -> &InstrumentId {
        &self.id
    }
    /// Currency of [`RiskArray::native`] and [`RiskArray::base_value`].
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }
    /// Today's value of one contract in the settlement currency (multiplier
    /// included; for options as computed by the batch kernel).
    pub fn base_value(&self) -> f64 {
        self.base_value
    }
    /// P&L per contract in the settlement currency, one entry per scenario.
    pub fn native(&self) -> &[f64] {
        self.storage
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }
    /// P&L per contract in the quote currency, one entry per scenario.
    pub fn quote(&self) -> &[f64] {
        self.quote_only().unwrap_or_else(|| self.native())
    }
    /// Number of scenarios.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `false` for arrays built by this module (a set has a scenario).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The quote-currency P&L stored apart from `native` (inverse contracts).
    fn quote_only(&self) -> Option<&[f64]> {
        let start = self.quote_start?;
        self.storage.get(start..start + self.len)
    }
}

/// The [`ProgressUpdate::stage`] of [`RiskArrays::compute_with_progress`];
/// units are instruments.
pub const RISK_ARRAYS_STAGE: &str = "risk arrays";

/// Risk arrays of every instrument of an [`InstrumentSet`] against one
/// snapshot and one scenario set: computed once, shared by every account.
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let scenarios = ScenarioSet::new(
///     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Log), (RiskFactor::Vol(btc.clone()), ShockKind::Absolute)],
///     vec![-0.1, 0.05, 0.1, -0.05],
///     YearFraction::from_days(1.0, DayBasis::Calendar365)?,
/// )?;
/// let mut set = InstrumentSet::new();
/// let call = OptionContract::new(btc.clone(), OptionKind::Call, 110_000.0, Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?)?;
/// set.insert(InstrumentId::new("C110")?, Instrument::Option(call))?;
/// set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let arrays = RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full)?;
/// let book = Portfolio::new(AccountId::new("a"), vec![
///     Position::new(InstrumentId::new("C110")?, 10.0),
///     Position::new(InstrumentId::new("PERP")?, -2.0),
/// ], &set)?;
/// let pnl = portfolio_pnl(&book, &arrays)?;
/// assert_eq!(pnl.len(), 2);
/// let call_pnl = arrays.get(&InstrumentId::new("C110")?)?.quote()[0];
/// let perp_pnl = arrays.get(&InstrumentId::new("PERP")?)?.quote()[0];
/// assert_eq!(pnl[0], 0.0 + 10.0 * call_pnl + -2.0 * perp_pnl);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct RiskArrays {
    method: Revaluation,
    scenarios: usize,
    arrays: Vec<RiskArray>,
    #[cfg_attr(feature = "serde", serde(skip))]
    index: HashMap<InstrumentId, usize>,
}

impl RiskArrays {
    /// Revalues every instrument of `instruments` under every scenario.
    ///
    /// With the `rayon` feature instruments are spread over the current
    /// pool (use `ThreadPool::install` to choose it); results are the same
    /// bits on any number of threads. If several instruments fail, the
    /// error of the first in the set's order is returned.
    ///
    /// # Errors
    /// As [`revalue`], wrapped in [`Error::InInstrument`].
    pub fn compute(
        instruments: &InstrumentSet,
        market: &MarketSnapshot,
        scenarios: &ScenarioSet,
        method: Revaluation,
    ) -> Result<RiskArrays> {
        Self::compute_observed(instruments, market, scenarios, method, None)
    }

    /// [`RiskArrays::compute`] reporting its progress to `progress` after
    /// every instrument, which may cancel it.
    ///
    /// `progress` is called as described in [`crate::Flow`]: once with
    /// `done = 0`, then once per revalued instrument (`total =
    /// instruments.len()`, stage [`RISK_ARRAYS_STAGE`]), possibly from rayon
    /// worker threads but never two calls at once. The arrays are the same
    /// bits as [`RiskArrays::compute`]'s.
    ///
    /// # Errors
    /// As [`RiskArrays::compute`], and [`Error::Cancelled`] if `progress`
    /// answered [`crate::Flow::Cancel`] (whatever else failed).
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let btc = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let scenarios = ScenarioSet::new(
    ///     vec![(RiskFactor::Spot(btc.clone()), ShockKind::Relative)],
    ///     vec![-0.1, 0.1],
    ///     YearFraction::ZERO,
    /// )?;
    /// let mut set = InstrumentSet::new();
    /// set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
    /// set.insert(InstrumentId::new("SPOT")?, Instrument::Spot(btc))?;
    /// let last = AtomicU64::new(0);
    /// let record = |u: ProgressUpdate| {
    ///     last.store(u.done, Ordering::Relaxed);
    ///     Flow::Continue
    /// };
    /// let arrays = RiskArrays::compute_with_progress(&set, &market, &scenarios, Revaluation::Full, &record)?;
    /// assert_eq!(arrays, RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full)?);
    /// assert_eq!(last.load(Ordering::Relaxed), 2); // both instruments
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn compute_with_progress(
        instruments: &InstrumentSet,
        market: &MarketSnapshot,
        scenarios: &ScenarioSet,
        method: Revaluation,
        progress: &(dyn Fn(ProgressUpdate) -> Flow + Sync),
    ) -> Result<RiskArrays> {
        Self::compute_observed(instruments, market, scenarios, method, Some(progress))
    }

    fn compute_observed(
        instruments: &InstrumentSet,
        market: &MarketSnapshot,
        scenarios: &ScenarioSet,
        method: Revaluation,
        progress: Option<&(dyn Fn(ProgressUpdate) -> Flow + Sync)>,
    ) -> Result<RiskArrays> {
        let listed: Vec<&ListedInstrument> = instruments.iter().collect();
        // Every underlying's shocked numbers, once.
        let mut shocked: BTreeMap<&UnderlyingId, Result<Shocked>> = BTreeMap::new();
        for item in &listed {
            let id = item.instrument.underlying();
            if !shocked.contains_key(id) {
                let s = market
                    .underlying(id)
                    .and_then(|m| Shocked::new(scenarios, id, m));
                shocked.insert(id, s);
            }
        }
        // One allocation holds every array: per instrument, the native P&L
        // and, for inverse contracts, the quote P&L. (Thousands of separate
        // arrays, all freed together, are given back to the system by the
        // allocator and faulted in again page by page by the next
        // computation; one large block is kept.)
        let n = scenarios.len();
        let width = |item: &ListedInstrument| match item.instrument.settlement() {
            Settlement::Linear => n,
            Settlement::Inverse => 2 * n,
        };
        let total = listed.iter().map(|item| width(item)).sum::<usize>();
        let mut storage = vec![0.0; total];
        let mut blocks: Vec<&mut [f64]> = Vec::with_capacity(listed.len());
        let mut rest = storage.as_mut_slice();
        for item in &listed {
            let (block, tail) = std::mem::take(&mut rest).split_at_mut(width(item));
            blocks.push(block);
            rest = tail;
        }
        let revalue_one = |item: &ListedInstrument, block: &mut [f64]| {
            let own;
            let shocks = match shocked.get(item.instrument.underlying()) {
                Some(s) => s.as_ref(),
                None => {
                    own = market
                        .underlying(item.instrument.underlying())
                        .and_then(|m| Shocked::new(scenarios, item.instrument.underlying(), m));
                    own.as_ref()
                }
            };
            revalue_into(item, market, scenarios, shocks, method, block)
        };
        let tracker = progress.map(|p| Tracker::start(p, RISK_ARRAYS_STAGE, listed.len()));
        let run = |(item, block): (&&ListedInstrument, &mut &mut [f64])| match &tracker {
            None => revalue_one(item, block),
            Some(t) => {
                t.check()?;
                let array = revalue_one(item, block);
                t.finish_one();
                array
            }
        };
        #[cfg(feature = "rayon")]
        let results: Vec<Result<(Settlement, f64)>> = {
            use rayon::prelude::*;
            listed
                .par_iter()
                .zip(blocks.par_iter_mut())
                .with_max_len(1)
                .map(run)
                .collect()
        };
        #[cfg(not(feature = "rayon"))]
        let results: Vec<Result<(Settlement, f64)>> =
            listed.iter().zip(blocks.iter_mut()).map(run).collect();
        drop(blocks);
        if let Some(t) = &tracker {
            t.outcome()?;
        }
        let results = results.into_iter().collect::<Result<Vec<_>>>()?;
        let storage = Arc::new(storage);
        let mut start = 0;
        let arrays: Vec<RiskArray> = listed
            .iter()
            .zip(results)
            .map(|(item, (settlement, base_value))| {
                let array = RiskArray {
                    id: item.id.clone(),
                    settlement,
                    base_value,
                    storage: Arc::clone(&storage),
                    start,
                    len: n,
                    quote_start: (settlement == Settlement::Inverse).then_some(start + n),
                };
                start += width(item);
                array
            })
            .collect();
        let index = arrays
            .iter()
            .enumerate()
            .map(|(k, a)| (a.id.clone(), k))
            .collect();
        Ok(RiskArrays {
            method,
            scenarios: scenarios.len(),
            arrays,
            index,
        })
    }

    /// The revaluation method used.
    pub fn method(&self) -> Revaluation {
        self.method
    }
    /// Number of scenarios (length of every array).
    pub fn scenarios(&self) -> usize {
        self.scenarios
    }
    /// All arrays, in the instrument set's order.
    pub fn arrays(&self) -> &[RiskArray] {
        &self.arrays
    }
    /// The array of one instrument.
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`] if it was not revalued.
    pub fn get(&self, id: &InstrumentId) -> Result<&RiskArray> {
        self.index
            .get(id)
            .and_then(|&k| self.arrays.get(k))
            .ok_or_else(|| Error::UnknownInstrument(id.clone()))
    }
}

/// The [`RiskArray`] of one instrument under every scenario of `scenarios`.
///
/// # Units
/// See [`RiskArray`] and, for the conventions, [`Revaluation`].
///
/// # Errors
/// All wrapped in [`Error::InInstrument`] naming the instrument:
/// - [`Error::MissingUnderlying`], [`Error::Expired`] (expired today), or
///   [`Error::InvalidInput`] for base market data outside the kernel's
///   domain;
/// - [`Error::InvalidShock`] naming the scenario and factor if a shocked
///   spot or volatility is not finite and positive, or a shocked rate or
///   carry yield not finite;
/// - [`Error::InvalidInput`] if shocked inputs leave the kernel's domain
///   (e.g. a vol above 1000%, a rate beyond 100%);
/// - [`Error::InvalidElement`] with the scenario index if a P&L is not
///   finite;
/// - [`Error::NonFiniteResult`] if the base value per contract (multiplier
///   included) overflows.
///
/// # Examples
/// See [`RiskArray`].
pub fn revalue(
    listed: &ListedInstrument,
    market: &MarketSnapshot,
    scenarios: &ScenarioSet,
    method: Revaluation,
) -> Result<RiskArray> {
    let shocks = market
        .underlying(listed.instrument.underlying())
        .and_then(|m| Shocked::new(scenarios, listed.instrument.underlying(), m));
    let n = scenarios.len();
    let inverse = listed.instrument.settlement() == Settlement::Inverse;
    let mut storage = vec![0.0; if inverse { 2 * n } else { n }];
    let (settlement, base_value) = revalue_into(
        listed,
        market,
        scenarios,
        shocks.as_ref(),
        method,
        &mut storage,
    )?;
    Ok(RiskArray {
        id: listed.id.clone(),
        settlement,
        base_value,
        storage: Arc::new(storage),
        start: 0,
        len: n,
        quote_start: inverse.then_some(n),
    })
}

/// One instrument's arrays into `out`: the native P&L, then (inverse
/// contracts) the quote P&L, each one entry per scenario. Returns the
/// settlement and the base value per contract.
fn revalue_into(
    listed: &ListedInstrument,
    market: &MarketSnapshot,
    scenarios: &ScenarioSet,
    shocks: std::result::Result<&Shocked, &Error>,
    method: Revaluation,
    out: &mut [f64],
) -> Result<(Settlement, f64)> {
    let wrap = |e: Error| Error::InInstrument {
        id: listed.id.clone(),
        source: Box::new(e),
    };
    let shocks = shocks.map_err(|e| wrap(e.clone()))?;
    revalue_inner(&listed.instrument, market, scenarios, shocks, method, out).map_err(wrap)
}

/// A book's P&L per scenario in the quote currency:
/// `sum over positions of quantity x quote array`, summed in position order
/// (the same bits on every run).
///
/// # Errors
/// [`Error::UnknownInstrument`] if a position's instrument has no array;
/// [`Error::NonFiniteResult`] if a sum overflows.
///
/// # Examples
/// See [`RiskArrays`].
pub fn portfolio_pnl(portfolio: &Portfolio, arrays: &RiskArrays) -> Result<Vec<f64>> {
    let mut total = vec![0.0; arrays.scenarios];
    for p in portfolio.positions() {
        let array = arrays.get(&p.instrument)?;
        let q = p.quantity;
        for (t, x) in total.iter_mut().zip(array.quote()) {
            *t += q * x;
        }
    }
    check_all_finite("portfolio P&L", &total)?;
    Ok(total)
}

/// Each position's P&L per scenario in the quote currency
/// (`quantity x quote array`), in position order: the input of
/// [`crate::attribute_risk`].
///
/// # Errors
/// As [`portfolio_pnl`].
///
/// # Examples
/// ```
/// # use portfolio_margin::*;
/// # let btc = UnderlyingId::new("BTC")?;
/// # let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
/// #     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.04, 0.0, VolSurface::flat(0.5)?)?)
/// #     .build()?;
/// # let scenarios = ScenarioSet::new(vec![(RiskFactor::Spot(btc.clone()), ShockKind::Log)], vec![-0.1, 0.1], YearFraction::ZERO)?;
/// let mut set = InstrumentSet::new();
/// set.insert(InstrumentId::new("PERP")?, Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let arrays = RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full)?;
/// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(InstrumentId::new("PERP")?, 3.0)], &set)?;
/// let per_position = position_pnl(&book, &arrays)?;
/// assert_eq!(per_position[0], portfolio_pnl(&book, &arrays)?);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn position_pnl(portfolio: &Portfolio, arrays: &RiskArrays) -> Result<Vec<Vec<f64>>> {
    portfolio
        .positions()
        .iter()
        .map(|p| {
            let array = arrays.get(&p.instrument)?;
            let pnl: Vec<f64> = array.quote().iter().map(|x| p.quantity * x).collect();
            check_all_finite("position P&L", &pnl)?;
            Ok(pnl)
        })
        .collect()
}

fn check_all_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().find(|x| !x.is_finite()) {
        Some(&value) => Err(Error::NonFiniteResult { what, value }),
        None => Ok(()),
    }
}

/// Writes the native P&L per contract into `out[..n]` and, for inverse
/// contracts, the quote P&L into `out[n..2n]` (`n` scenarios); returns the
/// settlement and the base value per contract.
fn revalue_inner(
    instrument: &Instrument,
    market: &MarketSnapshot,
    scenarios: &ScenarioSet,
    shocks: &Shocked,
    method: Revaluation,
    out: &mut [f64],
) -> Result<(Settlement, f64)> {
    let horizon_as_of = market.as_of().plus_years(scenarios.horizon());
    let settlement = instrument.settlement();
    let multiplier = instrument.multiplier();
    // Per unit, settlement currency: base value, then each scenario's value
    // (or P&L for the sensitivity method) with the shocked spot.
    let n = scenarios.len();
    let width = match settlement {
        Settlement::Linear => n,
        Settlement::Inverse => 2 * n,
    };
    if out.len() != width || shocks.len != n || shocks.spot.len() != n {
        return Err(Error::LengthMismatch {
            what: "risk array storage",
            expected: width,
            got: out.len(),
        });
    }
    let (native, quote) = out.split_at_mut(n);
    // Values (full) or P&L (sensitivity) per unit, then one pass to P&L per
    // contract, the quote-currency P&L and the finiteness check.
    let (base_value, offset) = match method {
        Revaluation::Full => {
            let base_value = match instrument {
                Instrument::Option(o) => full_option(o, market, shocks, horizon_as_of, native)?,
                _ => full_delta_one(instrument, market, shocks, horizon_as_of, native)?,
            };
            (base_value, base_value)
        }
        Revaluation::Sensitivity => {
            let base_value = sensitivity(
                instrument,
                market,
                shocks,
                horizon_as_of,
                scenarios.horizon().years(),
                native,
            )?;
            (base_value, 0.0)
        }
    };
    let finite = match settlement {
        Settlement::Linear => native.iter_mut().fold(true, |ok, v| {
            *v = multiplier * (*v - offset);
            ok & v.is_finite()
        }),
        // Valued at each scenario's shocked spot.
        Settlement::Inverse => native
            .iter_mut()
            .zip(quote.iter_mut().zip(&shocks.spot))
            .fold(true, |ok, (v, (q, s))| {
                *v = multiplier * (*v - offset);
                *q = *v * s;
                ok & v.is_finite() & q.is_finite()
            }),
    };
    if !finite {
        check_scenarios_finite(native)?;
        check_scenarios_finite(quote)?;
    }
    // Checked on its own: a multiplier can overflow the base value while
    // every P&L (a difference of equal values) stays finite.
    let base_value = multiplier * base_value;
    if !base_value.is_finite() {
        return Err(Error::NonFiniteResult {
            what: "risk array base value (multiplier x value per unit)",
            value: base_value,
        });
    }
    Ok((settlement, base_value))
}

/// [`non_finite`] for the first non-finite entry, checked without a branch
/// per entry (the loop vectorises).
fn check_scenarios_finite(values: &[f64]) -> Result<()> {
    if values.iter().fold(true, |ok, v| ok & v.is_finite()) {
        return Ok(());
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(non_finite(i, values[i])),
        None => Ok(()),
    }
}

fn non_finite(scenario: usize, value: f64) -> Error {
    Error::InvalidElement {
        what: "risk array P&L (scenario)",
        index: scenario,
        rule: "finite",
        value,
    }
}

/// Full revaluation of one option: writes each scenario's value per unit
/// (settlement currency) into `values` (one per scenario); returns today's
/// value per unit.
fn full_option(
    option: &OptionContract,
    market: &MarketSnapshot,
    shocks: &Shocked,
    horizon_as_of: crate::units::Timestamp,
    values: &mut [f64],
) -> Result<f64> {
    let base = option_inputs(option, market)?;
    let base_vol = base.vol();
    let inverse = option.settlement() == Settlement::Inverse;
    let years = horizon_as_of.years_until(option.expiry());
    let days = base.years() * 365.0;
    let n = shocks.len;
    if years <= 0.0 {
        // Expired within the horizon: intrinsic value on the shocked spot.
        let phi = option.kind().sign();
        let strike = option.strike();
        let vols = shocks.vols(base_vol, days)?;
        for (i, (slot, &vol)) in values.iter_mut().zip(&vols).enumerate() {
            let s = shocks.at(i, vol);
            let payoff = (phi * (s.spot - strike)).max(0.0);
            *slot = if inverse { payoff / s.spot } else { payoff };
        }
        let mut batch = OptionBatch::with_capacity(1);
        batch.push(&base);
        let mut out = Vec::with_capacity(1);
        batch.values(&mut out)?;
        let v0 = out.first().copied().unwrap_or(f64::NAN);
        return Ok(if inverse { v0 / base.underlying() } else { v0 });
    }
    let vols = shocks.vols(base_vol, days)?;
    if let Some(v0) = full_option_scenarios(option, &base, shocks, years, &vols, values)? {
        return Ok(v0);
    }
    // Some shocked input is outside the kernel's domain: one batch row per
    // scenario, each checked, so that the error names the scenario.
    // Row 0: today's inputs, so an unmoved scenario gives exactly zero.
    let mut batch = OptionBatch::with_capacity(n + 1);
    batch.push(&base);
    // Forward growth as UnderlyingMarket::forward; the same bits in every
    // scenario when neither rate nor carry yield is shocked.
    let fixed_growth = ((shocks.base.rate - shocks.base.carry) * years).exp();
    let carry_fixed = shocks.carry_fixed();
    // Contract terms at the horizon (today's market numbers are placeholders).
    let terms = BsInputs::new(
        option.kind(),
        option.model(),
        base.underlying(),
        option.strike(),
        years,
        base.vol(),
        base.rate(),
        base.carry_yield(),
    )?;
    let (lowest, highest) = (MIN_PRICE, MAX_PRICE);
    // Fast path: whole columns, checked with the cheap domain test.
    fn column(v: &Option<Vec<f64>>, base: f64, n: usize) -> std::borrow::Cow<'_, [f64]> {
        match v {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => std::borrow::Cow::Owned(vec![base; n]),
        }
    }
    let rates = column(&shocks.rate, shocks.base.rate, n);
    let carries = column(&shocks.carry, shocks.base.carry, n);
    let forwards: Vec<f64> = match option.model() {
        OptionModel::BlackScholesMerton => shocks.spot.clone(),
        OptionModel::Black76 if carry_fixed => {
            shocks.spot.iter().map(|s| s * fixed_growth).collect()
        }
        OptionModel::Black76 => shocks
            .spot
            .iter()
            .zip(rates.iter().zip(carries.iter()))
            .map(|(s, (r, q))| s * ((r - q) * years).exp())
            .collect(),
    };
    let all_in_domain = forwards
        .iter()
        .zip(&vols)
        .zip(rates.iter().zip(carries.iter()))
        .all(|((u, v), (r, q))| {
            *u >= lowest
                && *u <= highest
                && *v >= MIN_VOLATILITY
                && *v <= MAX_VOLATILITY
                && r.abs() <= MAX_ABS_RATE
                && q.abs() <= MAX_ABS_RATE
        });
    let mut underlyings = Vec::new();
    if all_in_domain && forwards.len() == n && vols.len() == n {
        batch.extend_shocked(&terms, &forwards, &vols, &rates, &carries);
        if inverse {
            underlyings = forwards;
        }
    } else {
        underlyings.reserve(if inverse { n } else { 0 });
    }
    let slow = batch.len() == 1;
    for (i, &vol) in vols.iter().enumerate().filter(|_| slow) {
        let s = shocks.at(i, vol);
        let underlying = match option.model() {
            OptionModel::BlackScholesMerton => s.spot,
            OptionModel::Black76 if carry_fixed => s.spot * fixed_growth,
            OptionModel::Black76 => s.spot * ((s.rate - s.carry) * years).exp(),
        };
        // Cheap domain test of BsInputs::new (spot, vol, rate and carry are
        // already finite, spot and vol positive); anything it rejects goes
        // through the full validation, which names the broken rule.
        let in_domain = underlying >= lowest
            && underlying <= highest
            && s.vol >= MIN_VOLATILITY
            && s.vol <= MAX_VOLATILITY
            && s.rate.abs() <= MAX_ABS_RATE
            && s.carry.abs() <= MAX_ABS_RATE;
        if in_domain {
            batch.push_shocked(&terms, underlying, s.vol, s.rate, s.carry);
        } else {
            let inputs = BsInputs::new(
                option.kind(),
                option.model(),
                underlying,
                option.strike(),
                years,
                s.vol,
                s.rate,
                s.carry,
            )
            .map_err(|e| match e {
                Error::InvalidInput { what, rule, value } => Error::InvalidShock {
                    scenario: i,
                    factor: shocks.blame(what),
                    what,
                    rule,
                    value,
                },
                other => other,
            })?;
            batch.push(&inputs);
        }
        if inverse {
            underlyings.push(underlying);
        }
    }
    let mut out = Vec::with_capacity(n + 1);
    batch.values(&mut out)?;
    let (v0, rest) = out.split_first().ok_or(Error::TooFew {
        what: "batch values",
        min: 1,
        got: 0,
    })?;
    if rest.len() != values.len() {
        return Err(Error::LengthMismatch {
            what: "batch values",
            expected: values.len(),
            got: rest.len(),
        });
    }
    if inverse {
        for (slot, (v, u)) in values.iter_mut().zip(rest.iter().zip(&underlyings)) {
            *slot = v / u;
        }
        Ok(v0 / base.underlying())
    } else {
        values.copy_from_slice(rest);
        Ok(*v0)
    }
}

/// Full revaluation of one (unexpired) option through the scenario kernel
/// ([`scenario_values`]): the contract terms, and the rate and carry yield
/// when no scenario shocks them, are taken out of the loop over scenarios.
/// Writes the values per unit (settlement currency) into `values` (one per
/// scenario) and returns today's value through the same kernel, so that an
/// unmoved scenario at zero horizon gives exactly zero P&L. `Ok(None)`
/// (nothing written) if some shocked input is outside the kernel's domain.
fn full_option_scenarios(
    option: &OptionContract,
    base: &BsInputs,
    shocks: &Shocked,
    years: f64,
    vols: &[f64],
    values: &mut [f64],
) -> Result<Option<f64>> {
    let n = shocks.len;
    let black76 = option.model() == OptionModel::Black76;
    let (rate0, carry0) = (shocks.base.rate, shocks.base.carry);
    fn column(v: &Option<Vec<f64>>, base: f64, n: usize) -> std::borrow::Cow<'_, [f64]> {
        match v {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => std::borrow::Cow::Owned(vec![base; n]),
        }
    }
    let per_scenario = if shocks.carry_fixed() {
        None
    } else {
        Some((
            column(&shocks.rate, rate0, n),
            column(&shocks.carry, carry0, n),
        ))
    };
    // The cheap domain test of BsInputs::new on every shocked input (spot,
    // vol, rate and carry yield are already finite, spot and vol positive),
    // without a branch per scenario.
    let in_range =
        |v: &[f64], lo: f64, hi: f64| v.iter().fold(true, |ok, x| ok & (*x >= lo) & (*x <= hi));
    let mut in_domain = vols.len() == n
        && values.len() == n
        && shocks.spot.len() == n
        && in_range(vols, MIN_VOLATILITY, MAX_VOLATILITY);
    // The model's underlying: the spot, or the forward to the horizon's
    // expiry for Black-76; 1 / underlying converts inverse contracts.
    let inverse_growth: Option<Vec<f64>> = match (&per_scenario, black76) {
        (_, false) => {
            in_domain &= shocks.spot_range.0 >= MIN_PRICE && shocks.spot_range.1 <= MAX_PRICE;
            None
        }
        (None, true) => {
            let growth = ((rate0 - carry0) * years).exp();
            in_domain &= shocks.spot_range.0 * growth >= MIN_PRICE
                && shocks.spot_range.1 * growth <= MAX_PRICE;
            Some(vec![1.0 / growth])
        }
        (Some((rates, carries)), true) => {
            let growth: Vec<f64> = rates
                .iter()
                .zip(carries.iter())
                .map(|(r, q)| ((r - q) * years).exp())
                .collect();
            let forwards: Vec<f64> = shocks
                .spot
                .iter()
                .zip(&growth)
                .map(|(s, g)| s * g)
                .collect();
            in_domain &= in_range(&forwards, MIN_PRICE, MAX_PRICE);
            Some(growth.iter().map(|g| 1.0 / g).collect())
        }
    };
    if let Some((rates, carries)) = &per_scenario {
        in_domain &= in_range(rates, -MAX_ABS_RATE, MAX_ABS_RATE)
            && in_range(carries, -MAX_ABS_RATE, MAX_ABS_RATE);
    }
    if !in_domain {
        return Ok(None);
    }
    let terms = |years: f64| ScenarioOption {
        kind: option.kind(),
        strike: option.strike(),
        years,
        reference_spot: shocks.base.spot,
    };
    let rates = match &per_scenario {
        None => ScenarioRates::Fixed {
            rate: rate0,
            carry_yield: carry0,
        },
        Some((rates, carries)) => ScenarioRates::PerScenario {
            rate: rates,
            carry_yield: carries,
        },
    };
    let out = values;
    let scenario_market = ScenarioMarket {
        spot: &shocks.spot,
        inverse_spot: &shocks.inverse_spot,
        log_spot: &shocks.log_spot,
        vol: vols,
        rates,
    };
    scenario_values(&terms(years), &scenario_market, out)?;
    // Today: the same kernel, in the same mode, on today's numbers.
    let (spot0, inverse_spot0) = (shocks.base.spot, 1.0 / shocks.base.spot);
    let rates0 = match rates {
        ScenarioRates::Fixed { .. } => rates,
        ScenarioRates::PerScenario { .. } => ScenarioRates::PerScenario {
            rate: std::slice::from_ref(&rate0),
            carry_yield: std::slice::from_ref(&carry0),
        },
    };
    let mut v0 = 0.0;
    scenario_values(
        &terms(base.years()),
        &ScenarioMarket {
            spot: std::slice::from_ref(&spot0),
            inverse_spot: std::slice::from_ref(&inverse_spot0),
            log_spot: &[0.0],
            vol: std::slice::from_ref(&base.vol()),
            rates: rates0,
        },
        std::slice::from_mut(&mut v0),
    )?;
    if option.settlement() == Settlement::Inverse {
        // Coins: the value over the model's underlying.
        let inverse_growth0 = if black76 {
            1.0 / ((rate0 - carry0) * base.years()).exp()
        } else {
            1.0
        };
        match inverse_growth.as_deref() {
            None => out
                .iter_mut()
                .zip(&shocks.inverse_spot)
                .for_each(|(v, u)| *v *= u),
            Some([g]) => out
                .iter_mut()
                .zip(&shocks.inverse_spot)
                .for_each(|(v, u)| *v *= u * g),
            Some(g) => out
                .iter_mut()
                .zip(shocks.inverse_spot.iter().zip(g))
                .for_each(|(v, (u, g))| *v *= u * g),
        }
        v0 *= inverse_spot0 * inverse_growth0;
    }
    Ok(Some(v0))
}

/// Full revaluation of a spot holding, future or perpetual (as
/// `crate::pricing`'s delta-one Greeks): values per unit into `values`.
fn full_delta_one(
    instrument: &Instrument,
    market: &MarketSnapshot,
    shocks: &Shocked,
    horizon_as_of: crate::units::Timestamp,
    values: &mut [f64],
) -> Result<f64> {
    let settlement = instrument.settlement();
    let value = |spot: f64, carry: f64, years: f64| {
        let growth = (carry * years).exp();
        match settlement {
            Settlement::Linear => spot * growth,
            Settlement::Inverse => (-1.0 / growth) / spot,
        }
    };
    let (years0, years1) = match instrument {
        Instrument::Future(f) => {
            let years0 = market.years_to(f.expiry());
            if years0 <= 0.0 {
                return Err(Error::Expired {
                    expiry_millis: f.expiry().millis(),
                    as_of_millis: market.as_of().millis(),
                });
            }
            // Expired within the horizon: settled at the shocked spot.
            (years0, horizon_as_of.years_until(f.expiry()).max(0.0))
        }
        _ => (0.0, 0.0),
    };
    let dated = years0 > 0.0;
    let base = shocks.base;
    let base_value = value(
        base.spot,
        if dated { base.rate - base.carry } else { 0.0 },
        years0,
    );
    for (i, slot) in values.iter_mut().enumerate() {
        let s = shocks.at(i, 0.0);
        let carry = if dated { s.rate - s.carry } else { 0.0 };
        *slot = value(s.spot, carry, years1);
    }
    Ok(base_value)
}

/// Sensitivity (Taylor) P&L per unit into `pnl`; returns today's value.
fn sensitivity(
    instrument: &Instrument,
    market: &MarketSnapshot,
    shocks: &Shocked,
    horizon_as_of: crate::units::Timestamp,
    horizon: f64,
    pnl: &mut [f64],
) -> Result<f64> {
    let g = instrument_greeks(instrument, market)?;
    let native = g.native;
    // Base vol and, for Black-76, the aged time to expiry of the forward.
    let (base_vol, forward_years) = match instrument {
        Instrument::Option(o) => {
            let inputs = option_inputs(o, market)?;
            let years = match o.model() {
                OptionModel::Black76 => {
                    let years = horizon_as_of.years_until(o.expiry()).max(0.0);
                    let growth = ((shocks.base.rate - shocks.base.carry) * years).exp();
                    Some((years, growth))
                }
                OptionModel::BlackScholesMerton => None,
            };
            (Some(inputs.vol()), years)
        }
        _ => (None, None),
    };
    let base = shocks.base;
    let carry_fixed = shocks.carry_fixed();
    let days = match instrument {
        Instrument::Option(o) => market.years_to(o.expiry()) * 365.0,
        _ => 0.0,
    };
    let vols = match base_vol {
        Some(v) => Some(shocks.vols(v, days)?),
        None => None,
    };
    for (i, slot) in pnl.iter_mut().enumerate() {
        let vol = vols.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(0.0);
        let s = shocks.at(i, vol);
        let du = match forward_years {
            Some((_, growth)) if carry_fixed => s.spot * growth - g.underlying_price,
            Some((years, _)) => s.spot * ((s.rate - s.carry) * years).exp() - g.underlying_price,
            None => s.spot - base.spot,
        };
        let dvol = base_vol.map_or(0.0, |v| s.vol - v);
        let dr = s.rate - base.rate;
        *slot = native.delta * du
            + 0.5 * native.gamma * du * du
            + native.vega * dvol
            + native.vanna * du * dvol
            + 0.5 * native.volga * dvol * dvol
            + native.theta * horizon
            + native.rho * dr;
    }
    Ok(native.value)
}

/// One underlying's market numbers after a scenario.
#[derive(Debug, Clone, Copy)]
struct State {
    spot: f64,
    vol: f64,
    rate: f64,
    carry: f64,
}

/// One underlying's shocked numbers in every scenario, computed and
/// validated once and shared by every instrument on it.
struct Shocked {
    len: usize,
    base: State,
    spot: Vec<f64>,
    /// `1 / spot` and `ln(spot / base spot)` per scenario, and the smallest
    /// and largest spot: what the option kernel needs, computed once.
    inverse_spot: Vec<f64>,
    log_spot: Vec<f64>,
    spot_range: (f64, f64),
    /// `None`: the set does not shock it (every scenario has the base value).
    rate: Option<Vec<f64>>,
    carry: Option<Vec<f64>>,
    /// Vol shock: kind, per-scenario parameter (`size`, `1 + size` or
    /// `exp(size)`, so that applying it gives the bits of
    /// [`ShockKind::apply`]) and the factor.
    vol: Option<(ShockKind, Vec<f64>, RiskFactor)>,
    /// Vol shocks scaled by time to expiry: the scaling and the raw sizes.
    vol_term: Option<(crate::scenario::VolTermScaling, Vec<f64>)>,
    spot_factor: RiskFactor,
}

impl Shocked {
    fn new(
        scenarios: &ScenarioSet,
        underlying: &UnderlyingId,
        m: &UnderlyingMarket,
    ) -> Result<Self> {
        let columns = scenarios.columns_for(underlying);
        let len = scenarios.len();
        let column = |j: Option<usize>| -> Option<(ShockKind, RiskFactor, Vec<f64>)> {
            let j = j?;
            let (factor, kind) = scenarios.factors().get(j)?;
            Some((*kind, factor.clone(), scenarios.column(j).collect()))
        };
        let shocked = |j: Option<usize>,
                       base: f64,
                       what: &'static str,
                       positive: bool|
         -> Result<Option<Vec<f64>>> {
            let Some((kind, factor, sizes)) = column(j) else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(len);
            for (i, size) in sizes.into_iter().enumerate() {
                let v = kind.apply(base, size);
                if !v.is_finite() || (positive && v <= 0.0) {
                    return Err(Error::InvalidShock {
                        scenario: i,
                        factor,
                        what,
                        rule: if positive { "finite and > 0" } else { "finite" },
                        value: v,
                    });
                }
                out.push(v);
            }
            Ok(Some(out))
        };
        let spot = shocked(columns.spot, m.spot(), "shocked spot", true)?
            .unwrap_or_else(|| vec![m.spot(); len]);
        let rate = shocked(columns.rate, m.rate(), "shocked rate", false)?;
        let carry = shocked(
            columns.carry_yield,
            m.carry_yield(),
            "shocked carry yield",
            false,
        )?;
        let vol_term = match (scenarios.vol_term_scaling(), column(columns.vol)) {
            (Some(scaling), Some((_, _, sizes))) => Some((*scaling, sizes)),
            _ => None,
        };
        let vol = column(columns.vol).map(|(kind, factor, sizes)| {
            let params = sizes
                .into_iter()
                .map(|size| match kind {
                    ShockKind::Absolute => size,
                    ShockKind::Relative => 1.0 + size,
                    ShockKind::Log => size.exp(),
                })
                .collect();
            (kind, params, factor)
        });
        let inverse_spot = spot.iter().map(|s| 1.0 / s).collect();
        let log_spot = spot
            .iter()
            .map(|s| crate::math::fast::ln_with::<false>(s / m.spot()))
            .collect();
        let spot_range = spot
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(*s), hi.max(*s))
            });
        Ok(Shocked {
            len,
            base: State {
                spot: m.spot(),
                vol: 0.0,
                rate: m.rate(),
                carry: m.carry_yield(),
            },
            spot,
            inverse_spot,
            log_spot,
            spot_range,
            rate,
            carry,
            vol,
            vol_term,
            spot_factor: RiskFactor::Spot(underlying.clone()),
        })
    }

    /// True when neither the rate nor the carry yield is shocked.
    fn carry_fixed(&self) -> bool {
        self.rate.is_none() && self.carry.is_none()
    }

    /// The risk factor to name for a kernel input that failed validation.
    fn blame(&self, what: &str) -> RiskFactor {
        let chosen = match what {
            "volatility" => self.vol.as_ref().map(|v| v.2.clone()),
            "rate" if self.rate.is_some() => {
                Some(RiskFactor::Rate(self.spot_factor.underlying().clone()))
            }
            "carry yield" if self.carry.is_some() => Some(RiskFactor::CarryYield(
                self.spot_factor.underlying().clone(),
            )),
            _ => None,
        };
        chosen.unwrap_or_else(|| self.spot_factor.clone())
    }

    /// An option's sticky-strike vol `base_vol` under every scenario's vol
    /// shock (scaled by the option's `days` to expiry today if the set has a
    /// [`crate::VolTermScaling`]), checked finite and positive.
    fn vols(&self, base_vol: f64, days: f64) -> Result<Vec<f64>> {
        let Some((kind, params, factor)) = &self.vol else {
            return Ok(vec![base_vol; self.len]);
        };
        let vols: Vec<f64> = match (&self.vol_term, kind) {
            (Some((scaling, sizes)), _) => {
                let factor = scaling.factor(days);
                sizes
                    .iter()
                    .map(|&size| scaling.shocked_vol_with_factor(*kind, base_vol, size, factor))
                    .collect()
            }
            (None, ShockKind::Absolute) => params.iter().map(|p| base_vol + p).collect(),
            (None, ShockKind::Relative | ShockKind::Log) => {
                params.iter().map(|p| base_vol * p).collect()
            }
        };
        // One branch-free pass in the common case (every vol finite and
        // positive); the position of the offender is looked up only on failure.
        let all_ok = vols
            .iter()
            .fold(true, |ok, v| ok & (*v > 0.0) & (*v <= f64::MAX));
        if all_ok {
            return Ok(vols);
        }
        match vols.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
            Some(i) => Err(Error::InvalidShock {
                scenario: i,
                factor: factor.clone(),
                what: "shocked volatility",
                rule: "finite and > 0",
                value: vols.get(i).copied().unwrap_or(f64::NAN),
            }),
            None => Ok(vols),
        }
    }

    /// The (already validated) shocked numbers of scenario `i`, with `vol`
    /// taken from [`Shocked::vols`] (0 where irrelevant).
    #[inline]
    fn at(&self, i: usize, vol: f64) -> State {
        let pick = |v: &Option<Vec<f64>>, base: f64| match v {
            Some(v) => v.get(i).copied().unwrap_or(base),
            None => base,
        };
        State {
            spot: self.spot.get(i).copied().unwrap_or(self.base.spot),
            vol,
            rate: pick(&self.rate, self.base.rate),
            carry: pick(&self.carry, self.base.carry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::{OptionKind, PerpetualContract};
    use crate::market::VolSurface;
    use crate::units::{Timestamp, YearFraction};

    fn btc() -> UnderlyingId {
        UnderlyingId::new("BTC").unwrap()
    }

    fn market() -> MarketSnapshot {
        MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap())
            .underlying(
                btc(),
                UnderlyingMarket::new(100_000.0, 0.04, 0.01, VolSurface::flat(0.5).unwrap())
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn precomputed_vol_shocks_match_shock_kind_apply_bitwise() {
        let m = market();
        for kind in [ShockKind::Absolute, ShockKind::Relative, ShockKind::Log] {
            let sizes = vec![-0.3, -0.01, 0.0, 0.123_456_789, 0.7];
            let set = ScenarioSet::new(
                vec![(RiskFactor::Vol(btc()), kind)],
                sizes.clone(),
                YearFraction::ZERO,
            )
            .unwrap();
            let shocked = Shocked::new(&set, &btc(), m.underlying(&btc()).unwrap()).unwrap();
            let vols = shocked.vols(0.55, 30.0).unwrap();
            for (i, size) in sizes.iter().enumerate() {
                let s = shocked.at(i, vols[i]);
                assert_eq!(s.vol.to_bits(), kind.apply(0.55, *size).to_bits());
                assert_eq!(s.spot, 100_000.0);
            }
        }
    }

    /// Options of every model, settlement and kind on BTC, 2 to 200 days.
    fn option_book() -> Vec<ListedInstrument> {
        let mut out = Vec::new();
        let as_of = market().as_of();
        for (k, strike) in [60_000.0, 95_000.0, 100_000.0, 130_000.0]
            .iter()
            .enumerate()
        {
            for kind in [OptionKind::Call, OptionKind::Put] {
                for model in [OptionModel::BlackScholesMerton, OptionModel::Black76] {
                    for settlement in [Settlement::Linear, Settlement::Inverse] {
                        let days = [2.0, 30.0, 90.0, 200.0][k];
                        let expiry = as_of.plus_years(YearFraction::new(days / 365.0).unwrap());
                        let option = OptionContract::new(btc(), kind, *strike, expiry)
                            .unwrap()
                            .with_model(model)
                            .with_settlement(settlement);
                        out.push(ListedInstrument {
                            id: InstrumentId::new(format!("O{}", out.len())).unwrap(),
                            instrument: Instrument::Option(option),
                        });
                    }
                }
            }
        }
        out
    }

    /// Spot and vol shocks only (rate and carry yield fixed: the scenario
    /// kernel's fast mode), against repricing each applied snapshot.
    #[test]
    fn full_revaluation_with_fixed_rates_equals_price_on_applied_snapshot() {
        let m = market();
        let mut sizes = Vec::new();
        for i in 0..40 {
            let x = f64::from(i) / 40.0;
            sizes.push(0.6 * (x - 0.5));
            sizes.push(0.8 * (0.5 - x * x));
        }
        let set = ScenarioSet::new(
            vec![
                (RiskFactor::Spot(btc()), ShockKind::Log),
                (RiskFactor::Vol(btc()), ShockKind::Relative),
            ],
            sizes,
            YearFraction::new(1.0 / 365.0).unwrap(),
        )
        .unwrap();
        let mut worst: f64 = 0.0;
        for item in option_book() {
            let a = revalue(&item, &m, &set, Revaluation::Full).unwrap();
            let v0 = crate::price(&item.instrument, &m).unwrap();
            assert!(
                (a.base_value() - v0).abs() <= 1e-13 * v0.abs(),
                "{}",
                item.id
            );
            for i in 0..set.len() {
                let shocked = set.apply(i, &m).unwrap();
                let v1 = crate::price(&item.instrument, &shocked).unwrap();
                let err = (a.native()[i] - (v1 - v0)).abs() / v0.abs().max(v1.abs());
                worst = worst.max(err);
                assert!(err <= 1e-12, "{} scenario {i}: {err:e}", item.id);
            }
        }
        assert!(worst > 0.0 && worst <= 1e-12);
    }

    #[test]
    fn unmoved_scenario_with_fixed_rates_gives_zero_pnl() {
        let m = market();
        let set = ScenarioSet::new(
            vec![
                (RiskFactor::Spot(btc()), ShockKind::Log),
                (RiskFactor::Vol(btc()), ShockKind::Absolute),
            ],
            vec![0.1, 0.0, 0.0, 0.0, -0.2, 0.05],
            YearFraction::ZERO,
        )
        .unwrap();
        for item in option_book() {
            let a = revalue(&item, &m, &set, Revaluation::Full).unwrap();
            assert_eq!(a.native()[1], 0.0, "{}", item.id);
            assert_eq!(a.quote()[1], 0.0, "{}", item.id);
            assert_ne!(a.native()[0], 0.0, "{}", item.id);
        }
    }

    #[test]
    fn single_instrument_revaluation_and_lookup() {
        let m = market();
        let set = ScenarioSet::new(
            vec![(RiskFactor::Spot(btc()), ShockKind::Relative)],
            vec![-0.5, 0.25],
            YearFraction::ZERO,
        )
        .unwrap();
        let perp = ListedInstrument {
            id: InstrumentId::new("P").unwrap(),
            instrument: Instrument::Perpetual(
                PerpetualContract::new(btc())
                    .with_multiplier(10.0)
                    .unwrap()
                    .with_settlement(Settlement::Inverse),
            ),
        };
        let a = revalue(&perp, &m, &set, Revaluation::Full).unwrap();
        // Coin P&L of 10 USD face long: 10 (1/S0 - 1/S1).
        assert!((a.native()[0] - 10.0 * (1.0 / 100_000.0 - 1.0 / 50_000.0)).abs() < 1e-18);
        assert!((a.quote()[1] - a.native()[1] * 125_000.0).abs() < 1e-15);
        assert_eq!(a.base_value(), -10.0 / 100_000.0);
        assert_eq!((a.len(), a.is_empty()), (2, false));
        let mut instruments = InstrumentSet::new();
        instruments
            .insert(perp.id.clone(), perp.instrument.clone())
            .unwrap();
        let arrays = RiskArrays::compute(&instruments, &m, &set, Revaluation::Full).unwrap();
        assert_eq!(arrays.get(&perp.id).unwrap(), &a);
        assert_eq!(arrays.scenarios(), 2);
        assert_eq!(arrays.method(), Revaluation::Full);
        assert!(matches!(
            arrays.get(&InstrumentId::new("X").unwrap()),
            Err(Error::UnknownInstrument(_))
        ));
    }

    #[test]
    fn expired_option_is_an_error_naming_the_instrument() {
        let m = market();
        let set = ScenarioSet::new(
            vec![(RiskFactor::Spot(btc()), ShockKind::Log)],
            vec![0.0],
            YearFraction::ZERO,
        )
        .unwrap();
        let old = ListedInstrument {
            id: InstrumentId::new("OLD").unwrap(),
            instrument: Instrument::Option(
                OptionContract::new(btc(), OptionKind::Call, 1.0, m.as_of()).unwrap(),
            ),
        };
        match revalue(&old, &m, &set, Revaluation::Full) {
            Err(Error::InInstrument { id, source }) => {
                assert_eq!(id.as_str(), "OLD");
                assert!(matches!(*source, Error::Expired { .. }));
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn risk_array_serializes_its_own_slices() {
        let m = market();
        let set = ScenarioSet::new(
            vec![(RiskFactor::Spot(btc()), ShockKind::Relative)],
            vec![-0.5, 0.25],
            YearFraction::ZERO,
        )
        .unwrap();
        let mut instruments = InstrumentSet::new();
        for (name, settlement) in [("L", Settlement::Linear), ("I", Settlement::Inverse)] {
            let perp = PerpetualContract::new(btc()).with_settlement(settlement);
            instruments
                .insert(
                    InstrumentId::new(name).unwrap(),
                    Instrument::Perpetual(perp),
                )
                .unwrap();
        }
        let arrays = RiskArrays::compute(&instruments, &m, &set, Revaluation::Full).unwrap();
        for a in arrays.arrays() {
            let json = serde_json::to_value(a).unwrap();
            assert_eq!(json["native"], serde_json::json!(a.native()));
            let quote = match a.settlement() {
                Settlement::Linear => serde_json::Value::Null,
                Settlement::Inverse => serde_json::json!(a.quote()),
            };
            assert_eq!(json["quote"], quote);
            assert_eq!(json["base_value"], serde_json::json!(a.base_value()));
            assert_eq!(json.as_object().unwrap().len(), 5);
            // Debug shows this array only, not the shared storage.
            assert_eq!(format!("{a:?}").matches("native").count(), 1, "{a:?}");
        }
        // Arrays of one computation share storage; equality is by content.
        let l = arrays.get(&InstrumentId::new("L").unwrap()).unwrap();
        let alone = revalue(
            &instruments.iter().next().unwrap().clone(),
            &m,
            &set,
            Revaluation::Full,
        )
        .unwrap();
        assert_eq!(&alone, arrays.get(alone.id()).unwrap());
        assert_eq!(l.len(), 2);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn revaluation_serde_names() {
        assert_eq!(
            serde_json::to_string(&Revaluation::Sensitivity).unwrap(),
            "\"sensitivity\""
        );
        let back: Revaluation = serde_json::from_str("\"full\"").unwrap();
        assert_eq!(back, Revaluation::Full);
    }

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RiskArray>();
        check::<RiskArrays>();
    }
}
