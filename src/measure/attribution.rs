//! Euler allocation of historical / Monte Carlo VaR and ES to positions.
//! Details on [`RiskAttribution`].

use super::{RiskMeasures, check_finite_elements, finite_result, tail_scenario_count};
use crate::error::{Error, Result};
use crate::units::Confidence;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// One position's share of the book's VaR and ES.
///
/// # Units
/// `component_*`, `incremental_*`: P&L units (positive = adds loss);
/// `marginal_*`: P&L units per unit of quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PositionRisk {
    /// Euler component of VaR: the position's loss in the VaR scenario.
    pub component_var: f64,
    /// Euler component of ES: the position's mean loss over the book's tail.
    pub component_es: f64,
    /// `dVaR/dq`: the unit loss in the VaR scenario.
    pub marginal_var: f64,
    /// `dES/dq`: the mean unit loss over the book's tail.
    pub marginal_es: f64,
    /// Book VaR minus the VaR of the book without this position.
    pub incremental_var: f64,
    /// Book ES minus the ES of the book without this position.
    pub incremental_es: f64,
}

/// The book's VaR and ES and their allocation to positions (empirical rule).
///
/// The book's P&L in scenario `s` is `P(s) = sum_i q_i u_i(s)`, with `u_i` the
/// P&L of one unit of position `i` and `q_i` its quantity. VaR and ES are
/// positively homogeneous in `q`, so by Euler's theorem
/// `R(q) = sum_i q_i dR/dq_i`. For the empirical estimators (Tasche 1999,
/// "Risk contributions and performance measurement"; Hallerbach 2003,
/// "Decomposing portfolio value-at-risk: a general analysis"):
///
/// - **ES**: with `T` the `k = ceil(n (1 - c))` scenarios of largest book loss,
///   `dES/dq_i = -(1/k) sum_{s in T} u_i(s)`: the position's mean unit loss over
///   the book's tail. Components sum to the total ES.
/// - **VaR**: `dVaR/dq_i = -u_i(s*)`, the position's unit loss in the VaR
///   scenario `s*` (the scenario whose loss is the k-th largest). This is the
///   derivative of the order statistic (exact where the scenario ordering does
///   not change); it is noisy, since it rests on one scenario. No kernel
///   smoothing is applied: a smoothed allocation would no longer be the
///   derivative of the reported VaR. Prefer the ES components for stable
///   allocation. Components sum to the total VaR.
///
/// Ties in the book loss are broken by scenario index (lower index first), so
/// the tail set and `s*` are deterministic.
///
/// - **component** = `q_i dR/dq_i`, computed from the position's P&L
///   `q_i u_i(s)` directly;
/// - **marginal** = `dR/dq_i`, per unit of quantity (from `u_i`);
/// - **incremental** = `R(book) - R(book without position i)`, a finite
///   difference, not additive.
///
/// Only the empirical rule ([`QuantileRule::Empirical`](crate::QuantileRule)) is
/// allocated: its tail is a set of whole scenarios.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RiskAttribution {
    /// Book VaR and ES, identical to
    /// [`value_at_risk`](crate::value_at_risk) /
    /// [`expected_shortfall`](crate::expected_shortfall) of the book P&L with
    /// [`QuantileRule::Empirical`](crate::QuantileRule::Empirical).
    pub total: RiskMeasures,
    /// Index of the VaR scenario `s*` (the k-th largest book loss).
    pub var_scenario: usize,
    /// The `k` tail scenarios, largest book loss first.
    pub tail_scenarios: Vec<usize>,
    /// One entry per position, in input order.
    pub positions: Vec<PositionRisk>,
}

/// Euler allocation of VaR and ES when each row is a position's P&L as held.
///
/// `position_pnl[i][s]` is position `i`'s P&L in scenario `s`. Marginals are
/// per unit of scaling of the position at its current size (`q_i = 1`), so
/// they equal the components. See [`attribute_risk_per_unit`] for the
/// definitions.
///
/// # Errors
/// As [`attribute_risk_per_unit`].
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, attribute_risk};
/// let a = [-5.0, 1.0, -2.0, 0.5];
/// let b = [1.0, -4.0, -2.5, 0.0];
/// let r = attribute_risk(&[&a, &b], Confidence::new(0.5)?)?;
/// // Book losses 4, 3, 4.5, -0.5: k = 2, tail = scenarios 2 then 0.
/// assert_eq!(r.tail_scenarios, vec![2, 0]);
/// assert_eq!(r.total.value_at_risk, 4.0);
/// let sum_es: f64 = r.positions.iter().map(|p| p.component_es).sum();
/// assert!((sum_es - r.total.expected_shortfall).abs() < 1e-12);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn attribute_risk(position_pnl: &[&[f64]], confidence: Confidence) -> Result<RiskAttribution> {
    let ones = vec![1.0; position_pnl.len()];
    attribute_risk_per_unit(position_pnl, &ones, confidence)
}

