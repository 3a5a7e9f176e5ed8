//! A generator with folded BatchNorm and optionally int8 kernels.
//!
//! In inference, a BatchNorm with running statistics is an affine map per
//! channel, so it folds into the transposed convolution before it: output
//! channel `o` of the kernel is scaled by `s[o] = gamma[o] / sqrt(var[o] + eps)`
//! and gets the bias `beta[o] - mean[o] * s[o]`. [`fold_batch_norm`] does this
//! for every layer, and [`QuantizedGenerator::quantize`] then stores chosen
//! layers' kernels as symmetric int8 with one f32 scale per output channel
//! (axis 1 of the `[in, out, 4, 4]` kernel). Biases stay f32.
//!
//! [`generate`] is the scalar reference forward pass of this form: it
//! dequantizes each kernel to f32 and runs the same textbook transposed
//! convolution as [`crate::reference`]. It runs in `no_std` with `alloc`.

use alloc::vec::Vec;
use core::fmt;

use crate::reference::{apply_activation, conv_transpose};
use crate::spec::{GeneratorSpec, LayerSpec, SpecError, KERNEL};
use crate::weights::{GeneratorWeights, WeightsError};

/// Largest magnitude of a symmetric int8 value; -128 is never used, so the
/// range is symmetric around 0.
pub const INT8_MAX: i8 = 127;

/// Taps of one `[in, out]` kernel slice.
const TAPS: usize = KERNEL * KERNEL;

/// Transposed-convolution kernel of one layer, `[in_channels, out_channels, 4, 4]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// Plain f32 values.
    F32(Vec<f32>),
    /// Symmetric int8 values with one scale per output channel: the real
    /// weight of `values[((i * out) + o) * 16 + k]` is that value times `scales[o]`.
    Int8 {
        /// Quantized values in `[-127, 127]`.
        values: Vec<i8>,
        /// One positive scale per output channel.
        scales: Vec<f32>,
    },
}

impl Kernel {
    /// Whether the kernel is stored as int8.
    pub fn is_int8(&self) -> bool {
        matches!(self, Kernel::Int8 { .. })
    }

    /// Number of kernel values.
    pub fn len(&self) -> usize {
        match self {
            Kernel::F32(values) => values.len(),
            Kernel::Int8 { values, .. } => values.len(),
        }
    }

    /// Whether the kernel has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kernel as f32, with int8 values multiplied by their channel's scale.
    ///
    /// # Shapes
    ///
    /// - returns: `[in_channels, out_channels, 4, 4]` with
    ///   `out_channels = scales.len()` for int8 kernels.
    pub fn dequantize(&self) -> Vec<f32> {
        match self {
            Kernel::F32(values) => values.clone(),
            Kernel::Int8 { values, scales } => {
                let out_channels = scales.len().max(1);
                values
                    .chunks_exact(TAPS)
                    .enumerate()
                    .flat_map(|(slice, taps)| {
                        let scale = scales.get(slice % out_channels).copied().unwrap_or(0.0);
                        taps.iter().map(move |&value| f32::from(value) * scale)
                    })
                    .collect()
            }
        }
    }
}

/// One layer after folding: kernel plus per-channel bias.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedLayer {
    /// Kernel with the BatchNorm scale folded in.
    pub kernel: Kernel,
    /// One bias per output channel: the folded BatchNorm shift, or zeros for
    /// a layer without BatchNorm.
    pub bias: Vec<f32>,
}

/// A generator in folded form, each layer's kernel f32 or int8.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedGenerator {
    /// Architecture hyperparameters.
    pub spec: GeneratorSpec,
    /// Layers from latent to image, as [`GeneratorSpec::layers`] lists them.
    pub layers: Vec<QuantizedLayer>,
    /// One int8 scale per layer input (`x ≈ q * scale`), from
    /// [`calibrate_activation_scales`], or empty when not calibrated. The
    /// core runs an all-int8 generator on its integer path only when these
    /// are present.
    pub activation_scales: Vec<f32>,
}

