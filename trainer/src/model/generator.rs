//! The generator: latent vectors to images.

use std::fmt;

use candle_core::{Device, Tensor, Var};
use dcgan_export::checkpoint::{generator_bn_key, generator_conv_key};
use dcgan_runtime::spec::{Activation, KERNEL};
use dcgan_runtime::{GeneratorSpec, GeneratorWeights, LayerSpec, LayerWeights};

use super::{element_count, normal_var, to_host, var_from_slice, BatchNorm2d, Mode, ModelError, NamedVar, INIT_STD};

/// One transposed convolution with its optional BatchNorm.
#[derive(Clone, Debug)]
struct Layer {
    spec: LayerSpec,
    weight: Var,
    batch_norm: Option<BatchNorm2d>,
}

/// The DCGAN generator of [`GeneratorSpec`]: transposed convolutions, each
/// followed by BatchNorm and ReLU, and Tanh after the last one.
#[derive(Clone, Debug)]
pub struct Generator {
    spec: GeneratorSpec,
    layers: Vec<Layer>,
}

impl Generator {
    /// Creates a generator with the DCGAN initialisation: convolution weights
    /// from `N(0, 0.02²)`, BatchNorm scales from `N(1, 0.02²)`, shifts 0.
    ///
    /// Values are drawn from `rng` on the host, layer by layer, so a seeded
    /// `rng` gives the same network on every device.
    pub fn init(spec: GeneratorSpec, rng: &mut impl rand::Rng, device: &Device) -> Result<Self, ModelError> {
        spec.validate()?;
        let mut layers = Vec::new();
        for layer in spec.layers() {
            let weight = normal_var(rng, 0.0, INIT_STD, &kernel_shape(&layer), device)?;
            let batch_norm =
                if layer.batch_norm { Some(BatchNorm2d::init(layer.out_channels, rng, device)?) } else { None };
            layers.push(Layer { spec: layer, weight, batch_norm });
        }
        Ok(Self { spec, layers })
    }

    /// Uploads framework-independent weights, for example weights computed by
    /// PyTorch.
    pub fn from_weights(weights: &GeneratorWeights, device: &Device) -> Result<Self, ModelError> {
        weights.validate()?;
        let mut layers = Vec::new();
        for (spec, stored) in weights.spec.layers().into_iter().zip(&weights.layers) {
            let weight = var_from_slice(&stored.weight, &kernel_shape(&spec), device)?;
            let batch_norm = match &stored.batch_norm {
                Some(bn) => Some(BatchNorm2d::from_weights(bn, device)?),
                None => None,
            };
            layers.push(Layer { spec, weight, batch_norm });
        }
        Ok(Self { spec: weights.spec, layers })
    }

    /// Downloads the weights and BatchNorm statistics, for export.
    pub fn to_weights(&self) -> Result<GeneratorWeights, ModelError> {
        let mut layers = Vec::new();
        for layer in &self.layers {
            let batch_norm = match &layer.batch_norm {
                Some(bn) => Some(bn.to_weights()?),
                None => None,
            };
            layers.push(LayerWeights { weight: to_host(layer.weight.as_tensor())?, batch_norm });
        }
        Ok(GeneratorWeights { spec: self.spec, layers })
    }

    /// The architecture.
    pub fn spec(&self) -> GeneratorSpec {
        self.spec
    }

