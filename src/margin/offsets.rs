//! Inter-underlying spread credits, in the spirit of SPAN's inter-commodity
//! spread credits.
//!
//! A margin methodology first computes each underlying's standalone
//! requirement and its signed net delta notional. When two positively
//! correlated underlyings carry deltas of opposite signs, part of their
//! directional risk cancels: a [`SpreadCredit`] returns a fraction (the
//! credit rate) of the requirement attributable to the offsetting deltas.
//!
//! Pairs are processed in the priority order of the [`OffsetPolicy`]; each
//! pair consumes the deltas it uses, so one unit of delta earns at most one
//! credit, and the credits of an underlying never exceed its requirement.
//!
//! Shared by the cross-margin and portfolio-grid methodologies. The cross
//! methodology calls the allocating [`OffsetPolicy::apply`]-style routine
//! once per account; a scenario-grid engine that evaluates many accounts
//! against one snapshot resolves the policy to dense indices once
//! ([`OffsetPolicy::resolve`]) and then calls the allocation-free
//! [`ResolvedOffsets::total_credit`] in its hot loop.

use crate::error::{Error, Result, positive};
use crate::instrument::UnderlyingId;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A credit between two positively correlated underlyings.
///
/// * `credit_rate` in `(0, 1]`: the fraction of each leg's requirement that
///   is returned per unit of offsetting delta (SPAN's "credit rate").
/// * `ratio > 0`: the notional of `b` (quote currency) that offsets one unit
///   of notional of `a` (SPAN's "delta spread ratio" expressed in notional).
///   `ratio = 1` pairs equal notionals; `ratio = 2` needs two of `b` per one
///   of `a`, e.g. when `b` is half as volatile.
///
/// A credit always describes positively correlated underlyings: it applies
/// when the two net deltas have opposite signs (long one, short the other).
///
/// ```
/// use portfolio_margin::{SpreadCredit, UnderlyingId};
/// let btc = UnderlyingId::new("BTC")?;
/// let eth = UnderlyingId::new("ETH")?;
/// let credit = SpreadCredit::new(btc.clone(), eth.clone(), 0.5, 1.0)?;
/// assert_eq!(credit.credit_rate(), 0.5);
/// // From a correlation of 0.8, granting the whole theoretical credit:
/// // 1 - sqrt((1 - 0.8) / 2) = 1 - sqrt(0.1).
/// let c = SpreadCredit::from_correlation(btc.clone(), eth, 0.8, 1.0)?;
/// assert!((c.credit_rate() - (1.0 - 0.1f64.sqrt())).abs() < 1e-15);
/// assert!(SpreadCredit::new(btc.clone(), btc, 0.5, 1.0).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::SpreadCredit", into = "raw::SpreadCredit")
)]
pub struct SpreadCredit {
    a: UnderlyingId,
    b: UnderlyingId,
    credit_rate: f64,
    ratio: f64,
}

impl SpreadCredit {
    /// A credit between `a` and `b` at `credit_rate` (a fraction in
    /// `(0, 1]`), with `ratio` quote-currency notional of `b` offsetting one
    /// of `a`.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if `a == b`; [`Error::InvalidInput`] unless
    /// `credit_rate` is in `(0, 1]` and `ratio` is finite and `> 0`.
    pub fn new(a: UnderlyingId, b: UnderlyingId, credit_rate: f64, ratio: f64) -> Result<Self> {
        if a == b {
            return Err(Error::DuplicateId {
                what: "spread credit leg",
                id: a.to_string(),
            });
        }
        if !(credit_rate > 0.0 && credit_rate <= 1.0) {
            return Err(Error::InvalidInput {
                what: "spread credit rate",
                rule: "in (0, 1]",
                value: credit_rate,
            });
        }
        positive("spread credit ratio", ratio)?;
        Ok(SpreadCredit {
            a,
            b,
            credit_rate,
            ratio,
        })
    }

