//! Row-major feature matrices and the linear algebra that FID needs.

use nalgebra::DMatrix;

use super::EvalError;

/// A row-major `[rows, cols]` matrix of f64 values: one row per image, one
/// column per feature or class.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMatrix {
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

impl FeatureMatrix {
    /// Wraps `values` as a `[rows, cols]` matrix.
    ///
    /// # Errors
    /// [`EvalError::Shape`] when `values.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, values: Vec<f64>) -> Result<Self, EvalError> {
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(EvalError::Shape {
                what: "feature matrix".into(),
                expected: format!("{rows} x {cols} = {} values", rows.saturating_mul(cols)),
                found: format!("{} values", values.len()),
            });
        }
        Ok(Self { rows, cols, values })
    }

    /// Creates an empty matrix of `cols` columns, to fill with [`FeatureMatrix::push_row`].
    pub fn with_cols(cols: usize) -> Self {
        Self { rows: 0, cols, values: Vec::new() }
    }

    /// Appends one row of `cols` values.
    ///
    /// # Errors
    /// [`EvalError::Shape`] when the row does not have `cols` values.
    pub fn push_row(&mut self, row: &[f64]) -> Result<(), EvalError> {
        if row.len() != self.cols {
            return Err(EvalError::Shape {
                what: "feature row".into(),
                expected: format!("{} values", self.cols),
                found: format!("{} values", row.len()),
            });
        }
        self.values.extend_from_slice(row);
        self.rows += 1;
        Ok(())
    }

    /// Number of rows (images).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features or classes).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `index`.
    pub fn row(&self, index: usize) -> &[f64] {
        &self.values[index * self.cols..(index + 1) * self.cols]
    }

    /// Returns all values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Copies the rows `indices` into a new matrix.
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut values = Vec::with_capacity(indices.len() * self.cols);
        for &index in indices {
            values.extend_from_slice(self.row(index));
        }
        Self { rows: indices.len(), cols: self.cols, values }
    }

    /// Converts to an nalgebra matrix of the same shape.
    pub(crate) fn to_dmatrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows, self.cols, &self.values)
    }
}

/// Mean and covariance of a set of feature vectors.
#[derive(Clone, Debug)]
pub struct GaussianStats {
    /// Number of feature vectors the statistics come from.
    pub count: usize,
    /// Mean feature vector, `[d]`.
    pub mean: Vec<f64>,
    /// Covariance with the unbiased `1 / (count - 1)` normalisation, as
    /// `numpy.cov` computes it, `[d, d]`.
    pub covariance: DMatrix<f64>,
}

impl GaussianStats {
    /// Computes the mean and covariance of the rows of `features`.
    ///
    /// # Shapes
    /// `features`: `[n, d]`; returns a mean `[d]` and a covariance `[d, d]`.
    ///
    /// # Errors
    /// [`EvalError::TooFewSamples`] for fewer than 2 rows, because the
    /// covariance needs at least two.
    pub fn from_features(features: &FeatureMatrix) -> Result<Self, EvalError> {
        let n = features.rows();
        if n < 2 {
            return Err(EvalError::TooFewSamples { metric: "the covariance", needed: 2, found: n });
        }

        let mut centred = features.to_dmatrix();
        let mean: Vec<f64> = centred.column_iter().map(|column| column.mean()).collect();
        for (mut column, &mu) in centred.column_iter_mut().zip(&mean) {
            column.add_scalar_mut(-mu);
        }

        let mut covariance = centred.transpose() * &centred;
        covariance /= (n - 1) as f64;
        Ok(Self { count: n, mean, covariance })
    }
}

/// Computes `tr(sqrtm(a b))` for symmetric positive semi-definite `a` and `b`.
///
/// `a b` is not symmetric, but it is similar to `sqrt(a) b sqrt(a)`, which
/// is symmetric positive semi-definite, so the trace of its square root is
/// the sum of the square roots of that matrix's eigenvalues. Both steps use
/// symmetric eigendecompositions, which stay accurate for the singular
/// covariances of fewer samples than features. Eigenvalues within rounding
/// noise of 0 count as 0.
///
/// # Shapes
/// `a`, `b`: `[d, d]`.
pub fn trace_sqrt_product(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let root_a = psd_sqrt(a);
    let mut product = &root_a * b * &root_a;
    symmetrize(&mut product);
    let eigenvalues = product.symmetric_eigenvalues();
    let tolerance = rank_tolerance(eigenvalues.as_slice());
    eigenvalues.iter().filter(|&&lambda| lambda > tolerance).map(|&lambda| lambda.sqrt()).sum()
}

/// Eigenvalues at or below this value are rounding noise of a zero
/// eigenvalue: `d * f64::EPSILON * max |lambda|`, numpy's default rank
/// tolerance. Their square roots would otherwise add up over the thousands of
/// zero eigenvalues of a covariance from fewer samples than features.
// NOTE: on a full-rank 2048-feature case this cut changes tr(sqrtm) by about
// 1e-6 relative against scipy (FID by far less); a sharper noise bound is open.
fn rank_tolerance(eigenvalues: &[f64]) -> f64 {
    let largest = eigenvalues.iter().fold(0.0f64, |max, lambda| max.max(lambda.abs()));
    eigenvalues.len() as f64 * f64::EPSILON * largest
}

/// Computes the square root of a symmetric positive semi-definite matrix
/// from its eigendecomposition `V diag(w) V^T` as `V diag(sqrt(w)) V^T`,
/// with eigenvalues within rounding noise of 0 set to 0.
pub fn psd_sqrt(matrix: &DMatrix<f64>) -> DMatrix<f64> {
    let mut symmetric = matrix.clone();
    symmetrize(&mut symmetric);
    let eigen = symmetric.symmetric_eigen();

    let tolerance = rank_tolerance(eigen.eigenvalues.as_slice());
    let mut scaled = eigen.eigenvectors.clone();
    for (mut column, &lambda) in scaled.column_iter_mut().zip(eigen.eigenvalues.iter()) {
        column *= if lambda > tolerance { lambda.sqrt() } else { 0.0 };
    }
    scaled * eigen.eigenvectors.transpose()
}

/// Replaces `matrix` by `(matrix + matrix^T) / 2`, removing the asymmetry
/// that rounding leaves in products that are symmetric in exact arithmetic.
fn symmetrize(matrix: &mut DMatrix<f64>) {
    let transposed = matrix.transpose();
    *matrix += transposed;
    *matrix *= 0.5;
}
