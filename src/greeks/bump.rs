//! Finite-difference Greeks of the Black-Scholes-Merton / Black-76 kernel:
//! the fallback where no closed form applies, and the test oracle for the
//! closed forms.
//!
//! Only the kernel's *value* is used; every sensitivity is a difference
//! quotient of values at bumped inputs, so an error in a closed-form Greek
//! cannot hide in its bump counterpart.
//!
//! # Stencils
//!
//! With a bump `h` in one input `x` and `f` the value, all of fourth order
//! (error `O(h^4)`), which allows bumps large enough to keep round-off small:
//!
//! * first derivatives: central
//!   `(f(x-2h) - 8f(x-h) + 8f(x+h) - f(x+2h)) / 12h`;
//! * second derivatives: central
//!   `(-f(x-2h) + 16f(x-h) - 30f(x) + 16f(x+h) - f(x+2h)) / 12h^2`;
//! * cross derivatives: the 4-point stencil
//!   `C(h) = (f(++) - f(+-) - f(-+) + f(--)) / 4 h_x h_y`, Richardson
//!   extrapolated: `(4 C(h) - C(2h)) / 3`;
//! * near a domain limit (a bumped input that [`BsInputs::new`] rejects:
//!   `vol + 2h > 10`, `years + 2h > 100`, `|rate +- 2h| > 1`) the one-sided
//!   fourth-order stencils on the valid side,
//!   `(-25f(x) + 48f(x+h) - 36f(x+2h) + 16f(x+3h) - 3f(x+4h)) / 12h` and
//!   `(45f(x) - 154f(x+h) + 214f(x+2h) - 156f(x+3h) + 61f(x+4h) - 10f(x+5h)) / 12h^2`,
//!   and cross derivatives as a one-sided difference of central ones.
//!
//! # Bump sizes
//!
//! The value is a smooth function of `d1`, `d2` and of discount factors.
//! With `sd = vol sqrt(T)`, `m = ln(U/K) + bT`, each bump moves `d1` and
//! `d2` by at most `delta_d = max(c / k, tail / 8)`:
//!
//! * `k = max(1, |d1|, |d2|)`: the Gaussian `e^{-d^2/2}` then changes by a
//!   relative `~c` whatever the moneyness;
//! * `tail = min(|d1|, |d2|) - 10` when `d1, d2` have the same sign (else
//!   0): deep in the money or out of it the Gaussian part is below `1e-22`
//!   of the value, which is flat or linear in `U` and exponential in `T`
//!   and `r`, and bumps need only keep `|d|` above 10;
//! * `c = min(2e-3 R^(1/6), 0.2)`, `R = V / min(V - lower, upper - V)`
//!   the value over its distance to the nearer no-arbitrage bound (`lower =
//!   max(phi (U e^{(b-r)T} - K e^{-rT}), 0)`; `upper = U e^{(b-r)T}` for a
//!   call, `K e^{-rT}` for a put): the stencil's truncation error is
//!   `O(c^4)` relative to the Greek, its round-off `eps V / h^2`, and the
//!   Greeks scale with that distance (the time value, or what is left
//!   below the upper bound at huge `sd`), so `c^6 ~ eps R` balances the two
//!   (`eps^(1/6) ~ 2.5e-3`).
//!
//! With `c' = min(c, 0.01)` for the smooth (linear, exponential) scales:
//!
//! | input | bump `h` |
//! |---|---|
//! | underlying `U` | `U min(c', delta_d sd)` |
//! | vol | `min(delta_d sd / (max(|d1|, |d2|) sqrt(T)), c' vol)` (from `d(d1)/d(sd) = -d2/sd`; the cap also bounds the relative move of the `m/sd` term of `d1, d2` near the money, where the Greeks are small differences) |
//! | years `T` | `min(delta_d / g_T, c' T, c' / |r|, c' / |b - r|)`, `g_T = (|b| T + |m|/2 + sd^2/4) / (sd T)` bounds `|d(d1,2)/dT|` |
//! | rate | `min(c', c' / T, delta_d sd / T)` (the last for BSM only, where `d(d1)/dr = T/sd`) |
//!
//! One set of bumps serves first, second and cross derivatives, so each
//! input's first and second derivatives share their points. Every bump is
//! relative, so `U - 5h`, `vol - 5h` and `T - 5h` stay positive.
//!
//! Accuracy (measured against the closed forms in `tests/properties.rs`
//! over spot/strike `e^[-2, 2]`, vol 1% to 300%, 1 day to 5 years):
//! relative `2e-9` or better on first derivatives and `6e-7` on second and
//! cross derivatives where they are not tiny against the option's size;
//! absolute, about `1e-9` of the option's size per natural unit of the
//! inputs, where they are (far from the money, or deep in a tail where the
//! value is below `1e-22` of the option's size). This needs a kernel value
//! that is smooth to rounding: noise of relative size `e` in the value
//! (from an inexact normal distribution function, say) becomes `e V / h^n`
//! in an `n`-th difference.
//!
//! # Conventions (those of [`black_scholes`])
//!
//! * theta `= -dV/dT` (calendar time passing), with the spot, rate and carry
//!   yield fixed (BSM) or the forward fixed (Black-76: the kernel's
//!   underlying *is* the forward);
//! * rho `= dV/dr` with the spot and carry yield fixed (BSM) or the forward
//!   fixed (Black-76); both are simply the `rate` input bumped;
//! * charm `= d(delta)/dt = -d2V/dU dT`.

