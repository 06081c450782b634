//! Liquidation plans: which positions to close, in which order, to restore
//! an account's health while closing as little as possible.
//!
//! The planner is greedy. At each step it tries closing one lot of every
//! open position, re-margins each candidate book through the caller's
//! margin function (so it works with every methodology), and takes the
//! reduction with the greatest maintenance-margin relief per unit of
//! notional closed (ties go to the earlier position). Reductions that do
//! not lower maintenance margin (closing a hedge) are never taken. When no
//! single reduction helps, it can reduce every open position by one lot at
//! once ([`HedgedUnwind::ProRata`]), which unwinds hedged books without
//! breaking their hedges. It stops when the health factor reaches the
//! target, when nothing lowers margin any more, or after
//! [`LiquidationPolicy::max_steps`] steps.
//!
//! Closing at mark leaves **equity unchanged**: a future's or perpetual's
//! P&L is already settled into balances, and an option closed at its mark
//! turns its premium into cash of the same value. Only the margin moves.

use crate::collateral::finite_result;
use crate::collateral::health::{Account, HealthBands, HealthState};
use crate::error::{Error, Result, positive};
use crate::instrument::{Instrument, InstrumentId, Settlement};
use crate::margin::MarginRequirement;
use crate::market::MarketSnapshot;
use crate::portfolio::{Portfolio, Position};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Default health factor a liquidation restores: 1.25 (the default
/// warning threshold, so the account ends [`HealthStatus::Healthy`](crate::HealthStatus::Healthy)).
pub const DEFAULT_LIQUIDATION_TARGET: f64 = 1.25;
/// Default lot: 25% of each position's original size.
pub const DEFAULT_LOT_FRACTION: f64 = 0.25;
/// Default bound on the number of steps of a plan.
pub const DEFAULT_MAX_STEPS: usize = 1_000;
/// Largest [`LiquidationPolicy::max_steps`] accepted.
pub const MAX_LIQUIDATION_STEPS: usize = 1_000_000;
/// A reduction relieves margin only if it lowers maintenance margin by more
/// than this fraction of the current maintenance margin (relative; guards
/// against rounding noise counting as relief).
pub const MIN_RELATIVE_RELIEF: f64 = 1e-12;
/// A remaining position within this fraction (relative) above one lot is
/// closed whole, so repeated fractional lots do not leave dust.
const LOT_SNAP: f64 = 1e-9;

/// How much of a position one step closes.
///
/// The last lot of a position closes whatever remains (a remainder within
/// `1e-9` relative of a lot is closed whole).
///
/// ```
/// use portfolio_margin::LotSize;
/// let quarter = LotSize::FractionOfPosition(0.25); // 4 steps close a position
/// let one = LotSize::Contracts(1.0);
/// assert_ne!(quarter, one);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum LotSize {
    /// A fraction of the position's size at the start of the plan, in
    /// `(0, 1]`.
    FractionOfPosition(f64),
    /// A number of contracts, finite and `> 0`.
    Contracts(f64),
}

/// What to do when no single-position reduction lowers maintenance margin
/// but the target is not reached (a book of hedged pairs).
///
/// ```
/// use portfolio_margin::HedgedUnwind;
/// assert_eq!(HedgedUnwind::default(), HedgedUnwind::ProRata);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HedgedUnwind {
    /// Reduce every open position by one lot in the same step (hedges are
    /// unwound together with what they hedge), if that lowers margin.
    #[default]
    ProRata,
    /// Stop: the remaining book is kept.
    Keep,
}