/// Euler allocation of VaR and ES from unit P&L and quantities.
///
/// `unit_pnl[i][s]` is the P&L of one unit of position `i` in scenario `s`;
/// the book P&L is `sum_i quantities[i] * unit_pnl[i][s]` (added in position
/// order). Components, marginals and incrementals as in
/// [`RiskAttribution`]: ES components are `-(1/k) sum_{s in T} q_i u_i(s)`,
/// VaR components `-q_i u_i(s*)`. The VaR components sum to the total VaR to
/// the last bit; the ES components sum to the total ES up to rounding
/// (different addition order).
///
/// # Units
/// As the P&L; marginals per unit of quantity.
///
/// # Errors
/// [`Error::TooFew`] for no positions or no scenarios;
/// [`Error::LengthMismatch`] if rows differ in length or `quantities` does not
/// have one entry per position; [`Error::InvalidElement`] for a non-finite
/// P&L (index `position * scenarios + scenario`) or quantity;
/// [`Error::NonFiniteResult`] if a book P&L overflows.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, attribute_risk_per_unit};
/// let unit = [-1.0, 2.0, -3.0, 0.5];
/// let r = attribute_risk_per_unit(&[&unit], &[10.0], Confidence::new(0.75)?)?;
/// // One position: book losses 10, -20, 30, -5; k = 1, VaR = ES = 30.
/// assert_eq!(r.total.value_at_risk, 30.0);
/// assert_eq!(r.positions[0].marginal_var, 3.0);
/// assert_eq!(r.positions[0].incremental_es, 30.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn attribute_risk_per_unit(
    unit_pnl: &[&[f64]],
    quantities: &[f64],
    confidence: Confidence,
) -> Result<RiskAttribution> {
    let n = check_position_pnl(unit_pnl)?;
    if quantities.len() != unit_pnl.len() {
        return Err(Error::LengthMismatch {
            what: "quantities (one per position)",
            expected: unit_pnl.len(),
            got: quantities.len(),
        });
    }
    check_finite_elements("quantities", quantities)?;

    // Book P&L, added in position order.
    let mut book = vec![0.0; n];
    for (row, &q) in unit_pnl.iter().zip(quantities) {
        for (b, &u) in book.iter_mut().zip(row.iter()) {
            *b += q * u;
        }
    }
    if let Some(s) = book.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteResult {
            what: "book P&L",
            value: book[s],
        });
    }

    let k = tail_scenario_count(n, confidence);
    let tail = tail_order(&book, k);
    let var_scenario = tail[k - 1];
    let total = tail_measures(&book, &tail)?;
    let kf = k as f64;

    let mut positions = Vec::with_capacity(unit_pnl.len());
    let mut without = vec![0.0; n];
    for (row, &q) in unit_pnl.iter().zip(quantities) {
        let mut unit_sum = 0.0;
        let mut position_sum = 0.0;
        for &s in &tail {
            unit_sum += row[s];
            position_sum += q * row[s];
        }
        for ((w, &b), &u) in without.iter_mut().zip(&book).zip(row.iter()) {
            *w = b - q * u;
        }
        let other_tail = tail_order(&without, k);
        let other = tail_measures(&without, &other_tail)?;
        positions.push(PositionRisk {
            component_var: -(q * row[var_scenario]),
            component_es: finite_result("component ES", -position_sum / kf)?,
            marginal_var: -row[var_scenario],
            marginal_es: finite_result("marginal ES", -unit_sum / kf)?,
            incremental_var: finite_result(
                "incremental VaR",
                total.value_at_risk - other.value_at_risk,
            )?,
            incremental_es: finite_result(
                "incremental ES",
                total.expected_shortfall - other.expected_shortfall,
            )?,
        });
    }
    Ok(RiskAttribution {
        total,
        var_scenario,
        tail_scenarios: tail,
        positions,
    })
}

