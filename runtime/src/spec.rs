//! The DCGAN generator architecture, described once for every crate.
//!
//! The generator is a stack of transposed convolutions. The first one maps the
//! latent `[N, nz, 1, 1]` to a 4x4 feature map, and each following one doubles
//! the spatial size. Every layer but the last is followed by BatchNorm and ReLU;
//! the last one is followed by Tanh. No layer has a bias. For the tutorial's
//! 64x64 model this gives five layers with `ngf*8, ngf*4, ngf*2, ngf, nc`
//! output channels.

use alloc::vec::Vec;
use core::fmt;

/// Kernel size of every transposed convolution in the generator.
pub const KERNEL: usize = 4;

/// Smallest supported image size: one 4x4 projection plus one upsampling layer.
pub const MIN_IMAGE_SIZE: usize = 8;

/// Largest supported image size.
pub const MAX_IMAGE_SIZE: usize = 1024;

/// Hyperparameters that fix the generator's shapes.
///
/// The defaults are those of the PyTorch DCGAN tutorial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Length of the latent vector.
    pub nz: usize,
    /// Feature maps in the generator's last hidden layer.
    pub ngf: usize,
    /// Image channels (3 for RGB).
    pub nc: usize,
    /// Height and width of the generated image, in pixels: a power of two.
    pub image_size: usize,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        Self { nz: 100, ngf: 64, nc: 3, image_size: 64 }
    }
}

/// Activation applied after a layer (after BatchNorm, where there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`, which maps the output into `[-1, 1]`.
    Tanh,
}

/// One transposed convolution of the generator and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the transposed convolution.
    pub stride: usize,
    /// Zero padding of the transposed convolution.
    pub padding: usize,
    /// Spatial size of the input feature map (square).
    pub in_size: usize,
    /// Spatial size of the output feature map (square).
    pub out_size: usize,
    /// Whether a BatchNorm follows the convolution.
    pub batch_norm: bool,
    /// Activation after the convolution (and BatchNorm).
    pub activation: Activation,
}

impl LayerSpec {
    /// Number of weights in the `[in_channels, out_channels, 4, 4]` kernel.
    /// [`GeneratorSpec::validate`] checks that this product fits in `usize`.
    pub fn weight_len(&self) -> usize {
        self.in_channels * self.out_channels * KERNEL * KERNEL
    }

    /// Checks that the weight count and both activation counts fit in `usize`.
    fn sizes_fit(&self) -> bool {
        let weights = self.in_channels.checked_mul(self.out_channels).and_then(|n| n.checked_mul(KERNEL * KERNEL));
        let input = self.in_size.checked_mul(self.in_size).and_then(|n| n.checked_mul(self.in_channels));
        let output = self.out_size.checked_mul(self.out_size).and_then(|n| n.checked_mul(self.out_channels));
        weights.is_some() && input.is_some() && output.is_some()
    }
}

