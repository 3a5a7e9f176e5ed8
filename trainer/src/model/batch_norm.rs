//! BatchNorm over the channels of `[N, C, H, W]` tensors, as PyTorch's
//! `nn.BatchNorm2d` computes it.

use candle_core::{Device, Tensor, Var};
use dcgan_runtime::BatchNormWeights;

use std::sync::{Arc, Mutex};

use super::cpu_ops::{BatchNormTrain, BatchStats};
use super::{normal_var, to_host, var_from_slice, Mode, ModelError, NamedVar, INIT_STD};

/// PyTorch's default BatchNorm epsilon.
pub const BATCH_NORM_EPS: f64 = 1e-5;

/// PyTorch's default BatchNorm momentum: the weight of the current batch in
/// the running statistics.
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

/// BatchNorm with a learnable scale and shift and tracked running statistics.
///
/// In [`Mode::Train`] it normalises with the batch mean and the biased batch
/// variance, and moves the running mean and the running *unbiased* variance
/// towards the batch values with momentum 0.1, as PyTorch does. In
/// [`Mode::Eval`] it normalises with the running statistics.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    eps: f64,
}

impl BatchNorm2d {
    /// Creates the layer as the DCGAN initialisation does: scale from
    /// `N(1, 0.02²)`, shift 0, running mean 0, running variance 1.
    pub fn init(channels: usize, rng: &mut impl rand::Rng, device: &Device) -> Result<Self, ModelError> {
        Ok(Self {
            weight: normal_var(rng, 1.0, INIT_STD, &[channels], device)?,
            bias: Var::zeros(channels, candle_core::DType::F32, device)?,
            running_mean: Var::zeros(channels, candle_core::DType::F32, device)?,
            running_var: Var::ones(channels, candle_core::DType::F32, device)?,
            eps: BATCH_NORM_EPS,
        })
    }

    /// Creates the layer from stored weights; the caller has checked lengths.
    pub fn from_weights(weights: &BatchNormWeights, device: &Device) -> Result<Self, ModelError> {
        let channels = [weights.gamma.len()];
        Ok(Self {
            weight: var_from_slice(&weights.gamma, &channels, device)?,
            bias: var_from_slice(&weights.beta, &channels, device)?,
            running_mean: var_from_slice(&weights.running_mean, &channels, device)?,
            running_var: var_from_slice(&weights.running_var, &channels, device)?,
            eps: f64::from(weights.eps),
        })
    }

    /// Downloads the parameters and running statistics.
    pub fn to_weights(&self) -> Result<BatchNormWeights, ModelError> {
        Ok(BatchNormWeights {
            gamma: to_host(&self.weight)?,
            beta: to_host(&self.bias)?,
            running_mean: to_host(&self.running_mean)?,
            running_var: to_host(&self.running_var)?,
            eps: self.eps as f32,
        })
    }

    /// Replaces the running statistics with `mean` and `variance`, one value
    /// per channel.
    pub fn set_running_stats(&self, mean: &Tensor, variance: &Tensor) -> candle_core::Result<()> {
        self.running_mean.set(mean)?;
        self.running_var.set(variance)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.weight.elem_count()
    }

    /// Returns the learnable scale and shift, named `{prefix}.weight` and `{prefix}.bias`.
    pub fn parameters(&self, prefix: &str) -> Vec<NamedVar> {
        vec![
            NamedVar { name: format!("{prefix}.weight"), var: self.weight.clone() },
            NamedVar { name: format!("{prefix}.bias"), var: self.bias.clone() },
        ]
    }

    /// Returns the running statistics, named `{prefix}.running_mean` and `{prefix}.running_var`.
    pub fn buffers(&self, prefix: &str) -> Vec<NamedVar> {
        vec![
            NamedVar { name: format!("{prefix}.running_mean"), var: self.running_mean.clone() },
            NamedVar { name: format!("{prefix}.running_var"), var: self.running_var.clone() },
        ]
    }