/// Indices of the `k` largest losses (`-pnl`), largest first, ties by index.
fn tail_order(pnl: &[f64], k: usize) -> Vec<usize> {
    // Larger loss = smaller P&L.
    let order = |a: &usize, b: &usize| -> Ordering { pnl[*a].total_cmp(&pnl[*b]).then(a.cmp(b)) };
    let mut idx: Vec<usize> = (0..pnl.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_unstable_by(order);
    idx
}

/// VaR and ES of a P&L vector from its tail order, with the same arithmetic as
/// [`expected_shortfall`](super::expected_shortfall).
fn tail_measures(pnl: &[f64], tail: &[usize]) -> Result<RiskMeasures> {
    let losses: Vec<f64> = tail.iter().map(|&s| -pnl[s]).collect();
    let value_at_risk = losses.last().copied().unwrap_or(0.0);
    let expected_shortfall = super::es::empirical_from_descending(&losses, value_at_risk)?;
    Ok(RiskMeasures {
        value_at_risk,
        expected_shortfall,
    })
}

/// Checks per-position P&L rows: at least one position and one scenario,
/// every row the same length, every entry finite. Returns the number of
/// scenarios.
pub(crate) fn check_position_pnl(rows: &[&[f64]]) -> Result<usize> {
    let Some(first) = rows.first() else {
        return Err(Error::TooFew {
            what: "positions",
            min: 1,
            got: 0,
        });
    };
    let n = first.len();
    if n == 0 {
        return Err(Error::TooFew {
            what: "P&L scenarios",
            min: 1,
            got: 0,
        });
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != n {
            return Err(Error::LengthMismatch {
                what: "position P&L scenarios",
                expected: n,
                got: row.len(),
            });
        }
        if let Some(s) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidElement {
                what: "position P&L (index = position * scenarios + scenario)",
                index: i * n + s,
                rule: "finite",
                value: row[s],
            });
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{QuantileRule, expected_shortfall, value_at_risk};

    /// Relative tolerance of the ES sum-to-total check (rounding of k adds).
    const SUM_TOL: f64 = 1e-12;

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    fn sample(positions: usize, scenarios: usize) -> Vec<Vec<f64>> {
        (0..positions)
            .map(|i| {
                (0..scenarios)
                    .map(|s| (((s * 31 + i * 17) % 101) as f64 - 50.0) * (1.0 + i as f64 * 0.3))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn components_sum_to_totals_and_totals_match_measures() {
        let rows = sample(5, 400);
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let q = [1.0, -2.0, 0.5, 3.0, 0.0];
        for level in [0.9, 0.95, 0.99] {
            let r = attribute_risk_per_unit(&refs, &q, c(level)).unwrap();
            let book: Vec<f64> = (0..400)
                .map(|s| {
                    let mut b = 0.0;
                    for (row, qi) in rows.iter().zip(&q) {
                        b += qi * row[s];
                    }
                    b
                })
                .collect();
            let var = value_at_risk(&book, c(level), QuantileRule::Empirical).unwrap();
            let es = expected_shortfall(&book, c(level), QuantileRule::Empirical).unwrap();
            assert_eq!(r.total.value_at_risk, var);
            assert_eq!(r.total.expected_shortfall, es);
            let mut sum_var = 0.0;
            let mut sum_es = 0.0;
            for p in &r.positions {
                sum_var += p.component_var;
                sum_es += p.component_es;
            }
            assert_eq!(sum_var, var, "VaR components sum exactly");
            assert!(
                (sum_es - es).abs() <= SUM_TOL * es.abs(),
                "{sum_es} vs {es}"
            );
            // A zero-quantity position contributes nothing but has a marginal.
            assert_eq!(r.positions[4].component_es, 0.0);
            assert_eq!(r.positions[4].incremental_es, 0.0);
            for (p, qi) in r.positions.iter().zip(&q) {
                let scaled = qi * p.marginal_es;
                assert!((scaled - p.component_es).abs() <= SUM_TOL * es.abs());
            }
        }
    }

    #[test]
    fn marginal_es_matches_finite_difference() {
        // ES is piecewise linear in q; a small bump keeps the tail set, so the
        // one-sided difference equals the marginal up to rounding.
        let rows = sample(3, 200);
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let q = [1.0, 0.7, -0.4];
        let base = attribute_risk_per_unit(&refs, &q, c(0.95)).unwrap();
        let h = 1e-6;
        for i in 0..3 {
            let mut bumped = q;
            bumped[i] += h;
            let up = attribute_risk_per_unit(&refs, &bumped, c(0.95)).unwrap();
            assert_eq!(up.tail_scenarios, base.tail_scenarios);
            let fd = (up.total.expected_shortfall - base.total.expected_shortfall) / h;
            assert!(
                (fd - base.positions[i].marginal_es).abs() < 1e-6,
                "{i}: {fd}"
            );
        }
    }

    #[test]
    fn validation() {
        let a = [1.0, 2.0];
        let b = [1.0];
        assert!(matches!(
            attribute_risk(&[], c(0.9)),
            Err(Error::TooFew { .. })
        ));
        assert!(matches!(
            attribute_risk(&[&a, &b], c(0.9)),
            Err(Error::LengthMismatch { .. })
        ));
        let bad = [1.0, f64::NAN];
        assert!(matches!(
            attribute_risk(&[&a, &bad], c(0.9)),
            Err(Error::InvalidElement { index: 3, .. })
        ));
        assert!(matches!(
            attribute_risk_per_unit(&[&a], &[1.0, 2.0], c(0.9)),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            attribute_risk_per_unit(&[&[f64::MAX][..], &[f64::MAX][..]], &[1.0, 1.0], c(0.9)),
            Err(Error::NonFiniteResult { .. })
        ));
    }
}