    /// A credit (with `ratio = 1`) from the correlation `correlation` of the
    /// two underlyings' returns.
    ///
    /// The theoretical credit is the risk an equal-volatility,
    /// equal-notional spread saves relative to its two naked legs: the
    /// spread's standard deviation is `sigma N sqrt(2 (1 - rho))`, the legs'
    /// `2 sigma N`, so the credit rate is `1 - sqrt((1 - rho) / 2)` (1 at
    /// `rho = 1`, about 0.29 as `rho` falls to 0). `fraction_granted`
    /// in `(0, 1]` scales it down, as clearing houses grant less than the
    /// full correlation benefit: `rate = fraction_granted x (1 - sqrt((1 - rho) / 2))`.
    ///
    /// Use [`SpreadCredit::with_ratio`] for unequal volatilities.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `correlation` is not in `[-1, 1]`, or is
    /// `<= 0` (an uncorrelated or negatively correlated pair earns no credit
    /// on opposite deltas), or `fraction_granted` is not in `(0, 1]`;
    /// [`Error::DuplicateId`] if `a == b`.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{SpreadCredit, UnderlyingId};
    /// let (spx, ndx) = (UnderlyingId::new("SPX")?, UnderlyingId::new("NDX")?);
    /// // rho = 0.9, 70% of the theoretical credit: 0.7 x (1 - sqrt(0.05)).
    /// let c = SpreadCredit::from_correlation(spx.clone(), ndx.clone(), 0.9, 0.7)?;
    /// assert!((c.credit_rate() - 0.7 * (1.0 - 0.05f64.sqrt())).abs() < 1e-15);
    /// assert!(SpreadCredit::from_correlation(spx, ndx, -0.2, 1.0).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn from_correlation(
        a: UnderlyingId,
        b: UnderlyingId,
        correlation: f64,
        fraction_granted: f64,
    ) -> Result<Self> {
        if !(-1.0..=1.0).contains(&correlation) {
            return Err(Error::InvalidInput {
                what: "spread correlation",
                rule: "in [-1, 1]",
                value: correlation,
            });
        }
        if correlation <= 0.0 {
            return Err(Error::InvalidInput {
                what: "spread correlation",
                rule: "> 0 (only positively correlated pairs earn a spread credit)",
                value: correlation,
            });
        }
        if !(fraction_granted > 0.0 && fraction_granted <= 1.0) {
            return Err(Error::InvalidInput {
                what: "spread credit fraction granted",
                rule: "in (0, 1]",
                value: fraction_granted,
            });
        }
        let rate = fraction_granted * (1.0 - ((1.0 - correlation) / 2.0).sqrt());
        SpreadCredit::new(a, b, rate, 1.0)
    }

    /// The same credit with another notional ratio (quote-currency notional
    /// of `b` per one of `a`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `ratio` is finite and `> 0`.
    pub fn with_ratio(mut self, ratio: f64) -> Result<Self> {
        self.ratio = positive("spread credit ratio", ratio)?;
        Ok(self)
    }

    /// First leg.
    pub fn a(&self) -> &UnderlyingId {
        &self.a
    }
    /// Second leg.
    pub fn b(&self) -> &UnderlyingId {
        &self.b
    }
    /// Fraction of each leg's requirement returned per offsetting delta, in `(0, 1]`.
    pub fn credit_rate(&self) -> f64 {
        self.credit_rate
    }
    /// Quote-currency notional of `b` that offsets one of `a`, `> 0`.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }
}

/// The spread credits a methodology may grant, in priority order.
///
/// Pairs earlier in the list consume offsetting deltas first (SPAN
/// processes its inter-commodity spreads in priority order the same way):
/// list the most correlated pairs first. No pair may repeat, in either
/// order, and no underlying may be paired with itself. The default policy
/// grants no credit.
///
/// ```
/// use portfolio_margin::{OffsetPolicy, SpreadCredit, UnderlyingId};
/// let (btc, eth) = (UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?);
/// let policy = OffsetPolicy::new(vec![SpreadCredit::new(btc.clone(), eth.clone(), 0.5, 1.0)?])?;
/// assert_eq!(policy.credits().len(), 1);
/// // The same pair the other way round is a duplicate.
/// let twice = vec![
///     SpreadCredit::new(btc.clone(), eth.clone(), 0.5, 1.0)?,
///     SpreadCredit::new(eth, btc, 0.4, 1.0)?,
/// ];
/// assert!(OffsetPolicy::new(twice).is_err());
/// assert!(OffsetPolicy::default().credits().is_empty());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::OffsetPolicy", into = "raw::OffsetPolicy")
)]
pub struct OffsetPolicy {
    credits: Vec<SpreadCredit>,
}

