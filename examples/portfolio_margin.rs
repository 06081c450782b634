//! The main example: an embedded crypto options book (BTC coin-settled
//! options, futures and perpetuals in Deribit's style; ETH linear options,
//! perpetual and spot) with multi-asset collateral: every Greek per position
//! and per underlying, a stress grid, historical and Monte Carlo VaR/ES with
//! attribution, margin under every methodology with the saving against
//! isolated margin, collateral after haircuts, health factor and status.
//!
//! ```sh
//! cargo run --release --example portfolio_margin                   # the embedded book
//! cargo run --release --example portfolio_margin -- my_book.json     # your own book
//! cargo run --release --example portfolio_margin -- --json           # machine-readable
//! ```
//!
//! The JSON format is the serde form of the crate's types in a versioned
//! document; see `docs/json_format.md` and the samples in `examples/data/`.

mod common;

use portfolio_margin::{
    Account, AccountHealth, AccountId, CapitalEfficiency, Confidence, CorrelationMatrix,
    CrossMargin, CrossPolicy, DayBasis, EsMargin, EsMarginInputs, EsMarginPolicy, GridMargin,
    GridMarginEngine, GridPolicy, HealthBands, HealthFactor, InstrumentGreeks, InstrumentId,
    IsolatedMargin, IsolatedPolicy, MarketSnapshot, Methodology, MonteCarloGenerator,
    MonteCarloRisk, PortfolioGreeks, PriceHistory, QuantileRule, Revaluation, RiskArrays,
    RiskAttribution, RiskFactor, ScenarioSet, Settlement, Timestamp, UnderlyingId, account_health,
    attribute_risk, capital_efficiency, cross_margin, expected_shortfall, historical_scenarios,
    instrument_greeks, isolated_margin, monte_carlo_risk, portfolio_es_margin, portfolio_greeks,
    portfolio_pnl, position_pnl, value_at_risk,
};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the report is printed as text (`false` with `--json`).
static TEXT: AtomicBool = AtomicBool::new(true);

