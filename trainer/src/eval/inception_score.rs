//! Inception Score (IS) from classifier logits.

use super::kid::mean_and_std;
use super::matrix::FeatureMatrix;
use super::EvalError;

/// Splits used by default, as in pytorch-fid's and torch-fidelity's IS.
pub const DEFAULT_IS_SPLITS: usize = 10;

/// Inception Score: mean and standard deviation over the splits.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct InceptionScore {
    /// Mean of the split scores.
    pub mean: f64,
    /// Population standard deviation of the split scores.
    pub std: f64,
    /// Number of splits.
    pub splits: usize,
}

/// Computes the Inception Score of `logits` as torch-fidelity does, without
/// its shuffling: softmax per row, then for split `i` the rows
/// `[i N / splits, (i + 1) N / splits)`, the score `exp(mean_rows KL(p || q))`
/// with `q` the split's mean distribution.
///
/// # Shapes
/// `logits`: `[N, classes]`, for example `[N, 1008]` for the FID Inception.
///
/// # Errors
/// [`EvalError::InvalidSetting`] for zero splits and
/// [`EvalError::TooFewSamples`] when a split would be empty.
pub fn inception_score(logits: &FeatureMatrix, splits: usize) -> Result<InceptionScore, EvalError> {
    if splits == 0 {
        return Err(EvalError::InvalidSetting("the Inception Score needs at least 1 split".into()));
    }
    let n = logits.rows();
    if n < splits {
        return Err(EvalError::TooFewSamples { metric: "the Inception Score", needed: splits, found: n });
    }

    let probabilities: Vec<Vec<f64>> = (0..n).map(|row| softmax(logits.row(row))).collect();
    let scores: Vec<f64> = (0..splits)
        .map(|split| split_score(&probabilities[split * n / splits..(split + 1) * n / splits]))
        .collect();

    let (mean, std) = mean_and_std(&scores);
    Ok(InceptionScore { mean, std, splits })
}

/// `exp` of the mean KL divergence between each row and the mean row.
fn split_score(rows: &[Vec<f64>]) -> f64 {
    let classes = rows[0].len();
    let mut marginal = vec![0.0; classes];
    for row in rows {
        for (sum, p) in marginal.iter_mut().zip(row) {
            *sum += p;
        }
    }
    for q in &mut marginal {
        *q /= rows.len() as f64;
    }

    let kl_sum: f64 = rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&marginal)
                .filter(|(p, _)| **p > 0.0)
                .map(|(p, q)| p * (p.ln() - q.ln()))
                .sum::<f64>()
        })
        .sum();
    (kl_sum / rows.len() as f64).exp()
}

/// Softmax with the maximum subtracted first, so large logits do not overflow.
fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
