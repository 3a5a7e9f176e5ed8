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
//! The per-row loops are written so that the compiler vectorises them, and
//! they run compiled for AVX2 on CPUs that have it, with the same results.
//! Other devices use the generic operations.

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::buffers::fill_in_chunks;

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
                let sum: f64 = rows(c).map(sum_row).sum();
                let mean = sum / count as f64;
                let squared: f64 = rows(c).map(|row| squared_deviation_row(row, mean)).sum();
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

/// Partial sums of [`lane_sum`] and [`lane_sums`], kept side by side so that
/// the compiler can hold them in vector registers. They are combined in a
/// fixed order, so a sum does not depend on the thread count.
const LANES: usize = 8;

/// Returns `Σ term(v)` over `values`, in f64.
#[inline(always)]
fn lane_sum(values: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    lane_sums(values, values, |v, _| (term(f64::from(v)), 0.0)).0
}

/// Returns `(Σ first, Σ second)` of `term(a[i], b[i])` over two equally
/// long slices, in f64.
#[inline(always)]
fn lane_sums(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> (f64, f64)) -> (f64, f64) {
    debug_assert_eq!(a.len(), b.len());
    let (mut first, mut second) = ([0f64; LANES], [0f64; LANES]);
    let (blocks_a, blocks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tails = blocks_a.remainder().iter().zip(blocks_b.remainder());
    for (block_a, block_b) in blocks_a.zip(blocks_b) {
        for lane in 0..LANES {
            let (p, q) = term(block_a[lane], block_b[lane]);
            first[lane] += p;
            second[lane] += q;
        }
    }
    for (lane, (&x, &y)) in tails.enumerate() {
        let (p, q) = term(x, y);
        first[lane] += p;
        second[lane] += q;
    }
    (first.iter().sum(), second.iter().sum())
}

/// Returns `z` for `z > 0`, else `slope · z`: ReLU for slope 0, LeakyReLU
/// otherwise, and the identity for slope 1.
#[inline(always)]
fn activate(z: f32, slope: f32) -> f32 {
    if z > 0.0 {
        z
    } else {
        z * slope
    }
}

/// The gradient `dy` through [`activate`] at pre-activation `z`: `dy` where
/// `z > 0`, else `slope · dy`, which gives 0 at `z = 0` for ReLU as PyTorch does.
#[inline(always)]
fn activate_grad(z: f32, grad: f32, slope: f32) -> f32 {
    if z > 0.0 {
        grad
    } else {
        grad * slope
    }
}

/// Defines an element-wise kernel that runs compiled for AVX2 when the CPU
/// has it, and for the baseline target otherwise. Both compile the same
/// body without fused multiply-adds, so they return the same bits.
macro_rules! simd_kernel {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has just been found to support AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

simd_kernel! {
    /// Returns `Σ v` over a row, in f64.
    fn sum_row(row: &[f32]) -> f64 {
        lane_sum(row, |v| v)
    }
}

simd_kernel! {
    /// Returns `Σ (v - mean)²` over a row, in f64.
    fn squared_deviation_row(row: &[f32], mean: f64) -> f64 {
        lane_sum(row, |v| (v - mean) * (v - mean))
    }
}

simd_kernel! {
    /// Writes `y = activate(v · scale + shift)` over a row, with
    /// `fold = (scale, shift)`.
    fn normalize_row(y: &mut [f32], x: &[f32], fold: (f32, f32), slope: f32) {
        let (scale, shift) = fold;
        y.iter_mut().zip(x).for_each(|(out, &v)| *out = activate(v * scale + shift, slope));
    }
}

simd_kernel! {
    /// Returns `(Σ g, Σ (v - mean) · g)` over a row, in f64. `g` is `dy`
    /// through the activation at the pre-activation `v · scale + shift`, with
    /// `fold = (scale, shift)`.
    fn grad_sums_row(x: &[f32], grad_y: &[f32], fold: (f32, f32), slope: f32, mean: f64) -> (f64, f64) {
        let (scale, shift) = fold;
        lane_sums(x, grad_y, |v, g| {
            let g = f64::from(activate_grad(v * scale + shift, g, slope));
            (g, (f64::from(v) - mean) * g)
        })
    }
}

simd_kernel! {
    /// Writes BatchNorm's input gradient over a row:
    /// `dx = (g - grad_mean - (v - mean) · k) · gain`, with `g` as in
    /// [`grad_sums_row`] and `[grad_mean, mean, k, gain]` from `coefficients`.
    fn grad_input_row(
        grad_x: &mut [f32],
        x: &[f32],
        grad_y: &[f32],
        fold: (f32, f32),
        slope: f32,
        coefficients: [f32; 4],
    ) {
        let (scale, shift) = fold;
        let [grad_mean, mean, k, gain] = coefficients;
        for (out, (&v, &g)) in grad_x.iter_mut().zip(x.iter().zip(grad_y)) {
            let g = activate_grad(v * scale + shift, g, slope);
            *out = (g - grad_mean - (v - mean) * k) * gain;
        }
    }
}

simd_kernel! {
    /// Writes `y = activate(x)` over a piece.
    fn activate_piece(y: &mut [f32], x: &[f32], slope: f32) {
        y.iter_mut().zip(x).for_each(|(out, &v)| *out = activate(v, slope));
    }
}

simd_kernel! {
    /// Writes `dx`, which is `dy` through [`activate`] at `x`, over a piece.
    fn activate_grad_piece(grad_x: &mut [f32], x: &[f32], grad_y: &[f32], slope: f32) {
        for (out, (&v, &g)) in grad_x.iter_mut().zip(x.iter().zip(grad_y)) {
            *out = activate_grad(v, g, slope);
        }
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
        let slope = self.activation.unwrap_or(1.0);
        let image = channels * plane;
        let y = fill_in_chunks(x.len(), image, true, |n, out_image| {
            let rows = out_image.chunks_exact_mut(plane).zip(x[n * image..].chunks_exact(plane));
            for (c, (out_row, row)) in rows.enumerate() {
                normalize_row(out_row, row, (scale[c], shift[c]), slope);
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
        // The gradient at the BatchNorm's output is `dy` through the
        // activation, whose mask comes from the recomputed pre-activation.
        let slope = self.activation.unwrap_or(1.0);
        let (scale, shift) = (&self.stats.scale, &self.stats.shift);
        let sums: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let fold = (scale[c], shift[c]);
                let partial = rows(c).map(|(row, grad_row)| grad_sums_row(row, grad_row, fold, slope, mean[c]));
                partial.fold((0.0, 0.0), |(sum, dot), (s, d)| (sum + s, dot + d))
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
        let image = channels * plane;
        let mut packed = fill_in_chunks(x.len() + 2 * channels, image, true, |n, out_image| {
            // Chunks past the last image hold the parameter gradients, written below.
            if n >= batch {
                return;
            }
            let values = &x[n * image..][..image];
            let grad_values = &grad_y[n * image..][..image];
            let rows =
                out_image.chunks_exact_mut(plane).zip(values.chunks_exact(plane).zip(grad_values.chunks_exact(plane)));
            for (c, (out_row, (row, grad_row))) in rows.enumerate() {
                grad_input_row(out_row, row, grad_row, (scale[c], shift[c]), slope, coefficients[c]);
            }
        });
        let grad_params = &mut packed[x.len()..];
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
        let slope = self.slope;
        let y = fill_in_chunks(x.len(), CHUNK, true, |index, out| {
            activate_piece(out, &x[index * CHUNK..][..out.len()], slope);
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
        let slope = self.slope;
        let grad_x = fill_in_chunks(x.len(), CHUNK, true, |index, out| {
            let piece = index * CHUNK..index * CHUNK + out.len();
            activate_grad_piece(out, &x[piece.clone()], &grad_y[piece], slope);
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
