//! The kernel against independent reference vectors: QuantLib 1.44
//! (`AnalyticEuropeanEngine` on a `BlackScholesMertonProcess`;
//! `BlackCalculator` for Black-76) and mpmath at 50 digits (every Greek,
//! vanna/volga/charm from closed forms checked against `mpmath.diff`).
//!
//! 200 cases from `scripts/gen_quantlib_vectors.py` (fixed seed): 120
//! general (1 day to 5 years), 40 expiring in 1, 2 or 7 days, 40 deep in or
//! out of the money (4 to 8 standard deviations); calls and puts, BSM and
//! Black-76. `T = days / 365` exactly, as QuantLib's Actual365Fixed gives.

use portfolio_margin::{BsInputs, Greeks, OptionKind, OptionModel, black_scholes};
use serde_json::Value;

/// Agreement with the references, relative ...
const REL_TOL: f64 = 1e-12;
/// ... above an absolute floor of this times `U^(1-n)`, `U` the underlying
/// price and `n` the number of underlying derivatives in the Greek (a value
/// floor of `1e-12 U`, a delta floor of `1e-12`, a gamma floor of
/// `1e-12 / U`, ...), for Greeks tiny against the option's size.
const ABS_FLOOR: f64 = 1e-12;
/// Greeks at least this fraction of `U^(1-n)` count as "not tiny" in the
/// printed summary.
const SIZE_FRACTION: f64 = 1e-6;
/// Smallest reference value whose relative error is reported (normal
/// range, away from subnormal round-off).
const TAIL_MIN: f64 = 1e-290;
/// Cases in the file.
const CASES: usize = 200;

const NAMES: [&str; 9] = [
    "value", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm",
];
/// Underlying derivatives in each Greek.
const SPOT_ORDER: [i32; 9] = [0, 1, 2, 0, 0, 0, 1, 0, 1];

fn load() -> Vec<Value> {
    let data: Value =
        serde_json::from_str(include_str!("data/quantlib_vectors.json")).expect("valid JSON");
    data["cases"].as_array().expect("cases").clone()
}

fn kernel(case: &Value) -> Greeks {
    let f = |k: &str| case[k].as_f64().unwrap();
    let kind = match case["kind"].as_str().unwrap() {
        "call" => OptionKind::Call,
        _ => OptionKind::Put,
    };
    let model = match case["model"].as_str().unwrap() {
        "black76" => OptionModel::Black76,
        _ => OptionModel::BlackScholesMerton,
    };
    let years = case["days"].as_u64().unwrap() as f64 / 365.0;
    let inputs = BsInputs::new(
        kind,
        model,
        f("underlying"),
        f("strike"),
        years,
        f("vol"),
        f("rate"),
        f("carry_yield"),
    )
    .unwrap();
    black_scholes(&inputs)
}

/// Compares the kernel with one reference (`"quantlib"` or `"mpmath"`) on
/// every field the reference has; prints the worst relative error per Greek
/// and returns the failing rows.
fn compare(reference: &str) -> (Vec<String>, usize) {
    let cases = load();
    assert_eq!(cases.len(), CASES);
    let mut failures = Vec::new();
    // Per Greek: worst err / allowed; worst relative error on Greeks not
    // tiny against the option (|expected| >= SIZE_FRACTION U^(1-n)); and, against
    // mpmath (relatively exact however small), the worst relative error
    // over every value in the normal range.
    let mut worst: [[(f64, String); 3]; 9] =
        std::array::from_fn(|_| std::array::from_fn(|_| (0.0, String::new())));
    let mut record = |i: usize, j: usize, x: f64, id: &str| {
        if x > worst[i][j].0 || x.is_nan() {
            worst[i][j] = (x, id.to_string());
        }
    };
    let mut checked = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let got = kernel(case).fields();
        let underlying = case["underlying"].as_f64().unwrap();
        for (i, name) in NAMES.iter().enumerate() {
            let Some(expected) = case[reference][name].as_f64() else {
                continue;
            };
            checked += 1;
            let floor = ABS_FLOOR * underlying.powi(1 - SPOT_ORDER[i]);
            let err = (got[i] - expected).abs();
            let allowed = REL_TOL * expected.abs() + floor;
            record(i, 0, err / allowed, id);
            if expected.abs() >= SIZE_FRACTION * floor / ABS_FLOOR {
                record(i, 1, err / expected.abs(), id);
            }
            if expected.abs() >= TAIL_MIN && reference == "mpmath" {
                record(i, 2, err / expected.abs(), id);
            }
            if err > allowed || err.is_nan() {
                failures.push(format!(
                    "{id} {name}: {reference} {expected:e}, kernel {:e}, rel err {:.2e} ({} {} U={} K={} days={} vol={} r={} q={})",
                    got[i],
                    err / expected.abs(),
                    case["kind"],
                    case["model"],
                    underlying,
                    case["strike"],
                    case["days"],
                    case["vol"],
                    case["rate"],
                    case["carry_yield"],
                ));
            }
        }
    }
    eprintln!(
        "kernel vs {reference}: {checked} values; worst err/allowed | rel. error where |x| >= {SIZE_FRACTION:e} U^(1-n) | rel. error, all |x| >= {TAIL_MIN:e}"
    );
    for (name, w) in NAMES.iter().zip(&worst) {
        if !w[0].1.is_empty() {
            let columns: Vec<String> = w
                .iter()
                .map(|(x, id)| format!("{x:9.3e} ({id:11})"))
                .collect();
            eprintln!("  {name:6} {}", columns.join(" | "));
        }
    }
    (failures, checked)
}

#[test]
fn kernel_matches_quantlib() {
    let (failures, checked) = compare("quantlib");
    // 6 Greeks on BSM cases, 5 on Black-76 ones.
    assert!(checked >= 5 * CASES);
    assert!(
        failures.is_empty(),
        "{} of {checked} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kernel_matches_mpmath() {
    let (failures, checked) = compare("mpmath");
    assert_eq!(checked, 9 * CASES);
    assert!(
        failures.is_empty(),
        "{} of {checked} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// QuantLib and mpmath agree with each other (the generator checks this
/// too), so a failure above is the kernel's.
#[test]
fn references_agree() {
    for case in load() {
        let underlying = case["underlying"].as_f64().unwrap();
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(ql) = case["quantlib"][name].as_f64() {
                let mp = case["mpmath"][name].as_f64().unwrap();
                let floor = ABS_FLOOR * underlying.powi(1 - SPOT_ORDER[i]);
                assert!(
                    (ql - mp).abs() <= REL_TOL * mp.abs() + floor,
                    "{} {name}: QuantLib {ql:e} vs mpmath {mp:e}",
                    case["id"]
                );
            }
        }
    }
}
