//! The scenario-grid margin engine: risk arrays once per snapshot, then
//! every account in O(positions x scenarios), and pre-trade what-ifs in
//! O(scenarios) from a cached account state.

use crate::error::{Error, Result};
use crate::greeks::{GreeksBatch, OptionBatch};
use crate::instrument::{Instrument, InstrumentId, OptionModel, Settlement, UnderlyingId};
use crate::margin::MarginRequirement;
use crate::margin::grid_policy::{GridPoint, GridPolicy, MinimumScope, VolPoint};
use crate::margin::offsets::{
    AppliedCredit, ResolvedOffsets, UnderlyingExposure, apply_spread_credits,
};
use crate::market::{MarketSnapshot, RiskFactor};
use crate::pnl::{Revaluation, RiskArrays};
use crate::portfolio::{InstrumentSet, MAX_ABS_QUANTITY, Portfolio, Position};
use crate::pricing::{instrument_greeks, option_inputs};
use crate::scenario::{ScenarioSet, ShockKind};
use crate::units::{DayBasis, Timestamp, YearFraction};
use kernel::{Isa, Kernel, Losses, MetaSums, Table, dispatch};
use pages::Pages;
#[cfg(feature = "serde")]
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

mod batch;
mod kernel;
mod pages;

pub use batch::BatchMargins;

/// The dense index of an instrument in a [`GridMarginEngine`], for hot
/// paths that should not hash ids (see [`GridMarginEngine::instrument_index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct InstrumentIndex(u32);

/// What the engine knows of one instrument after the snapshot.
#[derive(Debug, Clone)]
struct Listed {
    id: InstrumentId,
    underlying: u32,
    /// Notional per contract (`spot x multiplier`), quote currency.
    notional: f64,
    /// Mark per contract, quote currency, by the convention of
    /// [`crate::positions_value`]: an option's premium, a spot holding's
    /// spot, 0 for futures and perpetuals.
    mark: f64,
}

/// The per-contract numbers the margin kernel reads, packed.
#[derive(Debug, Clone, Copy)]
struct RowMeta {
    /// Net delta notional per contract, quote currency (`delta x spot x multiplier`).
    delta_notional: f64,
    /// Option minimum per short contract, quote currency (0 for non-options).
    short_minimum: f64,
    /// Option minimum per long contract (capped at premium), quote currency.
    long_minimum: f64,
}

#[derive(Debug, Clone)]
struct UnderlyingInfo {
    id: UnderlyingId,
    spot: f64,
    points: Vec<GridPoint>,
    depth: Option<f64>,
}

/// Portfolio margin on a scenario grid against one market snapshot.
///
/// Built once per snapshot: every listed instrument is revalued under its
/// underlying's grid ([`GridPolicy`]) into a weighted *loss* array per
/// contract (`-P&L x weight`, quote currency), the SPAN idea of risk arrays
/// shared by every account. An account's loss per scenario is then the
/// quantity-weighted sum of its instruments' arrays, in a vectorised kernel.
///
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
/// let market = MarketSnapshot::builder(as_of)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
///     .build()?;
/// let mut instruments = InstrumentSet::new();
/// let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
/// let call = InstrumentId::new("C100")?;
/// instruments.insert(call.clone(), Instrument::Option(OptionContract::new(btc.clone(), OptionKind::Call, 100_000.0, expiry)?))?;
/// let perp = InstrumentId::new("PERP")?;
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
/// let engine = GridMarginEngine::new(&instruments, &market, GridPolicy::deribit_style())?;
///
/// let naked = Portfolio::new(AccountId::new("a"), vec![Position::new(perp.clone(), 1.0)], &instruments)?;
/// let hedged = Portfolio::new(AccountId::new("b"), vec![Position::new(perp, 1.0), Position::new(call, -1.0)], &instruments)?;
/// let naked = engine.requirement(&engine.account(&naked)?)?;
/// let hedged = engine.requirement(&engine.account(&hedged)?)?;
/// // A long perpetual loses 16% of 100,000 at the grid's -16% point (the
/// // extended table's -66% move counts at 5%: 3,300).
/// assert!((naked.initial() - 16_000.0).abs() < 1e-6);
/// assert!(hedged.initial() < naked.initial());
/// assert_eq!(naked.maintenance(), 0.8 * naked.initial());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GridMarginEngine {
    policy: GridPolicy,
    as_of: Timestamp,
    underlyings: Vec<UnderlyingInfo>,
    scenarios: usize,
    stride: usize,
    /// `stride` weighted losses per instrument, then the kernel's copy of
    /// `meta`: per instrument `[delta_notional, long_minimum]` and
    /// `[delta_notional, -short_minimum]`, so that a slot's aggregates are
    /// `q x entry[2 row + (q < 0)]`. One buffer, huge-page backed (see
    /// `pages`), so that a row and its aggregates share the TLB entry.
    table: Pages,
    meta: Vec<RowMeta>,
    listed: Vec<Listed>,
    index: HashMap<InstrumentId, u32>,
    offsets: ResolvedOffsets,
    /// Identifies the instrument listing (ids in order); accounts carry it.
    listing: u64,
}

/// An account's positions resolved against one engine: instrument indices,
/// sorted by underlying and instrument, duplicates merged, zero quantities
/// dropped. The order positions were given in does not matter.
///
/// One allocation of 16 bytes per position; the positions of one
/// underlying are contiguous (a group).
#[derive(Debug, Clone, PartialEq)]
pub struct GridAccount {
    slots: Vec<Slot>,
    /// Number of groups (distinct underlyings).
    groups: u32,
    /// The listing fingerprint of the engine that resolved it.
    listing: u64,
}

/// One merged position: the instrument's row, its underlying's index (the
/// group key, in what would otherwise be padding) and the quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    row: u32,
    underlying: u32,
    quantity: f64,
}

impl GridAccount {
    /// The groups: runs of slots on one underlying, in underlying order.
    fn groups(&self) -> impl Iterator<Item = &[Slot]> {
        self.slots.chunk_by(|a, b| a.underlying == b.underlying)
    }

    /// Number of (merged, non-zero) positions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// `true` for an account with no positions (its margin is zero).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// One underlying's part of an account's grid margin.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Totals {
    underlying: u32,
    scan: f64,
    worst: usize,
    delta: f64,
    minimum: f64,
}

