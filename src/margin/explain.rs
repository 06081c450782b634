//! "Why did my margin change?": an account's grid-margin change between
//! two states split into what the positions, the market and the
//! parameters each contributed.

use crate::error::Result;
use crate::instrument::UnderlyingId;
use crate::margin::MarginRequirement;
use crate::margin::grid::GridMarginEngine;
use crate::margin::grid_policy::GridPolicy;
use crate::margin::isolated::finite_result;
use crate::market::MarketSnapshot;
use crate::portfolio::{InstrumentSet, Position};
#[cfg(feature = "serde")]
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One side of a margin comparison: a book, a market and a policy.
#[derive(Debug, Clone, Copy)]
pub struct MarginState<'a> {
    /// The account's positions.
    pub positions: &'a [Position],
    /// The market snapshot.
    pub market: &'a MarketSnapshot,
    /// The grid policy (the parameters).
    pub policy: &'a GridPolicy,
}

/// An account's initial grid margin before and after, and what moved it.
///
/// The three contributions are Shapley values: each driver's change
/// averaged over the six orders in which positions, market and parameters
/// could have changed, so they always sum to the total change and no
/// driver is favoured by being applied first or last.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct MarginChange {
    /// Requirement before, quote currency.
    pub before: MarginRequirement,
    /// Requirement after, quote currency.
    pub after: MarginRequirement,
    /// `after.initial - before.initial`, quote currency.
    pub change: f64,
    /// Part of `change` due to the positions (trades), quote currency.
    pub positions: f64,
    /// Part due to the market (prices, vols, rates, time), quote currency.
    pub market: f64,
    /// Part due to the policy parameters, quote currency.
    pub parameters: f64,
    /// Each underlying's requirement (before the cross-underlying credits
    /// and add-ons) before and after, in id order.
    pub per_underlying: Vec<UnderlyingChange>,
}

/// One underlying's requirement before and after.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct UnderlyingChange {
    /// The underlying.
    pub underlying: UnderlyingId,
    /// Requirement before, quote currency (0 if not held).
    pub before: f64,
    /// Requirement after, quote currency (0 if not held).
    pub after: f64,
}

/// Explains the change of an account's initial grid margin from `before`
/// to `after` (see [`MarginChange`]).
///
/// Builds a [`GridMarginEngine`] for each of the four market x policy
/// combinations on the instruments either book holds (not the whole
/// listing), and margins both books on each: eight margins.
///
/// # Errors
/// As [`GridMarginEngine::new`] and [`GridMarginEngine::account_from_positions`]
/// (an instrument of either book must be in `instruments`, and priceable on
/// both markets).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let btc = UnderlyingId::new("BTC")?;
/// let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
/// let market = |spot: f64| MarketSnapshot::builder(as_of)
///     .underlying(btc.clone(), UnderlyingMarket::new(spot, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap())
///     .build();
/// let (before_market, after_market) = (market(100_000.0)?, market(110_000.0)?);
/// let mut instruments = InstrumentSet::new();
/// let perp = InstrumentId::new("PERP")?;
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// let policy = GridPolicy::cme_span_16(0.10, 0.05)?;
/// let one = [Position::new(perp.clone(), 1.0)];
/// let two = [Position::new(perp, 2.0)];
/// let change = explain_margin_change(
///     &instruments,
///     MarginState { positions: &one, market: &before_market, policy: &policy },
///     MarginState { positions: &two, market: &after_market, policy: &policy },
/// )?;
/// // SPAN's covered extreme move (3 x 10% x 35% = 10.5% of the price) binds:
/// // 10,500 for one perp at 100,000 -> 2 x 11,550 at 110,000.
/// assert!((change.change - 12_600.0).abs() < 1e-6);
/// assert!((change.positions + change.market + change.parameters - change.change).abs() < 1e-6);
/// assert_eq!(change.parameters, 0.0);
/// // Shapley: the trade adds 10,500 before the move and 11,550 after it.
/// assert!((change.positions - 11_025.0).abs() < 1e-6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn explain_margin_change(
    instruments: &InstrumentSet,
    before: MarginState<'_>,
    after: MarginState<'_>,
) -> Result<MarginChange> {
    let held: BTreeSet<_> = before
        .positions
        .iter()
        .chain(after.positions)
        .map(|p| p.instrument.clone())
        .collect();
    let mut subset = InstrumentSet::new();
    for id in &held {
        subset.insert(id.clone(), instruments.get(id)?.clone())?;
    }
    let books = [before.positions, after.positions];
    let markets = [before.market, after.market];
    let policies = [before.policy, after.policy];
    // v[p][m][k]: initial margin of book p on market m under policy k.
    let mut v = [[[0.0; 2]; 2]; 2];
    let mut reqs = [[[MarginRequirement::ZERO; 2]; 2]; 2];
    let mut per_underlying: BTreeMap<UnderlyingId, (f64, f64)> = BTreeMap::new();
    for (m, market) in markets.iter().enumerate() {
        for (k, policy) in policies.iter().enumerate() {
            if subset.is_empty() {
                continue;
            }
            let engine = GridMarginEngine::new(&subset, market, (*policy).clone())?;
            for (p, book) in books.iter().enumerate() {
                let account = engine.account_from_positions(book)?;
                if (m, k) == (p, p) {
                    let detail = engine.margin(&account)?;
                    for u in detail.underlyings {
                        let entry = per_underlying.entry(u.underlying).or_default();
                        if p == 0 {
                            entry.0 = u.requirement;
                        } else {
                            entry.1 = u.requirement;
                        }
                    }
                    reqs[p][m][k] = detail.requirement;
                } else {
                    reqs[p][m][k] = engine.requirement(&account)?;
                }
                v[p][m][k] = reqs[p][m][k].initial();
            }
        }
    }
    // Shapley value of driver i over the 3 drivers (positions, market, parameters).
    let value = |s: [usize; 3]| v[s[0]][s[1]][s[2]];
    let shapley = |i: usize| {
        let mut total = 0.0;
        for mask in 0..8usize {
            if mask & (1 << i) != 0 {
                continue;
            }
            let size = mask.count_ones();
            // |S|! (n - |S| - 1)! / n! for n = 3.
            let weight = match size {
                0 | 2 => 1.0 / 3.0,
                _ => 1.0 / 6.0,
            };
            let without = [mask & 1, (mask >> 1) & 1, (mask >> 2) & 1];
            let mut with = without;
            with[i] = 1;
            total += weight * (value(with) - value(without));
        }
        total
    };
    let before_req = reqs[0][0][0];
    let after_req = reqs[1][1][1];
    Ok(MarginChange {
        before: before_req,
        after: after_req,
        change: after_req.initial() - before_req.initial(),
        positions: shapley(0),
        market: shapley(1),
        parameters: shapley(2),
        per_underlying: per_underlying
            .into_iter()
            .map(|(underlying, (before, after))| UnderlyingChange {
                underlying,
                before,
                after,
            })
            .collect(),
    })
}

