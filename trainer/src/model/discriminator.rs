//! The discriminator: images to real-versus-fake logits.

use std::fmt;

use candle_core::{Device, Tensor, Var};
use dcgan_runtime::spec::{KERNEL, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE};
use dcgan_runtime::SpecError;

use super::{element_count, normal_var, BatchNorm2d, Mode, ModelError, NamedVar, INIT_STD};

/// Negative slope of the discriminator's LeakyReLUs.
pub const LEAKY_RELU_SLOPE: f64 = 0.2;

/// Hyperparameters that fix the discriminator's shapes.
///
/// The discriminator mirrors the generator: the first strided convolution
/// maps `nc` channels to `ndf`, each following one halves the spatial size
/// and doubles the channels, and a final 4x4 convolution without padding maps
/// the 4x4 feature map to one logit. All but the first and the last
/// convolution are followed by BatchNorm; all but the last by LeakyReLU(0.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscriminatorSpec {
    /// Feature maps in the first layer.
    pub ndf: usize,
    /// Image channels.
    pub nc: usize,
    /// Height and width of the input image, in pixels: a power of two.
    pub image_size: usize,
}

impl Default for DiscriminatorSpec {
    fn default() -> Self {
        Self { ndf: 64, nc: 3, image_size: 64 }
    }
}

/// One convolution of the discriminator and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscriminatorLayerSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the convolution.
    pub stride: usize,
    /// Zero padding of the convolution.
    pub padding: usize,
    /// Spatial size of the input feature map (square).
    pub in_size: usize,
    /// Spatial size of the output feature map (square).
    pub out_size: usize,
    /// Whether a BatchNorm follows the convolution.
    pub batch_norm: bool,
    /// Whether a LeakyReLU follows (every layer but the last).
    pub leaky_relu: bool,
}

impl DiscriminatorSpec {
    /// Checks that the hyperparameters describe a buildable discriminator.
    pub fn validate(&self) -> Result<(), SpecError> {
        let size = self.image_size;
        if !size.is_power_of_two() || !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
            return Err(SpecError::ImageSize(size));
        }
        for (name, value) in [("ndf", self.ndf), ("nc", self.nc)] {
            if value == 0 || value > 65536 {
                return Err(SpecError::Dimension { name, value });
            }
        }
        Ok(())
    }

    /// Number of convolutions: `log2(image_size) - 1`, as in the generator.
    pub fn num_layers(&self) -> usize {
        self.image_size.trailing_zeros() as usize - 1
    }

    /// Lists the layers from image to logit.
    ///
    /// Call [`DiscriminatorSpec::validate`] first: an invalid spec gives a
    /// meaningless list.
    pub fn layers(&self) -> Vec<DiscriminatorLayerSpec> {
        let count = self.num_layers();
        let mut layers = Vec::with_capacity(count);
        let mut in_channels = self.nc;
        let mut in_size = self.image_size;
        for index in 0..count {
            let last = index + 1 == count;
            let (out_channels, stride, padding, out_size) =
                if last { (1, 1, 0, 1) } else { (self.ndf << index, 2, 1, in_size / 2) };
            layers.push(DiscriminatorLayerSpec {
                in_channels,
                out_channels,
                stride,
                padding,
                in_size,
                out_size,
                batch_norm: index > 0 && !last,
                leaky_relu: !last,
            });
            in_channels = out_channels;
            in_size = out_size;
        }
        layers
    }
}

/// Index of layer `layer`'s convolution in the tutorial's `nn.Sequential`:
/// `Conv, LeakyReLU`, then `Conv, BN, LeakyReLU` per middle layer, then the
/// final `Conv, Sigmoid`.
fn sequential_index(layer: usize) -> usize {
    if layer == 0 {
        0
    } else {
        3 * layer - 1
    }
}

/// Name of discriminator layer `layer`'s convolution weight, such as
/// `netD.main.11.weight` for the tutorial's final convolution.
pub fn discriminator_conv_key(layer: usize) -> String {
    format!("netD.main.{}.weight", sequential_index(layer))
}

/// Name of discriminator layer `layer`'s BatchNorm tensor `part`
/// (`weight`, `bias`, `running_mean` or `running_var`).
pub fn discriminator_bn_key(layer: usize, part: &str) -> String {
    format!("netD.main.{}.{part}", sequential_index(layer) + 1)
}

/// One convolution with its optional BatchNorm.
#[derive(Clone, Debug)]
struct Layer {
    spec: DiscriminatorLayerSpec,
    weight: Var,
    batch_norm: Option<BatchNorm2d>,
}

/// The DCGAN discriminator of [`DiscriminatorSpec`].
///
/// [`Discriminator::forward`] returns logits, so the loss can use the stable
/// BCE-with-logits form; [`Discriminator::probability`] applies the final
/// Sigmoid that the tutorial's module ends with.
#[derive(Clone, Debug)]
pub struct Discriminator {
    spec: DiscriminatorSpec,
    layers: Vec<Layer>,
}