impl Totals {
    const ZERO: Totals = Totals {
        underlying: 0,
        scan: 0.0,
        worst: 0,
        delta: 0.0,
        minimum: 0.0,
    };
}

/// An underlying's aggregates are finite: an overflowed one would otherwise
/// lose every comparison (NaN) or pass unused (a delta without a delta
/// charge).
fn check_totals(t: &Totals) -> Result<()> {
    for (what, value) in [
        ("grid scan risk", t.scan),
        ("grid delta notional", t.delta),
        ("grid option minimum", t.minimum),
    ] {
        if !value.is_finite() {
            return Err(Error::NonFiniteResult { what, value });
        }
    }
    Ok(())
}

/// Which charge set an underlying's requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum GridCharge {
    /// The worst scenario loss.
    ScanRisk,
    /// The option minimum.
    OptionMinimum,
    /// The minimum delta charge.
    DeltaCharge,
}

/// A position's loss in its underlying's worst scenario.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct PositionContribution {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Contracts held (merged).
    pub quantity: f64,
    /// Weighted loss in the worst scenario, quote currency (negative: a gain
    /// that offsets other positions' losses). Sums to the scan risk.
    pub loss_at_worst: f64,
}

/// One underlying's grid margin, itemised.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct UnderlyingGridMargin {
    /// The underlying.
    pub underlying: UnderlyingId,
    /// Worst weighted loss over the grid, floored at 0, quote currency.
    pub scan_risk: f64,
    /// Index of the worst scenario in [`GridMarginEngine::scenario_points`].
    pub worst_scenario: usize,
    /// Its name, e.g. `"price -16.00%, vol up"`.
    pub worst_scenario_name: String,
    /// Sum of the option minimums, quote currency.
    pub option_minimum: f64,
    /// Net delta notional (delta x spot x multiplier x quantity), quote currency.
    pub delta_notional: f64,
    /// Minimum delta charge, quote currency.
    pub delta_charge: f64,
    /// `max(scan_risk, option_minimum, delta_charge)`.
    pub requirement: f64,
    /// Which of the three set the requirement.
    pub binding: GridCharge,
    /// Concentration add-on, quote currency.
    pub concentration_add_on: f64,
    /// Each position's loss in the worst scenario.
    pub positions: Vec<PositionContribution>,
}

/// An account's grid margin with its breakdown.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct GridMargin {
    /// Initial and maintenance margin, quote currency.
    pub requirement: MarginRequirement,
    /// Per underlying, in id order.
    pub underlyings: Vec<UnderlyingGridMargin>,
    /// Sum of the underlyings' requirements, quote currency.
    pub sum_of_underlyings: f64,
    /// Spread credits between underlyings (total of `credits`), quote currency.
    pub spread_credit: f64,
    /// Each pair's credits.
    pub credits: Vec<AppliedCredit>,
    /// Part of the spread credits withdrawn (correlation break), quote currency.
    pub correlation_break_add_on: f64,
    /// Sum of the concentration add-ons, quote currency.
    pub concentration_add_on: f64,
    /// The underlying and scenario with the largest scan risk, if any loss.
    pub worst: Option<(UnderlyingId, String)>,
}

/// A hypothetical order for [`GridMarginEngine::what_if`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    /// The instrument.
    pub instrument: InstrumentIndex,
    /// Signed contracts (positive buys).
    pub quantity: f64,
}

/// An account's cached grid state: per underlying the loss vector and the
/// aggregates, so that a what-if costs O(scenarios).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    account: GridAccount,
    /// Per group, `stride` accumulated weighted losses.
    losses: Vec<f64>,
    totals: Vec<Totals>,
    requirement: MarginRequirement,
}

impl AccountState {
    /// The account's requirement.
    pub fn requirement(&self) -> MarginRequirement {
        self.requirement
    }
    /// The resolved account.
    pub fn account(&self) -> &GridAccount {
        &self.account
    }
}

