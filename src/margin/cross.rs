//! Cross margin: positions on the same underlying net against each other,
//! then spread credits between correlated underlyings. The rules are
//! documented on [`cross_margin`].

use crate::error::Result;
use crate::instrument::{OptionKind, Settlement, UnderlyingId};
use crate::margin::MarginRequirement;
use crate::margin::isolated::{
    Assessed, IsolatedPolicy, Leg, assess, finite_result, group_by_underlying, isolated_subtotal,
    maintenance_fraction,
};
use crate::margin::offsets::{
    AppliedCredit, OffsetPolicy, UnderlyingExposure, apply_spread_credits,
};
use crate::market::MarketSnapshot;
use crate::portfolio::{InstrumentSet, Portfolio};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Configuration of the cross methodology.
///
/// * `isolated`: the per-position rates netting starts from (futures and
///   spot rates, short-option charges);
/// * `offsets`: spread credits between underlyings (none by default);
/// * `maintenance_fraction`: maintenance as a fraction of initial, in
///   `[0, 1]` (default 0.5, as [`IsolatedPolicy`]).
///
/// ```
/// use portfolio_margin::{CrossPolicy, IsolatedPolicy, OffsetPolicy, SpreadCredit, UnderlyingId};
/// let (btc, eth) = (UnderlyingId::new("BTC")?, UnderlyingId::new("ETH")?);
/// let offsets = OffsetPolicy::new(vec![SpreadCredit::from_correlation(btc, eth, 0.85, 0.8)?])?;
/// let policy = CrossPolicy::new(IsolatedPolicy::default(), offsets, 0.6)?;
/// assert_eq!(policy.maintenance_fraction(), 0.6);
/// assert_eq!(CrossPolicy::default().maintenance_fraction(), 0.5);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::CrossPolicy", into = "raw::CrossPolicy")
)]
pub struct CrossPolicy {
    isolated: IsolatedPolicy,
    offsets: OffsetPolicy,
    maintenance_fraction: f64,
}

impl Default for CrossPolicy {
    fn default() -> Self {
        CrossPolicy {
            isolated: IsolatedPolicy::default(),
            offsets: OffsetPolicy::default(),
            maintenance_fraction: 0.5,
        }
    }
}

impl CrossPolicy {
    /// A policy from its parts.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] unless `maintenance_fraction` is in `[0, 1]`.
    pub fn new(
        isolated: IsolatedPolicy,
        offsets: OffsetPolicy,
        maintenance_fraction: f64,
    ) -> Result<Self> {
        Ok(CrossPolicy {
            isolated,
            offsets,
            maintenance_fraction: self::maintenance_fraction(maintenance_fraction)?,
        })
    }
    /// The per-position rates.
    pub fn isolated(&self) -> &IsolatedPolicy {
        &self.isolated
    }
    /// The spread credits between underlyings.
    pub fn offsets(&self) -> &OffsetPolicy {
        &self.offsets
    }
    /// Maintenance as a fraction of initial, in `[0, 1]`.
    pub fn maintenance_fraction(&self) -> f64 {
        self.maintenance_fraction
    }
}

/// One underlying's cross margin and how it was reached. Quote currency.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct UnderlyingMargin {
    /// The underlying.
    pub underlying: UnderlyingId,
    /// Its spot price.
    pub spot: f64,
    /// Sum of the positions' absolute delta notionals (before netting), `>= 0`.
    pub gross_delta_notional: f64,
    /// Signed net delta x spot of every position (options included).
    pub net_delta_notional: f64,
    /// Isolated initial margin of the same positions, `>= 0`.
    pub isolated_initial: f64,
    /// Market value of the option positions, `>= 0`.
    pub option_premium: f64,
    /// Short-option charge after spread recognition, `>= 0`.
    pub short_option_charge: f64,
    /// Charge on the netted delta, `>= 0`, before spread credits.
    pub delta_charge: f64,
    /// Spread credits received from the offset policy, `>= 0`.
    pub spread_credit: f64,
    /// The underlying's requirement after credits:
    /// `min(premium + short-option charge + delta charge, isolated) - credit`.
    pub requirement: MarginRequirement,
}

