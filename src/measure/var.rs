//! Value at risk of a P&L scenario vector.

use super::{QuantileRule, descending, losses_from_pnl, tail_scenario_count};
use crate::error::Result;
use crate::units::Confidence;

/// Value at risk of a P&L scenario vector at `confidence`, under `rule`.
///
/// An `O(n)` selection (no full sort); the result is bit-identical to
/// [`LossDistribution::value_at_risk`](crate::LossDistribution::value_at_risk).
/// The formulas (k-th largest loss with `k = ceil(n (1 - c))`, or numpy's linear
/// quantile) are in [`QuantileRule`].
///
/// # Units
/// P&L units; positive = loss (a book that gains in every scenario has a
/// negative VaR).
///
/// # Errors
/// [`Error::TooFew`](crate::Error::TooFew) if `pnl` is empty;
/// [`Error::InvalidElement`](crate::Error::InvalidElement) (with the index) if
/// an element is not finite.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, QuantileRule, value_at_risk};
/// // 100 scenarios with losses 1..=100: at 95%, k = 5 -> 5th largest loss = 96.
/// let pnl: Vec<f64> = (1..=100).map(|i| -(i as f64)).collect();
/// let c = Confidence::new(0.95)?;
/// assert_eq!(value_at_risk(&pnl, c, QuantileRule::Empirical)?, 96.0);
/// // np.quantile(np.arange(1, 101), 0.95) = 95.05
/// assert!((value_at_risk(&pnl, c, QuantileRule::Linear)? - 95.05).abs() < 1e-12);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn value_at_risk(pnl: &[f64], confidence: Confidence, rule: QuantileRule) -> Result<f64> {
    let mut losses = losses_from_pnl(pnl)?;
    Ok(select_value_at_risk(&mut losses, confidence, rule))
}

/// VaR from a non-empty, finite loss buffer whose order it may change.
pub(crate) fn select_value_at_risk(
    losses: &mut [f64],
    confidence: Confidence,
    rule: QuantileRule,
) -> f64 {
    let n = losses.len();
    debug_assert!(n > 0);
    match rule {
        QuantileRule::Empirical => {
            let k = tail_scenario_count(n, confidence);
            let (_, kth, _) = losses.select_nth_unstable_by(k - 1, descending);
            *kth
        }
        QuantileRule::Linear => {
            let (i, gamma) = linear_index(n, confidence);
            let (_, lo, above) = losses.select_nth_unstable_by(i, |a, b| a.total_cmp(b));
            let lo = *lo;
            let hi = above
                .iter()
                .copied()
                .min_by(|a, b| a.total_cmp(b))
                .unwrap_or(lo);
            linear_interpolate(lo, hi, gamma)
        }
    }
}

/// The k-th largest loss of a descending slice (`1 <= k <= len`).
pub(crate) fn empirical_from_descending(losses_descending: &[f64], k: usize) -> f64 {
    debug_assert!(k >= 1 && k <= losses_descending.len());
    losses_descending[k - 1]
}

/// numpy's linear-method index: ascending position `i` of the lower neighbour
/// and weight `gamma` of the upper one. `h = (n - 1) c`; when `h >= n - 1`
/// numpy takes the last element (`i = n - 1`, and the caller uses `hi = lo`).
pub(crate) fn linear_index(n: usize, confidence: Confidence) -> (usize, f64) {
    let last = n.saturating_sub(1);
    let h = last as f64 * confidence.level();
    if h >= last as f64 {
        return (last, 0.0);
    }
    let floor = h.floor();
    // 0 <= floor < n - 1: the cast is exact.
    (floor as usize, h - floor)
}

/// numpy's `_lerp(a, b, t)`: `a + (b - a) t` for `t < 0.5`, else
/// `b - (b - a)(1 - t)`. If `b - a` overflows (opposite signs near `f64::MAX`)
/// it falls back to `a (1 - t) + b t`, whose two terms have opposite signs and
/// cannot overflow.
pub(crate) fn linear_interpolate(lo: f64, hi: f64, gamma: f64) -> f64 {
    let diff = hi - lo;
    if !diff.is_finite() {
        return lo * (1.0 - gamma) + hi * gamma;
    }
    if gamma >= 0.5 {
        hi - diff * (1.0 - gamma)
    } else {
        lo + diff * gamma
    }
}

/// Linear-rule VaR from losses sorted descending.
pub(crate) fn linear_from_descending(losses_descending: &[f64], confidence: Confidence) -> f64 {
    let n = losses_descending.len();
    let (i, gamma) = linear_index(n, confidence);
    // Ascending index a is descending index n - 1 - a.
    let lo = losses_descending[n - 1 - i];
    let hi = if i + 1 < n {
        losses_descending[n - 2 - i]
    } else {
        lo
    };
    linear_interpolate(lo, hi, gamma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::measure::LossDistribution;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    #[test]
    fn selection_matches_sorted_distribution_bitwise() {
        // A deterministic scrambled sample with ties and signed zeros.
        let mut pnl: Vec<f64> = (0..997)
            .map(|i| (((i * 7919) % 1013) as f64 - 500.0) * 0.37)
            .collect();
        pnl.extend([0.0, -0.0, 0.0, 12.5, 12.5, -12.5]);
        let dist = LossDistribution::from_pnl(&pnl).unwrap();
        for level in [0.001, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9999] {
            for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
                let a = value_at_risk(&pnl, c(level), rule).unwrap();
                let b = dist.value_at_risk(c(level), rule);
                assert_eq!(a.to_bits(), b.to_bits(), "{level} {rule:?}");
            }
        }
    }

    #[test]
    fn linear_matches_hand_computed_numpy_values() {
        // np.quantile([1, 2, 3, 4], [0.5, 0.9, 0.99]) = 2.5, 3.7, 3.97
        let pnl = [-4.0, -1.0, -3.0, -2.0];
        for (level, expected) in [(0.5, 2.5), (0.9, 3.7), (0.99, 3.97)] {
            let v = value_at_risk(&pnl, c(level), QuantileRule::Linear).unwrap();
            assert!((v - expected).abs() < 1e-15, "{level}: {v}");
        }
    }

    #[test]
    fn errors_name_the_index() {
        let err = value_at_risk(&[0.0, f64::INFINITY], c(0.9), QuantileRule::Linear).unwrap_err();
        assert!(matches!(err, Error::InvalidElement { index: 1, .. }));
        assert!(matches!(
            value_at_risk(&[], c(0.9), QuantileRule::Empirical),
            Err(Error::TooFew { .. })
        ));
    }
}
