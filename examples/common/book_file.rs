//! The book document, on its own so that the fuzz crate's `decode_book`
//! target reads the same type (`fuzz/src/lib.rs` includes this file).

use portfolio_margin::{
    AccountId, Balance, CollateralPolicy, InstrumentSet, MarketSnapshot, Position,
};
use serde::{Deserialize, Serialize};

/// `sample_book.json`: one account's book with everything needed to
/// price and margin it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookFile {
    /// 1 (market, instruments, positions) or 2 (adds optional `balances`
    /// and `collateral`).
    pub format_version: u32,
    /// The account.
    pub account: AccountId,
    /// The market.
    pub market: MarketSnapshot,
    /// Listed instruments.
    pub instruments: InstrumentSet,
    /// The positions.
    pub positions: Vec<Position>,
    /// Collateral balances (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<Balance>>,
    /// Collateral policy (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<CollateralPolicy>,
}