/// Cross margin of a portfolio.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CrossMargin {
    /// Total requirement, quote currency: the sum over underlyings.
    pub requirement: MarginRequirement,
    /// One entry per underlying held, in id order.
    pub underlyings: Vec<UnderlyingMargin>,
    /// The spread credits granted, in the policy's priority order.
    pub credits: Vec<AppliedCredit>,
}

/// Cross margin: netting per underlying, then spread credits between
/// underlyings.
///
/// Per underlying, three charges replace the isolated per-position rules:
///
/// 1. **Option premium**: every option position's market value, as in the
///    isolated rules (long options are paid in full, short options carry
///    their liability).
/// 2. **Short-option charge with vertical-spread recognition**: each short
///    option keeps its isolated (naked) charge per unit of underlying,
///    except the units covered by a long option of the same underlying,
///    kind and settlement expiring no earlier, which are charged the
///    spread's maximum loss instead, if lower (Cboe's spread rule: for calls
///    `max(K_long - K_short, 0)`, for puts `max(K_short - K_long, 0)` per
///    unit; coin-settled calls `spot x max(K_long - K_short, 0) / K_long`,
///    the largest coin payout of the spread, converted at spot; coin-settled
///    put spreads are not recognised, their coin payout being unbounded as
///    the price falls). Pairs are formed greedily: repeatedly the
///    (short, long) pair that saves the most per unit covers as many units
///    as both have left (ties by instrument id), until no pair saves
///    anything. Each long covers at most its own units.
/// 3. **Delta charge on the net delta**: futures, perpetuals and spot
///    (each with its isolated rate) and the options' delta notional (rate
///    0: options' price risk is already in charges 1 and 2) are netted.
///    Matched long and short notional is free; the unmatched residual is
///    charged at the lowest rates on its side. This is the smallest charge
///    over every way of pairing the book's longs with its shorts; with
///    futures only it is `futures_fraction x |net delta notional|`, and an
///    option's delta can reduce the charge of a future but never add one.
///
/// The per-underlying requirement is capped at the isolated requirement of
/// the same positions (only rounding can make the cap bind), so cross
/// margin never exceeds isolated margin. Spread credits from the
/// [`OffsetPolicy`](crate::OffsetPolicy) then reduce the delta charges of
/// correlated underlyings whose net deltas offset (the delta charge is the
/// price-risk part SPAN's inter-commodity credits apply to; premium and
/// option charges are not credited).
///
/// Guarantees: every number is finite and `>= 0`; the requirement is at
/// most the [`isolated_margin`](crate::isolated_margin) of the same book
/// under `policy.isolated()`, per underlying and in total (exactly, not
/// just up to rounding); it does not depend on the order of the positions
/// (sums run in underlying and instrument id order); and scaling every
/// quantity by `k > 0` scales it by `k` (up to rounding).
///
/// # Units
/// Quote currency.
///
/// # Errors
/// As [`isolated_margin`](crate::isolated_margin).
///
/// # Examples
/// ```
/// use portfolio_margin::*;
/// let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
/// let btc = UnderlyingId::new("BTC")?;
/// let market = MarketSnapshot::builder(as_of)
///     .underlying(btc.clone(), UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.55)?)?)
///     .build()?;
/// let mut instruments = InstrumentSet::new();
/// let perp = InstrumentId::new("BTC-PERP")?;
/// let future = InstrumentId::new("BTC-25DEC26")?;
/// let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// instruments.insert(future.clone(), Instrument::Future(FutureContract::new(btc, expiry)))?;
/// // Long the perpetual, short the future: a basis trade.
/// let book = Portfolio::new(AccountId::new("alice"), vec![Position::new(perp, 10.0), Position::new(future, -10.0)], &instruments)?;
///
/// let isolated = isolated_margin(&book, &instruments, &market, &IsolatedPolicy::default())?;
/// let cross = cross_margin(&book, &instruments, &market, &CrossPolicy::default())?;
/// assert_eq!(isolated.requirement.initial(), 300_000.0); // 15% of each 1 000 000 leg
/// assert_eq!(cross.requirement.initial(), 0.0); // zero rates: the legs cancel exactly
/// assert_eq!(cross.underlyings[0].gross_delta_notional, 2_000_000.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn cross_margin(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    policy: &CrossPolicy,
) -> Result<CrossMargin> {
    let assessed = assess(portfolio, instruments, market, &policy.isolated)?;
    let groups = group_by_underlying(&assessed);
    let mut underlyings = Vec::with_capacity(groups.len());
    let mut before_credit = Vec::with_capacity(groups.len());
    for (underlying, group) in &groups {
        let isolated_initial = isolated_subtotal(group);
        let option_premium: f64 = group.iter().map(|a| a.premium).sum();
        let short_option_charge = short_option_charge(group);
        let delta_charge = delta_charge(group);
        let netted = option_premium + short_option_charge + delta_charge;
        before_credit.push(netted.min(isolated_initial));
        let spot = group.first().map_or(0.0, |a| a.spot);
        underlyings.push(UnderlyingMargin {
            underlying: (*underlying).clone(),
            spot,
            gross_delta_notional: group.iter().map(|a| a.delta_notional.abs()).sum(),
            net_delta_notional: group.iter().map(|a| a.delta_notional).sum(),
            isolated_initial,
            option_premium,
            short_option_charge,
            delta_charge,
            spread_credit: 0.0,
            requirement: MarginRequirement::ZERO,
        });
    }
    for u in &underlyings {
        for (what, value) in [
            ("underlying isolated margin", u.isolated_initial),
            ("underlying net delta notional", u.net_delta_notional),
            ("underlying gross delta notional", u.gross_delta_notional),
            (
                "underlying cross margin",
                u.option_premium + u.short_option_charge + u.delta_charge,
            ),
        ] {
            finite_result(what, value)?;
        }
    }

    let exposures: Vec<UnderlyingExposure> = underlyings
        .iter()
        .map(|u| UnderlyingExposure {
            underlying: u.underlying.clone(),
            requirement: u.delta_charge,
            delta_notional: u.net_delta_notional,
        })
        .collect();
    let credits = apply_spread_credits(&policy.offsets, &exposures);
    for c in &credits {
        for u in underlyings.iter_mut() {
            if u.underlying == c.a {
                u.spread_credit += c.credit_a;
            }
            if u.underlying == c.b {
                u.spread_credit += c.credit_b;
            }
        }
    }

    let fraction = policy.maintenance_fraction;
    let mut total = 0.0;
    for (u, before) in underlyings.iter_mut().zip(before_credit) {
        let initial = (before - u.spread_credit).max(0.0);
        u.requirement = MarginRequirement::new(initial, fraction)?;
        total += initial;
    }
    let total = finite_result("cross margin", total)?;
    Ok(CrossMargin {
        requirement: MarginRequirement::new(total, fraction)?,
        underlyings,
        credits,
    })
}

