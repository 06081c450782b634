//! Monte Carlo VaR/ES of 100 options on 5 correlated underlyings with full
//! revaluation, streamed over 1,000,000 paths (the book of
//! `benches/monte_carlo_var.rs`). Prints the figures and the wall time.
//!
//! Run: `cargo run --release --example monte_carlo_var [paths]`; for the peak
//! memory: `/usr/bin/time -v target/release/examples/monte_carlo_var`.

use portfolio_margin::*;
use std::time::Instant;

#[path = "../benches/common/mc_book.rs"]
mod mc_book;

fn main() -> Result<()> {
    let paths = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mc_book::Setup {
        instruments,
        market,
        book,
        generator,
    } = mc_book::setup(paths)?;
    let start = Instant::now();
    let risk = monte_carlo_risk(
        &book,
        &instruments,
        &market,
        &generator,
        Confidence::new(0.99)?,
        Revaluation::Full,
    )?;
    println!(
        "{paths} paths x {} options: {:.3} s",
        book.positions().len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "VaR99 {:.2} ± {:.2}, ES99 {:.2} ± {:.2}",
        risk.value_at_risk,
        risk.var_standard_error,
        risk.expected_shortfall,
        risk.es_standard_error
    );
    Ok(())
}
