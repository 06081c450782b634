//! Risk-based (Expected Shortfall) margin: hand-computed values for every
//! step (ES, MPOR scaling, each anti-procyclicality tool, the speed limit,
//! the volatility projection), errors, determinism, and proptest properties
//! (monotone in confidence, positively homogeneous in quantities,
//! sub-additive across books).

use portfolio_margin::{
    AccountId, AntiProcyclicality, Confidence, DayBasis, EmirProductClass, Error, EsMargin,
    EsMarginInputs, EsMarginPolicy, GarchParams, HorizonScaling, Instrument, InstrumentId,
    InstrumentSet, LongLookbackFloor, MarketSnapshot, PerpetualContract, Portfolio, Position,
    QuantileRule, RISKMETRICS_DAILY_LAMBDA, Revaluation, RiskArrays, RiskFactor, ScenarioSet,
    ShockKind, SpeedLimit, SpeedLimitScope, Timestamp, UnderlyingId, UnderlyingMarket, VolSurface,
    VolatilityForecast, YearFraction, attribute_risk, es_margin, es_margin_with_positions,
    evaluate_garch, ewma_variance, expected_shortfall, portfolio_es_margin, portfolio_pnl,
    projected_es_margin, value_at_risk,
};
use proptest::prelude::*;

/// Relative tolerance for identities that hold exactly in real arithmetic
/// but are computed with a different order of additions or multiplications
/// (a few ulp of the P&L scale).
const REL: f64 = 1e-12;

fn c(level: f64) -> Confidence {
    Confidence::new(level).unwrap()
}

/// Losses 20, 15, 12, 7, 1, 0, -2, -3, -5, -8 (10 scenarios, shuffled).
const PNL: [f64; 10] = [5.0, -12.0, 3.0, -7.0, 0.0, -20.0, 8.0, -1.0, -15.0, 2.0];

/// No horizon scaling, no APC, 80% (k = 2): margin = ES = (20 + 15) / 2.
fn plain(level: f64) -> EsMarginPolicy {
    EsMarginPolicy::new(c(level), 1)
        .unwrap()
        .with_horizon_scaling(HorizonScaling::ScenariosAtHorizon)
        .with_anti_procyclicality(AntiProcyclicality::none())
}

fn with_apc(apc: AntiProcyclicality) -> EsMarginPolicy {
    plain(0.8).with_anti_procyclicality(apc)
}

fn none() -> EsMarginInputs<'static> {
    EsMarginInputs::new()
}

/// Independent ES: sort the losses, average the `k` largest.
fn independent_empirical_es(pnl: &[f64], k: usize) -> f64 {
    let mut losses: Vec<f64> = pnl.iter().map(|x| -x).collect();
    losses.sort_by(|a, b| b.partial_cmp(a).unwrap());
    losses[..k].iter().sum::<f64>() / k as f64
}

#[test]
fn es_of_a_known_vector() {
    let m = es_margin(&PNL, &none(), &plain(0.8)).unwrap();
    assert_eq!(m.scenarios, 10);
    assert_eq!(m.expected_shortfall, 17.5);
    assert_eq!(m.value_at_risk, 15.0);
    assert_eq!(
        m.expected_shortfall,
        expected_shortfall(&PNL, c(0.8), QuantileRule::Empirical).unwrap()
    );
    assert_eq!(m.expected_shortfall, independent_empirical_es(&PNL, 2));
    assert_eq!(
        m.value_at_risk,
        value_at_risk(&PNL, c(0.8), QuantileRule::Empirical).unwrap()
    );
    assert_eq!(m.horizon_factor, 1.0);
    assert_eq!(m.calculated_margin, 17.5);
    assert_eq!(m.requirement.initial(), 17.5);
    assert_eq!(m.requirement.maintenance(), 17.5); // default fraction 1
    assert!(m.position_contributions.is_empty());
    assert!(m.stressed.is_none() && m.buffer.is_none() && m.floor.is_none());
    assert!(m.speed_limit.is_none());

    // 70%: k = 3, ES = (20 + 15 + 12) / 3.
    let m = es_margin(&PNL, &none(), &plain(0.7)).unwrap();
    assert_eq!(m.expected_shortfall, independent_empirical_es(&PNL, 3));
    assert_eq!(m.value_at_risk, 12.0);

    // Linear rule at 75%: m = 2.5, ES = (20 + 15 + 0.5 x 12) / 2.5 = 16.4;
    // VaR = numpy quantile of the losses at 0.75 = 12 - 5 x 0.25 = 10.75.
    let linear = plain(0.75).with_quantile_rule(QuantileRule::Linear);
    let m = es_margin(&PNL, &none(), &linear).unwrap();
    assert!((m.expected_shortfall - 16.4).abs() <= REL * 16.4);
    assert_eq!(m.value_at_risk, 10.75);

    // Maintenance fraction.
    let m = es_margin(
        &PNL,
        &none(),
        &plain(0.8).with_maintenance_fraction(0.8).unwrap(),
    )
    .unwrap();
    assert_eq!(m.requirement.maintenance(), 14.0);
}

