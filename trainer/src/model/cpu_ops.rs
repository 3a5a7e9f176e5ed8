//! Fused CPU kernels for BatchNorm and (leaky) ReLU, with their gradients.
//!
//! Built from candle's generic operations, the backward pass of
//! training-mode BatchNorm reduces over the non-trailing axes `(0, 2, 3)`
//! several times. candle 0.11's CPU backend computes such a reduction with
//! index arithmetic per element, which makes it slow. ReLU and LeakyReLU
//! also take four to eight full-size passes. These custom operations do each
//! job in one or two passes over contiguous data, with the arithmetic of
//! PyTorch's CPU kernels (statistics accumulated in f64). Training-mode
//! BatchNorm can apply the following (leaky) ReLU in the same pass, forwards
//! and backwards. Statistics are computed per channel and outputs per image,
//! each in parallel on the rayon pool, in the same order as a serial loop.
//! Other devices use the generic operations.

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel piece of the element-wise kernels.
const CHUNK: usize = 1 << 14;

/// Returns the contiguous f32 values of a CPU tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: expected a contiguous input"),
    }
}

/// `(batch, channels, height · width)` of an `[N, C, H, W]` layout.
fn nchw(layout: &Layout, op: &str) -> candle_core::Result<(usize, usize, usize)> {
    match layout.dims() {
        &[batch, channels, height, width] => Ok((batch, channels, height * width)),
        dims => bail!("{op}: expected a 4-D input, got shape {dims:?}"),
    }
}

/// Per-channel batch statistics, in f64 as PyTorch accumulates them on the CPU.
#[derive(Clone, Debug, Default)]
pub(super) struct BatchStats {
    /// Mean over batch and space.
    pub mean: Vec<f64>,
    /// Sum of squared deviations from the mean.
    pub squared_deviations: Vec<f64>,
    /// Values per channel: `N · H · W`.
    pub count: usize,
    /// The forward pass's folded per-channel scale, see [`fold`].
    pub scale: Vec<f32>,
    /// The forward pass's folded per-channel shift.
    pub shift: Vec<f32>,
}

impl BatchStats {
    fn collect(x: &[f32], batch: usize, channels: usize, plane: usize) -> Self {
        let count = batch * plane;
        let rows = |c: usize| (0..batch).map(move |n| &x[(n * channels + c) * plane..(n * channels + c + 1) * plane]);
        let per_channel: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let mut sum = 0f64;
                for row in rows(c) {
                    sum += row.iter().map(|&v| f64::from(v)).sum::<f64>();
                }
                let mean = sum / count as f64;
                let mut squared = 0f64;
                for row in rows(c) {
                    squared += row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>();
                }
                (mean, squared)
            })
            .collect();
        let (mean, squared_deviations) = per_channel.into_iter().unzip();
        Self { mean, squared_deviations, count, scale: Vec::new(), shift: Vec::new() }
    }

    /// `1 / sqrt(biased variance + eps)` per channel.
    fn invstd(&self, eps: f64) -> Vec<f64> {
        self.squared_deviations.iter().map(|&ss| 1.0 / (ss / self.count as f64 + eps).sqrt()).collect()
    }
}

/// Applies `max(z, 0) + slope · min(z, 0)` when there is a slope.
#[inline]
fn activate(z: f32, slope: Option<f32>) -> f32 {
    match slope {
        Some(slope) if z <= 0.0 => z * slope,
        _ => z,
    }
}

/// The gradient `dy` through [`activate`] at pre-activation `z`: `dy` where
/// `z > 0`, else `slope · dy`, which gives 0 at `z = 0` for ReLU as PyTorch does.
#[inline]
fn activate_grad(z: f32, grad: f32, slope: Option<f32>) -> f32 {
    match slope {
        Some(slope) if z <= 0.0 => grad * slope,
        _ => grad,
    }
}

/// Training-mode BatchNorm, optionally followed by a (leaky) ReLU:
/// `(x, gamma, beta) → y`, normalising each channel with its batch mean and
/// biased variance.
///
/// The statistics it computes are shared through [`BatchNormTrain::stats`],
/// so the caller can update the running statistics from the same values.
pub(super) struct BatchNormTrain {
    pub eps: f64,
    /// Negative slope of the activation that follows: 0 for ReLU, `None`
    /// for no activation.
    pub activation: Option<f32>,
    pub stats: Arc<Mutex<BatchStats>>,
}