impl OffsetPolicy {
    /// A policy from credits in priority order.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] (what `"spread credit pair"`, id `"a/b"`) if
    /// a pair appears twice, in either order.
    pub fn new(credits: Vec<SpreadCredit>) -> Result<Self> {
        let mut seen = HashSet::with_capacity(credits.len());
        for c in &credits {
            let key = if c.a <= c.b {
                (&c.a, &c.b)
            } else {
                (&c.b, &c.a)
            };
            if !seen.insert(key) {
                return Err(Error::DuplicateId {
                    what: "spread credit pair",
                    id: format!("{}/{}", c.a, c.b),
                });
            }
        }
        Ok(OffsetPolicy { credits })
    }

    /// The credits, in priority order.
    pub fn credits(&self) -> &[SpreadCredit] {
        &self.credits
    }

    /// The credits granted to `exposures` (one per underlying), one entry
    /// per pair that found offsetting deltas, in priority order.
    ///
    /// See [`AppliedCredit`] for the formulas. The credits of one
    /// underlying, summed over every pair it belongs to, never exceed its
    /// `requirement`.
    ///
    /// # Units
    /// Quote currency throughout.
    ///
    /// # Errors
    /// [`Error::InvalidElement`] naming the exposure index if a
    /// `requirement` is negative or not finite or a `delta_notional` is not
    /// finite; [`Error::DuplicateId`] if an underlying appears twice.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{OffsetPolicy, SpreadCredit, UnderlyingExposure, UnderlyingId};
    /// let (btc, eth) = (UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?);
    /// let policy = OffsetPolicy::new(vec![SpreadCredit::new(btc.clone(), eth.clone(), 0.5, 1.0)?])?;
    /// // Long 1 000 000 of BTC (requirement 150 000), short 400 000 of ETH
    /// // (requirement 80 000): 400 000 of spread.
    /// let credits = policy.apply(&[
    ///     UnderlyingExposure { underlying: btc, requirement: 150_000.0, delta_notional: 1_000_000.0 },
    ///     UnderlyingExposure { underlying: eth, requirement: 80_000.0, delta_notional: -400_000.0 },
    /// ])?;
    /// assert_eq!(credits[0].spread_notional, 400_000.0);
    /// assert_eq!(credits[0].credit_a, 0.5 * 150_000.0 * 0.4); // 30 000
    /// assert_eq!(credits[0].credit_b, 0.5 * 80_000.0); // 40 000: all of ETH's delta is used
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn apply(&self, exposures: &[UnderlyingExposure]) -> Result<Vec<AppliedCredit>> {
        let mut seen = HashSet::with_capacity(exposures.len());
        for (index, e) in exposures.iter().enumerate() {
            if !(e.requirement.is_finite() && e.requirement >= 0.0) {
                return Err(Error::InvalidElement {
                    what: "exposure requirement",
                    index,
                    rule: "finite and >= 0",
                    value: e.requirement,
                });
            }
            if !e.delta_notional.is_finite() {
                return Err(Error::InvalidElement {
                    what: "exposure delta notional",
                    index,
                    rule: "finite",
                    value: e.delta_notional,
                });
            }
            if !seen.insert(&e.underlying) {
                return Err(Error::DuplicateId {
                    what: "exposure underlying",
                    id: e.underlying.to_string(),
                });
            }
        }
        Ok(apply_spread_credits(self, exposures))
    }

    /// Resolves the credits' underlyings to dense indices once, for
    /// [`ResolvedOffsets::total_credit`]. Pairs with a leg that `index_of`
    /// does not know are dropped (they can never apply); priority order is
    /// kept.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::{OffsetPolicy, SpreadCredit, UnderlyingId};
    /// let ids = [UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?];
    /// let policy = OffsetPolicy::new(vec![SpreadCredit::new(ids[0].clone(), ids[1].clone(), 0.5, 1.0)?])?;
    /// let resolved = policy.resolve(|u| ids.iter().position(|x| x == u));
    /// let mut scratch = [0.0; 4];
    /// // Requirements 150 and 80; deltas +1 000 and -400 (quote currency).
    /// let credit = resolved.total_credit(&[150.0, 80.0], &[1_000.0, -400.0], &mut scratch)?;
    /// assert!((credit - (0.5 * 150.0 * 0.4 + 0.5 * 80.0)).abs() < 1e-12);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn resolve(&self, index_of: impl Fn(&UnderlyingId) -> Option<usize>) -> ResolvedOffsets {
        let pairs: Vec<ResolvedPair> = self
            .credits
            .iter()
            .filter_map(|c| {
                Some(ResolvedPair {
                    a: index_of(&c.a)?,
                    b: index_of(&c.b)?,
                    rate: c.credit_rate,
                    ratio: c.ratio,
                })
            })
            .filter(|p| p.a != p.b)
            .collect();
        let required_len = pairs.iter().map(|p| p.a.max(p.b) + 1).max().unwrap_or(0);
        ResolvedOffsets {
            pairs,
            required_len,
        }
    }
}

