//! Parametric VaR: delta-normal and delta-gamma (Cornish-Fisher).
//!
//! The P&L of a book over the horizon is approximated from its sensitivities to
//! `d` risk-factor moves `x ~ N(0, Sigma)`:
//!
//! - delta-normal: `P&L = delta' x`, normal with standard deviation
//!   `sigma = sqrt(delta' Sigma delta)`;
//! - delta-gamma: `P&L = delta' x + 1/2 x' Gamma x`, a quadratic form in normal
//!   variables, whose quantile is approximated by the Cornish-Fisher expansion on
//!   its first four cumulants.
//!
//! nalgebra is used internally for the eigenvalue check and matrix products; no
//! nalgebra type appears in a public signature.

use super::RiskMeasures;
use super::check_finite_elements;
use crate::error::{Error, Result};
use crate::math::{inverse_norm_cdf, norm_pdf};
use crate::units::Confidence;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Relative tolerance of the symmetry check: `|a_ij - a_ji| <= 1e-10 * max|a|`.
pub const COVARIANCE_SYMMETRY_TOLERANCE: f64 = 1e-10;
/// Relative tolerance of the PSD check: the smallest eigenvalue must be
/// `>= -1e-10 * (largest |eigenvalue|)`.
pub const COVARIANCE_PSD_TOLERANCE: f64 = 1e-10;
/// Iteration cap of the symmetric eigenvalue solver.
const EIGEN_MAX_ITERATIONS: usize = 10_000;

/// A validated covariance matrix of risk-factor moves (square, finite,
/// symmetric and positive semi-definite within tolerance), stored row-major
/// and exactly symmetrised (`(a_ij + a_ji) / 2`).
///
/// # Units
/// Products of the factor units over the risk horizon (e.g. squared daily
/// returns); the sensitivities used with it are P&L per unit factor move.
///
/// # Examples
/// ```
/// use portfolio_margin::CovarianceMatrix;
/// let cov = CovarianceMatrix::new(2, &[0.04, 0.01, 0.01, 0.09])?;
/// assert_eq!(cov.dimension(), 2);
/// assert!(CovarianceMatrix::new(2, &[1.0, 2.0, 2.0, 1.0]).is_err()); // not PSD
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CovarianceMatrix {
    dimension: usize,
    entries: Vec<f64>,
}

impl CovarianceMatrix {
    /// From `dimension` and `dimension * dimension` row-major entries.
    ///
    /// # Errors
    /// [`Error::TooFew`] if `dimension` is 0; [`Error::LengthMismatch`] if
    /// `row_major.len() != dimension^2`; [`Error::InvalidElement`] for a
    /// non-finite entry (flat index); [`Error::InvalidCovariance`] for a
    /// negative variance, an asymmetry beyond [`COVARIANCE_SYMMETRY_TOLERANCE`]
    /// or an eigenvalue below `-`[`COVARIANCE_PSD_TOLERANCE`] times the largest;
    /// [`Error::NoConvergence`] if the eigenvalue solver fails.
    pub fn new(dimension: usize, row_major: &[f64]) -> Result<Self> {
        let d = dimension;
        if d == 0 {
            return Err(Error::TooFew {
                what: "covariance dimension",
                min: 1,
                got: 0,
            });
        }
        let expected = d.checked_mul(d).ok_or(Error::LengthMismatch {
            what: "covariance entries (dimension^2)",
            expected: usize::MAX,
            got: row_major.len(),
        })?;
        if row_major.len() != expected {
            return Err(Error::LengthMismatch {
                what: "covariance entries (dimension^2)",
                expected,
                got: row_major.len(),
            });
        }
        check_finite_elements("covariance", row_major)?;
        let scale = row_major.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mut entries = vec![0.0; expected];
        for i in 0..d {
            let aii = row_major[i * d + i];
            if aii < 0.0 {
                return Err(Error::InvalidCovariance {
                    row: i,
                    col: i,
                    reason: "negative variance on the diagonal",
                });
            }
            entries[i * d + i] = aii;
            for j in (i + 1)..d {
                let (aij, aji) = (row_major[i * d + j], row_major[j * d + i]);
                if (aij - aji).abs() > COVARIANCE_SYMMETRY_TOLERANCE * scale {
                    return Err(Error::InvalidCovariance {
                        row: i,
                        col: j,
                        reason: "not symmetric",
                    });
                }
                let sym = 0.5 * aij + 0.5 * aji;
                entries[i * d + j] = sym;
                entries[j * d + i] = sym;
            }
        }
        let cov = CovarianceMatrix {
            dimension: d,
            entries,
        };
        cov.check_psd()?;
        Ok(cov)
    }