impl GridMarginEngine {
    /// Revalues every instrument of `instruments` under the grid of its
    /// underlying.
    ///
    /// # Errors
    /// The policy's validation error naming the field; errors of
    /// [`RiskArrays::compute`] naming the instrument (missing underlying,
    /// expired contract, shocked inputs outside the pricing domain);
    /// [`Error::TooFew`] for an empty instrument set.
    pub fn new(
        instruments: &InstrumentSet,
        market: &MarketSnapshot,
        policy: GridPolicy,
    ) -> Result<Self> {
        policy.validate()?;
        if instruments.is_empty() {
            return Err(Error::TooFew {
                what: "instruments",
                min: 1,
                got: 0,
            });
        }
        let ids: BTreeSet<UnderlyingId> = instruments
            .iter()
            .map(|l| l.instrument.underlying().clone())
            .collect();
        let mut underlyings = Vec::with_capacity(ids.len());
        for id in ids {
            let spot = market.underlying(&id)?.spot();
            let points = policy.scenarios_for(policy.range_of(&id));
            let depth = policy.concentration.depth_of(&id);
            underlyings.push(UnderlyingInfo {
                id,
                spot,
                points,
                depth,
            });
        }
        let scenarios = policy.scenario_count();
        let set = grid_scenarios(&policy, &underlyings)?;
        let arrays = RiskArrays::compute(instruments, market, &set, Revaluation::Full)?;
        // Rows padded to whole passes of the accumulation kernel (zeros):
        // a multiple of 8 entries, and of 32 above 16.
        let block = if scenarios > 16 { 32 } else { 8 };
        let stride = scenarios.div_ceil(block) * block;
        let rows_len = stride * instruments.len();
        let table_len = rows_len + 4 * instruments.len();
        let mut table = Pages::zeroed(table_len);
        // The buffer checks its own length when made; indexing below
        // relies on it, so a wrong one is an error here, not a panic later.
        if table.as_slice().len() != table_len {
            return Err(Error::LengthMismatch {
                what: "grid risk-array table",
                expected: table_len,
                got: table.as_slice().len(),
            });
        }
        let rows = table.as_mut_slice();
        let mut listed = Vec::with_capacity(instruments.len());
        let mut meta = Vec::with_capacity(instruments.len());
        let mut index = HashMap::with_capacity(instruments.len());
        let minimum = policy.option_minimum;
        let deltas = contract_deltas(instruments, market)?;
        for (k, ((item, array), &delta)) in instruments
            .iter()
            .zip(arrays.arrays())
            .zip(&deltas)
            .enumerate()
        {
            let underlying = underlyings
                .binary_search_by(|u| u.id.cmp(item.instrument.underlying()))
                .map_err(|_| Error::MissingUnderlying(item.instrument.underlying().clone()))?;
            let info = &underlyings[underlying];
            let row = &mut rows[k * stride..(k + 1) * stride];
            for ((r, pnl), point) in row.iter_mut().zip(array.quote()).zip(&info.points) {
                *r = -pnl * point.weight;
            }
            let wrap = |e: Error| Error::InInstrument {
                id: item.id.clone(),
                source: Box::new(e),
            };
            let multiplier = item.instrument.multiplier();
            let delta_notional = delta * info.spot * multiplier;
            let notional = info.spot * multiplier;
            let premium = match array.settlement() {
                Settlement::Linear => array.base_value(),
                Settlement::Inverse => array.base_value() * info.spot,
            };
            let (short_minimum, long_minimum) = match item.instrument {
                Instrument::Option(_) => {
                    let m = minimum.fraction_of_underlying * notional
                        + minimum.amount_per_unit * multiplier;
                    let long = match minimum.scope {
                        MinimumScope::ShortOptions => 0.0,
                        MinimumScope::AllOptions => m.min(premium.max(0.0)),
                    };
                    (m, long)
                }
                _ => (0.0, 0.0),
            };
            let mark = match item.instrument {
                Instrument::Option(_) => premium,
                Instrument::Spot(_) => info.spot,
                Instrument::Future(_) | Instrument::Perpetual(_) => 0.0,
            };
            for (what, x) in [
                ("grid delta notional", delta_notional),
                ("grid option minimum", short_minimum),
                ("grid notional", notional),
                ("grid mark", mark),
            ] {
                if !x.is_finite() {
                    return Err(wrap(Error::NonFiniteResult { what, value: x }));
                }
            }
            listed.push(Listed {
                id: item.id.clone(),
                underlying: underlying as u32,
                notional,
                mark,
            });
            meta.push(RowMeta {
                delta_notional,
                short_minimum,
                long_minimum,
            });
            index.insert(item.id.clone(), k as u32);
        }
        let listing = {
            use std::hash::{Hash, Hasher};
            // Fixed keys: the same fingerprint on every run.
            let mut h = std::hash::DefaultHasher::new();
            for l in &listed {
                l.id.hash(&mut h);
                l.underlying.hash(&mut h);
            }
            h.finish()
        };
        for (entry, m) in table.as_mut_slice()[rows_len..]
            .as_chunks_mut::<4>()
            .0
            .iter_mut()
            .zip(&meta)
        {
            *entry = [
                m.delta_notional,
                m.long_minimum,
                m.delta_notional,
                -m.short_minimum,
            ];
        }
        let offsets = policy
            .offsets
            .resolve(|id| underlyings.binary_search_by(|u| u.id.cmp(id)).ok());
        Ok(GridMarginEngine {
            listing,
            offsets,
            policy,
            as_of: market.as_of(),
            underlyings,
            scenarios,
            stride,
            table,
            meta,
            listed,
            index,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &GridPolicy {
        &self.policy
    }
    /// The snapshot's valuation time.
    pub fn as_of(&self) -> Timestamp {
        self.as_of
    }
    /// Scenarios per underlying.
    pub fn scenario_count(&self) -> usize {
        self.scenarios
    }
    /// Number of instruments.
    pub fn instrument_count(&self) -> usize {
        self.listed.len()
    }
    /// The grid of an underlying, scenario by scenario.
    ///
    /// # Errors
    /// [`Error::MissingUnderlying`] if no instrument is on it.
    pub fn scenario_points(&self, underlying: &UnderlyingId) -> Result<&[GridPoint]> {
        self.underlyings
            .iter()
            .find(|u| &u.id == underlying)
            .map(|u| u.points.as_slice())
            .ok_or_else(|| Error::MissingUnderlying(underlying.clone()))
    }
    /// The dense index of an instrument.
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`].
    pub fn instrument_index(&self, id: &InstrumentId) -> Result<InstrumentIndex> {
        self.index
            .get(id)
            .map(|&k| InstrumentIndex(k))
            .ok_or_else(|| Error::UnknownInstrument(id.clone()))
    }
    /// The weighted loss array of one contract (quote currency, one entry per
    /// scenario: `-P&L x weight`).
    pub fn loss_array(&self, instrument: InstrumentIndex) -> &[f64] {
        let k = instrument.0 as usize;
        self.rows()
            .get(k * self.stride..k * self.stride + self.scenarios)
            .unwrap_or(&[])
    }

    /// Resolves a book against this engine.
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`] for an instrument the engine does not list.
    pub fn account(&self, portfolio: &Portfolio) -> Result<GridAccount> {
        self.account_from_positions(portfolio.positions())
    }

    /// Resolves positions (merged by instrument, zero quantities dropped).
    ///
    /// # Errors
    /// [`Error::UnknownInstrument`]; [`Error::InvalidElement`] for a
    /// quantity that is not finite or exceeds [`MAX_ABS_QUANTITY`].
    pub fn account_from_positions(&self, positions: &[Position]) -> Result<GridAccount> {
        let mut slots = Vec::with_capacity(positions.len());
        for (i, p) in positions.iter().enumerate() {
            let row = self.instrument_index(&p.instrument)?.0;
            check_quantity(i, p.quantity)?;
            slots.push(self.slot(row, p.quantity));
        }
        Ok(self.build_account(slots))
    }

    /// Resolves positions given as this engine's instrument indices and
    /// quantities (aligned; merged by instrument, zero quantities
    /// dropped), without hashing instrument ids: for re-margining many
    /// variants of one book, e.g. the candidates of
    /// [`crate::plan_liquidation_by_quantities`].
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for slices of different lengths;
    /// [`Error::InvalidElement`] for an index not from this engine, or a
    /// quantity that is not finite or exceeds [`MAX_ABS_QUANTITY`].
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_millis(0))
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let mut set = InstrumentSet::new();
    /// let perp = InstrumentId::new("PERP")?;
    /// set.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
    /// let engine = GridMarginEngine::new(&set, &market, GridPolicy::deribit_style())?;
    /// let row = engine.instrument_index(&perp)?;
    /// let fast = engine.account_from_quantities(&[row, row], &[1.0, 0.5])?;
    /// let slow = engine.account_from_positions(&[Position::new(perp, 1.5)])?;
    /// assert_eq!(fast, slow);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn account_from_quantities(
        &self,
        instruments: &[InstrumentIndex],
        quantities: &[f64],
    ) -> Result<GridAccount> {
        if instruments.len() != quantities.len() {
            return Err(Error::LengthMismatch {
                what: "quantities per instrument index",
                expected: instruments.len(),
                got: quantities.len(),
            });
        }
        let mut slots = Vec::with_capacity(instruments.len());
        for (i, (&InstrumentIndex(row), &q)) in instruments.iter().zip(quantities).enumerate() {
            if row as usize >= self.listed.len() {
                return Err(Error::InvalidElement {
                    what: "instrument index",
                    index: i,
                    rule: "from this engine",
                    value: f64::from(row),
                });
            }
            check_quantity(i, q)?;
            slots.push(self.slot(row, q));
        }
        Ok(self.build_account(slots))
    }

