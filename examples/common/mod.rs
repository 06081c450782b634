//! Shared by the examples: the JSON book format of
//! `examples/data/sample_book.json` (the serde form of the crate's types).

use portfolio_margin::{
    AccountId, AssetId, AssetKind, Balance, CollateralAsset, CollateralPolicy, HaircutPolicy,
    InstrumentSet, LiquidityTier, LiquidityTiers, MarketSnapshot, Portfolio, Position, PriceSource,
    UnderlyingId, VolatilityHaircut, VolatilitySource,
};
use serde::Deserialize;

/// The embedded sample book.
const SAMPLE: &str = include_str!("../data/sample_book.json");
/// The `format_version`s this code reads: 1 (market, instruments,
/// positions) and 2 (adds optional `balances` and `collateral`).
const FORMAT_VERSIONS: [u32; 2] = [1, 2];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    format_version: u32,
    account: AccountId,
    market: MarketSnapshot,
    instruments: InstrumentSet,
    positions: Vec<Position>,
    #[serde(default)]
    balances: Option<Vec<Balance>>,
    #[serde(default)]
    collateral: Option<CollateralPolicy>,
}

/// A validated book: the account's positions, the listed instruments and
/// the market.
// Each example uses the fields it needs (plots ignores the collateral).
#[allow(dead_code)]
pub struct Book {
    pub portfolio: Portfolio,
    pub instruments: InstrumentSet,
    pub market: MarketSnapshot,
    /// Collateral balances (negative: borrowed).
    pub balances: Vec<Balance>,
    /// Which assets count as collateral, with which haircuts.
    pub collateral: CollateralPolicy,
}

/// Reads the book at `path`, or the embedded sample book if `None`.
pub fn load_book(path: Option<&str>) -> Result<Book, Box<dyn std::error::Error>> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?,
        None => SAMPLE.to_string(),
    };
    let file: BookFile = serde_json::from_str(&text)?;
    if !FORMAT_VERSIONS.contains(&file.format_version) {
        return Err(format!(
            "format_version {} is not supported (expected one of {FORMAT_VERSIONS:?})",
            file.format_version
        )
        .into());
    }
    if file.format_version == 1 && (file.balances.is_some() || file.collateral.is_some()) {
        return Err("balances and collateral need format_version 2".into());
    }
    let portfolio = Portfolio::new(file.account, file.positions, &file.instruments)?;
    let collateral = match file.collateral {
        Some(c) => c,
        None => default_collateral()?,
    };
    Ok(Book {
        portfolio,
        instruments: file.instruments,
        market: file.market,
        balances: file.balances.unwrap_or_default(),
        collateral,
    })
}

/// USD (settlement, at par), USDC (at par, 1% liquidity haircut above
/// 10M), BTC and ETH (priced at their underlying's spot, haircut from the
/// market's ATM vol over a 1-day liquidation horizon at 99%, plus tiers).
#[allow(dead_code)]
pub fn default_collateral() -> Result<CollateralPolicy, Box<dyn std::error::Error>> {
    let usd = AssetId::new("USD")?;
    let coin_tiers = LiquidityTiers::new(vec![
        LiquidityTier {
            from: 0.0,
            haircut: portfolio_margin::Haircut::new(0.0)?,
        },
        LiquidityTier {
            from: 5e6,
            haircut: portfolio_margin::Haircut::new(0.05)?,
        },
        LiquidityTier {
            from: 2e7,
            haircut: portfolio_margin::Haircut::new(0.15)?,
        },
    ])?;
    let coin = |name: &str| -> Result<CollateralAsset, Box<dyn std::error::Error>> {
        Ok(CollateralAsset::new(
            AssetId::new(name)?,
            AssetKind::Coin,
            PriceSource::Underlying(UnderlyingId::new(name)?),
            HaircutPolicy::new(
                VolatilityHaircut::with_defaults(VolatilitySource::MarketAtm)?,
                coin_tiers.clone(),
                portfolio_margin::BorrowUplift::MirrorHaircut,
            )?,
        )?)
    };
    Ok(CollateralPolicy::new(
        usd.clone(),
        vec![
            CollateralAsset::at_par(usd, AssetKind::Fiat, 1.0)?,
            CollateralAsset::new(
                AssetId::new("USDC")?,
                AssetKind::Stablecoin,
                PriceSource::Fixed(1.0),
                HaircutPolicy::new(
                    VolatilityHaircut::with_defaults(VolatilitySource::Fixed(0.0))?,
                    LiquidityTiers::new(vec![
                        LiquidityTier {
                            from: 0.0,
                            haircut: portfolio_margin::Haircut::new(0.0)?,
                        },
                        LiquidityTier {
                            from: 1e7,
                            haircut: portfolio_margin::Haircut::new(0.01)?,
                        },
                    ])?,
                    portfolio_margin::BorrowUplift::MirrorHaircut,
                )?,
            )?,
            coin("BTC")?,
            coin("ETH")?,
        ],
    )?)
}