    fn check_psd(&self) -> Result<()> {
        let eig = SymmetricEigen::try_new(self.to_matrix(), f64::EPSILON, EIGEN_MAX_ITERATIONS)
            .ok_or(Error::NoConvergence {
                what: "covariance eigenvalues",
                iterations: EIGEN_MAX_ITERATIONS,
            })?;
        let largest = eig.eigenvalues.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if !largest.is_finite() {
            return Err(Error::NonFiniteResult {
                what: "covariance eigenvalue",
                value: largest,
            });
        }
        let (min_index, min_value) = eig
            .eigenvalues
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        if min_value < -COVARIANCE_PSD_TOLERANCE * largest {
            let vector = eig.eigenvectors.column(min_index);
            let row = vector
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .map_or(0, |(i, _)| i);
            return Err(Error::InvalidCovariance {
                row,
                col: row,
                reason: "not positive semi-definite",
            });
        }
        Ok(())
    }

    /// Number of risk factors.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The symmetrised entries, row-major.
    pub fn entries(&self) -> &[f64] {
        &self.entries
    }

    fn to_matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.dimension, self.dimension, &self.entries)
    }
}

fn check_vector(what: &'static str, values: &[f64], dimension: usize) -> Result<()> {
    if values.len() != dimension {
        return Err(Error::LengthMismatch {
            what,
            expected: dimension,
            got: values.len(),
        });
    }
    check_finite_elements(what, values)
}

/// Delta-normal VaR and ES: `P&L = delta' x`, `x ~ N(0, Sigma)`.
///
/// `sigma = sqrt(delta' Sigma delta)`, `VaR = z_c sigma`,
/// `ES = sigma phi(z_c) / (1 - c)` with `z_c = Phi^{-1}(c)` (Jorion, *Value at
/// Risk*, 3rd ed., ch. 7; the normal ES as in McNeil, Frey & Embrechts,
/// *Quantitative Risk Management*, example 2.18). Zero mean is assumed.
///
/// # Units
/// `sensitivities`: P&L per unit move of each factor; result in P&L units,
/// positive = loss.
///
/// # Errors
/// [`Error::LengthMismatch`] if `sensitivities.len()` is not the covariance
/// dimension; [`Error::InvalidElement`] for a non-finite sensitivity;
/// [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, CovarianceMatrix, delta_normal_risk};
/// // One factor, daily vol 2%, exposure 1 000 000: sigma = 20 000.
/// let cov = CovarianceMatrix::new(1, &[0.02 * 0.02])?;
/// let r = delta_normal_risk(&[1_000_000.0], &cov, Confidence::new(0.99)?)?;
/// assert!((r.value_at_risk - 2.326_347_874_040_841 * 20_000.0).abs() < 1e-6);
/// assert!((r.expected_shortfall - 2.665_214_220_345_808 * 20_000.0).abs() < 1e-6);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn delta_normal_risk(
    sensitivities: &[f64],
    covariance: &CovarianceMatrix,
    confidence: Confidence,
) -> Result<RiskMeasures> {
    let d = covariance.dimension();
    check_vector("sensitivities", sensitivities, d)?;
    let variance = quadratic_form(sensitivities, &covariance.entries, d).max(0.0);
    let sigma = variance.sqrt();
    let z = inverse_norm_cdf(confidence.level());
    let value_at_risk = super::finite_result("delta-normal VaR", z * sigma)?;
    let expected_shortfall =
        super::finite_result("delta-normal ES", sigma * (norm_pdf(z) / confidence.tail()))?;
    Ok(RiskMeasures {
        value_at_risk,
        expected_shortfall: expected_shortfall.max(value_at_risk),
    })
}