    /// A slot of `quantity` contracts of the instrument at `row` (an index
    /// from this engine).
    fn slot(&self, row: u32, quantity: f64) -> Slot {
        Slot {
            row,
            underlying: self.listed.get(row as usize).map_or(0, |l| l.underlying),
            quantity,
        }
    }

    /// Sorts by underlying and instrument, merges duplicates in place
    /// (quantities summed in the given order) and drops zero quantities.
    fn build_account(&self, mut slots: Vec<Slot>) -> GridAccount {
        slots.sort_by_key(|s| (s.underlying, s.row));
        slots.dedup_by(|next, kept| {
            let same = next.row == kept.row;
            if same {
                kept.quantity += next.quantity;
            }
            same
        });
        slots.retain(|s| s.quantity != 0.0);
        let groups = slots.chunk_by(|a, b| a.underlying == b.underlying).count() as u32;
        GridAccount {
            slots,
            groups,
            listing: self.listing,
        }
    }

    /// Refuses an account resolved against an engine with another listing
    /// (its instrument indices would point at other instruments).
    fn check_listing(&self, account: &GridAccount) -> Result<()> {
        if account.listing == self.listing {
            Ok(())
        } else {
            Err(Error::ListingMismatch)
        }
    }

    /// An account's initial and maintenance margin (no breakdown; the fast
    /// path of [`GridMarginEngine::margin`], same numbers).
    ///
    /// # Errors
    /// [`Error::NonFiniteResult`] if a sum overflows.
    pub fn requirement(&self, account: &GridAccount) -> Result<MarginRequirement> {
        self.requirement_with(Isa::detect(), account)
    }

    fn requirement_with(&self, isa: Isa, account: &GridAccount) -> Result<MarginRequirement> {
        self.check_listing(account)?;
        dispatch(
            isa,
            Requirement {
                engine: self,
                account,
            },
        )
    }

