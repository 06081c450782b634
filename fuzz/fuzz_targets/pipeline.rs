//! End to end: arbitrary bytes -> a market, instruments and a book ->
//! risk arrays over a stress grid and over a small Monte Carlo set ->
//! portfolio P&L -> VaR/ES -> portfolio Greeks. Every step may return a
//! typed error; nothing may panic, and every `Ok` number must be finite.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    AccountId, Confidence, CorrelationMatrix, GridAxis, GridScope, InstrumentSet, MarketSnapshot,
    MonteCarloConfig, MonteCarloGenerator, Portfolio, Position, QuantileRule, Revaluation,
    RiskArrays, RiskFactor, ScenarioSet, ShockDistribution, ShockKind, SimulatedFactor, StressGrid,
    UnderlyingId, YearFraction, expected_shortfall, monte_carlo_risk, portfolio_greeks,
    portfolio_pnl, value_at_risk,
};
use portfolio_margin_fuzz::input::{self, InstrumentIn, Num, UnderlyingIn};
use portfolio_margin_fuzz::{check_arrays, check_portfolio_greeks, check_scenarios, finite};

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

fn shock_kind(k: u8) -> ShockKind {
    match k % 3 {
        0 => ShockKind::Relative,
        1 => ShockKind::Log,
        _ => ShockKind::Absolute,
    }
}

fn build(input: &Input) -> Option<(MarketSnapshot, Vec<UnderlyingId>, InstrumentSet, Portfolio)> {
    let (market, ids) = input::market(input.as_of_offset, &input.underlyings, 1.0)?;
    let instruments = input::instruments(&input.instruments, &market, &ids)?;
    let positions = input
        .positions
        .iter()
        .take(8)
        .map(|(k, q)| {
            let k = usize::from(*k) % instruments.len();
            Position::new(input::instrument_id(k), q.get(-1000.0, 1000.0))
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