    /// Returns the learnable tensors, in `state_dict` order.
    pub fn parameters(&self) -> Vec<NamedVar> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            named.push(NamedVar { name: generator_conv_key(index), var: layer.weight.clone() });
            if let Some(bn) = &layer.batch_norm {
                named.extend(bn.parameters(&bn_prefix(index)));
            }
        }
        named
    }

    /// Returns the BatchNorm running statistics, in `state_dict` order.
    pub fn buffers(&self) -> Vec<NamedVar> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            if let Some(bn) = &layer.batch_norm {
                named.extend(bn.buffers(&bn_prefix(index)));
            }
        }
        named
    }

    /// Number of learnable values, as PyTorch counts parameters.
    pub fn parameter_count(&self) -> usize {
        element_count(&self.parameters())
    }

    /// Generates images in `[-1, 1]`; [`Mode::Train`] normalises with batch
    /// statistics and updates the running statistics.
    ///
    /// # Shapes
    /// `z`: `[N, nz, 1, 1]` or `[N, nz]` → `[N, nc, image_size, image_size]`.
    pub fn forward(&self, z: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let batch = z.dim(0)?;
        let mut x = z.reshape((batch, self.spec.nz, 1, 1))?;
        for layer in &self.layers {
            x = super::conv::conv_transpose2d(&x, &layer.weight, layer.spec.stride, layer.spec.padding)?;
            x = match (&layer.batch_norm, layer.spec.activation) {
                (Some(bn), Activation::Relu) => bn.forward_activated(&x, mode, 0.0)?,
                (Some(bn), activation) => apply_activation(&bn.forward(&x, mode)?, activation)?,
                (None, activation) => apply_activation(&x, activation)?,
            };
        }
        Ok(x)
    }

    /// Replaces every BatchNorm's running statistics with the population
    /// statistics of the current weights over the latent `batches`: the mean
    /// of the batch means and of the unbiased batch variances, as PyTorch
    /// computes them with `momentum=None` ("precise BatchNorm").
    ///
    /// The running averages that training keeps (momentum 0.1) lag behind a
    /// generator whose weights still change quickly, and early in a run
    /// eval-mode images then come out nearly uniform grey while train-mode
    /// images already show faces. Training itself never reads these
    /// statistics, so recalibrating changes no loss or weight.
    ///
    /// # Shapes
    /// each batch: `[N, nz, 1, 1]` or `[N, nz]` with `N >= 2`.
    pub fn recalibrate_batch_norm(&self, batches: &[Tensor]) -> candle_core::Result<()> {
        let mut sums: Vec<Option<(Tensor, Tensor)>> = vec![None; self.layers.len()];
        for z in batches {
            let mut x = z.reshape((z.dim(0)?, self.spec.nz, 1, 1))?;
            for (layer, sum) in self.layers.iter().zip(&mut sums) {
                x = super::conv::conv_transpose2d(&x, &layer.weight, layer.spec.stride, layer.spec.padding)?;
                if let Some(bn) = &layer.batch_norm {
                    let (mean, variance) = channel_statistics(&x)?;
                    *sum = Some(match sum.take() {
                        Some((mean_sum, variance_sum)) => ((mean_sum + mean)?, (variance_sum + variance)?),
                        None => (mean, variance),
                    });
                    x = bn.forward(&x, Mode::Train)?;
                }
                x = apply_activation(&x, layer.spec.activation)?;
            }
        }

        let count = batches.len() as f64;
        for (layer, sum) in self.layers.iter().zip(sums) {
            if let (Some(bn), Some((mean_sum, variance_sum))) = (&layer.batch_norm, sum) {
                bn.set_running_stats(&(mean_sum / count)?, &(variance_sum / count)?)?;
            }
        }
        Ok(())
    }

    /// Generates images with the running BatchNorm statistics, as PyTorch's
    /// `netG.eval()` does.
    ///
    /// # Shapes
    /// `z`: `[N, nz, 1, 1]` or `[N, nz]` → `[N, nc, image_size, image_size]`.
    pub fn forward_eval(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        self.forward(z, Mode::Eval)
    }
}

fn apply_activation(x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
    match activation {
        Activation::Relu => super::leaky_relu(x, 0.0),
        Activation::Tanh => x.tanh(),
    }
}

/// Per-channel mean and unbiased variance of `x`, detached.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → two `[C]` tensors.
fn channel_statistics(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let (batch, channels, height, width) = x.dims4()?;
    let count = batch * height * width;
    let x = x.detach();
    let mean = x.mean_keepdim((0, 2, 3))?;
    let squared_sum = x.broadcast_sub(&mean)?.sqr()?.sum_keepdim((0, 2, 3))?;
    let variance = (squared_sum / (count.max(2) - 1) as f64)?;
    Ok((mean.reshape(channels)?, variance.reshape(channels)?))
}

/// PyTorch's `ConvTranspose2d` weight layout: `[in, out, k, k]`.
fn kernel_shape(layer: &LayerSpec) -> [usize; 4] {
    [layer.in_channels, layer.out_channels, KERNEL, KERNEL]
}

/// `netG.main.{3i+1}`, the prefix of layer `index`'s BatchNorm tensors.
fn bn_prefix(index: usize) -> String {
    generator_bn_key(index, "").trim_end_matches('.').to_owned()
}

/// Prints the network as PyTorch prints the tutorial's `netG`.
impl fmt::Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Generator(\n  (main): Sequential(")?;
        for (index, layer) in self.layers.iter().enumerate() {
            let spec = &layer.spec;
            let base = 3 * index;
            write!(
                f,
                "    ({base}): ConvTranspose2d({}, {}, kernel_size=({KERNEL}, {KERNEL}), stride=({s}, {s})",
                spec.in_channels,
                spec.out_channels,
                s = spec.stride
            )?;
            if spec.padding > 0 {
                write!(f, ", padding=({p}, {p})", p = spec.padding)?;
            }
            writeln!(f, ", bias=False)")?;
            if let Some(bn) = &layer.batch_norm {
                writeln!(f, "    ({}): {}", base + 1, super::batch_norm::describe(bn.channels()))?;
            }
            let activation_index = base + 1 + usize::from(layer.batch_norm.is_some());
            match spec.activation {
                Activation::Relu => writeln!(f, "    ({activation_index}): ReLU(inplace=True)")?,
                Activation::Tanh => writeln!(f, "    ({activation_index}): Tanh()")?,
            }
        }
        write!(f, "  )\n)")
    }
}