/// `println!` in text mode only.
macro_rules! say {
    ($($t:tt)*) => {
        if TEXT.load(Ordering::Relaxed) {
            println!($($t)*);
        }
    };
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_out = args.iter().any(|a| a == "--json");
    let path = args.iter().find(|a| !a.starts_with("--"));
    let book = common::load_book(path.map(String::as_str))?;
    let portfolio = book.portfolio;
    let greeks = portfolio_greeks(&portfolio, &book.instruments, &book.market)?;
    TEXT.store(!json_out, Ordering::Relaxed);

    say!(
        "portfolio-margin: account {} at {}",
        portfolio.account(),
        book.market.as_of()
    );
    say!("");
    say!("Positions (unit value in settlement currency; Greeks per position, quote currency)");
    say!(
        "{:<26} {:>10} {:>14} {:>12} {:>12} {:>12} {:>12}",
        "instrument",
        "qty",
        "unit value",
        "delta",
        "gamma",
        "vega/pt",
        "theta/day"
    );
    let mut position_lines = Vec::new();
    for p in portfolio.positions() {
        let instrument = book.instruments.get(&p.instrument)?;
        let g = instrument_greeks(instrument, &book.market)?;
        position_lines.push(PositionLine {
            instrument: p.instrument.clone(),
            quantity: p.quantity,
            multiplier: instrument.multiplier(),
            unit_greeks: g,
        });
        let pos = g.quote * (p.quantity * instrument.multiplier());
        let unit = match g.settlement {
            Settlement::Linear => format!("{:.2} USD", g.native.value),
            Settlement::Inverse => format!("{:.6} {}", g.native.value, instrument.underlying()),
        };
        say!(
            "{:<26} {:>10} {:>14} {:>12.4} {:>12.6} {:>12.2} {:>12.2}",
            p.instrument.as_str(),
            p.quantity,
            unit,
            pos.delta * g.forward_per_spot,
            pos.gamma * g.forward_per_spot * g.forward_per_spot,
            pos.vega_per_vol_point(),
            pos.theta_per_day(DayBasis::Calendar365),
        );
    }
    say!("");
    say!("Portfolio Greeks per underlying (spot terms, quote currency)");
    say!(
        "{:<6} {:>12} {:>12} {:>16} {:>18} {:>12} {:>12}",
        "",
        "spot",
        "delta",
        "cash delta",
        "cash gamma/1%",
        "vega/pt",
        "theta/day"
    );
    for u in &greeks.per_underlying {
        say!(
            "{:<6} {:>12.2} {:>12.4} {:>16.2} {:>18.2} {:>12.2} {:>12.2}",
            u.underlying.as_str(),
            u.spot,
            u.greeks.delta,
            u.cash_delta,
            u.cash_gamma_per_pct,
            u.vega_per_vol_point,
            u.theta_per_day
        );
    }
    say!(
        "{:<6} {:>12} {:>12} {:>16.2} {:>18.2} {:>12.2} {:>12.2}",
        "total",
        "",
        "",
        greeks.cash_delta,
        greeks.cash_gamma_per_pct,
        greeks.vega_per_vol_point,
        greeks.theta_per_day
    );

    // A stress grid over all underlyings moving together: spot -30%..+30% in
    // 13 steps x implied vol -40%..+40% (relative) in 5 steps, over one day.
    let underlyings: Vec<UnderlyingId> = book
        .market
        .underlyings()
        .map(|(id, _)| id.clone())
        .collect();
    // (examples/data/stress_grid.json)
    let grid = common::report_stress_grid()?;
    let scenarios = grid.scenarios(&underlyings)?;
    let arrays = RiskArrays::compute(
        &book.instruments,
        &book.market,
        &scenarios,
        Revaluation::Full,
    )?;
    let pnl = portfolio_pnl(&portfolio, &arrays)?;
    let (worst, worst_pnl) = pnl
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, p)| (i, *p))
        .ok_or("empty scenario set")?;
    say!("");
    say!(
        "Stress grid, all underlyings together ({} scenarios, full revaluation, 1-day horizon)",
        pnl.len()
    );
    let moves: Vec<String> = scenarios
        .factors()
        .iter()
        .zip(scenarios.scenario(worst))
        .filter(|(_, size)| **size != 0.0)
        .map(|((factor, _), size)| format!("{factor} {:+.0}%", 100.0 * size))
        .collect();
    say!(
        "  worst scenario: {}, P&L {:.2} USD",
        moves.join(", "),
        worst_pnl
    );
    let confidence = Confidence::new(0.95)?;
    say!(
        "  over the grid at 95%: VaR {:.2} USD, ES {:.2} USD",
        value_at_risk(&pnl, confidence, QuantileRule::Empirical)?,
        expected_shortfall(&pnl, confidence, QuantileRule::Empirical)?
    );

    // Historical VaR/ES: 1-day returns of real index closes (NASDAQ for the
    // first underlying, S&P 500 for the second), scaled to each underlying's
    // implied vol: a proxy history, labelled as such.
    let confidence = Confidence::new(0.99)?;
    let history = proxy_history(&book.market, &underlyings)?;
    let hist_arrays =
        RiskArrays::compute(&book.instruments, &book.market, &history, Revaluation::Full)?;
    let hist_pnl = portfolio_pnl(&portfolio, &hist_arrays)?;
    let per_position = position_pnl(&portfolio, &hist_arrays)?;
    let rows: Vec<&[f64]> = per_position.iter().map(Vec::as_slice).collect();
    let attribution = attribute_risk(&rows, confidence)?;
    say!("");
    say!(
        "Historical VaR/ES at 99%, 1 day ({} scenarios: daily NASDAQ / S&P 500 returns 2011-2018 scaled to each underlying's implied vol)",
        hist_pnl.len()
    );
    say!(
        "  VaR {:.2} USD, ES {:.2} USD",
        attribution.total.value_at_risk,
        attribution.total.expected_shortfall
    );
    say!("  {:<26} {:>16} {:>16}", "component (Euler)", "VaR", "ES");
    for (p, r) in portfolio.positions().iter().zip(&attribution.positions) {
        say!(
            "  {:<26} {:>16.2} {:>16.2}",
            p.instrument.as_str(),
            r.component_var,
            r.component_es
        );
    }

    // Monte Carlo VaR/ES: correlated log spot moves at each underlying's
    // implied vol, full revaluation.
    let generator = mc_generator(&book.market, &underlyings)?;
    let mc = monte_carlo_risk(
        &portfolio,
        &book.instruments,
        &book.market,
        &generator,
        confidence,
        Revaluation::Full,
    )?;
    say!("");
    say!(
        "Monte Carlo VaR/ES at 99%, 1 day ({} paths, spot correlation {MC_CORRELATION})",
        mc.paths
    );
    say!(
        "  VaR {:.2} +- {:.2} USD, ES {:.2} +- {:.2} USD (one standard error)",
        mc.value_at_risk,
        mc.var_standard_error,
        mc.expected_shortfall,
        mc.es_standard_error
    );

    // Margin under every methodology.
    let isolated = isolated_margin(
        &portfolio,
        &book.instruments,
        &book.market,
        &IsolatedPolicy::default(),
    )?;
    let cross = cross_margin(
        &portfolio,
        &book.instruments,
        &book.market,
        &CrossPolicy::default(),
    )?;
    let engine =
        GridMarginEngine::new(&book.instruments, &book.market, GridPolicy::deribit_style())?;
    let grid = engine.margin(&engine.account(&portfolio)?)?;
    let es = portfolio_es_margin(
        &portfolio,
        &hist_arrays,
        &EsMarginInputs::new(),
        &EsMarginPolicy::default(),
    )?;
    let report = capital_efficiency(&[
        (Methodology::Isolated, isolated.requirement),
        (Methodology::Cross, cross.requirement),
        (Methodology::PortfolioGrid, grid.requirement),
        (Methodology::ExpectedShortfall, es.requirement),
    ])?;
    say!("");
    say!("Margin (USD)");
    say!(
        "  {:<50} {:>14} {:>14} {:>14}",
        "methodology",
        "initial",
        "maintenance",
        "saving"
    );
    let names = [
        "isolated (per position)",
        "cross (netting, spread credits)",
        "portfolio grid (Deribit-style, 35 scenarios)",
        "expected shortfall (99%, 2-day MPOR, 25% buffer)",
    ];
    for (m, name) in report.methodologies.iter().zip(names) {
        say!(
            "  {:<50} {:>14.2} {:>14.2} {:>13.1}%",
            name,
            m.requirement.initial(),
            m.requirement.maintenance(),
            100.0 * m.saving_fraction
        );
    }
    say!("  grid breakdown:");
    for u in &grid.underlyings {
        say!(
            "    {:<5} scan {:>12.2}  option minimum {:>10.2}  delta charge {:>10.2}  -> {:>12.2} ({:?}), worst: {}",
            u.underlying.as_str(),
            u.scan_risk,
            u.option_minimum,
            u.delta_charge,
            u.requirement,
            u.binding,
            u.worst_scenario_name
        );
        for p in &u.positions {
            say!(
                "      {:<26} loss at worst {:>14.2}",
                p.instrument.as_str(),
                p.loss_at_worst
            );
        }
    }

    // Collateral, equity and health against the grid margin.
    let account = Account {
        balances: &book.balances,
        portfolio: &portfolio,
        instruments: &book.instruments,
        market: &book.market,
        policy: &book.collateral,
    };
    let health = account_health(&account, grid.requirement, &HealthBands::default())?;
    say!("");
    say!(
        "Collateral (settlement {}; haircut = volatility over the liquidation horizon + liquidity tiers)",
        health.collateral.settlement
    );
    say!(
        "  {:<6} {:>14} {:>14} {:>16} {:>9} {:>16}",
        "asset",
        "amount",
        "price",
        "market value",
        "haircut",
        "adjusted"
    );
    for line in &health.collateral.lines {
        say!(
            "  {:<6} {:>14.4} {:>14.2} {:>16.2} {:>8.2}% {:>16.2}",
            line.asset.as_str(),
            line.amount,
            line.price,
            line.market_value,
            100.0 * line.haircut.fraction(),
            line.adjusted_value
        );
    }
    say!(
        "  positions at mark {:.2}, equity {:.2} USD, maintenance {:.2}, health factor {}, status {:?}",
        health.positions_value,
        health.equity,
        grid.requirement.maintenance(),
        match health.health_factor {
            HealthFactor::Ratio(r) => format!("{r:.3}"),
            HealthFactor::Unbounded => "unbounded".to_string(),
        },
        health.status
    );
    if health.deposit_to_healthy > 0.0 {
        say!(
            "  deposit to be healthy again: {:.2} USD",
            health.deposit_to_healthy
        );
    } else {
        say!("  withdrawable: {:.2} USD", health.withdrawable);
    }
    if json_out {
        let report = Report {
            format_version: common::FORMAT_VERSION,
            account: portfolio.account(),
            as_of: book.market.as_of(),
            positions: position_lines,
            greeks: &greeks,
            stress_grid: StressSummary {
                scenarios: pnl.len(),
                worst_scenario: worst,
                worst_scenario_name: scenarios.name(worst).unwrap_or_default().to_string(),
                worst_pnl,
            },
            historical: HistoricalSummary {
                confidence: confidence.level(),
                scenarios: hist_pnl.len(),
                attribution: &attribution,
            },
            monte_carlo: &mc,
            margin: MarginSummary {
                capital_efficiency: &report,
                isolated: &isolated,
                cross: &cross,
                portfolio_grid: &grid,
                expected_shortfall: &es,
            },
            health: &health,
        };
        print!("{}", common::to_pretty_json(&report)?);
    }
    Ok(())
}

