//! Shared by the examples: the versioned JSON documents of `examples/data/`
//! (the serde form of the crate's types inside a `format_version`
//! envelope; see `docs/json_format.md`).

use portfolio_margin::{
    AssetId, AssetKind, Balance, CollateralAsset, CollateralPolicy, CrossPolicy, DayBasis,
    EsMarginPolicy, GridAxis, GridPolicy, GridScope, HaircutPolicy, HealthBands, HistoricalConfig,
    InstrumentSet, IsolatedPolicy, LiquidationPolicy, LiquidityTier, LiquidityTiers,
    MarketSnapshot, MonteCarloConfig, Portfolio, PriceSource, ReturnKind, RiskFactor, ShockKind,
    SimulatedFactor, StressGrid, UnderlyingId, VolatilityHaircut, VolatilitySource, YearFraction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod book_file;
pub use book_file::BookFile;

/// The embedded sample book.
const SAMPLE: &str = include_str!("../data/sample_book.json");

/// The data format version these examples write. One number for every
/// document: 1 was the first book format; 2 added `balances` and
/// `collateral` to the book and introduced the other documents.
pub const FORMAT_VERSION: u32 = 2;

/// A top-level JSON document: an object with `format_version` beside its
/// payload.
pub trait Document: Serialize + DeserializeOwned {
    /// What the document holds, for error messages (`"grid_policy"`).
    const KIND: &'static str;
    /// The `format_version`s this code reads.
    const VERSIONS: &'static [u32] = &[FORMAT_VERSION];
}

/// The header every document starts with; other fields are skipped here.
#[derive(Deserialize)]
struct Header {
    format_version: u32,
}

/// Decodes a document: checks `format_version` first (so a file of
/// another version gets a version error, not a field error), then decodes
/// the whole document, rejecting unknown fields.
///
/// # Errors
/// A message naming the unsupported version, or serde_json's error
/// (which names the field and the reason, with line and column).
pub fn read_document<D: Document>(text: &str) -> Result<D, Box<dyn std::error::Error>> {
    let header: Header = serde_json::from_str(text).map_err(|e| with_line(text, e))?;
    if !D::VERSIONS.contains(&header.format_version) {
        return Err(format!(
            "{} document: format_version {} is not supported (this reader reads {})",
            D::KIND,
            header.format_version,
            D::VERSIONS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
        )
        .into());
    }
    serde_json::from_str(text).map_err(|e| with_line(text, e).into())
}

/// serde_json's message, followed by the line it points at when that line
/// holds a field (`"spot": NaN,`): a syntax error or a value of the wrong
/// type is then shown with its field's name. (A value rejected by a type's
/// validation is reported at the end of its object, and the message names
/// the field itself.)
fn with_line(text: &str, error: serde_json::Error) -> String {
    let line = error
        .line()
        .checked_sub(1)
        .and_then(|k| text.lines().nth(k))
        .map(str::trim)
        .filter(|l| l.starts_with('"') && l.contains("\":"));
    match line {
        Some(line) if line.chars().count() <= 80 => format!("{error}: {line}"),
        Some(line) => format!("{error}: {}...", line.chars().take(77).collect::<String>()),
        None => error.to_string(),
    }
}

/// [`read_document`] on the file at `path`; errors start with the path.
// Not every example reads documents other than the book.
#[allow(dead_code)]
pub fn load_document<D: Document>(path: &str) -> Result<D, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    read_document(&text).map_err(|e| format!("{path}: {e}").into())
}

/// The document as written: pretty-printed (fields in declaration order,
/// one per line; arrays of numbers or strings on one line), with a final
/// newline.
// Only the sample generator writes documents.
#[allow(dead_code)]
pub fn write_document<D: Document>(document: &D) -> Result<String, serde_json::Error> {
    to_pretty_json(document)
}

