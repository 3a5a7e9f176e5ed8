//! Fréchet distance between two Gaussians, the core of the Fréchet Inception
//! Distance (FID).

use nalgebra::DMatrix;

use super::matrix::{trace_sqrt_product, FeatureMatrix, GaussianStats};
use super::EvalError;

/// Computes the Fréchet distance between the Gaussians fitted to `x` and `y`:
/// `|mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr(sqrtm(S_x S_y))`.
///
/// With Inception pool features this is the FID of pytorch-fid. pytorch-fid
/// computes `sqrtm` with `scipy.linalg.sqrtm`, which this matches to about
/// 1e-8 relative on singular covariances (see [`trace_sqrt_product`]).
///
/// # Shapes
/// `x`: `[n, d]`, `y`: `[m, d]`.
///
/// # Errors
/// [`EvalError::Shape`] when the feature lengths differ and
/// [`EvalError::TooFewSamples`] for fewer than 2 rows in either set.
pub fn frechet_distance(x: &FeatureMatrix, y: &FeatureMatrix) -> Result<f64, EvalError> {
    check_same_cols(x, y)?;
    let d = x.cols();
    if x.rows() * y.rows() < d * d {
        return low_rank_frechet_distance(x, y);
    }

    let stats_x = GaussianStats::from_features(x)?;
    let stats_y = GaussianStats::from_features(y)?;
    Ok(frechet_distance_from_stats(&stats_x, &stats_y))
}

/// Computes the Fréchet distance of sets with fewer samples than features
/// without forming a `[d, d]` covariance.
///
/// With centred features `X` `[n, d]` and `Y` `[m, d]`, `S_x = X^T X / (n-1)`
/// and `S_y = Y^T Y / (m-1)`. The non-zero eigenvalues of `S_x S_y` are those
/// of `M M^T` with `M = X Y^T / sqrt((n-1)(m-1))` `[n, m]`, so
/// `tr(sqrtm(S_x S_y))` is the sum of the singular values of `M`. This costs
/// `O(n m d)` instead of the `O(d^3)` eigendecompositions, which matters for
/// 2048 Inception features and a few hundred images.
fn low_rank_frechet_distance(x: &FeatureMatrix, y: &FeatureMatrix) -> Result<f64, EvalError> {
    let (centred_x, mean_x) = centred(x)?;
    let (centred_y, mean_y) = centred(y)?;

    let mean_term: f64 = mean_x.iter().zip(&mean_y).map(|(a, b)| (a - b) * (a - b)).sum();
    let trace_x = centred_x.norm_squared() / (x.rows() - 1) as f64;
    let trace_y = centred_y.norm_squared() / (y.rows() - 1) as f64;

    let scale = (((x.rows() - 1) * (y.rows() - 1)) as f64).sqrt();
    let cross = &centred_x * centred_y.transpose() / scale;
    let cross_term: f64 = cross.singular_values().iter().sum();
    Ok(mean_term + trace_x + trace_y - 2.0 * cross_term)
}

/// Returns the rows of `features` minus their mean, and the mean.
///
/// # Shapes
/// `features`: `[n, d]`; returns `[n, d]` and `[d]`.
fn centred(features: &FeatureMatrix) -> Result<(DMatrix<f64>, Vec<f64>), EvalError> {
    let n = features.rows();
    if n < 2 {
        return Err(EvalError::TooFewSamples { metric: "the covariance", needed: 2, found: n });
    }

    let mut centred = features.to_dmatrix();
    let mean: Vec<f64> = centred.column_iter().map(|column| column.mean()).collect();
    for (mut column, &mu) in centred.column_iter_mut().zip(&mean) {
        column.add_scalar_mut(-mu);
    }
    Ok((centred, mean))
}

/// Computes the Fréchet distance between two sets of precomputed statistics
/// of the same dimension.
pub fn frechet_distance_from_stats(x: &GaussianStats, y: &GaussianStats) -> f64 {
    let mean_term: f64 = x.mean.iter().zip(&y.mean).map(|(a, b)| (a - b) * (a - b)).sum();
    let trace_term = x.covariance.trace() + y.covariance.trace();
    let cross_term = trace_sqrt_product(&x.covariance, &y.covariance);
    mean_term + trace_term - 2.0 * cross_term
}

/// Checks that two feature matrices have the same number of columns.
pub(crate) fn check_same_cols(x: &FeatureMatrix, y: &FeatureMatrix) -> Result<(), EvalError> {
    if x.cols() != y.cols() {
        return Err(EvalError::Shape {
            what: "second feature set".into(),
            expected: format!("{} features per row, as in the first set", x.cols()),
            found: format!("{} features per row", y.cols()),
        });
    }
    Ok(())
}