#[test]
fn square_root_of_time_scaling() {
    for (days, factor) in [(1, 1.0), (4, 2.0), (9, 3.0), (16, 4.0)] {
        let policy = EsMarginPolicy::new(c(0.8), days)
            .unwrap()
            .with_anti_procyclicality(AntiProcyclicality::none());
        let m = es_margin(&PNL, &none(), &policy).unwrap();
        assert_eq!(m.horizon_factor, factor);
        assert_eq!(m.expected_shortfall, 17.5, "raw ES is not scaled");
        assert_eq!(m.mpor_expected_shortfall, 17.5 * factor);
        assert_eq!(m.mpor_value_at_risk, 15.0 * factor);
        assert_eq!(m.requirement.initial(), 17.5 * factor);
    }
    // Two days (the EMIR minimum for listed derivatives): x sqrt(2).
    let policy = EsMarginPolicy::default().with_anti_procyclicality(AntiProcyclicality::none());
    let m = es_margin(
        &PNL,
        &none(),
        &policy.with_quantile_rule(QuantileRule::Empirical),
    )
    .unwrap();
    // 99% of 10 scenarios: k = 1, ES = 20.
    assert_eq!(m.mpor_expected_shortfall, 20.0 * 2f64.sqrt());
    // Scenarios already at the MPOR horizon: no scaling.
    let at_horizon = EsMarginPolicy::new(c(0.8), 5)
        .unwrap()
        .with_horizon_scaling(HorizonScaling::ScenariosAtHorizon)
        .with_anti_procyclicality(AntiProcyclicality::none());
    let m = es_margin(&PNL, &none(), &at_horizon).unwrap();
    assert_eq!(m.horizon_factor, 1.0);
    assert_eq!(m.requirement.initial(), 17.5);
}

#[test]
fn buffer_is_exactly_25_percent_and_can_be_released() {
    let policy = with_apc(AntiProcyclicality::none().with_buffer(0.25).unwrap());
    let m = es_margin(&PNL, &none(), &policy).unwrap();
    let b = m.buffer.unwrap();
    assert_eq!((b.fraction, b.released, b.amount), (0.25, 0.0, 4.375));
    assert_eq!(m.requirement.initial(), 21.875);
    assert_eq!(m.requirement.initial(), 1.25 * m.calculated_margin);
    // The default policy's buffer is the same 25%.
    assert_eq!(AntiProcyclicality::default().buffer(), Some(0.25));

    // Half released in stress: 17.5 x 0.25 x 0.5 = 2.1875.
    let half = none().with_buffer_release(0.5).unwrap();
    let m = es_margin(&PNL, &half, &policy).unwrap();
    assert_eq!(m.buffer.unwrap().amount, 2.1875);
    assert_eq!(m.requirement.initial(), 19.6875);
    // Fully exhausted: back to the calculated margin.
    let all = none().with_buffer_release(1.0).unwrap();
    let m = es_margin(&PNL, &all, &policy).unwrap();
    assert_eq!(m.requirement.initial(), 17.5);

    // A larger buffer is allowed, a smaller one is not.
    let big = with_apc(AntiProcyclicality::none().with_buffer(0.5).unwrap());
    assert_eq!(
        es_margin(&PNL, &none(), &big)
            .unwrap()
            .requirement
            .initial(),
        26.25
    );
    for bad in [0.24, 0.0, -0.25, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            AntiProcyclicality::none().with_buffer(bad),
            Err(Error::InvalidInput { .. })
        ));
    }
}