/// Short-option charges of one underlying after vertical-spread
/// recognition (module docs, rule 2).
fn short_option_charge(group: &[&Assessed<'_>]) -> f64 {
    struct Long {
        kind: OptionKind,
        strike: f64,
        expiry: crate::units::Timestamp,
        settlement: Settlement,
        left: f64,
    }
    struct Short {
        kind: OptionKind,
        strike: f64,
        expiry: crate::units::Timestamp,
        settlement: Settlement,
        left: f64,
        charge_per_unit: f64,
    }
    let mut longs = Vec::new();
    let mut shorts = Vec::new();
    for a in group {
        if let Leg::Option {
            kind,
            strike,
            expiry,
            settlement,
            charge_per_unit,
        } = a.leg
        {
            if a.quantity > 0.0 {
                longs.push(Long {
                    kind,
                    strike,
                    expiry,
                    settlement,
                    left: a.units,
                });
            } else {
                shorts.push(Short {
                    kind,
                    strike,
                    expiry,
                    settlement,
                    left: a.units,
                    charge_per_unit,
                });
            }
        }
    }
    let spot = group.first().map_or(0.0, |a| a.spot);
    let spread_loss = |short: &Short, long: &Long| -> Option<f64> {
        if long.kind != short.kind
            || long.settlement != short.settlement
            || long.expiry < short.expiry
        {
            return None;
        }
        match (short.kind, short.settlement) {
            (OptionKind::Call, Settlement::Linear) => Some((long.strike - short.strike).max(0.0)),
            (OptionKind::Put, Settlement::Linear) => Some((short.strike - long.strike).max(0.0)),
            (OptionKind::Call, Settlement::Inverse) => {
                Some(spot * (long.strike - short.strike).max(0.0) / long.strike)
            }
            (OptionKind::Put, Settlement::Inverse) => None,
        }
    };
    // Greedy: repeatedly cover with the (short, long) pair saving the most
    // per unit; ties go to the first pair in instrument id order (the
    // group's order). Each step uses up a short or a long.
    let mut total = 0.0;
    loop {
        let mut best: Option<(usize, usize, f64, f64)> = None;
        for (i, short) in shorts.iter().enumerate() {
            if short.left <= 0.0 {
                continue;
            }
            for (j, long) in longs.iter().enumerate() {
                if long.left <= 0.0 {
                    continue;
                }
                let Some(loss) = spread_loss(short, long) else {
                    continue;
                };
                let saving = short.charge_per_unit - loss;
                if saving > 0.0 && best.is_none_or(|(_, _, _, s)| saving > s) {
                    best = Some((i, j, loss, saving));
                }
            }
        }
        let Some((i, j, loss, _)) = best else {
            break;
        };
        let (Some(short), Some(long)) = (shorts.get_mut(i), longs.get_mut(j)) else {
            break;
        };
        let cover = short.left.min(long.left);
        total += cover * loss;
        short.left -= cover;
        long.left -= cover;
    }
    total
        + shorts
            .iter()
            .map(|s| s.left * s.charge_per_unit)
            .sum::<f64>()
}

/// Charge on one underlying's netted delta (module docs, rule 3): the
/// unmatched side's residual at that side's lowest rates.
fn delta_charge(group: &[&Assessed<'_>]) -> f64 {
    let legs = group.iter().map(|a| {
        let rate = match a.leg {
            Leg::DeltaOne { rate } => rate,
            Leg::Option { .. } => 0.0,
        };
        (a.delta_notional, rate)
    });
    let (mut long, mut short) = (Vec::new(), Vec::new());
    let (mut long_total, mut short_total) = (0.0, 0.0);
    for (notional, rate) in legs {
        if notional > 0.0 {
            long_total += notional;
            long.push((notional, rate));
        } else if notional < 0.0 {
            short_total += -notional;
            short.push((-notional, rate));
        }
    }
    let (mut residual, mut side) = if long_total >= short_total {
        (long_total - short_total, long)
    } else {
        (short_total - long_total, short)
    };
    side.sort_by(|x, y| x.1.total_cmp(&y.1));
    let mut charge = 0.0;
    for (notional, rate) in side {
        if residual <= 0.0 {
            break;
        }
        let take = residual.min(notional);
        charge += rate * take;
        residual -= take;
    }
    charge
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    fn half() -> f64 {
        0.5
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CrossPolicy {
        #[serde(default)]
        isolated: IsolatedPolicy,
        #[serde(default)]
        offsets: OffsetPolicy,
        #[serde(default = "half")]
        maintenance_fraction: f64,
    }

    impl TryFrom<CrossPolicy> for super::CrossPolicy {
        type Error = crate::Error;
        fn try_from(r: CrossPolicy) -> Result<Self> {
            super::CrossPolicy::new(r.isolated, r.offsets, r.maintenance_fraction)
        }
    }

    impl From<super::CrossPolicy> for CrossPolicy {
        fn from(p: super::CrossPolicy) -> Self {
            CrossPolicy {
                isolated: p.isolated,
                offsets: p.offsets,
                maintenance_fraction: p.maintenance_fraction,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::{
        FutureContract, Instrument, InstrumentId, OptionContract, PerpetualContract,
    };
    use crate::margin::isolated::isolated_margin;
    use crate::margin::offsets::SpreadCredit;
    use crate::market::{UnderlyingMarket, VolSurface};
    use crate::portfolio::{AccountId, Position};
    use crate::pricing::price;
    use crate::units::Timestamp;

    /// Absolute tolerance on quote-currency amounts of order 1e6.
    const AMOUNT_TOL: f64 = 1e-8;

    struct Fixture {
        market: MarketSnapshot,
        instruments: InstrumentSet,
    }

    fn id(s: &str) -> InstrumentId {
        InstrumentId::new(s).unwrap()
    }

    /// BTC at 100 000, ETH at 4 000, zero rates (forward = spot).
    fn fixture() -> Fixture {
        let as_of = Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let near = Timestamp::from_ymd_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let far = Timestamp::from_ymd_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let btc = UnderlyingId::new("BTC").unwrap();
        let eth = UnderlyingId::new("ETH").unwrap();
        let flat = |s| UnderlyingMarket::new(s, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap();
        let market = MarketSnapshot::builder(as_of)
            .underlying(btc.clone(), flat(100_000.0))
            .underlying(eth.clone(), flat(4_000.0))
            .build()
            .unwrap();
        let opt = |kind, strike, expiry| {
            Instrument::Option(OptionContract::new(btc.clone(), kind, strike, expiry).unwrap())
        };
        let mut set = InstrumentSet::new();
        let items = [
            ("BTC", Instrument::Spot(btc.clone())),
            (
                "BTC-PERP",
                Instrument::Perpetual(PerpetualContract::new(btc.clone())),
            ),
            (
                "BTC-FUT",
                Instrument::Future(FutureContract::new(btc.clone(), far)),
            ),
            (
                "ETH-PERP",
                Instrument::Perpetual(PerpetualContract::new(eth.clone())),
            ),
            ("C110", opt(OptionKind::Call, 110_000.0, near)),
            ("C120", opt(OptionKind::Call, 120_000.0, near)),
            ("C100-FAR", opt(OptionKind::Call, 100_000.0, far)),
            ("C130-FAR", opt(OptionKind::Call, 130_000.0, far)),
            ("P90", opt(OptionKind::Put, 90_000.0, near)),
            ("P80", opt(OptionKind::Put, 80_000.0, near)),
            ("P85-FAR", opt(OptionKind::Put, 85_000.0, far)),
        ];
        for (name, instrument) in items {
            set.insert(id(name), instrument).unwrap();
        }
        Fixture {
            market,
            instruments: set,
        }
    }

    fn book(f: &Fixture, positions: &[(&str, f64)]) -> Portfolio {
        let positions = positions
            .iter()
            .map(|(name, q)| Position::new(id(name), *q))
            .collect();
        Portfolio::new(AccountId::new("t"), positions, &f.instruments).unwrap()
    }

    fn cross(f: &Fixture, positions: &[(&str, f64)], policy: &CrossPolicy) -> CrossMargin {
        cross_margin(&book(f, positions), &f.instruments, &f.market, policy).unwrap()
    }

    fn isolated(f: &Fixture, positions: &[(&str, f64)]) -> f64 {
        isolated_margin(
            &book(f, positions),
            &f.instruments,
            &f.market,
            &IsolatedPolicy::default(),
        )
        .unwrap()
        .requirement
        .initial()
    }

    fn premium(f: &Fixture, name: &str) -> f64 {
        price(f.instruments.get(&id(name)).unwrap(), &f.market).unwrap()
    }

    #[test]
    fn futures_net_to_the_fraction_of_the_net() {
        let f = fixture();
        // Long 3 perp, short 1 future: net long 2 x 100 000, 15% = 30 000.
        let m = cross(
            &f,
            &[("BTC-PERP", 3.0), ("BTC-FUT", -1.0)],
            &CrossPolicy::default(),
        );
        assert_eq!(m.underlyings.len(), 1);
        let u = &m.underlyings[0];
        assert_eq!(u.net_delta_notional, 200_000.0);
        assert_eq!(u.gross_delta_notional, 400_000.0);
        assert_eq!(u.isolated_initial, 60_000.0);
        assert_eq!(u.delta_charge, 30_000.0);
        assert_eq!(m.requirement.initial(), 30_000.0);
        assert_eq!(m.requirement.maintenance(), 15_000.0);
    }

    #[test]
    fn spot_nets_at_its_own_rates() {
        let f = fixture();
        let p = CrossPolicy::default();
        // Cash and carry: long 2 spot, short 2 perp: fully hedged.
        assert_eq!(
            cross(&f, &[("BTC", 2.0), ("BTC-PERP", -2.0)], &p)
                .requirement
                .initial(),
            0.0
        );
        // Long 3 spot, short 1 perp: the residual long 2 is spot, rate 0.
        assert_eq!(
            cross(&f, &[("BTC", 3.0), ("BTC-PERP", -1.0)], &p)
                .requirement
                .initial(),
            0.0
        );
        // Long 1 spot, short 3 perp: residual short 2 perp at 15% = 30 000.
        assert_eq!(
            cross(&f, &[("BTC", 1.0), ("BTC-PERP", -3.0)], &p)
                .requirement
                .initial(),
            30_000.0
        );
        // Short 2 spot, long 1 perp: residual short 1 spot at 50% = 50 000.
        assert_eq!(
            cross(&f, &[("BTC", -2.0), ("BTC-PERP", 1.0)], &p)
                .requirement
                .initial(),
            50_000.0
        );
        // Long 1 spot and long 1 perp: nothing to net; the perp pays 15%.
        assert_eq!(
            cross(&f, &[("BTC", 1.0), ("BTC-PERP", 1.0)], &p)
                .requirement
                .initial(),
            15_000.0
        );
    }

    #[test]
    fn option_delta_offsets_but_never_adds() {
        let f = fixture();
        let p = CrossPolicy::default();
        let g =
            crate::pricing::instrument_greeks(f.instruments.get(&id("C110")).unwrap(), &f.market)
                .unwrap();
        let delta = g.quote.delta;
        // A lone short call: cross = isolated (premium + 10 000).
        let alone = cross(&f, &[("C110", -1.0)], &p);
        assert!(
            (alone.requirement.initial() - (premium(&f, "C110") + 10_000.0)).abs() < AMOUNT_TOL
        );
        assert_eq!(alone.underlyings[0].delta_charge, 0.0);
        // Short call + long perp: the perp's 15% applies to 1 - delta only.
        let covered = cross(&f, &[("C110", -1.0), ("BTC-PERP", 1.0)], &p);
        let u = &covered.underlyings[0];
        assert!((u.delta_charge - 0.15 * 100_000.0 * (1.0 - delta)).abs() < AMOUNT_TOL);
        assert!(
            (covered.requirement.initial()
                - (premium(&f, "C110") + 10_000.0 + 0.15 * 100_000.0 * (1.0 - delta)))
                .abs()
                < AMOUNT_TOL
        );
    }

    #[test]
    fn vertical_spreads_are_charged_their_width() {
        let f = fixture();
        let p = CrossPolicy::default();
        let both = premium(&f, "C110") + premium(&f, "C120");
        // Bear call spread: short 110, long 120 (same expiry): width 10 000
        // per unit, equal to the naked charge (10 000), so no reduction...
        let m = cross(&f, &[("C110", -2.0), ("C120", 2.0)], &p);
        assert!((m.underlyings[0].short_option_charge - 20_000.0).abs() < AMOUNT_TOL);
        // ... while a bull call spread (long 100 far, short 110 near) is
        // covered at zero: the long strike is lower.
        let m = cross(&f, &[("C110", -2.0), ("C100-FAR", 3.0)], &p);
        assert_eq!(m.underlyings[0].short_option_charge, 0.0);
        // A long that expires first does not cover: long 120 near vs short
        // 130 far keeps the naked charge of the 130 (15 000 - 30 000 OTM
        // -> minimum 10 000).
        let m = cross(&f, &[("C130-FAR", -1.0), ("C120", 1.0)], &p);
        assert!((m.underlyings[0].short_option_charge - 10_000.0).abs() < AMOUNT_TOL);
        // Put spread: short 90 (naked 9 000 per unit on strike), long 85 far:
        // width 5 000 per unit, for the 1 unit covered; 1 unit stays naked.
        let m = cross(&f, &[("P90", -2.0), ("P85-FAR", 1.0)], &p);
        assert!((m.underlyings[0].short_option_charge - (5_000.0 + 9_000.0)).abs() < AMOUNT_TOL);
        // Premiums are untouched.
        let m = cross(&f, &[("C110", -2.0), ("C120", 2.0)], &p);
        assert!((m.underlyings[0].option_premium - 2.0 * both).abs() < AMOUNT_TOL);
    }

    #[test]
    fn greedy_covers_where_it_saves_most() {
        let f = fixture();
        // Shorts: P90 (9 000 naked per unit) and P80 (S - K = 20 000 OTM:
        // 15 000 - 20 000 < 0.1 x 80 000 = 8 000 minimum). One long P85-FAR
        // saves 9 000 - 5 000 = 4 000 on the P90 but 8 000 - 0 on the P80
        // (a credit spread, width 0): it covers the P80; P90 stays naked.
        let m = cross(
            &f,
            &[("P90", -1.0), ("P80", -1.0), ("P85-FAR", 1.0)],
            &CrossPolicy::default(),
        );
        assert!((m.underlyings[0].short_option_charge - 9_000.0).abs() < AMOUNT_TOL);
    }

    #[test]
    fn spread_credits_between_underlyings() {
        let f = fixture();
        let btc = UnderlyingId::new("BTC").unwrap();
        let eth = UnderlyingId::new("ETH").unwrap();
        let offsets =
            OffsetPolicy::new(vec![SpreadCredit::new(btc, eth, 0.5, 1.0).unwrap()]).unwrap();
        let policy = CrossPolicy::new(IsolatedPolicy::default(), offsets, 0.5).unwrap();
        // Long 1 BTC perp (100 000, charge 15 000), short 10 ETH perp
        // (40 000, charge 6 000): spreads 40 000.
        // credit_btc = 0.5 x 15 000 x 0.4 = 3 000; credit_eth = 0.5 x 6 000 = 3 000.
        let m = cross(&f, &[("BTC-PERP", 1.0), ("ETH-PERP", -10.0)], &policy);
        assert_eq!(m.credits.len(), 1);
        assert_eq!(m.credits[0].spread_notional, 40_000.0);
        assert_eq!(m.underlyings[0].spread_credit, 3_000.0);
        assert_eq!(m.underlyings[1].spread_credit, 3_000.0);
        assert_eq!(m.underlyings[0].requirement.initial(), 12_000.0);
        assert_eq!(m.underlyings[1].requirement.initial(), 3_000.0);
        assert_eq!(m.requirement.initial(), 15_000.0);
        // Same direction: no credit.
        let m = cross(&f, &[("BTC-PERP", 1.0), ("ETH-PERP", 10.0)], &policy);
        assert!(m.credits.is_empty());
        assert_eq!(m.requirement.initial(), 21_000.0);
    }

    #[test]
    fn never_above_isolated_on_fixed_books() {
        let f = fixture();
        let books: [&[(&str, f64)]; 5] = [
            &[("C110", -1.0), ("C120", 1.0), ("BTC-PERP", 0.3)],
            &[("P90", -3.0), ("P80", 1.0), ("BTC", 2.0), ("BTC-FUT", -1.0)],
            &[("C100-FAR", 1.0), ("BTC-PERP", -1.0)],
            &[("BTC", -1.0), ("C130-FAR", 2.0), ("ETH-PERP", 5.0)],
            &[("P85-FAR", -2.0), ("P90", 2.0)],
        ];
        for positions in books {
            let c = cross(&f, positions, &CrossPolicy::default());
            let i = isolated(&f, positions);
            assert!(c.requirement.initial() <= i, "{positions:?}");
            assert!(c.requirement.initial() >= 0.0);
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_defaults_and_validation() {
        let p: CrossPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, CrossPolicy::default());
        let p: CrossPolicy = serde_json::from_str(
            r#"{"isolated":{"futures_fraction":0.1},"offsets":{"credits":[{"a":"BTC","b":"ETH","credit_rate":0.4}]},"maintenance_fraction":0.7}"#,
        )
        .unwrap();
        assert_eq!(p.isolated().futures_fraction(), 0.1);
        assert_eq!(p.offsets().credits().len(), 1);
        let back: CrossPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<CrossPolicy>(r#"{"maintenance_fraction":-0.1}"#).is_err());
        assert!(serde_json::from_str::<CrossPolicy>(r#"{"offset":{}}"#).is_err());
    }

    #[test]
    fn maintenance_fraction_is_validated() {
        for bad in [-0.1, 1.1, f64::NAN] {
            assert!(
                CrossPolicy::new(IsolatedPolicy::default(), OffsetPolicy::default(), bad).is_err()
            );
        }
    }
}
