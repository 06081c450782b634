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

use portfolio_margin::{
    AccountId, DayBasis, InstrumentSet, MarketSnapshot, Portfolio, Position, Settlement,
    instrument_greeks, portfolio_greeks,
};
use serde::Deserialize;
use std::process::ExitCode;

const SAMPLE: &str = include_str!("data/sample_book.json");
const FORMAT_VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Book {
    format_version: u32,
    account: AccountId,
    market: MarketSnapshot,
    instruments: InstrumentSet,
    positions: Vec<Position>,
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
    let text = match args.iter().find(|a| !a.starts_with("--")) {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?,
        None => SAMPLE.to_string(),
    };
    let book: Book = serde_json::from_str(&text)?;
    if book.format_version != FORMAT_VERSION {
        return Err(format!(
            "format_version {} is not supported (expected {FORMAT_VERSION})",
            book.format_version
        )
        .into());
    }
    let portfolio = Portfolio::new(book.account, book.positions, &book.instruments)?;
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
    Ok(())
}
