//! Property tests of the pricing kernel, its finite-difference oracle and
//! instrument Greeks (options, futures, perpetuals; linear and coin-settled).
//!
//! Domain: spot/strike `e^[-2, 2]`, vol `0.01..3` and years `1/365..5`
//! (both log-uniform, so short expiries and low vols are well covered),
//! rate and carry yield `-0.05..0.2`, price level `10^[-2, 5]`, calls and
//! puts, Black-Scholes-Merton and Black-76.
//!
//! The runners use a fixed seed, so failures and the worst errors printed
//! with `--nocapture` are reproducible.

use portfolio_margin::{
    BsInputs, FutureContract, Instrument, MILLIS_PER_YEAR, MarketSnapshot, OptionContract,
    OptionKind, OptionModel, PerpetualContract, Settlement, Timestamp, UnderlyingId,
    UnderlyingMarket, VolSurface, black_scholes, bump_greeks, instrument_greeks, option_inputs,
    price,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::RefCell;

/// Cases per property (`PROPTEST_CASES` overrides both counts).
const CASES: u32 = 4_000;
/// Cases for the (slower) snapshot finite-difference properties.
const SNAPSHOT_CASES: u32 = 1_500;

/// Put-call parity, relative to the option's size `S e^{-qT} + K e^{-rT}`.
const PARITY_REL_TOL: f64 = 1e-13;
/// Slack in the no-arbitrage bounds and monotonicity checks, relative to the
/// option's size (a few rounding errors of the two terms of Black's formula).
const BOUND_REL_TOL: f64 = 1e-14;
/// Kernel Greek vs [`bump_greeks`]: relative tolerance ...
const BUMP_REL_TOL: f64 = 1e-6;
/// ... plus this absolute floor in the Greek's natural unit (see
/// [`natural_units`]): option size over the input moves that change the
/// value by O(size).
const BUMP_ABS_FLOOR: f64 = 1e-9;
/// Instrument Greeks vs central differences of `price` over bumped snapshots.
const SNAPSHOT_REL_TOL: f64 = 1e-6;
/// ... with this absolute floor in natural units.
const SNAPSHOT_ABS_FLOOR: f64 = 1e-9;
/// Delta-one (futures, perpetuals) Greeks vs central differences ...
const DELTA_ONE_REL_TOL: f64 = 1e-7;
/// ... with this absolute floor in natural units.
const DELTA_ONE_ABS_FLOOR: f64 = 1e-9;

const NAMES: [&str; 9] = [
    "value", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm",
];

#[derive(Debug, Clone, Copy)]
struct Case {
    kind: OptionKind,
    model: OptionModel,
    underlying: f64,
    strike: f64,
    years: f64,
    vol: f64,
    rate: f64,
    carry: f64,
}

impl Case {
    fn inputs(&self) -> BsInputs {
        self.with_strike(self.strike).unwrap()
    }
    fn with_strike(&self, strike: f64) -> portfolio_margin::Result<BsInputs> {
        BsInputs::new(
            self.kind,
            self.model,
            self.underlying,
            strike,
            self.years,
            self.vol,
            self.rate,
            self.carry,
        )
    }
    fn with_vol(&self, vol: f64) -> BsInputs {
        BsInputs::new(
            self.kind,
            self.model,
            self.underlying,
            self.strike,
            self.years,
            vol,
            self.rate,
            self.carry,
        )
        .unwrap()
    }
    /// `e^{(b-r)T}`: `e^{-qT}` (BSM) or `e^{-rT}` (Black-76).
    fn carry_df(&self) -> f64 {
        let i = self.inputs();
        ((i.cost_of_carry() - self.rate) * self.years).exp()
    }
    fn df(&self) -> f64 {
        (-self.rate * self.years).exp()
    }
    /// `S e^{-qT} + K e^{-rT}` (BSM; `F e^{-rT} + ...` for Black-76).
    fn size(&self) -> f64 {
        self.underlying * self.carry_df() + self.strike * self.df()
    }
}

fn kind() -> impl Strategy<Value = OptionKind> {
    prop_oneof![Just(OptionKind::Call), Just(OptionKind::Put)]
}
fn model() -> impl Strategy<Value = OptionModel> {
    prop_oneof![
        Just(OptionModel::BlackScholesMerton),
        Just(OptionModel::Black76)
    ]
}
fn log_uniform(low: f64, high: f64) -> impl Strategy<Value = f64> {
    (low.ln()..=high.ln()).prop_map(f64::exp)
}

fn cases() -> impl Strategy<Value = Case> {
    (
        kind(),
        model(),
        -2.0..=5.0f64,
        -2.0..=2.0f64,
        log_uniform(1.0 / 365.0, 5.0),
        log_uniform(0.01, 3.0),
        -0.05..=0.2f64,
        -0.05..=0.2f64,
    )
        .prop_map(
            |(kind, model, level, log_moneyness, years, vol, rate, carry)| {
                let underlying = 10f64.powf(level);
                Case {
                    kind,
                    model,
                    underlying,
                    strike: underlying * (-log_moneyness).exp(),
                    years,
                    vol,
                    rate,
                    carry,
                }
            },
        )
}

/// `cases`, or the `PROPTEST_CASES` environment variable when set.
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("{name}: {e}");
    }
}

