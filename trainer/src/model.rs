//! The DCGAN generator and discriminator, built on candle.
//!
//! Both networks mirror the PyTorch tutorial's `nn.Sequential` modules, and
//! their tensors carry the tutorial's `state_dict` names with a `netG.` or
//! `netD.` prefix (see [`dcgan_export::checkpoint`]). Learnable parameters
//! and BatchNorm running statistics are candle [`Var`]s: the optimizer gets
//! only the former, checkpoints store both.

mod batch_norm;
mod buffers;
mod conv;
mod conv_kernels;
mod cpu_ops;
mod discriminator;
mod generator;

use candle_core::{Device, Tensor, Var};
use dcgan_runtime::weights::WeightsError;
use dcgan_runtime::SpecError;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use thiserror::Error;

pub use batch_norm::{BatchNorm2d, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
pub use discriminator::{
    discriminator_bn_key, discriminator_conv_key, Discriminator, DiscriminatorLayerSpec, DiscriminatorSpec,
};
pub use generator::Generator;

/// Standard deviation of the initial convolution weights and of the initial
/// BatchNorm scales, as in the DCGAN paper and the PyTorch tutorial.
pub const INIT_STD: f32 = 0.02;

/// Whether BatchNorm normalises with batch statistics or running statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; every forward pass updates the running statistics.
    Train,
    /// Running statistics; nothing is updated.
    Eval,
}

/// A tensor of a network with its `state_dict` name.
#[derive(Clone, Debug)]
pub struct NamedVar {
    /// Full name, such as `netG.main.0.weight`.
    pub name: String,
    /// The tensor.
    pub var: Var,
}

/// A network that cannot be built or read.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The architecture hyperparameters are invalid.
    #[error("invalid architecture: {0}")]
    Spec(#[from] SpecError),
    /// Given weights do not fit their spec.
    #[error("invalid generator weights: {0}")]
    Weights(#[from] WeightsError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Draws a `shape` tensor from `N(mean, std²)` on the host and uploads it.
fn normal_var(rng: &mut impl Rng, mean: f32, std: f32, shape: &[usize], device: &Device) -> Result<Var, ModelError> {
    let normal = Normal::new(mean, std).map_err(|err| candle_core::Error::Msg(err.to_string()))?;
    let count = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| normal.sample(rng)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?)
}

/// Uploads host values as a `shape` variable.
fn var_from_slice(values: &[f32], shape: &[usize], device: &Device) -> Result<Var, ModelError> {
    Ok(Var::from_slice(values, shape, device)?)
}

/// Downloads a tensor's values in row-major order.
fn to_host(tensor: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(tensor.flatten_all()?.to_vec1::<f32>()?)
}

/// `max(x, 0) + slope · min(x, 0)`, with a fused kernel on the CPU.
fn leaky_relu(x: &Tensor, slope: f64) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op1(cpu_ops::LeakyRelu { slope: slope as f32 })
    } else if slope == 0.0 {
        x.relu()
    } else {
        candle_nn::ops::leaky_relu(x, slope)
    }
}

/// Total number of values in `vars`.
fn element_count(vars: &[NamedVar]) -> usize {
    vars.iter().map(|named| named.var.elem_count()).sum()
}
