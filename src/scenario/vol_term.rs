//! Vol shocks that grow as expiry shortens, as crypto venues scale them.

use crate::error::{Error, Result, non_negative, positive};
use crate::scenario::ShockKind;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Scales each option's implied-vol shock by its time to expiry:
///
/// ```text
/// size_T = size x (reference_days / days)^p,   days = max(days to expiry, min_days)
/// p = short_power if days < reference_days, else long_power
/// ```
///
/// then applies `size_T` with the vol factor's [`ShockKind`]; an upward
/// shock (`size > 0`) never leaves the vol below `min_vol_up`. With a
/// relative vol shock this is Deribit's portfolio-margin rule
/// `IV x (1 + shock x (30/days)^p)` (published parameters for BTC: up
/// 50%, down 25%, short-term power 0.30 under 30 days, long-term power 0.13,
/// minimum vol after an up-shock 50%): short-dated vols move more than
/// long-dated ones.
///
/// Days are calendar days (ACT/365F) from the snapshot to the option's
/// expiry. Attached to a [`crate::ScenarioSet`] with
/// [`crate::ScenarioSet::with_vol_term_scaling`], it applies to every vol
/// factor of the set during revaluation ([`crate::RiskArrays`]);
/// [`crate::ScenarioSet::apply`], which shifts whole surfaces, ignores it.
///
/// ```
/// use portfolio_margin::{ShockKind, VolTermScaling};
/// let deribit = VolTermScaling::new(30.0, 0.30, 0.13, 1.0, 0.50)?;
/// // 30 days: the shock as given.
/// assert!((deribit.shocked_vol(ShockKind::Relative, 0.60, 0.5, 30.0) - 0.90).abs() < 1e-15);
/// // 15 days: x (30/15)^0.3.
/// let v = deribit.shocked_vol(ShockKind::Relative, 0.60, 0.5, 15.0);
/// assert!((v - 0.60 * (1.0 + 0.5 * 2f64.powf(0.3))).abs() < 1e-15);
/// // A low vol shocked up is floored at 50%.
/// assert_eq!(deribit.shocked_vol(ShockKind::Relative, 0.20, 0.5, 30.0), 0.50);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::VolTermScaling", into = "raw::VolTermScaling")
)]
pub struct VolTermScaling {
    reference_days: f64,
    short_power: f64,
    long_power: f64,
    min_days: f64,
    min_vol_up: f64,
}

impl VolTermScaling {
    /// A scaling rule.
    ///
    /// # Units
    /// `reference_days` and `min_days` in calendar days; powers are
    /// dimensionless; `min_vol_up` an annualised vol (decimal, 0 for no
    /// floor).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `reference_days` and `min_days` are
    /// finite and `> 0`, both powers finite and in `[0, 4]`, and
    /// `min_vol_up` finite and in `[0, 10]`.
    pub fn new(
        reference_days: f64,
        short_power: f64,
        long_power: f64,
        min_days: f64,
        min_vol_up: f64,
    ) -> Result<Self> {
        let reference_days = positive("vol term scaling reference days", reference_days)?;
        let min_days = positive("vol term scaling minimum days", min_days)?;
        for (what, p) in [
            ("vol term scaling short power", short_power),
            ("vol term scaling long power", long_power),
        ] {
            if !(0.0..=4.0).contains(&p) {
                return Err(Error::InvalidInput {
                    what,
                    rule: "in [0, 4]",
                    value: p,
                });
            }
        }
        let min_vol_up =
            non_negative("vol term scaling minimum vol after an up-shock", min_vol_up)?;
        if min_vol_up > 10.0 {
            return Err(Error::InvalidInput {
                what: "vol term scaling minimum vol after an up-shock",
                rule: "<= 10",
                value: min_vol_up,
            });
        }
        Ok(VolTermScaling {
            reference_days,
            short_power,
            long_power,
            min_days,
            min_vol_up,
        })
    }

