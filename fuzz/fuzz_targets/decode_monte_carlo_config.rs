//! JSON decoding of `MonteCarloConfig`: a decoded config round-trips and
//! holds only finite numbers; a small config generates finite scenarios.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portfolio_margin::{
    CorrelationMatrix, MonteCarloConfig, MonteCarloGenerator, RiskFactor, ShockKind,
    SimulatedFactor, UnderlyingId,
};
use portfolio_margin_fuzz::{check_monte_carlo_config, check_scenarios, round_trip};

fuzz_target!(|data: &[u8]| {
    let Some(config) = round_trip::<MonteCarloConfig>(data) else {
        return;
    };
    check_monte_carlo_config(&config);
    if config.paths() <= 2_000 {
        let btc = UnderlyingId::new("BTC").expect("valid id");
        let factors = vec![
            SimulatedFactor::new(RiskFactor::Spot(btc.clone()), ShockKind::Log, 0.8)
                .expect("valid factor"),
            SimulatedFactor::new(RiskFactor::Vol(btc), ShockKind::Log, 1.5).expect("valid factor"),
        ];
        let correlation =
            CorrelationMatrix::new(2, vec![1.0, -0.5, -0.5, 1.0]).expect("valid correlation");
        if let Ok(generator) = MonteCarloGenerator::new(config, factors, &correlation)
            && let Ok(set) = generator.generate()
        {
            check_scenarios(&set);
        }
    }
});
