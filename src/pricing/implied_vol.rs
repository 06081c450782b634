//! Black implied volatility to machine precision, and a Black price that is
//! accurate relative to its size.
//!
//! Method: P. Jäckel, "Let's Be Rational", *Wilmott* 2015(75), 40-53
//! (preprint 2013, <http://www.jaeckel.org/LetsBeRational.pdf>), written
//! here from the paper's mathematics.
//!
//! Everything is done on the *normalised* Black function of the
//! log-moneyness `x = ln(F/K)` and the total standard deviation
//! `s = sigma sqrt(T)`, with `h = x/s`, `t = s/2`:
//!
//! ```text
//! b(x, s) = e^{x/2} Phi(h + t) - e^{-x/2} Phi(h - t)      (call)
//! Black price = sqrt(F K) b(x, s)
//! ```
//!
//! Put-call parity and the symmetry `b(x, s, put) = b(-x, s, call)` reduce
//! every option to an out-of-the-money call, `x <= 0`, whose price lies in
//! `(0, e^{x/2})`. This module works with `B = b / e^{x/2}`, the price as a
//! fraction of that supremum (of `min(F, K)` for a Black price): since
//! `x = 2ht`, every formula then carries the factor `exp(-(h+t)^2/2)`
//! instead of `exp(-(h^2+t^2)/2)`, and `B` underflows only when the price
//! relative to `min(F, K)` does.
//!
//! * `B` is evaluated (paper, section 2) by an asymptotic expansion when
//!   `h < -10` and `h + t < -9.79`, a Taylor expansion in `t` for
//!   `t < 2 EPSILON^(1/16)`, Black's formula itself when `h + t > 0.85`, and
//!   otherwise by the `erfcx` form
//!   `B = exp(-(h+t)^2/2) [erfcx(-(h+t)/sqrt2) - erfcx((t-h)/sqrt2)] / 2`,
//!   none of which subtracts two nearly equal tail probabilities.
//! * The initial guess (paper, sections 3-4) splits `(0, 1)` at the prices
//!   `B_l < B_c < B_u` of the inflection point `s_c = sqrt(2|x|)` and of the
//!   points where its tangent meets `0` and the supremum. The two middle
//!   branches interpolate `s(beta)` itself with the shape-preserving rational
//!   cubic of Delbourgo & Gregory (1985); the outer branches interpolate the
//!   maps `beta -> f_l(s(beta))`, with
//!   `f_l(s) = 2 pi |x| / (3 sqrt 3) Phi(-|x| / (sqrt 3 s))^3`, and
//!   `beta -> Phi(-s(beta)/2)`, whose inverses are explicit.
//! * Two Householder steps of order four (paper, section 5) follow, on the
//!   objective `1/ln b(s) - 1/ln beta` below `B_l`, on
//!   `ln((1 - beta) / (1 - B(s)))` above `B_u` and on `B(s) - beta` in
//!   between.
//!
//! Where this differs from the paper's own implementation: the scaling by
//! the supremum above; `1 - B` is evaluated directly (as
//! `Phi(-(h+t)) + exp(-(h+t)^2/2) erfcx((t-h)/sqrt2) / 2`), never as a
//! difference, and the target's distance to the upper bound is taken from
//! the caller's `upper - price`; the asymptotic and small-`t` expansions are
//! summed by recurrences rather than fixed polynomials; the lower objective
//! uses closed forms of `ln B` and `B'/B` in the asymptotic regime, so
//! prices whose `B` is subnormal still invert; and a third or later
//! Householder step is taken only if the second one still moved `s` by more
//! than `1e-4` relative, which happens only for `|ln(F/K)|` in the hundreds.

use crate::error::{Error, Result, non_negative, positive};
use crate::instrument::OptionKind;
use crate::math::{erfcx, inverse_norm_cdf, norm_cdf, norm_pdf};
use std::f64::consts::FRAC_1_SQRT_2;

/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `sqrt(pi / 2)`.
const SQRT_PI_OVER_2: f64 = 1.253_314_137_315_500_3;
/// `sqrt(3)`.
const SQRT_3: f64 = 1.732_050_807_568_877_2;
/// `2 pi / (3 sqrt 3)`: scale of the lower-branch map `f_l`.
const LOWER_MAP_SCALE: f64 = 1.209_199_576_156_145_2;
/// Below this `h = x/s` (with `h + t` below it plus [`SMALL_T`]) the
/// asymptotic expansion is used: its smaller argument is then at least 9.79,
/// where about 20 terms reach `f64::EPSILON`.
const ASYMPTOTIC_H: f64 = -10.0;
/// `2 EPSILON^(1/16)`: below this `t = s/2` the Taylor expansion in `t` to
/// order `t^13` is exact to machine precision (the first omitted term is
/// below `EPSILON` times the first).
const SMALL_T: f64 = 0.210_224_103_813_428_6;
/// Above this `h + t` the first term of Black's formula dominates (the price
/// is above ~85% of its supremum) and the formula is used as it stands.
const NORM_CDF_H_PLUS_T: f64 = 0.85;
/// Householder iterations after the rational initial guess (the paper's 2).
const PAPER_ITERATIONS: usize = 2;
/// Safeguard: if the last of those steps still moved `s` by more than this
/// relative amount (an order-4 step of relative size `d` leaves an error of
/// order `d^4`), keep iterating, up to [`MAX_ITERATIONS`] in all. Only
/// extreme moneyness (`|ln(F/K)|` in the hundreds) ever needs it.
const CONVERGED_STEP: f64 = 1e-4;
/// Hard cap on Householder iterations.
const MAX_ITERATIONS: usize = 12;
/// Smallest rational cubic control parameter (the interpolant needs `r > -1`).
const MIN_CONTROL: f64 = -(1.0 - 1.490_116_119_384_765_6e-8);
/// Largest control parameter; beyond it the rational cubic is linear
/// interpolation to machine precision.
const MAX_CONTROL: f64 = 2.0 / (f64::EPSILON * f64::EPSILON);

