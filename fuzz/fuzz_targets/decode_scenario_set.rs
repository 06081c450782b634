//! JSON decoding of `ScenarioSet`: a decoded set round-trips and holds only
//! finite numbers; applying its first scenarios to a market gives a finite
//! market or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    MarketSnapshot, ScenarioSet, StrikeAxis, Timestamp, UnderlyingId, UnderlyingMarket, VolSurface,
};
use portfolio_margin_fuzz::{check_market, check_scenarios, round_trip};

fn market() -> MarketSnapshot {
    let as_of = Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).expect("valid date");
    let smile = VolSurface::grid(
        vec![0.1, 0.5],
        StrikeAxis::LogMoneyness,
        vec![-0.2, 0.0, 0.2],
        vec![0.62, 0.55, 0.60, 0.58, 0.52, 0.56],
    )
    .expect("valid surface");
    MarketSnapshot::builder(as_of)
        .underlying(
            UnderlyingId::new("BTC").expect("valid id"),
            UnderlyingMarket::new(95_000.0, 0.04, 0.01, smile).expect("valid market"),
        )
        .underlying(
            UnderlyingId::new("ETH").expect("valid id"),
            UnderlyingMarket::new(3_400.0, 0.04, 0.0, VolSurface::flat(0.7).expect("valid"))
                .expect("valid market"),
        )
        .build()
        .expect("valid snapshot")
}

fuzz_target!(|data: &[u8]| {
    let Some(set) = round_trip::<ScenarioSet>(data) else {
        return;
    };
    check_scenarios(&set);
    let market = market();
    for i in 0..set.len().min(8) {
        if let Ok(shocked) = set.apply(i, &market) {
            check_market(&shocked);
        }
    }
});