/// Which Greeks a test asserts: first-order differences (value, delta,
/// vega, theta, rho), or second-order and cross ones (gamma, vanna, volga,
/// charm), which are far more sensitive to noise in the kernel's value.
#[derive(Clone, Copy)]
enum Order {
    First,
    Second,
    All,
}

impl Order {
    fn fields(self) -> &'static [usize] {
        match self {
            Order::First => &[0, 1, 3, 4, 5],
            Order::Second => &[2, 6, 7, 8],
            Order::All => &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        }
    }
}

/// Worst errors seen per Greek: `err / allowed` and the relative error
/// where the Greek is above its floor.
struct Worst {
    what: &'static str,
    order: Order,
    ratio: [f64; 9],
    relative: [f64; 9],
    case: [String; 9],
}

impl Worst {
    fn new(what: &'static str, order: Order) -> RefCell<Self> {
        RefCell::new(Worst {
            what,
            order,
            ratio: [0.0; 9],
            relative: [0.0; 9],
            case: Default::default(),
        })
    }

    /// Compares `got` with `expected` on this test's fields; returns the
    /// failures.
    fn compare(
        &mut self,
        expected: &[f64; 9],
        got: &[f64; 9],
        floors: &[f64; 9],
        rel_tol: f64,
        case: &dyn std::fmt::Debug,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for &i in self.order.fields() {
            let (x, y) = (expected[i], got[i]);
            let err = (x - y).abs();
            let allowed = rel_tol * x.abs() + floors[i];
            let ratio = err / allowed;
            if ratio > self.ratio[i] || ratio.is_nan() {
                self.ratio[i] = ratio;
                self.case[i] = format!("{case:?}");
            }
            if x.abs() > floors[i] / rel_tol {
                self.relative[i] = self.relative[i].max(err / x.abs());
            }
            if ratio > 1.0 || ratio.is_nan() {
                failures.push(format!(
                    "{}: expected {x:e}, got {y:e}, err {err:e} > allowed {allowed:e}",
                    NAMES[i]
                ));
            }
        }
        failures
    }

    /// Prints the worst errors (shown with `--nocapture`).
    fn print(&self) {
        eprintln!("worst errors, {}:", self.what);
        for &i in self.order.fields() {
            eprintln!(
                "  {:6} err/allowed {:9.3e}  rel (above floor) {:9.3e}  at {}",
                NAMES[i], self.ratio[i], self.relative[i], self.case[i]
            );
        }
    }
}

