//! Error function and standard normal density, distribution and quantile, with
//! relative accuracy of a few ulp deep into the tails.
//!
//! # Sources
//!
//! - [`erf`], [`erfc`], [`erfcx`]: W. J. Cody, "Rational Chebyshev
//!   approximations for the error function", *Mathematics of Computation* 23
//!   (1969), 631-637, as coded in his SPECFUN routine `CALERF` (W. J. Cody,
//!   "Algorithm 715: SPECFUN", *ACM TOMS* 19 (1993), 22-32; netlib
//!   `specfun/erf`). Coefficients and region boundaries (0.46875, 4) are
//!   Cody's.
//! - [`norm_cdf`]: Cody's `ANORM` from the same package (Algorithm 715), the
//!   1969 approximations re-derived for `Phi(x)` directly, so the argument
//!   never goes through the inexact `x / sqrt(2)`. Region boundaries
//!   (0.66291, `sqrt(32)`) and coefficients are Cody's.
//! - [`inverse_norm_cdf`]: M. J. Wichura, "Algorithm AS 241: The percentage
//!   points of the normal distribution", *Applied Statistics* 37 (1988),
//!   477-484 (`PPND16`, about 1e-16 relative).
//!
//! # The `exp(-x^2)` factor
//!
//! In the tails every function is `exp(-x^2) * R(x)` (or `exp(-x^2/2)`) with
//! `R` a rational function of modest size. Evaluating `exp(-x * x)` directly
//! multiplies the rounding error of `x * x` by `x^2`: at `x = 26` that is
//! hundreds of ulp. Cody avoids this by splitting `x^2 = xsq^2 + del` with
//! `xsq = trunc(16 x) / 16`, so that `exp(-xsq^2)` has an exact argument and
//! only the small `del` carries rounding error. That still leaves an error of
//! about `|del| * eps` in the exponent (up to `x / 8` units of `eps`: 2-5 ulp
//! near `x = 38` for `Phi`) and costs two `exp` calls. This module carries
//! the same idea to its limit: `x^2 = hi + lo` exactly, where
//! `hi = fl(x * x)` and `lo` comes from Dekker's exact product (Veltkamp
//! split, no FMA needed), and `exp(-x^2) = exp(-hi) * (1 - lo)` to within
//! `lo^2 / 2 < 1e-26` relative. One `exp` call, no argument error.
//!
//! # Evaluating the rationals
//!
//! Cody's degree-8 rationals for `0.46875 < x <= 4` (`erfc`) and
//! `0.66291 < x <= sqrt(32)` (`Phi`) have an approximation error of 0.24 ulp,
//! but evaluating them as Cody does (two Horner loops and a division) adds
//! up to 4.9 ulp of rounding error, which made those regions the least
//! accurate (5.1 ulp for `Phi`, 6.5 ulp for `erfc`). They are evaluated here
//! by Estrin's scheme (shorter dependency chains than Horner) whose upper
//! additions keep their rounding errors (TwoSum), plus one correction step
//! of the quotient: 2.1 ulp of evaluation error for about 1.2 times the
//! cost of Cody's loop (full compensated Horner would cost 4 times). The
//! asymptotic forms `(c - r(1/x^2)) / x` likewise keep the errors
//! of the subtraction and the division, and the `(1 - lo)` factor of
//! `exp(-x^2)` joins those corrections before the single final rounding.
//! Coefficients are Cody's, unchanged. The error-free transformations are
//! exact, so results are bit-identical with or without FMA hardware
//! (checked on 12 million outputs).
//!
//! # Accuracy
//!
//! Measured figures are in the `math` module docs (`src/math/mod.rs`).

// Coefficients are transcribed digit for digit from the published tables
// (Cody 1969/1993, Wichura 1988) so they can be checked against them; the
// compiler rounds each to the nearest f64.
#![allow(clippy::excessive_precision)]

use crate::error::{Error, Result};

/// `1 / sqrt(pi)`.
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_286_95;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_677_94;

// ---------------------------------------------------------------------------
// Error-free arithmetic and the exp(-x^2) factor
// ---------------------------------------------------------------------------

