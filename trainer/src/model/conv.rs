//! Convolutions with gradients that are fast on the CPU.
//!
//! candle 0.11's CPU `conv_transpose2d` is a direct loop, about ten times
//! slower than its im2col `conv2d`, and the backward pass of `conv2d` calls
//! it too. On the CPU both convolutions are therefore candle custom
//! operations over the im2col/col2im kernels of [`super::conv_kernels`],
//! whose backward passes are custom operations too. They skip the input
//! gradient when the input tracks no gradient, such as the images fed to
//! the discriminator. Other devices use candle's own kernels.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::conv_kernels::{self, Geometry};

/// Square 2-D convolution without bias, as PyTorch's `Conv2d`.
///
/// # Shapes
/// `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in, K, K]` →
/// `[N, C_out, (H + 2p - K) / s + 1, (W + 2p - K) / s + 1]`.
pub(super) fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv2d(weight, padding, stride, 1, 1);
    }
    let (_, _, height, width) = x.dims4()?;
    let (_, _, kernel, _) = weight.dims4()?;
    let geometry = convolution_geometry(kernel, stride, padding, height, width)?;
    let op = Conv2d { geometry, input_grad: x.track_op(), weight_grad: weight.track_op() };
    x.contiguous()?.apply_op2(&weight.contiguous()?, op)
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
    let (_, _, height, width) = x.dims4()?;
    let (_, _, kernel, _) = weight.dims4()?;
    let out_size = |size: usize| ((size - 1) * stride + kernel).checked_sub(2 * padding).filter(|&s| s > 0);
    let (Some(out_height), Some(out_width)) = (out_size(height), out_size(width)) else {
        bail!("conv_transpose2d: padding {padding} leaves no output for a {height}x{width} input and kernel {kernel}");
    };
    // The convolution that maps the output back onto the input.
    let geometry = convolution_geometry(kernel, stride, padding, out_height, out_width)?;
    let op = ConvTranspose2d { geometry, input_grad: x.track_op(), weight_grad: weight.track_op() };
    x.contiguous()?.apply_op2(&weight.contiguous()?, op)
}

fn convolution_geometry(
    kernel: usize,
    stride: usize,
    padding: usize,
    height: usize,
    width: usize,
) -> candle_core::Result<Geometry> {
    match Geometry::of_convolution(kernel, stride, padding, height, width) {
        Some(geometry) => Ok(geometry),
        None => bail!(
            "convolution: kernel {kernel}, stride {stride}, padding {padding} do not fit a {height}x{width} input"
        ),
    }
}

/// Returns the contiguous f32 values of a CPU tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: expected a contiguous input"),
    }
}

/// `[N, C, H, W]` of a 4-D layout.
fn dims4(layout: &Layout, op: &str) -> candle_core::Result<(usize, usize, usize, usize)> {
    match layout.dims() {
        &[n, c, h, w] => Ok((n, c, h, w)),
        dims => bail!("{op}: expected a 4-D tensor, got shape {dims:?}"),
    }
}

/// Checks that `image`'s channels times `K²` match the weight matrix rows.
fn check_channels(op: &str, channels: usize, weight: &[usize], geometry: &Geometry) -> candle_core::Result<()> {
    let rows: usize = weight[1..].iter().product();
    if channels * geometry.taps() != rows {
        bail!("{op}: {channels} input channels do not fit a weight of shape {weight:?}");
    }
    Ok(())
}

/// [`conv2d`] as a custom operation: `(x, weight) → y`.
struct Conv2d {
    geometry: Geometry,
    input_grad: bool,
    weight_grad: bool,
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, channels, _, _) = dims4(xl, self.name())?;
        let (out_channels, ..) = dims4(wl, self.name())?;
        check_channels(self.name(), channels, wl.dims(), &self.geometry)?;
        let x = contiguous_f32(x, xl, self.name())?;
        let w = contiguous_f32(w, wl, self.name())?;
        let y = conv_kernels::forward(x, w, batch, out_channels, &self.geometry);
        let shape = (batch, out_channels, self.geometry.out_height, self.geometry.out_width);
        Ok((CpuStorage::F32(y), shape.into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_y = grad_y.contiguous()?;
        let geometry = self.geometry;
        let grad_x = if self.input_grad {
            Some(grad_y.apply_op2_no_bwd(weight, &InputGrad { geometry, input_shape: x.shape().clone() })?)
        } else {
            None
        };
        let grad_w = if self.weight_grad {
            Some(x.apply_op2_no_bwd(&grad_y, &WeightGrad { geometry })?.reshape(weight.shape())?)
        } else {
            None
        };
        Ok((grad_x, grad_w))
    }
}

/// [`conv_transpose2d`] as a custom operation: `(x, weight) → y`, the input
/// gradient of the convolution from `y`'s shape to `x`'s.
struct ConvTranspose2d {
    geometry: Geometry,
    input_grad: bool,
    weight_grad: bool,
}

