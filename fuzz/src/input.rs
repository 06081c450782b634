//! Structured inputs shared by the end-to-end targets (`pipeline`,
//! `margin_pipeline`): numbers, vol surfaces, underlyings and instruments
//! decoded with `arbitrary`, and the builders that turn them into a market
//! and an instrument set (any step may refuse the input with `None`).

use arbitrary::Arbitrary;
use portfolio_margin::{
    FutureContract, Instrument, InstrumentId, InstrumentSet, MarketSnapshot, OptionContract,
    OptionKind, OptionModel, PerpetualContract, Settlement, StrikeAxis, Timestamp, UnderlyingId,
    UnderlyingMarket, VolSurface,
};

/// 2026-11-25T08:00:00Z.
pub const AS_OF_MILLIS: i64 = 1_795_593_600_000;
/// One hour in milliseconds.
pub const HOUR_MILLIS: i64 = 3_600_000;
/// Names of the (up to three) underlyings, in order.
pub const NAMES: [&str; 3] = ["BTC", "ETH", "SOL"];

/// A number: either any `f64` (NaN, infinities, huge, tiny) or a point of a
/// sensible range, so the fuzzer reaches both the validation and the maths.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Num {
    /// Any `f64`.
    Raw(f64),
    /// A point of the range given to [`Num::get`].
    Scaled(u16),
}

impl Num {
    /// The raw number, or the point of `[lo, hi]`.
    pub fn get(self, lo: f64, hi: f64) -> f64 {
        match self {
            Num::Raw(x) => x,
            Num::Scaled(u) => lo + (hi - lo) * f64::from(u) / f64::from(u16::MAX),
        }
    }
}

/// A flat or grid vol surface.
#[derive(Debug, Arbitrary)]
pub enum SurfaceIn {
    /// `VolSurface::flat`.
    Flat(Num),
    /// `VolSurface::grid` with increasing axes.
    Grid {
        /// Strike axis in log-moneyness (else absolute strikes).
        log_moneyness: bool,
        /// First expiry (years).
        first_expiry: Num,
        /// Steps to the next expiries (up to 3).
        expiry_steps: Vec<Num>,
        /// First strike.
        first_strike: Num,
        /// Steps to the next strikes (up to 4).
        strike_steps: Vec<Num>,
        /// Node vols, cycled.
        vols: Vec<Num>,
    },
}

/// One underlying's market.
#[derive(Debug, Arbitrary)]
pub struct UnderlyingIn {
    /// Spot.
    pub spot: Num,
    /// Rate.
    pub rate: Num,
    /// Carry yield.
    pub carry: Num,
    /// Vol surface.
    pub surface: SurfaceIn,
}

/// An expiry: hours from the valuation time, or any instant.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Expiry {
    /// Hours after [`AS_OF_MILLIS`] (negative: expired).
    Hours(i16),
    /// Any instant, in milliseconds since the epoch.
    Millis(i64),
}

impl Expiry {
    /// The instant.
    pub fn timestamp(self) -> Timestamp {
        match self {
            Expiry::Hours(h) => Timestamp::from_millis(AS_OF_MILLIS + i64::from(h) * HOUR_MILLIS),
            Expiry::Millis(ms) => Timestamp::from_millis(ms),
        }
    }
}

/// One instrument; underlyings are picked by index modulo the number of
/// underlyings.
#[derive(Debug, Arbitrary)]
pub enum InstrumentIn {
    /// A spot holding.
    Spot(u8),
    /// A dated future.
    Future {
        /// Underlying index.
        underlying: u8,
        /// Expiry.
        expiry: Expiry,
        /// Multiplier.
        multiplier: Num,
        /// Coin-settled.
        inverse: bool,
    },
    /// A perpetual.
    Perpetual {
        /// Underlying index.
        underlying: u8,
        /// Multiplier.
        multiplier: Num,
        /// Coin-settled.
        inverse: bool,
    },
    /// A European option.
    Option {
        /// Underlying index.
        underlying: u8,
        /// Call (else put).
        call: bool,
        /// Strike: raw, or a fraction 0.2..3 of spot.
        strike: Num,
        /// Expiry.
        expiry: Expiry,
        /// Multiplier.
        multiplier: Num,
        /// Coin-settled.
        inverse: bool,
        /// Black-76 (else Black-Scholes-Merton).
        black76: bool,
    },
}

/// Linear or inverse settlement.
pub fn settlement(inverse: bool) -> Settlement {
    if inverse {
        Settlement::Inverse
    } else {
        Settlement::Linear
    }
}