/// Knuth's TwoSum: `a + b = s + e` exactly, `s = fl(a + b)`.
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Veltkamp's split: `a = hi + lo` exactly, each half with at most 26 bits.
#[inline(always)]
fn split(a: f64) -> (f64, f64) {
    // 2^27 + 1.
    const SPLITTER: f64 = 134_217_729.0;
    let c = SPLITTER * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// The exact rounding error `a * b - fl(a * b)` (Dekker's TwoProduct), given
/// `p = fl(a * b)` and `b` pre-split. The value is exact, so the FMA and the
/// split paths give identical bits.
#[inline(always)]
fn product_error(a: f64, b: f64, b_split: (f64, f64), p: f64) -> f64 {
    #[cfg(target_feature = "fma")]
    {
        let _ = b_split;
        a.mul_add(b, -p)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        let _ = b;
        let (a_hi, a_lo) = split(a);
        let (b_hi, b_lo) = b_split;
        ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    }
}

/// `x * x` as an exact sum `hi + lo` (`hi = fl(x * x)`), by Dekker's product
/// with Veltkamp's split. Exact for `|x| < 1e150`.
#[inline(always)]
fn exact_square(x: f64) -> (f64, f64) {
    let hi = x * x;
    let (x_hi, x_lo) = split(x);
    let lo = ((x_hi * x_hi - hi) + 2.0 * x_hi * x_lo) + x_lo * x_lo;
    (hi, lo)
}

/// `exp(-x^2 / 2)` with relative error that of `exp` alone.
#[inline(always)]
fn exp_neg_half_square(x: f64) -> f64 {
    let (hi, lo) = exact_square(x);
    let e = (-0.5 * hi).exp();
    e - e * (0.5 * lo)
}

/// `c[0] y^8 + c[1] y^7 + ... + c[8]` as an unevaluated sum `value + error`.
///
/// Estrin's scheme, `p(y) = p03 + y^4 (p47 + y^4 c[0])` with
/// `p03 = (c[8] + c[7] y) + y^2 (c[6] + c[5] y)` and
/// `p47 = (c[4] + c[3] y) + y^2 (c[2] + c[1] y)`, where the four additions
/// of the upper two levels keep their rounding errors (TwoSum). Products stay
/// plain: trying TwoProduct on them too gained 0.5 ulp for twice the cost.
#[inline(always)]
fn estrin8_compensated(c: &[f64; 9], y: f64, y2: f64, y4: f64) -> (f64, f64) {
    let p01 = c[8] + c[7] * y;
    let p23 = c[6] + c[5] * y;
    let p45 = c[4] + c[3] * y;
    let p67 = c[2] + c[1] * y;
    let (p03, p03_err) = two_sum(p01, y2 * p23);
    let (p47, p47_err) = two_sum(p45, y2 * p67);
    let (u, u_err) = two_sum(p47, y4 * c[0]);
    let (value, sum_err) = two_sum(p03, y4 * u);
    (value, sum_err + y4 * (u_err + p47_err) + p03_err)
}

/// `num(y) / den(y)` for degree-8 `num`, `den` (highest power first), as an
/// unevaluated sum `quotient + correction`: [`estrin8_compensated`] for
/// both, then one correction step of the quotient. For Cody's middle-region
/// rationals the error of the rounded sum is at most 2.1 ulp (Cody's own
/// Horner-and-divide evaluation: 4.9 ulp; plain Estrin: 3.4 ulp). The
/// caller folds further small corrections into the second term before
/// rounding.
#[inline(always)]
fn rational8(num: &[f64; 9], den: &[f64; 9], y: f64) -> (f64, f64) {
    let y2 = y * y;
    let y4 = y2 * y2;
    let (n, n_err) = estrin8_compensated(num, y, y2, y4);
    let (d, d_err) = estrin8_compensated(den, y, y2, y4);
    let q = n / d;
    let qd = q * d;
    let qd_err = product_error(q, d, split(d), qd);
    // (n + n_err) / (d + d_err) - q, to first order; n - qd is exact (Sterbenz).
    let r = (((n - qd) - qd_err) + n_err - q * d_err) / d;
    (q, r)
}

/// Cody's asymptotic form `(lead - z P(z) / Q(z)) / y` with `z = 1 / y^2`
/// (`P` degree 5 with `p[5]` leading as Cody orders it, `Q` monic degree 5),
/// as `value + correction`. The rational is a small correction to `lead`
/// (below 6 %), so its own rounding matters little; the subtraction and the
/// division by `y` keep their rounding errors.
#[inline(always)]
fn asymptotic(p: &[f64; 6], q: &[f64; 5], lead: f64, y: f64) -> (f64, f64) {
    // One division: the 1-ulp errors of z and of s * (1/y) are harmless (z
    // only feeds the small r; the product's error is recovered below).
    let inv_y = 1.0 / y;
    let z = inv_y * inv_y;
    let mut num = p[5] * z;
    let mut den = z;
    for i in 0..4 {
        num = (num + p[i]) * z;
        den = (den + q[i]) * z;
    }
    let r = z * (num + p[4]) / (den + q[4]);
    let (s, s_err) = two_sum(lead, -r);
    let value = s * inv_y;
    let vy = value * y;
    let vy_err = product_error(value, y, split(y), vy);
    // s - vy is exact (Sterbenz); the correction is tiny, so inv_y will do.
    (value, (((s - vy) - vy_err) + s_err) * inv_y)
}

// ---------------------------------------------------------------------------
// Cody CALERF (erf, erfc, erfcx)
// ---------------------------------------------------------------------------

/// Boundary between the small-argument `erf` approximation and the rest.
const ERF_THRESH: f64 = 0.46875;
/// Boundary between the middle and the asymptotic `erfc` approximations.
const ERF_MIDDLE_END: f64 = 4.0;
/// Below this `|x|`, `x * x` is dropped (`erf(x) = 2x/sqrt(pi)` exactly in f64).
const ERF_XSMALL: f64 = 1.11e-16;
/// Above this, `erfc(x)` rounds to zero (it is below half the smallest
/// subnormal from `x = 27.2260`); the cut also keeps `x * x` finite.
const ERFC_ZERO_FROM: f64 = 28.0;
/// Above this, `erfcx(x) = 1 / (x sqrt(pi))` to within `0.5 / x^2 < 1.2e-16`.
const ERFCX_HUGE: f64 = 6.71e7;
/// Below this, `erfcx(x) = 2 exp(x^2) - erfcx(-x)` overflows f64.
const ERFCX_OVERFLOW_BELOW: f64 = -26.628;

/// `erf` on `|x| <= 0.46875`: numerator, `A[4]` leading.
const ERF_A: [f64; 5] = [
    3.161_123_743_870_565_6,
    1.138_641_541_510_501_56e2,
    3.774_852_376_853_020_21e2,
    3.209_377_589_138_469_47e3,
    1.857_777_061_846_031_53e-1,
];
/// `erf` on `|x| <= 0.46875`: denominator.
const ERF_B: [f64; 4] = [
    2.360_129_095_234_412_09e1,
    2.440_246_379_344_441_73e2,
    1.282_616_526_077_372_28e3,
    2.844_236_833_439_170_62e3,
];
/// `erfcx` on `0.46875 < |x| <= 4`: numerator, `C[8]` leading.
const ERF_C: [f64; 9] = [
    5.641_884_969_886_700_89e-1,
    8.883_149_794_388_375_94,
    6.611_919_063_714_162_95e1,
    2.986_351_381_974_001_31e2,
    8.819_522_212_417_690_9e2,
    1.712_047_612_634_070_58e3,
    2.051_078_377_826_071_47e3,
    1.230_339_354_797_997_25e3,
    2.153_115_354_744_038_46e-8,
];
/// `erfcx` on `0.46875 < |x| <= 4`: denominator.
const ERF_D: [f64; 8] = [
    1.574_492_611_070_983_47e1,
    1.176_939_508_913_124_99e2,
    5.371_811_018_620_098_58e2,
    1.621_389_574_566_690_19e3,
    3.290_799_235_733_459_63e3,
    4.362_619_090_143_247_16e3,
    3.439_367_674_143_721_64e3,
    1.230_339_354_803_749_42e3,
];
/// Cody's `C` as a polynomial in `y`, highest power first.
const ERFCX_MIDDLE_NUM: [f64; 9] = [
    ERF_C[8], ERF_C[0], ERF_C[1], ERF_C[2], ERF_C[3], ERF_C[4], ERF_C[5], ERF_C[6], ERF_C[7],
];
/// Cody's `D` as a monic polynomial in `y`, highest power first.
const ERFCX_MIDDLE_DEN: [f64; 9] = [
    1.0, ERF_D[0], ERF_D[1], ERF_D[2], ERF_D[3], ERF_D[4], ERF_D[5], ERF_D[6], ERF_D[7],
];
/// `erfcx` on `|x| > 4` (in `1/x^2`): numerator, `P[5]` leading.
const ERF_P: [f64; 6] = [
    3.053_266_349_612_323_44e-1,
    3.603_448_999_498_044_39e-1,
    1.257_817_261_112_292_46e-1,
    1.608_378_514_874_227_66e-2,
    6.587_491_615_298_378_03e-4,
    1.631_538_713_730_209_78e-2,
];
/// `erfcx` on `|x| > 4` (in `1/x^2`): denominator.
const ERF_Q: [f64; 5] = [
    2.568_520_192_289_822_42,
    1.872_952_849_923_460_47,
    5.279_051_029_514_284_12e-1,
    6.051_834_131_244_131_91e-2,
    2.335_204_976_268_691_85e-3,
];

/// `erf(x)` for `|x| <= 0.46875` (Cody's first approximation).
#[inline(always)]
fn erf_small(x: f64) -> f64 {
    let y = x.abs();
    let ysq = if y > ERF_XSMALL { y * y } else { 0.0 };
    let mut num = ERF_A[4] * ysq;
    let mut den = ysq;
    for i in 0..3 {
        num = (num + ERF_A[i]) * ysq;
        den = (den + ERF_B[i]) * ysq;
    }
    x * (num + ERF_A[3]) / (den + ERF_B[3])
}

/// `erfcx(y)` for `y > 0.46875` (Cody's second and third approximations)
/// as `value + correction`; the asymptotic branch is accurate up to
/// `y = 6.71e7` (beyond, `1 / (y sqrt(pi))` is).
#[inline(always)]
fn erfcx_positive(y: f64) -> (f64, f64) {
    if y <= ERF_MIDDLE_END {
        rational8(&ERFCX_MIDDLE_NUM, &ERFCX_MIDDLE_DEN, y)
    } else {
        asymptotic(&ERF_P, &ERF_Q, FRAC_1_SQRT_PI, y)
    }
}

/// `erfc(y)` for `y > 0.46875`, relative accuracy into the subnormal range.
#[inline(always)]
fn erfc_positive(y: f64) -> f64 {
    // Written so that NaN takes the computing branch and stays NaN.
    if y >= ERFC_ZERO_FROM {
        0.0
    } else {
        // exp(-y^2) = exp(-hi) (1 - lo); the (1 - lo) goes into the
        // rational's correction term, saving a rounding.
        let (hi, lo) = exact_square(y);
        let (value, correction) = erfcx_positive(y);
        (-hi).exp() * (value + (correction - value * lo))
    }
}

/// Error function `erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt`.
///
/// Cody's rational Chebyshev approximations (Math. Comp. 1969; SPECFUN
/// `CALERF`). Relative error at most 3 ulp (measured) for all `x`.
///
/// # Units
///
/// Dimensionless in and out; result in `[-1, 1]`. `erf(±inf) = ±1`;
/// NaN in gives NaN out (an internal kernel: callers validate).
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::erf;
/// assert!((erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-16);
/// assert_eq!(erf(-f64::INFINITY), -1.0);
/// ```
#[inline]
#[must_use]
pub fn erf(x: f64) -> f64 {
    let y = x.abs();
    if y <= ERF_THRESH {
        erf_small(x)
    } else {
        let r = (0.5 - erfc_positive(y)) + 0.5;
        if x < 0.0 { -r } else { r }
    }
}

/// Complementary error function `erfc(x) = 1 - erf(x)`.
///
/// Cody's rational Chebyshev approximations (Math. Comp. 1969; SPECFUN
/// `CALERF`), with `exp(-x^2)` evaluated without argument rounding error, so
/// the *relative* error stays below 3 ulp (measured) all the way to the
/// underflow of the result near `x = 27.2` (subnormal from `x = 26.54`).
///
/// # Units
///
/// Dimensionless in and out; result in `[0, 2]`. `erfc(-inf) = 2`,
/// `erfc(+inf) = 0`; NaN in gives NaN out.
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::erfc;
/// // erfc(10) = 2.088487583762544757e-45
/// let v = erfc(10.0);
/// assert!((v / 2.088_487_583_762_544_8e-45 - 1.0).abs() < 1e-15);
/// ```
#[inline]
#[must_use]
pub fn erfc(x: f64) -> f64 {
    let y = x.abs();
    if y <= ERF_THRESH {
        1.0 - erf_small(x)
    } else {
        let r = erfc_positive(y);
        if x < 0.0 { 2.0 - r } else { r }
    }
}

/// Scaled complementary error function `erfcx(x) = exp(x^2) * erfc(x)`.
///
/// Cody's rational Chebyshev approximations (Math. Comp. 1969; SPECFUN
/// `CALERF`). For large positive `x`, `erfcx(x) ~ 1 / (x sqrt(pi))`; no
/// exponential is evaluated for `x > 0.46875`.
///
/// # Units
///
/// Dimensionless in and out; result positive. `erfcx(+inf) = 0`. For
/// `x < -26.628` the true value exceeds `f64::MAX` and the result is
/// `+inf` (as it is for `x = -inf`); NaN in gives NaN out.
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::erfcx;
/// // erfcx(1e6) = 5.6418958354747419e-7 = (1 - 5e-13 + ...) / (1e6 sqrt(pi))
/// let v = erfcx(1e6);
/// assert!((v / 5.641_895_835_474_741_9e-7 - 1.0).abs() < 1e-15);
/// ```
#[inline]
#[must_use]
pub fn erfcx(x: f64) -> f64 {
    let y = x.abs();
    if y <= ERF_THRESH {
        // y*y is exact enough here: exp(y^2) <= 1.25 and the rounding of
        // y*y costs at most 0.22 * eps relative.
        return (y * y).exp() * (1.0 - erf_small(x));
    }
    let r = if y < ERFCX_HUGE {
        let (value, correction) = erfcx_positive(y);
        value + correction
    } else {
        // Also gives 0 at +inf; the caller below handles x < 0.
        FRAC_1_SQRT_PI / y
    };
    if x >= 0.0 || x.is_nan() {
        r
    } else if x < ERFCX_OVERFLOW_BELOW {
        f64::INFINITY
    } else {
        // erfcx(x) = 2 exp(x^2) - erfcx(|x|).
        let (hi, lo) = exact_square(y);
        let e = hi.exp();
        let e = e + e * lo;
        (e + e) - r
    }
}

// ---------------------------------------------------------------------------
// Cody ANORM (norm_cdf) and the density
// ---------------------------------------------------------------------------

/// `Phi(thrsh) = 0.75`: boundary of ANORM's first approximation.
pub(crate) const NORM_THRSH: f64 = 0.66291;
/// `sqrt(32)` (Cody's `ROOT32`): boundary of ANORM's asymptotic approximation.
pub(crate) const NORM_ROOT32: f64 = 5.656_854_248;
/// Below this `|x|`, `x * x` is dropped (`Phi(x) = 0.5 + x/sqrt(2 pi)` in f64).
const NORM_EPS: f64 = 1.11e-16;
/// Beyond this `|x|`, `Phi(-|x|)` and the density round to zero (below half
/// the smallest subnormal from `x = 38.4854`, resp. `38.5802`); the cut also
/// keeps `x * x` finite.
const NORM_ZERO_FROM: f64 = 40.0;

/// `Phi` on `|x| <= 0.66291`: numerator, `A[4]` leading.
pub(crate) const NORM_A: [f64; 5] = [
    2.235_252_035_460_683_928_7,
    1.610_282_310_685_558_788_1e2,
    1.067_689_485_460_370_958_2e3,
    1.815_498_125_334_356_124_9e4,
    6.568_233_791_820_744_911_3e-2,
];
/// `Phi` on `|x| <= 0.66291`: denominator.
pub(crate) const NORM_B: [f64; 4] = [
    4.720_258_190_468_824_187_0e1,
    9.760_985_517_377_766_932_2e2,
    1.026_093_220_861_897_820_5e4,
    4.550_778_933_502_672_995_6e4,
];
/// `Phi(-y) exp(y^2/2)` on `0.66291 < y <= sqrt(32)`: numerator, `C[8]` leading.
pub(crate) const NORM_C: [f64; 9] = [
    3.989_415_120_881_346_676_4e-1,
    8.883_149_794_388_375_941_2,
    9.350_665_613_217_785_597_9e1,
    5.972_702_763_948_002_622_6e2,
    2.494_537_585_290_372_671_1e3,
    6.848_190_450_536_282_332_6e3,
    1.160_265_143_764_735_012_4e4,
    9.842_714_838_383_978_021_8e3,
    1.076_557_677_372_019_231_7e-8,
];
/// `Phi(-y) exp(y^2/2)` on `0.66291 < y <= sqrt(32)`: denominator.
pub(crate) const NORM_D: [f64; 8] = [
    2.226_668_804_432_811_569_1e1,
    2.353_879_017_826_249_986_1e2,
    1.519_377_599_407_554_805_0e3,
    6.485_558_298_266_760_755_0e3,
    1.861_557_164_088_509_809_1e4,
    3.490_095_272_114_597_726_6e4,
    3.891_200_328_609_327_141_1e4,
    1.968_542_967_685_999_072_7e4,
];
/// Cody's `C` as a polynomial in `y`, highest power first.
const NORM_MIDDLE_NUM: [f64; 9] = [
    NORM_C[8], NORM_C[0], NORM_C[1], NORM_C[2], NORM_C[3], NORM_C[4], NORM_C[5], NORM_C[6],
    NORM_C[7],
];
/// Cody's `D` as a monic polynomial in `y`, highest power first.
const NORM_MIDDLE_DEN: [f64; 9] = [
    1.0, NORM_D[0], NORM_D[1], NORM_D[2], NORM_D[3], NORM_D[4], NORM_D[5], NORM_D[6], NORM_D[7],
];
/// `Phi(-y)` asymptotic part on `y > sqrt(32)` (in `1/y^2`): numerator, `P[5]` leading.
pub(crate) const NORM_P: [f64; 6] = [
    2.158_985_340_579_569_9e-1,
    1.274_011_611_602_473_639e-1,
    2.223_527_787_064_980_7e-2,
    1.421_619_193_227_893_466e-3,
    2.911_287_495_116_879_2e-5,
    2.307_344_176_494_017_303e-2,
];
/// `Phi(-y)` asymptotic part on `y > sqrt(32)`: denominator.
pub(crate) const NORM_Q: [f64; 5] = [
    1.284_260_096_144_911_21,
    4.682_382_124_808_651_18e-1,
    6.598_813_786_892_855_15e-2,
    3.782_396_332_027_582_44e-3,
    7.297_515_550_839_662_05e-5,
];

/// `Phi(-y)` for `y > 0.66291` (ANORM's second and third approximations),
/// relative accuracy into the subnormal range; NaN stays NaN.
#[inline(always)]
fn norm_lower_tail(y: f64) -> f64 {
    let (value, correction) = if y <= NORM_ROOT32 {
        rational8(&NORM_MIDDLE_NUM, &NORM_MIDDLE_DEN, y)
    } else if y >= NORM_ZERO_FROM {
        return 0.0;
    } else {
        // NaN lands here and stays NaN.
        asymptotic(&NORM_P, &NORM_Q, FRAC_1_SQRT_2PI, y)
    };
    // exp(-y^2/2) = exp(-hi/2) (1 - lo/2); the (1 - lo/2) goes into the
    // correction term, saving a rounding.
    let (hi, lo) = exact_square(y);
    (-0.5 * hi).exp() * (value + (correction - value * (0.5 * lo)))
}

/// Standard normal density `phi(x) = exp(-x^2/2) / sqrt(2 pi)`.
///
/// `exp(-x^2/2)` is evaluated without argument rounding error, so the
/// relative error is at most 2.5 ulp (measured) for all `x` until the
/// result underflows (`|x| > 38.58`; subnormal from `|x| = 37.5`).
///
/// # Units
///
/// Dimensionless in, density per unit of `x` out. `phi(±inf) = 0`; NaN in
/// gives NaN out (an internal kernel: callers validate).
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::norm_pdf;
/// assert_eq!(norm_pdf(0.0), 0.398_942_280_401_432_7);
/// // phi(30) = 1.4736461348785475e-196
/// assert!((norm_pdf(30.0) / 1.473_646_134_878_547_5e-196 - 1.0).abs() < 1e-15);
/// ```
#[inline]
#[must_use]
pub fn norm_pdf(x: f64) -> f64 {
    let y = x.abs();
    // NaN takes the computing branch and stays NaN.
    if y >= NORM_ZERO_FROM {
        0.0
    } else {
        exp_neg_half_square(y) * FRAC_1_SQRT_2PI
    }
}

/// Standard normal distribution function
/// `Phi(x) = 1/sqrt(2 pi) * integral_-inf^x exp(-t^2/2) dt`.
///
/// Cody's `ANORM` (SPECFUN, ACM TOMS Algorithm 715): rational Chebyshev
/// approximations in `x` itself (never `x / sqrt(2)`, whose rounding would
/// cost hundreds of ulp near `x = -37`), with `exp(-x^2/2)` evaluated without
/// argument rounding error and the middle-region rational evaluated with
/// compensated arithmetic (see the module notes). Relative error at most
/// 3 ulp (measured) over the whole range, including the lower tail down to
/// `x = -37.52`, where `Phi` leaves the normal f64 range; `Phi(x)` rounds to
/// 0 below `x = -38.4854`.
///
/// # Units
///
/// Dimensionless in, probability in `[0, 1]` out. `Phi(-inf) = 0`,
/// `Phi(+inf) = 1`; NaN in gives NaN out (an internal kernel: callers
/// validate). `Phi(x) + Phi(-x) = 1` to within `1e-16`.
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::norm_cdf;
/// assert_eq!(norm_cdf(0.0), 0.5);
/// // Phi(-37) = 5.7255712225245768e-300
/// assert!((norm_cdf(-37.0) / 5.725_571_222_524_576_8e-300 - 1.0).abs() < 1e-15);
/// ```
#[inline]
#[must_use]
pub fn norm_cdf(x: f64) -> f64 {
    let y = x.abs();
    if y <= NORM_THRSH {
        let ysq = if y > NORM_EPS { x * x } else { 0.0 };
        let mut num = NORM_A[4] * ysq;
        let mut den = ysq;
        for i in 0..3 {
            num = (num + NORM_A[i]) * ysq;
            den = (den + NORM_B[i]) * ysq;
        }
        let t = x * (num + NORM_A[3]) / (den + NORM_B[3]);
        0.5 + t
    } else {
        let lower = norm_lower_tail(y);
        if x > 0.0 { 1.0 - lower } else { lower }
    }
}

// ---------------------------------------------------------------------------
// Wichura AS 241 (PPND16)
// ---------------------------------------------------------------------------

/// `|p - 0.5| <= SPLIT1`: central approximation.
const PPND_SPLIT1: f64 = 0.425;
/// `r = sqrt(-ln(min(p, 1-p))) <= SPLIT2`: intermediate approximation.
const PPND_SPLIT2: f64 = 5.0;
/// `SPLIT1^2`.
const PPND_CONST1: f64 = 0.180_625;
/// Shift of `r` in the intermediate region.
const PPND_CONST2: f64 = 1.6;

/// AS 241 central region, numerator in `r = 0.180625 - q^2`.
const PPND_A: [f64; 8] = [
    3.387_132_872_796_366_608_0,
    1.331_416_678_917_843_774_5e2,
    1.971_590_950_306_551_442_7e3,
    1.373_169_376_550_946_112_5e4,
    4.592_195_393_154_987_145_7e4,
    6.726_577_092_700_870_085_3e4,
    3.343_057_558_358_812_810_5e4,
    2.509_080_928_730_122_672_7e3,
];
/// AS 241 central region, denominator.
const PPND_B: [f64; 8] = [
    1.0,
    4.231_333_070_160_091_125_2e1,
    6.871_870_074_920_579_083_0e2,
    5.394_196_021_424_751_107_7e3,
    2.121_379_430_158_659_586_7e4,
    3.930_789_580_009_271_061_0e4,
    2.872_908_573_572_194_267_4e4,
    5.226_495_278_852_854_561_0e3,
];
/// AS 241 intermediate region, numerator in `r - 1.6`.
const PPND_C: [f64; 8] = [
    1.423_437_110_749_683_577_34,
    4.630_337_846_156_545_295_90,
    5.769_497_221_460_691_405_50,
    3.647_848_324_763_204_605_04,
    1.270_458_252_452_368_382_58,
    2.417_807_251_774_506_117_70e-1,
    2.272_384_498_926_918_458_33e-2,
    7.745_450_142_783_414_076_40e-4,
];
/// AS 241 intermediate region, denominator.
const PPND_D: [f64; 8] = [
    1.0,
    2.053_191_626_637_758_821_87,
    1.676_384_830_183_803_849_40,
    6.897_673_349_851_000_045_50e-1,
    1.481_039_764_274_800_745_90e-1,
    1.519_866_656_361_645_719_66e-2,
    5.475_938_084_995_344_946_00e-4,
    1.050_750_071_644_416_843_24e-9,
];
/// AS 241 tail region, numerator in `r - 5`.
const PPND_E: [f64; 8] = [
    6.657_904_643_501_103_777_20,
    5.463_784_911_164_114_369_90,
    1.784_826_539_917_291_335_80,
    2.965_605_718_285_048_912_30e-1,
    2.653_218_952_657_612_309_30e-2,
    1.242_660_947_388_078_438_60e-3,
    2.711_555_568_743_487_578_15e-5,
    2.010_334_399_292_288_132_65e-7,
];
/// AS 241 tail region, denominator.
const PPND_F: [f64; 8] = [
    1.0,
    5.998_322_065_558_879_376_90e-1,
    1.369_298_809_227_358_053_10e-1,
    1.487_536_129_085_061_485_25e-2,
    7.868_691_311_456_132_591_00e-4,
    1.846_318_317_510_054_681_80e-5,
    1.421_511_758_316_445_888_70e-7,
    2.044_263_103_389_939_785_64e-15,
];

/// Degree-7 polynomial `c[0] + c[1] r + ... + c[7] r^7` by Horner's rule.
#[inline(always)]
fn poly7(c: &[f64; 8], r: f64) -> f64 {
    let mut acc = c[7];
    for i in (0..7).rev() {
        acc = acc * r + c[i];
    }
    acc
}

/// Inverse of the standard normal distribution function, `Phi^{-1}(p)`, for
/// `0 < p < 1`.
///
/// Wichura's AS 241 (`PPND16`, Applied Statistics 1988): relative error
/// about 1e-16 over the whole open interval, including subnormal `p`
/// (`Phi^{-1}(5e-324) = -38.47`) and `p` next to 1 (`Phi^{-1}(1 - 2^-53) =
/// 8.21`).
///
/// # Units
///
/// Probability in, standard-normal quantile (dimensionless) out.
///
/// # Panics
///
/// In debug builds, if `p` is not in the open interval `(0, 1)`. This is a
/// kernel: callers validate `p` first (or use [`try_inverse_norm_cdf`]);
/// outside the interval the release-build result is unspecified (it may be
/// NaN or infinite).
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::inverse_norm_cdf;
/// assert_eq!(inverse_norm_cdf(0.5), 0.0);
/// assert!((inverse_norm_cdf(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
/// ```
#[inline]
#[must_use]
pub fn inverse_norm_cdf(p: f64) -> f64 {
    debug_assert!(
        p > 0.0 && p < 1.0,
        "inverse_norm_cdf: p must be in (0, 1), got {p}"
    );
    let q = p - 0.5;
    if q.abs() <= PPND_SPLIT1 {
        let r = PPND_CONST1 - q * q;
        return q * poly7(&PPND_A, r) / poly7(&PPND_B, r);
    }
    // Exact: 1 - p has no rounding error for p >= 0.5.
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let x = if r <= PPND_SPLIT2 {
        let r = r - PPND_CONST2;
        poly7(&PPND_C, r) / poly7(&PPND_D, r)
    } else {
        let r = r - PPND_SPLIT2;
        poly7(&PPND_E, r) / poly7(&PPND_F, r)
    };
    if q < 0.0 { -x } else { x }
}

/// Checked [`inverse_norm_cdf`]: `Phi^{-1}(p)` for `p` in the open interval
/// `(0, 1)`.
///
/// # Units
///
/// Probability in, standard-normal quantile (dimensionless) out; the result
/// is always finite (`|x| < 38.5`).
///
/// # Errors
///
/// [`Error::InvalidInput`] if `p` is NaN or not strictly between 0 and 1.
///
/// # Examples
///
/// ```
/// use portfolio_margin::math::try_inverse_norm_cdf;
/// let z = try_inverse_norm_cdf(0.01)?;
/// assert!((z + 2.326_347_874_040_841).abs() < 1e-15);
/// assert!(try_inverse_norm_cdf(1.0).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[inline]
pub fn try_inverse_norm_cdf(p: f64) -> Result<f64> {
    if p > 0.0 && p < 1.0 {
        Ok(inverse_norm_cdf(p))
    } else {
        Err(Error::InvalidInput {
            what: "probability for inverse_norm_cdf",
            rule: "in the open interval (0, 1)",
            value: p,
        })
    }
}

// ---------------------------------------------------------------------------
// Branch-free normal tail for the batch kernels
// ---------------------------------------------------------------------------

/// `P` of [`norm_tail_scaled_parts`], low to high
/// (`scripts/fit_norm_cdf_rational.py`).
const MILLS_P: [f64; 10] = [
    0.5,
    0.774_239_184_728_019_8,
    0.593_127_284_064_394_2,
    0.288_676_666_401_109_4,
    0.097_405_127_523_856_9,
    0.023_532_600_289_232_965,
    0.004_070_249_750_501_833,
    0.000_487_662_883_314_092_4,
    3.700_424_079_142_076_5e-5,
    1.374_586_316_211_578_7e-6,
];
/// `Q` of [`norm_tail_scaled_parts`], low to high, `Q(0) = 1`.
const MILLS_Q: [f64; 11] = [
    1.0,
    2.346_362_930_258_895_3,
    2.558_381_324_222_839_5,
    1.711_426_347_180_338_4,
    0.780_182_504_359_251_5,
    0.254_175_525_908_740_1,
    0.060_202_980_124_870_41,
    0.010_295_358_973_819_321,
    0.001_225_835_148_942_638_6,
    9.275_587_624_671_629e-5,
    3.445_576_926_148_134_2e-6,
];
/// Upper end of the fit of [`norm_tail_scaled_parts`]: beyond it
/// `exp(-y^2/2)` is below the smallest normal double.
const MILLS_YMAX: f64 = 38.0;

/// `P(y)` and `Q(y)` with `Phi(-y) = exp(-y^2/2) P(y) / Q(y)` for
/// `0 <= y <= 38` (larger `y` are clamped to 38), for the batch kernels:
/// one rational of degree 9 over 10 on the whole range (where Cody's
/// `ANORM` needs three), straight-line code with no branch and no division,
/// so that a loop over it vectorises and callers can share one division
/// between several quotients.
///
/// Fitted for relative error by `scripts/fit_norm_cdf_rational.py`: the
/// rational is within 4.9e-17 of `Phi(-y) exp(y^2/2)`; evaluated in double
/// as here (even and odd parts in `y^2` by Horner, which halves the
/// rounding error of plain Horner) the quotient is within 2.4 eps with
/// fused multiply-add (`FMA`) and 2.7 eps without.
#[inline(always)]
pub(crate) fn norm_tail_scaled_parts<const FMA: bool>(y: f64) -> (f64, f64) {
    use crate::math::fast::madd;
    let y = y.min(MILLS_YMAX);
    let z = y * y;
    let (p, q) = (&MILLS_P, &MILLS_Q);
    let p_even = madd::<FMA>(p[8], z, p[6]);
    let p_even = madd::<FMA>(p_even, z, p[4]);
    let p_even = madd::<FMA>(p_even, z, p[2]);
    let p_even = madd::<FMA>(p_even, z, p[0]);
    let p_odd = madd::<FMA>(p[9], z, p[7]);
    let p_odd = madd::<FMA>(p_odd, z, p[5]);
    let p_odd = madd::<FMA>(p_odd, z, p[3]);
    let p_odd = madd::<FMA>(p_odd, z, p[1]);
    let q_even = madd::<FMA>(q[10], z, q[8]);
    let q_even = madd::<FMA>(q_even, z, q[6]);
    let q_even = madd::<FMA>(q_even, z, q[4]);
    let q_even = madd::<FMA>(q_even, z, q[2]);
    let q_even = madd::<FMA>(q_even, z, q[0]);
    let q_odd = madd::<FMA>(q[9], z, q[7]);
    let q_odd = madd::<FMA>(q_odd, z, q[5]);
    let q_odd = madd::<FMA>(q_odd, z, q[3]);
    let q_odd = madd::<FMA>(q_odd, z, q[1]);
    (madd::<FMA>(p_odd, y, p_even), madd::<FMA>(q_odd, y, q_even))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Absolute tolerance on `Phi(x) + Phi(-x) = 1`.
    const SYMMETRY_ABS: f64 = 1e-16;

    #[test]
    fn limits_and_special_values() {
        assert_eq!(norm_cdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(norm_cdf(f64::INFINITY), 1.0);
        assert_eq!(norm_cdf(0.0), 0.5);
        assert_eq!(norm_cdf(-0.0), 0.5);
        assert_eq!(norm_pdf(f64::INFINITY), 0.0);
        assert_eq!(norm_pdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert_eq!(erfc(0.0), 1.0);
        assert_eq!(erfcx(0.0), 1.0);
        assert_eq!(erfcx(f64::INFINITY), 0.0);
        assert_eq!(erfcx(f64::NEG_INFINITY), f64::INFINITY);
        assert_eq!(erfcx(-27.0), f64::INFINITY);
        assert!(erfcx(-26.6).is_finite());
        assert_eq!(inverse_norm_cdf(0.5), 0.0);
    }

    #[test]
    fn nan_propagates() {
        for f in [erf, erfc, erfcx, norm_pdf, norm_cdf] {
            assert!(f(f64::NAN).is_nan());
        }
    }

    #[test]
    fn underflow_is_clean() {
        assert_eq!(norm_cdf(-38.5), 0.0);
        assert!(norm_cdf(-38.4) > 0.0);
        assert_eq!(norm_cdf(-1e300), 0.0);
        assert_eq!(norm_cdf(1e300), 1.0);
        assert_eq!(erfc(27.3), 0.0);
        assert!(erfc(27.2) > 0.0);
        assert_eq!(erfc(1e300), 0.0);
        assert_eq!(erfc(-1e300), 2.0);
        assert_eq!(norm_pdf(38.6), 0.0);
        assert!(norm_pdf(38.5) > 0.0);
        assert_eq!(norm_pdf(1e300), 0.0);
        assert!(erfcx(1e300) > 0.0 && erfcx(1e300).is_finite());
    }

    #[test]
    fn inverse_is_finite_on_the_whole_open_interval() {
        let smallest = f64::from_bits(1);
        let below_one = 1.0 - f64::EPSILON / 2.0;
        for p in [smallest, f64::MIN_POSITIVE, 1e-300, 0.5, below_one] {
            assert!(inverse_norm_cdf(p).is_finite(), "p = {p}");
        }
        assert!(inverse_norm_cdf(smallest) < -38.0);
        assert!((inverse_norm_cdf(below_one) - 8.209_536_151_601_387).abs() < 1e-14);
    }

    #[test]
    fn checked_inverse_rejects_outside_open_interval() {
        for p in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            match try_inverse_norm_cdf(p) {
                Err(Error::InvalidInput { value, .. }) => {
                    assert!(value.to_bits() == p.to_bits());
                }
                other => panic!("p = {p}: expected InvalidInput, got {other:?}"),
            }
        }
        assert_eq!(try_inverse_norm_cdf(0.5), Ok(0.0));
    }

    /// The batch kernels' tail rational against [`norm_cdf`] (itself within
    /// 2.9 ulp of mpmath): both copies within this many eps, relative.
    const TAIL_RATIONAL_EPS: f64 = 6.0;

    #[test]
    fn tail_rational_matches_norm_cdf() {
        let n = 200_000;
        for fused in [false, true] {
            let mut worst: f64 = 0.0;
            for i in 0..=n {
                let y = 37.5 * f64::from(i) / f64::from(n);
                let (p, q) = if fused {
                    norm_tail_scaled_parts::<true>(y)
                } else {
                    norm_tail_scaled_parts::<false>(y)
                };
                // exp(-y^2/2) with the square split exactly.
                let e = {
                    let (hi, lo) = (y * y, y.mul_add(y, -(y * y)));
                    (-0.5 * hi).exp() * (-0.5 * lo).exp()
                };
                let want = norm_cdf(-y);
                worst = worst.max(((e * (p / q)) / want - 1.0).abs());
            }
            assert!(
                worst <= TAIL_RATIONAL_EPS * f64::EPSILON,
                "fused {fused}: worst {:.2} eps",
                worst / f64::EPSILON
            );
        }
        // Clamped beyond the fit: finite, and the density factor is zero there.
        let (p, q) = norm_tail_scaled_parts::<false>(1e300);
        assert!(p.is_finite() && q.is_finite() && p / q > 0.0);
    }

    #[test]
    fn symmetry_at_region_boundaries() {
        for x in [
            1e-300,
            0.1,
            NORM_THRSH,
            0.663,
            1.0,
            NORM_ROOT32,
            5.66,
            8.0,
            9.0,
        ] {
            // Exact: a - 1 (Sterbenz), then two nearly opposite numbers.
            let defect = (norm_cdf(x) - 1.0) + norm_cdf(-x);
            assert!(defect.abs() <= SYMMETRY_ABS, "x = {x}: defect {defect:e}");
        }
    }
}