/// Per-channel `scale = invstd · gamma` and `shift = beta - mean · scale`,
/// as PyTorch folds the normalisation.
fn fold(stats: &BatchStats, eps: f64, gamma: &[f32], beta: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let invstd = stats.invstd(eps);
    let scale: Vec<f32> = (0..gamma.len()).map(|c| invstd[c] as f32 * gamma[c]).collect();
    let shift: Vec<f32> = (0..gamma.len()).map(|c| beta[c] - stats.mean[c] as f32 * scale[c]).collect();
    (scale, shift)
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        gamma: &CpuStorage,
        gamma_layout: &Layout,
        beta: &CpuStorage,
        beta_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, channels, plane) = nchw(x_layout, self.name())?;
        let x = contiguous_f32(x, x_layout, self.name())?;
        let gamma = contiguous_f32(gamma, gamma_layout, self.name())?;
        let beta = contiguous_f32(beta, beta_layout, self.name())?;
        let mut stats = BatchStats::collect(x, batch, channels, plane);

        let (scale, shift) = fold(&stats, self.eps, gamma, beta);
        let mut y = vec![0f32; x.len()];
        let image = channels * plane;
        y.par_chunks_mut(image.max(1)).zip(x.par_chunks(image.max(1))).for_each(|(out_image, image)| {
            let rows = out_image.chunks_exact_mut(plane).zip(image.chunks_exact(plane));
            for (c, (out_row, row)) in rows.enumerate() {
                let (a, b) = (scale[c], shift[c]);
                out_row.iter_mut().zip(row).for_each(|(out, &v)| *out = activate(v * a + b, self.activation));
            }
        });
        (stats.scale, stats.shift) = (scale, shift);

        *self.stats.lock().map_err(|_| candle_core::Error::Msg("BatchNorm statistics lock poisoned".into()))? = stats;
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self
            .stats
            .lock()
            .map_err(|_| candle_core::Error::Msg("BatchNorm statistics lock poisoned".into()))?
            .clone();
        let op = BatchNormGrad { eps: self.eps, stats, activation: self.activation };
        let packed = x.apply_op3_no_bwd(gamma, &grad_y.contiguous()?, &op)?;

        let len = x.elem_count();
        let channels = gamma.elem_count();
        let grad_x = packed.narrow(0, 0, len)?.reshape(x.shape())?;
        let grad_gamma = packed.narrow(0, len, channels)?;
        let grad_beta = packed.narrow(0, len + channels, channels)?;
        Ok((Some(grad_x), Some(grad_gamma), Some(grad_beta)))
    }
}

/// Gradients of [`BatchNormTrain`]: `(x, gamma, dy) → [dx, dgamma, dbeta]`
/// packed into one flat tensor, as PyTorch's CPU backward computes them.
struct BatchNormGrad {
    eps: f64,
    stats: BatchStats,
    /// The activation's slope; its mask comes from the pre-activation,
    /// recomputed with the forward pass's scale and shift in `stats`.
    activation: Option<f32>,
}

impl BatchNormGrad {
    /// The gradient at the BatchNorm's output: `dy` through the activation.
    #[inline]
    fn pre_activation_grad(&self, c: usize, v: f32, g: f32) -> f32 {
        match self.activation {
            Some(_) => activate_grad(v * self.stats.scale[c] + self.stats.shift[c], g, self.activation),
            None => g,
        }
    }
}