#[test]
fn stressed_weight_blends_per_rts_28_1_b() {
    // Stressed-period losses 40 and 40 in the tail: S = 40.
    let stressed = [-40.0, -40.0, 1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 8.0];
    let inputs = none().with_stressed_pnl(&stressed).unwrap();
    let policy = with_apc(
        AntiProcyclicality::none()
            .with_stressed_weight(0.25)
            .unwrap(),
    );
    let m = es_margin(&PNL, &inputs, &policy).unwrap();
    let s = m.stressed.unwrap();
    assert_eq!(s.stressed_expected_shortfall, 40.0);
    assert_eq!(s.stressed_margin, 40.0);
    assert_eq!(s.weight, 0.25);
    // 0.75 x 17.5 + 0.25 x 40 = 23.125; add-on 0.25 x (40 - 17.5) = 5.625.
    assert_eq!(s.weighted_margin, 23.125);
    assert_eq!(s.add_on, 5.625);
    assert_eq!(m.requirement.initial(), 23.125);

    // Weight 1: the stressed margin alone.
    let all = with_apc(
        AntiProcyclicality::none()
            .with_stressed_weight(1.0)
            .unwrap(),
    );
    assert_eq!(
        es_margin(&PNL, &inputs, &all)
            .unwrap()
            .requirement
            .initial(),
        40.0
    );

    // A calmer "stressed" period (S = 10 < C): the literal average is below
    // C, the margin stays at C.
    let calm = [-10.0, -10.0, 1.0];
    let inputs = none().with_stressed_pnl(&calm).unwrap();
    let m = es_margin(&PNL, &inputs, &policy).unwrap();
    let s = m.stressed.unwrap();
    assert_eq!(s.weighted_margin, 15.625);
    assert_eq!(s.add_on, 0.0);
    assert_eq!(m.requirement.initial(), 17.5);

    // The stressed P&L is required, and validated.
    assert!(matches!(
        es_margin(&PNL, &none(), &policy),
        Err(Error::TooFew { min: 1, got: 0, .. })
    ));
    for bad in [0.2, 1.01, f64::NAN] {
        assert!(
            AntiProcyclicality::none()
                .with_stressed_weight(bad)
                .is_err()
        );
    }
    assert!(matches!(
        none().with_stressed_pnl(&[1.0, f64::NAN]),
        Err(Error::InvalidElement { index: 1, .. })
    ));
}

#[test]
fn long_lookback_floor_binds_or_not() {
    let floor = LongLookbackFloor::new(4).unwrap();
    let policy = with_apc(AntiProcyclicality::none().with_long_lookback_floor(floor));
    // Long-lookback tail losses 30 and 30: F = 30 > C = 17.5.
    let high = [-30.0, -30.0, 1.0, 2.0, 3.0];
    let m = es_margin(
        &PNL,
        &none().with_long_lookback_pnl(&high).unwrap(),
        &policy,
    )
    .unwrap();
    let f = m.floor.unwrap();
    assert_eq!((f.floor, f.add_on), (30.0, 12.5));
    assert!(f.binds());
    assert_eq!(m.requirement.initial(), 30.0);
    // F = 10 < 17.5: no effect.
    let low = [-10.0, -10.0, 1.0, 2.0, 3.0];
    let m = es_margin(&PNL, &none().with_long_lookback_pnl(&low).unwrap(), &policy).unwrap();
    let f = m.floor.unwrap();
    assert_eq!((f.floor, f.add_on), (10.0, 0.0));
    assert!(!f.binds());
    assert_eq!(m.requirement.initial(), 17.5);

    // The floor binds against the buffered margin, not just C.
    let both = with_apc(
        AntiProcyclicality::none()
            .with_buffer(0.25)
            .unwrap()
            .with_long_lookback_floor(floor),
    );
    let m = es_margin(&PNL, &none().with_long_lookback_pnl(&high).unwrap(), &both).unwrap();
    assert_eq!(m.floor.unwrap().add_on, 30.0 - 21.875);
    assert_eq!(m.requirement.initial(), 30.0);

    // Missing or too short.
    assert!(matches!(
        es_margin(&PNL, &none(), &policy),
        Err(Error::TooFew { min: 4, got: 0, .. })
    ));
    let short = [-30.0, 1.0, 2.0];
    assert!(matches!(
        es_margin(
            &PNL,
            &none().with_long_lookback_pnl(&short).unwrap(),
            &policy
        ),
        Err(Error::TooFew { min: 4, got: 3, .. })
    ));
    assert_eq!(
        LongLookbackFloor::ten_years(DayBasis::Trading252).min_scenarios(),
        2520
    );
}