use crate::greeks::Greeks;
use crate::instrument::{OptionKind, OptionModel};
use crate::pricing::{BsInputs, black_scholes};

/// Bump scale `c` at `R = 1` (in `d1`/`d2` units and relative units).
const BASE_SCALE: f64 = 2e-3;
/// Largest bump scale `c` after the `R^(1/6)` enlargement.
const MAX_SCALE: f64 = 0.2;
/// Cap on `c` where it scales the smooth (linear, exponential) dependence
/// on `U`, `T` and `r` rather than moves of `d1`, `d2`.
const MAX_SMOOTH_SCALE: f64 = 1e-2;
/// Cap on the value / time value ratio `R`.
const MAX_VALUE_RATIO: f64 = 1e12;
/// Beyond this `|d|` the Gaussian part of the value is negligible.
const TAIL_D: f64 = 10.0;

/// Finite-difference value and Greeks of one option, in the units and
/// conventions of [`black_scholes`] (see [`Greeks`]).
///
/// The value is the kernel's; delta, vega, theta and rho are central first
/// differences; gamma and volga central second differences; vanna and charm
/// extrapolated 4-point cross stencils, all of fourth order. Bumps scale
/// with the option's moneyness, total volatility and time value (module
/// docs); near a domain limit the difference is one-sided. A field whose
/// stencil cannot be evaluated (no side of the input in the domain; not
/// reachable for validated inputs) or is not finite falls back to the
/// closed form, so every field is finite.
///
/// Costs 33 kernel evaluations.
///
/// # Examples
/// ```
/// use portfolio_margin::{BsInputs, OptionKind, OptionModel, black_scholes, bump_greeks};
/// let inputs = BsInputs::new(OptionKind::Call, OptionModel::BlackScholesMerton, 100.0, 105.0, 0.5, 0.25, 0.03, 0.01)?;
/// let (exact, bumped) = (black_scholes(&inputs), bump_greeks(&inputs));
/// assert!((bumped.delta - exact.delta).abs() < 1e-9);
/// assert!((bumped.gamma - exact.gamma).abs() < 1e-9 * exact.gamma);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn bump_greeks(inputs: &BsInputs) -> Greeks {
    let exact = black_scholes(inputs);
    let at = Point::of(inputs);
    let h = bumps(inputs, exact.value);
    let value = |p: Point| p.value(inputs);
    let u = at.underlying;

    let (delta, gamma) = derivatives(&|x| value(at.with_underlying(x)), u, h.underlying);
    let (vega, volga) = derivatives(&|v| value(at.with_vol(v)), at.vol, h.vol);
    let (d_years, _) = derivatives(&|t| value(at.with_years(t)), at.years, h.years);
    let (rho, _) = derivatives(&|r| value(at.with_rate(r)), at.rate, h.rate);
    let vanna = cross(
        &|x, v| value(at.with_underlying(x).with_vol(v)),
        (u, h.underlying),
        (at.vol, h.vol),
    );
    let d_delta_d_years = cross(
        &|x, t| value(at.with_underlying(x).with_years(t)),
        (u, h.underlying),
        (at.years, h.years),
    );

    let or = |bumped: Option<f64>, closed: f64| bumped.filter(|x| x.is_finite()).unwrap_or(closed);
    Greeks {
        value: exact.value,
        delta: or(delta, exact.delta),
        gamma: or(gamma, exact.gamma),
        vega: or(vega, exact.vega),
        theta: or(d_years.map(|d| -d), exact.theta),
        rho: or(rho, exact.rho),
        vanna: or(vanna, exact.vanna),
        volga: or(volga, exact.volga),
        charm: or(d_delta_d_years.map(|d| -d), exact.charm),
    }
}