/// The surface, or its validation error.
pub fn surface(s: &SurfaceIn) -> portfolio_margin::Result<VolSurface> {
    match s {
        SurfaceIn::Flat(v) => VolSurface::flat(v.get(0.05, 2.0)),
        SurfaceIn::Grid {
            log_moneyness,
            first_expiry,
            expiry_steps,
            first_strike,
            strike_steps,
            vols,
        } => {
            let mut expiries = vec![first_expiry.get(0.005, 0.5)];
            for step in expiry_steps.iter().take(3) {
                let last = expiries[expiries.len() - 1];
                expiries.push(last + step.get(0.01, 1.0));
            }
            let axis = if *log_moneyness {
                StrikeAxis::LogMoneyness
            } else {
                StrikeAxis::Strike
            };
            let mut strikes = match axis {
                StrikeAxis::LogMoneyness => vec![first_strike.get(-1.0, 0.0)],
                StrikeAxis::Strike => vec![first_strike.get(1.0, 150_000.0)],
            };
            for step in strike_steps.iter().take(4) {
                let last = strikes[strikes.len() - 1];
                strikes.push(last + step.get(0.01, 20_000.0));
            }
            let n = expiries.len() * strikes.len();
            let nodes: Vec<f64> = if vols.is_empty() {
                vec![0.5; n]
            } else {
                (0..n)
                    .map(|i| vols[i % vols.len()].get(0.05, 2.0))
                    .collect()
            };
            VolSurface::grid(expiries, axis, strikes, nodes)
        }
    }
}

/// A market of up to three underlyings (named [`NAMES`]) at
/// [`AS_OF_MILLIS`] + `as_of_offset` seconds, scaling every spot by
/// `spot_factor`; `None` if any part is invalid or there is no underlying.
pub fn market(
    as_of_offset: i32,
    underlyings: &[UnderlyingIn],
    spot_factor: f64,
) -> Option<(MarketSnapshot, Vec<UnderlyingId>)> {
    let as_of = Timestamp::from_millis(AS_OF_MILLIS + i64::from(as_of_offset) * 1000);
    let mut builder = MarketSnapshot::builder(as_of);
    let mut ids = Vec::new();
    for (u, name) in underlyings.iter().zip(NAMES) {
        let id = UnderlyingId::new(name).ok()?;
        let market = UnderlyingMarket::new(
            u.spot.get(1.0, 200_000.0) * spot_factor,
            u.rate.get(-0.1, 0.3),
            u.carry.get(-0.1, 0.3),
            surface(&u.surface).ok()?,
        )
        .ok()?;
        builder = builder.underlying(id.clone(), market);
        ids.push(id);
    }
    if ids.is_empty() {
        return None;
    }
    Some((builder.build().ok()?, ids))
}

/// The id of the `k`-th instrument.
pub fn instrument_id(k: usize) -> InstrumentId {
    InstrumentId::new(format!("I{k}")).expect("a valid id")
}

/// Up to six instruments, ids `I0`, `I1`, ...; `None` if any is invalid
/// or there is none.
pub fn instruments(
    specs: &[InstrumentIn],
    market: &MarketSnapshot,
    ids: &[UnderlyingId],
) -> Option<InstrumentSet> {
    let pick = |k: u8| ids[usize::from(k) % ids.len()].clone();
    let mut instruments = InstrumentSet::new();
    for (k, spec) in specs.iter().take(6).enumerate() {
        let instrument = match spec {
            InstrumentIn::Spot(u) => Instrument::Spot(pick(*u)),
            InstrumentIn::Future {
                underlying,
                expiry,
                multiplier,
                inverse,
            } => Instrument::Future(
                FutureContract::new(pick(*underlying), expiry.timestamp())
                    .with_multiplier(multiplier.get(0.001, 100.0))
                    .ok()?
                    .with_settlement(settlement(*inverse)),
            ),
            InstrumentIn::Perpetual {
                underlying,
                multiplier,
                inverse,
            } => Instrument::Perpetual(
                PerpetualContract::new(pick(*underlying))
                    .with_multiplier(multiplier.get(0.001, 100.0))
                    .ok()?
                    .with_settlement(settlement(*inverse)),
            ),
            InstrumentIn::Option {
                underlying,
                call,
                strike,
                expiry,
                multiplier,
                inverse,
                black76,
            } => {
                let id = pick(*underlying);
                let spot = market.underlying(&id).ok()?.spot();
                let kind = if *call {
                    OptionKind::Call
                } else {
                    OptionKind::Put
                };
                let strike = match strike {
                    Num::Raw(x) => *x,
                    scaled => spot * scaled.get(0.2, 3.0),
                };
                let model = if *black76 {
                    OptionModel::Black76
                } else {
                    OptionModel::BlackScholesMerton
                };
                Instrument::Option(
                    OptionContract::new(id, kind, strike, expiry.timestamp())
                        .ok()?
                        .with_multiplier(multiplier.get(0.001, 100.0))
                        .ok()?
                        .with_settlement(settlement(*inverse))
                        .with_model(model),
                )
            }
        };
        instruments.insert(instrument_id(k), instrument).ok()?;
    }
    if instruments.is_empty() {
        return None;
    }
    Some(instruments)
}