impl CustomOp2 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv-transpose2d-col2im"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, in_channels, height, width) = dims4(xl, self.name())?;
        let (weight_in, out_channels, ..) = dims4(wl, self.name())?;
        let g = &self.geometry;
        if weight_in != in_channels || (height, width) != (g.out_height, g.out_width) {
            bail!("{}: input of shape {:?} does not fit a weight of shape {:?}", self.name(), xl.dims(), wl.dims());
        }
        let x = contiguous_f32(x, xl, self.name())?;
        let w = contiguous_f32(w, wl, self.name())?;
        let y = conv_kernels::input_grad(x, w, batch, in_channels, g);
        Ok((CpuStorage::F32(y), (batch, out_channels, g.in_height, g.in_width).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_y = grad_y.contiguous()?;
        let geometry = self.geometry;
        let grad_x = if self.input_grad { Some(grad_y.apply_op2_no_bwd(weight, &Forward { geometry })?) } else { None };
        // The weight gradient of the convolution from y to x: [C_in, C_out·K²].
        let grad_w = if self.weight_grad {
            Some(grad_y.apply_op2_no_bwd(x, &WeightGrad { geometry })?.reshape(weight.shape())?)
        } else {
            None
        };
        Ok((grad_x, grad_w))
    }
}

/// [`conv_kernels::forward`] without gradient: `(x, weight [M, C, K, K]) → y`.
struct Forward {
    geometry: Geometry,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "conv-forward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, channels, _, _) = dims4(xl, self.name())?;
        let (out_channels, ..) = dims4(wl, self.name())?;
        check_channels(self.name(), channels, wl.dims(), &self.geometry)?;
        let x = contiguous_f32(x, xl, self.name())?;
        let w = contiguous_f32(w, wl, self.name())?;
        let y = conv_kernels::forward(x, w, batch, out_channels, &self.geometry);
        Ok((CpuStorage::F32(y), (batch, out_channels, self.geometry.out_height, self.geometry.out_width).into()))
    }
}

/// [`conv_kernels::input_grad`]: `(dy, weight [M, C, K, K]) → dx` of shape
/// `input_shape`.
struct InputGrad {
    geometry: Geometry,
    input_shape: Shape,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv-input-grad"
    }

    fn cpu_fwd(
        &self,
        dy: &CpuStorage,
        dyl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, out_channels, _, _) = dims4(dyl, self.name())?;
        let dy = contiguous_f32(dy, dyl, self.name())?;
        let w = contiguous_f32(w, wl, self.name())?;
        let dx = conv_kernels::input_grad(dy, w, batch, out_channels, &self.geometry);
        Ok((CpuStorage::F32(dx), self.input_shape.clone()))
    }
}

