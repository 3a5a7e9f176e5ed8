//! Fréchet distance between two Gaussians, the core of the Fréchet Inception
//! Distance (FID).

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
    let stats_x = GaussianStats::from_features(x)?;
    let stats_y = GaussianStats::from_features(y)?;
    Ok(frechet_distance_from_stats(&stats_x, &stats_y))
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
