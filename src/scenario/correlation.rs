//! Correlation matrices: validation, a factor for drawing correlated
//! variables, and repair of invalid matrices (Higham 2002).

use crate::error::{Error, Result};
use nalgebra::{DMatrix, SymmetricEigen};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Largest accepted `|c[i][j] - c[j][i]|` (absolute) in
/// [`CorrelationMatrix::new`]; within it the matrix is symmetrised by
/// averaging. Also the largest accepted `|c[i][i] - 1|`.
pub const CORRELATION_SYMMETRY_TOLERANCE: f64 = 1e-12;

/// Positive semi-definiteness tolerance per dimension: an `n x n` matrix is
/// accepted if its smallest eigenvalue is `>= -n * CORRELATION_PSD_TOLERANCE`
/// (absolute; the eigenvalue solver's own error is of order `n * eps` for a
/// correlation matrix, whose spectral norm is at most `n`).
pub const CORRELATION_PSD_TOLERANCE: f64 = 1e-12;

/// Iteration cap of one eigen-decomposition, per dimension.
const EIGEN_ITERATIONS_PER_DIMENSION: usize = 1_000;

/// A validated correlation matrix: square, symmetric, unit diagonal, entries
/// in `[-1, 1]`, positive semi-definite.
///
/// ```
/// use portfolio_margin::CorrelationMatrix;
/// let c = CorrelationMatrix::new(2, vec![1.0, 0.6, 0.6, 1.0])?;
/// assert_eq!(c.get(0, 1), Some(0.6));
/// // Not positive semi-definite: three variables cannot all be -0.9 correlated.
/// assert!(CorrelationMatrix::new(3, vec![1.0, -0.9, -0.9, -0.9, 1.0, -0.9, -0.9, -0.9, 1.0]).is_err());
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::CorrelationMatrix", into = "raw::CorrelationMatrix")
)]
pub struct CorrelationMatrix {
    n: usize,
    values: Vec<f64>,
}

impl CorrelationMatrix {
    /// Validates an `n x n` matrix given row-major.
    ///
    /// Entries are checked in row-major order; for each entry, in turn:
    /// finite; on the diagonal, within [`CORRELATION_SYMMETRY_TOLERANCE`] of
    /// 1; in `[-1, 1]`; within [`CORRELATION_SYMMETRY_TOLERANCE`] of its
    /// transpose. The accepted matrix is stored exactly symmetric (the mean of
    /// `c[i][j]` and `c[j][i]`) with an exact unit diagonal. Finally the
    /// smallest eigenvalue must be `>= -n * `[`CORRELATION_PSD_TOLERANCE`].
    ///
    /// # Errors
    /// - [`Error::TooFew`] if `n == 0`;
    /// - [`Error::LengthMismatch`] unless `row_major.len() == n * n`;
    /// - [`Error::InvalidCorrelation`] with the row and column of the first
    ///   offending entry. For a matrix that is not positive semi-definite,
    ///   `row == col == k` where `k` is the variable with the largest weight
    ///   in the eigenvector of the most negative eigenvalue (the variable most
    ///   involved in the inconsistency);
    /// - [`Error::NoConvergence`] if the eigenvalue solver fails (not
    ///   expected for finite input).
    pub fn new(n: usize, row_major: Vec<f64>) -> Result<Self> {
        check_shape(n, row_major.len())?;
        let mut values = row_major;
        let bad = |row, col, reason| Error::InvalidCorrelation { row, col, reason };
        for row in 0..n {
            for col in 0..n {
                let v = values[row * n + col];
                let t = values[col * n + row];
                if !v.is_finite() {
                    return Err(bad(row, col, "entry is not finite"));
                }
                if row == col && (v - 1.0).abs() > CORRELATION_SYMMETRY_TOLERANCE {
                    return Err(bad(row, col, "diagonal entry is not 1"));
                }
                if !(-1.0..=1.0).contains(&v) {
                    return Err(bad(row, col, "entry is outside [-1, 1]"));
                }
                // A non-finite transpose is reported at its own position.
                if t.is_finite() && (v - t).abs() > CORRELATION_SYMMETRY_TOLERANCE {
                    return Err(bad(row, col, "matrix is not symmetric"));
                }
            }
        }
        for row in 0..n {
            values[row * n + row] = 1.0;
            for col in row + 1..n {
                let mean = 0.5 * (values[row * n + col] + values[col * n + row]);
                values[row * n + col] = mean;
                values[col * n + row] = mean;
            }
        }
        let eigen = eigen(n, &values)?;
        let (k, &lambda) = eigen
            .eigenvalues
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .ok_or(bad(0, 0, "matrix is empty"))?;
        if lambda < -(n as f64) * CORRELATION_PSD_TOLERANCE {
            let v = eigen.eigenvectors.column(k);
            let worst = v.iamax();
            return Err(bad(worst, worst, "matrix is not positive semi-definite"));
        }
        Ok(CorrelationMatrix { n, values })
    }