/// How a liquidation plan is built: the target health factor, the lot
/// size, the hedged-book rule and a bound on the number of steps.
///
/// Defaults: target [`DEFAULT_LIQUIDATION_TARGET`] (1.25), lots of
/// [`DEFAULT_LOT_FRACTION`] (25%) of each position, [`HedgedUnwind::ProRata`],
/// at most [`DEFAULT_MAX_STEPS`] (1000) steps.
///
/// ```
/// use portfolio_margin::{HedgedUnwind, LiquidationPolicy, LotSize};
/// let policy = LiquidationPolicy::new(1.5, LotSize::Contracts(1.0), HedgedUnwind::Keep, 50)?;
/// assert_eq!(policy.target(), 1.5);
/// assert!(LiquidationPolicy::new(1.5, LotSize::FractionOfPosition(1.5), HedgedUnwind::Keep, 50).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::LiquidationPolicy", into = "raw::LiquidationPolicy")
)]
pub struct LiquidationPolicy {
    target: f64,
    lot: LotSize,
    hedged_unwind: HedgedUnwind,
    max_steps: usize,
}

impl Default for LiquidationPolicy {
    fn default() -> Self {
        LiquidationPolicy {
            target: DEFAULT_LIQUIDATION_TARGET,
            lot: LotSize::FractionOfPosition(DEFAULT_LOT_FRACTION),
            hedged_unwind: HedgedUnwind::ProRata,
            max_steps: DEFAULT_MAX_STEPS,
        }
    }
}

impl LiquidationPolicy {
    /// A policy.
    ///
    /// # Units
    /// `target` a health factor (equity / maintenance margin).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `target` is not finite and `> 0`, the lot
    /// fraction is not in `(0, 1]`, the lot in contracts is not finite and
    /// `> 0`, or `max_steps` is not in `1..=`[`MAX_LIQUIDATION_STEPS`].
    pub fn new(
        target: f64,
        lot: LotSize,
        hedged_unwind: HedgedUnwind,
        max_steps: usize,
    ) -> Result<Self> {
        positive("liquidation target health factor", target)?;
        match lot {
            LotSize::FractionOfPosition(f) => {
                if !(f > 0.0 && f <= 1.0) {
                    return Err(Error::InvalidInput {
                        what: "lot fraction of position",
                        rule: "in (0, 1]",
                        value: f,
                    });
                }
            }
            LotSize::Contracts(n) => {
                positive("lot contracts", n)?;
            }
        }
        if !(1..=MAX_LIQUIDATION_STEPS).contains(&max_steps) {
            return Err(Error::InvalidInput {
                what: "liquidation max steps",
                rule: "in 1..=1_000_000",
                value: max_steps as f64,
            });
        }
        Ok(LiquidationPolicy {
            target,
            lot,
            hedged_unwind,
            max_steps,
        })
    }

    /// Health factor the plan restores.
    pub fn target(&self) -> f64 {
        self.target
    }
    /// Lot size of one reduction.
    pub fn lot(&self) -> LotSize {
        self.lot
    }
    /// What to do with a hedged remainder.
    pub fn hedged_unwind(&self) -> HedgedUnwind {
        self.hedged_unwind
    }
    /// Largest number of steps.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }
}

/// Whether a step reduced one position or every open position.
///
/// ```
/// use portfolio_margin::StepKind;
/// assert_ne!(StepKind::SinglePosition, StepKind::ProRata);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum StepKind {
    /// One lot of the position with the best relief per notional.
    SinglePosition,
    /// One lot of every open position ([`HedgedUnwind::ProRata`]).
    ProRata,
}

/// Why a plan stopped.
///
/// Only [`StopReason::Restored`] means the target was reached
/// ([`LiquidationPlan::restored`]).
///
/// ```
/// use portfolio_margin::StopReason;
/// assert_ne!(StopReason::Restored, StopReason::BookClosed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum StopReason {
    /// The health factor reached the target (possibly before any step).
    Restored,
    /// Every position is closed and the target is still not reached
    /// (equity is not enough, e.g. a bankrupt account).
    BookClosed,
    /// Positions remain but no allowed reduction lowers maintenance margin.
    NoRelief,
    /// [`LiquidationPolicy::max_steps`] steps were taken.
    StepLimit,
}