/// The `--json` report (`examples/data/report.json`; fields in
/// `docs/json_format.md`).
#[derive(Serialize)]
struct Report<'a> {
    format_version: u32,
    account: &'a AccountId,
    as_of: Timestamp,
    positions: Vec<PositionLine>,
    greeks: &'a PortfolioGreeks,
    stress_grid: StressSummary,
    historical: HistoricalSummary<'a>,
    monte_carlo: &'a MonteCarloRisk,
    margin: MarginSummary<'a>,
    health: &'a AccountHealth,
}

/// A position with the Greeks of one unit of its instrument.
#[derive(Serialize)]
struct PositionLine {
    instrument: InstrumentId,
    quantity: f64,
    multiplier: f64,
    unit_greeks: InstrumentGreeks,
}

/// The stress grid's worst scenario.
#[derive(Serialize)]
struct StressSummary {
    scenarios: usize,
    worst_scenario: usize,
    worst_scenario_name: String,
    worst_pnl: f64,
}

/// Historical VaR/ES with Euler attribution.
#[derive(Serialize)]
struct HistoricalSummary<'a> {
    confidence: f64,
    scenarios: usize,
    attribution: &'a RiskAttribution,
}

/// Margin under every methodology.
#[derive(Serialize)]
struct MarginSummary<'a> {
    capital_efficiency: &'a CapitalEfficiency,
    isolated: &'a IsolatedMargin,
    cross: &'a CrossMargin,
    portfolio_grid: &'a GridMargin,
    expected_shortfall: &'a EsMargin,
}