/// One underlying's standalone risk and direction, the input of the spread
/// credit algorithm.
///
/// `requirement` should be the price-risk part of the underlying's margin
/// (the part a delta offset can remove), not charges for volatility or
/// premium: the credit returned per unit of offsetting delta is
/// `rate x requirement / |delta_notional|`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct UnderlyingExposure {
    /// The underlying.
    pub underlying: UnderlyingId,
    /// Standalone requirement, quote currency, finite and `>= 0`.
    pub requirement: f64,
    /// Signed net delta x price, quote currency (positive long).
    pub delta_notional: f64,
}

/// A credit granted for one pair of a policy.
///
/// With `D_a`, `D_b` the pair's deltas left after higher-priority pairs and
/// `|D_a0|`, `|D_b0|` the original net deltas:
///
/// * `spread_notional = min(|D_a|, |D_b| / ratio)`,
/// * `credit_a = rate x requirement_a x spread_notional / |D_a0|`,
/// * `credit_b = rate x requirement_b x spread_notional x ratio / |D_b0|`,
///
/// then `spread_notional` of `a` and `spread_notional x ratio` of `b` are
/// consumed. Each credit is capped so that an underlying's credits, over all
/// pairs, never exceed its requirement.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AppliedCredit {
    /// First leg of the pair.
    pub a: UnderlyingId,
    /// Second leg of the pair.
    pub b: UnderlyingId,
    /// Number of spreads, as quote-currency notional of leg `a`.
    pub spread_notional: f64,
    /// Credit to `a`'s requirement, quote currency, `>= 0`.
    pub credit_a: f64,
    /// Credit to `b`'s requirement, quote currency, `>= 0`.
    pub credit_b: f64,
}

/// A policy's pairs with underlyings resolved to dense indices
/// (see [`OffsetPolicy::resolve`]); evaluates the total credit without
/// allocating.
///
/// ```
/// use portfolio_margin::{OffsetPolicy, SpreadCredit, UnderlyingId};
/// let ids = [UnderlyingId::new("A")?, UnderlyingId::new("B")?, UnderlyingId::new("C")?];
/// let policy = OffsetPolicy::new(vec![SpreadCredit::new(ids[2].clone(), ids[0].clone(), 0.3, 1.0)?])?;
/// let resolved = policy.resolve(|u| ids.iter().position(|x| x == u));
/// assert_eq!(resolved.required_len(), 3);
/// let mut scratch = vec![0.0; 2 * 3];
/// // Same-sign deltas: no credit.
/// assert_eq!(resolved.total_credit(&[10.0, 0.0, 10.0], &[100.0, 0.0, 100.0], &mut scratch)?, 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedOffsets {
    pairs: Vec<ResolvedPair>,
    required_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ResolvedPair {
    a: usize,
    b: usize,
    rate: f64,
    ratio: f64,
}

impl ResolvedOffsets {
    /// The smallest length of the `requirement` and `delta` slices that
    /// covers every resolved pair (largest index + 1; 0 without pairs).
    pub fn required_len(&self) -> usize {
        self.required_len
    }