/// One position's reduction within a step (see [`plan_liquidation`] for an
/// example).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Reduction {
    /// Index of the position in the original portfolio.
    pub position: usize,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Contracts traded to reduce: opposite in sign to the position
    /// (`+2` buys back 2 of a short).
    pub trade: f64,
    /// Contracts left after the trade (0 when closed).
    pub remaining: f64,
    /// Notional closed, quote currency: `|trade| x multiplier x spot`
    /// (`|trade| x multiplier` for coin-settled futures and perpetuals,
    /// whose multiplier is a quote-currency face value).
    pub notional: f64,
}

/// One step of a liquidation plan and the account's health after it (see
/// [`plan_liquidation`] for an example).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct LiquidationStep {
    /// One position or all of them.
    pub kind: StepKind,
    /// The reductions, in position order.
    pub reductions: Vec<Reduction>,
    /// Sum of the reductions' notionals, quote currency.
    pub notional_closed: f64,
    /// Maintenance margin released by the step, quote currency (`> 0`).
    pub relief: f64,
    /// Margin, health factor and status after the step.
    pub after: HealthState,
}

/// An ordered list of reductions and the account's health along the way,
/// built by [`plan_liquidation`] (see its example).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct LiquidationPlan {
    /// Account equity, quote currency (unchanged by closing at mark).
    pub equity: f64,
    /// Health before the plan.
    pub initial: HealthState,
    /// The steps, in execution order.
    pub steps: Vec<LiquidationStep>,
    /// Health after the last step (the initial health if there is none):
    /// the best state the planner reached.
    pub final_state: HealthState,
    /// The book after the plan (closed positions dropped).
    pub remaining: Portfolio,
    /// True when `final_state` meets the target health factor.
    pub restored: bool,
    /// Why the planner stopped.
    pub stop: StopReason,
}

/// Plans the reductions that bring `account` back to the policy's target
/// health factor, closing as little as possible (see the module notes for
/// the greedy rule; ties go to the earlier position).
///
/// `margin` re-margins a candidate book; it is called once for the
/// starting book and once per candidate per step (at most
/// `max_steps x (positions + 1) + 1` times). Equity is computed once
/// ([`Account::equity`]) and held fixed: closing at mark does not change it.
///
/// # Errors
/// As [`Account::equity`]; any error of `margin`;
/// [`Error::MissingUnderlying`] for a position whose underlying has no
/// market data; [`Error::NonFiniteResult`] if a notional overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let mut instruments = InstrumentSet::new();
/// let perp = InstrumentId::new("BTC-PERP")?;
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(perp, -1.0)], &instruments)?;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
/// let balances = [Balance::new(usdc, 4_000.0)];
/// let account = Account { balances: &balances, portfolio: &book, instruments: &instruments, market: &market, policy: &policy };
/// // Maintenance 5% of |quantity| x 100k; initial twice that.
/// let margin = |p: &Portfolio| {
///     let mm: f64 = p.positions().iter().map(|x| 0.05 * x.quantity.abs() * 100_000.0).sum();
///     MarginRequirement::new(2.0 * mm, 0.5)
/// };
/// let plan = plan_liquidation(&account, margin, &HealthBands::default(), &LiquidationPolicy::default())?;
/// // Equity 4000 vs 5000 maintenance: buying back 25% leaves 3750 (factor 1.067),
/// // 50% leaves 2500 (factor 1.6).
/// assert!(plan.restored);
/// assert_eq!(plan.steps.len(), 2);
/// assert_eq!(plan.remaining.positions()[0].quantity, -0.5);
/// assert_eq!(plan.final_state.health_factor, HealthFactor::Ratio(1.6));
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn plan_liquidation<F>(
    account: &Account<'_>,
    margin: F,
    bands: &HealthBands,
    policy: &LiquidationPolicy,
) -> Result<LiquidationPlan>
where
    F: Fn(&Portfolio) -> Result<MarginRequirement>,
{
    let original: Vec<f64> = account
        .portfolio
        .positions()
        .iter()
        .map(|p| p.quantity)
        .collect();
    let by_quantities = |quantities: &[f64]| {
        if quantities == original.as_slice() {
            margin(account.portfolio)
        } else {
            margin(&portfolio_with(account, quantities)?)
        }
    };
    plan_liquidation_by_quantities(account, by_quantities, bands, policy)
}

