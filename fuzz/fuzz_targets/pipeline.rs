//! End to end: arbitrary bytes -> a market, instruments and a book ->
//! risk arrays over a stress grid and over a small Monte Carlo set ->
//! portfolio P&L -> VaR/ES -> portfolio Greeks. Every step may return a
//! typed error; nothing may panic, and every `Ok` number must be finite.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    AccountId, Confidence, CorrelationMatrix, FutureContract, GridAxis, GridScope, Instrument,
    InstrumentId, InstrumentSet, MarketSnapshot, MonteCarloConfig, MonteCarloGenerator,
    OptionContract, OptionKind, OptionModel, PerpetualContract, Portfolio, Position, QuantileRule,
    Revaluation, RiskArrays, RiskFactor, ScenarioSet, Settlement, ShockDistribution, ShockKind,
    SimulatedFactor, StressGrid, StrikeAxis, Timestamp, UnderlyingId, UnderlyingMarket, VolSurface,
    YearFraction, expected_shortfall, monte_carlo_risk, portfolio_greeks, portfolio_pnl,
    value_at_risk,
};
use portfolio_margin_fuzz::{check_arrays, check_portfolio_greeks, check_scenarios, finite};

/// 2026-11-25T08:00:00Z.
const AS_OF_MILLIS: i64 = 1_795_593_600_000;
const HOUR_MILLIS: i64 = 3_600_000;

/// A number: either any `f64` (NaN, infinities, huge, tiny) or a point of a
/// sensible range, so the fuzzer reaches both the validation and the maths.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Num {
    Raw(f64),
    Scaled(u16),
}

