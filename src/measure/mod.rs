//! Risk measures on plain P&L scenario vectors: VaR, ES, their Euler allocation,
//! parametric (delta-normal, delta-gamma) VaR and VaR backtests.
//!
//! This module knows nothing about instruments: every function takes `&[f64]`
//! P&L, one number per scenario (or per day for backtests).
//!
//! The conventions (sign, tail size, quantile rules, summation order) are
//! documented on [`QuantileRule`].

mod attribution;
mod backtest;
mod es;
mod parametric;
mod var;

pub(crate) use attribution::check_position_pnl;
pub use attribution::{PositionRisk, RiskAttribution, attribute_risk, attribute_risk_per_unit};
pub use backtest::{
    BASEL_RED_PROBABILITY, BASEL_YELLOW_PROBABILITY, BacktestSummary, ChristoffersenTest,
    LikelihoodRatioTest, TrafficLight, TrafficLightZones, backtest, christoffersen_test,
    kupiec_test, traffic_light, traffic_light_zones, var_exceptions,
};
pub use es::expected_shortfall;
pub use parametric::{
    COVARIANCE_PSD_TOLERANCE, COVARIANCE_SYMMETRY_TOLERANCE, CovarianceMatrix, DeltaGammaVar,
    delta_gamma_value_at_risk, delta_normal_risk,
};
pub use var::value_at_risk;

use crate::error::{Error, Result};
use crate::units::Confidence;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Relative tolerance within which the tail size `n (1 - c)` is snapped to the
/// nearest integer before it is rounded (see [`QuantileRule`]).
pub const TAIL_SIZE_SNAP: f64 = 1e-9;

/// How VaR and ES are read off a finite set of scenario losses.
///
/// # Conventions
///
/// - **Sign.** P&L positive = gain; the loss of a scenario is `-P&L`. VaR and ES
///   are reported as losses: a positive number is a loss, a negative one a gain
///   (a book that gains in every scenario has a negative VaR). Nothing is floored
///   here; floors live in `margin`.
/// - **Confidence** `c` is a [`Confidence`](crate::Confidence) in `(0, 1)`,
///   e.g. `0.99`; the tail probability is `1 - c`.
/// - **Tail size.** Of `n` scenarios the tail holds `m = n (1 - c)` scenarios. The
///   product is computed in floating point, where `1 - 0.99` is
///   `0.010000000000000009`, so `500 * (1 - 0.99)` is `5.000000000000004`,
///   not 5. Before rounding, `m` is snapped to the nearest integer `r` when
///   `|m - r| <= TAIL_SIZE_SNAP * m` ([`TAIL_SIZE_SNAP`] = `1e-9`, relative). A
///   genuine fractional part smaller than a billionth of the tail size cannot be
///   told apart from rounding noise of the subtraction `1 - c` (relative error up
///   to `1.1e-16 / (1 - c)`), so it is treated as such.
///
/// # The rules
///
/// Write the losses in descending order `L(1) >= L(2) >= ... >= L(n)`.
///
/// - `Empirical` (default): `k = ceil(m)` clamped to `1..=n`,
///   `VaR = L(k)` (the k-th largest loss) and `ES = (L(1) + ... + L(k)) / k`
///   (the mean of the k largest losses). With `n = 250`, `c = 0.99`: `k = 3`,
///   VaR is the 3rd largest loss. ES >= VaR always.
/// - `Linear`: VaR is numpy's default
///   `np.quantile(losses, c, method="linear")` (Hyndman & Fan 1996, definition 7),
///   bit for bit: with the losses ascending `x[0] <= ... <= x[n-1]`,
///   `h = (n - 1) c`, `i = floor(h)`, `g = h - i`, `d = x[i+1] - x[i]`,
///   `VaR = x[i] + d g` if `g < 0.5`, else `x[i+1] - d (1 - g)`
///   (`VaR = x[n-1]` when `h >= n - 1`). ES is the Acerbi-Tasche (2002)
///   fractional-tail mean: with `j = floor(m)`,
///   `ES = (L(1) + ... + L(j) + (m - j) L(j+1)) / m` (`ES = L(1)` when
///   `m <= 1`), i.e. the average of the empirical quantile function over
///   `(c, 1)`. This ES is coherent, and it is >= the linear VaR
///   `(1 - g) x[i] + g x[i+1]`: every tail value is `>= x[floor(nc)] >= x[i]`,
///   and at least the weight `g` of the tail average falls on values
///   `>= x[i+1]` (when `floor(nc) = i` that weight is
///   `(n - i - 1) / (n (1 - c)) >= g`).
///
/// Both rules give exact results from the sorted losses; the only rounding is
/// in sums. Sums are added in descending loss order, one by one, so results are
/// bit-identical across runs, platforms and call paths ([`value_at_risk`],
/// [`expected_shortfall`], [`LossDistribution`] agree to the bit). Because the
/// exact ES is never below the exact VaR, a computed ES that rounds below the
/// VaR (only possible when the tail losses are all equal) is raised to the VaR.
///
/// ES is the expected shortfall (conditional VaR, tail VaR) of Artzner, Delbaen,
/// Eber & Heath (1999), "Coherent measures of risk", and Acerbi & Tasche (2002),
/// "On the coherence of expected shortfall".
///
/// # Examples
/// ```
/// use portfolio_margin::QuantileRule;
/// assert_eq!(QuantileRule::default(), QuantileRule::Empirical);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum QuantileRule {
    /// VaR = k-th largest loss with `k = ceil(n (1 - c))`; ES = mean of the k
    /// largest losses.
    #[default]
    Empirical,
    /// VaR = numpy's default linear-interpolation quantile of the losses at `c`;
    /// ES = Acerbi-Tasche fractional-tail mean.
    Linear,
}