/// The bumpable inputs of one valuation.
#[derive(Clone, Copy)]
struct Point {
    underlying: f64,
    vol: f64,
    years: f64,
    rate: f64,
}

impl Point {
    fn of(inputs: &BsInputs) -> Point {
        Point {
            underlying: inputs.underlying(),
            vol: inputs.vol(),
            years: inputs.years(),
            rate: inputs.rate(),
        }
    }

    fn with_underlying(self, underlying: f64) -> Point {
        Point { underlying, ..self }
    }
    fn with_vol(self, vol: f64) -> Point {
        Point { vol, ..self }
    }
    fn with_years(self, years: f64) -> Point {
        Point { years, ..self }
    }
    fn with_rate(self, rate: f64) -> Point {
        Point { rate, ..self }
    }

    /// Kernel value at this point (other inputs from `base`); `None` if the
    /// bumped inputs leave the kernel's domain.
    fn value(self, base: &BsInputs) -> Option<f64> {
        BsInputs::new(
            base.kind(),
            base.model(),
            self.underlying,
            base.strike(),
            self.years,
            self.vol,
            self.rate,
            base.carry_yield(),
        )
        .ok()
        .map(|i| black_scholes(&i).value)
        .filter(|v| v.is_finite())
    }
}

/// Bump sizes of the four inputs (see the module docs), for an option
/// worth `value`.
fn bumps(inputs: &BsInputs, value: f64) -> Point {
    let (u, strike, vol, t) = (
        inputs.underlying(),
        inputs.strike(),
        inputs.vol(),
        inputs.years(),
    );
    let (b, r) = (inputs.cost_of_carry(), inputs.rate());
    // Rate of the carry factor e^{(b-r)T} on the underlying.
    let carry_rate = b - r;
    let sd = (vol * t.sqrt()).max(f64::MIN_POSITIVE);
    let m = (u / strike).ln() + b * t;
    let (d1, d2) = (m / sd + 0.5 * sd, m / sd - 0.5 * sd);
    let d_max = d1.abs().max(d2.abs());
    let k = d_max.max(1.0);
    let tail = if d1 * d2 > 0.0 {
        d1.abs().min(d2.abs()) - TAIL_D
    } else {
        0.0
    };
    // Value over its distance to the nearer no-arbitrage bound: round-off is
    // relative to the value, the Greeks scale with that distance.
    let (u_carry, k_df) = (u * (carry_rate * t).exp(), strike * (-r * t).exp());
    let (lower, upper) = match inputs.kind() {
        OptionKind::Call => ((u_carry - k_df).max(0.0), u_carry),
        OptionKind::Put => ((k_df - u_carry).max(0.0), k_df),
    };
    let room = (value - lower).min(upper - value);
    let ratio = if room > 0.0 {
        (value / room).clamp(1.0, MAX_VALUE_RATIO)
    } else {
        MAX_VALUE_RATIO
    };
    let c = (BASE_SCALE * ratio.powf(1.0 / 6.0)).min(MAX_SCALE);
    let move_d = (c / k).max(tail / 8.0);
    // Bumps along the smooth non-Gaussian scales (linear in `U`, exponential
    // in `T` and `r`) need no enlargement beyond this.
    let c_smooth = c.min(MAX_SMOOTH_SCALE);
    // |d(d1)/dT| and |d(d2)/dT| are at most this.
    let g_years = (b.abs() * t + 0.5 * m.abs() + 0.25 * sd * sd) / (sd * t);
    let rate = match inputs.model() {
        OptionModel::BlackScholesMerton => c_smooth.min(c_smooth / t).min(move_d * sd / t),
        OptionModel::Black76 => c_smooth.min(c_smooth / t),
    };
    Point {
        underlying: u * c_smooth.min(move_d * sd),
        vol: (move_d * sd / (d_max.max(f64::MIN_POSITIVE) * t.sqrt())).min(c_smooth * vol),
        years: (move_d / g_years)
            .min(c_smooth * t)
            .min(c_smooth / r.abs())
            .min(c_smooth / carry_rate.abs()),
        rate,
    }
}