#[test]
fn speed_limit_caps_a_jump_and_never_a_decrease() {
    // Buffered margin 21.875 on C = 17.5; cap +25% a run.
    let apc = |scope| {
        AntiProcyclicality::none()
            .with_buffer(0.25)
            .unwrap()
            .with_speed_limit(SpeedLimit::new(0.25, scope).unwrap())
    };
    let component = with_apc(apc(SpeedLimitScope::AntiProcyclicalComponent));
    let total = with_apc(apc(SpeedLimitScope::Total));
    let prev = |m: f64| none().with_previous_initial_margin(m).unwrap();

    // Previous 16: cap 20 binds on the buffer only.
    let m = es_margin(&PNL, &prev(16.0), &component).unwrap();
    let s = m.speed_limit.unwrap();
    assert_eq!(
        (s.cap, s.reduction, s.under_collateralisation),
        (20.0, 1.875, 0.0)
    );
    assert_eq!(m.margin_before_speed_limit, 21.875);
    assert_eq!(m.requirement.initial(), 20.0);

    // Previous 10: cap 12.5 is below C; the default scope lets C through.
    let m = es_margin(&PNL, &prev(10.0), &component).unwrap();
    let s = m.speed_limit.unwrap();
    assert_eq!(
        (s.cap, s.reduction, s.under_collateralisation),
        (12.5, 4.375, 0.0)
    );
    assert_eq!(m.requirement.initial(), 17.5);

    // Scope Total caps everything and reports the under-collateralisation.
    let m = es_margin(&PNL, &prev(10.0), &total).unwrap();
    let s = m.speed_limit.unwrap();
    assert_eq!(s.scope, SpeedLimitScope::Total);
    assert_eq!((s.reduction, s.under_collateralisation), (9.375, 5.0));
    assert_eq!(m.requirement.initial(), 12.5);

    // A decrease is not limited, under either scope.
    for policy in [component, total] {
        let m = es_margin(&PNL, &prev(1000.0), &policy).unwrap();
        assert_eq!(m.speed_limit.unwrap().reduction, 0.0);
        assert_eq!(m.requirement.initial(), 21.875);
        // No previous margin, or 0 (a new account): no limit.
        for inputs in [none(), prev(0.0)] {
            let m = es_margin(&PNL, &inputs, &policy).unwrap();
            assert!(m.speed_limit.is_none());
            assert_eq!(m.requirement.initial(), 21.875);
        }
    }

    // With the floor in use, the default scope never undercuts it either.
    let long = [-30.0, -30.0, 1.0];
    let floored = with_apc(
        AntiProcyclicality::none()
            .with_stressed_weight(0.5)
            .unwrap()
            .with_long_lookback_floor(LongLookbackFloor::new(1).unwrap())
            .with_speed_limit(
                SpeedLimit::new(0.25, SpeedLimitScope::AntiProcyclicalComponent).unwrap(),
            ),
    );
    let stressed = [-100.0, -100.0];
    let inputs = none()
        .with_stressed_pnl(&stressed)
        .unwrap()
        .with_long_lookback_pnl(&long)
        .unwrap()
        .with_previous_initial_margin(8.0)
        .unwrap();
    let m = es_margin(&PNL, &inputs, &floored).unwrap();
    // 17.5 + 0.5 x (100 - 17.5) = 58.75 before the limit; cap 10; floor 30.
    assert_eq!(m.margin_before_speed_limit, 58.75);
    assert_eq!(m.requirement.initial(), 30.0);

    assert!(SpeedLimit::new(0.0, SpeedLimitScope::Total).is_err());
    assert!(SpeedLimit::new(f64::NAN, SpeedLimitScope::Total).is_err());
    assert!(none().with_previous_initial_margin(-1.0).is_err());
}

