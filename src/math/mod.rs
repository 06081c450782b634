//! Special functions the pricing kernels need, written for relative accuracy
//! deep into the tails.
//!
//! - [`erf`], [`erfc`], [`erfcx`]: W. J. Cody's rational Chebyshev
//!   approximations (Math. Comp. 23, 1969; SPECFUN `CALERF`, ACM TOMS
//!   Algorithm 715, 1993).
//! - [`norm_cdf`]: Cody's `ANORM` (same package), in `x` itself rather than
//!   through the inexact `x / sqrt(2)`; [`norm_pdf`].
//! - [`inverse_norm_cdf`], [`try_inverse_norm_cdf`]: Wichura's AS 241
//!   (`PPND16`, Applied Statistics 37, 1988).
//!
//! In the tails `exp(-x^2)` is evaluated from the exact split
//! `x^2 = fl(x^2) + lo` (no argument rounding error), and Cody's
//! middle-region rationals with compensated arithmetic, so the error stays a
//! few ulp *relative* down to underflow (`Phi(x)` is a normal f64 down to
//! `x = -37.52`). These are kernels: NaN in gives NaN out; the crate
//! validates inputs at its public boundaries.
//!
//! # Accuracy
//!
//! Measured against 50-digit mpmath values (`tests/normal_reference.rs`,
//! and during development 40 000-120 000 random arguments per function);
//! maximum relative error in ulps where the result is a normal f64
//! (subnormal results are within one unit of the smallest subnormal):
//!
//! | function | range | max error |
//! |---|---|---|
//! | [`norm_cdf`] | `[-37.5, 9]` | 2.9 ulp (tail below -5.66: 2.3) |
//! | [`norm_pdf`] | `[-37.5, 37.5]` | 2.5 ulp |
//! | [`erf`] | all `x` | 3.0 ulp |
//! | [`erfc`] | `[-6, 26.5]` | 3.0 ulp |
//! | [`erfcx`] | `[-26.6, 1e300]` | 2.5 ulp |
//! | [`inverse_norm_cdf`] | `p` in `[1e-300, 1 - 2^-53]` | 3.3 eps relative |
//!
//! For comparison, the statrs 0.19 functions this module replaced measured
//! on the same arguments: `0.5 * erfc(-x / sqrt(2))` up to 8.9e5 ulp (about
//! 2e-10 relative) in `[-5.7, -0.66]`, and 4.4e5 ulp in the lower tail;
//! statrs `erfc` up to 8.8e5 ulp on `(0.47, 4]`.

pub(crate) mod fast;
pub(crate) mod normal;

pub use normal::{erf, erfc, erfcx, inverse_norm_cdf, norm_cdf, norm_pdf, try_inverse_norm_cdf};
