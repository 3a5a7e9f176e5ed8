//! Fused CPU kernels for BatchNorm and (leaky) ReLU, with their gradients.
//!
//! Built from candle's generic operations, the backward pass of
//! training-mode BatchNorm reduces over the non-trailing axes `(0, 2, 3)`
//! several times. candle 0.11's CPU backend computes such a reduction with
//! index arithmetic per element, which makes it slow. ReLU and LeakyReLU
//! also take four to eight full-size passes. These custom operations do each
//! job in one or two passes over contiguous data, with the arithmetic of
//! PyTorch's CPU kernels (statistics accumulated in f64). Other devices use
//! the generic operations.

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

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
}

impl BatchStats {
    fn collect(x: &[f32], batch: usize, channels: usize, plane: usize) -> Self {
        let count = batch * plane;
        let mut mean = vec![0f64; channels];
        for (index, row) in x.chunks_exact(plane).enumerate() {
            mean[index % channels] += row.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        mean.iter_mut().for_each(|m| *m /= count as f64);

        let mut squared_deviations = vec![0f64; channels];
        for (index, row) in x.chunks_exact(plane).enumerate() {
            let m = mean[index % channels];
            squared_deviations[index % channels] += row.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>();
        }
        Self { mean, squared_deviations, count }
    }

    /// `1 / sqrt(biased variance + eps)` per channel.
    fn invstd(&self, eps: f64) -> Vec<f64> {
        self.squared_deviations.iter().map(|&ss| 1.0 / (ss / self.count as f64 + eps).sqrt()).collect()
    }
}

/// Training-mode BatchNorm: `(x, gamma, beta) → y`, normalising each channel
/// with its batch mean and biased variance.
///
/// The statistics it computes are shared through [`BatchNormTrain::stats`],
/// so the caller can update the running statistics from the same values.
pub(super) struct BatchNormTrain {
    pub eps: f64,
    pub stats: Arc<Mutex<BatchStats>>,
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
        let stats = BatchStats::collect(x, batch, channels, plane);

        // PyTorch folds the normalisation into one scale and shift per channel.
        let invstd = stats.invstd(self.eps);
        let scale: Vec<f32> = (0..channels).map(|c| invstd[c] as f32 * gamma[c]).collect();
        let shift: Vec<f32> = (0..channels).map(|c| beta[c] - stats.mean[c] as f32 * scale[c]).collect();
        let mut y = vec![0f32; x.len()];
        for (index, (out_row, row)) in y.chunks_exact_mut(plane).zip(x.chunks_exact(plane)).enumerate() {
            let (a, b) = (scale[index % channels], shift[index % channels]);
            out_row.iter_mut().zip(row).for_each(|(out, &v)| *out = v * a + b);
        }

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
        let op = BatchNormGrad { eps: self.eps, stats };
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

        let mut sum = vec![0f64; channels];
        let mut dot = vec![0f64; channels];
        for (index, (row, grad_row)) in x.chunks_exact(plane).zip(grad_y.chunks_exact(plane)).enumerate() {
            let c = index % channels;
            for (&v, &g) in row.iter().zip(grad_row) {
                sum[c] += f64::from(g);
                dot[c] += (f64::from(v) - mean[c]) * f64::from(g);
            }
        }

        let count = self.stats.count as f64;
        let mut packed = vec![0f32; x.len() + 2 * channels];
        let (grad_x, grad_params) = packed.split_at_mut(x.len());
        let rows = grad_x.chunks_exact_mut(plane).zip(x.chunks_exact(plane).zip(grad_y.chunks_exact(plane)));
        for (index, (out_row, (row, grad_row))) in rows.enumerate() {
            let c = index % channels;
            let k = dot[c] * invstd[c] * invstd[c] / count;
            let grad_mean = sum[c] / count;
            let scale = invstd[c] * f64::from(gamma[c]);
            for (out, (&v, &g)) in out_row.iter_mut().zip(row.iter().zip(grad_row)) {
                let projection = (f64::from(v) - mean[c]) * k;
                *out = ((f64::from(g) - grad_mean - projection) * scale) as f32;
            }
        }
        for c in 0..channels {
            grad_params[c] = (dot[c] * invstd[c]) as f32;
            grad_params[channels + c] = sum[c] as f32;
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
        let y = x.iter().map(|&v| if v > 0.0 { v } else { v * self.slope }).collect();
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
        let grad_x = x.iter().zip(grad_y).map(|(&v, &g)| if v > 0.0 { g } else { g * self.slope }).collect();
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
