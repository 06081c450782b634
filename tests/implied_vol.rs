//! `implied_volatility` and `black_price` against independent references
//! (mpmath at 60-100 digits and QuantLib; `scripts/gen_ivol_vectors.py`),
//! the no-arbitrage bounds, and round-trip properties over the whole domain.

use portfolio_margin::math::{norm_cdf, norm_pdf};
use portfolio_margin::{Error, OptionKind, black_price, implied_volatility};
use proptest::prelude::*;

const REFERENCE: &str = include_str!("data/implied_vol_reference.json");
const EPS: f64 = f64::EPSILON;

/// Implied vol vs the exact (mpmath) implied vol of the same f64 price:
/// relative error <= this many EPSILON times max(1, price / (s dprice/ds)),
/// the conditioning of vol on the price.
const IVOL_EPS_PER_CONDITION: f64 = 8.0;
/// The brief's target for well-conditioned cases (inverse elasticity <= 1:
/// not near intrinsic, not near the upper bound): relative error.
const IVOL_WELL_CONDITIONED_REL: f64 = 1e-14;
/// `black_price` vs mpmath: relative error <= this many EPSILON times
/// `1 + h^2`, `h = ln(F/K)/s` (the price's sensitivity to the last bit of
/// ln(F/K)).
const PRICE_EPS_PER_H2: f64 = 6.0;
/// `black_price` vs QuantLib's `blackFormula`, which evaluates
/// F N(d1) - K N(d2) as written, with its own normal CDF: its error (up to
/// 5e-12 measured against mpmath) is relative to the terms it subtracts, so
/// this tolerance is relative to F N(d1) + K N(d2).
const QUANTLIB_PRICE_REL_TERMS: f64 = 2e-11;
/// Our implied std dev of QuantLib's price vs `blackFormulaImpliedStdDev`
/// (QuantLib's Newton to 1e-14 on its own formula), relative; the gap is
/// QuantLib's price error divided by vega.
const QUANTLIB_STD_DEV_REL: f64 = 1e-10;

struct Case<'a>(&'a serde_json::Value);

impl Case<'_> {
    fn num(&self, key: &str) -> f64 {
        self.0[key]
            .as_str()
            .unwrap_or_else(|| panic!("missing {key}"))
            .parse()
            .unwrap()
    }
    fn kind(&self) -> OptionKind {
        match self.0["kind"].as_str().unwrap() {
            "call" => OptionKind::Call,
            "put" => OptionKind::Put,
            other => panic!("bad kind {other}"),
        }
    }
}

fn reference(section: &str) -> Vec<serde_json::Value> {
    let data: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    data[section].as_array().unwrap().clone()
}

#[test]
fn implied_vol_matches_mpmath_reference() {
    let cases = reference("implied_vol_cases");
    assert!(cases.len() > 300);
    let (mut worst_scaled, mut worst_well) = (0.0_f64, 0.0_f64);
    let mut well_conditioned = 0;
    for c in &cases {
        let c = Case(c);
        let (forward, strike, years) = (c.num("forward"), c.num("strike"), c.num("years"));
        let price = c.num("price");
        let expected = c.num("vol_of_price");
        let condition = c.num("inverse_elasticity").max(1.0);
        let got = implied_volatility(price, forward, strike, years, c.kind()).unwrap_or_else(|e| {
            panic!(
                "F={forward} K={strike} T={years} price={price} {:?}: {e}",
                c.kind()
            )
        });
        let rel = (got - expected).abs() / expected;
        worst_scaled = worst_scaled.max(rel / (EPS * condition));
        assert!(
            rel <= IVOL_EPS_PER_CONDITION * EPS * condition,
            "F={forward} K={strike} T={years} {:?} price={price}: expected {expected}, got {got} \
             (rel {rel:e}, condition {condition})",
            c.kind()
        );
        if condition <= 1.0 {
            well_conditioned += 1;
            worst_well = worst_well.max(rel);
            assert!(
                rel <= IVOL_WELL_CONDITIONED_REL,
                "{rel:e} at F={forward} K={strike}"
            );
        }
    }
    assert!(well_conditioned > 200);
    println!(
        "implied vol vs mpmath: {} cases, max rel err / (EPS * condition) = {worst_scaled:.2}; \
         {well_conditioned} well-conditioned, max rel err {worst_well:e}",
        cases.len()
    );
}