/// Undiscounted Black price of a European option, accurate relative to its
/// own size however far out of the money and however small the total
/// standard deviation.
///
/// The out-of-the-money part is computed through the normalised Black
/// function of "Let's Be Rational" (see the module documentation), so it does
/// not suffer the cancellation of `F N(d1) - K N(d2)`: a 30-standard-deviation
/// out-of-the-money option is priced to full relative precision, down to the
/// smallest normal `f64`. The in-the-money price is the intrinsic value plus
/// that out-of-the-money part (put-call parity).
///
/// # Accuracy
/// With `h = ln(F/K) / total_std_dev`, the relative error is below
/// `4 (1 + h^2) f64::EPSILON` (measured against 60-digit mpmath references
/// over `|h| <= 38`, `total_std_dev` in `[1e-6, 10]`; see
/// `tests/implied_vol.rs`). The `h^2` is the price's own sensitivity to the
/// last bit of `ln(F/K)`: out of the money the price behaves like
/// `exp(-h^2/2)`, so no `f64` evaluation can do essentially better. Prices
/// are representable down to `f64::MIN_POSITIVE * min(F, K)` (below that
/// they are subnormal, then `0`).
///
/// # Units
/// `forward`, `strike` and the result in the same currency units;
/// `total_std_dev = sigma * sqrt(years)` (dimensionless).
///
/// # Domain
/// `forward` and `strike` finite and positive, `total_std_dev >= 0`: this is
/// a kernel for validated inputs. Outside that, it never panics:
/// `total_std_dev <= 0` gives the intrinsic value, `total_std_dev = +inf`
/// the upper bound (`forward` for a call, `strike` for a put), and a NaN
/// `total_std_dev` or a non-finite or non-positive `forward`/`strike` gives
/// NaN (there is no meaningful price to return).
///
/// # Examples
/// ```
/// use portfolio_margin::{black_price, OptionKind};
/// // At the money: F (2 N(s/2) - 1).
/// let atm = black_price(100.0, 100.0, 0.2, OptionKind::Call);
/// assert!((atm - 7.965_567_455_405_804).abs() < 1e-12);
/// // 30 standard deviations out of the money: about 1e-197, to full
/// // relative precision (F N(d1) - K N(d2) gives 0 here).
/// let otm = black_price(100.0, 100.0 * 6.0_f64.exp(), 0.2, OptionKind::Call);
/// assert!(otm > 1e-199 && otm < 1e-195);
/// ```
pub fn black_price(forward: f64, strike: f64, total_std_dev: f64, kind: OptionKind) -> f64 {
    let valid = |v: f64| v.is_finite() && v > 0.0;
    if !(valid(forward) && valid(strike)) || total_std_dev.is_nan() {
        return f64::NAN;
    }
    let intrinsic = intrinsic_value(forward, strike, kind);
    if total_std_dev <= 0.0 {
        return intrinsic;
    }
    // Out-of-the-money part: sqrt(F K) b(-|x|, s) = min(F, K) B(-|x|, s).
    let x = log_moneyness(forward, strike);
    intrinsic + forward.min(strike) * scaled_black(-x.abs(), total_std_dev)
}

/// Black implied volatility of an undiscounted European option price, to
/// machine precision.
///
/// `price` is the undiscounted (forward) Black price: divide a present value
/// by the discount factor to the payment date first. The inversion follows
/// Jäckel's "Let's Be Rational" (see the module documentation): a rational
/// initial guess and two Householder steps of order four, which reach
/// machine precision for every arbitrage-free price: total standard
/// deviations from `1e-6` up, options 38 standard deviations out of the
/// money, prices down to `1e-300` of `min(F, K)`. (A third step is taken
/// only for `|ln(F/K)|` in the hundreds.)
///
/// # Accuracy
/// The relative error of the volatility is below
/// `4 f64::EPSILON * max(1, price / (s dprice/ds))`, `s = vol sqrt(years)`,
/// measured against 100-digit mpmath inversions of the same `f64` price;
/// the factor is the volatility's own conditioning on the price. It is 1
/// out of the money and near the money, so there the error is a few ulps
/// (at most `4.3e-16` over the reference set); deep in the money it is the
/// ratio of price to time value (digits of `price - intrinsic` are lost to
/// rounding of `price` before this function sees it), and close to the
/// upper bound the inverse of the price's elasticity in volatility.
///
/// # Units
/// `price`, `forward` and `strike` in the same currency units; `years` in
/// year fractions; the result is an annualised decimal volatility.
///
/// # Errors
/// * [`Error::InvalidInput`] if `forward`, `strike` or `years` is not finite
///   and positive, or `price` is negative or not finite.
/// * [`Error::PriceOutsideBounds`] with `bound = "lower (intrinsic)"` if
///   `price <= max(F - K, 0)` for a call or `price <= max(K - F, 0)` for a
///   put: a price *at* intrinsic implies zero volatility, which is not a
///   valid volatility in this crate, so it is rejected too.
/// * [`Error::PriceOutsideBounds`] with `bound = "upper"` if
///   `price >= forward` for a call or `price >= strike` for a put.
/// * [`Error::NoConvergence`] only in the degenerate case where the time
///   value `price - intrinsic` divided by `min(F, K)` underflows to zero
///   (below about `5e-324`). Time values down to that are inverted, with
///   gradually less precision below `f64::MIN_POSITIVE * min(F, K)`.
/// * [`Error::NonFiniteResult`] if the total standard deviation divided by
///   `sqrt(years)` under- or overflows (expiries near the limits of `f64`).
///
/// # Examples
/// ```
/// use portfolio_margin::{black_price, implied_volatility, OptionKind};
/// let (forward, strike, years, vol) = (100_000.0, 120_000.0, 0.25_f64, 0.55);
/// let price = black_price(forward, strike, vol * years.sqrt(), OptionKind::Call);
/// let implied = implied_volatility(price, forward, strike, years, OptionKind::Call)?;
/// assert!((implied - vol).abs() < 1e-15);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn implied_volatility(
    price: f64,
    forward: f64,
    strike: f64,
    years: f64,
    kind: OptionKind,
) -> Result<f64> {
    let (total_std_dev, _) = implied_total_std_dev(price, forward, strike, years, kind)?;
    let vol = total_std_dev / years.sqrt();
    // A positive time value always has a positive total std dev, but the
    // division can still underflow (or overflow) for extreme expiries.
    if vol.is_finite() && vol > 0.0 {
        Ok(vol)
    } else {
        Err(Error::NonFiniteResult {
            what: "implied volatility",
            value: vol,
        })
    }
}

/// [`implied_volatility`] before division by `sqrt(years)`, with the number
/// of Householder iterations used.
fn implied_total_std_dev(
    price: f64,
    forward: f64,
    strike: f64,
    years: f64,
    kind: OptionKind,
) -> Result<(f64, usize)> {
    positive("forward", forward)?;
    positive("strike", strike)?;
    positive("years", years)?;
    non_negative("option price", price)?;
    let intrinsic = intrinsic_value(forward, strike, kind);
    if price <= intrinsic {
        return Err(Error::PriceOutsideBounds {
            price,
            bound: "lower (intrinsic)",
            limit: intrinsic,
        });
    }
    let upper = match kind {
        OptionKind::Call => forward,
        OptionKind::Put => strike,
    };
    if price >= upper {
        return Err(Error::PriceOutsideBounds {
            price,
            bound: "upper",
            limit: upper,
        });
    }
    // Reduce to an out-of-the-money call on x <= 0, as a fraction of its
    // supremum min(F, K): its price is the time value, and its distance to
    // the supremum is (upper - price), both known here without rounding
    // against each other.
    let scale = forward.min(strike);
    let beta = (price - intrinsic) / scale;
    let gap = (upper - price) / scale;
    let x = -log_moneyness(forward, strike).abs();
    if !(beta > 0.0 && gap > 0.0) {
        return Err(Error::NoConvergence {
            what: "implied volatility (time value / min(forward, strike) underflows)",
            iterations: 0,
        });
    }
    let (s, iterations) = solve_scaled(beta, gap, x);
    if s.is_finite() && s > 0.0 {
        Ok((s, iterations))
    } else {
        Err(Error::NoConvergence {
            what: "implied volatility",
            iterations,
        })
    }
}