/// [`plan_liquidation`] with the candidate books given to `margin` as
/// quantities: entry `i` is the quantity of `account.portfolio`'s position
/// `i` (0.0 once closed), so that a margin engine can re-margin a
/// candidate without building a [`Portfolio`] or resolving instrument ids
/// (see [`GridMarginEngine::account_from_quantities`](crate::GridMarginEngine::account_from_quantities)).
/// The same plan as [`plan_liquidation`] whenever `margin` gives the same
/// requirement as its `Portfolio` counterpart.
///
/// # Errors
/// As [`plan_liquidation`].
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let mut instruments = InstrumentSet::new();
/// let perp = InstrumentId::new("BTC-PERP")?;
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(perp, -1.0)], &instruments)?;
/// let usdc = AssetId::new("USDC")?;
/// let policy = CollateralPolicy::new(usdc.clone(), vec![CollateralAsset::at_par(usdc.clone(), AssetKind::Stablecoin, 1.0)?])?;
/// let balances = [Balance::new(usdc, 20_000.0)];
/// let account = Account { balances: &balances, portfolio: &book, instruments: &instruments, market: &market, policy: &policy };
/// let engine = GridMarginEngine::new(&instruments, &market, GridPolicy::deribit_style())?;
/// let rows: Vec<InstrumentIndex> = book.positions().iter()
///     .map(|p| engine.instrument_index(&p.instrument))
///     .collect::<Result<_>>()?;
/// let margin = |q: &[f64]| engine.requirement(&engine.account_from_quantities(&rows, q)?);
/// let plan = plan_liquidation_by_quantities(&account, margin, &HealthBands::default(), &LiquidationPolicy::default())?;
/// let slow = plan_liquidation(&account, |p: &Portfolio| engine.requirement(&engine.account(p)?), &HealthBands::default(), &LiquidationPolicy::default())?;
/// assert_eq!(plan, slow);
/// assert!(plan.restored);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn plan_liquidation_by_quantities<F>(
    account: &Account<'_>,
    margin: F,
    bands: &HealthBands,
    policy: &LiquidationPolicy,
) -> Result<LiquidationPlan>
where
    F: Fn(&[f64]) -> Result<MarginRequirement>,
{
    let equity = account.equity()?;
    let positions = account.portfolio.positions();
    let per_contract = positions
        .iter()
        .map(|p| notional_per_contract(account.instruments.get(&p.instrument)?, account.market))
        .collect::<Result<Vec<f64>>>()?;
    let lots: Vec<f64> = positions
        .iter()
        .map(|p| match policy.lot {
            LotSize::FractionOfPosition(f) => f * p.quantity.abs(),
            LotSize::Contracts(n) => n,
        })
        .collect();
    let book = Book {
        account: account.portfolio,
        per_contract: &per_contract,
        lots: &lots,
    };
    let mut quantities: Vec<f64> = positions.iter().map(|p| p.quantity).collect();
    let initial = bands.state(equity, margin(&quantities)?)?;
    let mut state = initial;
    let mut steps = Vec::new();
    let stop = loop {
        if state.health_factor.meets(policy.target) {
            break StopReason::Restored;
        }
        if quantities.iter().all(|&q| q == 0.0) {
            break StopReason::BookClosed;
        }
        if steps.len() >= policy.max_steps {
            break StopReason::StepLimit;
        }
        let current = state.margin.maintenance();
        let min_relief = current * MIN_RELATIVE_RELIEF;
        let mut best: Option<(f64, Candidate)> = None;
        for index in 0..quantities.len() {
            let Some(candidate) = book.reduce(&quantities, &[index], &margin)? else {
                continue;
            };
            let relief = current - candidate.margin.maintenance();
            if relief > min_relief {
                let score = relief / candidate.notional;
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, candidate));
                }
            }
        }
        let (kind, candidate) = match (best, policy.hedged_unwind) {
            (Some((_, c)), _) => (StepKind::SinglePosition, c),
            (None, HedgedUnwind::Keep) => break StopReason::NoRelief,
            (None, HedgedUnwind::ProRata) => {
                let open: Vec<usize> = (0..quantities.len())
                    .filter(|&i| quantities.get(i).is_some_and(|&q| q != 0.0))
                    .collect();
                match book.reduce(&quantities, &open, &margin)? {
                    Some(c) if current - c.margin.maintenance() > min_relief => {
                        (StepKind::ProRata, c)
                    }
                    _ => break StopReason::NoRelief,
                }
            }
        };
        let relief = current - candidate.margin.maintenance();
        state = bands.state(equity, candidate.margin)?;
        quantities = candidate.quantities;
        steps.push(LiquidationStep {
            kind,
            reductions: candidate.reductions,
            notional_closed: candidate.notional,
            relief,
            after: state,
        });
    };
    Ok(LiquidationPlan {
        equity,
        initial,
        final_state: state,
        remaining: portfolio_with(account, &quantities)?,
        restored: stop == StopReason::Restored,
        stop,
        steps,
    })
}