/// A [`GeneratorSpec`] that no generator can be built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// The image size is not a power of two within the supported range.
    ImageSize(usize),
    /// A channel count or the latent length is zero or unreasonably large.
    Dimension {
        /// Which hyperparameter (`nz`, `ngf` or `nc`).
        name: &'static str,
        /// The rejected value.
        value: usize,
    },
    /// A layer's weight or activation count does not fit in this target's
    /// `usize`, which happens for very wide generators on 32-bit targets.
    TooLarge {
        /// Index of the first layer that does not fit, from 0 at the latent.
        layer: usize,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::ImageSize(size) => write!(
                f,
                "image size {size} is not supported: use a power of two from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (the tutorial uses 64)"
            ),
            SpecError::Dimension { name, value } => {
                write!(f, "{name} = {value} is out of range: use a value from 1 to 65536")
            }
            SpecError::TooLarge { layer } => write!(
                f,
                "layer {layer} has more weights or activations than this target can address: use a smaller ngf or image size"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SpecError {}

impl GeneratorSpec {
    /// Checks that the hyperparameters describe a buildable generator.
    pub fn validate(&self) -> Result<(), SpecError> {
        let size = self.image_size;
        if !size.is_power_of_two() || !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
            return Err(SpecError::ImageSize(size));
        }
        for (name, value) in [("nz", self.nz), ("ngf", self.ngf), ("nc", self.nc)] {
            if value == 0 || value > 65536 {
                return Err(SpecError::Dimension { name, value });
            }
        }
        match self.layers().iter().position(|layer| !layer.sizes_fit()) {
            Some(layer) => Err(SpecError::TooLarge { layer }),
            None => Ok(()),
        }
    }

    /// Number of transposed convolutions: `log2(image_size) - 1`.
    pub fn num_layers(&self) -> usize {
        self.image_size.trailing_zeros() as usize - 1
    }

    /// The layers from latent to image.
    ///
    /// Call [`GeneratorSpec::validate`] first: an invalid spec gives a
    /// meaningless list.
    pub fn layers(&self) -> Vec<LayerSpec> {
        let count = self.num_layers();
        let mut layers = Vec::with_capacity(count);
        let mut in_channels = self.nz;
        let mut in_size = 1;
        for index in 0..count {
            let last = index + 1 == count;
            let out_channels = if last { self.nc } else { self.ngf << (count - 2 - index) };
            let (stride, padding, out_size) = if index == 0 { (1, 0, 4) } else { (2, 1, in_size * 2) };
            layers.push(LayerSpec {
                in_channels,
                out_channels,
                stride,
                padding,
                in_size,
                out_size,
                batch_norm: !last,
                activation: if last { Activation::Tanh } else { Activation::Relu },
            });
            in_channels = out_channels;
            in_size = out_size;
        }
        layers
    }

    /// Number of learnable parameters (convolution weights plus BatchNorm
    /// scale and shift), as PyTorch counts them.
    pub fn parameter_count(&self) -> usize {
        self.layers()
            .iter()
            .map(|layer| layer.weight_len() + if layer.batch_norm { 2 * layer.out_channels } else { 0 })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_layers_match_pytorch() {
        let layers = GeneratorSpec::default().layers();
        let channels: Vec<_> = layers.iter().map(|l| (l.in_channels, l.out_channels)).collect();
        assert_eq!(channels, [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]);
        let sizes: Vec<_> = layers.iter().map(|l| l.out_size).collect();
        assert_eq!(sizes, [4, 8, 16, 32, 64]);
        assert_eq!((layers[0].stride, layers[0].padding), (1, 0));
        assert!(layers[1..].iter().all(|l| l.stride == 2 && l.padding == 1));
        assert_eq!(layers[4].activation, Activation::Tanh);
        assert!(!layers[4].batch_norm);
    }

    #[test]
    fn tutorial_parameter_count() {
        // PyTorch reports 3,576,704 trainable parameters for the tutorial's netG.
        assert_eq!(GeneratorSpec::default().parameter_count(), 3_576_704);
    }

    #[test]
    fn smallest_generator_has_two_layers() {
        let spec = GeneratorSpec { nz: 4, ngf: 2, nc: 3, image_size: 8 };
        let layers = spec.layers();
        assert_eq!(layers.len(), 2);
        assert_eq!((layers[0].out_channels, layers[1].out_channels), (2, 3));
    }

    #[test]
    fn validate_rejects_bad_sizes() {
        for size in [0, 4, 48, 2048] {
            let spec = GeneratorSpec { image_size: size, ..Default::default() };
            assert_eq!(spec.validate(), Err(SpecError::ImageSize(size)));
        }
        let spec = GeneratorSpec { nz: 0, ..Default::default() };
        assert!(matches!(spec.validate(), Err(SpecError::Dimension { name: "nz", .. })));
    }

    #[test]
    fn widest_spec_fits_or_is_rejected() {
        let spec = GeneratorSpec { nz: 65536, ngf: 65536, nc: 65536, image_size: MAX_IMAGE_SIZE };
        let fits = spec.layers().iter().all(LayerSpec::sizes_fit);
        if usize::BITS >= 64 {
            assert!(fits, "every product of the widest spec fits in 64 bits");
            assert_eq!(spec.validate(), Ok(()));
        } else {
            assert!(matches!(spec.validate(), Err(SpecError::TooLarge { .. })));
        }
    }
}
