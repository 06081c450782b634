//! Standard normal density, distribution and quantile.
//!
//! PLACEHOLDER (statrs-backed) until the Cody/AS241 implementation lands.

/// Standard normal density `exp(-x^2/2)/sqrt(2 pi)`.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() * 0.398_942_280_401_432_7
}

/// Standard normal cumulative distribution.
///
/// PLACEHOLDER: libm-backed (statrs' erfc is only ~1e-10 relative); in the
/// left tail `exp(-x^2/2) erfcx(-x/sqrt 2) / 2` with an exact `x^2`.
pub fn norm_cdf(x: f64) -> f64 {
    if x < -1.0 {
        let hi = x * x;
        let lo = x.mul_add(x, -hi);
        0.5 * (-0.5 * hi).exp() * (1.0 - 0.5 * lo) * erfcx(-x * std::f64::consts::FRAC_1_SQRT_2)
    } else {
        0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
    }
}

/// Inverse of [`norm_cdf`].
pub fn inverse_norm_cdf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// Complementary error function `erfc(x) = 1 - erf(x)`.
///
/// PLACEHOLDER (libm, FreeBSD msun port, < 1 ulp) until the Cody
/// implementation lands.
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Scaled complementary error function `erfcx(x) = exp(x^2) erfc(x)`.
///
/// PLACEHOLDER until the Cody implementation lands: `exp(x^2)` is formed
/// from the exact split `x^2 = hi + lo` so that it keeps full relative
/// accuracy, and an asymptotic series takes over for `x >= 12`, where
/// `erfc` approaches underflow (Abramowitz & Stegun 7.1.23).
pub fn erfcx(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        // erfcx(x) = 2 exp(x^2) - erfcx(-x); overflows for x < -26.6.
        return 2.0 * exp_of_square(x) - erfcx(-x);
    }
    if x < 12.0 {
        return exp_of_square(x) * libm::erfc(x);
    }
    // 1/(x sqrt(pi)) * sum_k (-1)^k (2k-1)!! / (2x^2)^k; at x >= 12 the
    // 14th term is below 1e-17 relative.
    let inv_two_x2 = 0.5 / (x * x);
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..15 {
        term *= -((2 * k - 1) as f64) * inv_two_x2;
        sum += term;
    }
    sum / (x * 1.772_453_850_905_516)
}

/// `exp(x^2)` without the `x^2 * EPSILON` relative error of `(x * x).exp()`.
fn exp_of_square(x: f64) -> f64 {
    let hi = x * x;
    let lo = x.mul_add(x, -hi);
    hi.exp() * (1.0 + lo)
}
