//! Standard normal density, distribution and quantile.
//!
//! PLACEHOLDER (statrs-backed) until the Cody/AS241 implementation lands.

/// Standard normal density `exp(-x^2/2)/sqrt(2 pi)`.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() * 0.398_942_280_401_432_7
}

/// Standard normal cumulative distribution.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// Inverse of [`norm_cdf`].
pub fn inverse_norm_cdf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}