/// VaR and ES of one loss distribution at one confidence and rule.
///
/// # Units
/// Both in the units of the P&L they were computed from; positive = loss.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RiskMeasures {
    /// Value at risk.
    pub value_at_risk: f64,
    /// Expected shortfall (>= `value_at_risk`).
    pub expected_shortfall: f64,
}

/// The tail size `m = n (1 - c)`, snapped to an integer within
/// [`TAIL_SIZE_SNAP`] (relative).
pub(crate) fn tail_size(scenarios: usize, confidence: Confidence) -> f64 {
    let m = scenarios as f64 * confidence.tail();
    let r = m.round();
    if (m - r).abs() <= TAIL_SIZE_SNAP * m {
        r
    } else {
        m
    }
}

/// Number of tail scenarios `k = ceil(n (1 - c))` of the empirical rule, with
/// the tail size snapped as described in [`QuantileRule`], clamped to
/// `1..=scenarios` (0 if `scenarios` is 0).
///
/// ```
/// use portfolio_margin::{Confidence, tail_scenario_count};
/// let c = Confidence::new(0.99)?;
/// assert_eq!(500.0 * (1.0 - 0.99_f64), 5.000000000000004); // naive ceil gives 6
/// assert_eq!(tail_scenario_count(500, c), 5);
/// assert_eq!(tail_scenario_count(250, c), 3);
/// assert_eq!(tail_scenario_count(10, c), 1);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn tail_scenario_count(scenarios: usize, confidence: Confidence) -> usize {
    if scenarios == 0 {
        return 0;
    }
    let k = tail_size(scenarios, confidence).ceil();
    // `k` is in (0, n]; the float-to-int cast saturates, the clamp bounds it.
    (k as usize).clamp(1, scenarios)
}

/// Validates P&L (non-empty, finite) and returns the losses `-P&L`.
pub(crate) fn losses_from_pnl(pnl: &[f64]) -> Result<Vec<f64>> {
    check_pnl(pnl)?;
    Ok(pnl.iter().map(|p| -p).collect())
}

/// Validates a P&L slice: non-empty, every element finite.
pub(crate) fn check_pnl(pnl: &[f64]) -> Result<()> {
    if pnl.is_empty() {
        return Err(Error::TooFew {
            what: "P&L scenarios",
            min: 1,
            got: 0,
        });
    }
    check_finite_elements("P&L", pnl)
}

/// Every element of `values` must be finite.
pub(crate) fn check_finite_elements(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::InvalidElement {
            what,
            index,
            rule: "finite",
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Descending total order used for every sort and selection of losses.
pub(crate) fn descending(a: &f64, b: &f64) -> Ordering {
    b.total_cmp(a)
}

/// A non-finite aggregate becomes [`Error::NonFiniteResult`].
pub(crate) fn finite_result(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteResult { what, value })
    }
}

