//! Scalar kernels of the core: plain loops that write into caller memory.
//!
//! They compute what [`crate::reference`] computes, without allocating, and
//! are the baseline the faster kernels are tested against.

use crate::spec::{Activation, LayerSpec, KERNEL};

/// One layer: transposed convolution, per-channel bias, activation.
///
/// # Shapes
///
/// - `kernel`: `[in_channels, out_channels, 4, 4]`.
/// - `bias`: `[out_channels]`.
/// - `input`: `[in_channels, in_size, in_size]`.
/// - `output`: `[out_channels, out_size, out_size]`, overwritten.
pub(crate) fn layer_forward(spec: &LayerSpec, kernel: &[f32], bias: &[f32], input: &[f32], output: &mut [f32]) {
    let plane = spec.out_size * spec.out_size;

    // Stage 1: start every output channel at its bias.
    for (values, &b) in output.chunks_exact_mut(plane).zip(bias) {
        values.fill(b);
    }

    // Stage 2: scatter each input pixel through the kernel.
    for in_channel in 0..spec.in_channels {
        let source = &input[in_channel * spec.in_size * spec.in_size..][..spec.in_size * spec.in_size];
        for (out_channel, target) in output.chunks_exact_mut(plane).enumerate() {
            let taps = &kernel[(in_channel * spec.out_channels + out_channel) * KERNEL * KERNEL..][..KERNEL * KERNEL];
            scatter_plane(spec, taps, source, target);
        }
    }

    // Stage 3: activation.
    match spec.activation {
        Activation::Relu => output.iter_mut().for_each(|x| *x = x.max(0.0)),
        Activation::Tanh => output.iter_mut().for_each(|x| *x = libm::tanhf(*x)),
    }
}

/// Adds one input plane, weighted by one 4x4 kernel slice, onto one output plane.
fn scatter_plane(spec: &LayerSpec, taps: &[f32], source: &[f32], target: &mut [f32]) {
    let (in_size, out_size) = (spec.in_size, spec.out_size);
    for in_y in 0..in_size {
        for in_x in 0..in_size {
            let value = source[in_y * in_size + in_x];
            for ky in 0..KERNEL {
                let Some(out_y) = output_index(in_y, ky, spec) else { continue };
                for kx in 0..KERNEL {
                    let Some(out_x) = output_index(in_x, kx, spec) else { continue };
                    target[out_y * out_size + out_x] += value * taps[ky * KERNEL + kx];
                }
            }
        }
    }
}

/// Output coordinate `input * stride - padding + offset`, or `None` in the
/// cropped padding.
fn output_index(input: usize, offset: usize, spec: &LayerSpec) -> Option<usize> {
    let position = (input * spec.stride + offset).checked_sub(spec.padding)?;
    (position < spec.out_size).then_some(position)
}