/// [`conv_kernels::weight_grad`]: `(x, dy) → dW` as a `[M, C·K²]` matrix.
struct WeightGrad {
    geometry: Geometry,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "conv-weight-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        dy: &CpuStorage,
        dyl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, channels, _, _) = dims4(xl, self.name())?;
        let (_, out_channels, _, _) = dims4(dyl, self.name())?;
        let x = contiguous_f32(x, xl, self.name())?;
        let dy = contiguous_f32(dy, dyl, self.name())?;
        let dw = conv_kernels::weight_grad(x, dy, batch, out_channels, &self.geometry);
        Ok((CpuStorage::F32(dw), (out_channels, channels * self.geometry.taps()).into()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    fn random(shape: (usize, usize, usize, usize), rng: &mut ChaCha8Rng) -> Var {
        let len = shape.0 * shape.1 * shape.2 * shape.3;
        let values: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        Var::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// Compares value and gradients with candle's own kernels.
    fn check(
        forward: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        x_shape: (usize, usize, usize, usize),
        w_shape: (usize, usize, usize, usize),
        rng: &mut ChaCha8Rng,
    ) {
        let case = format!("input {x_shape:?}, weight {w_shape:?}");
        let x = random(x_shape, rng);
        let w = random(w_shape, rng);
        let fast = forward(x.as_tensor(), w.as_tensor()).unwrap();
        let slow = reference(x.as_tensor(), w.as_tensor()).unwrap();
        assert_eq!(fast.dims(), slow.dims(), "{case}");
        assert!(max_diff(&fast, &slow) < 1e-4, "{case}: forward differs by {}", max_diff(&fast, &slow));

        let probe = Tensor::randn(0f32, 1.0, fast.dims(), &Device::Cpu).unwrap();
        let fast_grads = (&fast * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let slow_grads = (&slow * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in [("input", &x), ("weight", &w)] {
            let diff = max_diff(fast_grads.get(var.as_tensor()).unwrap(), slow_grads.get(var.as_tensor()).unwrap());
            assert!(diff < 1e-3, "{case}: {name} gradient differs by {diff}");
        }
    }

    /// Random shapes: batch 1 to 3, kernel 1 to 4, stride 1 or 2, padding 0
    /// or 1, inputs of 1x1 to 8x8, in each draw.
    fn random_shape(rng: &mut ChaCha8Rng) -> (usize, usize, usize, usize, usize, usize, usize) {
        let kernel = rng.gen_range(1..=4);
        let padding = rng.gen_range(0..=1usize).min(kernel - 1);
        let stride = rng.gen_range(1..=2);
        let size = rng.gen_range(1..=8usize).max(kernel.saturating_sub(2 * padding));
        (rng.gen_range(1..=3), rng.gen_range(1..=4), rng.gen_range(1..=4), size, kernel, stride, padding)
    }

    #[test]
    fn conv2d_matches_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        check(|x, w| conv2d(x, w, 2, 1), |x, w| x.conv2d(w, 1, 2, 1, 1), (2, 3, 8, 8), (5, 3, 4, 4), &mut rng);
        check(|x, w| conv2d(x, w, 1, 0), |x, w| x.conv2d(w, 0, 1, 1, 1), (3, 4, 4, 4), (1, 4, 4, 4), &mut rng);
        check(|x, w| conv2d(x, w, 2, 1), |x, w| x.conv2d(w, 1, 2, 1, 1), (1, 2, 4, 4), (3, 2, 4, 4), &mut rng);
        for _ in 0..24 {
            let (batch, c_in, c_out, size, kernel, stride, padding) = random_shape(&mut rng);
            check(
                |x, w| conv2d(x, w, stride, padding),
                |x, w| x.conv2d(w, padding, stride, 1, 1),
                (batch, c_in, size, size),
                (c_out, c_in, kernel, kernel),
                &mut rng,
            );
        }
    }

    #[test]
    fn conv_transpose2d_matches_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let reference = |p: usize, s: usize| move |x: &Tensor, w: &Tensor| x.conv_transpose2d(w, p, 0, s, 1);
        check(|x, w| conv_transpose2d(x, w, 2, 1), reference(1, 2), (2, 5, 4, 4), (5, 3, 4, 4), &mut rng);
        check(|x, w| conv_transpose2d(x, w, 1, 0), reference(0, 1), (3, 6, 1, 1), (6, 4, 4, 4), &mut rng);
        check(|x, w| conv_transpose2d(x, w, 1, 0), reference(0, 1), (1, 6, 1, 1), (6, 4, 4, 4), &mut rng);
        for _ in 0..24 {
            let (batch, c_in, c_out, size, kernel, stride, padding) = random_shape(&mut rng);
            if (size - 1) * stride + kernel <= 2 * padding {
                continue;
            }
            check(
                |x, w| conv_transpose2d(x, w, stride, padding),
                reference(padding, stride),
                (batch, c_in, size, size),
                (c_in, c_out, kernel, kernel),
                &mut rng,
            );
        }
    }

    /// Images that track no gradient get none, and the weight gradient is
    /// the same as with a tracked input.
    #[test]
    fn untracked_input_gets_no_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let w = random((4, 3, 4, 4), &mut rng);
        let x = random((2, 3, 8, 8), &mut rng);
        let plain = x.as_tensor().detach();
        let grads = conv2d(&plain, w.as_tensor(), 2, 1).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&plain).is_none());
        let tracked = conv2d(x.as_tensor(), w.as_tensor(), 2, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let diff = max_diff(grads.get(w.as_tensor()).unwrap(), tracked.get(w.as_tensor()).unwrap());
        assert_eq!(diff, 0.0);
    }

    /// A detached weight gets no gradient, and the input's gradient does
    /// not change; for both convolutions.
    #[test]
    fn detached_weight_gets_no_gradient() {
        type Conv = fn(&Tensor, &Tensor, usize, usize) -> candle_core::Result<Tensor>;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let w = random((4, 3, 4, 4), &mut rng);
        let frozen = w.as_tensor().detach();
        let x = random((2, 3, 8, 8), &mut rng);
        let x_transposed = random((2, 4, 3, 3), &mut rng);
        for (op, x) in [(conv2d as Conv, &x), (conv_transpose2d as Conv, &x_transposed)] {
            let grads = |weight: &Tensor| {
                let y = op(x.as_tensor(), weight, 2, 1).unwrap();
                y.sum_all().unwrap().backward().unwrap()
            };
            let (both, only_x) = (grads(w.as_tensor()), grads(&frozen));
            assert!(only_x.get(&frozen).is_none());
            assert!(both.get(w.as_tensor()).is_some());
            assert_eq!(max_diff(only_x.get(x.as_tensor()).unwrap(), both.get(x.as_tensor()).unwrap()), 0.0);
        }
    }
}
