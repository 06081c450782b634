//! Shared by the benchmarks that draw random books (`benches/greeks.rs`,
//! `benches/pnl.rs`, `benches/margin.rs`).

use rand::RngExt;

/// `a` or `b` with equal odds, from one `bool` draw.
pub fn either<T>(rng: &mut impl RngExt, a: T, b: T) -> T {
    if rng.random::<bool>() { a } else { b }
}
