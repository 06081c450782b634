//! The Monte Carlo VaR benchmark book, shared by `benches/monte_carlo_var.rs`
//! and `examples/monte_carlo_var.rs` (which measures its peak memory).

use portfolio_margin::*;

const UNDERLYINGS: [(&str, f64, f64); 5] = [
    ("BTC", 100_000.0, 0.55),
    ("ETH", 4_000.0, 0.70),
    ("SOL", 150.0, 0.90),
    ("SPX", 6_000.0, 0.18),
    ("GOLD", 2_600.0, 0.15),
];

/// The benchmark book, its market and its Monte Carlo generator.
pub struct Setup {
    pub instruments: InstrumentSet,
    pub market: MarketSnapshot,
    pub book: Portfolio,
    pub generator: MonteCarloGenerator,
}

/// 100 options (20 per underlying, calls and puts, strikes 80%..118% of spot,
/// 7 to 178 days) on 5 underlyings correlated at 0.5; a 1-day horizon.
pub fn setup(paths: usize) -> Result<Setup> {
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0)?;
    let mut builder = MarketSnapshot::builder(as_of);
    let mut instruments = InstrumentSet::new();
    let mut positions = Vec::new();
    let mut factors = Vec::new();
    for (u, &(name, spot, vol)) in UNDERLYINGS.iter().enumerate() {
        let id = UnderlyingId::new(name)?;
        builder = builder.underlying(
            id.clone(),
            UnderlyingMarket::new(spot, 0.04, 0.0, VolSurface::flat(vol)?)?,
        );
        factors.push(SimulatedFactor::new(
            RiskFactor::Spot(id.clone()),
            ShockKind::Log,
            vol,
        )?);
        for k in 0..20 {
            let kind = if k % 2 == 0 {
                OptionKind::Call
            } else {
                OptionKind::Put
            };
            let strike = spot * (0.8 + 0.02 * k as f64);
            let days = 7.0 + 9.0 * k as f64;
            let expiry = as_of.plus_years(YearFraction::from_days(days, DayBasis::Calendar365)?);
            let key = InstrumentId::new(format!("{name}-{k}"))?;
            instruments.insert(
                key.clone(),
                Instrument::Option(OptionContract::new(id.clone(), kind, strike, expiry)?),
            )?;
            let sign = if (k + u) % 3 == 0 { 1.0 } else { -1.0 };
            positions.push(Position::new(key, sign * 10_000.0 / spot));
        }
    }
    let market = builder.build()?;
    let book = Portfolio::new(AccountId::new("bench"), positions, &instruments)?;
    let n = UNDERLYINGS.len();
    let correlation: Vec<f64> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.5 })
        .collect();
    let generator = MonteCarloGenerator::new(
        MonteCarloConfig::new(
            42,
            paths,
            YearFraction::from_days(1.0, DayBasis::Calendar365)?,
        )?,
        factors,
        &CorrelationMatrix::new(n, correlation)?,
    )?;
    Ok(Setup {
        instruments,
        market,
        book,
        generator,
    })
}