/// A folded generator whose tensors do not fit its spec.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantizedError {
    /// The spec itself is invalid.
    Spec(SpecError),
    /// The unfolded weights are invalid.
    Weights(WeightsError),
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
        /// Which tensor (`kernel`, `scales` or `bias`).
        tensor: &'static str,
        /// Values the spec needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A scale is zero, negative or not finite, or a bias not finite.
    Value {
        /// Layer index, from 0 at the latent.
        layer: usize,
        /// Which tensor (`scales` or `bias`).
        tensor: &'static str,
        /// Index of the first bad value.
        index: usize,
    },
    /// `latents.len()` is not `batch * nz`.
    LatentLength {
        /// Values needed: `batch * nz`.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

impl fmt::Display for QuantizedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizedError::Spec(err) => err.fmt(f),
            QuantizedError::Weights(err) => err.fmt(f),
            QuantizedError::LayerCount { expected, found } => {
                write!(f, "the spec needs {expected} layers but {found} were given")
            }
            QuantizedError::Length { layer, tensor, expected, found } => {
                write!(f, "layer {layer} {tensor}: expected {expected} values, found {found}")
            }
            QuantizedError::Value { layer, tensor, index } => {
                write!(f, "layer {layer} {tensor}[{index}] is not a finite value (scales must also be positive)")
            }
            QuantizedError::LatentLength { expected, found } => {
                write!(f, "expected {expected} latent values (batch * nz), found {found}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuantizedError {}

/// Folds every BatchNorm into the transposed convolution before it.
///
/// The result computes the same function as `weights` in eval mode, up to
/// f32 rounding. All kernels stay f32; see [`QuantizedGenerator::quantize`].
///
/// # Errors
///
/// [`QuantizedError::Weights`] when `weights` fails [`GeneratorWeights::validate`].
pub fn fold_batch_norm(weights: &GeneratorWeights) -> Result<QuantizedGenerator, QuantizedError> {
    weights.validate().map_err(QuantizedError::Weights)?;

    let layers = weights
        .spec
        .layers()
        .iter()
        .zip(&weights.layers)
        .map(|(spec, layer)| {
            let channels = spec.out_channels;
            let Some(bn) = &layer.batch_norm else {
                return QuantizedLayer { kernel: Kernel::F32(layer.weight.clone()), bias: alloc::vec![0.0; channels] };
            };

            // Per output channel: s = gamma / sqrt(var + eps), bias = beta - mean * s.
            let scale: Vec<f32> =
                (0..channels).map(|o| bn.gamma[o] / libm::sqrtf(bn.running_var[o] + bn.eps)).collect();
            let bias = (0..channels).map(|o| bn.beta[o] - bn.running_mean[o] * scale[o]).collect();

            // Kernel layout [in, out, 4, 4]: slice `i * out + o` belongs to output channel o.
            let mut kernel = layer.weight.clone();
            for (slice, taps) in kernel.chunks_exact_mut(TAPS).enumerate() {
                let factor = scale[slice % channels];
                taps.iter_mut().for_each(|w| *w *= factor);
            }
            QuantizedLayer { kernel: Kernel::F32(kernel), bias }
        })
        .collect();
    Ok(QuantizedGenerator { spec: weights.spec, layers, activation_scales: Vec::new() })
}

/// Quantizes an f32 kernel per output channel, symmetric int8.
///
/// `scale[o] = max_abs(kernel[:, o]) / 127` and `q = round(w / scale[o])`,
/// rounding half away from zero. A channel whose weights are all zero gets
/// scale 1 and zeros.
///
/// # Shapes
///
/// - `kernel`: `[in_channels, out_channels, 4, 4]`.
/// - returns: an int8 [`Kernel`] of the same shape with `out_channels` scales.
pub fn quantize_kernel(kernel: &[f32], out_channels: usize) -> Kernel {
    let mut max_abs = alloc::vec![0.0f32; out_channels];
    for (slice, taps) in kernel.chunks_exact(TAPS).enumerate() {
        let channel = &mut max_abs[slice % out_channels];
        *channel = taps.iter().fold(*channel, |max, w| max.max(w.abs()));
    }
    let scales: Vec<f32> = max_abs.iter().map(|&max| if max > 0.0 { max / f32::from(INT8_MAX) } else { 1.0 }).collect();

    let max = f32::from(INT8_MAX);
    let values = kernel
        .chunks_exact(TAPS)
        .enumerate()
        .flat_map(|(slice, taps)| {
            let scale = scales[slice % out_channels];
            taps.iter().map(move |&w| libm::roundf(w / scale).clamp(-max, max) as i8)
        })
        .collect();
    Kernel::Int8 { values, scales }
}

impl QuantizedGenerator {
    /// Quantizes the f32 kernels of every layer for which `int8(layer_index)`
    /// is true; int8 kernels and the other layers stay as they are.
    pub fn quantize(&self, int8: impl Fn(usize) -> bool) -> QuantizedGenerator {
        let layers = self
            .spec
            .layers()
            .iter()
            .zip(&self.layers)
            .enumerate()
            .map(|(index, (spec, layer))| match &layer.kernel {
                Kernel::F32(values) if int8(index) => {
                    QuantizedLayer { kernel: quantize_kernel(values, spec.out_channels), bias: layer.bias.clone() }
                }
                _ => layer.clone(),
            })
            .collect();
        QuantizedGenerator { spec: self.spec, layers, activation_scales: self.activation_scales.clone() }
    }

    /// Checks every tensor length against the spec, and that scales are
    /// positive and finite and biases finite.
    pub fn validate(&self) -> Result<(), QuantizedError> {
        self.spec.validate().map_err(QuantizedError::Spec)?;
        let specs = self.spec.layers();
        if specs.len() != self.layers.len() {
            return Err(QuantizedError::LayerCount { expected: specs.len(), found: self.layers.len() });
        }
        for (index, (spec, layer)) in specs.iter().zip(&self.layers).enumerate() {
            validate_layer(index, spec, layer)?;
        }
        self.validate_activation_scales()
    }

    /// Checks that activation scales are absent or one positive finite
    /// value per layer.
    fn validate_activation_scales(&self) -> Result<(), QuantizedError> {
        let scales = &self.activation_scales;
        if scales.is_empty() {
            return Ok(());
        }
        if scales.len() != self.layers.len() {
            let (expected, found) = (self.layers.len(), scales.len());
            return Err(QuantizedError::Length { layer: 0, tensor: "activation scales", expected, found });
        }
        if let Some(bad) = scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(QuantizedError::Value { layer: bad, tensor: "activation scales", index: bad });
        }
        Ok(())
    }

    /// Indices of the layers stored as int8.
    pub fn int8_layers(&self) -> Vec<usize> {
        self.layers.iter().enumerate().filter(|(_, layer)| layer.kernel.is_int8()).map(|(index, _)| index).collect()
    }
}

fn validate_layer(index: usize, spec: &LayerSpec, layer: &QuantizedLayer) -> Result<(), QuantizedError> {
    let check = |tensor, expected: usize, found: usize| {
        if expected == found {
            Ok(())
        } else {
            Err(QuantizedError::Length { layer: index, tensor, expected, found })
        }
    };
    check("kernel", spec.weight_len(), layer.kernel.len())?;
    check("bias", spec.out_channels, layer.bias.len())?;
    if let Some(bad) = layer.bias.iter().position(|b| !b.is_finite()) {
        return Err(QuantizedError::Value { layer: index, tensor: "bias", index: bad });
    }

    if let Kernel::Int8 { scales, .. } = &layer.kernel {
        check("scales", spec.out_channels, scales.len())?;
        if let Some(bad) = scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(QuantizedError::Value { layer: index, tensor: "scales", index: bad });
        }
    }
    Ok(())
}

/// Seed of the latents [`calibrate_activation_scales`] draws by default.
pub const CALIBRATION_SEED: u64 = 0x00ca_11b8;

/// Number of latents [`calibrate_activation_scales`] draws by default.
pub const CALIBRATION_LATENTS: usize = 16;

/// Computes one symmetric int8 scale per layer input: the largest magnitude
/// that layer's input reaches over `count` latents of `seed` (drawn with
/// [`crate::latent::fill_latents`] from index 0), divided by 127.
///
/// The layers run as [`generate_layers`] runs them, int8 kernels
/// dequantized. A layer whose input is zero on every latent gets scale 1.
///
/// # Errors
///
/// The errors of [`QuantizedGenerator::validate`].
pub fn calibrate_activation_scales(
    generator: &QuantizedGenerator,
    seed: u64,
    count: usize,
) -> Result<Vec<f32>, QuantizedError> {
    let nz = generator.spec.nz;
    let mut latents = alloc::vec![0.0; count * nz];
    crate::latent::fill_latents(seed, 0, nz, &mut latents);
    let outputs = generate_layers(generator, &latents, count)?;

    let max_abs = |values: &[f32]| values.iter().fold(0.0f32, |max, v| max.max(v.abs()));
    let mut scales = Vec::with_capacity(outputs.len());
    scales.push(max_abs(&latents));
    scales.extend(outputs.iter().take(outputs.len().saturating_sub(1)).map(|output| max_abs(output)));
    Ok(scales.into_iter().map(|max| if max > 0.0 { max / f32::from(INT8_MAX) } else { 1.0 }).collect())
}

/// Runs the folded generator on `batch` latents and returns the image batch.
///
/// # Shapes
///
/// - `latents`: `[batch, nz]` (the same memory as `[batch, nz, 1, 1]`).
/// - returns: `[batch, nc, image_size, image_size]`, row-major (NCHW).
///
/// # Errors
///
/// The errors of [`QuantizedGenerator::validate`], and
/// [`QuantizedError::LatentLength`] when `latents.len() != batch * nz`.
pub fn generate(generator: &QuantizedGenerator, latents: &[f32], batch: usize) -> Result<Vec<f32>, QuantizedError> {
    let layers = generate_layers(generator, latents, batch)?;
    Ok(layers.into_iter().last().unwrap_or_default())
}

/// Runs the folded generator and returns every layer's output after its
/// activation, for per-layer comparisons.
///
/// # Shapes
///
/// - `latents`: `[batch, nz]`.
/// - returns: one tensor per layer, `[batch, out_channels, out_size, out_size]`.
///
/// # Errors
///
/// As [`generate`].
pub fn generate_layers(
    generator: &QuantizedGenerator,
    latents: &[f32],
    batch: usize,
) -> Result<Vec<Vec<f32>>, QuantizedError> {
    generator.validate()?;
    let expected = batch * generator.spec.nz;
    if latents.len() != expected {
        return Err(QuantizedError::LatentLength { expected, found: latents.len() });
    }

    // Stage 1: dequantize each kernel once for the whole batch.
    let specs = generator.spec.layers();
    let kernels: Vec<Vec<f32>> = generator.layers.iter().map(|layer| layer.kernel.dequantize()).collect();

    // Stage 2: per latent, convolution + bias + activation, layer by layer.
    let mut outputs: Vec<Vec<f32>> = specs.iter().map(|_| Vec::new()).collect();
    for latent in latents.chunks_exact(generator.spec.nz) {
        let mut activations = latent.to_vec();
        for (index, spec) in specs.iter().enumerate() {
            activations = conv_transpose(spec, &kernels[index], &activations);
            add_bias(spec, &generator.layers[index].bias, &mut activations);
            apply_activation(spec.activation, &mut activations);
            outputs[index].extend_from_slice(&activations);
        }
    }
    Ok(outputs)
}

/// Adds `bias[c]` to every value of channel `c` of a `[out_channels, size, size]` map.
fn add_bias(spec: &LayerSpec, bias: &[f32], activations: &mut [f32]) {
    let plane = spec.out_size * spec.out_size;
    for (values, &b) in activations.chunks_exact_mut(plane).zip(bias) {
        values.iter_mut().for_each(|x| *x += b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::fill_latents;
    use crate::reference::{self, random_weights};

    fn small_spec() -> GeneratorSpec {
        GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 }
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn folding_matches_reference() {
        let weights = random_weights(small_spec(), 4).unwrap();
        let folded = fold_batch_norm(&weights).unwrap();
        let mut latents = alloc::vec![0.0; 3 * 8];
        fill_latents(1, 0, 8, &mut latents);

        let expected = reference::generate(&weights, &latents, 3).unwrap();
        let actual = generate(&folded, &latents, 3).unwrap();
        let diff = max_abs_diff(&expected, &actual);
        assert!(diff < 1e-5, "max abs difference {diff}");
    }

    #[test]
    fn quantization_is_per_output_channel() {
        // 1 input channel, 2 output channels of very different magnitude.
        let mut kernel = alloc::vec![0.0f32; 2 * TAPS];
        kernel[..TAPS].iter_mut().enumerate().for_each(|(k, w)| *w = k as f32 * 100.0);
        kernel[TAPS..].iter_mut().enumerate().for_each(|(k, w)| *w = -(k as f32) * 0.001);
        let Kernel::Int8 { values, scales } = quantize_kernel(&kernel, 2) else { panic!("expected int8") };

        assert_eq!(scales[0], 1500.0 / 127.0);
        assert!((scales[1] - 0.015 / 127.0).abs() < 1e-10, "{scales:?}");
        assert_eq!(values[TAPS - 1], 127);
        assert_eq!(values[2 * TAPS - 1], -127);
        // Rounding moves each weight by at most half its channel's scale.
        let restored = Kernel::Int8 { values, scales: scales.clone() }.dequantize();
        for (index, (original, restored)) in kernel.iter().zip(&restored).enumerate() {
            let bound = scales[index / TAPS] / 2.0 * 1.0001;
            assert!((original - restored).abs() <= bound, "{original} became {restored}");
        }
    }

    #[test]
    fn zero_channel_gets_unit_scale() {
        let Kernel::Int8 { values, scales } = quantize_kernel(&[0.0; TAPS], 1) else { panic!("expected int8") };
        assert_eq!(scales, [1.0]);
        assert!(values.iter().all(|&v| v == 0));
    }

    #[test]
    fn int8_generator_stays_close() {
        let weights = random_weights(small_spec(), 9).unwrap();
        let folded = fold_batch_norm(&weights).unwrap();
        let int8 = folded.quantize(|_| true);
        assert_eq!(int8.int8_layers(), [0, 1, 2]);

        let mut latents = alloc::vec![0.0; 2 * 8];
        fill_latents(2, 0, 8, &mut latents);
        let diff = max_abs_diff(&generate(&folded, &latents, 2).unwrap(), &generate(&int8, &latents, 2).unwrap());
        assert!(diff > 0.0, "max abs difference {diff}");
        assert!(diff < 0.1, "max abs difference {diff}");
    }

    #[test]
    fn validate_rejects_bad_scales() {
        let weights = random_weights(small_spec(), 9).unwrap();
        let mut int8 = fold_batch_norm(&weights).unwrap().quantize(|index| index == 1);
        if let Kernel::Int8 { scales, .. } = &mut int8.layers[1].kernel {
            scales[2] = 0.0;
        }
        assert_eq!(int8.validate(), Err(QuantizedError::Value { layer: 1, tensor: "scales", index: 2 }));
        assert!(generate(&int8, &[0.0; 8], 1).is_err());
    }
}