/// `(f'(x), f''(x))` from the 5-point central stencils, or the one-sided
/// ones on whichever side `f` is defined.
fn derivatives(f: &dyn Fn(f64) -> Option<f64>, x: f64, h: f64) -> (Option<f64>, Option<f64>) {
    let Some(f0) = f(x) else {
        return (None, None);
    };
    let central = (|| Some((f(x - 2.0 * h)?, f(x - h)?, f(x + h)?, f(x + 2.0 * h)?)))();
    if let Some((m2, m1, p1, p2)) = central {
        return (
            Some((m2 - 8.0 * m1 + 8.0 * p1 - p2) / (12.0 * h)),
            Some((-m2 + 16.0 * m1 - 30.0 * f0 + 16.0 * p1 - p2) / (12.0 * h * h)),
        );
    }
    [h, -h]
        .into_iter()
        .find_map(|s| {
            let [f1, f2, f3, f4, f5] = [1.0, 2.0, 3.0, 4.0, 5.0].map(|j| f(x + j * s));
            let (f1, f2, f3, f4) = (f1?, f2?, f3?, f4?);
            let first = (-25.0 * f0 + 48.0 * f1 - 36.0 * f2 + 16.0 * f3 - 3.0 * f4) / (12.0 * s);
            let second = f5.map(|f5| {
                (45.0 * f0 - 154.0 * f1 + 214.0 * f2 - 156.0 * f3 + 61.0 * f4 - 10.0 * f5)
                    / (12.0 * s * s)
            });
            Some((Some(first), second))
        })
        .unwrap_or((None, None))
}