/// Natural units of each Greek: the option's size over the moves of the
/// inputs that change the value by O(size): underlying `U min(1, sd)`, vol
/// `min(1, sd)/sqrt(T)` (moves `sd` by `min(1, sd)`), time `T`, rate
/// `min(1, 1/T, sd/T)` (BSM; `min(1, 1/T)` for Black-76).
fn natural_units(c: &Case) -> [f64; 9] {
    let size = c.size();
    let sd = c.vol * c.years.sqrt();
    let u = c.underlying * sd.min(1.0);
    let v = sd.min(1.0) / c.years.sqrt();
    let t = c.years;
    let r = match c.model {
        OptionModel::BlackScholesMerton => 1f64.min(1.0 / t).min(sd / t),
        OptionModel::Black76 => 1f64.min(1.0 / t),
    };
    [
        size,
        size / u,
        size / (u * u),
        size / v,
        size / t,
        size * r.recip(),
        size / (u * v),
        size / (v * v),
        size / (u * t),
    ]
}

#[test]
fn put_call_parity() {
    check("put-call parity", CASES, cases(), |c| {
        let call = black_scholes(
            &Case {
                kind: OptionKind::Call,
                ..c
            }
            .inputs(),
        );
        let put = black_scholes(
            &Case {
                kind: OptionKind::Put,
                ..c
            }
            .inputs(),
        );
        // BSM: S e^{-qT} - K e^{-rT}; Black-76: e^{-rT} (F - K). Both are
        // U e^{(b-r)T} - K e^{-rT}.
        let forward_value = c.underlying * c.carry_df() - c.strike * c.df();
        let err = (call.value - put.value - forward_value).abs();
        prop_assert!(
            err <= PARITY_REL_TOL * c.size(),
            "C {} - P {} vs {forward_value}: err {err:e}",
            call.value,
            put.value
        );
        // The same identity differentiated: delta, gamma, vega.
        let delta_gap = (call.delta - put.delta - c.carry_df()).abs();
        prop_assert!(
            delta_gap <= 4.0 * f64::EPSILON,
            "delta parity {delta_gap:e}"
        );
        prop_assert!(call.gamma == put.gamma && call.vega == put.vega);
        Ok(())
    });
}

/// Kernel Greeks vs `bump_greeks` on the fields of `order`.
fn kernel_vs_bump(order: Order) {
    let worst = Worst::new("kernel vs bump_greeks", order);
    check("greeks vs bump", CASES, cases(), |c| {
        let i = c.inputs();
        let exact = black_scholes(&i).fields();
        let bumped = bump_greeks(&i).fields();
        let floors = natural_units(&c).map(|u| BUMP_ABS_FLOOR * u);
        let failures = worst
            .borrow_mut()
            .compare(&exact, &bumped, &floors, BUMP_REL_TOL, &c);
        prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
        Ok(())
    });
    worst.borrow().print();
}

#[test]
fn first_order_greeks_match_finite_differences() {
    kernel_vs_bump(Order::First);
}

/// Needs a smooth normal cdf: noise of relative size `e` in the value
/// becomes `e / h^2` in a second difference.
#[test]
fn second_order_greeks_match_finite_differences() {
    kernel_vs_bump(Order::Second);
}

#[test]
fn price_within_no_arbitrage_bounds() {
    check("price bounds", CASES, cases(), |c| {
        let v = black_scholes(&c.inputs()).value;
        let (underlying, strike) = (c.underlying * c.carry_df(), c.strike * c.df());
        let slack = BOUND_REL_TOL * c.size();
        let (lower, upper) = match c.kind {
            OptionKind::Call => ((underlying - strike).max(0.0), underlying),
            OptionKind::Put => ((strike - underlying).max(0.0), strike),
        };
        prop_assert!(v >= 0.0, "negative price {v:e}");
        prop_assert!(v >= lower - slack, "{v:e} below {lower:e}");
        prop_assert!(v <= upper + slack, "{v:e} above {upper:e}");
        Ok(())
    });
}

