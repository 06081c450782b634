//! JSON decoding of `HistoricalConfig`: a decoded config round-trips and
//! holds only finite numbers; scenarios from a short history are finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    HistoricalConfig, PriceHistory, RiskFactor, UnderlyingId, historical_scenarios,
};
use portfolio_margin_fuzz::{check_historical_config, check_scenarios, round_trip};

fuzz_target!(|data: &[u8]| {
    let Some(config) = round_trip::<HistoricalConfig>(data) else {
        return;
    };
    check_historical_config(&config);
    let spx = UnderlyingId::new("SPX").expect("valid id");
    let histories = [
        PriceHistory::new(
            RiskFactor::Spot(spx.clone()),
            vec![
                100.0, 101.0, 99.0, 99.0, 104.0, 80.0, 81.0, 120.0, 119.5, 119.5,
            ],
        )
        .expect("valid history"),
        PriceHistory::new(
            RiskFactor::Vol(spx),
            vec![0.2, 0.21, 0.25, 0.25, 0.19, 0.6, 0.55, 0.2, 0.2, 0.2],
        )
        .expect("valid history"),
    ];
    if let Ok(set) = historical_scenarios(&histories, None, &config) {
        check_scenarios(&set);
    }
});