/// `d2f/dx dy` from the Richardson-extrapolated 4-point stencil, or, if a
/// point is outside the domain, a (possibly one-sided) difference in `y` of
/// central differences in `x`.
fn cross(
    f: &dyn Fn(f64, f64) -> Option<f64>,
    (x, hx): (f64, f64),
    (y, hy): (f64, f64),
) -> Option<f64> {
    let stencil = |s: f64| -> Option<f64> {
        let (dx, dy) = (s * hx, s * hy);
        let corners =
            f(x + dx, y + dy)? - f(x + dx, y - dy)? - f(x - dx, y + dy)? + f(x - dx, y - dy)?;
        Some(corners / (4.0 * dx * dy))
    };
    if let (Some(near), Some(far)) = (stencil(1.0), stencil(2.0)) {
        return Some((4.0 * near - far) / 3.0);
    }
    derivatives(&|y| derivatives(&|x| f(x, y), x, hx).0, y, hy).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{MAX_ABS_RATE, MAX_VOLATILITY, MAX_YEARS};

    /// Relative agreement of bumped and closed-form Greeks ...
    const REL_TOL: f64 = 1e-8;
    /// ... above this floor, in units of the value per unit of each input.
    const ABS_FLOOR: f64 = 1e-9;

    const NAMES: [&str; 9] = [
        "value", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm",
    ];

    /// Compares every field; the floor scales with the option's size over
    /// the moves of the inputs that change the value by O(size): `U min(1,
    /// sd)`, `min(1, sd) / sqrt(T)` of vol, `T`, `min(1, 1/T)` of rate.
    fn check(inputs: &BsInputs) {
        let (e, b) = (black_scholes(inputs), bump_greeks(inputs));
        let (t, sd) = (inputs.years(), inputs.vol() * inputs.years().sqrt());
        let u = inputs.underlying() * sd.min(1.0);
        let v = sd.min(1.0) / t.sqrt();
        let r = t.recip().min(1.0);
        let size = inputs.underlying() + inputs.strike();
        let units = [1.0, u, u * u, v, t, r, u * v, v * v, u * t];
        for (((name, x), y), unit) in NAMES.iter().zip(e.fields()).zip(b.fields()).zip(units) {
            let allowed = REL_TOL * x.abs() + ABS_FLOOR * size / unit;
            assert!(
                (x - y).abs() <= allowed,
                "{name}: closed {x:e}, bumped {y:e}, allowed {allowed:e}, {inputs:?}"
            );
        }
    }

    #[test]
    fn matches_closed_form_on_ordinary_inputs() {
        for kind in [OptionKind::Call, OptionKind::Put] {
            for model in [OptionModel::BlackScholesMerton, OptionModel::Black76] {
                for strike in [60.0, 95.0, 100.0, 140.0] {
                    let i =
                        BsInputs::new(kind, model, 100.0, strike, 0.75, 0.3, 0.04, 0.02).unwrap();
                    check(&i);
                }
            }
        }
    }

    #[test]
    fn one_sided_at_domain_limits() {
        // vol + 2h > 10, years + 2h > 100, rate + 2h > 1, rate - 2h < -1:
        // the one-sided stencils take over and stay accurate.
        let cases = [
            (100.0, 100.0, 1.0, MAX_VOLATILITY, 0.01, 0.0),
            (100.0, 120.0, 0.01, MAX_VOLATILITY, 0.01, 0.0),
            (100.0, 120.0, MAX_YEARS, 0.2, 0.01, 0.0),
            (100.0, 100.0, 0.5, 0.3, MAX_ABS_RATE, 0.0),
            (100.0, 100.0, 0.5, 0.3, -MAX_ABS_RATE, 0.0),
        ];
        for (s, k, t, v, r, q) in cases {
            for model in [OptionModel::BlackScholesMerton, OptionModel::Black76] {
                let i = BsInputs::new(OptionKind::Call, model, s, k, t, v, r, q).unwrap();
                check(&i);
            }
        }
    }

    #[test]
    fn tiny_expiry_and_deep_tails_do_not_panic() {
        use crate::pricing::{MIN_VOLATILITY, MIN_YEARS};
        for t in [MIN_YEARS, 1e-8, 1.0 / 365.0 / 24.0, 1.0] {
            for k in [1e-3, 90.0, 100.0, 110.0, 1e5] {
                for vol in [MIN_VOLATILITY, 0.5, MAX_VOLATILITY] {
                    let i = BsInputs::new(
                        OptionKind::Put,
                        OptionModel::BlackScholesMerton,
                        100.0,
                        k,
                        t,
                        vol,
                        0.05,
                        0.0,
                    )
                    .unwrap();
                    let b = bump_greeks(&i);
                    assert!(b.is_finite(), "{b:?}");
                    assert_eq!(b.value, black_scholes(&i).value);
                }
            }
        }
    }

    #[test]
    fn stencils_fall_back_to_one_side() {
        // f(x) = e^x defined only for x <= 1: derivatives at 1 from the left.
        let f = |x: f64| (x <= 1.0).then_some(x.exp());
        let (d1, d2) = derivatives(&f, 1.0, 1e-3);
        let e = 1f64.exp();
        assert!((d1.unwrap() - e).abs() < 1e-10, "{d1:?}");
        assert!((d2.unwrap() - e).abs() < 1e-6, "{d2:?}");
        // Central: fourth order.
        let (d1, d2) = derivatives(&f, 0.0, 1e-2);
        assert!((d1.unwrap() - 1.0).abs() < 1e-9 && (d2.unwrap() - 1.0).abs() < 1e-8);
        let nowhere = |_: f64| None;
        assert_eq!(derivatives(&nowhere, 0.0, 1e-3), (None, None));
        // Cross: e^{x+2y}, f_xy = 2 e^{x+2y}; one-sided in y at the edge y = 0.
        let g = |x: f64, y: f64| (y <= 0.0).then_some((x + 2.0 * y).exp());
        let c = cross(&g, (0.0, 1e-3), (0.0, 1e-3)).unwrap();
        assert!((c - 2.0).abs() < 1e-6, "{c}");
        let c = cross(&g, (0.0, 1e-2), (-1.0, 1e-2)).unwrap();
        assert!((c - 2.0 * (-2f64).exp()).abs() < 1e-8, "{c}");
    }
}