    /// The `n x n` identity (uncorrelated variables).
    ///
    /// # Errors
    /// [`Error::TooFew`] if `n == 0`; [`Error::InvalidInput`] if `n * n`
    /// numbers cannot be allocated.
    pub fn identity(n: usize) -> Result<Self> {
        check_shape(n, n.saturating_mul(n))?;
        let mut values = super::zeroed(n * n, "correlation matrix dimension squared")?;
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        Ok(CorrelationMatrix { n, values })
    }

    /// Number of variables.
    pub fn dimension(&self) -> usize {
        self.n
    }

    /// Entry `(row, col)`, or `None` if out of range.
    pub fn get(&self, row: usize, col: usize) -> Option<f64> {
        if row < self.n && col < self.n {
            self.values.get(row * self.n + col).copied()
        } else {
            None
        }
    }

    /// All entries, row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }

    /// A factor `L` (row-major `n x n`) with `L Lᵀ = C`: if `z` has
    /// independent unit-variance entries, `L z` has correlation `C`.
    ///
    /// The Cholesky factor (lower triangular) when `C` is positive definite;
    /// for a singular but valid `C` (such as `[[1, 1], [1, 1]]`), where
    /// Cholesky breaks down, the symmetric eigen factor `V sqrt(max(Λ, 0))`
    /// (a full matrix).
    ///
    /// # Errors
    /// [`Error::NoConvergence`] if the eigenvalue solver fails (not expected).
    ///
    /// # Examples
    /// ```
    /// use portfolio_margin::CorrelationMatrix;
    /// let l = CorrelationMatrix::new(2, vec![1.0, 1.0, 1.0, 1.0])?.factor()?;
    /// let c01 = l[0] * l[2] + l[1] * l[3];
    /// assert!((c01 - 1.0).abs() < 1e-12);
    /// # Ok::<(), portfolio_margin::Error>(())
    /// ```
    pub fn factor(&self) -> Result<Vec<f64>> {
        Ok(self.factor_with_shape()?.0)
    }

    /// The factor and whether it is lower triangular.
    pub(crate) fn factor_with_shape(&self) -> Result<(Vec<f64>, bool)> {
        let n = self.n;
        let m = DMatrix::from_row_slice(n, n, &self.values);
        if let Some(chol) = nalgebra::Cholesky::new(m) {
            let l = chol.unpack();
            let out = row_major(&l);
            if out.iter().all(|v| v.is_finite()) {
                return Ok((out, true));
            }
        }
        let eigen = eigen(n, &self.values)?;
        let mut f = eigen.eigenvectors;
        for (k, lambda) in eigen.eigenvalues.iter().enumerate() {
            let s = lambda.max(0.0).sqrt();
            f.column_mut(k).scale_mut(s);
        }
        Ok((row_major(&f), false))
    }
}

fn check_shape(n: usize, len: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::TooFew {
            what: "correlation matrix dimension",
            min: 1,
            got: 0,
        });
    }
    let expected = n.checked_mul(n).ok_or(Error::InvalidInput {
        what: "correlation matrix dimension",
        rule: "small enough that n * n fits in memory",
        value: n as f64,
    })?;
    if len != expected {
        return Err(Error::LengthMismatch {
            what: "correlation matrix entries (n * n, row-major)",
            expected,
            got: len,
        });
    }
    Ok(())
}