/// Quote-currency notional of one contract: multiplier x spot, or the
/// multiplier itself for coin-settled futures and perpetuals (a face value).
fn notional_per_contract(instrument: &Instrument, market: &MarketSnapshot) -> Result<f64> {
    let spot = market.underlying(instrument.underlying())?.spot();
    let face_value = matches!(instrument, Instrument::Future(_) | Instrument::Perpetual(_))
        && instrument.settlement() == Settlement::Inverse;
    let notional = if face_value {
        instrument.multiplier()
    } else {
        instrument.multiplier() * spot
    };
    finite_result("notional per contract", notional)
}

/// The fixed inputs of a plan.
struct Book<'a> {
    account: &'a Portfolio,
    per_contract: &'a [f64],
    lots: &'a [f64],
}

/// A reduced book, its margin and what was closed.
struct Candidate {
    quantities: Vec<f64>,
    reductions: Vec<Reduction>,
    notional: f64,
    margin: MarginRequirement,
}

impl Book<'_> {
    /// The book with one lot of each position in `indices` closed and its
    /// margin; `None` if all of them are already closed.
    fn reduce<F>(
        &self,
        quantities: &[f64],
        indices: &[usize],
        margin: &F,
    ) -> Result<Option<Candidate>>
    where
        F: Fn(&[f64]) -> Result<MarginRequirement>,
    {
        let mut next = quantities.to_vec();
        let mut reductions = Vec::with_capacity(indices.len());
        let mut notional = 0.0;
        for &index in indices {
            let (Some(q), Some(&lot), Some(&per), Some(original)) = (
                next.get_mut(index),
                self.lots.get(index),
                self.per_contract.get(index),
                self.account.positions().get(index),
            ) else {
                continue;
            };
            if *q == 0.0 {
                continue;
            }
            let remaining = if q.abs() <= lot * (1.0 + LOT_SNAP) {
                0.0
            } else {
                *q - q.signum() * lot
            };
            let trade = remaining - *q;
            *q = remaining;
            let closed = finite_result("notional closed", trade.abs() * per)?;
            notional += closed;
            reductions.push(Reduction {
                position: index,
                instrument: original.instrument.clone(),
                trade,
                remaining,
                notional: closed,
            });
        }
        if reductions.is_empty() {
            return Ok(None);
        }
        let notional = finite_result("notional closed", notional)?;
        let margin = margin(&next)?;
        Ok(Some(Candidate {
            quantities: next,
            reductions,
            notional,
            margin,
        }))
    }
}

