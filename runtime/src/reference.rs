//! A naive scalar forward pass of the generator, the test oracle.
//!
//! Every other backend (tract, and any hand-written kernel) is checked against
//! this module, so it favours being obviously correct over being fast. The
//! transposed convolution is the textbook scatter loop, BatchNorm uses its
//! running statistics as in PyTorch's `eval()` mode, and all arithmetic is
//! plain `f32`. It runs in `no_std` with `alloc`.
//!
//! One tutorial-size face (64x64) costs about 10^8 multiply-adds here, so use
//! it to check results, not to serve them.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::latent::SplitMix64;
use crate::spec::{Activation, GeneratorSpec, LayerSpec, SpecError, KERNEL};
use crate::weights::{BatchNormWeights, GeneratorWeights, LayerWeights, WeightsError};

/// Inputs that [`generate`] cannot run.
#[derive(Clone, Debug, PartialEq)]
pub enum ReferenceError {
    /// The weights do not fit their spec.
    Weights(WeightsError),
    /// `latents.len()` is not `batch * nz`.
    LatentLength {
        /// Values needed: `batch * nz`.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::Weights(err) => write!(f, "invalid generator weights: {err}"),
            ReferenceError::LatentLength { expected, found } => write!(
                f,
                "expected {expected} latent values (batch * nz), found {found}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReferenceError {}

/// Runs the generator on `batch` latents.
///
/// # Shapes
///
/// - `latents`: `[batch, nz]` (the same memory as `[batch, nz, 1, 1]`).
/// - returns: `[batch, nc, image_size, image_size]`, row-major (NCHW), values
///   in `[-1, 1]`.
///
/// # Errors
///
/// [`ReferenceError::Weights`] when `weights` fails
/// [`GeneratorWeights::validate`], and [`ReferenceError::LatentLength`] when
/// `latents.len() != batch * nz`.
pub fn generate(
    weights: &GeneratorWeights,
    latents: &[f32],
    batch: usize,
) -> Result<Vec<f32>, ReferenceError> {
    weights.validate().map_err(ReferenceError::Weights)?;
    let expected = batch * weights.spec.nz;
    if latents.len() != expected {
        return Err(ReferenceError::LatentLength {
            expected,
            found: latents.len(),
        });
    }

    let specs = weights.spec.layers();
    let last = specs.last().map_or(0, |layer| {
        layer.out_channels * layer.out_size * layer.out_size
    });
    let mut output = Vec::with_capacity(batch * last);
    for latent in latents.chunks_exact(weights.spec.nz) {
        output.extend(generate_one(&specs, &weights.layers, latent));
    }
    Ok(output)
}

/// Runs the generator on `batch` latents and returns every layer's output
/// after its activation, for per-layer comparisons.
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
    weights: &GeneratorWeights,
    latents: &[f32],
    batch: usize,
) -> Result<Vec<Vec<f32>>, ReferenceError> {
    weights.validate().map_err(ReferenceError::Weights)?;
    let expected = batch * weights.spec.nz;
    if latents.len() != expected {
        return Err(ReferenceError::LatentLength { expected, found: latents.len() });
    }

    let specs = weights.spec.layers();
    let mut outputs: Vec<Vec<f32>> = specs.iter().map(|_| Vec::new()).collect();
    for latent in latents.chunks_exact(weights.spec.nz) {
        for (output, layer) in outputs.iter_mut().zip(generate_one_layers(&specs, &weights.layers, latent)) {
            output.extend(layer);
        }
    }
    Ok(outputs)
}

/// Seeded random weights whose activations stay near unit scale, so that
/// outputs spread over `[-1, 1]` instead of collapsing to 0.
///
/// They exercise every tensor when comparing a backend against [`generate`].
/// Kernels are uniform with variance `1 / (in_channels * taps)`, where `taps`
/// is 1 for the first layer and 4 for the stride-2 ones. BatchNorm scales,
/// shifts and running statistics are all non-trivial, and `eps` is PyTorch's
/// default 1e-5. They are not a trained model.
///
/// # Errors
///
/// The [`SpecError`] of [`GeneratorSpec::validate`].
pub fn random_weights(spec: GeneratorSpec, seed: u64) -> Result<GeneratorWeights, SpecError> {
    spec.validate()?;
    let mut rng = SplitMix64::for_index(seed, 0);
    let mut uniform = |low: f32, high: f32| low + (high - low) * rng.next_f64() as f32;

    let layers = spec
        .layers()
        .iter()
        .map(|layer| {
            let taps = if layer.stride == 1 { 1.0 } else { 4.0 };
            // A uniform distribution on [-a, a] has variance a^2 / 3.
            let bound = libm::sqrtf(3.0 / (layer.in_channels as f32 * taps));
            let weight = (0..layer.weight_len())
                .map(|_| uniform(-bound, bound))
                .collect();

            let channels = layer.out_channels;
            let batch_norm = layer.batch_norm.then(|| BatchNormWeights {
                gamma: (0..channels).map(|_| uniform(0.5, 1.5)).collect(),
                beta: (0..channels).map(|_| uniform(-0.2, 0.2)).collect(),
                running_mean: (0..channels).map(|_| uniform(-0.1, 0.1)).collect(),
                running_var: (0..channels).map(|_| uniform(0.5, 1.5)).collect(),
                eps: 1e-5,
            });
            LayerWeights { weight, batch_norm }
        })
        .collect();
    Ok(GeneratorWeights { spec, layers })
}

/// Runs every layer on one latent; `weights` must already be validated.
fn generate_one(specs: &[LayerSpec], layers: &[LayerWeights], latent: &[f32]) -> Vec<f32> {
    generate_one_layers(specs, layers, latent).pop().unwrap_or_default()
}

/// Runs every layer on one latent and returns each layer's output after its
/// activation; `weights` must already be validated.
fn generate_one_layers(specs: &[LayerSpec], layers: &[LayerWeights], latent: &[f32]) -> Vec<Vec<f32>> {
    let mut outputs = Vec::with_capacity(specs.len());
    let mut activations = latent.to_vec();
    for (spec, layer) in specs.iter().zip(layers) {
        activations = conv_transpose(spec, &layer.weight, &activations);

        if let Some(batch_norm) = &layer.batch_norm {
            batch_norm_inference(spec, batch_norm, &mut activations);
        }

        apply_activation(spec.activation, &mut activations);
        outputs.push(activations.clone());
    }
    outputs
}

/// Applies `activation` to every value in place.
pub(crate) fn apply_activation(activation: Activation, activations: &mut [f32]) {
    match activation {
        Activation::Relu => activations.iter_mut().for_each(|x| *x = x.max(0.0)),
        Activation::Tanh => activations.iter_mut().for_each(|x| *x = libm::tanhf(*x)),
    }
}

/// Transposed 2D convolution without bias, as PyTorch's `ConvTranspose2d`
/// defines it: every input pixel scatters its value, weighted by the kernel,
/// onto the output at `input_position * stride - padding + kernel_offset`.
///
/// # Shapes
///
/// - `input`: `[in_channels, in_size, in_size]`.
/// - `weight`: `[in_channels, out_channels, KERNEL, KERNEL]`.
/// - returns: `[out_channels, out_size, out_size]`.
pub(crate) fn conv_transpose(spec: &LayerSpec, weight: &[f32], input: &[f32]) -> Vec<f32> {
    let (in_size, out_size) = (spec.in_size, spec.out_size);
    let mut output = vec![0.0f32; spec.out_channels * out_size * out_size];

    for in_channel in 0..spec.in_channels {
        for out_channel in 0..spec.out_channels {
            let kernel_start = (in_channel * spec.out_channels + out_channel) * KERNEL * KERNEL;
            let kernel = &weight[kernel_start..kernel_start + KERNEL * KERNEL];
            let plane = &mut output[out_channel * out_size * out_size..][..out_size * out_size];

            for in_y in 0..in_size {
                for in_x in 0..in_size {
                    let value = input[(in_channel * in_size + in_y) * in_size + in_x];
                    for ky in 0..KERNEL {
                        let Some(out_y) = output_index(in_y, ky, spec, out_size) else {
                            continue;
                        };
                        for kx in 0..KERNEL {
                            let Some(out_x) = output_index(in_x, kx, spec, out_size) else {
                                continue;
                            };
                            plane[out_y * out_size + out_x] += value * kernel[ky * KERNEL + kx];
                        }
                    }
                }
            }
        }
    }
    output
}

/// Output coordinate `input * stride - padding + kernel_offset`, or `None`
/// where it falls in the cropped padding.
fn output_index(
    input: usize,
    kernel_offset: usize,
    spec: &LayerSpec,
    out_size: usize,
) -> Option<usize> {
    let position = (input * spec.stride + kernel_offset).checked_sub(spec.padding)?;
    (position < out_size).then_some(position)
}

/// BatchNorm with running statistics:
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, per channel.
///
/// # Shapes
///
/// - `activations`: `[out_channels, out_size, out_size]`, updated in place.
fn batch_norm_inference(spec: &LayerSpec, weights: &BatchNormWeights, activations: &mut [f32]) {
    let plane = spec.out_size * spec.out_size;
    for (channel, values) in activations.chunks_exact_mut(plane).enumerate() {
        let inv_std = 1.0 / libm::sqrtf(weights.running_var[channel] + weights.eps);
        let (mean, gamma, beta) = (
            weights.running_mean[channel],
            weights.gamma[channel],
            weights.beta[channel],
        );
        for x in values {
            *x = (*x - mean) * inv_std * gamma + beta;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-channel, 2-layer generator whose every weight is `value`.
    fn constant_weights(spec: GeneratorSpec, value: f32) -> GeneratorWeights {
        let layers = spec
            .layers()
            .iter()
            .map(|layer| LayerWeights {
                weight: vec![value; layer.weight_len()],
                batch_norm: layer.batch_norm.then(|| BatchNormWeights {
                    gamma: vec![1.0; layer.out_channels],
                    beta: vec![0.0; layer.out_channels],
                    running_mean: vec![0.0; layer.out_channels],
                    running_var: vec![1.0; layer.out_channels],
                    eps: 0.0,
                }),
            })
            .collect();
        GeneratorWeights { spec, layers }
    }

    #[test]
    fn first_layer_projects_latent_to_kernel() {
        // Stride 1, padding 0 on a 1x1 input: the output is the kernel times the input.
        let spec = LayerSpec {
            in_channels: 1,
            out_channels: 1,
            stride: 1,
            padding: 0,
            in_size: 1,
            out_size: 4,
            batch_norm: false,
            activation: Activation::Relu,
        };
        let weight: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let output = conv_transpose(&spec, &weight, &[2.0]);
        let expected: Vec<f32> = (0..16).map(|v| 2.0 * v as f32).collect();
        assert_eq!(output, expected);
    }

    #[test]
    fn stride_two_counts_overlapping_taps() {
        // Kernel 4, stride 2, padding 1 on a 2x2 input of ones with a kernel of
        // ones: each output pixel counts the taps that reach it. Along one
        // axis, outputs 0 and 3 are reached once and outputs 1 and 2 twice.
        let spec = LayerSpec {
            in_channels: 1,
            out_channels: 1,
            stride: 2,
            padding: 1,
            in_size: 2,
            out_size: 4,
            batch_norm: false,
            activation: Activation::Relu,
        };
        let output = conv_transpose(&spec, &[1.0; 16], &[1.0; 4]);
        let per_axis = [1.0, 2.0, 2.0, 1.0];
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(
                    output[y * 4 + x],
                    per_axis[y] * per_axis[x],
                    "pixel ({y}, {x})"
                );
            }
        }
    }

    #[test]
    fn batch_norm_uses_running_statistics() {
        let spec = LayerSpec {
            in_channels: 1,
            out_channels: 2,
            stride: 1,
            padding: 0,
            in_size: 1,
            out_size: 1,
            batch_norm: true,
            activation: Activation::Relu,
        };
        let weights = BatchNormWeights {
            gamma: vec![2.0, 0.5],
            beta: vec![1.0, -1.0],
            running_mean: vec![3.0, 0.0],
            running_var: vec![4.0, 16.0],
            eps: 0.0,
        };
        let mut values = [5.0, 8.0];
        batch_norm_inference(&spec, &weights, &mut values);
        assert_eq!(
            values,
            [(5.0 - 3.0) / 2.0 * 2.0 + 1.0, 8.0 / 4.0 * 0.5 - 1.0]
        );
    }

    #[test]
    fn output_is_nchw_and_bounded() {
        let spec = GeneratorSpec {
            nz: 2,
            ngf: 2,
            nc: 3,
            image_size: 8,
        };
        let weights = constant_weights(spec, 0.1);
        let output = generate(&weights, &[1.0, -1.0, 0.5, 0.5], 2).unwrap();
        assert_eq!(output.len(), 2 * 3 * 8 * 8);
        assert!(output.iter().all(|v| (-1.0..=1.0).contains(v)));
        // The first latent sums to zero, so every pre-activation is zero.
        assert!(output[..3 * 64].iter().all(|&v| v == 0.0));
        assert!(output[3 * 64..].iter().any(|&v| v > 0.0));
    }

    #[test]
    fn random_weights_fit_spec_and_spread_outputs() {
        let spec = GeneratorSpec {
            nz: 16,
            ngf: 8,
            nc: 3,
            image_size: 16,
        };
        let weights = random_weights(spec, 1).unwrap();
        assert_eq!(weights.validate(), Ok(()));
        assert_eq!(weights, random_weights(spec, 1).unwrap());
        assert_ne!(weights, random_weights(spec, 2).unwrap());

        let mut latents = vec![0.0f32; 16];
        crate::latent::fill_latent(3, 0, &mut latents);
        let output = generate(&weights, &latents, 1).unwrap();
        let spread = output.iter().fold(0.0f32, |max, v| max.max(v.abs()));
        assert!(spread > 0.3, "outputs collapsed to within {spread} of 0");
    }

    #[test]
    fn random_weights_reject_invalid_spec() {
        let spec = GeneratorSpec {
            image_size: 12,
            ..Default::default()
        };
        assert_eq!(
            random_weights(spec, 0).unwrap_err(),
            SpecError::ImageSize(12)
        );
    }

    #[test]
    fn wrong_latent_length_is_rejected() {
        let spec = GeneratorSpec {
            nz: 2,
            ngf: 2,
            nc: 3,
            image_size: 8,
        };
        let weights = constant_weights(spec, 0.1);
        let err = generate(&weights, &[1.0; 3], 2).unwrap_err();
        assert_eq!(
            err,
            ReferenceError::LatentLength {
                expected: 4,
                found: 3
            }
        );
    }

    #[test]
    fn invalid_weights_are_rejected() {
        let spec = GeneratorSpec {
            nz: 2,
            ngf: 2,
            nc: 3,
            image_size: 8,
        };
        let mut weights = constant_weights(spec, 0.1);
        weights.layers.pop();
        let err = generate(&weights, &[1.0; 2], 1).unwrap_err();
        assert!(matches!(
            err,
            ReferenceError::Weights(WeightsError::LayerCount { .. })
        ));
    }
}