    /// The kernel's table.
    #[inline(always)]
    fn table(&self) -> Table<'_> {
        let (rows, meta) = self
            .table
            .as_slice()
            .split_at_checked(self.rows_len())
            .unwrap_or((&[], &[]));
        Table {
            rows,
            stride: self.stride,
            meta: meta.as_chunks::<2>().0,
        }
    }

    /// The risk arrays: `stride` entries per instrument.
    #[inline(always)]
    fn rows(&self) -> &[f64] {
        self.table.as_slice().get(..self.rows_len()).unwrap_or(&[])
    }

    #[inline(always)]
    fn rows_len(&self) -> usize {
        self.stride * self.listed.len()
    }

    /// The requirement without storing losses: each group's scan is the
    /// maximum of its passes, its aggregates summed in the first pass;
    /// without spread credits the groups are combined as they come.
    #[inline(always)]
    fn requirement_body<const FMA: bool, const N: usize>(
        &self,
        table: &Table<'_>,
        account: &GridAccount,
    ) -> Result<MarginRequirement> {
        if self.offsets.is_empty() {
            let mut sum = 0.0;
            let mut concentration = 0.0;
            // `x * 0.0` is 0 for a finite `x`, NaN otherwise: the totals
            // are checked without a branch per group, and the error named
            // (as `combine` names it) only for an account that has one.
            let mut poison = 0.0;
            self.each_group::<FMA, N>(table, account, |t| {
                poison += t.scan * 0.0 + t.delta * 0.0 + t.minimum * 0.0;
                sum += self.underlying_requirement(&t).0;
                concentration += self.concentration(&t);
            });
            if poison != 0.0 {
                self.first_non_finite::<FMA, N>(table, account)?;
            }
            return self.finish(sum, 0.0, concentration);
        }
        let mut stack = [Totals::ZERO; 16];
        let mut spill = Vec::new();
        let n = account.groups as usize;
        let buf: &mut [Totals] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            spill.resize(n, Totals::ZERO);
            &mut spill
        };
        let mut next = buf.iter_mut();
        self.each_group::<FMA, N>(table, account, |t| {
            if let Some(slot) = next.next() {
                *slot = t;
            }
        });
        self.combine(buf)
    }

    /// The first group's non-finite total, as an error.
    #[cold]
    #[inline(never)]
    fn first_non_finite<const FMA: bool, const N: usize>(
        &self,
        table: &Table<'_>,
        account: &GridAccount,
    ) -> Result<()> {
        let mut checked = Ok(());
        self.each_group::<FMA, N>(table, account, |t| {
            if checked.is_ok() {
                checked = check_totals(&t);
            }
        });
        checked
    }

    /// Each group's totals (without the worst scenario's index), in order,
    /// in one sweep over the slots.
    #[inline(always)]
    fn each_group<const FMA: bool, const N: usize>(
        &self,
        table: &Table<'_>,
        account: &GridAccount,
        mut f: impl FnMut(Totals),
    ) {
        kernel::scan_groups::<FMA, N>(table, &account.slots, |underlying, scan, sums| {
            f(Totals {
                underlying,
                scan,
                worst: 0,
                delta: sums.delta,
                minimum: sums.minimum,
            })
        });
    }

    /// One group's accumulated losses into `acc` and its totals (scan and
    /// worst scenario from `acc`).
    fn group_losses(&self, isa: Isa, slots: &[Slot], acc: &mut [f64]) -> Totals {
        let sums = dispatch(
            isa,
            Losses {
                table: self.table(),
                slots,
                acc: &mut *acc,
            },
        );
        let (worst, scan) = worst_of(acc.get(..self.scenarios).unwrap_or(acc));
        totals(slots, scan, worst, sums)
    }

    /// `max(scan, option minimum, delta charge)` of one underlying.
    fn underlying_requirement(&self, t: &Totals) -> (f64, GridCharge) {
        let delta_charge = self.policy.min_delta_charge * t.delta.abs();
        let mut out = (t.scan, GridCharge::ScanRisk);
        if t.minimum > out.0 {
            out = (t.minimum, GridCharge::OptionMinimum);
        }
        if delta_charge > out.0 {
            out = (delta_charge, GridCharge::DeltaCharge);
        }
        out
    }

    fn concentration(&self, t: &Totals) -> f64 {
        match self
            .underlyings
            .get(t.underlying as usize)
            .and_then(|u| u.depth)
        {
            Some(depth) => self
                .policy
                .concentration
                .add_on_unchecked(t.delta.abs(), depth),
            None => 0.0,
        }
    }

    /// Spread credits between the account's underlyings: dense per-engine
    /// arrays of requirement and delta (zero where not held).
    fn spread_credit(&self, totals: &[Totals], requirements: &[f64]) -> Result<f64> {
        if self.offsets.is_empty() {
            return Ok(0.0);
        }
        let n = self.underlyings.len();
        let mut stack = [0.0; 64];
        let mut heap = Vec::new();
        let buf: &mut [f64] = if 4 * n <= stack.len() {
            &mut stack[..4 * n]
        } else {
            heap.resize(4 * n, 0.0);
            &mut heap
        };
        let (req, rest) = buf.split_at_mut(n);
        let (delta, scratch) = rest.split_at_mut(n);
        for (t, r) in totals.iter().zip(requirements) {
            let u = t.underlying as usize;
            if let (Some(a), Some(b)) = (req.get_mut(u), delta.get_mut(u)) {
                *a = *r;
                *b = t.delta;
            }
        }
        self.offsets.total_credit(req, delta, scratch)
    }

    fn combine(&self, totals: &[Totals]) -> Result<MarginRequirement> {
        for t in totals {
            check_totals(t)?;
        }
        let mut sum = 0.0;
        let mut concentration = 0.0;
        let mut requirements = [0.0; 16];
        let mut spill = Vec::new();
        let reqs: &mut [f64] = if totals.len() <= requirements.len() {
            &mut requirements[..totals.len()]
        } else {
            spill.resize(totals.len(), 0.0);
            &mut spill
        };
        for (t, r) in totals.iter().zip(reqs.iter_mut()) {
            *r = self.underlying_requirement(t).0;
            sum += *r;
            concentration += self.concentration(t);
        }
        let credit = self.spread_credit(totals, reqs)?;
        self.finish(sum, credit, concentration)
    }

    /// The account's requirement from the sum of its underlyings'
    /// requirements, its spread credit and its concentration add-ons.
    #[inline(always)]
    fn finish(&self, sum: f64, credit: f64, concentration: f64) -> Result<MarginRequirement> {
        let initial =
            (sum - credit * (1.0 - self.policy.correlation_break) + concentration).max(0.0);
        if !initial.is_finite() {
            return Err(Error::NonFiniteResult {
                what: "grid initial margin",
                value: initial,
            });
        }
        // `initial` is finite and at least 0, and the policy's fraction
        // was checked to be in [0, 1] when the engine was made.
        Ok(MarginRequirement {
            initial,
            maintenance: initial * self.policy.maintenance_fraction,
        })
    }

    /// An account's grid margin with its breakdown: per underlying the scan
    /// risk, worst scenario, option minimum, delta charge, concentration
    /// add-on and each position's loss in the worst scenario.
    ///
    /// # Errors
    /// As [`GridMarginEngine::requirement`].
    pub fn margin(&self, account: &GridAccount) -> Result<GridMargin> {
        self.check_listing(account)?;
        let isa = Isa::detect();
        let mut acc = vec![0.0; self.stride];
        let totals: Vec<Totals> = account
            .groups()
            .map(|slots| self.group_losses(isa, slots, &mut acc))
            .collect();
        let requirement = self.combine(&totals)?;
        let mut underlyings = Vec::with_capacity(totals.len());
        let mut sum = 0.0;
        let mut concentration = 0.0;
        let mut requirements = Vec::with_capacity(totals.len());
        let mut worst: Option<(f64, UnderlyingId, String)> = None;
        for (slots, t) in account.groups().zip(&totals) {
            let info = &self.underlyings[t.underlying as usize];
            let (req, binding) = self.underlying_requirement(t);
            let conc = self.concentration(t);
            sum += req;
            concentration += conc;
            requirements.push(req);
            let name = info
                .points
                .get(t.worst)
                .map(GridPoint::name)
                .unwrap_or_default();
            if t.scan > 0.0 && worst.as_ref().is_none_or(|w| t.scan > w.0) {
                worst = Some((t.scan, info.id.clone(), name.clone()));
            }
            let positions = slots
                .iter()
                .map(|s| PositionContribution {
                    instrument: self.listed[s.row as usize].id.clone(),
                    quantity: s.quantity,
                    loss_at_worst: s.quantity * self.rows()[s.row as usize * self.stride + t.worst],
                })
                .collect();
            underlyings.push(UnderlyingGridMargin {
                underlying: info.id.clone(),
                scan_risk: t.scan,
                worst_scenario: t.worst,
                worst_scenario_name: name,
                option_minimum: t.minimum,
                delta_notional: t.delta,
                delta_charge: self.policy.min_delta_charge * t.delta.abs(),
                requirement: req,
                binding,
                concentration_add_on: conc,
                positions,
            });
        }
        let credit = self.spread_credit(&totals, &requirements)?;
        let exposures: Vec<UnderlyingExposure> = totals
            .iter()
            .zip(&requirements)
            .map(|(t, r)| UnderlyingExposure {
                underlying: self.underlyings[t.underlying as usize].id.clone(),
                requirement: *r,
                delta_notional: t.delta,
            })
            .collect();
        let credits = apply_spread_credits(&self.policy.offsets, &exposures);
        Ok(GridMargin {
            credits,
            requirement,
            underlyings,
            sum_of_underlyings: sum,
            spread_credit: credit,
            correlation_break_add_on: credit * self.policy.correlation_break,
            concentration_add_on: concentration,
            worst: worst.map(|(_, u, n)| (u, n)),
        })
    }

    /// Each of the account's underlyings with its weighted loss per scenario
    /// (quote currency), e.g. for a heat map of the grid.
    ///
    /// # Errors
    /// [`Error::ListingMismatch`] for an account resolved by an engine with
    /// another instrument listing.
    pub fn scenario_losses(&self, account: &GridAccount) -> Result<Vec<(UnderlyingId, Vec<f64>)>> {
        self.check_listing(account)?;
        let isa = Isa::detect();
        let mut acc = vec![0.0; self.stride];
        Ok(account
            .groups()
            .map(|slots| {
                let t = self.group_losses(isa, slots, &mut acc);
                (
                    self.underlyings[t.underlying as usize].id.clone(),
                    acc[..self.scenarios].to_vec(),
                )
            })
            .collect::<Vec<_>>())
    }

    /// Margins many accounts against this snapshot, in parallel over
    /// chunks of accounts with the `rayon` feature. Account `i`'s entry is
    /// the same bits as [`GridMarginEngine::requirement`] on that account
    /// alone, or the same error, whatever the number of threads. For
    /// accounts held by reference or inside the caller's own records, see
    /// [`GridMarginEngine::margin_batch_of`].
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
    /// let market = MarketSnapshot::builder(as_of)
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let mut set = InstrumentSet::new();
    /// let perp = InstrumentId::new("PERP")?;
    /// set.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
    /// let engine = GridMarginEngine::new(&set, &market, GridPolicy::deribit_style())?;
    /// let accounts = [1.0, -2.0, 0.5]
    ///     .map(|q| engine.account_from_positions(&[Position::new(perp.clone(), q)]));
    /// let accounts: Vec<GridAccount> = accounts.into_iter().collect::<Result<_>>()?;
    /// let batch = engine.margin_batch(&accounts);
    /// assert_eq!(batch.len(), 3);
    /// assert!(batch.failures().is_empty());
    /// assert_eq!(batch.get(1), Some(Ok(engine.requirement(&accounts[1])?)));
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn margin_batch(&self, accounts: &[GridAccount]) -> BatchMargins {
        batch::margin_batch(self, accounts)
    }

    /// [`GridMarginEngine::margin_batch`] over accounts held elsewhere: by
    /// reference (`&[&GridAccount]`, say gathered from a map of users), or
    /// inside the caller's own records (any `T: Borrow<GridAccount>`). The
    /// same numbers and errors as `margin_batch` on the same accounts in
    /// the same order; the batch prefetches each account ahead of use, so
    /// accounts scattered through memory cost little more than a slice.
    ///
    /// # Examples
    /// ```
    /// use std::borrow::Borrow;
    /// use std::collections::BTreeMap;
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?)
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let mut set = InstrumentSet::new();
    /// let perp = InstrumentId::new("PERP")?;
    /// set.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
    /// let engine = GridMarginEngine::new(&set, &market, GridPolicy::deribit_style())?;
    ///
    /// // A venue's own record of a user, holding the resolved account.
    /// struct User { name: &'static str, account: GridAccount }
    /// impl Borrow<GridAccount> for User {
    ///     fn borrow(&self) -> &GridAccount { &self.account }
    /// }
    /// let mut users = BTreeMap::new();
    /// for (name, q) in [("ann", 1.0), ("bob", -2.0)] {
    ///     let account = engine.account_from_positions(&[Position::new(perp.clone(), q)])?;
    ///     users.insert(name, User { name, account });
    /// }
    /// // By reference, without copying the accounts...
    /// let refs: Vec<&GridAccount> = users.values().map(|u| &u.account).collect();
    /// let batch = engine.margin_batch_of(&refs);
    /// assert_eq!(batch.get(1), Some(Ok(engine.requirement(&users["bob"].account)?)));
    /// // ...or the records themselves.
    /// let records: Vec<User> = users.into_values().collect();
    /// assert_eq!(engine.margin_batch_of(&records), batch);
    /// assert_eq!(records[0].name, "ann");
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn margin_batch_of<A: std::borrow::Borrow<GridAccount> + Sync>(
        &self,
        accounts: &[A],
    ) -> BatchMargins {
        batch::margin_batch(self, accounts)
    }

    /// Mark-to-market value of an account's positions, quote currency, by
    /// the convention of [`crate::positions_value`] (options at their
    /// premium, spot holdings at spot, futures and perpetuals at 0), from
    /// marks taken once per snapshot with the risk arrays: O(positions)
    /// multiply-adds, where `positions_value` prices every option again.
    /// The two agree to rounding (the marks come from the batch pricing
    /// kernel); feed it to [`crate::health_from_valuation`].
    ///
    /// # Errors
    /// [`Error::ListingMismatch`] for an account of another listing;
    /// [`Error::NonFiniteResult`] if the sum overflows.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::*;
    /// let btc = UnderlyingId::new("BTC")?;
    /// let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
    /// let market = MarketSnapshot::builder(as_of)
    ///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5)?)?)
    ///     .build()?;
    /// let mut set = InstrumentSet::new();
    /// let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
    /// let call = InstrumentId::new("C100")?;
    /// set.insert(call.clone(), Instrument::Option(OptionContract::new(btc.clone(), OptionKind::Call, 100_000.0, expiry)?))?;
    /// let perp = InstrumentId::new("PERP")?;
    /// set.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc)))?;
    /// let book = Portfolio::new(AccountId::new("a"), vec![Position::new(call, -2.0), Position::new(perp, 1.0)], &set)?;
    /// let engine = GridMarginEngine::new(&set, &market, GridPolicy::deribit_style())?;
    /// let fast = engine.positions_value(&engine.account(&book)?)?;
    /// let slow = positions_value(&book, &set, &market)?;
    /// assert!((fast - slow).abs() <= 1e-12 * slow.abs());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn positions_value(&self, account: &GridAccount) -> Result<f64> {
        self.check_listing(account)?;
        let mut total = 0.0;
        for s in &account.slots {
            let mark = self.listed.get(s.row as usize).map_or(0.0, |l| l.mark);
            total += s.quantity * mark;
        }
        if total.is_finite() {
            Ok(total)
        } else {
            Err(Error::NonFiniteResult {
                what: "positions value",
                value: total,
            })
        }
    }

    /// Caches an account's per-underlying losses for what-ifs.
    ///
    /// # Errors
    /// As [`GridMarginEngine::requirement`].
    pub fn state(&self, account: &GridAccount) -> Result<AccountState> {
        self.check_listing(account)?;
        let isa = Isa::detect();
        let groups = account.groups as usize;
        let mut losses = vec![0.0; self.stride * groups];
        let mut totals = Vec::with_capacity(groups);
        for (slots, acc) in account.groups().zip(losses.chunks_exact_mut(self.stride)) {
            totals.push(self.group_losses(isa, slots, acc));
        }
        let requirement = self.combine(&totals)?;
        Ok(AccountState {
            account: account.clone(),
            losses,
            totals,
            requirement,
        })
    }

    /// The account's margin if `order` were filled, from its cached state,
    /// in O(scenarios + underlyings): the order's loss array is added to the
    /// cached losses of its underlying. Equal to margining the account with
    /// the order included up to rounding (the sums are formed in another
    /// order; relative differences of order 1e-15).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a quantity that is not finite or exceeds
    /// [`MAX_ABS_QUANTITY`] or an index not from this engine;
    /// [`Error::NonFiniteResult`] on overflow.
    pub fn what_if(&self, state: &AccountState, order: Order) -> Result<MarginRequirement> {
        self.check_listing(&state.account)?;
        let k = order.instrument.0 as usize;
        let l = self.listed.get(k).ok_or(Error::InvalidInput {
            what: "order instrument index",
            rule: "from this engine",
            value: k as f64,
        })?;
        check_quantity(0, order.quantity).map_err(|_| Error::InvalidInput {
            what: "order quantity",
            rule: "finite and at most 1e15 in size",
            value: order.quantity,
        })?;
        let row = &self.rows()[k * self.stride..k * self.stride + self.scenarios];
        let m = &self.meta[k];
        let q = order.quantity;
        let account = &state.account;
        // Slots are sorted by underlying, and the cached totals are in group
        // order: both found by binary search.
        let group = state
            .totals
            .binary_search_by_key(&l.underlying, |t| t.underlying)
            .ok()
            .map(|gi| {
                let start = account
                    .slots
                    .partition_point(|s| s.underlying < l.underlying);
                let end = account
                    .slots
                    .partition_point(|s| s.underlying <= l.underlying);
                (gi, account.slots.get(start..end).unwrap_or(&[]))
            });
        let updated = match group {
            Some((gi, slots)) => {
                let acc = &state.losses[gi * self.stride..gi * self.stride + self.scenarios];
                let (worst, scan) = worst_of_sum(acc, row, q);
                let old = &state.totals[gi];
                let held = slots
                    .binary_search_by_key(&order.instrument.0, |s| s.row)
                    .map_or(0.0, |i| slots[i].quantity);
                let minimum = old.minimum - slot_minimum(m, held) + slot_minimum(m, held + q);
                Some((
                    gi,
                    Totals {
                        underlying: l.underlying,
                        scan,
                        worst,
                        delta: old.delta + q * m.delta_notional,
                        minimum,
                    },
                ))
            }
            None => None,
        };
        let mut totals = [Totals {
            underlying: 0,
            scan: 0.0,
            worst: 0,
            delta: 0.0,
            minimum: 0.0,
        }; 16];
        let n = state.totals.len() + usize::from(updated.is_none());
        let mut spill = Vec::new();
        let buf: &mut [Totals] = if n <= totals.len() {
            &mut totals[..n]
        } else {
            spill.resize(n, totals[0]);
            &mut spill
        };
        buf[..state.totals.len()].copy_from_slice(&state.totals);
        match updated {
            Some((gi, t)) => buf[gi] = t,
            None => {
                let (worst, scan) = worst_of_sum(&[], row, q);
                buf[n - 1] = Totals {
                    underlying: l.underlying,
                    scan,
                    worst,
                    delta: q * m.delta_notional,
                    minimum: slot_minimum(m, q),
                };
            }
        }
        self.combine(buf)
    }

    /// Fills `order` into a cached state (recomputing the order's
    /// underlying exactly), so later what-ifs start from the new book.
    ///
    /// # Errors
    /// As [`GridMarginEngine::what_if`].
    pub fn apply_order(&self, state: &mut AccountState, order: Order) -> Result<()> {
        self.what_if(state, order)?;
        let mut slots = state.account.slots.clone();
        slots.push(self.slot(order.instrument.0, order.quantity));
        *state = self.state(&self.build_account(slots))?;
        Ok(())
    }

    /// The absolute notional of one contract, quote currency (`spot x
    /// multiplier`), for liquidation ordering.
    pub fn notional_per_contract(&self, instrument: InstrumentIndex) -> f64 {
        self.listed
            .get(instrument.0 as usize)
            .map_or(0.0, |l| l.notional)
    }
}

