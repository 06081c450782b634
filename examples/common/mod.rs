//! Shared by the examples: the JSON book format of
//! `examples/data/sample_book.json` (the serde form of the crate's types).

use portfolio_margin::{AccountId, InstrumentSet, MarketSnapshot, Portfolio, Position};
use serde::Deserialize;

/// The embedded sample book.
const SAMPLE: &str = include_str!("../data/sample_book.json");
/// The `format_version` this code reads.
const FORMAT_VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    format_version: u32,
    account: AccountId,
    market: MarketSnapshot,
    instruments: InstrumentSet,
    positions: Vec<Position>,
}

/// A validated book: the account's positions, the listed instruments and
/// the market.
pub struct Book {
    pub portfolio: Portfolio,
    pub instruments: InstrumentSet,
    pub market: MarketSnapshot,
}

/// Reads the book at `path`, or the embedded sample book if `None`.
pub fn load_book(path: Option<&str>) -> Result<Book, Box<dyn std::error::Error>> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?,
        None => SAMPLE.to_string(),
    };
    let file: BookFile = serde_json::from_str(&text)?;
    if file.format_version != FORMAT_VERSION {
        return Err(format!(
            "format_version {} is not supported (expected {FORMAT_VERSION})",
            file.format_version
        )
        .into());
    }
    let portfolio = Portfolio::new(file.account, file.positions, &file.instruments)?;
    Ok(Book {
        portfolio,
        instruments: file.instruments,
        market: file.market,
    })
}