/// `v' A v` for row-major `A`, summed row by row in index order.
fn quadratic_form(v: &[f64], a: &[f64], d: usize) -> f64 {
    let mut total = 0.0;
    for i in 0..d {
        let mut row = 0.0;
        for j in 0..d {
            row += a[i * d + j] * v[j];
        }
        total += v[i] * row;
    }
    total
}

/// Delta-gamma VaR by the Cornish-Fisher expansion, with the moments of the
/// loss it used.
///
/// # Units
/// `value_at_risk`, `loss_mean`, `loss_std_dev` in P&L units (positive =
/// loss); skewness and excess kurtosis are pure numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct DeltaGammaVar {
    /// Cornish-Fisher quantile of the loss at the confidence.
    pub value_at_risk: f64,
    /// Mean of the loss, `-1/2 tr(Gamma Sigma)`.
    pub loss_mean: f64,
    /// Standard deviation of the loss.
    pub loss_std_dev: f64,
    /// Skewness of the loss (`kappa_3 / kappa_2^{3/2}`, sign of the loss).
    pub loss_skewness: f64,
    /// Excess kurtosis of the loss (`kappa_4 / kappa_2^2`).
    pub loss_excess_kurtosis: f64,
}

/// Delta-gamma VaR: the Cornish-Fisher quantile of the loss
/// `L = -(delta' x + 1/2 x' Gamma x)`, `x ~ N(0, Sigma)`.
///
/// Cumulants of `Q = delta' x + 1/2 x' Gamma x` (Mathai & Provost 1992, *Quadratic
/// Forms in Random Variables*, th. 3.2b.2; Mina & Ulmer 1999, "Delta-Gamma Four
/// Ways"), with `A = Gamma Sigma`:
///
/// ```text
/// kappa_1 = 1/2 tr(A)
/// kappa_2 = delta' Sigma delta + 1/2 tr(A^2)
/// kappa_3 = 3 delta' Sigma Gamma Sigma delta + tr(A^3)
/// kappa_4 = 12 delta' Sigma (Gamma Sigma)^2 delta + 3 tr(A^4)
/// ```
///
/// (in general `kappa_r = (r-1)!/2 tr(A^r) + r!/2 delta' Sigma A^{r-2} delta`).
/// The loss has `kappa_r(L) = (-1)^r kappa_r(Q)`; with `s = kappa_3(L) /
/// kappa_2^{3/2}`, `k = kappa_4 / kappa_2^2` and `z = Phi^{-1}(c)`, the
/// Cornish-Fisher expansion (Zangari 1996, "A VaR methodology for portfolios
/// that include options", *RiskMetrics Monitor* Q1; Jorion, *Value at Risk*,
/// 3rd ed., ch. 14) gives
///
/// ```text
/// w   = z + (z^2 - 1) s / 6 + (z^3 - 3 z) k / 24 - (2 z^3 - 5 z) s^2 / 36
/// VaR = E[L] + sqrt(kappa_2) w
/// ```
///
/// `Gamma` is used through its symmetric part `(Gamma + Gamma') / 2` (the
/// quadratic form only sees that). The expansion is an approximation: it is
/// accurate for moderate skewness and kurtosis, and is not monotone in `c` for
/// strongly skewed books (Jaschke 2002, "The Cornish-Fisher expansion in the
/// context of delta-gamma-normal approximations"). With `Gamma = 0` it is
/// exactly the delta-normal VaR.
///
/// # Units
/// `delta`: P&L per unit factor move; `gamma`: P&L per unit move squared,
/// `d x d` row-major; see [`DeltaGammaVar`].
///
/// # Errors
/// [`Error::LengthMismatch`] for a `delta` of length other than `d` or a
/// `gamma` of length other than `d^2`; [`Error::InvalidElement`] for a
/// non-finite entry; [`Error::NonFiniteResult`] on overflow.
///
/// # Examples
/// ```
/// use portfolio_margin::{Confidence, CovarianceMatrix, delta_gamma_value_at_risk, delta_normal_risk};
/// let cov = CovarianceMatrix::new(1, &[0.0004])?;
/// let c = Confidence::new(0.99)?;
/// // A long-gamma book loses less than its delta-normal VaR suggests.
/// let dg = delta_gamma_value_at_risk(&[100.0], &[5_000.0], &cov, c)?;
/// let dn = delta_normal_risk(&[100.0], &cov, c)?;
/// assert!(dg.value_at_risk < dn.value_at_risk);
/// assert!(dg.loss_skewness < 0.0);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn delta_gamma_value_at_risk(
    delta: &[f64],
    gamma: &[f64],
    covariance: &CovarianceMatrix,
    confidence: Confidence,
) -> Result<DeltaGammaVar> {
    let d = covariance.dimension();
    check_vector("delta", delta, d)?;
    check_vector("gamma", gamma, d * d)?;
    let sigma = covariance.to_matrix();
    let g_raw = DMatrix::from_row_slice(d, d, gamma);
    let g = (&g_raw + g_raw.transpose()) * 0.5;
    let delta_v = DVector::from_column_slice(delta);

    let a = &g * &sigma; // A = Gamma Sigma
    let a2 = &a * &a;
    let a3 = &a2 * &a;
    let a4 = &a2 * &a2;
    let b = &sigma * &delta_v; // Sigma delta
    let gb = &g * &b; // Gamma Sigma delta
    let dsd = delta_v.dot(&b); // delta' Sigma delta
    let bgb = b.dot(&gb); // delta' Sigma Gamma Sigma delta
    let gbsgb = gb.dot(&(&sigma * &gb)); // delta' Sigma Gamma Sigma Gamma Sigma delta

    let k1 = 0.5 * a.trace();
    let k2 = (dsd + 0.5 * a2.trace()).max(0.0);
    let k3 = 3.0 * bgb + a3.trace();
    let k4 = 12.0 * gbsgb + 3.0 * a4.trace();

    let loss_mean = -k1;
    let z = inverse_norm_cdf(confidence.level());
    let (std_dev, skewness, excess_kurtosis) = if k2 > 0.0 {
        let sd = k2.sqrt();
        (sd, -k3 / (k2 * sd), k4 / (k2 * k2))
    } else {
        // Degenerate: the loss is the constant -kappa_1.
        (0.0, 0.0, 0.0)
    };
    let s = skewness;
    let k = excess_kurtosis;
    let z2 = z * z;
    let z3 = z2 * z;
    let w =
        z + (z2 - 1.0) * s / 6.0 + (z3 - 3.0 * z) * k / 24.0 - (2.0 * z3 - 5.0 * z) * s * s / 36.0;
    let value_at_risk = loss_mean + std_dev * w;
    for (what, v) in [
        ("delta-gamma VaR", value_at_risk),
        ("delta-gamma loss skewness", skewness),
        ("delta-gamma loss excess kurtosis", excess_kurtosis),
    ] {
        super::finite_result(what, v)?;
    }
    Ok(DeltaGammaVar {
        value_at_risk,
        loss_mean,
        loss_std_dev: std_dev,
        loss_skewness: skewness,
        loss_excess_kurtosis: excess_kurtosis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-12; // relative

    fn c(level: f64) -> Confidence {
        Confidence::new(level).unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn covariance_validation() {
        assert!(matches!(
            CovarianceMatrix::new(0, &[]),
            Err(Error::TooFew { .. })
        ));
        assert!(matches!(
            CovarianceMatrix::new(2, &[1.0, 0.0, 0.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            CovarianceMatrix::new(2, &[1.0, f64::NAN, 0.0, 1.0]),
            Err(Error::InvalidElement { index: 1, .. })
        ));
        assert!(matches!(
            CovarianceMatrix::new(2, &[1.0, 0.5, 0.4, 1.0]),
            Err(Error::InvalidCovariance { row: 0, col: 1, .. })
        ));
        assert!(matches!(
            CovarianceMatrix::new(2, &[-1.0, 0.0, 0.0, 1.0]),
            Err(Error::InvalidCovariance { row: 0, col: 0, .. })
        ));
        // Rank-one (PSD, singular) is fine; slightly indefinite beyond tolerance is not.
        assert!(CovarianceMatrix::new(2, &[1.0, 1.0, 1.0, 1.0]).is_ok());
        assert!(CovarianceMatrix::new(2, &[1.0, 1.000_001, 1.000_001, 1.0]).is_err());
        // Tiny asymmetry within tolerance is symmetrised.
        let cov = CovarianceMatrix::new(2, &[1.0, 0.3, 0.3 + 1e-14, 1.0]).unwrap();
        assert_eq!(cov.entries()[1], cov.entries()[2]);
    }

    #[test]
    fn delta_gamma_reduces_to_delta_normal_without_gamma() {
        let cov = CovarianceMatrix::new(
            3,
            &[0.04, 0.006, -0.002, 0.006, 0.09, 0.01, -0.002, 0.01, 0.0225],
        )
        .unwrap();
        let delta = [1.0, -2.0, 0.5];
        for level in [0.9, 0.99, 0.999] {
            let dn = delta_normal_risk(&delta, &cov, c(level)).unwrap();
            let dg = delta_gamma_value_at_risk(&delta, &[0.0; 9], &cov, c(level)).unwrap();
            assert!(close(dn.value_at_risk, dg.value_at_risk, TOL));
            assert_eq!(dg.loss_mean, 0.0);
            assert_eq!(dg.loss_skewness, 0.0);
            assert_eq!(dg.loss_excess_kurtosis, 0.0);
        }
    }

    #[test]
    fn one_factor_cumulants_match_closed_form() {
        // Q = d x + g x^2 / 2, x ~ N(0, v):
        // k1 = g v / 2, k2 = d^2 v + g^2 v^2 / 2, k3 = 3 d^2 g v^2 + g^3 v^3,
        // k4 = 12 d^2 g^2 v^3 + 3 g^4 v^4.
        let (d, g, v) = (3.0_f64, -40.0_f64, 0.0009_f64);
        let cov = CovarianceMatrix::new(1, &[v]).unwrap();
        let r = delta_gamma_value_at_risk(&[d], &[g], &cov, c(0.99)).unwrap();
        let k1 = g * v / 2.0;
        let k2 = d * d * v + g * g * v * v / 2.0;
        let k3 = 3.0 * d * d * g * v * v + g.powi(3) * v.powi(3);
        let k4 = 12.0 * d * d * g * g * v.powi(3) + 3.0 * g.powi(4) * v.powi(4);
        assert!(close(r.loss_mean, -k1, TOL));
        assert!(close(r.loss_std_dev, k2.sqrt(), TOL));
        assert!(close(r.loss_skewness, -k3 / k2.powf(1.5), TOL));
        assert!(close(r.loss_excess_kurtosis, k4 / (k2 * k2), TOL));
    }

    #[test]
    fn gamma_is_symmetrised() {
        let cov = CovarianceMatrix::new(2, &[0.04, 0.01, 0.01, 0.09]).unwrap();
        let a = delta_gamma_value_at_risk(&[1.0, 1.0], &[2.0, 1.0, 0.0, 3.0], &cov, c(0.99));
        let b = delta_gamma_value_at_risk(&[1.0, 1.0], &[2.0, 0.5, 0.5, 3.0], &cov, c(0.99));
        assert_eq!(a.unwrap(), b.unwrap());
    }
}