    /// True when no pair resolved (every total credit is 0).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Sum of all credits (both legs of every pair) for the requirements
    /// and signed delta notionals indexed as resolved; the same numbers as
    /// summing [`OffsetPolicy::apply`]'s `credit_a + credit_b`, in priority
    /// order.
    ///
    /// `requirement[i]` must be finite and `>= 0` and `delta[i]` finite.
    /// `scratch` is working space of length at least `2 x requirement.len()`;
    /// its contents on entry do not matter.
    ///
    /// # Units
    /// Quote currency.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `delta.len() != requirement.len()`, if
    /// `requirement.len() < required_len()`, or if `scratch` is shorter than
    /// `2 x requirement.len()`; [`Error::InvalidElement`] naming the index
    /// of a requirement or delta that breaks the rules above;
    /// [`Error::NonFiniteResult`] if the total overflows.
    pub fn total_credit(
        &self,
        requirement: &[f64],
        delta: &[f64],
        scratch: &mut [f64],
    ) -> Result<f64> {
        let n = requirement.len();
        if delta.len() != n {
            return Err(Error::LengthMismatch {
                what: "spread credit deltas",
                expected: n,
                got: delta.len(),
            });
        }
        if n < self.required_len {
            return Err(Error::LengthMismatch {
                what: "spread credit requirements",
                expected: self.required_len,
                got: n,
            });
        }
        let Some(scratch) = scratch.get_mut(..2 * n) else {
            return Err(Error::LengthMismatch {
                what: "spread credit scratch",
                expected: 2 * n,
                got: scratch.len(),
            });
        };
        for (index, (&r, &d)) in requirement.iter().zip(delta).enumerate() {
            if !(r.is_finite() && r >= 0.0) {
                return Err(Error::InvalidElement {
                    what: "spread credit requirement",
                    index,
                    rule: "finite and >= 0",
                    value: r,
                });
            }
            if !d.is_finite() {
                return Err(Error::InvalidElement {
                    what: "spread credit delta notional",
                    index,
                    rule: "finite",
                    value: d,
                });
            }
        }
        let (remaining, used) = scratch.split_at_mut(n);
        remaining.copy_from_slice(delta);
        used.fill(0.0);
        let mut total = 0.0;
        run_credits(
            self.pairs.iter().copied(),
            requirement,
            delta,
            remaining,
            used,
            |_, _, credit_a, credit_b| total += credit_a + credit_b,
        );
        if !total.is_finite() {
            return Err(Error::NonFiniteResult {
                what: "total spread credit",
                value: total,
            });
        }
        Ok(total)
    }
}

/// The spread credits for `exposures` under `policy` (see [`AppliedCredit`]).
///
/// Exposures are looked up by underlying (the first match if one repeats;
/// callers pass one entry per underlying). Requirements must be finite and
/// `>= 0` and deltas finite: [`OffsetPolicy::apply`] checks, this does not.
pub(crate) fn apply_spread_credits(
    policy: &OffsetPolicy,
    exposures: &[UnderlyingExposure],
) -> Vec<AppliedCredit> {
    let resolved = policy.resolve(|u| exposures.iter().position(|e| &e.underlying == u));
    let requirement: Vec<f64> = exposures.iter().map(|e| e.requirement).collect();
    let delta: Vec<f64> = exposures.iter().map(|e| e.delta_notional).collect();
    let mut remaining = delta.clone();
    let mut used = vec![0.0; exposures.len()];
    let mut out = Vec::new();
    run_credits(
        resolved.pairs.iter().copied(),
        &requirement,
        &delta,
        &mut remaining,
        &mut used,
        |pair, spread_notional, credit_a, credit_b| {
            if let (Some(ea), Some(eb)) = (exposures.get(pair.a), exposures.get(pair.b)) {
                out.push(AppliedCredit {
                    a: ea.underlying.clone(),
                    b: eb.underlying.clone(),
                    spread_notional,
                    credit_a,
                    credit_b,
                });
            }
        },
    );
    out
}

