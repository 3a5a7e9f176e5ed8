//! Binary cross-entropy on logits.

use candle_core::Tensor;

/// Mean binary cross-entropy between `sigmoid(logits)` and `targets`.
///
/// Uses the stable form `max(x, 0) - x·y + log(1 + exp(-|x|))`, which equals
/// `-(y·log σ(x) + (1 - y)·log(1 - σ(x)))` and stays finite for any finite
/// logit, where the naive form overflows or takes `log(0)`. PyTorch's
/// `nn.BCELoss` on probabilities gives the same values within rounding while
/// the probabilities stay away from 0 and 1; beyond that it clamps the log at
/// -100.
///
/// # Shapes
/// `logits`, `targets`: `[N]` → scalar.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let positive_part = logits.relu()?;
    let target_term = (logits * targets)?;
    let softplus_tail = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((positive_part - target_term)? + softplus_tail)?.mean_all()
}

/// [`bce_with_logits`] against a constant target, 1 for real or 0 for fake.
///
/// # Shapes
/// `logits`: `[N]` → scalar.
pub fn bce_with_logits_const(logits: &Tensor, target: f32) -> candle_core::Result<Tensor> {
    let targets = Tensor::full(target, logits.shape(), logits.device())?;
    bce_with_logits(logits, &targets)
}