/// `max(F - K, 0)` for a call, `max(K - F, 0)` for a put.
fn intrinsic_value(forward: f64, strike: f64, kind: OptionKind) -> f64 {
    let value = kind.sign() * (forward - strike);
    if value > 0.0 { value } else { 0.0 }
}

/// `ln(F/K)` to a few ulps *relative*: near the money `ln_1p((F-K)/K)` keeps
/// the exact difference `F - K` (Sterbenz); far from it `ln(F/K)` is already
/// relatively accurate, and `ln F - ln K` avoids overflow of `F/K`.
fn log_moneyness(forward: f64, strike: f64) -> f64 {
    let ratio = forward / strike;
    if (0.5..=2.0).contains(&ratio) {
        ((forward - strike) / strike).ln_1p()
    } else if ratio.is_normal() {
        ratio.ln()
    } else {
        forward.ln() - strike.ln()
    }
}

// ---------------------------------------------------------------------------
// The scaled normalised Black function of an out-of-the-money call, x <= 0:
// B(x, s) = b(x, s) / e^{x/2}, the price as a fraction of its supremum (for
// a Black price, of min(F, K)). As x = 2ht, e^{-x/2} e^{-(h^2+t^2)/2} =
// e^{-(h+t)^2/2}: every branch carries that factor, so B underflows only
// when the price relative to min(F, K) does.
// ---------------------------------------------------------------------------

/// `h = x/s` and `t = s/2`, with `h = 0` at the money (also at `s = 0`).
fn h_and_t(x: f64, s: f64) -> (f64, f64) {
    (if x == 0.0 { 0.0 } else { x / s }, 0.5 * s)
}

/// `exp(-u^2/2)`.
fn gauss(u: f64) -> f64 {
    (-0.5 * u * u).exp()
}

/// `B(x, s) = b(x, s) e^{-x/2}` for `x <= 0`, `s >= 0`, accurate relative
/// to its size.
fn scaled_black(x: f64, s: f64) -> f64 {
    debug_assert!(x <= 0.0);
    if s.is_nan() {
        return f64::NAN;
    }
    if s <= 0.0 {
        return 0.0;
    }
    if s == f64::INFINITY {
        return 1.0;
    }
    let (h, t) = h_and_t(x, s);
    if h < ASYMPTOTIC_H && h + t < ASYMPTOTIC_H + SMALL_T {
        asymptotic_expansion(h, t)
    } else if t < SMALL_T {
        small_t_expansion(h, t)
    } else if h + t > NORM_CDF_H_PLUS_T {
        black_formula(h, t)
    } else {
        erfcx_form(h, t)
    }
}

/// Black's formula itself, `B = Phi(h+t) - e^{-x} Phi(h-t)`, for
/// `h + t > 0.85` where the first term dominates; the second is written in
/// erfcx form so that `e^{-x}` never overflows.
fn black_formula(h: f64, t: f64) -> f64 {
    norm_cdf(h + t) - 0.5 * gauss(h + t) * erfcx((t - h) * FRAC_1_SQRT_2)
}

/// `B = e^{-(h+t)^2/2} [erfcx(-(h+t)/sqrt2) - erfcx(-(h-t)/sqrt2)] / 2`
/// (the paper's erfcx form of the normalised Black function): for
/// `h + t <= 0.85` and `t` not small there is no harmful cancellation.
fn erfcx_form(h: f64, t: f64) -> f64 {
    let b = 0.5 * gauss(h + t) * (erfcx(-(h + t) * FRAC_1_SQRT_2) - erfcx((t - h) * FRAC_1_SQRT_2));
    b.max(0.0)
}

/// Small-`t` Taylor expansion. With `Y(z) = Phi(z)/phi(z)`,
/// `b = phi(h) e^{-t^2/2} [Y(h+t) - Y(h-t)]
///    = phi(h) e^{-t^2/2} 2 sum_{k>=0} Y^{(2k+1)}(h) t^{2k+1}/(2k+1)!`,
/// where `Y' = 1 + hY` and, differentiating that `n` times,
/// `Y^{(n+1)} = h Y^{(n)} + n Y^{(n-1)}`. Terms through `t^13`.
fn small_t_expansion(h: f64, t: f64) -> f64 {
    let y0 = SQRT_PI_OVER_2 * erfcx(-h * FRAC_1_SQRT_2);
    let t2 = t * t;
    let mut previous = y0; // Y^{(n-1)}
    let mut current = 1.0 + h * y0; // Y^{(n)}, n = 1
    let mut factor = t; // t^n / n!
    let mut sum = current * factor;
    for n in 1..13 {
        let next = h * current + n as f64 * previous;
        previous = current;
        current = next;
        if n % 2 == 0 {
            // `current` is Y^{(n+1)}, n + 1 odd.
            factor *= t2 / (n as f64 * (n + 1) as f64);
            sum += current * factor;
        }
    }
    (2.0 * FRAC_1_SQRT_2PI * gauss(h + t) * sum).max(0.0)
}

/// Asymptotic expansion for `h -> -infinity` with `h + t` also far left.
///
/// With `u1 = -(h+t)`, `u2 = t-h` and the Mills ratio
/// `R(u) = Phi(-u)/phi(u) ~ sum_k (-1)^k (2k-1)!! / u^{2k+1}`,
/// `b = phi(h) e^{-t^2/2} [R(u1) - R(u2)]`. Each difference
/// `p^n - q^n` (`p = 1/u1`, `q = 1/u2`) is `(p - q) S_n` with
/// `p - q = 2t/(u1 u2)` and `S_{n+2} = p^2 S_n + q^n (p + q)`, all terms
/// positive: no cancellation however small `t` is.
fn asymptotic_expansion(h: f64, t: f64) -> f64 {
    let u1 = -(h + t);
    let exponent = -0.5 * u1 * u1;
    if exponent.is_nan() || exponent < -746.0 {
        return 0.0;
    }
    (FRAC_1_SQRT_2PI * exponent.exp() * asymptotic_series(h, t)).max(0.0)
}

