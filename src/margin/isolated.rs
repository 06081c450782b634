//! Isolated (standard) margin: one rule per position, no offsets.
//!
//! The baseline the other methodologies improve on. Each position is
//! margined as if it were the only one in the account:
//!
//! * **futures and perpetuals**: `futures_fraction x notional`;
//! * **spot**: long holdings `long_spot_fraction x value` (0 by default: a
//!   coin or share held outright is collateral, not risk), short holdings
//!   `short_spot_fraction x value`;
//! * **long options**: the premium (a long option is paid in full);
//! * **short options**: the premium plus
//!   `max(base x underlying value - out-of-the-money amount, minimum x basis)`,
//!   as Cboe (Margin Manual; Rule 10.3) and crypto venues (Deribit
//!   standard margin) do.
//!
//! All numbers are in the quote currency; coin-settled contracts are
//! converted at the spot price.

use crate::error::{Error, Result, non_negative};
use crate::instrument::{Instrument, InstrumentId, OptionKind, Settlement, UnderlyingId};
use crate::margin::MarginRequirement;
use crate::market::MarketSnapshot;
use crate::portfolio::{InstrumentSet, Portfolio};
use crate::pricing::instrument_greeks;
use crate::units::Timestamp;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the minimum charge of a short put is a fraction of.
///
/// ```
/// use portfolio_margin::PutMinimumBasis;
/// assert_eq!(PutMinimumBasis::default(), PutMinimumBasis::Strike);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum PutMinimumBasis {
    /// The put's aggregate exercise price, `units x strike` (Cboe, FINRA
    /// Rule 4210(f)(2)(D): "10% of the put's aggregate exercise price"). A
    /// put can lose at most its strike, so the floor scales with it.
    #[default]
    Strike,
    /// The underlying value, `units x spot` (Deribit's standard margin
    /// uses the same floor for calls and puts).
    UnderlyingValue,
}

/// Per-position margin rates of the isolated methodology.
///
/// Every field is a fraction (`0.15` is 15%) of a quote-currency amount.
/// Defaults, and the public rules they follow:
///
/// | field | default | source |
/// |---|---|---|
/// | `futures_fraction` (futures, perpetuals) | 0.15 | SEC/CFTC customer margin for security futures, 15% of current market value since the 2020 amendment (17 CFR 41.45(b)(1), 17 CFR 242.403(b)(1)); between crypto venues' base rates (Deribit 2%, Binance lower tiers) and CME's Bitcoin futures (30%+) |
/// | `long_spot_fraction` | 0.0 | a holding paid in full is collateral, not a liability |
/// | `short_spot_fraction` | 0.5 | Regulation T (12 CFR 220.12(c)(1)): a short sale needs 150% of market value, the proceeds plus 50% |
/// | `option_base_fraction` | 0.15 | Cboe broad-based index options (15%; 20% for equity options) and Deribit (0.15) |
/// | `option_minimum_fraction` | 0.10 | Cboe (10%, equity and index) and Deribit (0.10) |
/// | `put_minimum_basis` | [`PutMinimumBasis::Strike`] | Cboe: 10% of the put's aggregate exercise price |
/// | `maintenance_fraction` | 0.5 | maintenance as a fraction of initial: Deribit options (0.075 vs 0.15), FINRA 4210 long equity (25% vs Regulation T 50%) |
///
/// ```
/// use portfolio_margin::{IsolatedPolicy, PutMinimumBasis};
/// let equity = IsolatedPolicy::default()
///     .with_option_base_fraction(0.20)? // Cboe equity options
///     .with_put_minimum_basis(PutMinimumBasis::Strike);
/// assert_eq!(equity.option_base_fraction(), 0.20);
/// assert_eq!(equity.futures_fraction(), 0.15);
/// assert!(IsolatedPolicy::default().with_maintenance_fraction(1.5).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::IsolatedPolicy", into = "raw::IsolatedPolicy")
)]
pub struct IsolatedPolicy {
    futures_fraction: f64,
    long_spot_fraction: f64,
    short_spot_fraction: f64,
    option_base_fraction: f64,
    option_minimum_fraction: f64,
    put_minimum_basis: PutMinimumBasis,
    maintenance_fraction: f64,
}

