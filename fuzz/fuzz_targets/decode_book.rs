//! JSON decoding of a `Portfolio` in the examples' book format: a decoded
//! book round-trips and holds only finite numbers; a valid portfolio's
//! Greeks and the collateral valuation are finite or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{Portfolio, portfolio_greeks, value_collateral};
use portfolio_margin_fuzz::{
    Book, check_collateral, check_instruments, check_market, check_portfolio_greeks, finite,
    round_trip,
};

fuzz_target!(|data: &[u8]| {
    let Some(book) = round_trip::<Book>(data) else {
        return;
    };
    check_market(&book.market);
    check_instruments(&book.instruments);
    if let (Some(balances), Some(policy)) = (&book.balances, &book.collateral)
        && let Ok(valuation) = value_collateral(balances, &book.market, policy)
    {
        check_collateral(&valuation);
    }
    let Ok(portfolio) = Portfolio::new(book.account, book.positions, &book.instruments) else {
        return;
    };
    for p in portfolio.positions() {
        finite("quantity", p.quantity);
    }
    if let Ok(greeks) = portfolio_greeks(&portfolio, &book.instruments, &book.market) {
        check_portfolio_greeks(&greeks);
    }
});
