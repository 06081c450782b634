//! The sample documents of `examples/data/`, built from the crate's types
//! (presets, defaults and the main example's settings). Shared by
//! `examples/json_samples.rs`, which writes them, and
//! `tests/json_samples.rs`, which checks the committed files against them.
//!
//! `report.json` is not here: it is the main example's `--json` output.

use crate::common::{
    BalancesFile, CollateralPolicyFile, CrossPolicyFile, Document, EsMarginPolicyFile,
    GridPolicyFile, HealthBandsFile, HistoricalConfigFile, InstrumentsFile, IsolatedPolicyFile,
    LiquidationPolicyFile, MarketFile, MonteCarloConfigFile, StressGridFile, default_collateral,
    report_historical_config, report_monte_carlo_config, report_stress_grid, sample_book_file,
    write_document,
};
use portfolio_margin::{
    CrossPolicy, EsMarginPolicy, FinraPortfolioType, GridPolicy, HealthBands, IsolatedPolicy,
    LiquidationPolicy,
};
use std::error::Error;

/// Price scan range of the CME SPAN sample: 8% of the price.
pub const SPAN_PRICE_SCAN_RANGE: f64 = 0.08;
/// Vol scan range of the CME SPAN sample: 4 vol points (absolute).
pub const SPAN_VOL_SCAN_RANGE: f64 = 0.04;

/// Every generated sample: its file name in `examples/data/` and its text.
pub fn samples() -> Result<Vec<(&'static str, String)>, Box<dyn Error>> {
    let book = sample_book_file()?;
    let mut out = Vec::new();
    let mut add = |name: &'static str,
                   text: Result<String, serde_json::Error>|
     -> Result<(), Box<dyn Error>> {
        out.push((name, text?));
        Ok(())
    };
    add("sample_book.json", write_document(&book))?;
    add(
        "market.json",
        write_document(&MarketFile::new(book.market.clone())),
    )?;
    add(
        "instruments.json",
        write_document(&InstrumentsFile::new(book.instruments.clone())),
    )?;
    add(
        "balances.json",
        write_document(&BalancesFile::new(
            book.balances.clone().unwrap_or_default(),
        )),
    )?;
    add(
        "collateral_policy.json",
        write_document(&CollateralPolicyFile::new(match book.collateral {
            Some(policy) => policy,
            None => default_collateral()?,
        })),
    )?;
    add(
        "grid_policy_deribit_style.json",
        write_document(&GridPolicyFile::new(GridPolicy::deribit_style())),
    )?;
    add(
        "grid_policy_cme_span_16.json",
        write_document(&GridPolicyFile::new(GridPolicy::cme_span_16(
            SPAN_PRICE_SCAN_RANGE,
            SPAN_VOL_SCAN_RANGE,
        )?)),
    )?;
    add(
        "grid_policy_finra_4210.json",
        write_document(&GridPolicyFile::new(GridPolicy::finra_4210(
            FinraPortfolioType::HighCapBroadIndex,
        ))),
    )?;
    add(
        "isolated_policy.json",
        write_document(&IsolatedPolicyFile::new(IsolatedPolicy::default())),
    )?;
    add(
        "cross_policy.json",
        write_document(&CrossPolicyFile::new(CrossPolicy::default())),
    )?;
    add(
        "es_margin_policy.json",
        write_document(&EsMarginPolicyFile::new(EsMarginPolicy::default())),
    )?;
    add(
        "health_bands.json",
        write_document(&HealthBandsFile::new(HealthBands::default())),
    )?;
    add(
        "liquidation_policy.json",
        write_document(&LiquidationPolicyFile::new(LiquidationPolicy::default())),
    )?;
    add(
        "monte_carlo_config.json",
        write_document(&MonteCarloConfigFile::new(report_monte_carlo_config()?)),
    )?;
    add(
        "historical_config.json",
        write_document(&HistoricalConfigFile::new(report_historical_config()?)),
    )?;
    add(
        "stress_grid.json",
        write_document(&StressGridFile::new(report_stress_grid()?)),
    )?;
    Ok(out)
}

/// Decodes `text` as the document that `name` holds and writes it back
/// (the round trip the test checks), or `None` for a file name this
/// module does not know.
pub fn round_trip(name: &str, text: &str) -> Option<Result<String, Box<dyn Error>>> {
    fn again<D: Document>(text: &str) -> Result<String, Box<dyn Error>> {
        let document: D = crate::common::read_document(text)?;
        Ok(write_document(&document)?)
    }
    Some(match name {
        "sample_book.json" => again::<crate::common::BookFile>(text),
        "market.json" => again::<MarketFile>(text),
        "instruments.json" => again::<InstrumentsFile>(text),
        "balances.json" => again::<BalancesFile>(text),
        "collateral_policy.json" => again::<CollateralPolicyFile>(text),
        n if n.starts_with("grid_policy_") => again::<GridPolicyFile>(text),
        "isolated_policy.json" => again::<IsolatedPolicyFile>(text),
        "cross_policy.json" => again::<CrossPolicyFile>(text),
        "es_margin_policy.json" => again::<EsMarginPolicyFile>(text),
        "health_bands.json" => again::<HealthBandsFile>(text),
        "liquidation_policy.json" => again::<LiquidationPolicyFile>(text),
        "monte_carlo_config.json" => again::<MonteCarloConfigFile>(text),
        "historical_config.json" => again::<HistoricalConfigFile>(text),
        "stress_grid.json" => again::<StressGridFile>(text),
        _ => return None,
    })
}
