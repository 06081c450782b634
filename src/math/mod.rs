//! Special functions the pricing kernels need, written for relative accuracy
//! deep into the tails.

mod normal;

pub use normal::{erfc, erfcx, inverse_norm_cdf, norm_cdf, norm_pdf};