impl CustomOp3 for BatchNormGrad {
    fn name(&self) -> &'static str {
        "batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        gamma: &CpuStorage,
        gamma_layout: &Layout,
        grad_y: &CpuStorage,
        grad_y_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, channels, plane) = nchw(x_layout, self.name())?;
        let x = contiguous_f32(x, x_layout, self.name())?;
        let gamma = contiguous_f32(gamma, gamma_layout, self.name())?;
        let grad_y = contiguous_f32(grad_y, grad_y_layout, self.name())?;
        let mean = &self.stats.mean;
        let invstd = self.stats.invstd(self.eps);
        let batch = x.len() / (channels * plane).max(1);

        let rows = |c: usize| {
            (0..batch).map(move |n| {
                let range = (n * channels + c) * plane..(n * channels + c + 1) * plane;
                (&x[range.clone()], &grad_y[range])
            })
        };
        let sums: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut sum, mut dot) = (0f64, 0f64);
                for (row, grad_row) in rows(c) {
                    for (&v, &g) in row.iter().zip(grad_row) {
                        let g = f64::from(self.pre_activation_grad(c, v, g));
                        sum += g;
                        dot += (f64::from(v) - mean[c]) * g;
                    }
                }
                (sum, dot)
            })
            .collect();

        // Per channel, in f32 as PyTorch's vectorised CPU kernel applies them:
        // dx = (dy - mean(dy) - (x - mean) · k) · invstd · gamma.
        let count = self.stats.count as f64;
        let coefficients: Vec<[f32; 4]> = (0..channels)
            .map(|c| {
                let (sum, dot) = sums[c];
                let k = dot * invstd[c] * invstd[c] / count;
                [sum / count, mean[c], k, invstd[c] * f64::from(gamma[c])].map(|value| value as f32)
            })
            .collect();
        let mut packed = vec![0f32; x.len() + 2 * channels];
        let (grad_x, grad_params) = packed.split_at_mut(x.len());
        let image = (channels * plane).max(1);
        let images = grad_x.par_chunks_mut(image).zip(x.par_chunks(image).zip(grad_y.par_chunks(image)));
        images.for_each(|(out_image, (image, grad_image))| {
            let rows =
                out_image.chunks_exact_mut(plane).zip(image.chunks_exact(plane).zip(grad_image.chunks_exact(plane)));
            for (c, (out_row, (row, grad_row))) in rows.enumerate() {
                let [grad_mean, mean, k, scale] = coefficients[c];
                for (out, (&v, &g)) in out_row.iter_mut().zip(row.iter().zip(grad_row)) {
                    let g = self.pre_activation_grad(c, v, g);
                    *out = (g - grad_mean - (v - mean) * k) * scale;
                }
            }
        });
        for (c, &(sum, dot)) in sums.iter().enumerate() {
            grad_params[c] = (dot * invstd[c]) as f32;
            grad_params[channels + c] = sum as f32;
        }
        Ok((CpuStorage::F32(packed), Shape::from(x.len() + 2 * channels)))
    }
}

/// `max(x, 0) + slope · min(x, 0)`: ReLU for slope 0, LeakyReLU otherwise.
pub(super) struct LeakyRelu {
    pub slope: f32,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(out, &v)| *out = if v > 0.0 { v } else { v * self.slope });
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad_y.contiguous()?, &LeakyReluGrad { slope: self.slope })?))
    }
}

/// Gradient of [`LeakyRelu`]: `(x, dy) → dy` where `x > 0`, else `slope · dy`,
/// which gives 0 at `x = 0` for ReLU as PyTorch does.
struct LeakyReluGrad {
    slope: f32,
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad_y: &CpuStorage,
        grad_y_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x, x_layout, self.name())?;
        let grad_y = contiguous_f32(grad_y, grad_y_layout, self.name())?;
        let mut grad_x = vec![0f32; x.len()];
        let pieces = grad_x.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(grad_y.par_chunks(CHUNK)));
        pieces.for_each(|(out, (x, g))| {
            for (out, (&v, &g)) in out.iter_mut().zip(x.iter().zip(g)) {
                *out = if v > 0.0 { g } else { g * self.slope };
            }
        });
        Ok((CpuStorage::F32(grad_x), x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn leaky_relu_and_gradient_match_pytorch_rule() {
        let x = Var::from_vec(vec![-2f32, -0.0, 0.0, 0.5, 3.0], 5, &Device::Cpu).unwrap();
        for slope in [0.0f32, 0.2] {
            let y = x.as_tensor().apply_op1(LeakyRelu { slope }).unwrap();
            assert_eq!(y.to_vec1::<f32>().unwrap(), [-2.0 * slope, 0.0, 0.0, 0.5, 3.0]);

            let grads = y.sum_all().unwrap().backward().unwrap();
            let grad: Vec<f32> = grads.get(x.as_tensor()).unwrap().to_vec1().unwrap();
            // PyTorch's gradient at exactly 0 is the negative-side slope.
            assert_eq!(grad, [slope, slope, slope, 1.0, 1.0]);
        }
    }
}