fn check_quantity(index: usize, q: f64) -> Result<()> {
    if !q.is_finite() || q.abs() > MAX_ABS_QUANTITY {
        return Err(Error::InvalidElement {
            what: "position quantity",
            index,
            rule: "finite and at most 1e15 in size",
            value: q,
        });
    }
    Ok(())
}

/// Option minimum of `quantity` contracts of `l`.
/// (A select, then one product: no branch on the sign.)
#[inline(always)]
fn slot_minimum(l: &RowMeta, quantity: f64) -> f64 {
    let (q, m) = if quantity < 0.0 {
        (-quantity, l.short_minimum)
    } else {
        (quantity, l.long_minimum)
    };
    q * m
}

/// Index and value of the largest entry, floored at 0 (first on ties), or
/// the first NaN.
fn worst_of(acc: &[f64]) -> (usize, f64) {
    worst_in(acc.iter().copied())
}

/// As [`worst_of`] of `acc + q x row` (`acc` empty: zeros).
fn worst_of_sum(acc: &[f64], row: &[f64], q: f64) -> (usize, f64) {
    worst_in(
        row.iter()
            .enumerate()
            .map(|(i, &r)| acc.get(i).copied().unwrap_or(0.0) + q * r),
    )
}

fn worst_in(values: impl Iterator<Item = f64>) -> (usize, f64) {
    let mut best = (0, 0.0);
    for (i, x) in values.enumerate() {
        if x > best.1 {
            best = (i, x);
        } else if x.is_nan() {
            // An overflowed loss (inf - inf) is reported, not skipped.
            return (i, x);
        }
    }
    best
}