/// `value` as [`write_document`] writes documents.
#[allow(dead_code)]
pub fn to_pretty_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let pretty = serde_json::to_string_pretty(value)?;
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = String::with_capacity(pretty.len());
    let mut k = 0;
    while let Some(line) = lines.get(k) {
        // `"key": [` followed by scalar lines and the closing `]`.
        let scalars: Vec<&str> = lines[k + 1..]
            .iter()
            .map(|l| l.trim())
            .take_while(|l| !l.starts_with(']') && is_scalar(l.trim_end_matches(',')))
            .collect();
        let closing = lines.get(k + 1 + scalars.len()).map(|l| l.trim());
        match closing {
            Some(close) if line.ends_with('[') && close.starts_with(']') && !scalars.is_empty() => {
                out.push_str(line);
                out.push_str(&scalars.join(" "));
                out.push_str(close);
                k += scalars.len() + 2;
            }
            _ => {
                out.push_str(line);
                k += 1;
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// Whether `text` is one JSON number, string, boolean or null.
fn is_scalar(text: &str) -> bool {
    matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Number(_)
            | serde_json::Value::String(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null)
    )
}

/// Documents holding one value of a crate type under a key named after
/// it: `{"format_version": 2, "grid_policy": { ... }}`.
macro_rules! documents {
    ($($(#[$doc:meta])* $name:ident { $key:ident: $ty:ty })*) => {$(
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        // Each example uses the documents it needs.
        #[allow(dead_code)]
        pub struct $name {
            /// The data format version, [`FORMAT_VERSION`].
            pub format_version: u32,
            /// The payload: the crate type's serde form.
            pub $key: $ty,
        }

        #[allow(dead_code)]
        impl $name {
            /// The document of `value` at [`FORMAT_VERSION`].
            pub fn new($key: $ty) -> Self {
                $name { format_version: FORMAT_VERSION, $key }
            }
        }

        impl Document for $name {
            const KIND: &'static str = stringify!($key);
        }
    )*};
}

documents! {
    /// `market.json`: one market snapshot.
    MarketFile { market: MarketSnapshot }
    /// `instruments.json`: listed instruments.
    InstrumentsFile { instruments: InstrumentSet }
    /// `balances.json`: an account's collateral balances.
    BalancesFile { balances: Vec<Balance> }
    /// `collateral_policy.json`: eligible collateral and haircuts.
    CollateralPolicyFile { collateral_policy: CollateralPolicy }
    /// `grid_policy_*.json`: a scenario-grid margin policy.
    GridPolicyFile { grid_policy: GridPolicy }
    /// `isolated_policy.json`: per-position margin rules.
    IsolatedPolicyFile { isolated_policy: IsolatedPolicy }
    /// `cross_policy.json`: netting per underlying and spread credits.
    CrossPolicyFile { cross_policy: CrossPolicy }
    /// `es_margin_policy.json`: Expected Shortfall margin.
    EsMarginPolicyFile { es_margin_policy: EsMarginPolicy }
    /// `health_bands.json`: health-factor thresholds.
    HealthBandsFile { health_bands: HealthBands }
    /// `liquidation_policy.json`: how a liquidation plan reduces a book.
    LiquidationPolicyFile { liquidation_policy: LiquidationPolicy }
    /// `monte_carlo_config.json`: seed, paths, horizon, distribution.
    MonteCarloConfigFile { monte_carlo_config: MonteCarloConfig }
    /// `historical_config.json`: return windows, lookback and filter.
    HistoricalConfigFile { historical_config: HistoricalConfig }
    /// `stress_grid.json`: a spot x vol stress grid.
    StressGridFile { stress_grid: StressGrid }
}

impl Document for BookFile {
    const KIND: &'static str = "book";
    const VERSIONS: &'static [u32] = &[1, FORMAT_VERSION];
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

/// The embedded sample book as its document.
// Only the sample generator needs the document itself.
#[allow(dead_code)]
pub fn sample_book_file() -> Result<BookFile, Box<dyn std::error::Error>> {
    read_document(SAMPLE)
}

/// Reads the book at `path`, or the embedded sample book if `None`.
#[allow(dead_code)]
pub fn load_book(path: Option<&str>) -> Result<Book, Box<dyn std::error::Error>> {
    let file: BookFile = match path {
        Some(path) => load_document(path)?,
        None => read_document(SAMPLE)?,
    };
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

/// The main example's stress grid: every underlying together, spot
/// -30%..+30% in 13 steps x implied vol -40%..+40% (relative) in 5 steps,
/// over one calendar day.
#[allow(dead_code)]
pub fn report_stress_grid() -> Result<StressGrid, portfolio_margin::Error> {
    Ok(StressGrid::new(
        GridAxis::new(ShockKind::Relative, 0.30, 13)?,
        GridAxis::new(ShockKind::Relative, 0.40, 5)?,
        GridScope::AllTogether,
        one_day()?,
    ))
}

/// The main example's Monte Carlo settings: 50,000 normal 1-day paths
/// from a fixed seed.
#[allow(dead_code)]
pub fn report_monte_carlo_config() -> Result<MonteCarloConfig, portfolio_margin::Error> {
    MonteCarloConfig::new(20_261_125, 50_000, one_day()?)
}

/// The main example's historical settings: 1-observation log returns,
/// each scenario one calendar day long, every window, no filter.
#[allow(dead_code)]
pub fn report_historical_config() -> Result<HistoricalConfig, portfolio_margin::Error> {
    HistoricalConfig::new(1, ReturnKind::Log, one_day()?)
}

/// An underlying's 30-day at-the-money implied vol.
#[allow(dead_code)]
pub fn atm_vol_30_days(
    market: &MarketSnapshot,
    underlying: &UnderlyingId,
) -> Result<f64, portfolio_margin::Error> {
    let month = 30.0 / 365.0;
    let m = market.underlying(underlying)?;
    Ok(m.vol().atm_volatility(month, m.forward(month)))
}

/// Log spot moves of each underlying, at its 30-day at-the-money implied
/// vol ([`atm_vol_30_days`]).
#[allow(dead_code)]
pub fn atm_spot_factors(
    market: &MarketSnapshot,
    underlyings: &[UnderlyingId],
) -> Result<Vec<SimulatedFactor>, portfolio_margin::Error> {
    underlyings
        .iter()
        .map(|u| {
            SimulatedFactor::new(
                RiskFactor::Spot(u.clone()),
                ShockKind::Log,
                atm_vol_30_days(market, u)?,
            )
        })
        .collect()
}

/// One calendar day.
#[allow(dead_code)]
fn one_day() -> Result<YearFraction, portfolio_margin::Error> {
    YearFraction::from_days(1.0, DayBasis::Calendar365)
}
