//! JSON decoding of `StressGrid`: a decoded grid round-trips and holds only
//! finite numbers; a small grid's scenarios are finite too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{StressGrid, UnderlyingId};
use portfolio_margin_fuzz::{check_scenarios, check_stress_grid, round_trip};

fuzz_target!(|data: &[u8]| {
    let Some(grid) = round_trip::<StressGrid>(data) else {
        return;
    };
    check_stress_grid(&grid);
    if grid.spot().points() * grid.vol().points() <= 10_000 {
        let ids = ["BTC", "ETH"].map(|s| UnderlyingId::new(s).expect("valid id"));
        if let Ok(set) = grid.scenarios(&ids) {
            check_scenarios(&set);
        }
    }
});