/// A group's totals from its scan and worst scenario and its summed
/// aggregates.
#[inline(always)]
fn totals(slots: &[Slot], scan: f64, worst: usize, sums: MetaSums) -> Totals {
    Totals {
        underlying: slots.first().map_or(0, |s| s.underlying),
        scan,
        worst,
        delta: sums.delta,
        minimum: sums.minimum,
    }
}

/// [`GridMarginEngine::requirement_body`] as a [`Kernel`].
struct Requirement<'a> {
    engine: &'a GridMarginEngine,
    account: &'a GridAccount,
}

impl Kernel for Requirement<'_> {
    type Out = Result<MarginRequirement>;
    #[inline(always)]
    fn run<const FMA: bool, const N: usize>(self) -> Self::Out {
        self.engine
            .requirement_body::<FMA, N>(&self.engine.table(), self.account)
    }
}

/// Each instrument's quote-currency delta times forward per spot (as
/// [`instrument_greeks`]: `quote.delta x forward_per_spot`): the options
/// through the batch Greeks kernel at once, the delta-one contracts one by
/// one. Should the batch fail, every instrument is redone one by one so
/// that the error names it.
fn contract_deltas(instruments: &InstrumentSet, market: &MarketSnapshot) -> Result<Vec<f64>> {
    let one = |item: &crate::portfolio::ListedInstrument| {
        instrument_greeks(&item.instrument, market)
            .map(|g| g.quote.delta * g.forward_per_spot)
            .map_err(|e| Error::InInstrument {
                id: item.id.clone(),
                source: Box::new(e),
            })
    };
    let one_by_one = || instruments.iter().map(one).collect::<Result<Vec<f64>>>();
    let mut batch = OptionBatch::with_capacity(instruments.len());
    // Per option: its index and the model's underlying (spot or forward).
    let mut options = Vec::with_capacity(instruments.len());
    for (k, item) in instruments.iter().enumerate() {
        if let Instrument::Option(o) = &item.instrument {
            match option_inputs(o, market) {
                Ok(inputs) => {
                    batch.push(&inputs);
                    options.push((k, inputs.underlying()));
                }
                Err(_) => return one_by_one(),
            }
        }
    }
    let mut greeks = GreeksBatch::default();
    if batch.greeks(&mut greeks).is_err() {
        return one_by_one();
    }
    let mut deltas = vec![0.0; instruments.len()];
    let mut next = options.iter().zip(greeks.delta.iter().zip(&greeks.value));
    for (k, (item, d)) in instruments.iter().zip(deltas.iter_mut()).enumerate() {
        let Instrument::Option(o) = &item.instrument else {
            *d = one(item)?;
            continue;
        };
        let Some((&(j, u), (&delta, &value))) = next.next() else {
            return one_by_one();
        };
        if j != k {
            return one_by_one();
        }
        // Settlement as `pricing::settle`: an inverse option's coin delta
        // is `delta / U - value / U^2`, in quote currency times `U`.
        let quote = match o.settlement() {
            Settlement::Linear => delta,
            Settlement::Inverse => (delta / u - value / (u * u)) * u,
        };
        let forward_per_spot = match o.model() {
            OptionModel::BlackScholesMerton => 1.0,
            OptionModel::Black76 => u / market.underlying(o.underlying())?.spot(),
        };
        *d = quote * forward_per_spot;
    }
    Ok(deltas)
}