#[test]
fn projected_margin_scales_as_the_volatility_ratio() {
    let policy = with_apc(AntiProcyclicality::none().with_buffer(0.25).unwrap());
    // 2% -> 3%: ratio 1.5.
    let p = projected_es_margin(
        &PNL,
        &none(),
        &policy,
        0.02,
        VolatilityForecast::Given(0.03),
    )
    .unwrap();
    assert!((p.volatility_ratio - 1.5).abs() <= REL);
    assert_eq!(p.current.requirement.initial(), 21.875);
    let expected = 21.875 * p.volatility_ratio;
    assert!((p.projected.requirement.initial() - expected).abs() <= REL * expected);
    assert!((p.projected.expected_shortfall - 17.5 * p.volatility_ratio).abs() <= REL * 17.5 * 1.5);
    assert!((p.initial_margin_change - (expected - 21.875)).abs() <= REL * expected);

    // EWMA: flat forecast sqrt(next_variance); constant 1% returns -> 1%.
    let ewma = ewma_variance(&[0.01; 50], RISKMETRICS_DAILY_LAMBDA).unwrap();
    let p = projected_es_margin(
        &PNL,
        &none(),
        &policy,
        0.02,
        VolatilityForecast::Ewma(&ewma),
    )
    .unwrap();
    assert!((p.forecast_volatility - 0.01).abs() <= REL * 0.01);
    assert!((p.projected.requirement.initial() - 0.5 * 21.875).abs() <= REL * 21.875);
    assert!(p.initial_margin_change < 0.0);

    // GARCH: mean variance forecast over the MPOR (5 days), from a low
    // current variance towards the long-run one, so margin rises.
    let returns: Vec<f64> = (0..80)
        .map(|t| if t % 2 == 0 { 0.002 } else { -0.002 })
        .collect();
    let params = GarchParams::new(1e-5, 0.1, 0.85).unwrap(); // long-run vol 1.41%
    let garch = evaluate_garch(&returns, params).unwrap();
    let five_days = policy_with_mpor(5);
    let now = garch.next_variance.sqrt();
    let p = projected_es_margin(
        &PNL,
        &none(),
        &five_days,
        now,
        VolatilityForecast::Garch(&garch),
    )
    .unwrap();
    let expected_vol = garch.average_forecast_variance(5).unwrap().sqrt();
    assert_eq!(p.forecast_volatility, expected_vol);
    assert!(p.volatility_ratio > 1.0);
    let ratio = expected_vol / now;
    let current = p.current.requirement.initial();
    assert!((p.projected.requirement.initial() - ratio * current).abs() <= REL * ratio * current);

    // Bad current volatility.
    for bad in [0.0, -0.01, f64::NAN] {
        assert!(matches!(
            projected_es_margin(&PNL, &none(), &policy, bad, VolatilityForecast::Given(0.01)),
            Err(Error::InvalidInput { .. })
        ));
    }
}

fn policy_with_mpor(days: u32) -> EsMarginPolicy {
    EsMarginPolicy::new(c(0.8), days)
        .unwrap()
        .with_anti_procyclicality(AntiProcyclicality::none())
}

#[test]
fn books_with_only_gains_need_no_margin() {
    let gains = [1.0, 2.0, 3.0, 4.0, 5.0];
    for policy in [plain(0.8), EsMarginPolicy::default()] {
        let m = es_margin(&gains, &none(), &policy).unwrap();
        assert!(m.expected_shortfall < 0.0, "ES of gains is negative");
        assert_eq!(m.calculated_margin, 0.0);
        assert_eq!(m.requirement.initial(), 0.0);
        assert_eq!(m.requirement.maintenance(), 0.0);
        assert!(m.requirement.initial().is_finite());
    }
    // Contributions still allocate the (negative) ES.
    let a = [1.0, 2.0, 3.0];
    let b = [0.5, 0.5, 0.5];
    let m = es_margin_with_positions(&[&a, &b], &none(), &plain(0.5)).unwrap();
    let sum: f64 = m.position_contributions.iter().sum();
    assert_eq!(sum, m.mpor_expected_shortfall);
    assert_eq!(m.requirement.initial(), 0.0);
}