impl Default for IsolatedPolicy {
    fn default() -> Self {
        IsolatedPolicy {
            futures_fraction: 0.15,
            long_spot_fraction: 0.0,
            short_spot_fraction: 0.5,
            option_base_fraction: 0.15,
            option_minimum_fraction: 0.10,
            put_minimum_basis: PutMinimumBasis::Strike,
            maintenance_fraction: 0.5,
        }
    }
}

/// Checks a maintenance fraction: in `[0, 1]`.
pub(super) fn maintenance_fraction(value: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::InvalidInput {
            what: "maintenance fraction",
            rule: "in [0, 1]",
            value,
        })
    }
}

impl IsolatedPolicy {
    /// Sets the fraction of notional charged on futures and perpetuals.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_futures_fraction(mut self, fraction: f64) -> Result<Self> {
        self.futures_fraction = non_negative("futures fraction", fraction)?;
        Ok(self)
    }
    /// Sets the fraction of value charged on long spot holdings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_long_spot_fraction(mut self, fraction: f64) -> Result<Self> {
        self.long_spot_fraction = non_negative("long spot fraction", fraction)?;
        Ok(self)
    }
    /// Sets the fraction of value charged on short spot holdings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_short_spot_fraction(mut self, fraction: f64) -> Result<Self> {
        self.short_spot_fraction = non_negative("short spot fraction", fraction)?;
        Ok(self)
    }
    /// Sets the base fraction of underlying value for short options.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_option_base_fraction(mut self, fraction: f64) -> Result<Self> {
        self.option_base_fraction = non_negative("option base fraction", fraction)?;
        Ok(self)
    }
    /// Sets the minimum fraction for short options.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless finite and `>= 0`.
    pub fn with_option_minimum_fraction(mut self, fraction: f64) -> Result<Self> {
        self.option_minimum_fraction = non_negative("option minimum fraction", fraction)?;
        Ok(self)
    }
    /// Sets what the short-put minimum is a fraction of.
    pub fn with_put_minimum_basis(mut self, basis: PutMinimumBasis) -> Self {
        self.put_minimum_basis = basis;
        self
    }
    /// Sets maintenance margin as a fraction of initial margin.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless in `[0, 1]`.
    pub fn with_maintenance_fraction(mut self, fraction: f64) -> Result<Self> {
        self.maintenance_fraction = maintenance_fraction(fraction)?;
        Ok(self)
    }

    /// Fraction of notional charged on futures and perpetuals.
    pub fn futures_fraction(&self) -> f64 {
        self.futures_fraction
    }
    /// Fraction of value charged on long spot holdings.
    pub fn long_spot_fraction(&self) -> f64 {
        self.long_spot_fraction
    }
    /// Fraction of value charged on short spot holdings (beyond the proceeds).
    pub fn short_spot_fraction(&self) -> f64 {
        self.short_spot_fraction
    }
    /// Base fraction of underlying value for short options.
    pub fn option_base_fraction(&self) -> f64 {
        self.option_base_fraction
    }
    /// Minimum fraction for short options (of underlying value, or of the
    /// strike for puts under [`PutMinimumBasis::Strike`]).
    pub fn option_minimum_fraction(&self) -> f64 {
        self.option_minimum_fraction
    }
    /// What the short-put minimum is a fraction of.
    pub fn put_minimum_basis(&self) -> PutMinimumBasis {
        self.put_minimum_basis
    }
    /// Maintenance margin as a fraction of initial, in `[0, 1]`.
    pub fn maintenance_fraction(&self) -> f64 {
        self.maintenance_fraction
    }
}

/// The rule that set a position's isolated requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum IsolatedRule {
    /// Future or perpetual: `futures_fraction x notional`.
    FuturesNotional,
    /// Long spot holding: `long_spot_fraction x value`.
    LongSpot,
    /// Short spot holding: `short_spot_fraction x value`.
    ShortSpot,
    /// Long option: the premium (paid in full).
    LongOptionPremium,
    /// Short option, base charge binding:
    /// `premium + base x underlying value - out-of-the-money amount`.
    ShortOptionBase,
    /// Short option, minimum binding: `premium + minimum x basis`
    /// (underlying value; the aggregate strike for puts under
    /// [`PutMinimumBasis::Strike`]).
    ShortOptionMinimum,
}