/// The algorithm shared by both entry points: walks `pairs` in order,
/// consuming `remaining` deltas and accumulating `used` credit per index,
/// and reports each pair that found a spread.
fn run_credits(
    pairs: impl Iterator<Item = ResolvedPair>,
    requirement: &[f64],
    original: &[f64],
    remaining: &mut [f64],
    used: &mut [f64],
    mut report: impl FnMut(ResolvedPair, f64, f64, f64),
) {
    for pair in pairs {
        let (Some(&req_a), Some(&req_b), Some(&orig_a), Some(&orig_b)) = (
            requirement.get(pair.a),
            requirement.get(pair.b),
            original.get(pair.a),
            original.get(pair.b),
        ) else {
            continue;
        };
        let (Some(&da), Some(&db)) = (remaining.get(pair.a), remaining.get(pair.b)) else {
            continue;
        };
        // A positively correlated pair offsets only opposite deltas.
        let opposite = (da > 0.0 && db < 0.0) || (da < 0.0 && db > 0.0);
        if !opposite {
            continue;
        }
        let b_in_a = db.abs() / pair.ratio;
        let (spread, consumed_b, left_a, left_b) = if da.abs() <= b_in_a {
            let consumed_b = da.abs() * pair.ratio;
            (
                da.abs(),
                consumed_b,
                0.0,
                db - db.signum() * consumed_b.min(db.abs()),
            )
        } else {
            (b_in_a, db.abs(), da - da.signum() * b_in_a, 0.0)
        };
        if spread.is_nan() || spread <= 0.0 {
            continue;
        }
        let room_a = (req_a - used.get(pair.a).copied().unwrap_or(0.0)).max(0.0);
        let room_b = (req_b - used.get(pair.b).copied().unwrap_or(0.0)).max(0.0);
        let credit_a = (pair.rate * req_a * (spread / orig_a.abs()).min(1.0)).min(room_a);
        let credit_b = (pair.rate * req_b * (consumed_b / orig_b.abs()).min(1.0)).min(room_b);
        if let Some(r) = remaining.get_mut(pair.a) {
            *r = left_a;
        }
        if let Some(r) = remaining.get_mut(pair.b) {
            *r = left_b;
        }
        if let Some(u) = used.get_mut(pair.a) {
            *u += credit_a;
        }
        if let Some(u) = used.get_mut(pair.b) {
            *u += credit_b;
        }
        report(pair, spread, credit_a, credit_b);
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn one() -> f64 {
        1.0
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SpreadCredit {
        a: UnderlyingId,
        b: UnderlyingId,
        credit_rate: f64,
        #[serde(default = "one")]
        ratio: f64,
    }

    impl TryFrom<SpreadCredit> for super::SpreadCredit {
        type Error = Error;
        fn try_from(r: SpreadCredit) -> Result<Self> {
            super::SpreadCredit::new(r.a, r.b, r.credit_rate, r.ratio)
        }
    }

    impl From<super::SpreadCredit> for SpreadCredit {
        fn from(c: super::SpreadCredit) -> Self {
            SpreadCredit {
                a: c.a,
                b: c.b,
                credit_rate: c.credit_rate,
                ratio: c.ratio,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct OffsetPolicy {
        #[serde(default)]
        credits: Vec<super::SpreadCredit>,
    }

    impl TryFrom<OffsetPolicy> for super::OffsetPolicy {
        type Error = Error;
        fn try_from(r: OffsetPolicy) -> Result<Self> {
            super::OffsetPolicy::new(r.credits)
        }
    }

    impl From<super::OffsetPolicy> for OffsetPolicy {
        fn from(p: super::OffsetPolicy) -> Self {
            OffsetPolicy { credits: p.credits }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> UnderlyingId {
        UnderlyingId::new(s).unwrap()
    }

    fn exposure(u: &str, requirement: f64, delta_notional: f64) -> UnderlyingExposure {
        UnderlyingExposure {
            underlying: id(u),
            requirement,
            delta_notional,
        }
    }

    fn total(credits: &[AppliedCredit]) -> f64 {
        credits.iter().map(|c| c.credit_a + c.credit_b).sum()
    }

    #[test]
    fn correlation_rate_matches_closed_form() {
        // rho = 0.5: 1 - sqrt(0.25) = 0.5; granted 80%: 0.4.
        let c = SpreadCredit::from_correlation(id("A"), id("B"), 0.5, 0.8).unwrap();
        assert_eq!(c.credit_rate(), 0.8 * 0.5);
        assert_eq!(c.ratio(), 1.0);
        // rho = 1: the whole requirement.
        let c = SpreadCredit::from_correlation(id("A"), id("B"), 1.0, 1.0).unwrap();
        assert_eq!(c.credit_rate(), 1.0);
        for bad in [0.0, -0.5, -1.0, 1.5, f64::NAN, f64::INFINITY] {
            let err = SpreadCredit::from_correlation(id("A"), id("B"), bad, 1.0).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        what: "spread correlation",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        for bad in [0.0, 1.1, f64::NAN] {
            assert!(SpreadCredit::from_correlation(id("A"), id("B"), 0.5, bad).is_err());
        }
    }

    #[test]
    fn construction_rules() {
        for bad in [0.0, -0.1, 1.01, f64::NAN] {
            assert!(SpreadCredit::new(id("A"), id("B"), bad, 1.0).is_err());
        }
        for bad in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(SpreadCredit::new(id("A"), id("B"), 0.5, bad).is_err());
        }
        assert!(matches!(
            SpreadCredit::new(id("A"), id("A"), 0.5, 1.0),
            Err(Error::DuplicateId { .. })
        ));
        let ab = SpreadCredit::new(id("A"), id("B"), 0.5, 1.0).unwrap();
        let ba = SpreadCredit::new(id("B"), id("A"), 0.5, 1.0).unwrap();
        let ac = SpreadCredit::new(id("A"), id("C"), 0.5, 1.0).unwrap();
        assert!(OffsetPolicy::new(vec![ab.clone(), ac.clone()]).is_ok());
        assert!(OffsetPolicy::new(vec![ab.clone(), ba]).is_err());
        assert!(OffsetPolicy::new(vec![ab.clone(), ab]).is_err());
    }

    #[test]
    fn hand_computed_two_legs_with_ratio() {
        // b is half as volatile: 2 of b offset 1 of a.
        let policy =
            OffsetPolicy::new(vec![SpreadCredit::new(id("A"), id("B"), 0.6, 2.0).unwrap()])
                .unwrap();
        // A long 1 000 (req 100), B short 1 000 (req 50).
        // spreads = min(1000, 1000 / 2) = 500 of A, consuming 1000 of B.
        // credit_a = 0.6 x 100 x 500 / 1000 = 30; credit_b = 0.6 x 50 x 1000 / 1000 = 30.
        let credits = apply_spread_credits(
            &policy,
            &[exposure("A", 100.0, 1_000.0), exposure("B", 50.0, -1_000.0)],
        );
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].spread_notional, 500.0);
        assert_eq!(credits[0].credit_a, 30.0);
        assert_eq!(credits[0].credit_b, 30.0);
    }

    #[test]
    fn priority_order_consumes_deltas() {
        // A long 1 000 (req 200); B short 600 (req 90); C short 1 000 (req 100).
        // Pair A-B first: spreads 600, credit_a = 0.5 x 200 x 0.6 = 60,
        // credit_b = 0.5 x 90 x 1 = 45; A has 400 left.
        // Pair A-C next: spreads 400, credit_a = 0.25 x 200 x 0.4 = 20,
        // credit_c = 0.25 x 100 x 0.4 = 10.
        let policy = OffsetPolicy::new(vec![
            SpreadCredit::new(id("A"), id("B"), 0.5, 1.0).unwrap(),
            SpreadCredit::new(id("C"), id("A"), 0.25, 1.0).unwrap(),
        ])
        .unwrap();
        let exposures = [
            exposure("A", 200.0, 1_000.0),
            exposure("B", 90.0, -600.0),
            exposure("C", 100.0, -1_000.0),
        ];
        let credits = policy.apply(&exposures).unwrap();
        assert_eq!(credits.len(), 2);
        assert_eq!(
            (
                credits[0].spread_notional,
                credits[0].credit_a,
                credits[0].credit_b
            ),
            (600.0, 60.0, 45.0)
        );
        // The second pair is listed (C, A): a = C.
        assert_eq!(credits[1].a, id("C"));
        assert_eq!(
            (
                credits[1].spread_notional,
                credits[1].credit_a,
                credits[1].credit_b
            ),
            (400.0, 10.0, 20.0)
        );
        // Reversed priority: A-C takes all of A's delta first, B gets nothing.
        let reversed = OffsetPolicy::new(policy.credits().iter().rev().cloned().collect()).unwrap();
        let credits = reversed.apply(&exposures).unwrap();
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].credit_a, 0.25 * 100.0);
        assert_eq!(credits[0].credit_b, 0.25 * 200.0);
    }

    #[test]
    fn same_sign_zero_delta_and_missing_legs_earn_nothing() {
        let policy =
            OffsetPolicy::new(vec![SpreadCredit::new(id("A"), id("B"), 0.5, 1.0).unwrap()])
                .unwrap();
        for exposures in [
            vec![exposure("A", 10.0, 100.0), exposure("B", 10.0, 50.0)],
            vec![exposure("A", 10.0, -100.0), exposure("B", 10.0, -50.0)],
            vec![exposure("A", 10.0, 0.0), exposure("B", 10.0, -50.0)],
            vec![exposure("A", 10.0, 100.0), exposure("C", 10.0, -50.0)],
            vec![],
        ] {
            assert!(policy.apply(&exposures).unwrap().is_empty());
        }
    }

    #[test]
    fn credits_never_exceed_the_requirement() {
        // Rate 1, A offset by B then by C: A receives
        // 1 x 100 x (500 + 500) / 1000 = 100, its whole requirement and no
        // more (the cap guards the rounding of such sums).
        let policy = OffsetPolicy::new(vec![
            SpreadCredit::new(id("A"), id("B"), 1.0, 1.0).unwrap(),
            SpreadCredit::new(id("A"), id("C"), 1.0, 1.0).unwrap(),
        ])
        .unwrap();
        let exposures = [
            exposure("A", 100.0, 1_000.0),
            exposure("B", 40.0, -500.0),
            exposure("C", 70.0, -800.0),
        ];
        let credits = policy.apply(&exposures).unwrap();
        let a: f64 = credits.iter().map(|c| c.credit_a).sum();
        assert_eq!(a, 100.0);
        assert_eq!(credits[0].credit_b, 40.0);
        // C used 500 of its 800: 70 x 500 / 800.
        assert_eq!(credits[1].credit_b, 70.0 * 500.0 / 800.0);
    }

    #[test]
    fn resolved_total_equals_the_allocating_path() {
        let policy = OffsetPolicy::new(vec![
            SpreadCredit::new(id("A"), id("B"), 0.5, 1.5).unwrap(),
            SpreadCredit::new(id("C"), id("A"), 0.25, 1.0).unwrap(),
            SpreadCredit::new(id("B"), id("C"), 0.7, 0.8).unwrap(),
            SpreadCredit::new(id("B"), id("Z"), 0.7, 0.8).unwrap(),
        ])
        .unwrap();
        let exposures = [
            exposure("A", 200.0, 1_000.0),
            exposure("B", 90.0, -600.0),
            exposure("C", 100.0, 300.0),
        ];
        let ids: Vec<UnderlyingId> = exposures.iter().map(|e| e.underlying.clone()).collect();
        let resolved = policy.resolve(|u| ids.iter().position(|x| x == u));
        assert_eq!(resolved.required_len(), 3);
        let req: Vec<f64> = exposures.iter().map(|e| e.requirement).collect();
        let delta: Vec<f64> = exposures.iter().map(|e| e.delta_notional).collect();
        let mut scratch = vec![f64::NAN; 6];
        let fast = resolved.total_credit(&req, &delta, &mut scratch).unwrap();
        let slow = total(&policy.apply(&exposures).unwrap());
        assert_eq!(fast, slow);
        assert!(fast > 0.0);
        // Wrong lengths are errors, not panics.
        assert!(
            resolved
                .total_credit(&req, &delta[..2], &mut scratch)
                .is_err()
        );
        assert!(
            resolved
                .total_credit(&req[..2], &delta[..2], &mut scratch)
                .is_err()
        );
        assert!(
            resolved
                .total_credit(&req, &delta, &mut scratch[..5])
                .is_err()
        );
    }

    #[test]
    fn apply_validates_exposures() {
        let policy = OffsetPolicy::default();
        assert!(policy.apply(&[exposure("A", -1.0, 0.0)]).is_err());
        assert!(policy.apply(&[exposure("A", f64::NAN, 0.0)]).is_err());
        assert!(policy.apply(&[exposure("A", 1.0, f64::INFINITY)]).is_err());
        assert!(
            policy
                .apply(&[exposure("A", 1.0, 1.0), exposure("A", 1.0, 1.0)])
                .is_err()
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_validates() {
        let json = r#"{"credits":[{"a":"BTC","b":"ETH","credit_rate":0.5}]}"#;
        let p: OffsetPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(p.credits()[0].ratio(), 1.0);
        let back: OffsetPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        for bad in [
            r#"{"credits":[{"a":"BTC","b":"ETH","credit_rate":1.5}]}"#,
            r#"{"credits":[{"a":"BTC","b":"BTC","credit_rate":0.5}]}"#,
            r#"{"credits":[{"a":"BTC","b":"ETH","credit_rate":0.5},{"a":"ETH","b":"BTC","credit_rate":0.5}]}"#,
            r#"{"credits":[{"a":"BTC","b":"ETH","credit_rate":0.5,"rate":1}]}"#,
        ] {
            assert!(serde_json::from_str::<OffsetPolicy>(bad).is_err(), "{bad}");
        }
    }
}