#[test]
fn errors() {
    let policy = EsMarginPolicy::default();
    assert!(matches!(
        es_margin(&[], &none(), &policy),
        Err(Error::TooFew { min: 1, got: 0, .. })
    ));
    assert!(matches!(
        es_margin(&[1.0, f64::NAN], &none(), &policy),
        Err(Error::InvalidElement { index: 1, .. })
    ));
    assert!(matches!(
        es_margin(&[f64::INFINITY], &none(), &policy),
        Err(Error::InvalidElement { index: 0, .. })
    ));
    for bad in [0.0, 1.0, 99.0, -0.5, f64::NAN] {
        assert!(matches!(
            Confidence::new(bad),
            Err(Error::InvalidInput {
                what: "confidence",
                ..
            })
        ));
    }
    assert!(EsMarginPolicy::new(c(0.99), 0).is_err());
    assert!(matches!(
        es_margin_with_positions(&[], &none(), &policy),
        Err(Error::TooFew { .. })
    ));
    assert!(matches!(
        es_margin_with_positions(&[&[1.0, 2.0][..], &[1.0][..]], &none(), &policy),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        es_margin_with_positions(&[&[1.0, 2.0][..], &[1.0, f64::NAN][..]], &none(), &policy),
        Err(Error::InvalidElement { index: 3, .. })
    ));
    // Overflow is an error, not an infinite margin.
    assert!(matches!(
        es_margin(&[-f64::MAX, -f64::MAX], &none(), &EsMarginPolicy::default()),
        Err(Error::NonFiniteResult { .. })
    ));
    // EMIR checks.
    let weak = EsMarginPolicy::new(c(0.975), 2).unwrap();
    assert!(
        weak.check_emir_minimums(EmirProductClass::ExchangeTraded)
            .is_err()
    );
}

#[test]
fn euler_contributions_sum_to_the_es() {
    let rows: Vec<Vec<f64>> = (0..4)
        .map(|i| {
            (0..250)
                .map(|s| (((s * 37 + i * 11) % 97) as f64 - 48.0) * (1.0 + 0.25 * i as f64))
                .collect()
        })
        .collect();
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
        let policy = EsMarginPolicy::new(c(0.975), 4)
            .unwrap()
            .with_quantile_rule(rule);
        let m = es_margin_with_positions(&refs, &none(), &policy).unwrap();
        assert_eq!(m.horizon_factor, 2.0);
        assert_eq!(m.position_contributions.len(), 4);
        let sum: f64 = m.position_contributions.iter().sum();
        assert!(
            (sum - m.mpor_expected_shortfall).abs() <= REL * m.mpor_expected_shortfall.abs(),
            "{rule:?}: {sum} vs {}",
            m.mpor_expected_shortfall
        );
        if rule == QuantileRule::Empirical {
            let attribution = attribute_risk(&refs, c(0.975)).unwrap();
            for (got, p) in m.position_contributions.iter().zip(&attribution.positions) {
                assert_eq!(*got, 2.0 * p.component_es);
            }
            assert_eq!(m.expected_shortfall, attribution.total.expected_shortfall);
        }
        // Same figures as es_margin on the summed P&L.
        let book: Vec<f64> = (0..250)
            .map(|s| rows.iter().fold(0.0, |a, r| a + r[s]))
            .collect();
        let plain = es_margin(&book, &none(), &policy).unwrap();
        assert_eq!(plain.requirement, m.requirement);
        assert_eq!(plain.expected_shortfall, m.expected_shortfall);
    }
}