/// `R(u1) - R(u2)` of [`asymptotic_expansion`], so that
/// `B = e^{-u1^2/2} (R(u1) - R(u2)) / sqrt(2 pi)` and
/// `B'/B = 1 / (R(u1) - R(u2))`.
fn asymptotic_series(h: f64, t: f64) -> f64 {
    let u1 = -(h + t);
    let u2 = t - h;
    let p = 1.0 / u1;
    let q = 1.0 / u2;
    let delta = 2.0 * t * p * q;
    let (p2, q2, p_plus_q) = (p * p, q * q, p + q);
    let mut s_n = 1.0; // S_1
    let mut q_n = q; // q^1
    let mut coefficient = 1.0; // (-1)^k (2k-1)!!
    let mut sum = 1.0;
    for k in 1..40 {
        s_n = p2 * s_n + q_n * p_plus_q;
        q_n *= q2;
        coefficient *= -((2 * k - 1) as f64);
        let term = coefficient * s_n;
        sum += term;
        if term.abs() <= 0.25 * f64::EPSILON * sum {
            break;
        }
    }
    delta * sum
}

/// `(B, ln B, B'/B)` at `(x, s)`. Where `B` is far in the tail (the
/// asymptotic regime) the logarithm and the ratio have closed forms, so
/// they stay exact even where `B` itself underflows.
fn scaled_black_with_log(x: f64, s: f64) -> (f64, f64, f64) {
    let (h, t) = h_and_t(x, s);
    if h < ASYMPTOTIC_H && h + t < ASYMPTOTIC_H + SMALL_T {
        let u1 = -(h + t);
        let series = asymptotic_series(h, t);
        let ln_b = -0.5 * u1 * u1 + (FRAC_1_SQRT_2PI * series).ln();
        (asymptotic_expansion(h, t), ln_b, 1.0 / series)
    } else {
        let b = scaled_black(x, s);
        (b, b.ln(), scaled_vega(x, s) / b)
    }
}

/// `1 - B(x, s) = (e^{x/2} - b) / e^{x/2}` for `x <= 0`, without
/// subtracting: `Phi(-h-t) + e^{-x} Phi(h-t)
/// = Phi(-(h+t)) + e^{-(h+t)^2/2} erfcx((t-h)/sqrt2) / 2`.
fn scaled_complement(x: f64, s: f64) -> f64 {
    let (h, t) = h_and_t(x, s);
    norm_cdf(-(h + t)) + 0.5 * gauss(h + t) * erfcx((t - h) * FRAC_1_SQRT_2)
}

/// `dB/ds = b'(s) e^{-x/2} = exp(-(h+t)^2/2) / sqrt(2 pi)`.
fn scaled_vega(x: f64, s: f64) -> f64 {
    let (h, t) = h_and_t(x, s);
    FRAC_1_SQRT_2PI * gauss(h + t)
}

/// `b''(s) / b'(s) = x^2/s^3 - s/4` and `b'''(s) / b'(s)`.
fn vega_ratios(x: f64, s: f64) -> (f64, f64) {
    let h_over_s = if x == 0.0 { 0.0 } else { x / (s * s) };
    let second = h_over_s * h_over_s * s - 0.25 * s;
    let third = second * second - 3.0 * h_over_s * h_over_s - 0.25;
    (second, third)
}

// ---------------------------------------------------------------------------
// The inversion, in the scaled variable (price as a fraction of its
// supremum) so that relative prices down to the smallest normal f64 invert.
// ---------------------------------------------------------------------------

/// Solves `B(x, s) = beta` for `s > 0`, given `x <= 0`, `0 < beta < 1` and
/// `gap = 1 - beta` (passed separately, exactly as the caller knows it).
/// Returns `s` and the number of Householder iterations.
fn solve_scaled(beta: f64, gap: f64, x: f64) -> (f64, usize) {
    let s_c = (2.0 * x.abs()).sqrt();
    let b_c = scaled_black(x, s_c);
    let v_c = scaled_vega(x, s_c);
    if beta < b_c {
        let s_l = s_c - b_c / v_c;
        let b_l = scaled_black(x, s_l);
        if beta < b_l {
            let s = lower_branch_guess(beta, x, s_l, b_l);
            let ln_beta = 0.5 * x + beta.ln();
            iterate(s, x, Objective::Lower { beta, ln_beta })
        } else {
            // s(beta) on [b_l, b_c]; s'' = -b''/b'^3 vanishes at s_c.
            let cubic = RationalCubic {
                width: b_c - b_l,
                y_l: s_l,
                y_r: s_c,
                d_l: 1.0 / scaled_vega(x, s_l),
                d_r: 1.0 / v_c,
            };
            let r = cubic.control_fit_right(0.0, false);
            let s = cubic.value(beta - b_l, b_c - beta, r);
            iterate(s, x, Objective::Middle { beta })
        }
    } else {
        let s_u = s_c + scaled_complement(x, s_c) / v_c;
        let b_u = scaled_black(x, s_u);
        if beta <= b_u {
            let cubic = RationalCubic {
                width: b_u - b_c,
                y_l: s_c,
                y_r: s_u,
                d_l: 1.0 / v_c,
                d_r: 1.0 / scaled_vega(x, s_u),
            };
            let r = cubic.control_fit_left(0.0, false);
            let s = cubic.value(beta - b_c, b_u - beta, r);
            iterate(s, x, Objective::Middle { beta })
        } else {
            let s = upper_branch_guess(beta, gap, x, s_u, b_u);
            iterate(s, x, Objective::Upper { gap })
        }
    }
}

/// Initial guess for `beta < b_l`: interpolate `F(beta) = f_l(s(beta))`,
/// `f_l(s) = 2 pi |x| / (3 sqrt 3) Phi(z)^3`, `z = -|x| / (sqrt 3 s)`, on
/// `[0, b_l]` (`F(0) = 0`, `F'(0) = 1`, as `b ~ f_l` when `s -> 0`), then
/// invert `f_l` explicitly. Scaled like `B`: `f_l e^{-x/2}` uses
/// `(Phi(z) e^{|x|/6})^3`.
fn lower_branch_guess(beta: f64, x: f64, s_l: f64, b_l: f64) -> f64 {
    let ax = x.abs();
    let e6 = (ax / 6.0).exp();
    let v_l = scaled_vega(x, s_l);
    let z = x / (SQRT_3 * s_l);
    let (cdf, pdf) = (norm_cdf(z), norm_pdf(z));
    let (cdf6, pdf6) = (cdf * e6, pdf * e6);
    let scale = LOWER_MAP_SCALE * ax;
    let f_l = scale * cdf6 * cdf6 * cdf6;
    // df_l/ds = 2 pi x^2 / (3 s^2) Phi^2 phi;
    // d2f_l/ds2 = df_l/ds / s * (z^2 - 2 z phi/Phi - 2).
    let f_ds = std::f64::consts::TAU * x * x / (3.0 * s_l * s_l) * cdf6 * cdf6 * pdf6;
    let f_dss = f_ds / s_l * (z * z - 2.0 * z * pdf / cdf - 2.0);
    let (b_ss, _) = vega_ratios(x, s_l);
    // Derivatives of F with respect to beta (chain rule, dB/ds = v_l).
    let d_r = f_ds / v_l;
    let second_r = (f_dss - d_r * v_l * b_ss) / (v_l * v_l);
    let cubic = RationalCubic {
        width: b_l,
        y_l: 0.0,
        y_r: f_l,
        d_l: 1.0,
        d_r,
    };
    let r = cubic.control_fit_right(second_r, true);
    let f = cubic
        .value(beta, b_l - beta, r)
        .clamp(f64::MIN_POSITIVE, f_l);
    let z = inverse_norm_cdf((f / scale).cbrt() / e6);
    x / (SQRT_3 * z)
}