/// One methodology's margin and its saving against isolated margin.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct MethodologyMargin {
    /// The methodology.
    pub methodology: crate::margin::Methodology,
    /// Its requirement, quote currency.
    pub requirement: MarginRequirement,
    /// `isolated initial - this initial`, quote currency (negative if it
    /// needs more than isolated).
    pub saving: f64,
    /// `saving / isolated initial` (0 when isolated needs nothing).
    pub saving_fraction: f64,
}

/// The same account under several methodologies, each against the isolated
/// baseline: the capital a venue's portfolio margin frees.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CapitalEfficiency {
    /// Isolated (baseline) requirement, quote currency.
    pub isolated: MarginRequirement,
    /// Every methodology given, isolated first, in the order given.
    pub methodologies: Vec<MethodologyMargin>,
}

/// Compares requirements of one account under several methodologies with
/// its isolated margin.
///
/// # Errors
/// [`crate::Error::TooFew`] unless [`crate::Methodology::Isolated`] is
/// among `requirements`; [`crate::Error::DuplicateId`] if a methodology
/// appears twice; [`crate::Error::NonFiniteResult`] if a saving fraction
/// overflows (an isolated requirement so small that `saving / isolated`
/// exceeds `f64::MAX`).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let report = capital_efficiency(&[
///     (Methodology::Isolated, MarginRequirement::new(1_000.0, 0.5)?),
///     (Methodology::PortfolioGrid, MarginRequirement::new(400.0, 0.8)?),
/// ])?;
/// assert_eq!(report.methodologies[1].saving, 600.0);
/// assert_eq!(report.methodologies[1].saving_fraction, 0.6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn capital_efficiency(
    requirements: &[(crate::margin::Methodology, MarginRequirement)],
) -> Result<CapitalEfficiency> {
    use crate::margin::Methodology;
    for (k, (m, _)) in requirements.iter().enumerate() {
        if requirements[..k].iter().any(|(o, _)| o == m) {
            return Err(crate::Error::DuplicateId {
                what: "methodology",
                id: format!("{m:?}"),
            });
        }
    }
    let isolated = requirements
        .iter()
        .find(|(m, _)| *m == Methodology::Isolated)
        .map(|(_, r)| *r)
        .ok_or(crate::Error::TooFew {
            what: "isolated requirement (the baseline)",
            min: 1,
            got: 0,
        })?;
    let base = isolated.initial();
    let mut ordered: Vec<_> = requirements.to_vec();
    ordered.sort_by_key(|(m, _)| *m != Methodology::Isolated);
    let methodologies = ordered
        .into_iter()
        .map(|(methodology, requirement)| {
            let saving = base - requirement.initial();
            // A tiny baseline can make the fraction overflow.
            let saving_fraction = if base > 0.0 {
                finite_result("saving fraction", saving / base)?
            } else {
                0.0
            };
            Ok(MethodologyMargin {
                methodology,
                requirement,
                saving,
                saving_fraction,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CapitalEfficiency {
        isolated,
        methodologies,
    })
}
