//! Special functions the pricing kernels need, written for relative accuracy
//! deep into the tails.

pub(crate) mod fast;
pub(crate) mod normal;

pub use normal::{inverse_norm_cdf, norm_cdf, norm_pdf};
