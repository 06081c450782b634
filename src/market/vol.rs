//! Implied volatility surfaces.

use crate::error::{Result, positive};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Implied volatility of one underlying as a function of expiry and strike.
///
/// Volatilities are annualised decimals (`0.20` is 20%).
///
/// ```
/// use portfolio_margin::VolSurface;
/// let flat = VolSurface::flat(0.55)?;
/// assert_eq!(flat.volatility(0.25, 90_000.0, 100_000.0), 0.55);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::VolSurface", into = "raw::VolSurface")
)]
pub enum VolSurface {
    /// One volatility for every expiry and strike.
    Flat(f64),
}

impl VolSurface {
    /// A flat surface.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] unless `vol` is finite and positive.
    pub fn flat(vol: f64) -> Result<Self> {
        positive("volatility", vol).map(VolSurface::Flat)
    }

    /// Implied volatility for an option expiring in `years` with `strike`,
    /// when the forward to that expiry is `forward`.
    ///
    /// Always finite and positive for a validated surface and positive,
    /// finite arguments.
    ///
    /// # Units
    /// Annualised decimal volatility.
    pub fn volatility(&self, years: f64, strike: f64, forward: f64) -> f64 {
        let _ = (years, strike, forward);
        match self {
            VolSurface::Flat(v) => *v,
        }
    }

    /// Every volatility multiplied by `factor` (a relative vol shock of
    /// `factor - 1`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] unless `factor` is finite and positive
    /// and every scaled volatility is finite and positive.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::VolSurface;
    /// assert_eq!(VolSurface::flat(0.5)?.scaled(1.2)?, VolSurface::flat(0.6)?);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn scaled(&self, factor: f64) -> Result<VolSurface> {
        positive("vol scale factor", factor)?;
        match self {
            VolSurface::Flat(v) => VolSurface::flat(v * factor),
        }
    }

    /// Every volatility plus `shift` (an absolute vol shock, annual decimal).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] unless `shift` is finite and every
    /// shifted volatility is finite and positive.
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::VolSurface;
    /// assert_eq!(VolSurface::flat(0.5)?.shifted(0.25)?, VolSurface::flat(0.75)?);
    /// assert!(VolSurface::flat(0.5)?.shifted(-0.5).is_err());
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn shifted(&self, shift: f64) -> Result<VolSurface> {
        crate::error::finite("vol shift", shift)?;
        match self {
            VolSurface::Flat(v) => VolSurface::flat(v + shift),
        }
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    pub enum VolSurface {
        Flat(f64),
    }

    impl TryFrom<VolSurface> for super::VolSurface {
        type Error = crate::Error;
        fn try_from(r: VolSurface) -> Result<Self> {
            match r {
                VolSurface::Flat(v) => super::VolSurface::flat(v),
            }
        }
    }

    impl From<super::VolSurface> for VolSurface {
        fn from(s: super::VolSurface) -> Self {
            match s {
                super::VolSurface::Flat(v) => VolSurface::Flat(v),
            }
        }
    }
}