#[test]
fn black_price_matches_mpmath_reference() {
    let cases = reference("black_price_cases");
    assert!(cases.len() > 200);
    let mut worst = 0.0_f64;
    for c in &cases {
        let c = Case(c);
        let (forward, strike, s) = (c.num("forward"), c.num("strike"), c.num("total_std_dev"));
        let expected = c.num("price");
        let got = black_price(forward, strike, s, c.kind());
        let h = (forward / strike).ln() / s;
        let rel = (got - expected).abs() / expected;
        worst = worst.max(rel / (EPS * (1.0 + h * h)));
        assert!(
            rel <= PRICE_EPS_PER_H2 * EPS * (1.0 + h * h),
            "F={forward} K={strike} s={s} {:?}: expected {expected:e}, got {got:e} (rel {rel:e}, h {h})",
            c.kind()
        );
    }
    println!(
        "black_price vs mpmath: {} cases, max rel err / (EPS (1 + h^2)) = {worst:.2}",
        cases.len()
    );
}

#[test]
fn agrees_with_quantlib() {
    let cases = reference("quantlib_cases");
    if cases.is_empty() {
        return; // generated without QuantLib installed
    }
    let (mut worst_price, mut worst_std_dev) = (0.0_f64, 0.0_f64);
    for c in &cases {
        let c = Case(c);
        let (forward, strike, s) = (c.num("forward"), c.num("strike"), c.num("total_std_dev"));
        let ql_price = c.num("price");
        let price = black_price(forward, strike, s, c.kind());
        let d1 = (forward / strike).ln() / s + 0.5 * s;
        let phi = c.kind().sign();
        let terms = forward * norm_cdf(phi * d1) + strike * norm_cdf(phi * (d1 - s));
        let rel = (price - ql_price).abs() / terms;
        worst_price = worst_price.max(rel);
        assert!(
            rel <= QUANTLIB_PRICE_REL_TERMS,
            "F={forward} K={strike} s={s}: {price} vs {ql_price}"
        );

        let ql_std_dev = c.num("implied_std_dev");
        let implied = implied_volatility(ql_price, forward, strike, 1.0, c.kind()).unwrap();
        let rel = (implied - ql_std_dev).abs() / ql_std_dev;
        worst_std_dev = worst_std_dev.max(rel);
        assert!(
            rel <= QUANTLIB_STD_DEV_REL,
            "F={forward} K={strike}: {implied} vs {ql_std_dev}"
        );
    }
    println!(
        "vs QuantLib: {} cases, max diff price / terms {worst_price:e}, implied std dev rel {worst_std_dev:e}",
        cases.len()
    );
}

// ---------------------------------------------------------------------------
// No-arbitrage bounds and invalid input.
// ---------------------------------------------------------------------------

/// Each `(price, forward, strike, kind, limit)`, one year to expiry, is
/// refused with `PriceOutsideBounds` naming `bound` and its `limit`.
#[track_caller]
fn assert_outside(bound: &str, cases: &[(f64, f64, f64, OptionKind, f64)]) {
    for &(price, forward, strike, kind, limit) in cases {
        match implied_volatility(price, forward, strike, 1.0, kind) {
            Err(Error::PriceOutsideBounds {
                bound: got_bound,
                limit: got_limit,
                ..
            }) => assert_eq!(
                (got_bound, got_limit),
                (bound, limit),
                "{kind:?} price {price}, F={forward} K={strike}"
            ),
            other => panic!("expected PriceOutsideBounds, got {other:?}"),
        }
    }
}

#[test]
fn prices_at_or_below_intrinsic_are_rejected_naming_the_lower_bound() {
    use OptionKind::{Call, Put};
    assert_outside(
        "lower (intrinsic)",
        &[
            // In the money: intrinsic F - K = 20 for the call, K - F = 20 for the put.
            (20.0, 120.0, 100.0, Call, 20.0),
            (19.0, 120.0, 100.0, Call, 20.0),
            (20.0, 100.0, 120.0, Put, 20.0),
            // Out of the money the lower bound is 0: a zero price is at intrinsic.
            (0.0, 100.0, 120.0, Call, 0.0),
            (0.0, 100.0, 80.0, Put, 0.0),
        ],
    );
    // Just above intrinsic is fine and gives a small positive vol.
    let vol = implied_volatility(20.0 + 1e-9, 120.0, 100.0, 1.0, Call).unwrap();
    assert!(vol > 0.0 && vol < 0.1, "{vol}");
    let vol = implied_volatility(1e-300, 100.0, 120.0, 1.0, Call).unwrap();
    assert!(vol > 0.0 && vol < 0.02, "{vol}");
}