/// One scenario set moving every underlying by its own grid: factors spot
/// and vol per underlying (in id order), scenario `s` moving each by its
/// `s`-th grid point.
fn grid_scenarios(policy: &GridPolicy, underlyings: &[UnderlyingInfo]) -> Result<ScenarioSet> {
    let mut factors = Vec::with_capacity(2 * underlyings.len());
    for u in underlyings {
        factors.push((RiskFactor::Spot(u.id.clone()), ShockKind::Relative));
        factors.push((RiskFactor::Vol(u.id.clone()), policy.vol.kind));
    }
    let n = policy.scenario_count();
    let mut sizes = Vec::with_capacity(n * factors.len());
    for s in 0..n {
        for u in underlyings {
            let p = u.points.get(s).copied().ok_or(Error::TooFew {
                what: "grid points",
                min: n,
                got: u.points.len(),
            })?;
            let vol = match p.vol {
                VolPoint::Down => -policy.vol.down,
                VolPoint::Same => 0.0,
                VolPoint::Up => policy.vol.up,
            };
            sizes.extend([p.price_move, vol]);
        }
    }
    let horizon = YearFraction::from_days(policy.horizon_days, DayBasis::Calendar365)?;
    let set = ScenarioSet::new(factors, sizes, horizon)?;
    Ok(match policy.vol.term_scaling {
        Some(scaling) => set.with_vol_term_scaling(scaling),
        None => set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_of_floors_at_zero_and_takes_the_first_maximum() {
        assert_eq!(worst_of(&[-1.0, -2.0]), (0, 0.0));
        assert_eq!(worst_of(&[1.0, 3.0, 3.0, 2.0]), (1, 3.0));
        assert_eq!(worst_of_sum(&[1.0, 0.0], &[0.0, 2.0], 1.0), (1, 2.0));
        // A NaN loss (an overflow's inf - inf without FMA) is not skipped.
        let (i, x) = worst_of(&[1.0, f64::NAN, 3.0]);
        assert!(i == 1 && x.is_nan());
    }
}