    /// Reference tenor in calendar days (30 at Deribit).
    pub fn reference_days(&self) -> f64 {
        self.reference_days
    }
    /// Power below the reference tenor.
    pub fn short_power(&self) -> f64 {
        self.short_power
    }
    /// Power at and above the reference tenor.
    pub fn long_power(&self) -> f64 {
        self.long_power
    }
    /// Days to expiry are floored here (calendar days).
    pub fn min_days(&self) -> f64 {
        self.min_days
    }
    /// Lowest vol after an upward shock (annualised decimal).
    pub fn min_vol_up(&self) -> f64 {
        self.min_vol_up
    }

    /// The multiplier `(reference_days / days)^p` of a shock for an option
    /// `days` calendar days from expiry.
    pub fn factor(&self, days: f64) -> f64 {
        let days = if days.is_nan() {
            self.min_days
        } else {
            days.max(self.min_days)
        };
        let p = if days < self.reference_days {
            self.short_power
        } else {
            self.long_power
        };
        (self.reference_days / days).powf(p)
    }

    /// The vol `base` after a shock of `size` (applied as `kind`) to an
    /// option `days` calendar days from expiry. May be non-finite or
    /// non-positive for extreme inputs; revaluation checks it.
    pub fn shocked_vol(&self, kind: ShockKind, base: f64, size: f64, days: f64) -> f64 {
        self.shocked_vol_with_factor(kind, base, size, self.factor(days))
    }

    /// As [`VolTermScaling::shocked_vol`] with the option's
    /// [`VolTermScaling::factor`] computed once.
    pub(crate) fn shocked_vol_with_factor(
        &self,
        kind: ShockKind,
        base: f64,
        size: f64,
        factor: f64,
    ) -> f64 {
        let v = kind.apply(base, size * factor);
        if size > 0.0 {
            v.max(self.min_vol_up)
        } else {
            v
        }
    }
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct VolTermScaling {
        reference_days: f64,
        short_power: f64,
        long_power: f64,
        min_days: f64,
        min_vol_up: f64,
    }

    impl TryFrom<VolTermScaling> for super::VolTermScaling {
        type Error = Error;
        fn try_from(r: VolTermScaling) -> Result<Self> {
            super::VolTermScaling::new(
                r.reference_days,
                r.short_power,
                r.long_power,
                r.min_days,
                r.min_vol_up,
            )
        }
    }

    impl From<super::VolTermScaling> for VolTermScaling {
        fn from(s: super::VolTermScaling) -> Self {
            VolTermScaling {
                reference_days: s.reference_days,
                short_power: s.short_power,
                long_power: s.long_power,
                min_days: s.min_days,
                min_vol_up: s.min_vol_up,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_switch_at_the_reference_tenor_and_days_are_floored() {
        let s = VolTermScaling::new(30.0, 0.5, 0.25, 1.0, 0.0).unwrap();
        assert_eq!(s.factor(30.0), 1.0);
        assert!((s.factor(7.5) - 2.0).abs() < 1e-15); // (30/7.5)^0.5
        assert!((s.factor(480.0) - 0.5).abs() < 1e-15); // (30/480)^0.25
        assert_eq!(s.factor(0.01), s.factor(1.0));
        assert_eq!(s.factor(f64::NAN), s.factor(1.0));
        assert!(VolTermScaling::new(0.0, 0.3, 0.1, 1.0, 0.0).is_err());
        assert!(VolTermScaling::new(30.0, -0.1, 0.1, 1.0, 0.0).is_err());
        assert!(VolTermScaling::new(30.0, 0.3, 0.1, 1.0, f64::NAN).is_err());
    }

    #[test]
    fn downward_shocks_are_not_floored() {
        let s = VolTermScaling::new(30.0, 0.3, 0.13, 1.0, 0.5).unwrap();
        let v = s.shocked_vol(ShockKind::Relative, 0.4, -0.25, 30.0);
        assert!((v - 0.3).abs() < 1e-15);
        assert_eq!(s.shocked_vol(ShockKind::Relative, 0.4, 0.0, 30.0), 0.4);
    }
}
