//! CPU kernels of a square 2-D convolution without bias: im2col and col2im
//! around one matrix multiplication per image, with the `gemm` crate that
//! candle's own CPU matmul uses.
//!
//! Three kernels cover both convolutions and their gradients. For a
//! convolution that maps an input `x` of `C` channels to an output `y` of `M`
//! channels with the weight matrix `W` (`[M, C·K²]`):
//!
//! - [`forward`]: `y = W · im2col(x)`;
//! - [`input_grad`]: `dx = col2im(Wᵀ · dy)`;
//! - [`weight_grad`]: `dW = Σₙ dyₙ · im2col(xₙ)ᵀ`.
//!
//! A transposed convolution is the input gradient of the convolution that
//! runs the other way, so it uses the same three kernels with the roles of
//! the two images swapped.
//!
//! Images are independent, so the kernels split the batch over the rayon
//! thread pool and run each image's matrix multiplication on one thread.
//! The weight gradient sums per-thread partial sums in a fixed order, which
//! keeps results deterministic for a given thread count. When every image
//! has a single output position (`L = 1`), the whole batch forms one matrix
//! multiplication instead.

use gemm::Parallelism;
use rayon::prelude::*;

/// Kernel size, stride, padding and the two spatial sizes of a convolution
/// that maps an `in_height` x `in_width` image to `out_height` x `out_width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    /// Side of the square kernel.
    pub kernel: usize,
    /// Step between output positions, in input pixels.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
    /// Output height: `(in_height + 2·padding - kernel) / stride + 1`.
    pub out_height: usize,
    /// Output width.
    pub out_width: usize,
}

impl Geometry {
    /// The geometry of a convolution over an `in_height` x `in_width` input,
    /// or `None` when the kernel does not fit into the padded input.
    pub fn of_convolution(
        kernel: usize,
        stride: usize,
        padding: usize,
        in_height: usize,
        in_width: usize,
    ) -> Option<Self> {
        if kernel == 0 || stride == 0 {
            return None;
        }
        let out = |size: usize| (size + 2 * padding).checked_sub(kernel).map(|span| span / stride + 1);
        Some(Self {
            kernel,
            stride,
            padding,
            in_height,
            in_width,
            out_height: out(in_height)?,
            out_width: out(in_width)?,
        })
    }

    /// Input pixels per channel.
    pub fn in_plane(&self) -> usize {
        self.in_height * self.in_width
    }