/// One position's isolated requirement and what it was computed from.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct PositionMargin {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Its underlying.
    pub underlying: UnderlyingId,
    /// Contracts held, signed (negative short).
    pub quantity: f64,
    /// The rule applied.
    pub rule: IsolatedRule,
    /// Quote currency, `>= 0`: for futures, perpetuals and spot the
    /// notional `|quantity| x multiplier x contract price` (coin-settled
    /// contracts converted at spot); for options the underlying value
    /// `|quantity| x multiplier x spot`.
    pub notional: f64,
    /// Market value of the option position, quote currency, `>= 0` (0 for
    /// other instruments).
    pub premium: f64,
    /// Initial and maintenance requirement of the position.
    pub requirement: MarginRequirement,
}

/// Isolated margin of a portfolio: the total and one entry per position.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct IsolatedMargin {
    /// Sum of the positions' requirements, quote currency.
    pub requirement: MarginRequirement,
    /// One entry per position, in portfolio order.
    pub positions: Vec<PositionMargin>,
}

/// Isolated margin: each position margined on its own (see the rules on
/// [`IsolatedPolicy`] and [`IsolatedRule`]).
///
/// * Futures and perpetuals: `futures_fraction x |q| x multiplier x price`,
///   the price being the contract's (the forward for a dated future); for
///   coin-settled contracts the notional is the coin exposure
///   `|q| x face / F` converted at spot.
/// * Spot: `long_spot_fraction` or `short_spot_fraction` of `|q| x spot`.
/// * Long options: the premium, `|q| x multiplier x value` (coin-settled
///   values converted at spot).
/// * Short options, with `U = |q| x multiplier x spot` the underlying value
///   and `OTM = |q| x multiplier x max(K - S, 0)` for calls
///   (`max(S - K, 0)` for puts): `premium + max(base x U - OTM, minimum x B)`,
///   `B = U`, or `|q| x multiplier x K` for puts under
///   [`PutMinimumBasis::Strike`].
///
/// Maintenance is `maintenance_fraction x initial`, per position and in
/// total.
///
/// # Units
/// Quote currency.
///
/// # Errors
/// Pricing errors ([`Error::MissingUnderlying`], [`Error::Expired`], ...)
/// wrapped in [`Error::InInstrument`]; [`Error::UnknownInstrument`] if the
/// portfolio was validated against another instrument set;
/// [`Error::NonFiniteResult`] if a requirement overflows.
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
/// instruments.insert(perp.clone(), Instrument::Perpetual(PerpetualContract::new(btc.clone())))?;
/// let call = InstrumentId::new("BTC-25DEC26-110000-C")?;
/// let expiry = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
/// instruments.insert(call.clone(), Instrument::Option(OptionContract::new(btc, OptionKind::Call, 110_000.0, expiry)?))?;
/// let book = Portfolio::new(AccountId::new("alice"), vec![Position::new(perp, 2.0), Position::new(call.clone(), -1.0)], &instruments)?;
///
/// let margin = isolated_margin(&book, &instruments, &market, &IsolatedPolicy::default())?;
/// // Perpetual: 15% of 2 x 100 000.
/// assert_eq!(margin.positions[0].requirement.initial(), 30_000.0);
/// // Short call 10% out of the money: max(15 000 - 10 000, 10 000) + premium.
/// let premium = price(instruments.get(&call)?, &market)?;
/// assert_eq!(margin.positions[1].rule, IsolatedRule::ShortOptionMinimum);
/// assert!((margin.positions[1].requirement.initial() - (10_000.0 + premium)).abs() < 1e-9);
/// assert!((margin.requirement.initial() - (40_000.0 + premium)).abs() < 1e-9);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn isolated_margin(
    portfolio: &Portfolio,
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    policy: &IsolatedPolicy,
) -> Result<IsolatedMargin> {
    let assessed = assess(portfolio, instruments, market, policy)?;
    let fraction = policy.maintenance_fraction;
    let total: f64 = group_by_underlying(&assessed)
        .values()
        .map(|group| isolated_subtotal(group))
        .sum();
    let total = finite_result("isolated margin", total)?;
    let positions = assessed
        .iter()
        .map(|a| {
            Ok(PositionMargin {
                instrument: a.instrument.clone(),
                underlying: a.underlying.clone(),
                quantity: a.quantity,
                rule: a.rule,
                notional: a.notional,
                premium: a.premium,
                requirement: MarginRequirement::new(a.initial(), fraction)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(IsolatedMargin {
        requirement: MarginRequirement::new(total, fraction)?,
        positions,
    })
}

/// How a position enters the netting of the cross methodology.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Leg {
    /// Futures, perpetuals, spot: charged `rate x notional`.
    DeltaOne { rate: f64 },
    /// An option: its terms and its naked short charge per unit of
    /// underlying (0 for a long).
    Option {
        kind: OptionKind,
        strike: f64,
        expiry: Timestamp,
        settlement: Settlement,
        charge_per_unit: f64,
    },
}

/// One position priced and charged under the isolated rules; shared with
/// the cross methodology.
#[derive(Debug, Clone)]
pub(super) struct Assessed<'a> {
    pub instrument: &'a InstrumentId,
    pub underlying: &'a UnderlyingId,
    pub quantity: f64,
    /// `|quantity| x multiplier`: units of underlying (options), contracts
    /// times multiplier (delta-one).
    pub units: f64,
    /// Spot price of the underlying, quote currency.
    pub spot: f64,
    /// See [`PositionMargin::notional`].
    pub notional: f64,
    /// See [`PositionMargin::premium`].
    pub premium: f64,
    /// Signed delta x spot, quote currency (spot terms).
    pub delta_notional: f64,
    /// Isolated charge beyond the premium, quote currency, `>= 0`.
    pub charge: f64,
    pub rule: IsolatedRule,
    pub leg: Leg,
}

impl Assessed<'_> {
    /// Isolated initial margin of the position.
    pub fn initial(&self) -> f64 {
        self.premium + self.charge
    }
}

/// Prices and charges every position of `portfolio`, in portfolio order.
pub(super) fn assess<'a>(
    portfolio: &'a Portfolio,
    instruments: &'a InstrumentSet,
    market: &MarketSnapshot,
    policy: &IsolatedPolicy,
) -> Result<Vec<Assessed<'a>>> {
    portfolio
        .positions()
        .iter()
        .map(|position| {
            let instrument = instruments.get(&position.instrument)?;
            assess_one(
                &position.instrument,
                instrument,
                position.quantity,
                market,
                policy,
            )
            .map_err(|e| Error::InInstrument {
                id: position.instrument.clone(),
                source: Box::new(e),
            })
        })
        .collect()
}