impl Discriminator {
    /// Creates a discriminator with the DCGAN initialisation: convolution
    /// weights from `N(0, 0.02²)`, BatchNorm scales from `N(1, 0.02²)`,
    /// shifts 0. Values are drawn from `rng` on the host, layer by layer.
    pub fn init(spec: DiscriminatorSpec, rng: &mut impl rand::Rng, device: &Device) -> Result<Self, ModelError> {
        spec.validate()?;
        let mut layers = Vec::new();
        for layer in spec.layers() {
            let shape = [layer.out_channels, layer.in_channels, KERNEL, KERNEL];
            let weight = normal_var(rng, 0.0, INIT_STD, &shape, device)?;
            let batch_norm =
                if layer.batch_norm { Some(BatchNorm2d::init(layer.out_channels, rng, device)?) } else { None };
            layers.push(Layer { spec: layer, weight, batch_norm });
        }
        Ok(Self { spec, layers })
    }

    /// The architecture.
    pub fn spec(&self) -> DiscriminatorSpec {
        self.spec
    }

    /// Returns the learnable tensors, in `state_dict` order.
    pub fn parameters(&self) -> Vec<NamedVar> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            named.push(NamedVar { name: discriminator_conv_key(index), var: layer.weight.clone() });
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

    /// Scores images with one logit each: positive means "real".
    /// [`Mode::Train`] normalises with batch statistics and updates the
    /// running statistics.
    ///
    /// # Shapes
    /// `x`: `[N, nc, image_size, image_size]` → `[N]`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        self.forward_with(x, mode, false)
    }

    /// [`Discriminator::forward`] for a loss that trains only what feeds
    /// `x`, such as the generator's: the convolution weights enter detached,
    /// so backpropagation skips their gradients, which that step would throw
    /// away. BatchNorm behaves as in `forward`, running statistics included.
    ///
    /// # Shapes
    /// `x`: `[N, nc, image_size, image_size]` → `[N]`.
    pub fn forward_for_input_grad(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        self.forward_with(x, mode, true)
    }

    fn forward_with(&self, x: &Tensor, mode: Mode, detach_weights: bool) -> candle_core::Result<Tensor> {
        let batch = x.dim(0)?;
        let mut x = x.clone();
        for layer in &self.layers {
            let weight = layer.weight.as_tensor();
            let weight = if detach_weights { weight.detach() } else { weight.clone() };
            x = super::conv::conv2d(&x, &weight, layer.spec.stride, layer.spec.padding)?;
            x = match (&layer.batch_norm, layer.spec.leaky_relu) {
                (Some(bn), true) => bn.forward_activated(&x, mode, LEAKY_RELU_SLOPE)?,
                (Some(bn), false) => bn.forward(&x, mode)?,
                (None, true) => super::leaky_relu(&x, LEAKY_RELU_SLOPE)?,
                (None, false) => x,
            };
        }
        x.reshape(batch)
    }

    /// Computes the probability that each image is real: Sigmoid of
    /// [`Discriminator::forward`].
    ///
    /// # Shapes
    /// `x`: `[N, nc, image_size, image_size]` → `[N]`.
    pub fn probability(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        candle_nn::ops::sigmoid(&self.forward(x, mode)?)
    }
}

fn bn_prefix(index: usize) -> String {
    format!("netD.main.{}", sequential_index(index) + 1)
}

/// Prints the network as PyTorch prints the tutorial's `netD`.
impl fmt::Display for Discriminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Discriminator(\n  (main): Sequential(")?;
        let mut index = 0;
        for layer in &self.layers {
            let spec = &layer.spec;
            write!(
                f,
                "    ({index}): Conv2d({}, {}, kernel_size=({KERNEL}, {KERNEL}), stride=({s}, {s})",
                spec.in_channels,
                spec.out_channels,
                s = spec.stride
            )?;
            if spec.padding > 0 {
                write!(f, ", padding=({p}, {p})", p = spec.padding)?;
            }
            writeln!(f, ", bias=False)")?;
            index += 1;
            if let Some(bn) = &layer.batch_norm {
                writeln!(f, "    ({index}): {}", super::batch_norm::describe(bn.channels()))?;
                index += 1;
            }
            if spec.leaky_relu {
                writeln!(f, "    ({index}): LeakyReLU(negative_slope={LEAKY_RELU_SLOPE}, inplace=True)")?;
                index += 1;
            }
        }
        writeln!(f, "    ({index}): Sigmoid()")?;
        write!(f, "  )\n)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_sequential_indices() {
        let keys: Vec<_> = (0..5).map(discriminator_conv_key).collect();
        assert_eq!(
            keys,
            [
                "netD.main.0.weight",
                "netD.main.2.weight",
                "netD.main.5.weight",
                "netD.main.8.weight",
                "netD.main.11.weight"
            ]
        );
        assert_eq!(discriminator_bn_key(1, "running_var"), "netD.main.3.running_var");
        assert_eq!(discriminator_bn_key(3, "weight"), "netD.main.9.weight");
    }

    #[test]
    fn smallest_discriminator_has_two_layers() {
        let spec = DiscriminatorSpec { ndf: 4, nc: 3, image_size: 8 };
        let layers = spec.layers();
        assert_eq!(layers.len(), 2);
        assert_eq!((layers[0].out_channels, layers[0].out_size), (4, 4));
        assert_eq!((layers[1].in_channels, layers[1].out_channels, layers[1].out_size), (4, 1, 1));
        assert!(!layers[0].batch_norm);
        assert!(!layers[1].batch_norm);
    }
}