/// Scenario losses sorted once, answering VaR and ES at any confidence and rule.
///
/// Sorting costs `O(n log n)` once; each query is then `O(k)` (the tail sum).
/// For a single VaR, [`value_at_risk`] (an `O(n)` selection) is cheaper.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, LossDistribution, QuantileRule};
/// // Ten scenarios; losses are 1..=10.
/// let pnl: Vec<f64> = (1..=10).map(|i| -(i as f64)).collect();
/// let dist = LossDistribution::from_pnl(&pnl)?;
/// let c = Confidence::new(0.8)?; // k = ceil(10 * 0.2) = 2
/// assert_eq!(dist.value_at_risk(c, QuantileRule::Empirical), 9.0);
/// assert_eq!(dist.expected_shortfall(c, QuantileRule::Empirical)?, 9.5);
/// // numpy: np.quantile(losses, 0.8) = 8.2
/// assert!((dist.value_at_risk(c, QuantileRule::Linear) - 8.2).abs() < 1e-12);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct LossDistribution {
    /// Losses (`-P&L`), largest first (total order).
    losses_descending: Vec<f64>,
}

impl LossDistribution {
    /// Sorts the losses of a P&L scenario vector.
    ///
    /// # Errors
    /// [`Error::TooFew`] if `pnl` is empty; [`Error::InvalidElement`] (with the
    /// index) if an element is not finite.
    pub fn from_pnl(pnl: &[f64]) -> Result<Self> {
        let mut losses = losses_from_pnl(pnl)?;
        losses.sort_unstable_by(descending);
        Ok(LossDistribution {
            losses_descending: losses,
        })
    }

    /// Number of scenarios (at least 1).
    pub fn len(&self) -> usize {
        self.losses_descending.len()
    }

    /// Always `false`: a distribution has at least one scenario.
    pub fn is_empty(&self) -> bool {
        self.losses_descending.is_empty()
    }

    /// The losses (`-P&L`), largest first.
    pub fn losses_descending(&self) -> &[f64] {
        &self.losses_descending
    }

    /// Value at risk at `confidence` under `rule`.
    ///
    /// # Units
    /// P&L units; positive = loss.
    pub fn value_at_risk(&self, confidence: Confidence, rule: QuantileRule) -> f64 {
        let desc = &self.losses_descending;
        match rule {
            QuantileRule::Empirical => {
                let k = tail_scenario_count(desc.len(), confidence);
                var::empirical_from_descending(desc, k)
            }
            QuantileRule::Linear => var::linear_from_descending(desc, confidence),
        }
    }

    /// Expected shortfall at `confidence` under `rule`.
    ///
    /// # Units
    /// P&L units; positive = loss. Always `>=` [`Self::value_at_risk`] with the
    /// same arguments.
    ///
    /// # Errors
    /// [`Error::NonFiniteResult`] only if the tail mean itself is out of the
    /// `f64` range (a tail sum that overflows is redone as a sum of `loss / k`).
    pub fn expected_shortfall(&self, confidence: Confidence, rule: QuantileRule) -> Result<f64> {
        let var = self.value_at_risk(confidence, rule);
        let desc = &self.losses_descending;
        match rule {
            QuantileRule::Empirical => {
                let k = tail_scenario_count(desc.len(), confidence);
                es::empirical_from_descending(&desc[..k], var)
            }
            QuantileRule::Linear => es::linear_from_descending(desc, desc.len(), confidence, var),
        }
    }