#[test]
fn monotone_in_strike_and_vol() {
    let strategy = (cases(), log_uniform(1e-6, 0.5), log_uniform(1e-6, 0.5));
    check(
        "monotonicity",
        CASES,
        strategy,
        |(c, strike_step, vol_step)| {
            let slack = BOUND_REL_TOL * c.size();
            let v = black_scholes(&c.inputs()).value;
            let higher_strike =
                black_scholes(&c.with_strike(c.strike * (1.0 + strike_step)).unwrap()).value;
            match c.kind {
                OptionKind::Call => prop_assert!(
                    higher_strike <= v + slack,
                    "call rose with strike: {v:e} -> {higher_strike:e}"
                ),
                OptionKind::Put => prop_assert!(
                    higher_strike >= v - slack,
                    "put fell with strike: {v:e} -> {higher_strike:e}"
                ),
            }
            let higher_vol = black_scholes(&c.with_vol(c.vol * (1.0 + vol_step))).value;
            prop_assert!(
                higher_vol >= v - slack,
                "fell with vol: {v:e} -> {higher_vol:e}"
            );
            Ok(())
        },
    );
}

#[test]
fn delta_gamma_vega_ranges() {
    check("greek ranges", CASES, cases(), |c| {
        let g = black_scholes(&c.inputs());
        let cap = c.carry_df();
        match c.kind {
            OptionKind::Call => prop_assert!(
                (0.0..=cap).contains(&g.delta),
                "call delta {} not in [0, {cap}]",
                g.delta
            ),
            OptionKind::Put => prop_assert!(
                (-cap..=0.0).contains(&g.delta),
                "put delta {} not in [-{cap}, 0]",
                g.delta
            ),
        }
        prop_assert!(
            g.gamma >= 0.0 && g.vega >= 0.0,
            "gamma {} vega {}",
            g.gamma,
            g.vega
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Instrument Greeks against finite differences of `price` over snapshots.

/// Everything a one-underlying snapshot holds, with the valuation time.
#[derive(Debug, Clone, Copy)]
struct Market {
    spot: f64,
    rate: f64,
    carry: f64,
    vol: f64,
    as_of_millis: i64,
}

/// Expiry of every dated contract in these tests.
const EXPIRY_MILLIS: i64 = 1_893_456_000_000; // 2030-01-01

fn underlying_id() -> UnderlyingId {
    UnderlyingId::new("BTC").unwrap()
}

impl Market {
    fn snapshot(&self) -> MarketSnapshot {
        let data = UnderlyingMarket::new(
            self.spot,
            self.rate,
            self.carry,
            VolSurface::flat(self.vol).unwrap(),
        )
        .unwrap();
        MarketSnapshot::builder(Timestamp::from_millis(self.as_of_millis))
            .underlying(underlying_id(), data)
            .build()
            .unwrap()
    }
    fn years(&self) -> f64 {
        (EXPIRY_MILLIS - self.as_of_millis) as f64 / MILLIS_PER_YEAR
    }
}

/// A bumpable market input: the bump size (in the input's units, or in
/// milliseconds of elapsed time) and how to apply it.
#[derive(Clone, Copy)]
enum Input {
    Spot(f64),
    Vol(f64),
    Rate(f64),
    /// Calendar time passing (the valuation time moves forward).
    Time(i64),
}

impl Input {
    /// The market moved `steps` bumps along this input, and the size of
    /// one bump in the input's units (years for time).
    fn apply(self, m: Market, steps: f64) -> Market {
        match self {
            Input::Spot(h) => Market {
                spot: m.spot + steps * h,
                ..m
            },
            Input::Vol(h) => Market {
                vol: m.vol + steps * h,
                ..m
            },
            Input::Rate(h) => Market {
                rate: m.rate + steps * h,
                ..m
            },
            Input::Time(h) => Market {
                as_of_millis: m.as_of_millis + (steps as i64) * h,
                ..m
            },
        }
    }
    fn size(self) -> f64 {
        match self {
            Input::Spot(h) | Input::Vol(h) | Input::Rate(h) => h,
            Input::Time(h) => h as f64 / MILLIS_PER_YEAR,
        }
    }
}

/// Fourth-order central first and second differences of `f` along `x`
/// (the stencils of `bump_greeks`).
fn d12(f: &dyn Fn(Market) -> f64, m: Market, x: Input) -> (f64, f64) {
    let [m2, m1, f0, p1, p2] = [-2.0, -1.0, 0.0, 1.0, 2.0].map(|s| f(x.apply(m, s)));
    let h = x.size();
    (
        (m2 - 8.0 * m1 + 8.0 * p1 - p2) / (12.0 * h),
        (-m2 + 16.0 * m1 - 30.0 * f0 + 16.0 * p1 - p2) / (12.0 * h * h),
    )
}
/// Richardson-extrapolated 4-point cross stencil.
fn d11(f: &dyn Fn(Market) -> f64, m: Market, x: Input, y: Input) -> f64 {
    let stencil = |s: f64| {
        let g = |sx: f64, sy: f64| f(y.apply(x.apply(m, sx * s), sy * s));
        (g(1.0, 1.0) - g(1.0, -1.0) - g(-1.0, 1.0) + g(-1.0, -1.0))
            / (4.0 * s * s * x.size() * y.size())
    };
    (4.0 * stencil(1.0) - stencil(2.0)) / 3.0
}

/// Bumps `[spot, vol, rate, time]` for an option in `m`: the sizing of
/// `bump_greeks` (see `src/greeks/bump.rs`), applied to snapshot inputs.
fn option_bumps(i: &BsInputs, value: f64, m: &Market) -> [Input; 4] {
    let (t, vol, strike) = (i.years(), i.vol(), i.strike());
    let sd = vol * t.sqrt();
    let b = m.rate - m.carry;
    let log_moneyness = (m.spot / strike).ln() + b * t;
    let (d1, d2) = (log_moneyness / sd + 0.5 * sd, log_moneyness / sd - 0.5 * sd);
    let d_max = d1.abs().max(d2.abs());
    let tail = if d1 * d2 > 0.0 {
        d1.abs().min(d2.abs()) - 10.0
    } else {
        0.0
    };
    // For Black-76 the kernel's value is that of BSM on the spot.
    let (u_carry, k_df) = (m.spot * (-m.carry * t).exp(), strike * (-m.rate * t).exp());
    let (lower, upper) = match i.kind() {
        OptionKind::Call => ((u_carry - k_df).max(0.0), u_carry),
        OptionKind::Put => ((k_df - u_carry).max(0.0), k_df),
    };
    let room = (value - lower).min(upper - value);
    let ratio = if room > 0.0 {
        (value / room).clamp(1.0, 1e12)
    } else {
        1e12
    };
    let c = (2e-3 * ratio.powf(1.0 / 6.0)).min(0.2);
    let move_d = (c / d_max.max(1.0)).max(tail / 8.0);
    // Smooth scales: `bump_greeks` caps them at 0.01; the coin value's 1/S
    // needs smaller steps for the same accuracy.
    let c_smooth = c.min(2e-3);
    let g_t = (b.abs() * t + 0.5 * log_moneyness.abs() + 0.25 * sd * sd) / (sd * t);
    let years = (move_d / g_t)
        .min(c_smooth * t)
        .min(c_smooth / m.rate.abs())
        .min(c_smooth / m.carry.abs());
    [
        Input::Spot(m.spot * c_smooth.min(move_d * sd)),
        Input::Vol((move_d * sd / (d_max * t.sqrt())).min(c_smooth * vol)),
        // The snapshot's rate moves the forward: d(d1)/dr = T/sd for both models.
        Input::Rate(c_smooth.min(c_smooth / t).min(move_d * sd / t)),
        Input::Time((years * MILLIS_PER_YEAR).round().max(1.0) as i64),
    ]
}

fn option_markets() -> impl Strategy<Value = (Case, Settlement)> {
    (
        cases(),
        prop_oneof![Just(Settlement::Linear), Just(Settlement::Inverse)],
    )
}

/// Coin-settled (and linear) option Greeks from `instrument_greeks` equal
/// finite differences of `price` (the coin value `V/U` when inverse) over
/// snapshots with the spot, vol, rate or valuation time bumped.
///
/// Spot bumps move the forward, so for Black-76 the forward-based Greeks
/// are converted: `dW/dS = f delta`, `d2W/dS2 = f^2 gamma` (`f = dF/dS`),
/// and since `dF/dt = -bF`, `dF/dr = TF` at a fixed spot:
/// `dW/dt = theta - bF delta`, `dW/dr = rho + TF delta`,
/// `d(dW/dS)/dt = f (charm - bF gamma - b delta)`.
fn option_instruments_vs_snapshots(order: Order) {
    let worst = Worst::new("option instruments vs snapshot bumps", order);
    check(
        "option instruments",
        SNAPSHOT_CASES,
        option_markets(),
        |(c, settlement)| {
            let years_millis = (c.years * MILLIS_PER_YEAR).round() as i64;
            let spot = match c.model {
                // The strategy's `underlying` is the forward for Black-76.
                OptionModel::BlackScholesMerton => c.underlying,
                OptionModel::Black76 => {
                    c.underlying
                        * (-(c.rate - c.carry) * years_millis as f64 / MILLIS_PER_YEAR).exp()
                }
            };
            let m = Market {
                spot,
                rate: c.rate,
                carry: c.carry,
                vol: c.vol,
                as_of_millis: EXPIRY_MILLIS - years_millis,
            };
            let option = Instrument::Option(
                OptionContract::new(
                    underlying_id(),
                    c.kind,
                    c.strike,
                    Timestamp::from_millis(EXPIRY_MILLIS),
                )
                .unwrap()
                .with_model(c.model)
                .with_settlement(settlement),
            );
            let snapshot = m.snapshot();
            let g = instrument_greeks(&option, &snapshot).unwrap();
            let Instrument::Option(contract) = &option else {
                unreachable!()
            };
            let inputs = option_inputs(contract, &snapshot).unwrap();
            let kernel = black_scholes(&inputs);
            let w = |m: Market| price(&option, &m.snapshot()).unwrap();
            let [spot_h, vol_h, rate_h, time_h] = option_bumps(&inputs, kernel.value, &m);

            let n = g.native;
            let (f, u) = (g.forward_per_spot, g.underlying_price);
            let (b, rho_shift) = match c.model {
                OptionModel::BlackScholesMerton => (0.0, 0.0),
                OptionModel::Black76 => (m.rate - m.carry, m.years() * u * n.delta),
            };
            let expected = [
                n.value,
                f * n.delta,
                f * f * n.gamma,
                n.vega,
                n.theta - b * u * n.delta,
                n.rho + rho_shift,
                f * n.vanna,
                n.volga,
                f * (n.charm - b * u * n.gamma - b * n.delta),
            ];
            let (by_spot, by_spot2) = d12(&w, m, spot_h);
            let (by_vol, by_vol2) = d12(&w, m, vol_h);
            let got = [
                w(m),
                by_spot,
                by_spot2,
                by_vol,
                d12(&w, m, time_h).0,
                d12(&w, m, rate_h).0,
                d11(&w, m, spot_h, vol_h),
                by_vol2,
                d11(&w, m, spot_h, time_h),
            ];
            // Natural units of the coin value: those of the quote-currency
            // option divided by the underlying price.
            let scale = match settlement {
                Settlement::Linear => 1.0,
                Settlement::Inverse => u,
            };
            // Spot-based units (the bumped inputs are the snapshot's).
            let units = Case {
                underlying: m.spot,
                model: OptionModel::BlackScholesMerton,
                ..c
            };
            let floors = natural_units(&units).map(|x| SNAPSHOT_ABS_FLOOR * x / scale);
            let mut failures = worst.borrow_mut().compare(
                &expected,
                &got,
                &floors,
                SNAPSHOT_REL_TOL,
                &(c, settlement),
            );
            // Quote-currency Greeks are the coin ones at today's price, and
            // the quote delta of a coin-settled option is `Delta_BS - W`.
            match settlement {
                Settlement::Linear => {
                    if g.quote != g.native || g.native != kernel {
                        failures.push("linear quote/native/kernel Greeks differ".into());
                    }
                }
                Settlement::Inverse => {
                    let quote_delta_err = (g.quote.delta - (kernel.delta - n.value)).abs();
                    if quote_delta_err > 1e-14 * (kernel.delta.abs() + n.value.abs()).max(1e-300) {
                        failures.push(format!("quote delta off by {quote_delta_err:e}"));
                    }
                    for (x, y) in g.quote.fields().iter().zip(n.fields()) {
                        if (x - y * u).abs() > 1e-15 * x.abs() {
                            failures.push(format!("quote {x:e} != native {y:e} x {u}"));
                        }
                    }
                }
            }
            prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
            Ok(())
        },
    );
    worst.borrow().print();
}

#[test]
fn option_instrument_first_order_greeks_match_snapshot_differences() {
    option_instruments_vs_snapshots(Order::First);
}

#[test]
fn option_instrument_second_order_greeks_match_snapshot_differences() {
    option_instruments_vs_snapshots(Order::Second);
}

/// Futures and perpetuals, linear (`V = F`) and inverse (`W = -1/F` coin):
/// Greeks equal central differences of `price` over bumped snapshots.
#[test]
fn delta_one_greeks_match_snapshot_differences() {
    let worst = Worst::new("futures and perpetuals vs snapshot bumps", Order::All);
    let strategy = (
        prop_oneof![Just(true), Just(false)],
        prop_oneof![Just(Settlement::Linear), Just(Settlement::Inverse)],
        -2.0..=5.0f64,
        log_uniform(1.0 / 365.0, 5.0),
        -0.05..=0.2f64,
        -0.05..=0.2f64,
    );
    check(
        "delta one",
        SNAPSHOT_CASES,
        strategy,
        |(dated, settlement, level, years, rate, carry)| {
            let id = underlying_id();
            let instrument = if dated {
                Instrument::Future(
                    FutureContract::new(id, Timestamp::from_millis(EXPIRY_MILLIS))
                        .with_settlement(settlement),
                )
            } else {
                Instrument::Perpetual(PerpetualContract::new(id).with_settlement(settlement))
            };
            let m = Market {
                spot: 10f64.powf(level),
                rate,
                carry,
                vol: 0.5,
                as_of_millis: EXPIRY_MILLIS - (years * MILLIS_PER_YEAR).round() as i64,
            };
            let g = instrument_greeks(&instrument, &m.snapshot())
                .unwrap()
                .native;
            let w = |m: Market| price(&instrument, &m.snapshot()).unwrap();
            let (spot, t) = (m.spot, m.years());
            let spot_h = Input::Spot(2e-3 * spot);
            let time_h = Input::Time(((2e-3 * t) * MILLIS_PER_YEAR).round() as i64);
            let vol_h = Input::Vol(1e-2);
            let expected = g.fields();
            let (by_spot, by_spot2) = d12(&w, m, spot_h);
            let (by_vol, by_vol2) = d12(&w, m, vol_h);
            let got = [
                w(m),
                by_spot,
                by_spot2,
                by_vol,
                d12(&w, m, time_h).0,
                d12(&w, m, Input::Rate(2e-3)).0,
                d11(&w, m, spot_h, vol_h),
                by_vol2,
                d11(&w, m, spot_h, time_h),
            ];
            // Natural units: |value| over spot, time to expiry, 1.00 of vol
            // and min(1, 1/T) of rate.
            let v = g.value.abs();
            let (su, tu, ru) = (spot, t, t.recip().min(1.0));
            let floors = [
                v,
                v / su,
                v / (su * su),
                v,
                v / tu,
                v / ru,
                v / su,
                v,
                v / (su * tu),
            ]
            .map(|x| DELTA_ONE_ABS_FLOOR * x);
            let failures = worst.borrow_mut().compare(
                &expected,
                &got,
                &floors,
                DELTA_ONE_REL_TOL,
                &(dated, settlement, m),
            );
            prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
            // Vol never matters to a delta-one contract.
            prop_assert!(g.vega == 0.0 && g.volga == 0.0 && g.vanna == 0.0);
            Ok(())
        },
    );
    worst.borrow().print();
}
