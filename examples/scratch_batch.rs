use portfolio_margin::{BsInputs, GreeksBatch, OptionBatch, OptionKind, OptionModel};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut batch = OptionBatch::with_capacity(n);
    let mut fix = 0;
    for _ in 0..n {
        let kind = if rng.random::<bool>() {
            OptionKind::Call
        } else {
            OptionKind::Put
        };
        let model = if rng.random::<bool>() {
            OptionModel::BlackScholesMerton
        } else {
            OptionModel::Black76
        };
        let strike = 100.0 * rng.random_range(-0.5..0.5f64).exp();
        let years = rng.random_range(1.0 / 365.0..2.0);
        let vol = rng.random_range(0.1..1.2);
        let i = BsInputs::new(
            kind,
            model,
            100.0,
            strike,
            years,
            vol,
            rng.random_range(0.0..0.08),
            rng.random_range(0.0..0.04),
        )
        .unwrap();
        batch.push(&i);
    }
    let mut out = GreeksBatch::default();
    let t = std::time::Instant::now();
    for _ in 0..5 {
        batch.greeks(&mut out).unwrap();
    }
    println!(
        "{:.1} ns/option",
        t.elapsed().as_nanos() as f64 / 5.0 / n as f64
    );
    let _ = &mut fix;
}