#[test]
fn prices_at_or_above_the_upper_bound_are_rejected_naming_it() {
    use OptionKind::{Call, Put};
    assert_outside(
        "upper",
        &[
            (100.0, 100.0, 90.0, Call, 100.0),
            (150.0, 100.0, 90.0, Call, 100.0),
            (90.0, 100.0, 90.0, Put, 90.0),
        ],
    );
    // One ulp below the bound is a (huge but finite) volatility.
    let below = 100.0_f64.next_down();
    let vol = implied_volatility(below, 100.0, 90.0, 1.0, Call).unwrap();
    assert!(vol.is_finite() && vol > 10.0, "{vol}");
    let vol = implied_volatility(90.0_f64.next_down(), 100.0, 90.0, 1.0, Put).unwrap();
    assert!(vol.is_finite() && vol > 10.0, "{vol}");
}

#[test]
fn invalid_inputs_are_rejected_naming_the_input() {
    use OptionKind::Call;
    for (price, forward, strike, years, input) in [
        (1.0, 0.0, 100.0, 1.0, "forward"),
        (1.0, -5.0, 100.0, 1.0, "forward"),
        (1.0, f64::INFINITY, 100.0, 1.0, "forward"),
        (1.0, 100.0, f64::NAN, 1.0, "strike"),
        (1.0, 100.0, 0.0, 1.0, "strike"),
        (1.0, 100.0, 100.0, 0.0, "years"),
        (1.0, 100.0, 100.0, -1.0, "years"),
        (-1.0, 100.0, 100.0, 1.0, "option price"),
        (f64::NAN, 100.0, 100.0, 1.0, "option price"),
        (f64::INFINITY, 100.0, 100.0, 1.0, "option price"),
    ] {
        match implied_volatility(price, forward, strike, years, Call) {
            Err(Error::InvalidInput { what, .. }) => assert_eq!(
                what, input,
                "price {price}, F={forward} K={strike} T={years}"
            ),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips and properties.
// ---------------------------------------------------------------------------

/// `price / (s dprice/ds)`: how much a relative price error is amplified in
/// the implied vol (infinite when vega underflows).
fn inverse_elasticity(forward: f64, strike: f64, s: f64, price: f64) -> f64 {
    let d1 = (forward / strike).ln() / s + 0.5 * s;
    price / (s * forward * norm_pdf(d1))
}

/// Round-trip tolerance (one price evaluation, one inversion): relative
/// error <= this many EPSILON times the conditioning
/// max(1, price / (s dprice/ds)); measured maximum about 7.5.
const ROUND_TRIP_EPS_PER_CONDITION: f64 = 12.0;

fn kind_strategy() -> impl Strategy<Value = OptionKind> {
    prop_oneof![Just(OptionKind::Call), Just(OptionKind::Put)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// sigma -> price -> sigma over ln(F/K) up to 38 standard deviations
    /// either side, s = sigma sqrt(T) in [1e-6, 5], forwards over 12 decades.
    #[test]
    fn round_trip_scaled_moneyness(
        log10_forward in -4.0_f64..8.0,
        standard_deviations in -38.0_f64..38.0,
        log10_s in -6.0_f64..0.7,
        log10_years in -3.0_f64..1.5,
        kind in kind_strategy(),
    ) {
        let forward = 10f64.powf(log10_forward);
        let s = 10f64.powf(log10_s);
        let years = 10f64.powf(log10_years);
        let strike = forward * (-standard_deviations * s).exp();
        let vol = s / years.sqrt();
        let price = black_price(forward, strike, vol * years.sqrt(), kind);
        check_round_trip(price, forward, strike, years, vol, kind)?;
    }

    /// The same with ln(F/K) in [-10, 10] unscaled.
    #[test]
    fn round_trip_absolute_moneyness(
        forward in 1e-3_f64..1e6,
        log_moneyness in -10.0_f64..10.0,
        log10_s in -5.0_f64..0.7,
        years in 1e-3_f64..30.0,
        kind in kind_strategy(),
    ) {
        let strike = forward * (-log_moneyness).exp();
        let vol = 10f64.powf(log10_s) / years.sqrt();
        let price = black_price(forward, strike, vol * years.sqrt(), kind);
        check_round_trip(price, forward, strike, years, vol, kind)?;
    }

    /// Never panics, never returns a non-finite or non-positive volatility,
    /// whatever the numbers.
    #[test]
    fn never_panics_or_returns_non_finite(
        price in prop::num::f64::ANY,
        forward in prop::num::f64::ANY,
        strike in prop::num::f64::ANY,
        years in prop::num::f64::ANY,
        kind in kind_strategy(),
    ) {
        if let Ok(vol) = implied_volatility(price, forward, strike, years, kind) {
            prop_assert!(vol.is_finite() && vol > 0.0, "{vol}");
        }
    }

    /// Same on inputs inside the domain, where only the bounds can fail.
    #[test]
    fn valid_inputs_give_a_vol_or_a_bound_error(
        price in 0.0_f64..2e5,
        forward in 1e-8_f64..1e5,
        strike in 1e-8_f64..1e5,
        years in 1e-8_f64..100.0,
        kind in kind_strategy(),
    ) {
        match implied_volatility(price, forward, strike, years, kind) {
            Ok(vol) => prop_assert!(vol.is_finite() && vol > 0.0),
            Err(Error::PriceOutsideBounds { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    /// Put-call parity, and monotonicity in the standard deviation.
    #[test]
    fn parity_and_monotonicity(
        forward in 1e-2_f64..1e5,
        log_moneyness in -5.0_f64..5.0,
        s in 1e-4_f64..4.0,
        bump in 1e-3_f64..0.5,
    ) {
        let strike = forward * (-log_moneyness).exp();
        let call = black_price(forward, strike, s, OptionKind::Call);
        let put = black_price(forward, strike, s, OptionKind::Put);
        let parity = (call - put) - (forward - strike);
        prop_assert!(parity.abs() <= 8.0 * EPS * forward.max(strike), "{parity:e}");
        let higher = black_price(forward, strike, s * (1.0 + bump), OptionKind::Call);
        prop_assert!(higher >= call);
    }
}

fn check_round_trip(
    price: f64,
    forward: f64,
    strike: f64,
    years: f64,
    vol: f64,
    kind: OptionKind,
) -> Result<(), TestCaseError> {
    let intrinsic = (kind.sign() * (forward - strike)).max(0.0);
    let upper = match kind {
        OptionKind::Call => forward,
        OptionKind::Put => strike,
    };
    // Outside f64's reach: the time value rounds away or underflows, or the
    // price rounds to the upper bound.
    if !(price > intrinsic && price < upper) || price - intrinsic < 1e-290 * forward.max(strike) {
        return Ok(());
    }
    let s = vol * years.sqrt();
    let condition = inverse_elasticity(forward, strike, s, price).max(1.0);
    if !condition.is_finite() || condition > 1e12 {
        return Ok(());
    }
    let got = implied_volatility(price, forward, strike, years, kind)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let rel = (got - vol).abs() / vol;
    prop_assert!(
        rel <= ROUND_TRIP_EPS_PER_CONDITION * EPS * condition,
        "F={forward} K={strike} T={years} vol={vol} {kind:?}: got {got} (rel {rel:e}, condition {condition})"
    );
    Ok(())
}

#[test]
fn deep_out_of_the_money_prices_keep_relative_precision() {
    // 30 standard deviations out of the money with s = 1e-3: price ~ 1e-199.
    let (forward, s) = (100.0_f64, 1e-3_f64);
    let strike = forward * (30.0 * s).exp();
    let price = black_price(forward, strike, s, OptionKind::Call);
    assert!(price > 0.0 && price < 1e-190, "{price:e}");
    let vol = implied_volatility(price, forward, strike, 1.0, OptionKind::Call).unwrap();
    assert!((vol - s).abs() / s < 4.0 * EPS, "{vol}");
}