fn assess_one<'a>(
    id: &'a InstrumentId,
    instrument: &'a Instrument,
    quantity: f64,
    market: &MarketSnapshot,
    policy: &IsolatedPolicy,
) -> Result<Assessed<'a>> {
    let greeks = instrument_greeks(instrument, market)?;
    let spot = market.underlying(instrument.underlying())?.spot();
    let units = quantity.abs() * instrument.multiplier();
    // Spot terms, quote currency, as portfolio_greeks aggregates them.
    let delta_notional =
        quantity * instrument.multiplier() * greeks.quote.delta * greeks.forward_per_spot * spot;
    let long = quantity > 0.0;
    let (notional, premium, charge, rule, leg) = match instrument {
        Instrument::Future(_) | Instrument::Perpetual(_) | Instrument::Spot(_) => {
            let (rate, rule) = match (instrument, long) {
                (Instrument::Spot(_), true) => (policy.long_spot_fraction, IsolatedRule::LongSpot),
                (Instrument::Spot(_), false) => {
                    (policy.short_spot_fraction, IsolatedRule::ShortSpot)
                }
                _ => (policy.futures_fraction, IsolatedRule::FuturesNotional),
            };
            let notional = delta_notional.abs();
            (notional, 0.0, rate * notional, rule, Leg::DeltaOne { rate })
        }
        Instrument::Option(option) => {
            // Value per unit of underlying in the quote currency: coin
            // values are converted at spot.
            let value = match option.settlement() {
                Settlement::Linear => greeks.native.value,
                Settlement::Inverse => greeks.native.value * spot,
            };
            let premium = units * value.max(0.0);
            let strike = option.strike();
            let (charge_per_unit, rule) = if long {
                (0.0, IsolatedRule::LongOptionPremium)
            } else {
                let out_of_money = match option.kind() {
                    OptionKind::Call => (strike - spot).max(0.0),
                    OptionKind::Put => (spot - strike).max(0.0),
                };
                let basis = match (option.kind(), policy.put_minimum_basis) {
                    (OptionKind::Put, PutMinimumBasis::Strike) => strike,
                    _ => spot,
                };
                let base = policy.option_base_fraction * spot - out_of_money;
                let minimum = policy.option_minimum_fraction * basis;
                if base >= minimum {
                    (base, IsolatedRule::ShortOptionBase)
                } else {
                    (minimum, IsolatedRule::ShortOptionMinimum)
                }
            };
            (
                units * spot,
                premium,
                units * charge_per_unit,
                rule,
                Leg::Option {
                    kind: option.kind(),
                    strike,
                    expiry: option.expiry(),
                    settlement: option.settlement(),
                    charge_per_unit,
                },
            )
        }
    };
    for (what, value) in [
        ("position notional", notional),
        ("position premium", premium),
        ("position delta notional", delta_notional),
        ("position margin", premium + charge),
    ] {
        finite_result(what, value)?;
    }
    Ok(Assessed {
        instrument: id,
        underlying: instrument.underlying(),
        quantity,
        units,
        spot,
        notional,
        premium,
        delta_notional,
        charge,
        rule,
        leg,
    })
}