/// Initial guess for `beta > b_u`: interpolate `F(beta) = Phi(-s(beta)/2)`
/// on `[b_u, 1]` (`F -> 0` with slope `-e^{x/2}/2` at the top, since
/// `e^{x/2} - b ~ 2 Phi(-s/2)` as `s -> infinity`), then `s = -2 Phi^{-1}(F)`.
fn upper_branch_guess(beta: f64, gap: f64, x: f64, s_u: f64, b_u: f64) -> f64 {
    let v_u = scaled_vega(x, s_u);
    let f_u = norm_cdf(-0.5 * s_u);
    let pdf = norm_pdf(0.5 * s_u);
    let f_ds = -0.5 * pdf;
    let f_dss = 0.125 * s_u * pdf;
    let (b_ss, _) = vega_ratios(x, s_u);
    let d_l = f_ds / v_u;
    let second_l = (f_dss - d_l * v_u * b_ss) / (v_u * v_u);
    let cubic = RationalCubic {
        width: scaled_complement(x, s_u),
        y_l: f_u,
        y_r: 0.0,
        d_l,
        d_r: -0.5 * (0.5 * x).exp(),
    };
    let r = cubic.control_fit_left(second_l, true);
    let f = cubic
        .value(beta - b_u, gap, r)
        .clamp(f64::MIN_POSITIVE, f_u);
    -2.0 * inverse_norm_cdf(f)
}

/// The objective the Householder steps solve, per branch (paper, section 5),
/// in terms of the scaled price `B` and target `beta`.
#[derive(Clone, Copy)]
enum Objective {
    /// `g = 1/ln b(s) - 1/ln b_target` (unscaled `b = e^{x/2} B`), nearly
    /// linear in `1/s` for small prices; `ln_beta = x/2 + ln beta`.
    Lower { beta: f64, ln_beta: f64 },
    /// `g = B(s) - beta`.
    Middle { beta: f64 },
    /// `g = ln(gap / (1 - B(s)))`, `gap = 1 - beta`.
    Upper { gap: f64 },
}

/// Householder steps of order four: with `nu = -g/g'`, `g2 = g''/g'`,
/// `g3 = g'''/g'`, the step is `nu (1 + g2 nu / 2) / (1 + nu (g2 + g3 nu / 6))`.
/// For `g = G(b(s))`: `g2 = (G''/G') b' + b''/b'` and
/// `g3 = (G'''/G') b'^2 + 3 (G''/G') b'' + b'''/b'`.
fn iterate(mut s: f64, x: f64, objective: Objective) -> (f64, usize) {
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        if !(s.is_finite() && s > 0.0) {
            break;
        }
        let vega = scaled_vega(x, s);
        let (b_ss, b_sss) = vega_ratios(x, s);
        let (newton, g2, g3) = match objective {
            Objective::Lower { beta, ln_beta } => {
                let (b, ln_b_scaled, bpob) = scaled_black_with_log(x, s);
                if !(ln_b_scaled.is_finite() && bpob.is_finite() && bpob > 0.0) {
                    break;
                }
                // G = 1/L, L = ln b: G''/G' = -(1 + 2/L)/b,
                // G'''/G' = (2 + 6/L + 6/L^2)/b^2.
                let ln_b = 0.5 * x + ln_b_scaled;
                // ln(beta/b), by division where both are normal numbers.
                let log_ratio = if b >= f64::MIN_POSITIVE && beta >= f64::MIN_POSITIVE {
                    (beta / b).ln()
                } else {
                    (ln_beta - 0.5 * x) - ln_b_scaled
                };
                let newton = log_ratio * ln_b / (ln_beta * bpob);
                let k = 1.0 + 2.0 / ln_b;
                let g2 = b_ss - bpob * k;
                let g3 = b_sss + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                    - 3.0 * b_ss * bpob * k;
                (newton, g2, g3)
            }
            Objective::Middle { beta } => {
                if vega.is_nan() || vega <= 0.0 {
                    break;
                }
                let b = scaled_black(x, s);
                ((beta - b) / vega, b_ss, b_sss)
            }
            Objective::Upper { gap } => {
                // G = -ln(1 - B): G''/G' = 1/c, G'''/G' = 2/c^2, c = 1 - B.
                let c = scaled_complement(x, s);
                if !(c > 0.0 && vega > 0.0) {
                    break;
                }
                let gp = vega / c;
                let newton = -(gap / c).ln() / gp;
                (newton, b_ss + gp, b_sss + gp * (2.0 * gp + 3.0 * b_ss))
            }
        };
        let step = newton * (1.0 + 0.5 * g2 * newton) / (1.0 + newton * (g2 + g3 * newton / 6.0));
        if !step.is_finite() {
            break;
        }
        let relative_step = (step / s).abs();
        s += step.max(-0.5 * s);
        iterations += 1;
        if relative_step <= f64::EPSILON
            || (iterations >= PAPER_ITERATIONS && relative_step <= CONVERGED_STEP)
        {
            break;
        }
    }
    (s, iterations)
}

// ---------------------------------------------------------------------------
// Rational cubic interpolation (Delbourgo & Gregory 1985, "Shape preserving
// piecewise rational interpolation", SIAM J. Sci. Stat. Comput. 6(4); the
// paper, section 3).
// ---------------------------------------------------------------------------

/// Interval data of a rational cubic: values `y_l`, `y_r` and slopes `d_l`,
/// `d_r` at the ends of an interval of width `width`.
#[derive(Clone, Copy, Debug)]
struct RationalCubic {
    width: f64,
    y_l: f64,
    y_r: f64,
    d_l: f64,
    d_r: f64,
}