    /// Output positions `L` per image.
    pub fn out_plane(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Taps per channel, `K²`.
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// The output columns `ox` whose tap `tap_x` reads an input pixel rather
    /// than padding, as a half-open range.
    fn valid_columns(&self, tap_x: usize) -> (usize, usize) {
        valid_range(tap_x, self.stride, self.padding, self.in_width, self.out_width)
    }
}

/// The output indices `o` with `0 <= o·stride + tap - padding < size`.
fn valid_range(tap: usize, stride: usize, padding: usize, size: usize, out_size: usize) -> (usize, usize) {
    let first = padding.saturating_sub(tap).div_ceil(stride);
    let end = if size + padding > tap { (size + padding - tap).div_ceil(stride) } else { 0 };
    (first.min(out_size), end.min(out_size).max(first.min(out_size)))
}

/// Writes the columns of one image: `cols[(c·K + ty)·K + tx, oy·W_out + ox]`
/// is the input pixel that tap `(ty, tx)` of channel `c` reads for output
/// position `(oy, ox)`, or 0 in the padding.
///
/// # Shapes
/// `image`: `[C, H_in, W_in]` → `cols`: `[C·K², L]`.
pub(super) fn im2col(image: &[f32], geometry: &Geometry, cols: &mut [f32]) {
    let g = geometry;
    let plane = g.out_plane();
    for (row_index, row) in cols.chunks_exact_mut(plane).enumerate() {
        let channel = row_index / g.taps();
        let (tap_y, tap_x) = ((row_index / g.kernel) % g.kernel, row_index % g.kernel);
        let input = &image[channel * g.in_plane()..(channel + 1) * g.in_plane()];
        let (first, end) = g.valid_columns(tap_x);
        for (oy, out_row) in row.chunks_exact_mut(g.out_width).enumerate() {
            let Some(iy) = (oy * g.stride + tap_y).checked_sub(g.padding).filter(|&iy| iy < g.in_height) else {
                out_row.fill(0.0);
                continue;
            };
            if first >= end {
                out_row.fill(0.0);
                continue;
            }
            let input_row = &input[iy * g.in_width..(iy + 1) * g.in_width];
            out_row[..first].fill(0.0);
            out_row[end..].fill(0.0);
            let start = first * g.stride + tap_x - g.padding;
            if g.stride == 1 {
                out_row[first..end].copy_from_slice(&input_row[start..start + end - first]);
            } else {
                for (out, ox) in out_row[first..end].iter_mut().zip(0..) {
                    *out = input_row[start + ox * g.stride];
                }
            }
        }
    }
}

/// Adds every column entry back into the input pixel it was read from: the
/// adjoint of [`im2col`]. `image` must start zeroed or hold values to add to.
///
/// # Shapes
/// `cols`: `[C·K², L]` → `image`: `[C, H_in, W_in]`.
pub(super) fn col2im(cols: &[f32], geometry: &Geometry, image: &mut [f32]) {
    let g = geometry;
    let plane = g.out_plane();
    for (channel, input) in image.chunks_exact_mut(g.in_plane()).enumerate() {
        let rows = &cols[channel * g.taps() * plane..(channel + 1) * g.taps() * plane];
        for (tap, row) in rows.chunks_exact(plane).enumerate() {
            let (tap_y, tap_x) = (tap / g.kernel, tap % g.kernel);
            let (first, end) = g.valid_columns(tap_x);
            if first >= end {
                continue;
            }
            for (oy, col_row) in row.chunks_exact(g.out_width).enumerate() {
                let Some(iy) = (oy * g.stride + tap_y).checked_sub(g.padding).filter(|&iy| iy < g.in_height) else {
                    continue;
                };
                let input_row = &mut input[iy * g.in_width..(iy + 1) * g.in_width];
                let start = first * g.stride + tap_x - g.padding;
                for (&value, ox) in col_row[first..end].iter().zip(0..) {
                    input_row[start + ox * g.stride] += value;
                }
            }
        }
    }
}

/// A row-major or transposed view of a matrix for [`matmul`].
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    /// Distance between consecutive columns.
    col_stride: usize,
    /// Distance between consecutive rows.
    row_stride: usize,
}