/// Positions grouped by underlying (in id order), each group sorted by
/// instrument id: a canonical order, so sums do not depend on the order of
/// the portfolio's positions.
pub(super) fn group_by_underlying<'b, 'a>(
    assessed: &'b [Assessed<'a>],
) -> BTreeMap<&'a UnderlyingId, Vec<&'b Assessed<'a>>> {
    let mut groups: BTreeMap<&'a UnderlyingId, Vec<&'b Assessed<'a>>> = BTreeMap::new();
    for a in assessed {
        groups.entry(a.underlying).or_default().push(a);
    }
    for group in groups.values_mut() {
        group.sort_by(|x, y| x.instrument.cmp(y.instrument));
    }
    groups
}

/// Isolated initial margin of one underlying's positions (in group order).
pub(super) fn isolated_subtotal(group: &[&Assessed<'_>]) -> f64 {
    group.iter().map(|a| a.initial()).sum()
}

/// Passes `value` through if finite.
pub(super) fn finite_result(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteResult { what, value })
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    /// Every field optional: missing fields take the documented defaults.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct IsolatedPolicy {
        futures_fraction: f64,
        long_spot_fraction: f64,
        short_spot_fraction: f64,
        option_base_fraction: f64,
        option_minimum_fraction: f64,
        put_minimum_basis: PutMinimumBasis,
        maintenance_fraction: f64,
    }

    impl Default for IsolatedPolicy {
        fn default() -> Self {
            super::IsolatedPolicy::default().into()
        }
    }

    impl TryFrom<IsolatedPolicy> for super::IsolatedPolicy {
        type Error = Error;
        fn try_from(r: IsolatedPolicy) -> Result<Self> {
            super::IsolatedPolicy::default()
                .with_futures_fraction(r.futures_fraction)?
                .with_long_spot_fraction(r.long_spot_fraction)?
                .with_short_spot_fraction(r.short_spot_fraction)?
                .with_option_base_fraction(r.option_base_fraction)?
                .with_option_minimum_fraction(r.option_minimum_fraction)?
                .with_put_minimum_basis(r.put_minimum_basis)
                .with_maintenance_fraction(r.maintenance_fraction)
        }
    }

    impl From<super::IsolatedPolicy> for IsolatedPolicy {
        fn from(p: super::IsolatedPolicy) -> Self {
            IsolatedPolicy {
                futures_fraction: p.futures_fraction,
                long_spot_fraction: p.long_spot_fraction,
                short_spot_fraction: p.short_spot_fraction,
                option_base_fraction: p.option_base_fraction,
                option_minimum_fraction: p.option_minimum_fraction,
                put_minimum_basis: p.put_minimum_basis,
                maintenance_fraction: p.maintenance_fraction,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::{FutureContract, OptionContract, PerpetualContract};
    use crate::market::{UnderlyingMarket, VolSurface};
    use crate::portfolio::{AccountId, Position};
    use crate::pricing::price;

    /// Absolute tolerance on quote-currency amounts of order 1e5 computed
    /// through a few products (a few ulp).
    const AMOUNT_TOL: f64 = 1e-9;

    struct Fixture {
        market: MarketSnapshot,
        instruments: InstrumentSet,
    }

    fn id(s: &str) -> InstrumentId {
        InstrumentId::new(s).unwrap()
    }

    /// BTC at 100 000 and SPX at 5 000, zero rates (forward = spot).
    fn fixture() -> Fixture {
        let as_of = Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let expiry = Timestamp::from_ymd_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let btc = UnderlyingId::new("BTC").unwrap();
        let spx = UnderlyingId::new("SPX").unwrap();
        let market = MarketSnapshot::builder(as_of)
            .underlying(
                btc.clone(),
                UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
            )
            .underlying(
                spx.clone(),
                UnderlyingMarket::new(5_000.0, 0.0, 0.0, VolSurface::flat(0.2).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let mut set = InstrumentSet::new();
        let option = |kind, strike| OptionContract::new(btc.clone(), kind, strike, expiry).unwrap();
        let items = [
            ("BTC", Instrument::Spot(btc.clone())),
            (
                "BTC-PERP",
                Instrument::Perpetual(PerpetualContract::new(btc.clone())),
            ),
            (
                "BTC-INV-PERP",
                Instrument::Perpetual(
                    PerpetualContract::new(btc.clone())
                        .with_multiplier(10.0)
                        .unwrap()
                        .with_settlement(Settlement::Inverse),
                ),
            ),
            (
                "BTC-FUT",
                Instrument::Future(
                    FutureContract::new(btc.clone(), expiry)
                        .with_multiplier(0.1)
                        .unwrap(),
                ),
            ),
            (
                "C110",
                Instrument::Option(option(OptionKind::Call, 110_000.0)),
            ),
            (
                "C100",
                Instrument::Option(option(OptionKind::Call, 100_000.0)),
            ),
            ("P90", Instrument::Option(option(OptionKind::Put, 90_000.0))),
            ("P95", Instrument::Option(option(OptionKind::Put, 95_000.0))),
            (
                "P120",
                Instrument::Option(option(OptionKind::Put, 120_000.0)),
            ),
            (
                "C110-INV",
                Instrument::Option(
                    option(OptionKind::Call, 110_000.0).with_settlement(Settlement::Inverse),
                ),
            ),
            (
                "SPX-P4500",
                Instrument::Option(
                    OptionContract::new(spx.clone(), OptionKind::Put, 4_500.0, expiry)
                        .unwrap()
                        .with_multiplier(100.0)
                        .unwrap(),
                ),
            ),
        ];
        for (name, instrument) in items {
            set.insert(id(name), instrument).unwrap();
        }
        Fixture {
            market,
            instruments: set,
        }
    }

    fn margin_of(
        f: &Fixture,
        positions: &[(&str, f64)],
        policy: &IsolatedPolicy,
    ) -> IsolatedMargin {
        let positions = positions
            .iter()
            .map(|(name, q)| Position::new(id(name), *q))
            .collect();
        let book = Portfolio::new(AccountId::new("t"), positions, &f.instruments).unwrap();
        isolated_margin(&book, &f.instruments, &f.market, policy).unwrap()
    }

    fn premium(f: &Fixture, name: &str) -> f64 {
        price(f.instruments.get(&id(name)).unwrap(), &f.market).unwrap()
    }

    fn single(f: &Fixture, name: &str, q: f64, policy: &IsolatedPolicy) -> PositionMargin {
        margin_of(f, &[(name, q)], policy).positions.remove(0)
    }

    #[test]
    fn delta_one_rules() {
        let f = fixture();
        let p = IsolatedPolicy::default();
        // Perpetual: 0.15 x 3 x 100 000 = 45 000, long or short.
        for q in [3.0, -3.0] {
            let m = single(&f, "BTC-PERP", q, &p);
            assert_eq!(m.rule, IsolatedRule::FuturesNotional);
            assert_eq!(m.notional, 300_000.0);
            assert_eq!(m.requirement.initial(), 45_000.0);
            assert_eq!(m.requirement.maintenance(), 22_500.0);
        }
        // Future, multiplier 0.1, zero carry: 0.15 x 20 x 0.1 x 100 000 = 30 000.
        let m = single(&f, "BTC-FUT", -20.0, &p);
        assert_eq!(m.notional, 200_000.0);
        assert!((m.requirement.initial() - 30_000.0).abs() < AMOUNT_TOL);
        // Spot: long free by default, short 50%.
        let m = single(&f, "BTC", 2.0, &p);
        assert_eq!(
            (m.rule, m.requirement.initial()),
            (IsolatedRule::LongSpot, 0.0)
        );
        let m = single(&f, "BTC", -2.0, &p);
        assert_eq!(
            (m.rule, m.requirement.initial()),
            (IsolatedRule::ShortSpot, 100_000.0)
        );
        let charged = p.clone().with_long_spot_fraction(0.25).unwrap();
        assert_eq!(
            single(&f, "BTC", 2.0, &charged).requirement.initial(),
            50_000.0
        );
    }

    #[test]
    fn coin_settled_perpetual_notional_is_its_face_value() {
        // Inverse perpetual, face 10 USD: 5 000 contracts = 50 000 USD of
        // exposure (0.5 BTC at 100 000), charged 15%: 7 500.
        let f = fixture();
        let m = single(&f, "BTC-INV-PERP", -5_000.0, &IsolatedPolicy::default());
        assert!((m.notional - 50_000.0).abs() < AMOUNT_TOL);
        assert!((m.requirement.initial() - 7_500.0).abs() < AMOUNT_TOL);
    }

    #[test]
    fn long_options_pay_the_premium() {
        let f = fixture();
        let m = single(&f, "C100", 4.0, &IsolatedPolicy::default());
        assert_eq!(m.rule, IsolatedRule::LongOptionPremium);
        assert_eq!(m.premium, 4.0 * premium(&f, "C100"));
        assert_eq!(m.requirement.initial(), m.premium);
    }

    #[test]
    fn short_option_rules_hand_computed() {
        let f = fixture();
        let p = IsolatedPolicy::default();
        // (instrument, base-or-minimum charge per unit, rule), S = 100 000:
        // C100 ATM: max(15 000 - 0, 10 000) = 15 000, base.
        // C110 10% OTM: max(15 000 - 10 000, 10 000) = 10 000, minimum.
        // P95 5% OTM: max(15 000 - 5 000, 0.1 x 95 000) = 10 000, base.
        // P90 10% OTM: max(5 000, 0.1 x 90 000) = 9 000, minimum on strike.
        // P120 ITM: max(15 000, 12 000) = 15 000, base.
        let cases = [
            ("C100", 15_000.0, IsolatedRule::ShortOptionBase),
            ("C110", 10_000.0, IsolatedRule::ShortOptionMinimum),
            ("P95", 10_000.0, IsolatedRule::ShortOptionBase),
            ("P90", 9_000.0, IsolatedRule::ShortOptionMinimum),
            ("P120", 15_000.0, IsolatedRule::ShortOptionBase),
        ];
        for (name, charge, rule) in cases {
            let m = single(&f, name, -2.0, &p);
            assert_eq!(m.rule, rule, "{name}");
            assert_eq!(m.notional, 200_000.0);
            let expected = 2.0 * (charge + premium(&f, name));
            assert!(
                (m.requirement.initial() - expected).abs() < AMOUNT_TOL,
                "{name}: {} vs {expected}",
                m.requirement.initial()
            );
        }
        // Deribit-style put floor on the underlying value: P90 becomes 10 000.
        let deribit = p.with_put_minimum_basis(PutMinimumBasis::UnderlyingValue);
        let m = single(&f, "P90", -1.0, &deribit);
        assert!((m.requirement.initial() - (10_000.0 + premium(&f, "P90"))).abs() < AMOUNT_TOL);
    }

    #[test]
    fn equity_style_rates_with_a_multiplier() {
        // Cboe equity-option rates (20% / 10%) on an SPX put, multiplier 100,
        // S = 5 000, K = 4 500: U = 500 000 per contract, OTM 50 000.
        // max(100 000 - 50 000, 0.1 x 450 000 = 45 000) = 50 000 per contract.
        let f = fixture();
        let p = IsolatedPolicy::default()
            .with_option_base_fraction(0.20)
            .unwrap();
        let m = single(&f, "SPX-P4500", -3.0, &p);
        assert_eq!(m.rule, IsolatedRule::ShortOptionBase);
        let expected = 3.0 * (50_000.0 + 100.0 * premium(&f, "SPX-P4500"));
        assert!((m.requirement.initial() - expected).abs() < AMOUNT_TOL);
    }

    #[test]
    fn coin_settled_option_is_converted_at_spot() {
        // A BSM option worth V USD is worth V / S coins; converted back at
        // spot its premium and charge equal the linear option's.
        let f = fixture();
        let p = IsolatedPolicy::default();
        let linear = single(&f, "C110", -1.0, &p);
        let inverse = single(&f, "C110-INV", -1.0, &p);
        let coin = premium(&f, "C110-INV");
        assert!((coin * 100_000.0 - premium(&f, "C110")).abs() < AMOUNT_TOL);
        assert!((inverse.premium - linear.premium).abs() < AMOUNT_TOL);
        assert!((inverse.requirement.initial() - linear.requirement.initial()).abs() < AMOUNT_TOL);
    }

    #[test]
    fn total_is_the_sum_and_maintenance_a_fraction() {
        let f = fixture();
        let p = IsolatedPolicy::default()
            .with_maintenance_fraction(0.8)
            .unwrap();
        let m = margin_of(
            &f,
            &[
                ("BTC-PERP", 1.0),
                ("C110", -1.0),
                ("P90", 2.0),
                ("BTC", -1.0),
            ],
            &p,
        );
        let sum: f64 = m.positions.iter().map(|x| x.requirement.initial()).sum();
        assert!((m.requirement.initial() - sum).abs() < AMOUNT_TOL);
        assert!((m.requirement.maintenance() - 0.8 * sum).abs() < AMOUNT_TOL);
        assert_eq!(m.positions[3].instrument, id("BTC"));
    }

    #[test]
    fn pricing_errors_name_the_instrument() {
        let f = fixture();
        let book = Portfolio::new(
            AccountId::new("t"),
            vec![Position::new(id("C110"), -1.0)],
            &f.instruments,
        )
        .unwrap();
        let late = MarketSnapshot::builder(Timestamp::from_ymd_hms(2027, 1, 1, 0, 0, 0).unwrap())
            .underlying(
                UnderlyingId::new("BTC").unwrap(),
                UnderlyingMarket::new(1.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let err =
            isolated_margin(&book, &f.instruments, &late, &IsolatedPolicy::default()).unwrap_err();
        assert!(
            matches!(&err, Error::InInstrument { id: i, .. } if *i == id("C110")),
            "{err}"
        );
    }

    #[test]
    fn policy_validation() {
        let p = IsolatedPolicy::default();
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(p.clone().with_futures_fraction(bad).is_err());
            assert!(p.clone().with_short_spot_fraction(bad).is_err());
            assert!(p.clone().with_long_spot_fraction(bad).is_err());
            assert!(p.clone().with_option_base_fraction(bad).is_err());
            assert!(p.clone().with_option_minimum_fraction(bad).is_err());
            assert!(p.clone().with_maintenance_fraction(bad).is_err());
        }
        assert!(p.clone().with_maintenance_fraction(1.01).is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_defaults_and_validation() {
        let p: IsolatedPolicy = serde_json::from_str(r#"{"futures_fraction":0.1}"#).unwrap();
        assert_eq!(p.futures_fraction(), 0.1);
        assert_eq!(p.option_base_fraction(), 0.15);
        let back: IsolatedPolicy =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<IsolatedPolicy>(r#"{"futures_fraction":-1}"#).is_err());
        assert!(serde_json::from_str::<IsolatedPolicy>(r#"{"maintenance_fraction":2}"#).is_err());
        assert!(serde_json::from_str::<IsolatedPolicy>(r#"{"future_fraction":0.1}"#).is_err());
        let put: IsolatedPolicy =
            serde_json::from_str(r#"{"put_minimum_basis":"underlying_value"}"#).unwrap();
        assert_eq!(put.put_minimum_basis(), PutMinimumBasis::UnderlyingValue);
    }
}