/// `account`'s book with `quantities` (aligned with its positions), closed
/// positions dropped.
fn portfolio_with(account: &Account<'_>, quantities: &[f64]) -> Result<Portfolio> {
    let positions = account
        .portfolio
        .positions()
        .iter()
        .zip(quantities)
        .filter(|&(_, &q)| q != 0.0)
        .map(|(p, &q)| Position::new(p.instrument.clone(), q))
        .collect();
    Portfolio::new(
        account.portfolio.account().clone(),
        positions,
        account.instruments,
    )
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn target() -> f64 {
        DEFAULT_LIQUIDATION_TARGET
    }
    fn lot() -> LotSize {
        LotSize::FractionOfPosition(DEFAULT_LOT_FRACTION)
    }
    fn max_steps() -> usize {
        DEFAULT_MAX_STEPS
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LiquidationPolicy {
        #[serde(default = "target")]
        target: f64,
        #[serde(default = "lot")]
        lot: LotSize,
        #[serde(default)]
        hedged_unwind: HedgedUnwind,
        #[serde(default = "max_steps")]
        max_steps: usize,
    }

    impl TryFrom<LiquidationPolicy> for super::LiquidationPolicy {
        type Error = Error;
        fn try_from(r: LiquidationPolicy) -> Result<Self> {
            super::LiquidationPolicy::new(r.target, r.lot, r.hedged_unwind, r.max_steps)
        }
    }

    impl From<super::LiquidationPolicy> for LiquidationPolicy {
        fn from(p: super::LiquidationPolicy) -> Self {
            LiquidationPolicy {
                target: p.target,
                lot: p.lot,
                hedged_unwind: p.hedged_unwind,
                max_steps: p.max_steps,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid() {
        let d = LiquidationPolicy::default();
        assert_eq!(
            LiquidationPolicy::new(d.target, d.lot, d.hedged_unwind, d.max_steps).unwrap(),
            d
        );
    }

    #[test]
    fn notional_uses_face_value_for_inverse_delta_one() {
        use crate::instrument::{OptionContract, OptionKind, PerpetualContract, UnderlyingId};
        use crate::market::{UnderlyingMarket, VolSurface};
        use crate::units::Timestamp;
        let btc = UnderlyingId::new("BTC").unwrap();
        let market = MarketSnapshot::builder(Timestamp::from_millis(0))
            .underlying(
                btc.clone(),
                UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let inverse = PerpetualContract::new(btc.clone())
            .with_multiplier(10.0)
            .unwrap()
            .with_settlement(Settlement::Inverse);
        let n = notional_per_contract(&Instrument::Perpetual(inverse), &market).unwrap();
        assert_eq!(n, 10.0);
        let option = OptionContract::new(btc, OptionKind::Put, 90_000.0, Timestamp::from_millis(1))
            .unwrap()
            .with_multiplier(0.5)
            .unwrap()
            .with_settlement(Settlement::Inverse);
        let n = notional_per_contract(&Instrument::Option(option), &market).unwrap();
        assert_eq!(n, 50_000.0);
    }

    #[test]
    fn rejects_bad_policies() {
        let keep = HedgedUnwind::Keep;
        let quarter = LotSize::FractionOfPosition(0.25);
        assert!(LiquidationPolicy::new(0.0, quarter, keep, 10).is_err());
        assert!(LiquidationPolicy::new(f64::NAN, quarter, keep, 10).is_err());
        assert!(LiquidationPolicy::new(1.0, LotSize::FractionOfPosition(0.0), keep, 10).is_err());
        assert!(LiquidationPolicy::new(1.0, LotSize::Contracts(-1.0), keep, 10).is_err());
        assert!(LiquidationPolicy::new(1.0, quarter, keep, 0).is_err());
        assert!(LiquidationPolicy::new(1.0, quarter, keep, MAX_LIQUIDATION_STEPS + 1).is_err());
    }
}