impl RationalCubic {
    /// The interpolant with control parameter `r` (`r = 3` is the cubic
    /// Hermite spline, `r -> infinity` linear interpolation) at the point
    /// `from_left = x - x_l`, `from_right = x_r - x`:
    /// `[y_r s^3 + (r y_r - w d_r) s^2 u + (r y_l + w d_l) s u^2 + y_l u^3]
    ///  / [1 + (r - 3) s u]`, `s = from_left / w`, `u = from_right / w`.
    /// Both distances are passed so either end is resolved to full relative
    /// precision.
    fn value(&self, from_left: f64, from_right: f64, r: f64) -> f64 {
        let Self {
            width,
            y_l,
            y_r,
            d_l,
            d_r,
        } = *self;
        let s = from_left / width;
        let u = from_right / width;
        if r >= MAX_CONTROL || width.is_nan() || width <= 0.0 {
            return y_r * s + y_l * u;
        }
        let numerator = y_r * s * s * s
            + (r * y_r - width * d_r) * s * s * u
            + (r * y_l + width * d_l) * s * u * u
            + y_l * u * u * u;
        numerator / (1.0 + (r - 3.0) * s * u)
    }

    /// Mean slope `(y_r - y_l) / w`.
    fn secant(&self) -> f64 {
        (self.y_r - self.y_l) / self.width
    }

    /// Control parameter giving second derivative `second` at the left end,
    /// raised to the shape-preserving minimum. At the left end
    /// `f'' = (2/w) [r (delta - d_l) - (d_r - d_l)]`, `delta` the secant.
    fn control_fit_left(&self, second: f64, prefer_shape: bool) -> f64 {
        let numerator = 0.5 * self.width * second + (self.d_r - self.d_l);
        self.fitted_control(numerator, self.secant() - self.d_l, prefer_shape)
    }

    /// As [`Self::control_fit_left`] at the right end, where
    /// `f'' = (2/w) [r (d_r - delta) - (d_r - d_l)]`.
    fn control_fit_right(&self, second: f64, prefer_shape: bool) -> f64 {
        let numerator = 0.5 * self.width * second + (self.d_r - self.d_l);
        self.fitted_control(numerator, self.d_r - self.secant(), prefer_shape)
    }

    fn fitted_control(&self, numerator: f64, denominator: f64, prefer_shape: bool) -> f64 {
        let fitted = if denominator != 0.0 {
            numerator / denominator
        } else if numerator > 0.0 {
            MAX_CONTROL
        } else {
            MIN_CONTROL
        };
        let r = fitted.max(self.minimum_control(prefer_shape));
        if r.is_nan() {
            MAX_CONTROL
        } else {
            r.min(MAX_CONTROL)
        }
    }

