//! JSON decoding of `MarketSnapshot` (vol surfaces included): a decoded
//! snapshot round-trips, holds only finite numbers, and every vol lookup is
//! finite and positive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::MarketSnapshot;
use portfolio_margin_fuzz::{check_market, finite, round_trip};

fuzz_target!(|data: &[u8]| {
    let Some(market) = round_trip::<MarketSnapshot>(data) else {
        return;
    };
    check_market(&market);
    for (_, m) in market.underlyings() {
        if let Ok(found) = m.vol().butterfly_violations(|years| m.forward(years)) {
            for v in found {
                finite("butterfly excess", v.excess);
                finite("butterfly strike", v.strike_coordinate);
            }
        }
    }
});