    /// VaR and ES together.
    ///
    /// # Errors
    /// As [`Self::expected_shortfall`].
    pub fn measures(&self, confidence: Confidence, rule: QuantileRule) -> Result<RiskMeasures> {
        Ok(RiskMeasures {
            value_at_risk: self.value_at_risk(confidence, rule),
            expected_shortfall: self.expected_shortfall(confidence, rule)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    #[test]
    fn tail_count_is_robust_to_float_noise() {
        assert_eq!(tail_scenario_count(500, c(0.99)), 5);
        assert_eq!(tail_scenario_count(1000, c(0.99)), 10);
        assert_eq!(tail_scenario_count(1000, c(0.975)), 25);
        assert_eq!(tail_scenario_count(250, c(0.975)), 7); // 6.25 -> 7
        assert_eq!(tail_scenario_count(100_000, c(0.999)), 100);
        assert_eq!(tail_scenario_count(3, c(0.999_999)), 1);
        assert_eq!(tail_scenario_count(7, c(1e-12)), 7);
        assert_eq!(tail_scenario_count(0, c(0.5)), 0);
        // Every n and every confidence with two decimals: k = ceil exactly.
        for n in 1..=2000usize {
            for pct in 1..100usize {
                let exact_num = n * (100 - pct); // m = exact_num / 100
                let expected = exact_num.div_ceil(100).clamp(1, n);
                let level = pct as f64 / 100.0;
                assert_eq!(
                    tail_scenario_count(n, c(level)),
                    expected,
                    "n={n} c={level}"
                );
            }
        }
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(
            LossDistribution::from_pnl(&[]).unwrap_err(),
            Error::TooFew {
                what: "P&L scenarios",
                min: 1,
                got: 0
            }
        );
        let err = LossDistribution::from_pnl(&[1.0, 2.0, f64::NAN]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidElement { index: 2, .. }),
            "{err:?}"
        );
        let err = LossDistribution::from_pnl(&[f64::NEG_INFINITY]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidElement { index: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn small_example_both_rules() {
        // Losses 1..=10 (P&L -1..-10).
        let pnl: Vec<f64> = (1..=10).map(|i| -(i as f64)).collect();
        let d = LossDistribution::from_pnl(&pnl).unwrap();
        // c = 0.75: m = 2.5, k = 3: VaR = 8, ES = (10 + 9 + 8) / 3 = 9.
        let m = d.measures(c(0.75), QuantileRule::Empirical).unwrap();
        assert_eq!(m.value_at_risk, 8.0);
        assert_eq!(m.expected_shortfall, 9.0);
        // Linear: h = 9 * 0.75 = 6.75 -> 7 + 0.75 * 1 = 7.75 (numpy 7.75).
        let l = d.measures(c(0.75), QuantileRule::Linear).unwrap();
        assert_eq!(l.value_at_risk, 7.75);
        // Acerbi-Tasche: (10 + 9 + 0.5 * 8) / 2.5 = 9.2.
        assert!((l.expected_shortfall - 9.2).abs() < 1e-14);
        // One scenario: everything is that loss.
        let one = LossDistribution::from_pnl(&[-3.0]).unwrap();
        for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
            for level in [0.01, 0.5, 0.99] {
                let r = one.measures(c(level), rule).unwrap();
                assert_eq!((r.value_at_risk, r.expected_shortfall), (3.0, 3.0));
            }
        }
    }

    #[test]
    fn es_never_rounds_below_var() {
        // Sums of equal values can round down: 0.1 * 3 summed is not 0.3 exactly.
        for x in [0.1, 0.7, 1.0 / 3.0, 2.2e-308, 1e300] {
            let pnl = vec![-x; 7];
            let d = LossDistribution::from_pnl(&pnl).unwrap();
            for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
                let r = d.measures(c(0.5), rule).unwrap();
                assert!(
                    r.expected_shortfall >= r.value_at_risk,
                    "{x} {rule:?} {r:?}"
                );
            }
        }
    }

    #[test]
    fn huge_losses_stay_finite() {
        let pnl = vec![-f64::MAX; 4];
        let d = LossDistribution::from_pnl(&pnl).unwrap();
        for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
            assert_eq!(d.value_at_risk(c(0.5), rule), f64::MAX);
            assert_eq!(d.expected_shortfall(c(0.5), rule).unwrap(), f64::MAX);
        }
        // x[i+1] - x[i] overflows: the interpolation falls back to a convex
        // combination of opposite-sign terms.
        let mixed = LossDistribution::from_pnl(&[f64::MAX, -f64::MAX]).unwrap();
        assert_eq!(mixed.value_at_risk(c(0.5), QuantileRule::Linear), 0.0);
        let v = mixed.value_at_risk(c(0.75), QuantileRule::Linear);
        assert!((v - 0.5 * f64::MAX).abs() <= 1e-15 * f64::MAX, "{v}");
    }
}