fn eigen(n: usize, row_major_values: &[f64]) -> Result<SymmetricEigen<f64, nalgebra::Dyn>> {
    let m = DMatrix::from_row_slice(n, n, row_major_values);
    let cap = EIGEN_ITERATIONS_PER_DIMENSION.saturating_mul(n.max(1));
    SymmetricEigen::try_new(m, f64::EPSILON, cap).ok_or(Error::NoConvergence {
        what: "symmetric eigen-decomposition",
        iterations: cap,
    })
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

/// Settings of [`nearest_correlation`].
///
/// ```
/// use portfolio_margin::NearestCorrelationOptions;
/// let o = NearestCorrelationOptions::default();
/// assert_eq!((o.tolerance(), o.max_iterations()), (1e-12, 10_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(
        try_from = "raw::NearestCorrelationOptions",
        into = "raw::NearestCorrelationOptions"
    )
)]
pub struct NearestCorrelationOptions {
    tolerance: f64,
    max_iterations: usize,
}

impl Default for NearestCorrelationOptions {
    /// Tolerance `1e-12`, at most 10 000 iterations.
    fn default() -> Self {
        NearestCorrelationOptions {
            tolerance: 1e-12,
            max_iterations: 10_000,
        }
    }
}

impl NearestCorrelationOptions {
    /// Stop when the relative Frobenius changes of both iterates between
    /// steps, and their relative distance, are all `<= tolerance`; give up
    /// after `max_iterations` steps.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `tolerance` is finite and `> 0` and
    /// `max_iterations >= 1`.
    pub fn new(tolerance: f64, max_iterations: usize) -> Result<Self> {
        crate::error::positive("nearest-correlation tolerance", tolerance)?;
        if max_iterations == 0 {
            return Err(Error::InvalidInput {
                what: "nearest-correlation max iterations",
                rule: ">= 1",
                value: 0.0,
            });
        }
        Ok(NearestCorrelationOptions {
            tolerance,
            max_iterations,
        })
    }

    /// Relative convergence tolerance.
    pub fn tolerance(&self) -> f64 {
        self.tolerance
    }

    /// Iteration cap.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }
}

/// The result of [`nearest_correlation`].
#[derive(Debug, Clone, PartialEq)]
pub struct NearestCorrelation {
    matrix: CorrelationMatrix,
    distance: f64,
    iterations: usize,
}

impl NearestCorrelation {
    /// The repaired correlation matrix.
    pub fn matrix(&self) -> &CorrelationMatrix {
        &self.matrix
    }

    /// Consumes the result, returning the matrix.
    pub fn into_matrix(self) -> CorrelationMatrix {
        self.matrix
    }

    /// Frobenius norm of (repaired - input): how far the repair moved.
    pub fn distance(&self) -> f64 {
        self.distance
    }

    /// Alternating-projection steps run.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
}