/// Spot correlation of the Monte Carlo scenarios.
const MC_CORRELATION: f64 = 0.75;

/// Correlated 1-day log spot moves at each underlying's 30-day ATM vol.
fn mc_generator(
    market: &MarketSnapshot,
    underlyings: &[UnderlyingId],
) -> Result<MonteCarloGenerator, Box<dyn std::error::Error>> {
    let factors = common::atm_spot_factors(market, underlyings)?;
    let n = underlyings.len();
    let correlation: Vec<f64> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { MC_CORRELATION })
        .collect();
    // (examples/data/monte_carlo_config.json)
    Ok(MonteCarloGenerator::new(
        common::report_monte_carlo_config()?,
        factors,
        &CorrelationMatrix::new(n, correlation)?,
    )?)
}

/// Daily closes of NASDAQ and S&P 500 (tests/data, 2011-2018), as 1-day
/// log-return scenarios for up to two underlyings, each scaled so that its
/// realised vol equals the underlying's 30-day ATM implied vol.
fn proxy_history(
    market: &MarketSnapshot,
    underlyings: &[UnderlyingId],
) -> Result<ScenarioSet, Box<dyn std::error::Error>> {
    const CLOSES: &str = include_str!("../tests/data/scenario_index_closes.csv");
    let mut columns: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for line in CLOSES.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if let [_, sp500, nasdaq] = fields.as_slice() {
            columns[0].push(nasdaq.trim().parse()?);
            columns[1].push(sp500.trim().parse()?);
        }
    }
    let mut histories = Vec::new();
    let mut scales = Vec::new();
    for (u, closes) in underlyings.iter().zip(columns) {
        let returns: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let var =
            returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (returns.len() - 1) as f64;
        let realised = (var * 252.0).sqrt();
        scales.push(common::atm_vol_30_days(market, u)? / realised);
        histories.push(PriceHistory::new(RiskFactor::Spot(u.clone()), closes)?);
    }
    // (examples/data/historical_config.json)
    let config = common::report_historical_config()?;
    let raw = historical_scenarios(&histories, None, &config)?;
    let n = raw.n_factors();
    let sizes: Vec<f64> = raw
        .sizes()
        .iter()
        .enumerate()
        .map(|(k, s)| s * scales.get(k % n).copied().unwrap_or(1.0))
        .collect();
    Ok(ScenarioSet::new(
        raw.factors().to_vec(),
        sizes,
        config.horizon(),
    )?)
}
