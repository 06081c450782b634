//! Published reference values (Haug 1998 via QuantLib's test suite) for the
//! Black-Scholes-Merton kernel, plus QuantLib 1.44's full-precision results
//! for the same inputs.

use portfolio_margin::{BsInputs, OptionKind, OptionModel, black_scholes};
use serde_json::Value;

/// Haug's printed values carry 4 decimals.
const PUBLISHED_ABS_TOL: f64 = 1e-4;
/// Agreement with QuantLib's closed form (relative, where the value is not tiny).
const QUANTLIB_REL_TOL: f64 = 1e-12;
/// Below this magnitude agreement with QuantLib is checked absolutely.
const QUANTLIB_ABS_FLOOR: f64 = 1e-10;

fn load() -> Value {
    serde_json::from_str(include_str!("data/haug_european.json")).unwrap()
}

fn inputs(case: &Value) -> BsInputs {
    let kind = match case["type"].as_str().unwrap() {
        "call" => OptionKind::Call,
        _ => OptionKind::Put,
    };
    let f = |k: &str| case[k].as_f64().unwrap();
    BsInputs::new(
        kind,
        OptionModel::BlackScholesMerton,
        f("spot"),
        f("strike"),
        f("t"),
        f("vol"),
        f("r"),
        f("q"),
    )
    .unwrap()
}

fn check(
    id: &str,
    got: f64,
    expected: f64,
    tol: f64,
    quantlib: Option<f64>,
    failures: &mut Vec<String>,
) {
    if (got - expected).abs() > tol {
        failures.push(format!("{id}: expected {expected} +- {tol}, got {got}"));
    }
    if let Some(ql) = quantlib {
        let err = (got - ql).abs();
        if err > QUANTLIB_REL_TOL * ql.abs().max(QUANTLIB_ABS_FLOOR / QUANTLIB_REL_TOL) {
            failures.push(format!(
                "{id}: QuantLib {ql:e}, got {got:e}, rel err {:e}",
                err / ql.abs()
            ));
        }
    }
}

#[test]
fn haug_values() {
    let data = load();
    let mut failures = Vec::new();
    let cases = data["value_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 43);
    for case in cases {
        let g = black_scholes(&inputs(case));
        check(
            case["id"].as_str().unwrap(),
            g.value,
            case["expected_value"].as_f64().unwrap(),
            case["tolerance_abs"].as_f64().unwrap_or(PUBLISHED_ABS_TOL),
            case["quantlib_1_44_value"].as_f64(),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn haug_greeks() {
    let data = load();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in data["greek_cases"].as_array().unwrap() {
        let g = black_scholes(&inputs(case));
        let spot = case["spot"].as_f64().unwrap();
        let t = case["t"].as_f64().unwrap();
        let got = match case["greek"].as_str().unwrap() {
            "delta" => g.delta,
            "gamma" => g.gamma,
            "vega" => g.vega,
            "theta" => g.theta,
            "theta_per_day" => g.theta / 365.0,
            "rho" => g.rho,
            "elasticity" => g.delta * spot / g.value,
            // dV/dq = -phi T S e^{-qT} N(phi d1) = -T S delta.
            "dividend_rho" => -t * spot * g.delta,
            other => panic!("unknown greek {other}"),
        };
        checked += 1;
        check(
            case["id"].as_str().unwrap(),
            got,
            case["expected_value"].as_f64().unwrap(),
            case["tolerance_abs"].as_f64().unwrap_or(PUBLISHED_ABS_TOL),
            case["quantlib_1_44_value"].as_f64(),
            &mut failures,
        );
    }
    assert!(checked >= 11);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