impl Num {
    fn get(self, lo: f64, hi: f64) -> f64 {
        match self {
            Num::Raw(x) => x,
            Num::Scaled(u) => lo + (hi - lo) * f64::from(u) / f64::from(u16::MAX),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum SurfaceIn {
    Flat(Num),
    Grid {
        log_moneyness: bool,
        first_expiry: Num,
        expiry_steps: Vec<Num>,
        first_strike: Num,
        strike_steps: Vec<Num>,
        vols: Vec<Num>,
    },
}

#[derive(Debug, Arbitrary)]
struct UnderlyingIn {
    spot: Num,
    rate: Num,
    carry: Num,
    surface: SurfaceIn,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Expiry {
    Hours(i16),
    Millis(i64),
}

impl Expiry {
    fn timestamp(self) -> Timestamp {
        match self {
            Expiry::Hours(h) => Timestamp::from_millis(AS_OF_MILLIS + i64::from(h) * HOUR_MILLIS),
            Expiry::Millis(ms) => Timestamp::from_millis(ms),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum InstrumentIn {
    Spot(u8),
    Future {
        underlying: u8,
        expiry: Expiry,
        multiplier: Num,
        inverse: bool,
    },
    Perpetual {
        underlying: u8,
        multiplier: Num,
        inverse: bool,
    },
    Option {
        underlying: u8,
        call: bool,
        strike: Num,
        expiry: Expiry,
        multiplier: Num,
        inverse: bool,
        black76: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct AxisIn {
    kind: u8,
    max_move: Num,
    points: u8,
}

#[derive(Debug, Arbitrary)]
struct FactorIn {
    underlying: u8,
    factor: u8,
    kind: u8,
    vol: Num,
}

#[derive(Debug, Arbitrary)]
struct Input {
    as_of_offset: i32,
    underlyings: Vec<UnderlyingIn>,
    instruments: Vec<InstrumentIn>,
    positions: Vec<(u8, Num)>,
    spot_axis: AxisIn,
    vol_axis: AxisIn,
    per_underlying: bool,
    grid_horizon: Num,
    sensitivity: bool,
    confidence: Num,
    seed: u64,
    paths: u8,
    chunk: u8,
    mc_horizon: Num,
    student_t: Option<Num>,
    factors: Vec<FactorIn>,
    correlations: Vec<Num>,
}

const NAMES: [&str; 3] = ["BTC", "ETH", "SOL"];

fn shock_kind(k: u8) -> ShockKind {
    match k % 3 {
        0 => ShockKind::Relative,
        1 => ShockKind::Log,
        _ => ShockKind::Absolute,
    }
}

fn settlement(inverse: bool) -> Settlement {
    if inverse {
        Settlement::Inverse
    } else {
        Settlement::Linear
    }
}

fn surface(s: &SurfaceIn) -> portfolio_margin::Result<VolSurface> {
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

fn build(input: &Input) -> Option<(MarketSnapshot, Vec<UnderlyingId>, InstrumentSet, Portfolio)> {
    let as_of = Timestamp::from_millis(AS_OF_MILLIS + i64::from(input.as_of_offset) * 1000);
    let mut builder = MarketSnapshot::builder(as_of);
    let mut ids = Vec::new();
    for (u, name) in input.underlyings.iter().zip(NAMES) {
        let id = UnderlyingId::new(name).ok()?;
        let market = UnderlyingMarket::new(
            u.spot.get(1.0, 200_000.0),
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
    let market = builder.build().ok()?;
    let pick = |k: u8| ids[usize::from(k) % ids.len()].clone();
    let mut instruments = InstrumentSet::new();
    for (k, spec) in input.instruments.iter().take(6).enumerate() {
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
        instruments
            .insert(InstrumentId::new(format!("I{k}")).ok()?, instrument)
            .ok()?;
    }
    if instruments.is_empty() {
        return None;
    }
    let positions = input
        .positions
        .iter()
        .take(8)
        .map(|(k, q)| {
            let k = usize::from(*k) % instruments.len();
            Position::new(
                InstrumentId::new(format!("I{k}")).expect("valid id"),
                q.get(-1000.0, 1000.0),
            )
        })
        .collect();
    let book = Portfolio::new(AccountId::new("fuzz"), positions, &instruments).ok()?;
    Some((market, ids, instruments, book))
}

/// Arrays, P&L and VaR/ES over one scenario set; all finite when `Ok`.
fn tail(
    instruments: &InstrumentSet,
    market: &MarketSnapshot,
    book: &Portfolio,
    scenarios: &ScenarioSet,
    method: Revaluation,
    confidence: Option<Confidence>,
) {
    check_scenarios(scenarios);
    let Ok(arrays) = RiskArrays::compute(instruments, market, scenarios, method) else {
        return;
    };
    check_arrays(&arrays, scenarios.len());
    let Ok(pnl) = portfolio_pnl(book, &arrays) else {
        return;
    };
    assert_eq!(pnl.len(), scenarios.len());
    portfolio_margin_fuzz::all_finite("portfolio P&L", &pnl);
    let Some(confidence) = confidence else {
        return;
    };
    for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
        if let Ok(var) = value_at_risk(&pnl, confidence, rule) {
            finite("VaR", var);
        }
        if let Ok(es) = expected_shortfall(&pnl, confidence, rule) {
            finite("ES", es);
        }
    }
}

fuzz_target!(|input: Input| {
    let Some((market, ids, instruments, book)) = build(&input) else {
        return;
    };
    let method = if input.sensitivity {
        Revaluation::Sensitivity
    } else {
        Revaluation::Full
    };
    let confidence = Confidence::new(input.confidence.get(0.5, 0.999)).ok();

    // Greeks.
    if let Ok(greeks) = portfolio_greeks(&book, &instruments, &market) {
        check_portfolio_greeks(&greeks);
    }

    // Stress grid.
    let axis = |a: &AxisIn, hi: f64| {
        GridAxis::new(
            shock_kind(a.kind),
            a.max_move.get(0.0, hi),
            1 + usize::from(a.points % 9),
        )
    };
    if let (Ok(spot), Ok(vol), Ok(horizon)) = (
        axis(&input.spot_axis, 0.9),
        axis(&input.vol_axis, 0.9),
        YearFraction::new(input.grid_horizon.get(0.0, 0.1)),
    ) {
        let scope = if input.per_underlying {
            GridScope::PerUnderlying
        } else {
            GridScope::AllTogether
        };
        if let Ok(scenarios) = StressGrid::new(spot, vol, scope, horizon).scenarios(&ids) {
            tail(&instruments, &market, &book, &scenarios, method, confidence);
        }
    }

    // Monte Carlo.
    let factors: Option<Vec<SimulatedFactor>> = input
        .factors
        .iter()
        .take(4)
        .map(|f| {
            let id = ids[usize::from(f.underlying) % ids.len()].clone();
            let factor = match f.factor % 4 {
                0 => RiskFactor::Spot(id),
                1 => RiskFactor::Vol(id),
                2 => RiskFactor::Rate(id),
                _ => RiskFactor::CarryYield(id),
            };
            SimulatedFactor::new(factor, shock_kind(f.kind), f.vol.get(0.0, 2.0)).ok()
        })
        .collect();
    let Some(factors) = factors.filter(|f| !f.is_empty()) else {
        return;
    };
    let n = factors.len();
    let mut rho = vec![1.0; n * n];
    let mut next = input.correlations.iter();
    for i in 0..n {
        for j in i + 1..n {
            let r = next.next().map_or(0.0, |r| r.get(-0.99, 0.99));
            rho[i * n + j] = r;
            rho[j * n + i] = r;
        }
    }
    let Ok(correlation) = CorrelationMatrix::new(n, rho) else {
        return;
    };
    let Ok(horizon) = YearFraction::new(input.mc_horizon.get(0.0, 0.1)) else {
        return;
    };
    let config = MonteCarloConfig::new(input.seed, 1 + usize::from(input.paths % 128), horizon)
        .and_then(|c| c.with_chunk_size(1 + usize::from(input.chunk % 32)))
        .and_then(|c| match input.student_t {
            Some(dof) => c.with_distribution(ShockDistribution::StudentT {
                degrees_of_freedom: dof.get(2.01, 30.0),
            }),
            None => Ok(c),
        });
    let Ok(config) = config else {
        return;
    };
    let Ok(generator) = MonteCarloGenerator::new(config, factors, &correlation) else {
        return;
    };
    if let Ok(scenarios) = generator.generate() {
        tail(&instruments, &market, &book, &scenarios, method, confidence);
    }
    if let Some(confidence) = confidence
        && let Ok(risk) =
            monte_carlo_risk(&book, &instruments, &market, &generator, confidence, method)
    {
        finite("MC VaR", risk.value_at_risk);
        finite("MC ES", risk.expected_shortfall);
        finite("MC VaR standard error", risk.var_standard_error);
        finite("MC ES standard error", risk.es_standard_error);
    }
});