fn perpetual_book() -> (Portfolio, RiskArrays) {
    let btc = UnderlyingId::new("BTC").unwrap();
    let eth = UnderlyingId::new("ETH").unwrap();
    let market = MarketSnapshot::builder(Timestamp::from_ymd_hms(2026, 11, 25, 8, 0, 0).unwrap())
        .underlying(
            btc.clone(),
            UnderlyingMarket::new(100_000.0, 0.0, 0.0, VolSurface::flat(0.5).unwrap()).unwrap(),
        )
        .underlying(
            eth.clone(),
            UnderlyingMarket::new(4_000.0, 0.0, 0.0, VolSurface::flat(0.7).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let mut sizes = Vec::new();
    for s in 0..200 {
        let x = f64::from(s);
        sizes.push(0.08 * (x * 0.37).sin());
        sizes.push(0.1 * (x * 0.11 + 1.0).cos());
    }
    let scenarios = ScenarioSet::new(
        vec![
            (RiskFactor::Spot(btc.clone()), ShockKind::Log),
            (RiskFactor::Spot(eth.clone()), ShockKind::Log),
        ],
        sizes,
        YearFraction::ZERO,
    )
    .unwrap();
    let mut set = InstrumentSet::new();
    let btc_perp = InstrumentId::new("BTC-PERP").unwrap();
    let eth_perp = InstrumentId::new("ETH-PERP").unwrap();
    set.insert(
        btc_perp.clone(),
        Instrument::Perpetual(PerpetualContract::new(btc)),
    )
    .unwrap();
    set.insert(
        eth_perp.clone(),
        Instrument::Perpetual(PerpetualContract::new(eth)),
    )
    .unwrap();
    let arrays = RiskArrays::compute(&set, &market, &scenarios, Revaluation::Full).unwrap();
    let book = Portfolio::new(
        AccountId::new("a"),
        vec![Position::new(btc_perp, 1.5), Position::new(eth_perp, -20.0)],
        &set,
    )
    .unwrap();
    (book, arrays)
}

fn bits(m: &EsMargin) -> Vec<u64> {
    let mut v = vec![
        m.value_at_risk.to_bits(),
        m.expected_shortfall.to_bits(),
        m.mpor_expected_shortfall.to_bits(),
        m.calculated_margin.to_bits(),
        m.margin_before_speed_limit.to_bits(),
        m.requirement.initial().to_bits(),
        m.requirement.maintenance().to_bits(),
    ];
    v.extend(m.position_contributions.iter().map(|x| x.to_bits()));
    v
}

#[test]
fn portfolio_path_and_determinism() {
    let (book, arrays) = perpetual_book();
    let policy = EsMarginPolicy::default();
    let a = portfolio_es_margin(&book, &arrays, &none(), &policy).unwrap();
    let b = portfolio_es_margin(&book, &arrays, &none(), &policy).unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(a, b);
    // Same bits as es_margin on portfolio_pnl.
    let pnl = portfolio_pnl(&book, &arrays).unwrap();
    let plain = es_margin(&pnl, &none(), &policy).unwrap();
    assert_eq!(
        plain.expected_shortfall.to_bits(),
        a.expected_shortfall.to_bits()
    );
    assert_eq!(plain.requirement, a.requirement);
    assert!(a.requirement.initial() > 0.0);
    let sum: f64 = a.position_contributions.iter().sum();
    assert!((sum - a.mpor_expected_shortfall).abs() <= REL * a.mpor_expected_shortfall);
    // Projection and positions paths are deterministic too.
    let p1 = projected_es_margin(
        &pnl,
        &none(),
        &policy,
        0.02,
        VolatilityForecast::Given(0.025),
    )
    .unwrap();
    let p2 = projected_es_margin(
        &pnl,
        &none(),
        &policy,
        0.02,
        VolatilityForecast::Given(0.025),
    )
    .unwrap();
    assert_eq!(bits(&p1.projected), bits(&p2.projected));
}

// ---------------------------------------------------------------------------
// Properties.

fn config() -> ProptestConfig {
    // A fixed seed keeps CI deterministic; set PROPTEST_RNG_SEED to explore.
    let mut config = ProptestConfig::with_cases(512);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0xE5);
    }
    config.failure_persistence = None;
    config
}

/// Two unit P&L rows (two instruments) over the same 20..200 scenarios.
fn unit_rows() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (20usize..200).prop_flat_map(|n| {
        (
            prop::collection::vec(-1_000.0f64..1_000.0, n),
            prop::collection::vec(-1_000.0f64..1_000.0, n),
        )
    })
}

/// Every Art. 28 tool, no speed limit.
fn full_policy(level: f64, rule: QuantileRule) -> EsMarginPolicy {
    EsMarginPolicy::new(c(level), 2)
        .unwrap()
        .with_quantile_rule(rule)
        .with_anti_procyclicality(
            AntiProcyclicality::none()
                .with_buffer(0.25)
                .unwrap()
                .with_stressed_weight(0.25)
                .unwrap()
                .with_long_lookback_floor(LongLookbackFloor::new(1).unwrap()),
        )
}

fn margin(pnl: &[f64], stressed: &[f64], long: &[f64], policy: &EsMarginPolicy) -> f64 {
    let inputs = EsMarginInputs::new()
        .with_stressed_pnl(stressed)
        .unwrap()
        .with_long_lookback_pnl(long)
        .unwrap();
    let m = es_margin(pnl, &inputs, policy).unwrap();
    assert!(m.requirement.initial().is_finite() && m.requirement.initial() >= 0.0);
    m.requirement.initial()
}

