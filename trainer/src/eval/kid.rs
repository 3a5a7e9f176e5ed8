//! Kernel Inception Distance (KID): the unbiased squared maximum mean
//! discrepancy (MMD) with a cubic polynomial kernel, averaged over random
//! subsets.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::fid::check_same_cols;
use super::matrix::FeatureMatrix;
use super::EvalError;

/// Subsets drawn by default, as in torch-fidelity (`kid_subsets`).
pub const DEFAULT_KID_SUBSETS: usize = 100;

/// Rows per subset by default, as in torch-fidelity (`kid_subset_size`).
pub const DEFAULT_KID_SUBSET_SIZE: usize = 1000;

/// Settings of [`kernel_inception_distance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of subset pairs to average over.
    pub subsets: usize,
    /// Rows per subset; the smaller set's size is used when it is smaller.
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self { subsets: DEFAULT_KID_SUBSETS, subset_size: DEFAULT_KID_SUBSET_SIZE, seed: 0 }
    }
}

/// KID: mean and standard deviation of the MMD estimates over the subsets.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KidScore {
    /// Mean of the subset estimates.
    pub mean: f64,
    /// Population standard deviation of the subset estimates.
    pub std: f64,
    /// Rows per subset that were used.
    pub subset_size: usize,
    /// Number of subsets.
    pub subsets: usize,
}

/// The KID kernel `k(a, b) = (a . b / d + 1)^3`.
fn polynomial_kernel(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
    let base = dot / a.len() as f64 + 1.0;
    base * base * base
}

/// Computes the unbiased estimate of MMD^2 between the rows of `x` and `y`
/// with `polynomial_kernel`: the within-set kernel means leave out the
/// diagonal, so the estimate is unbiased and can be slightly negative.
///
/// # Shapes
/// `x`: `[m, d]`, `y`: `[n, d]`.
///
/// # Errors
/// [`EvalError::Shape`] for different feature lengths and
/// [`EvalError::TooFewSamples`] for fewer than 2 rows in either set.
pub fn mmd2_unbiased(x: &FeatureMatrix, y: &FeatureMatrix) -> Result<f64, EvalError> {
    check_same_cols(x, y)?;
    for set in [x, y] {
        if set.rows() < 2 {
            return Err(EvalError::TooFewSamples { metric: "KID", needed: 2, found: set.rows() });
        }
    }

    let within = |set: &FeatureMatrix| {
        let n = set.rows();
        let mut sum = 0.0;
        for i in 0..n {
            for j in (i + 1)..n {
                sum += polynomial_kernel(set.row(i), set.row(j));
            }
        }
        2.0 * sum / (n * (n - 1)) as f64
    };
    let mut cross = 0.0;
    for i in 0..x.rows() {
        for j in 0..y.rows() {
            cross += polynomial_kernel(x.row(i), y.row(j));
        }
    }
    let cross = cross / (x.rows() * y.rows()) as f64;

    Ok(within(x) + within(y) - 2.0 * cross)
}

/// Computes KID as torch-fidelity does: for each subset, draw
/// `min(subset_size, rows of x, rows of y)` rows of each set without
/// replacement and compute [`mmd2_unbiased`]; report the mean and the
/// population standard deviation. The draws come from `options.seed`, so the
/// result is reproducible but not equal to torch-fidelity's numpy draws.
///
/// # Errors
/// The errors of [`mmd2_unbiased`], and [`EvalError::InvalidSetting`] for
/// zero subsets or a subset size below 2.
pub fn kernel_inception_distance(
    x: &FeatureMatrix,
    y: &FeatureMatrix,
    options: &KidOptions,
) -> Result<KidScore, EvalError> {
    if options.subsets == 0 || options.subset_size < 2 {
        return Err(EvalError::InvalidSetting(format!(
            "KID needs at least 1 subset of at least 2 rows, got {} subsets of {}",
            options.subsets, options.subset_size
        )));
    }
    check_same_cols(x, y)?;
    let size = options.subset_size.min(x.rows()).min(y.rows());

    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut estimates = Vec::with_capacity(options.subsets);
    for _ in 0..options.subsets {
        let x_rows = sample(&mut rng, x.rows(), size).into_vec();
        let y_rows = sample(&mut rng, y.rows(), size).into_vec();
        estimates.push(mmd2_unbiased(&x.select_rows(&x_rows), &y.select_rows(&y_rows))?);
    }

    let (mean, std) = mean_and_std(&estimates);
    Ok(KidScore { mean, std, subset_size: size, subsets: options.subsets })
}

/// Mean and population standard deviation (`numpy.std` with `ddof=0`).
pub(crate) fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, variance.sqrt())
}