    /// Normalises `x`; in [`Mode::Train`] this also updates the running
    /// statistics.
    ///
    /// # Shapes
    /// `x`: `[N, C, H, W]` → `[N, C, H, W]`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match mode {
            Mode::Train => self.forward_train(x, None),
            Mode::Eval => self.forward_eval(x),
        }
    }

    /// Normalises `x` and applies `max(y, 0) + slope · min(y, 0)`: ReLU for
    /// slope 0, LeakyReLU otherwise. On the CPU in [`Mode::Train`] both run
    /// as one fused operation.
    ///
    /// # Shapes
    /// `x`: `[N, C, H, W]` → `[N, C, H, W]`.
    pub fn forward_activated(&self, x: &Tensor, mode: Mode, slope: f64) -> candle_core::Result<Tensor> {
        match mode {
            Mode::Train if x.device().is_cpu() => self.forward_train(x, Some(slope as f32)),
            _ => super::leaky_relu(&self.forward(x, mode)?, slope),
        }
    }

    fn forward_train(&self, x: &Tensor, activation: Option<f32>) -> candle_core::Result<Tensor> {
        let (batch, _, height, width) = x.dims4()?;
        let count = batch * height * width;
        if count < 2 {
            candle_core::bail!(
                "BatchNorm needs more than one value per channel in training, got input shape {:?}",
                x.dims()
            );
        }
        if x.device().is_cpu() {
            self.forward_train_cpu(x, activation)
        } else {
            let y = self.forward_train_generic(x, count)?;
            match activation {
                Some(slope) => super::leaky_relu(&y, f64::from(slope)),
                None => Ok(y),
            }
        }
    }

    fn forward_train_cpu(&self, x: &Tensor, activation: Option<f32>) -> candle_core::Result<Tensor> {
        let stats = Arc::new(Mutex::new(BatchStats::default()));
        let op = BatchNormTrain { eps: self.eps, activation, stats: Arc::clone(&stats) };
        let output = x.contiguous()?.apply_op3(self.weight.as_tensor(), self.bias.as_tensor(), op)?;

        let stats = stats.lock().map_err(|_| candle_core::Error::Msg("BatchNorm statistics lock poisoned".into()))?;
        let count = stats.count as f64;
        let mean = &stats.mean;
        let unbiased: Vec<f64> = stats.squared_deviations.iter().map(|&ss| ss / (count - 1.0)).collect();

        // Mixed in f64, as PyTorch's CPU kernel does.
        let mix = |running: &Var, batch: &[f64]| -> candle_core::Result<()> {
            let old: Vec<f32> = running.as_tensor().to_vec1()?;
            let new: Vec<f32> = old
                .iter()
                .zip(batch)
                .map(|(&r, &b)| (BATCH_NORM_MOMENTUM * b + (1.0 - BATCH_NORM_MOMENTUM) * f64::from(r)) as f32)
                .collect();
            running.set(&Tensor::from_vec(new, old.len(), x.device())?)
        };
        mix(&self.running_mean, mean)?;
        mix(&self.running_var, &unbiased)?;
        Ok(output)
    }

    fn forward_train_generic(&self, x: &Tensor, count: usize) -> candle_core::Result<Tensor> {
        let channels = x.dim(1)?;
        let mean = x.mean_keepdim((0, 2, 3))?;
        let centered = x.broadcast_sub(&mean)?;
        let squared_sum = centered.sqr()?.sum_keepdim((0, 2, 3))?;
        let variance = (&squared_sum / count as f64)?;
        let normalized = centered.broadcast_div(&(variance + self.eps)?.sqrt()?)?;

        let shape = (1, channels, 1, 1);
        let scaled = normalized.broadcast_mul(&self.weight.as_tensor().reshape(shape)?)?;
        let output = scaled.broadcast_add(&self.bias.as_tensor().reshape(shape)?)?;

        let unbiased = (squared_sum.detach() / (count - 1) as f64)?;
        self.update_running_stats(&mean.detach().flatten_all()?, &unbiased.flatten_all()?)?;
        Ok(output)
    }

    fn update_running_stats(&self, mean: &Tensor, unbiased_variance: &Tensor) -> candle_core::Result<()> {
        let keep = 1.0 - BATCH_NORM_MOMENTUM;
        let running_mean = ((mean * BATCH_NORM_MOMENTUM)? + (self.running_mean.as_tensor() * keep)?)?;
        let running_var = ((unbiased_variance * BATCH_NORM_MOMENTUM)? + (self.running_var.as_tensor() * keep)?)?;
        self.running_mean.set(&running_mean)?;
        self.running_var.set(&running_var)
    }

    fn forward_eval(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let channels = x.dim(1)?;

        // PyTorch folds eval-mode BatchNorm into one scale and one shift per
        // channel; doing the same keeps the results within rounding of it.
        let scale = (self.weight.as_tensor() / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?;
        let shift = (self.bias.as_tensor() - (self.running_mean.as_tensor() * &scale)?)?;

        let shape = (1, channels, 1, 1);
        x.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&shift.reshape(shape)?)
    }
}

