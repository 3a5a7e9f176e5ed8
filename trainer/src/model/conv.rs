//! Convolutions with gradients that are fast on the CPU.
//!
//! candle 0.11's CPU `conv_transpose2d` is a direct loop, about ten times
//! slower than its im2col `conv2d`, and the backward pass of `conv2d` calls
//! it too. On the CPU these functions therefore build both convolutions from
//! an index gather or scatter and one matrix multiplication, whose gradients
//! candle computes with the same fast operations. Other devices use candle's
//! own kernels.

use candle_core::{Tensor, D};

/// Marks a tap that falls into the zero padding: `index_select` writes 0
/// there and `index_add` skips it.
const OUTSIDE: u32 = u32::MAX;

/// Square 2-D convolution without bias, as PyTorch's `Conv2d`.
///
/// # Shapes
/// `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in, K, K]` →
/// `[N, C_out, (H + 2p - K) / s + 1, (W + 2p - K) / s + 1]`.
pub(super) fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv2d(weight, padding, stride, 1, 1);
    }
    let (batch, in_channels, height, width) = x.dims4()?;
    let (out_channels, _, kernel, _) = weight.dims4()?;
    let out_height = (height + 2 * padding - kernel) / stride + 1;
    let out_width = (width + 2 * padding - kernel) / stride + 1;
    let geometry = Geometry { kernel, stride, padding };
    let taps = geometry.taps(out_height, out_width, height, width);
    let taps = Tensor::from_vec(taps, out_height * out_width * kernel * kernel, x.device())?;

    // im2col: [N, C_in, L·K²] → [N·L, C_in·K²], with L output positions.
    let positions = out_height * out_width;
    let columns = x.reshape((batch, in_channels, height * width))?.index_select(&taps, 2)?;
    let columns = columns
        .reshape((batch, in_channels, positions, kernel * kernel))?
        .permute((0, 2, 1, 3))?
        .reshape((batch * positions, in_channels * kernel * kernel))?;

    let kernel_matrix = weight.reshape((out_channels, in_channels * kernel * kernel))?;
    let output = columns.matmul(&kernel_matrix.t()?)?;
    output.reshape((batch, positions, out_channels))?.transpose(1, 2)?.reshape((
        batch,
        out_channels,
        out_height,
        out_width,
    ))
}

/// Square 2-D transposed convolution without bias, as PyTorch's
/// `ConvTranspose2d` with no output padding.
///
/// # Shapes
/// `x`: `[N, C_in, H, W]`, `weight`: `[C_in, C_out, K, K]` →
/// `[N, C_out, (H - 1)·s - 2p + K, (W - 1)·s - 2p + K]`.
pub(super) fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv_transpose2d(weight, padding, 0, stride, 1);
    }
    let (batch, in_channels, height, width) = x.dims4()?;
    let (_, out_channels, kernel, _) = weight.dims4()?;
    let out_height = (height - 1) * stride + kernel - 2 * padding;
    let out_width = (width - 1) * stride + kernel - 2 * padding;
    let geometry = Geometry { kernel, stride, padding };
    // An input pixel and a tap reach the same output pixel that the matching
    // convolution reads from, so the convolution's index map serves both.
    let taps = geometry.taps(height, width, out_height, out_width);
    let taps = Tensor::from_vec(taps, height * width * kernel * kernel, x.device())?;

    // Every input pixel times the kernel: [N·H·W, C_in] × [C_in, C_out·K²].
    let positions = height * width;
    let pixels =
        x.reshape((batch, in_channels, positions))?.transpose(1, 2)?.reshape((batch * positions, in_channels))?;
    let kernel_matrix = weight.reshape((in_channels, out_channels * kernel * kernel))?;
    let contributions = pixels.matmul(&kernel_matrix)?;

    // col2im: add each contribution into its output pixel.
    let contributions = contributions
        .reshape((batch, positions, out_channels, kernel * kernel))?
        .permute((0, 2, 1, 3))?
        .reshape((batch, out_channels, positions * kernel * kernel))?;
    let zeros = Tensor::zeros((batch, out_channels, out_height * out_width), x.dtype(), x.device())?;
    zeros.index_add(&taps, &contributions, D::Minus1)?.reshape((batch, out_channels, out_height, out_width))
}

/// Kernel size, stride and padding of a square convolution.
struct Geometry {
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    /// For each output position of a convolution over a `height` x `width`
    /// input, and each kernel tap, the flat input index the tap reads, or
    /// [`OUTSIDE`] in the padding. Ordered as `[out_y, out_x, tap_y, tap_x]`.
    fn taps(&self, out_height: usize, out_width: usize, height: usize, width: usize) -> Vec<u32> {
        let mut taps = Vec::with_capacity(out_height * out_width * self.kernel * self.kernel);
        for out_y in 0..out_height {
            for out_x in 0..out_width {
                for tap_y in 0..self.kernel {
                    for tap_x in 0..self.kernel {
                        let y = (out_y * self.stride + tap_y).checked_sub(self.padding).filter(|&y| y < height);
                        let x = (out_x * self.stride + tap_x).checked_sub(self.padding).filter(|&x| x < width);
                        let index = match (y, x) {
                            (Some(y), Some(x)) => (y * width + x) as u32,
                            _ => OUTSIDE,
                        };
                        taps.push(index);
                    }
                }
            }
        }
        taps
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Compares value and gradients with candle's own kernels.
    fn check(
        forward: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        x_shape: (usize, usize, usize, usize),
        w_shape: (usize, usize, usize, usize),
    ) {
        let device = Device::Cpu;
        let x = Var::randn(0f32, 1.0, x_shape, &device).unwrap();
        let w = Var::randn(0f32, 1.0, w_shape, &device).unwrap();
        let fast = forward(x.as_tensor(), w.as_tensor()).unwrap();
        let slow = reference(x.as_tensor(), w.as_tensor()).unwrap();
        assert_eq!(fast.dims(), slow.dims());
        assert!(max_diff(&fast, &slow) < 1e-4, "forward differs by {}", max_diff(&fast, &slow));

        let probe = Tensor::randn(0f32, 1.0, fast.dims(), &device).unwrap();
        let fast_grads = (&fast * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let slow_grads = (&slow * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in [("input", &x), ("weight", &w)] {
            let diff = max_diff(fast_grads.get(var.as_tensor()).unwrap(), slow_grads.get(var.as_tensor()).unwrap());
            assert!(diff < 1e-3, "{name} gradient differs by {diff}");
        }
    }

    #[test]
    fn conv2d_matches_candle() {
        check(|x, w| conv2d(x, w, 2, 1), |x, w| x.conv2d(w, 1, 2, 1, 1), (2, 3, 8, 8), (5, 3, 4, 4));
        check(|x, w| conv2d(x, w, 1, 0), |x, w| x.conv2d(w, 0, 1, 1, 1), (3, 4, 4, 4), (1, 4, 4, 4));
    }

    #[test]
    fn conv_transpose2d_matches_candle() {
        let reference = |p: usize, s: usize| move |x: &Tensor, w: &Tensor| x.conv_transpose2d(w, p, 0, s, 1);
        check(|x, w| conv_transpose2d(x, w, 2, 1), reference(1, 2), (2, 5, 4, 4), (5, 3, 4, 4));
        check(|x, w| conv_transpose2d(x, w, 1, 0), reference(0, 1), (3, 6, 1, 1), (6, 4, 4, 4));
    }
}
