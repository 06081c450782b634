//! Option sensitivities: the [`Greeks`] of one unit, of positions and of
//! whole portfolios.
//!
//! Fields are raw derivatives in the units below; conversions to desk units
//! (per vol point, per day, per basis point) are methods, never silent.

mod aggregate;
mod batch;
mod bump;

pub use aggregate::{PortfolioGreeks, UnderlyingGreeks, portfolio_greeks};
pub use batch::{GreeksBatch, OptionBatch};
pub(crate) use batch::{ScenarioMarket, ScenarioOption, ScenarioRates, scenario_values};
pub use bump::bump_greeks;

use crate::units::{BASIS_POINT, DayBasis, VOL_POINT};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::iter::Sum;
use std::ops::{Add, Mul};

/// Value and sensitivities of one instrument unit (or, scaled, of a position).
///
/// Units, for a value `V` in currency `C` of an underlying priced `U`:
///
/// | field | derivative | unit |
/// |---|---|---|
/// | `value` | `V` | `C` |
/// | `delta` | `dV/dU` | `C` per 1 `C` move of `U` |
/// | `gamma` | `d2V/dU2` | per `C` of `U` |
/// | `vega` | `dV/dsigma` | `C` per 1.00 of vol (use [`Greeks::vega_per_vol_point`]) |
/// | `theta` | `dV/dt`, calendar time passing | `C` per year (use [`Greeks::theta_per_day`]) |
/// | `rho` | `dV/dr` | `C` per 1.00 of rate (use [`Greeks::rho_per_bp`]) |
/// | `vanna` | `d2V/dU dsigma` | per 1.00 of vol |
/// | `volga` | `d2V/dsigma2` | `C` per 1.00 of vol squared |
/// | `charm` | `d(delta)/dt` | per year |
///
/// ```
/// use portfolio_margin::{DayBasis, Greeks};
/// let g = Greeks { vega: 20.0, theta: -36.5, ..Greeks::default() };
/// assert_eq!(g.vega_per_vol_point(), 0.2);
/// assert_eq!(g.theta_per_day(DayBasis::Calendar365), -0.1);
/// assert_eq!((g * 2.0).vega, 40.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Greeks {
    /// Value.
    pub value: f64,
    /// First derivative in the underlying price.
    pub delta: f64,
    /// Second derivative in the underlying price.
    pub gamma: f64,
    /// Derivative in volatility, per 1.00 (100 vol points).
    pub vega: f64,
    /// Derivative in calendar time passing, per year (`-dV/dT`).
    pub theta: f64,
    /// Derivative in the discount rate, per 1.00 (10 000 bp).
    pub rho: f64,
    /// Cross derivative in underlying price and volatility.
    pub vanna: f64,
    /// Second derivative in volatility (vomma).
    pub volga: f64,
    /// Derivative of delta in calendar time passing, per year.
    pub charm: f64,
}

impl Greeks {
    /// Vega per one volatility point (0.01).
    pub fn vega_per_vol_point(&self) -> f64 {
        self.vega * VOL_POINT
    }

    /// Theta per day on `basis` (calendar: /365, trading: /252).
    pub fn theta_per_day(&self, basis: DayBasis) -> f64 {
        self.theta / basis.days_per_year()
    }

    /// Rho per basis point (0.0001) of rate.
    pub fn rho_per_bp(&self) -> f64 {
        self.rho * BASIS_POINT
    }

    /// True when every field is finite.
    pub fn is_finite(&self) -> bool {
        self.fields().iter().all(|x| x.is_finite())
    }

    /// The fields in declaration order.
    pub fn fields(&self) -> [f64; 9] {
        [
            self.value, self.delta, self.gamma, self.vega, self.theta, self.rho, self.vanna,
            self.volga, self.charm,
        ]
    }
}

impl Add for Greeks {
    type Output = Greeks;
    fn add(self, o: Greeks) -> Greeks {
        Greeks {
            value: self.value + o.value,
            delta: self.delta + o.delta,
            gamma: self.gamma + o.gamma,
            vega: self.vega + o.vega,
            theta: self.theta + o.theta,
            rho: self.rho + o.rho,
            vanna: self.vanna + o.vanna,
            volga: self.volga + o.volga,
            charm: self.charm + o.charm,
        }
    }
}

impl Mul<f64> for Greeks {
    type Output = Greeks;
    fn mul(self, k: f64) -> Greeks {
        Greeks {
            value: self.value * k,
            delta: self.delta * k,
            gamma: self.gamma * k,
            vega: self.vega * k,
            theta: self.theta * k,
            rho: self.rho * k,
            vanna: self.vanna * k,
            volga: self.volga * k,
            charm: self.charm * k,
        }
    }
}

impl Sum for Greeks {
    fn sum<I: Iterator<Item = Greeks>>(iter: I) -> Greeks {
        iter.fold(Greeks::default(), Add::add)
    }
}