/// The nearest correlation matrix (in the Frobenius norm) to a symmetric
/// `n x n` matrix given row-major: opt-in repair of an invalid estimate.
///
/// Higham (2002), "Computing the nearest correlation matrix — a problem from
/// finance", IMA J. Numer. Anal. 22, Algorithm 3.3 with `W = I`: alternating
/// projections onto the positive semi-definite cone `S` and the unit-diagonal
/// set `U`, with Dykstra's correction on the `S` step:
///
/// ```text
/// Y_0 = A, ΔS_0 = 0
/// R_k = Y_{k-1} - ΔS_{k-1};  X_k = P_S(R_k);  ΔS_k = X_k - R_k;  Y_k = P_U(X_k)
/// ```
///
/// `P_S` zeroes negative eigenvalues; `P_U` sets the diagonal to 1. The loop
/// stops when `|X_k - X_{k-1}|/|X_k|`, `|Y_k - Y_{k-1}|/|Y_k|` and
/// `|Y_k - X_k|/|Y_k|` are all `<= tolerance`. The returned matrix is the last
/// `X_k` rescaled to a unit diagonal, `D^{-1/2} X_k D^{-1/2}` (positive
/// semi-definite by construction, within the tolerance of `Y_k`), validated by
/// [`CorrelationMatrix::new`]. Deterministic: the same input gives the same
/// bits.
///
/// A non-symmetric input is replaced by its symmetric part `(A + Aᵀ)/2`; the
/// diagonal of the input is ignored. The reported distance is from the input
/// as given.
///
/// # Errors
/// - [`Error::TooFew`], [`Error::LengthMismatch`] for a bad shape;
/// - [`Error::InvalidCorrelation`] at the first non-finite entry;
/// - [`Error::NoConvergence`] if the iteration cap is reached.
///
/// # Examples
/// Higham's (2002) example; the nearest correlation matrix has off-diagonal
/// entries 0.7607, 0.1573, 0.7607.
/// ```
/// use portfolio_margin::{nearest_correlation, NearestCorrelationOptions};
/// let a = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
/// let nearest = nearest_correlation(3, &a, &NearestCorrelationOptions::default())?;
/// let c = nearest.matrix();
/// assert!((c.get(0, 1).unwrap() - 0.7607).abs() < 1e-4);
/// assert!((c.get(0, 2).unwrap() - 0.1573).abs() < 1e-4);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
pub fn nearest_correlation(
    n: usize,
    row_major: &[f64],
    options: &NearestCorrelationOptions,
) -> Result<NearestCorrelation> {
    check_shape(n, row_major.len())?;
    for (index, v) in row_major.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::InvalidCorrelation {
                row: index / n,
                col: index % n,
                reason: "entry is not finite",
            });
        }
    }
    let input = DMatrix::from_row_slice(n, n, row_major);
    let a = (&input + input.transpose()) * 0.5;
    let mut y = a.clone();
    let mut x = a.clone();
    let mut ds = DMatrix::<f64>::zeros(n, n);
    let mut converged_at = None;
    for k in 1..=options.max_iterations {
        let r = &y - &ds;
        let x_next = psd_projection(&r)?;
        ds = &x_next - &r;
        let mut y_next = x_next.clone();
        y_next.fill_diagonal(1.0);
        let dx = (&x_next - &x).norm() / x_next.norm().max(f64::MIN_POSITIVE);
        let dy = (&y_next - &y).norm() / y_next.norm().max(f64::MIN_POSITIVE);
        let dxy = (&y_next - &x_next).norm() / y_next.norm().max(f64::MIN_POSITIVE);
        x = x_next;
        y = y_next;
        if dx.max(dy).max(dxy) <= options.tolerance {
            converged_at = Some(k);
            break;
        }
    }
    let iterations = converged_at.ok_or(Error::NoConvergence {
        what: "nearest correlation matrix (alternating projections)",
        iterations: options.max_iterations,
    })?;
    // Rescale the PSD iterate to a unit diagonal.
    let d: Vec<f64> = (0..n)
        .map(|i| x[(i, i)].max(f64::MIN_POSITIVE).sqrt())
        .collect();
    let mut values = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let v = if i == j {
                1.0
            } else {
                (0.5 * (x[(i, j)] + x[(j, i)]) / (d[i] * d[j])).clamp(-1.0, 1.0)
            };
            values[i * n + j] = v;
        }
    }
    let distance = values
        .iter()
        .zip(row_major)
        .map(|(c, a)| (c - a) * (c - a))
        .sum::<f64>()
        .sqrt();
    let matrix = CorrelationMatrix::new(n, values)?;
    Ok(NearestCorrelation {
        matrix,
        distance,
        iterations,
    })
}