    /// Smallest control parameter keeping the interpolant monotone
    /// (`r >= (d_l + d_r)/delta`) and convex or concave
    /// (`r >= (d_r - d_l)/(d_r - delta)` and `r >= (d_r - d_l)/(delta - d_l)`,
    /// which give both end second derivatives the data's sign) when the data
    /// are. Where a condition cannot hold, `prefer_shape` chooses linear
    /// interpolation over smoothness.
    fn minimum_control(&self, prefer_shape: bool) -> f64 {
        let (d_l, d_r, delta) = (self.d_l, self.d_r, self.secant());
        let monotonic = d_l * delta >= 0.0 && d_r * delta >= 0.0;
        let convex = d_l <= delta && delta <= d_r;
        let concave = d_l >= delta && delta >= d_r;
        if !monotonic && !convex && !concave {
            return MIN_CONTROL;
        }
        let mut r1 = f64::NEG_INFINITY;
        if monotonic {
            if delta != 0.0 {
                r1 = (d_r + d_l) / delta;
            } else if prefer_shape {
                r1 = MAX_CONTROL;
            }
        }
        let mut r2 = f64::NEG_INFINITY;
        if convex || concave {
            let (left, right) = (delta - d_l, d_r - delta);
            if left != 0.0 && right != 0.0 {
                let spread = d_r - d_l;
                r2 = (spread / right).abs().max((spread / left).abs());
            } else if prefer_shape {
                r2 = MAX_CONTROL;
            }
        } else if monotonic && prefer_shape {
            r2 = MAX_CONTROL;
        }
        MIN_CONTROL.max(r1).max(r2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = f64::EPSILON;
    /// Round trip (price evaluation, then inversion): relative error in `s`
    /// at most this many EPSILON times the conditioning (floored at 1):
    /// `min(B, 1 - B) / (s B')` normalised, `price / (s dprice/ds)` for
    /// prices. Measured maximum 7.3, just above the small-t threshold at the
    /// money where the erfcx form cancels by a factor ~3.
    const ROUND_TRIP_EPS_PER_CONDITION: f64 = 12.0;
    /// Two evaluation branches at a shared boundary: relative difference at
    /// most this many EPSILON times `1 + h^2` (the conditioning of `B`).
    const BRANCH_EPS_PER_H2: f64 = 8.0;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn constants_match_their_definitions() {
        use std::f64::consts::{PI, TAU};
        assert!(rel(FRAC_1_SQRT_2PI, 1.0 / TAU.sqrt()) <= EPS);
        assert!(rel(SQRT_PI_OVER_2, (PI / 2.0).sqrt()) <= EPS);
        assert!(rel(SQRT_3, 3.0_f64.sqrt()) <= EPS);
        assert!(rel(LOWER_MAP_SCALE, TAU / (3.0 * 3.0_f64.sqrt())) <= EPS);
        assert!(rel(SMALL_T, 2.0 * EPS.powf(1.0 / 16.0)) <= EPS);
    }

    /// Deterministic pseudo-random numbers in [0, 1) (SplitMix64).
    fn uniforms(seed: u64) -> impl Iterator<Item = f64> {
        let mut state = seed;
        std::iter::repeat_with(move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / 2f64.powi(64)
        })
    }

    /// Increasing convex data: slopes `d_l < secant < d_r`, all positive.
    fn convex_cubic(u: &mut impl Iterator<Item = f64>) -> RationalCubic {
        let mut next = || u.next().unwrap();
        let width = 0.1 + 3.0 * next();
        let secant = 0.1 + 2.0 * next();
        RationalCubic {
            width,
            y_l: next() - 0.5,
            y_r: 0.0,
            d_l: secant * next(),
            d_r: secant * (1.0 + 3.0 * next()),
        }
        .with_secant(secant)
    }

    impl RationalCubic {
        fn with_secant(mut self, secant: f64) -> Self {
            self.y_r = self.y_l + secant * self.width;
            self
        }
        fn at(&self, from_left: f64, r: f64) -> f64 {
            self.value(from_left, self.width - from_left, r)
        }
    }

    #[test]
    fn rational_cubic_meets_end_values_slopes_and_fitted_curvature() {
        let mut u = uniforms(1);
        for _ in 0..200 {
            let c = convex_cubic(&mut u);
            let target = 4.0 * (c.secant() - c.d_l) / c.width * (1.0 + 3.0 * u.next().unwrap());
            let r = c.control_fit_left(target, false);
            let w = c.width;
            assert!(rel(c.at(0.0, r), c.y_l) <= 4.0 * EPS || c.at(0.0, r) == c.y_l);
            assert!((c.at(w, r) - c.y_r).abs() <= 4.0 * EPS * c.y_r.abs().max(1.0));
            // Second-order one-sided differences; the interpolant's
            // steepness grows with r.
            let slope_at = |end: f64, direction: f64| {
                let d = 1e-4 * w / r.max(1.0);
                let f = |k: f64| c.at(end + direction * k * d, r);
                direction * (-3.0 * f(0.0) + 4.0 * f(1.0) - f(2.0)) / (2.0 * d)
            };
            let (slope_l, slope_r) = (slope_at(0.0, 1.0), slope_at(w, -1.0));
            assert!(
                (slope_l - c.d_l).abs() <= 1e-5 * c.d_r,
                "{slope_l} vs {}",
                c.d_l
            );
            assert!(
                (slope_r - c.d_r).abs() <= 1e-5 * c.d_r,
                "{slope_r} vs {}",
                c.d_r
            );
            // The fitted second derivative is met unless the shape-preserving
            // minimum overrode it (one-sided differences, Richardson-
            // extrapolated; the steepness of the interpolant grows with r).
            let second_at = |end: f64, direction: f64, r: f64| {
                let d = 1e-3 * w / r.max(1.0);
                let f = |k: f64| c.at(end + direction * k * d, r);
                let coarse = (f(0.0) - 2.0 * f(2.0) + f(4.0)) / (4.0 * d * d);
                let fine = (f(0.0) - 2.0 * f(1.0) + f(2.0)) / (d * d);
                2.0 * fine - coarse
            };
            if r > c.minimum_control(false) && r < 100.0 {
                let second = second_at(0.0, 1.0, r);
                assert!(
                    rel(second, target) <= 1e-3,
                    "{second} vs {target} (r = {r})"
                );
            }
            let target_r = 4.0 * (c.d_r - c.secant()) / w * (1.0 + 3.0 * u.next().unwrap());
            let r = c.control_fit_right(target_r, false);
            if r > c.minimum_control(false) && r < 100.0 {
                let second = second_at(w, -1.0, r);
                assert!(
                    rel(second, target_r) <= 1e-3,
                    "{second} vs {target_r} (r = {r})"
                );
            }
        }
    }

    #[test]
    fn minimum_control_keeps_monotone_convex_data_monotone_and_convex() {
        let mut u = uniforms(2);
        for _ in 0..500 {
            let c = convex_cubic(&mut u);
            let r = c.minimum_control(true);
            let n = 400;
            let values: Vec<f64> = (0..=n)
                .map(|i| c.at(c.width * i as f64 / n as f64, r))
                .collect();
            let scale = c.y_r.abs().max(c.y_l.abs()).max(1.0);
            for pair in values.windows(2) {
                assert!(pair[1] >= pair[0] - 8.0 * EPS * scale, "{c:?} r={r}");
            }
            for triple in values.windows(3) {
                let second = triple[0] - 2.0 * triple[1] + triple[2];
                assert!(second >= -1e-12 * scale, "{c:?} r={r}: {second:e}");
            }
        }
    }

    #[test]
    fn evaluation_branches_agree_at_their_boundaries() {
        let check = |a: f64, b: f64, h: f64, what: &str| {
            let tolerance = BRANCH_EPS_PER_H2 * EPS * (1.0 + h * h);
            assert!(rel(a, b) <= tolerance, "{what} at h={h}: {a:e} vs {b:e}");
        };
        for i in 0..=40 {
            let h = -10.0 * i as f64 / 40.0;
            // Taylor expansion in t vs erfcx form at t = SMALL_T.
            let t = SMALL_T;
            check(small_t_expansion(h, t), erfcx_form(h, t), h, "small t");
            // Black's formula vs erfcx form at h + t = 0.85.
            let t = NORM_CDF_H_PLUS_T - h;
            check(black_formula(h, t), erfcx_form(h, t), h, "h + t = 0.85");
        }
        for i in 0..=40 {
            // Asymptotic expansion vs erfcx form and small-t expansion where
            // h + t = -9.79 and h < -10.
            let h = -10.0 - 27.0 * i as f64 / 40.0;
            let t = ASYMPTOTIC_H + SMALL_T - h;
            check(
                asymptotic_expansion(h, t),
                erfcx_form(h, t),
                h,
                "asymptotic",
            );
            let t = 0.5 * SMALL_T;
            check(
                asymptotic_expansion(h, t),
                small_t_expansion(h, t),
                h,
                "asymptotic, small t",
            );
        }
    }

    #[test]
    fn price_and_complement_sum_to_one() {
        for s in [1e-6, 1e-3, 0.1, 0.5, 1.0, 3.0, 10.0, 40.0] {
            for x in [0.0, -1e-8, -0.01, -0.5, -1.0, -5.0, -20.0, -200.0] {
                let sum = scaled_black(x, s) + scaled_complement(x, s);
                assert!((sum - 1.0).abs() <= 4.0 * EPS, "x={x} s={s}: {sum}");
            }
        }
    }

    #[test]
    fn limits_of_the_normalised_price() {
        assert_eq!(scaled_black(-1.0, 0.0), 0.0);
        assert_eq!(scaled_black(0.0, 0.0), 0.0);
        assert_eq!(scaled_black(-1.0, f64::INFINITY), 1.0);
        assert_eq!(scaled_black(-1.0, 1e-300), 0.0);
        assert_eq!(scaled_black(-1.0, 1e300), 1.0);
        assert!(scaled_black(-1.0, f64::NAN).is_nan());
        // At the money B = 2 Phi(s/2) - 1 = erf(s / (2 sqrt 2)).
        let s = 0.4;
        assert!(rel(scaled_black(0.0, s), 0.158_519_418_878_206_1) <= 2.0 * EPS);
    }

    /// Normalised round trip `s -> B -> s` over ln(F/K) in [-10, 0] absolute
    /// and up to 38 standard deviations scaled, `s` in [1e-6, 20]: error and
    /// Householder iterations (calls and puts are the same by symmetry).
    #[test]
    fn round_trip_error_and_iteration_counts() {
        let mut histogram = [0_usize; MAX_ITERATIONS + 1];
        let mut worst = (0.0_f64, 0.0, 0.0);
        let mut cases = 0;
        for i in 0..=60 {
            let s = 1e-6 * (2e7_f64).powf(i as f64 / 60.0);
            let scaled = (0..=76).map(|k| -0.5 * k as f64 * s);
            let absolute = (0..=40).map(|k| -0.25 * k as f64);
            for x in scaled.chain(absolute) {
                let b = scaled_black(x, s);
                let c = scaled_complement(x, s);
                if b < f64::MIN_POSITIVE || c < f64::MIN_POSITIVE {
                    continue; // not representable as a price
                }
                let (implied, iterations) = solve_scaled(b, c, x);
                let condition = (b.min(c) / (s * scaled_vega(x, s))).max(1.0);
                let error = rel(implied, s) / (EPS * condition);
                assert!(
                    error <= ROUND_TRIP_EPS_PER_CONDITION,
                    "x={x} s={s}: implied {implied}, {error} EPS x condition {condition}"
                );
                if error > worst.0 {
                    worst = (error, x, s);
                }
                histogram[iterations] += 1;
                cases += 1;
                if s <= 5.0 && x >= -200.0 {
                    assert!(iterations <= PAPER_ITERATIONS, "x={x} s={s}: {iterations}");
                }
            }
        }
        println!(
            "{cases} cases; max error {:.2} EPS x condition at x={}, s={}; iterations {histogram:?}",
            worst.0, worst.1, worst.2
        );
    }

    #[test]
    fn public_round_trip_error_and_iteration_counts_both_kinds() {
        // The brief's grid: ln(F/K) in [-10, 10] absolute and scaled (up to
        // 30 standard deviations), s in [1e-5, 5], calls and puts, F = 100.
        let forward = 100.0_f64;
        let mut histogram = [0_usize; MAX_ITERATIONS + 1];
        let (mut worst, mut worst_plain) = (0.0_f64, 0.0_f64);
        for i in 0..=50 {
            let s = 1e-5 * (5e5_f64).powf(i as f64 / 50.0);
            let scaled = (-60..=60).map(|k| 0.5 * k as f64 * s);
            let absolute = (-40..=40).map(|k| 0.25 * k as f64);
            for x in scaled.chain(absolute) {
                let strike = forward * (-x).exp();
                for kind in [OptionKind::Call, OptionKind::Put] {
                    let price = black_price(forward, strike, s, kind);
                    let intrinsic = intrinsic_value(forward, strike, kind);
                    let relative_time_value = (price - intrinsic) / forward.min(strike);
                    if relative_time_value.is_nan() || relative_time_value < f64::MIN_POSITIVE {
                        // Time value rounded away, or subnormal relative to
                        // min(F, K): the price itself has lost its digits.
                        continue;
                    }
                    let (implied, iterations) =
                        implied_total_std_dev(price, forward, strike, 1.0, kind).unwrap();
                    let d1 = x / s + 0.5 * s;
                    let condition = (price / (s * forward * norm_pdf(d1))).max(1.0);
                    let error = rel(implied, s);
                    assert!(
                        error <= ROUND_TRIP_EPS_PER_CONDITION * EPS * condition,
                        "x={x} s={s} {kind:?}: {implied} (condition {condition})"
                    );
                    worst = worst.max(error / (EPS * condition));
                    if condition <= 1.0 {
                        worst_plain = worst_plain.max(error);
                    }
                    histogram[iterations] += 1;
                    assert!(iterations <= PAPER_ITERATIONS);
                }
            }
        }
        println!(
            "max error {worst:.2} EPS x condition; where condition = 1: {worst_plain:e}; \
             iterations {histogram:?}"
        );
    }

    #[test]
    fn tiny_and_subnormal_normalised_prices_invert() {
        for x in [-1.0, -10.0, -100.0] {
            for beta in [1e-100, 1e-300, 1e-310, 1e-320] {
                let (s, _) = solve_scaled(beta, 1.0, x);
                assert!(s.is_finite() && s > 0.0, "x={x} beta={beta}");
                let back = scaled_black(x, s);
                let tolerance = if beta >= f64::MIN_POSITIVE {
                    1e-12
                } else {
                    1e-2
                };
                assert!(rel(back, beta) <= tolerance, "x={x} beta={beta}: {back:e}");
            }
        }
    }

    #[test]
    fn extreme_moneyness_still_converges() {
        for x in [-300.0_f64, -700.0, -1300.0] {
            for s in [0.3 * (-x).sqrt(), (-2.0 * x).sqrt(), 40.0] {
                let (b, c) = (scaled_black(x, s), scaled_complement(x, s));
                if b < f64::MIN_POSITIVE {
                    continue;
                }
                let (implied, iterations) = solve_scaled(b, c, x);
                let condition = (b.min(c) / (s * scaled_vega(x, s))).max(1.0);
                assert!(
                    rel(implied, s) <= 16.0 * EPS * condition,
                    "x={x} s={s}: {implied} after {iterations}"
                );
            }
        }
    }

    #[test]
    fn black_price_edge_inputs() {
        use OptionKind::{Call, Put};
        assert_eq!(black_price(120.0, 100.0, 0.0, Call), 20.0);
        assert_eq!(black_price(120.0, 100.0, -1.0, Put), 0.0);
        assert_eq!(black_price(120.0, 100.0, f64::INFINITY, Call), 120.0);
        assert_eq!(black_price(120.0, 100.0, f64::INFINITY, Put), 100.0);
        assert!(black_price(120.0, 100.0, f64::NAN, Call).is_nan());
        assert!(black_price(-1.0, 100.0, 0.2, Call).is_nan());
        assert!(black_price(f64::NAN, 100.0, 0.2, Call).is_nan());
        assert!(black_price(100.0, f64::INFINITY, 0.2, Put).is_nan());
        // Extreme but valid inputs give finite prices within the bounds.
        for (forward, strike) in [(1e300, 1e-300), (1e-300, 1e300), (f64::MAX, 1.0)] {
            for s in [1e-300, 1e-3, 1.0, 1e3, 1e300] {
                for kind in [Call, Put] {
                    let p = black_price(forward, strike, s, kind);
                    let upper = if kind == Call { forward } else { strike };
                    assert!(
                        p.is_finite() && p >= 0.0 && p <= upper,
                        "{forward} {strike} {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn log_moneyness_is_relatively_accurate_near_the_money() {
        // ln(1 + 2^-40) = 2^-40 - 2^-81 + ...: a plain ln(F/K) would keep
        // only ~12 significant digits here.
        let forward = 1.0 + 2f64.powi(-40);
        let x = log_moneyness(forward, 1.0);
        let exact = 2f64.powi(-40) - 2f64.powi(-81);
        assert!(rel(x, exact) <= EPS);
        assert_eq!(
            log_moneyness(1e300, 1e-300),
            1e300_f64.ln() - 1e-300_f64.ln()
        );
    }
}