impl<'a> Operand<'a> {
    /// A `[rows, cols]` row-major matrix.
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, col_stride: 1, row_stride: cols }
    }

    /// The transpose of a `[cols, rows]` row-major matrix.
    fn transposed(data: &'a [f32], rows: usize) -> Self {
        Self { data, col_stride: rows, row_stride: 1 }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` with `accumulate`, for a
/// row-major `[m, n]` destination and a shared dimension `k`.
fn matmul(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    lhs: Operand<'_>,
    rhs: Operand<'_>,
    accumulate: bool,
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n, "matmul destination too short");
    let last = |op: &Operand<'_>, rows: usize, cols: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * op.row_stride + (cols - 1) * op.col_stride
        }
    };
    assert!(k == 0 || last(&lhs, m, k) < lhs.data.len(), "matmul lhs too short");
    assert!(k == 0 || last(&rhs, k, n) < rhs.data.len(), "matmul rhs too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the asserts above keep every element the strides address
    // inside its slice, and `dst` is borrowed mutably, so nothing aliases it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// How a kernel spends the thread pool on `batch` images: images in parallel
/// with single-threaded matrix products, or images in turn with a parallel
/// product when there are fewer images than threads.
fn plan(batch: usize) -> (bool, Parallelism) {
    let threads = rayon::current_num_threads();
    if threads <= 1 {
        (false, Parallelism::None)
    } else if batch >= threads {
        (true, Parallelism::None)
    } else {
        (false, Parallelism::Rayon(threads))
    }
}

/// Runs `job(image index, output chunk)` over `chunk`-sized pieces of `out`,
/// in parallel when `parallel`.
fn for_each_image(out: &mut [f32], chunk: usize, parallel: bool, job: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if chunk == 0 {
        return;
    }
    if parallel {
        out.par_chunks_exact_mut(chunk).enumerate().for_each(|(index, piece)| job(index, piece));
    } else {
        out.chunks_exact_mut(chunk).enumerate().for_each(|(index, piece)| job(index, piece));
    }
}

/// Convolution: `y[n] = W · im2col(x[n])`.
///
/// # Shapes
/// `x`: `[N, C, H_in, W_in]`, `weight`: `[M, C·K²]` → `[N, M, H_out, W_out]`.
pub(super) fn forward(x: &[f32], weight: &[f32], batch: usize, out_channels: usize, geometry: &Geometry) -> Vec<f32> {
    let g = geometry;
    let in_image = x.len() / batch.max(1);
    let rows = weight.len() / out_channels.max(1);
    let plane = g.out_plane();
    let mut y = vec![0f32; batch * out_channels * plane];
    let (parallel, parallelism) = plan(batch);

    if plane == 1 {
        // One position per image: [N, C·K²] · Wᵀ = [N, M] in a single product.
        let cols = batch_columns(x, batch, g, parallel);
        let lhs = Operand::rows(&cols, rows);
        let rhs = Operand::transposed(weight, rows);
        matmul(&mut y, (batch, out_channels, rows), lhs, rhs, false, plan(1).1);
        return y;
    }

    for_each_image(&mut y, out_channels * plane, parallel, |n, out| {
        let mut cols = vec![0f32; rows * plane];
        im2col(&x[n * in_image..(n + 1) * in_image], g, &mut cols);
        let lhs = Operand::rows(weight, rows);
        matmul(out, (out_channels, plane, rows), lhs, Operand::rows(&cols, plane), false, parallelism);
    });
    y
}

/// Input gradient of a convolution: `dx[n] = col2im(Wᵀ · dy[n])`.
///
/// # Shapes
/// `grad_y`: `[N, M, H_out, W_out]`, `weight`: `[M, C·K²]` → `[N, C, H_in, W_in]`.
pub(super) fn input_grad(
    grad_y: &[f32],
    weight: &[f32],
    batch: usize,
    out_channels: usize,
    geometry: &Geometry,
) -> Vec<f32> {
    let g = geometry;
    let rows = weight.len() / out_channels.max(1);
    let channels = rows / g.taps();
    let plane = g.out_plane();
    let in_image = channels * g.in_plane();
    let mut x = vec![0f32; batch * in_image];
    let (parallel, parallelism) = plan(batch);

    if plane == 1 {
        // One position per image: dy [N, M] · W [M, C·K²] in a single product.
        let mut cols = vec![0f32; batch * rows];
        let lhs = Operand::rows(grad_y, out_channels);
        matmul(&mut cols, (batch, rows, out_channels), lhs, Operand::rows(weight, rows), false, plan(1).1);
        for_each_image(&mut x, in_image, parallel, |n, image| col2im(&cols[n * rows..(n + 1) * rows], g, image));
        return x;
    }

    for_each_image(&mut x, in_image, parallel, |n, image| {
        let mut cols = vec![0f32; rows * plane];
        let dy = Operand::rows(&grad_y[n * out_channels * plane..(n + 1) * out_channels * plane], plane);
        matmul(&mut cols, (rows, plane, out_channels), Operand::transposed(weight, rows), dy, false, parallelism);
        col2im(&cols, g, image);
    });
    x
}

/// Weight gradient of a convolution: `dW = Σₙ dy[n] · im2col(x[n])ᵀ`.
///
/// # Shapes
/// `x`: `[N, C, H_in, W_in]`, `grad_y`: `[N, M, H_out, W_out]` → `[M, C·K²]`.
pub(super) fn weight_grad(
    x: &[f32],
    grad_y: &[f32],
    batch: usize,
    out_channels: usize,
    geometry: &Geometry,
) -> Vec<f32> {
    let g = geometry;
    let in_image = x.len() / batch.max(1);
    let rows = in_image / g.in_plane() * g.taps();
    let plane = g.out_plane();
    let mut grad_w = vec![0f32; out_channels * rows];
    if batch == 0 {
        return grad_w;
    }
    let (parallel, parallelism) = plan(batch);

    if plane == 1 {
        // One position per image: dyᵀ [M, N] · cols [N, C·K²].
        let cols = batch_columns(x, batch, g, parallel);
        let lhs = Operand::transposed(grad_y, out_channels);
        matmul(&mut grad_w, (out_channels, rows, batch), lhs, Operand::rows(&cols, rows), false, plan(1).1);
        return grad_w;
    }

    // Contiguous groups of images, one partial sum each, added in order.
    let groups = if parallel { rayon::current_num_threads().min(batch) } else { 1 };
    let per_group = batch.div_ceil(groups);
    let partial = |group: usize| -> Vec<f32> {
        let mut sum = vec![0f32; out_channels * rows];
        let mut cols = vec![0f32; rows * plane];
        for n in group * per_group..((group + 1) * per_group).min(batch) {
            im2col(&x[n * in_image..(n + 1) * in_image], g, &mut cols);
            let dy = Operand::rows(&grad_y[n * out_channels * plane..(n + 1) * out_channels * plane], plane);
            let accumulate = n > group * per_group;
            matmul(
                &mut sum,
                (out_channels, rows, plane),
                dy,
                Operand::transposed(&cols, plane),
                accumulate,
                parallelism,
            );
        }
        sum
    };
    let sums: Vec<Vec<f32>> =
        if parallel { (0..groups).into_par_iter().map(partial).collect() } else { (0..groups).map(partial).collect() };
    for (index, sum) in sums.into_iter().enumerate() {
        if index == 0 {
            grad_w = sum;
        } else {
            grad_w.iter_mut().zip(&sum).for_each(|(total, value)| *total += value);
        }
    }
    grad_w
}

/// The columns of every image of a batch with one output position each:
/// row `n` of the `[N, C·K²]` result is image `n`'s `[C·K², 1]` columns.
fn batch_columns(x: &[f32], batch: usize, geometry: &Geometry, parallel: bool) -> Vec<f32> {
    let in_image = x.len() / batch.max(1);
    let rows = in_image / geometry.in_plane() * geometry.taps();
    let mut cols = vec![0f32; batch * rows];
    for_each_image(&mut cols, rows, parallel, |n, row| im2col(&x[n * in_image..(n + 1) * in_image], geometry, row));
    cols
}

#[cfg(test)]
pub(super) mod reference {
    //! Direct loops over every output pixel and tap, the definition the fast
    //! kernels are tested against.

    use super::Geometry;

    /// The input pixel index that tap `(ty, tx)` reads for output `(oy, ox)`.
    fn source(g: &Geometry, oy: usize, ox: usize, ty: usize, tx: usize) -> Option<usize> {
        let iy = (oy * g.stride + ty).checked_sub(g.padding).filter(|&iy| iy < g.in_height)?;
        let ix = (ox * g.stride + tx).checked_sub(g.padding).filter(|&ix| ix < g.in_width)?;
        Some(iy * g.in_width + ix)
    }

    /// `y[n, m, oy, ox] = Σ W[m, c, ty, tx] · x[n, c, iy, ix]`, in f64.
    pub fn forward(x: &[f32], w: &[f32], batch: usize, channels: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
        let k = g.kernel;
        let mut y = vec![0f32; batch * out_channels * g.out_plane()];
        for n in 0..batch {
            for m in 0..out_channels {
                for oy in 0..g.out_height {
                    for ox in 0..g.out_width {
                        let mut sum = 0f64;
                        for c in 0..channels {
                            for ty in 0..k {
                                for tx in 0..k {
                                    if let Some(i) = source(g, oy, ox, ty, tx) {
                                        let weight = w[((m * channels + c) * k + ty) * k + tx];
                                        sum += f64::from(weight) * f64::from(x[(n * channels + c) * g.in_plane() + i]);
                                    }
                                }
                            }
                        }
                        y[((n * out_channels + m) * g.out_height + oy) * g.out_width + ox] = sum as f32;
                    }
                }
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Random cases per randomised test.
    const CASES: u64 = 64;

    fn values(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
    }

    fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, case: &str) {
        assert_eq!(actual.len(), expected.len(), "{case}");
        for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= tolerance * (1.0 + e.abs()), "{case}: {index}: {a} vs {e}");
        }
    }

    /// A random convolution: geometry, batch, input and output channels.
    /// Kernel 1 to 4, stride 1 or 2, padding below the kernel, inputs from
    /// 1x1 to 9x9, batches of 1 to 3.
    fn random_case(rng: &mut ChaCha8Rng) -> (Geometry, usize, usize, usize) {
        loop {
            let kernel = rng.gen_range(1..=4);
            let padding = rng.gen_range(0..kernel.min(3));
            let (h, w) = (rng.gen_range(1..=9), rng.gen_range(1..=9));
            if let Some(g) = Geometry::of_convolution(kernel, rng.gen_range(1..=2), padding, h, w) {
                return (g, rng.gen_range(1..=3), rng.gen_range(1..=4), rng.gen_range(1..=5));
            }
        }
    }

    /// The fast forward pass equals the direct loops.
    #[test]
    fn forward_matches_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..CASES {
            let (g, batch, channels, out_channels) = random_case(&mut rng);
            let x = values(batch * channels * g.in_plane(), &mut rng);
            let w = values(out_channels * channels * g.taps(), &mut rng);
            let fast = forward(&x, &w, batch, out_channels, &g);
            let slow = reference::forward(&x, &w, batch, channels, out_channels, &g);
            assert_close(&fast, &slow, 1e-5, &format!("{g:?} batch {batch} {channels}->{out_channels}"));
        }
    }

    /// `<dy, conv(x)> = <input_grad(dy), x> = <weight_grad(x, dy), W>`: the
    /// gradients are the adjoints of the forward pass.
    #[test]
    fn gradients_are_adjoints() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..CASES {
            let (g, batch, channels, out_channels) = random_case(&mut rng);
            let x = values(batch * channels * g.in_plane(), &mut rng);
            let w = values(out_channels * channels * g.taps(), &mut rng);
            let dy = values(batch * out_channels * g.out_plane(), &mut rng);
            let expected = dot(&reference::forward(&x, &w, batch, channels, out_channels, &g), &dy);
            let dx = input_grad(&dy, &w, batch, out_channels, &g);
            let dw = weight_grad(&x, &dy, batch, out_channels, &g);
            let case = format!("{g:?} batch {batch} {channels}->{out_channels}");
            assert!((dot(&dx, &x) - expected).abs() < 1e-4 * (1.0 + expected.abs()), "input gradient, {case}");
            assert!((dot(&dw, &w) - expected).abs() < 1e-4 * (1.0 + expected.abs()), "weight gradient, {case}");
        }
    }

    /// col2im is the adjoint of im2col.
    #[test]
    fn col2im_is_adjoint_of_im2col() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..CASES {
            let (g, _, channels, _) = random_case(&mut rng);
            let image = values(channels * g.in_plane(), &mut rng);
            let other = values(channels * g.taps() * g.out_plane(), &mut rng);
            let mut cols = vec![0f32; other.len()];
            im2col(&image, &g, &mut cols);
            let mut back = vec![0f32; image.len()];
            col2im(&other, &g, &mut back);
            assert!((dot(&cols, &other) - dot(&image, &back)).abs() < 1e-4, "{g:?}");
        }
    }

    #[test]
    fn valid_range_excludes_padding() {
        // Width 4, kernel 4, stride 2, padding 1: output columns 0 and 1.
        assert_eq!(valid_range(0, 2, 1, 4, 2), (1, 2));
        assert_eq!(valid_range(1, 2, 1, 4, 2), (0, 2));
        assert_eq!(valid_range(3, 2, 1, 4, 2), (0, 1));
        // Padding 2 with a 1-pixel input: only tap 2 lands inside.
        assert_eq!(valid_range(0, 1, 2, 1, 1), (1, 1));
        assert_eq!(valid_range(2, 1, 2, 1, 1), (0, 1));
    }
}