/// Stressed and long-lookback vectors derived from a book's P&L: the same
/// positions over other scenarios (here: the scenarios reversed and
/// doubled, and shifted).
fn derived(pnl: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let stressed = pnl.iter().rev().map(|x| 2.0 * x).collect();
    let long = pnl.iter().skip(3).copied().collect::<Vec<f64>>();
    (stressed, if long.is_empty() { pnl.to_vec() } else { long })
}

fn scale_of(pnl: &[f64]) -> f64 {
    pnl.iter().fold(1.0, |a, x| a.max(x.abs()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn margin_is_monotone_in_confidence(
        (a, _) in unit_rows(),
        lo in 0.5f64..0.99,
        step in 0.0f64..0.0099,
    ) {
        let hi = lo + step;
        let (stressed, long) = derived(&a);
        let tol = REL * scale_of(&a) * 4.0;
        for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
            let m_lo = margin(&a, &stressed, &long, &full_policy(lo, rule));
            let m_hi = margin(&a, &stressed, &long, &full_policy(hi, rule));
            prop_assert!(m_lo <= m_hi + tol, "{rule:?} {lo} -> {hi}: {m_lo} > {m_hi}");
        }
    }

    #[test]
    fn margin_scales_with_quantities(
        (u1, u2) in unit_rows(),
        q1 in -50.0f64..50.0,
        q2 in -50.0f64..50.0,
        k in 0.01f64..100.0,
        power in -20i32..20,
        level in 0.8f64..0.995,
    ) {
        let rows = |s: f64| -> (Vec<f64>, Vec<f64>) {
            (u1.iter().map(|u| s * q1 * u).collect(), u2.iter().map(|u| s * q2 * u).collect())
        };
        let policy = full_policy(level, QuantileRule::Empirical);
        let with_positions = |a: &[f64], b: &[f64]| {
            let book: Vec<f64> = a.iter().zip(b).map(|(x, y)| x + y).collect();
            let (stressed, long) = derived(&book);
            let inputs = EsMarginInputs::new()
                .with_stressed_pnl(&stressed).unwrap()
                .with_long_lookback_pnl(&long).unwrap();
            es_margin_with_positions(&[a, b], &inputs, &policy).unwrap()
        };
        let (a1, b1) = rows(1.0);
        let base = with_positions(&a1, &b1);
        // Any k: equal up to rounding of the products.
        let (ak, bk) = rows(k);
        let scaled = with_positions(&ak, &bk);
        let tol = REL * k * (scale_of(&a1) + scale_of(&b1)) * 4.0;
        let want = k * base.requirement.initial();
        prop_assert!((scaled.requirement.initial() - want).abs() <= tol,
            "k = {k}: {} vs {want}", scaled.requirement.initial());
        for (got, c1) in scaled.position_contributions.iter().zip(&base.position_contributions) {
            prop_assert!((got - k * c1).abs() <= tol);
        }
        // Powers of two scale every figure exactly.
        let two = 2f64.powi(power);
        let a2: Vec<f64> = a1.iter().map(|x| two * x).collect();
        let b2: Vec<f64> = b1.iter().map(|x| two * x).collect();
        let exact = with_positions(&a2, &b2);
        prop_assert_eq!(exact.requirement.initial(), two * base.requirement.initial());
        prop_assert_eq!(exact.mpor_expected_shortfall, two * base.mpor_expected_shortfall);
    }

    #[test]
    fn margin_is_subadditive_across_books(
        (a, b) in unit_rows(),
        level in 0.8f64..0.995,
    ) {
        let ab: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let (sa, la) = derived(&a);
        let (sb, lb) = derived(&b);
        // The combined book over the other scenario sets is the sum too.
        let sab: Vec<f64> = sa.iter().zip(&sb).map(|(x, y)| x + y).collect();
        let lab: Vec<f64> = la.iter().zip(&lb).map(|(x, y)| x + y).collect();
        let tol = REL * (scale_of(&a) + scale_of(&b)) * 4.0;
        for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
            let policy = full_policy(level, rule);
            let together = margin(&ab, &sab, &lab, &policy);
            let apart = margin(&a, &sa, &la, &policy) + margin(&b, &sb, &lb, &policy);
            prop_assert!(together <= apart + tol, "{rule:?}: {together} > {apart}");
        }
    }
}
