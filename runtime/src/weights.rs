//! Generator weights in plain memory, independent of any framework.
//!
//! The trainer fills this from its checkpoint, the ONNX exporter writes it out,
//! and the core runs it. Layouts follow PyTorch.

use alloc::vec::Vec;
use core::fmt;

use crate::spec::{GeneratorSpec, LayerSpec, SpecError};

/// BatchNorm parameters and running statistics of one layer, each of length
/// `out_channels`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormWeights {
    /// Scale (`gamma`, PyTorch's `weight`).
    pub gamma: Vec<f32>,
    /// Shift (`beta`, PyTorch's `bias`).
    pub beta: Vec<f32>,
    /// Running mean.
    pub running_mean: Vec<f32>,
    /// Running (unbiased) variance.
    pub running_var: Vec<f32>,
    /// Added to the variance before the square root; PyTorch's default is 1e-5.
    pub eps: f32,
}

/// Weights of one generator layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Transposed-convolution kernel, row-major `[in_channels, out_channels, 4, 4]`.
    pub weight: Vec<f32>,
    /// Present exactly when the layer's spec has `batch_norm`.
    pub batch_norm: Option<BatchNormWeights>,
}

/// A complete generator: its spec and one [`LayerWeights`] per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorWeights {
    /// Architecture hyperparameters.
    pub spec: GeneratorSpec,
    /// Layers from latent to image, as [`GeneratorSpec::layers`] lists them.
    pub layers: Vec<LayerWeights>,
}

/// Weights that do not fit their spec.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightsError {
    /// The spec itself is invalid.
    Spec(SpecError),
    /// The number of layers differs from the spec's.
    LayerCount {
        /// Layers the spec needs.
        expected: usize,
        /// Layers given.
        found: usize,
    },
    /// A tensor has the wrong number of values.
    Length {
        /// Layer index, from 0 at the latent.
        layer: usize,
        /// Which tensor (`weight`, `gamma`, ...).
        tensor: &'static str,
        /// Values the spec needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// BatchNorm is present where the spec has none, or missing where it has one.
    BatchNorm {
        /// Layer index, from 0 at the latent.
        layer: usize,
        /// Whether the spec has a BatchNorm there.
        expected: bool,
    },
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightsError::Spec(err) => err.fmt(f),
            WeightsError::LayerCount { expected, found } => {
                write!(f, "the spec needs {expected} layers but {found} were given")
            }
            WeightsError::Length { layer, tensor, expected, found } => write!(
                f,
                "layer {layer} {tensor}: expected {expected} values, found {found}"
            ),
            WeightsError::BatchNorm { layer, expected: true } => {
                write!(f, "layer {layer}: BatchNorm weights are missing")
            }
            WeightsError::BatchNorm { layer, expected: false } => {
                write!(f, "layer {layer}: has BatchNorm weights but the architecture has no BatchNorm there")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WeightsError {}

impl GeneratorWeights {
    /// Checks every tensor length against the spec.
    pub fn validate(&self) -> Result<(), WeightsError> {
        self.spec.validate().map_err(WeightsError::Spec)?;
        let specs = self.spec.layers();
        if specs.len() != self.layers.len() {
            return Err(WeightsError::LayerCount { expected: specs.len(), found: self.layers.len() });
        }
        for (index, (spec, layer)) in specs.iter().zip(&self.layers).enumerate() {
            validate_layer(index, spec, layer)?;
        }
        Ok(())
    }
}

fn validate_layer(index: usize, spec: &LayerSpec, layer: &LayerWeights) -> Result<(), WeightsError> {
    let check = |tensor, expected, found| {
        if expected == found {
            Ok(())
        } else {
            Err(WeightsError::Length { layer: index, tensor, expected, found })
        }
    };
    check("weight", spec.weight_len(), layer.weight.len())?;

    match (&layer.batch_norm, spec.batch_norm) {
        (Some(bn), true) => {
            let channels = spec.out_channels;
            check("gamma", channels, bn.gamma.len())?;
            check("beta", channels, bn.beta.len())?;
            check("running_mean", channels, bn.running_mean.len())?;
            check("running_var", channels, bn.running_var.len())
        }
        (None, false) => Ok(()),
        (_, expected) => Err(WeightsError::BatchNorm { layer: index, expected }),
    }
}
