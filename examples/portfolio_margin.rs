//! The main example: an embedded crypto options book (BTC coin-settled
//! options, futures and perpetuals in Deribit's style; ETH linear options
//! and perpetuals), priced with every Greek, aggregated per underlying.
//!
//! ```sh
//! cargo run --release --example portfolio_margin                   # the embedded book
//! cargo run --release --example portfolio_margin -- my_book.json     # your own book
//! cargo run --release --example portfolio_margin -- --json           # machine-readable
//! ```
//!
//! The JSON format is the serde form of the crate's types; see
//! `examples/data/sample_book.json`.

mod common;

use portfolio_margin::{
    Confidence, DayBasis, GridAxis, GridScope, QuantileRule, Revaluation, RiskArrays, Settlement,
    ShockKind, StressGrid, UnderlyingId, YearFraction, expected_shortfall, instrument_greeks,
    portfolio_greeks, portfolio_pnl, value_at_risk,
};
use std::process::ExitCode;

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
    if json_out {
        println!("{}", serde_json::to_string_pretty(&greeks)?);
        return Ok(());
    }

    println!(
        "portfolio-margin: account {} at {}",
        portfolio.account(),
        book.market.as_of()
    );
    println!();
    println!("Positions (unit value in settlement currency; Greeks per position, quote currency)");
    println!(
        "{:<26} {:>10} {:>14} {:>12} {:>12} {:>12} {:>12}",
        "instrument", "qty", "unit value", "delta", "gamma", "vega/pt", "theta/day"
    );
    for p in portfolio.positions() {
        let instrument = book.instruments.get(&p.instrument)?;
        let g = instrument_greeks(instrument, &book.market)?;
        let pos = g.quote * (p.quantity * instrument.multiplier());
        let unit = match g.settlement {
            Settlement::Linear => format!("{:.2} USD", g.native.value),
            Settlement::Inverse => format!("{:.6} {}", g.native.value, instrument.underlying()),
        };
        println!(
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
    println!();
    println!("Portfolio Greeks per underlying (spot terms, quote currency)");
    println!(
        "{:<6} {:>12} {:>12} {:>16} {:>18} {:>12} {:>12}",
        "", "spot", "delta", "cash delta", "cash gamma/1%", "vega/pt", "theta/day"
    );
    for u in &greeks.per_underlying {
        println!(
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
    println!(
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
    let grid = StressGrid::new(
        GridAxis::new(ShockKind::Relative, 0.30, 13)?,
        GridAxis::new(ShockKind::Relative, 0.40, 5)?,
        GridScope::AllTogether,
        YearFraction::from_days(1.0, DayBasis::Calendar365)?,
    );
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
    println!();
    println!(
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
    println!(
        "  worst scenario: {}, P&L {:.2} USD",
        moves.join(", "),
        worst_pnl
    );
    let confidence = Confidence::new(0.95)?;
    println!(
        "  over the grid at 95%: VaR {:.2} USD, ES {:.2} USD",
        value_at_risk(&pnl, confidence, QuantileRule::Empirical)?,
        expected_shortfall(&pnl, confidence, QuantileRule::Empirical)?
    );
    Ok(())
}