/// Projection onto the positive semi-definite cone: `V max(Λ, 0) Vᵀ`.
fn psd_projection(r: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    let n = r.nrows();
    let cap = EIGEN_ITERATIONS_PER_DIMENSION.saturating_mul(n.max(1));
    let eigen =
        SymmetricEigen::try_new(r.clone(), f64::EPSILON, cap).ok_or(Error::NoConvergence {
            what: "symmetric eigen-decomposition",
            iterations: cap,
        })?;
    let v = &eigen.eigenvectors;
    let mut scaled = v.clone();
    for (k, lambda) in eigen.eigenvalues.iter().enumerate() {
        scaled.column_mut(k).scale_mut(lambda.max(0.0));
    }
    let p = scaled * v.transpose();
    // Exact symmetry keeps the iteration on symmetric matrices.
    Ok((&p + p.transpose()) * 0.5)
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CorrelationMatrix {
        dimension: usize,
        values: Vec<f64>,
    }

    impl TryFrom<CorrelationMatrix> for super::CorrelationMatrix {
        type Error = Error;
        fn try_from(r: CorrelationMatrix) -> Result<Self> {
            super::CorrelationMatrix::new(r.dimension, r.values)
        }
    }

    impl From<super::CorrelationMatrix> for CorrelationMatrix {
        fn from(c: super::CorrelationMatrix) -> Self {
            CorrelationMatrix {
                dimension: c.n,
                values: c.values,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NearestCorrelationOptions {
        tolerance: f64,
        max_iterations: usize,
    }

    impl TryFrom<NearestCorrelationOptions> for super::NearestCorrelationOptions {
        type Error = Error;
        fn try_from(r: NearestCorrelationOptions) -> Result<Self> {
            super::NearestCorrelationOptions::new(r.tolerance, r.max_iterations)
        }
    }

    impl From<super::NearestCorrelationOptions> for NearestCorrelationOptions {
        fn from(o: super::NearestCorrelationOptions) -> Self {
            NearestCorrelationOptions {
                tolerance: o.tolerance,
                max_iterations: o.max_iterations,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Absolute tolerance on `L Lᵀ = C` reconstructions.
    const RECONSTRUCTION_TOLERANCE: f64 = 1e-14;

    fn reason(result: Result<CorrelationMatrix>) -> (usize, usize, &'static str) {
        match result {
            Err(Error::InvalidCorrelation { row, col, reason }) => (row, col, reason),
            other => panic!("expected InvalidCorrelation, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            CorrelationMatrix::new(0, vec![]),
            Err(Error::TooFew { .. })
        ));
        assert!(matches!(
            CorrelationMatrix::new(2, vec![1.0, 0.0, 0.0]),
            Err(Error::LengthMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            CorrelationMatrix::new(usize::MAX, vec![]),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn rejects_non_finite_entries() {
        let (r, c, why) = reason(CorrelationMatrix::new(2, vec![1.0, f64::NAN, 0.0, 1.0]));
        assert_eq!((r, c), (0, 1));
        assert!(why.contains("finite"));
        let (r, c, _) = reason(CorrelationMatrix::new(
            2,
            vec![1.0, 0.0, f64::INFINITY, 1.0],
        ));
        assert_eq!((r, c), (1, 0));
    }

    #[test]
    fn rejects_asymmetric() {
        let (r, c, why) = reason(CorrelationMatrix::new(2, vec![1.0, 0.5, 0.4, 1.0]));
        assert_eq!((r, c), (0, 1));
        assert!(why.contains("symmetric"));
        // Within the tolerance: accepted and stored exactly symmetric.
        let m = CorrelationMatrix::new(2, vec![1.0, 0.5, 0.5 + 5e-13, 1.0]).unwrap();
        assert_eq!(m.get(0, 1), m.get(1, 0));
    }

    #[test]
    fn rejects_non_unit_diagonal() {
        let (r, c, why) = reason(CorrelationMatrix::new(2, vec![1.0, 0.0, 0.0, 0.99]));
        assert_eq!((r, c), (1, 1));
        assert!(why.contains("diagonal"));
    }

    #[test]
    fn rejects_out_of_range() {
        let (r, c, why) = reason(CorrelationMatrix::new(
            3,
            vec![1.0, 0.2, 0.1, 0.2, 1.0, 1.5, 0.1, 1.5, 1.0],
        ));
        assert_eq!((r, c), (1, 2));
        assert!(why.contains("[-1, 1]"));
    }

    #[test]
    fn rejects_not_positive_semi_definite() {
        // Higham's example: eigenvalues 1 - sqrt 2, 1, 1 + sqrt 2; the negative
        // eigenvector is (1, -sqrt 2, 1)/2, so variable 1 is most involved.
        let (r, c, why) = reason(CorrelationMatrix::new(
            3,
            vec![1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
        ));
        assert_eq!((r, c), (1, 1));
        assert!(why.contains("semi-definite"));
    }

    #[test]
    fn accepts_singular_and_factors_it() {
        for (n, values) in [
            (2, vec![1.0, 1.0, 1.0, 1.0]),
            (2, vec![1.0, -1.0, -1.0, 1.0]),
            (3, vec![1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0]),
            (3, vec![1.0, 0.5, 0.2, 0.5, 1.0, -0.3, 0.2, -0.3, 1.0]),
        ] {
            let c = CorrelationMatrix::new(n, values.clone()).unwrap();
            let l = c.factor().unwrap();
            for i in 0..n {
                for j in 0..n {
                    let got: f64 = (0..n).map(|k| l[i * n + k] * l[j * n + k]).sum();
                    assert!(
                        (got - values[i * n + j]).abs() < RECONSTRUCTION_TOLERANCE,
                        "n={n} ({i},{j}) {got}"
                    );
                }
            }
        }
        let (_, lower) = CorrelationMatrix::new(2, vec![1.0, 0.3, 0.3, 1.0])
            .unwrap()
            .factor_with_shape()
            .unwrap();
        assert!(lower);
        let (_, lower) = CorrelationMatrix::new(2, vec![1.0, 1.0, 1.0, 1.0])
            .unwrap()
            .factor_with_shape()
            .unwrap();
        assert!(!lower);
    }

    /// Reference from `scripts/nearest_correlation_reference.py` (the dual
    /// problem of Qi & Sun (2006) solved with scipy, independently of the
    /// alternating projections here; distance 0.5277904635818285).
    const HIGHAM_NEAREST: [f64; 3] = [
        0.760_689_853_402_283_8,
        0.157_298_106_138_376_03,
        0.760_689_853_402_283_7,
    ];
    /// Absolute agreement with the reference off-diagonals.
    const HIGHAM_TOLERANCE: f64 = 1e-11;

    #[test]
    fn higham_example_is_repaired() {
        let a = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let r = nearest_correlation(3, &a, &NearestCorrelationOptions::default()).unwrap();
        let c = r.matrix();
        let got = [
            c.get(0, 1).unwrap(),
            c.get(0, 2).unwrap(),
            c.get(1, 2).unwrap(),
        ];
        let max_error = got
            .iter()
            .zip(HIGHAM_NEAREST)
            .map(|(g, e)| (g - e).abs())
            .fold(0.0, f64::max);
        println!(
            "Higham example: {} iterations, max |error| {max_error:.1e}, distance {}",
            r.iterations(),
            r.distance()
        );
        assert!(max_error < HIGHAM_TOLERANCE, "{got:?}");
        // Published to 4 decimals (Higham 2002, section 4).
        assert_eq!(
            got.map(|v| (v * 1e4).round() / 1e4),
            [0.7607, 0.1573, 0.7607]
        );
        let expected_distance =
            (2.0 * (2.0 * (1.0 - HIGHAM_NEAREST[0]).powi(2) + HIGHAM_NEAREST[1].powi(2))).sqrt();
        assert!((r.distance() - expected_distance).abs() < 1e-8);
        // Deterministic.
        let again = nearest_correlation(3, &a, &NearestCorrelationOptions::default()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn valid_matrix_is_a_fixed_point() {
        let a = vec![1.0, 0.5, 0.2, 0.5, 1.0, -0.3, 0.2, -0.3, 1.0];
        let r = nearest_correlation(3, &a, &NearestCorrelationOptions::default()).unwrap();
        assert!(r.distance() < 1e-12, "{}", r.distance());
    }

    #[test]
    fn nearest_reports_caps_and_bad_input() {
        let a = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let tight = NearestCorrelationOptions::new(1e-12, 2).unwrap();
        assert!(matches!(
            nearest_correlation(3, &a, &tight),
            Err(Error::NoConvergence { iterations: 2, .. })
        ));
        assert!(matches!(
            nearest_correlation(2, &[1.0, f64::NAN, 0.0, 1.0], &tight),
            Err(Error::InvalidCorrelation { row: 0, col: 1, .. })
        ));
        assert!(NearestCorrelationOptions::new(0.0, 10).is_err());
        assert!(NearestCorrelationOptions::new(1e-8, 0).is_err());
    }

    #[test]
    fn repairs_a_larger_inconsistent_estimate() {
        // Pairwise-estimated style matrix that is not PSD.
        let n = 4;
        let a = vec![
            1.0, 0.9, 0.7, -0.5, 0.9, 1.0, 0.3, 0.6, 0.7, 0.3, 1.0, 0.9, -0.5, 0.6, 0.9, 1.0,
        ];
        assert!(CorrelationMatrix::new(n, a.clone()).is_err());
        let r = nearest_correlation(n, &a, &NearestCorrelationOptions::default()).unwrap();
        assert!(r.distance() > 0.0);
        assert!(r.matrix().factor().is_ok());
    }
}