/// PyTorch's printed form of a default `BatchNorm2d(channels)`.
pub(super) fn describe(channels: usize) -> String {
    format!("BatchNorm2d({channels}, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(device: &Device) -> BatchNorm2d {
        let weights = BatchNormWeights {
            gamma: vec![1.0, 2.0],
            beta: vec![0.0, 0.5],
            running_mean: vec![0.0, 0.0],
            running_var: vec![1.0, 1.0],
            eps: 1e-5,
        };
        BatchNorm2d::from_weights(&weights, device).unwrap()
    }

    #[test]
    fn train_mode_normalises_and_tracks_unbiased_variance() {
        let device = Device::Cpu;
        let bn = layer(&device);
        // Channel 0 contains 1, 2, 3, 4 and channel 1 contains 0, 0, 0, 4 in a
        // [2, 2, 1, 2] input.
        let x = Tensor::from_vec(vec![1f32, 2., 0., 0., 3., 4., 0., 4.], (2, 2, 1, 2), &device).unwrap();
        let y = bn.forward(&x, Mode::Train).unwrap();

        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        // Channel 0: mean 2.5, biased variance 1.25.
        let expected0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
        assert!((y[0] - expected0).abs() < 1e-6, "{} vs {expected0}", y[0]);
        // Channel 1: mean 1, biased variance 3, gamma 2, beta 0.5.
        let expected1 = 2.0 * (0.0 - 1.0) / (3f32 + 1e-5).sqrt() + 0.5;
        assert!((y[2] - expected1).abs() < 1e-6, "{} vs {expected1}", y[2]);

        let stats = bn.to_weights().unwrap();
        assert!((stats.running_mean[0] - 0.25).abs() < 1e-6);
        assert!((stats.running_mean[1] - 0.1).abs() < 1e-6);
        // Unbiased variances 5/3 and 4, mixed 0.1 into a running value of 1.
        assert!((stats.running_var[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
        assert!((stats.running_var[1] - (0.9 + 0.4)).abs() < 1e-6);
    }

    #[test]
    fn eval_mode_uses_running_stats() {
        let device = Device::Cpu;
        let weights = BatchNormWeights {
            gamma: vec![2.0],
            beta: vec![1.0],
            running_mean: vec![3.0],
            running_var: vec![4.0],
            eps: 0.0,
        };
        let bn = BatchNorm2d::from_weights(&weights, &device).unwrap();
        let x = Tensor::from_vec(vec![5f32, 1.0], (1, 1, 1, 2), &device).unwrap();
        let y: Vec<f32> = bn.forward(&x, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(y, [3.0, -1.0]);
        assert_eq!(bn.to_weights().unwrap(), weights);
    }

    /// The generic path runs on CUDA and Metal; on the CPU it must agree
    /// with the fused kernels, gradients included.
    #[test]
    fn generic_path_matches_fused_cpu_path() {
        let device = Device::Cpu;
        let (fused, generic) = (layer(&device), layer(&device));
        let x = Var::randn(0.5f32, 2.0, (3, 2, 4, 4), &device).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (3, 2, 4, 4), &device).unwrap();

        let fused_y = fused.forward_train_cpu(x.as_tensor(), None).unwrap();
        let generic_y = generic.forward_train_generic(x.as_tensor(), 3 * 16).unwrap();
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
        };
        assert!(diff(&fused_y, &generic_y) < 1e-5, "outputs differ");

        let fused_stats = fused.to_weights().unwrap();
        let generic_stats = generic.to_weights().unwrap();
        for (a, b) in fused_stats.running_var.iter().zip(&generic_stats.running_var) {
            assert!((a - b).abs() < 1e-5, "running_var {a} vs {b}");
        }
        for (a, b) in fused_stats.running_mean.iter().zip(&generic_stats.running_mean) {
            assert!((a - b).abs() < 1e-6, "running_mean {a} vs {b}");
        }

        let fused_grads = (fused_y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let generic_grads = (generic_y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let grad_x = diff(fused_grads.get(x.as_tensor()).unwrap(), generic_grads.get(x.as_tensor()).unwrap());
        assert!(grad_x < 1e-4, "input gradients differ by {grad_x}");
        let grad_gamma = diff(
            fused_grads.get(fused.weight.as_tensor()).unwrap(),
            generic_grads.get(generic.weight.as_tensor()).unwrap(),
        );
        assert!(grad_gamma < 1e-4, "scale gradients differ by {grad_gamma}");
    }

    /// BatchNorm fused with (leaky) ReLU equals the generic path followed by
    /// candle's own activation, in values and gradients, over random shapes.
    #[test]
    fn fused_activation_matches_generic_ops() {
        use rand::{Rng, SeedableRng};

        let device = Device::Cpu;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
        };
        for case in 0..16 {
            let slope = if case % 2 == 0 { 0.0 } else { 0.2 };
            let shape = (rng.gen_range(1..=4), rng.gen_range(1..=5), rng.gen_range(1..=5), rng.gen_range(2..=5));
            let len = shape.0 * shape.1 * shape.2 * shape.3;
            let values: Vec<f32> = (0..len).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
            let x = Var::from_vec(values, shape, &device).unwrap();
            let probe = Tensor::randn(0f32, 1.0, shape, &device).unwrap();
            let gamma: Vec<f32> = (0..shape.1).map(|_| rng.gen_range(0.5f32..1.5)).collect();
            let beta: Vec<f32> = (0..shape.1).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
            let weights = BatchNormWeights {
                gamma,
                beta,
                running_mean: vec![0.0; shape.1],
                running_var: vec![1.0; shape.1],
                eps: 1e-5,
            };
            let fused = BatchNorm2d::from_weights(&weights, &device).unwrap();
            let generic = BatchNorm2d::from_weights(&weights, &device).unwrap();

            let count = shape.0 * shape.2 * shape.3;
            let fused_y = fused.forward_activated(x.as_tensor(), Mode::Train, slope).unwrap();
            let normalized = generic.forward_train_generic(x.as_tensor(), count).unwrap();
            let generic_y = if slope == 0.0 {
                normalized.relu().unwrap()
            } else {
                candle_nn::ops::leaky_relu(&normalized, slope).unwrap()
            };
            assert!(diff(&fused_y, &generic_y) < 1e-5, "case {case}: outputs differ");

            let fused_grads = (fused_y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let generic_grads = (generic_y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let pairs = [
                (x.as_tensor(), x.as_tensor()),
                (fused.weight.as_tensor(), generic.weight.as_tensor()),
                (fused.bias.as_tensor(), generic.bias.as_tensor()),
            ];
            for (name, (a, b)) in ["input", "scale", "shift"].iter().zip(pairs) {
                let d = diff(fused_grads.get(a).unwrap(), generic_grads.get(b).unwrap());
                assert!(d < 1e-4, "case {case} {shape:?}: {name} gradients differ by {d}");
            }
        }
    }

    #[test]
    fn train_mode_rejects_single_value() {
        let device = Device::Cpu;
        let bn = layer(&device);
        let x = Tensor::zeros((1, 2, 1, 1), candle_core::DType::F32, &device).unwrap();
        assert!(bn.forward(&x, Mode::Train).is_err());
    }
}
