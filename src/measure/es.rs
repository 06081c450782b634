//! Expected shortfall of a P&L scenario vector.

use super::{
    QuantileRule, descending, finite_result, losses_from_pnl, tail_scenario_count, tail_size, var,
};
use crate::error::Result;
use crate::units::Confidence;

/// Expected shortfall (the mean loss beyond VaR) of a P&L scenario vector at
/// `confidence`, under `rule`.
///
/// Selects the tail in `O(n)`, then sorts only the tail; the result is
/// bit-identical to
/// [`LossDistribution::expected_shortfall`](crate::LossDistribution::expected_shortfall).
/// Empirical: mean of the `k = ceil(n (1 - c))` largest losses; linear:
/// Acerbi-Tasche fractional-tail mean (formulas in [`QuantileRule`]). The tail
/// is added largest loss first, one by one. Artzner et al. (1999); Acerbi &
/// Tasche (2002).
///
/// # Units
/// P&L units; positive = loss. Always `>=` [`value_at_risk`](crate::value_at_risk)
/// with the same arguments.
///
/// # Errors
/// [`Error::TooFew`](crate::Error::TooFew) if `pnl` is empty;
/// [`Error::InvalidElement`](crate::Error::InvalidElement) (with the index) if
/// an element is not finite; [`Error::NonFiniteResult`](crate::Error::NonFiniteResult)
/// only if the tail mean is outside the `f64` range.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, QuantileRule, expected_shortfall};
/// // Losses 1..=100: at 95%, k = 5, ES = (100 + 99 + 98 + 97 + 96) / 5 = 98.
/// let pnl: Vec<f64> = (1..=100).map(|i| -(i as f64)).collect();
/// let c = Confidence::new(0.95)?;
/// assert_eq!(expected_shortfall(&pnl, c, QuantileRule::Empirical)?, 98.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn expected_shortfall(pnl: &[f64], confidence: Confidence, rule: QuantileRule) -> Result<f64> {
    let mut losses = losses_from_pnl(pnl)?;
    let n = losses.len();
    let var = var::select_value_at_risk(&mut losses, confidence, rule);
    let prefix = match rule {
        QuantileRule::Empirical => tail_scenario_count(n, confidence),
        QuantileRule::Linear => linear_prefix_len(n, confidence),
    };
    if prefix < n {
        losses.select_nth_unstable_by(prefix - 1, descending);
    }
    let top = &mut losses[..prefix];
    top.sort_unstable_by(descending);
    match rule {
        QuantileRule::Empirical => empirical_from_descending(top, var),
        QuantileRule::Linear => linear_from_descending(top, n, confidence, var),
    }
}

/// How many of the largest losses the linear-rule ES reads: `floor(m) + 1`,
/// at most `n`.
fn linear_prefix_len(n: usize, confidence: Confidence) -> usize {
    let m = tail_size(n, confidence);
    // m in (0, n]; the cast saturates and the clamp bounds it.
    ((m.floor() as usize).saturating_add(1)).clamp(1, n)
}

/// Mean of the tail losses `top_k` (descending), added in order; never below
/// `var`.
pub(crate) fn empirical_from_descending(top_k: &[f64], var: f64) -> Result<f64> {
    let k = top_k.len() as f64;
    let mut sum = 0.0;
    for &loss in top_k {
        sum += loss;
    }
    let mut mean = sum / k;
    if !mean.is_finite() {
        // The sum overflowed although every loss is finite: average the scaled
        // losses instead (same order, deterministic).
        mean = 0.0;
        for &loss in top_k {
            mean += loss / k;
        }
    }
    finite_result("expected shortfall", mean.max(var))
}

/// Acerbi-Tasche fractional-tail mean from the largest losses (descending; at
/// least `floor(m) + 1` of them, or all `n`), never below `var`.
pub(crate) fn linear_from_descending(
    losses_descending: &[f64],
    n: usize,
    confidence: Confidence,
    var: f64,
) -> Result<f64> {
    let m = tail_size(n, confidence);
    let Some(&largest) = losses_descending.first() else {
        return finite_result("expected shortfall", var);
    };
    if m <= 1.0 {
        return finite_result("expected shortfall", largest.max(var));
    }
    // 1 < m <= n, so 1 <= whole <= n.
    let whole = (m.floor() as usize).min(losses_descending.len());
    let frac = m - whole as f64;
    let partial = if frac > 0.0 {
        losses_descending.get(whole).copied()
    } else {
        None
    };
    let mut sum = 0.0;
    for &loss in &losses_descending[..whole] {
        sum += loss;
    }
    if let Some(loss) = partial {
        sum += frac * loss;
    }
    let mut es = sum / m;
    if !es.is_finite() {
        es = 0.0;
        for &loss in &losses_descending[..whole] {
            es += loss / m;
        }
        if let Some(loss) = partial {
            es += frac * (loss / m);
        }
    }
    finite_result("expected shortfall", es.max(var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LossDistribution;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    #[test]
    fn selection_matches_sorted_distribution_bitwise() {
        let pnl: Vec<f64> = (0..1001)
            .map(|i| ((i * 4_567 % 2_003) as f64).sin() * 1e3 + (i % 7) as f64)
            .collect();
        let dist = LossDistribution::from_pnl(&pnl).unwrap();
        for level in [0.001, 0.3, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9999] {
            for rule in [QuantileRule::Empirical, QuantileRule::Linear] {
                let a = expected_shortfall(&pnl, c(level), rule).unwrap();
                let b = dist.expected_shortfall(c(level), rule).unwrap();
                assert_eq!(a.to_bits(), b.to_bits(), "{level} {rule:?}");
                assert!(a >= dist.value_at_risk(c(level), rule));
            }
        }
    }

    #[test]
    fn linear_es_is_the_tail_average_of_the_empirical_quantile() {
        // Losses 1..=8, c = 0.7: m = 2.4 -> (8 + 7 + 0.4 * 6) / 2.4.
        let pnl: Vec<f64> = (1..=8).map(|i| -(i as f64)).collect();
        let es = expected_shortfall(&pnl, c(0.7), QuantileRule::Linear).unwrap();
        assert!((es - (8.0 + 7.0 + 0.4 * 6.0) / 2.4).abs() < 1e-14, "{es}");
        // m integer -> equals the empirical ES.
        let a = expected_shortfall(&pnl, c(0.75), QuantileRule::Linear).unwrap();
        let b = expected_shortfall(&pnl, c(0.75), QuantileRule::Empirical).unwrap();
        assert_eq!(a, b);
    }
}
