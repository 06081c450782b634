//! JSON decoding of `InstrumentSet`: a decoded value round-trips and holds only
//! finite numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::InstrumentSet;
use portfolio_margin_fuzz::{check_instruments, round_trip};

fuzz_target!(|data: &[u8]| {
    if let Some(value) = round_trip::<InstrumentSet>(data) {
        check_instruments(&value);
    }
});
