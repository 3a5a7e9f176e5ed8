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
//! When the kernel covers the whole unpadded input, as in the
//! discriminator's last layer and the generator's first, the columns are
//! the images themselves, so each kernel is one matrix product over the
//! whole batch with no im2col.
//!
//! Images are independent, so the kernels cut the batch into groups of
//! consecutive images and spread the groups over the rayon thread pool. A
//! group's columns sit side by side in one `[C·K², G·L]` matrix, so that a
//! layer with few output positions per image (`L` = 16 in the DCGAN)
//! still gives the matrix multiplication enough columns to fill whole
//! register tiles. The weight gradient sums per-thread partial sums in a
//! fixed order, which keeps results deterministic for a given thread count.
//! Each thread keeps its column and staging buffers between calls.

use std::cell::RefCell;

use gemm::Parallelism;
use rayon::prelude::*;

use super::buffers::fill_in_chunks;

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

    /// Returns whether the kernel covers the whole unpadded input. Such a
    /// convolution has one output position, and its columns are the image
    /// itself.
    fn is_dense(&self) -> bool {
        self.padding == 0 && self.kernel == self.in_height && self.kernel == self.in_width
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

    /// Entries per phase of a row split into column phases.
    fn phase_width(&self) -> usize {
        self.in_width.div_ceil(self.stride)
    }

    /// Entries per channel of an image split into column phases.
    fn phase_plane(&self) -> usize {
        self.in_height * self.stride * self.phase_width()
    }

    /// Splits a row index of the columns matrix into its channel and tap:
    /// row `(c·K + ty)·K + tx` gives `(c, ty, tx)`.
    fn row_tap(&self, row_index: usize) -> (usize, usize, usize) {
        (row_index / self.taps(), row_index / self.kernel % self.kernel, row_index % self.kernel)
    }

    /// Returns the input row that tap row `tap_y` reads for output row `oy`,
    /// or `None` in the padding.
    fn input_row(&self, oy: usize, tap_y: usize) -> Option<usize> {
        (oy * self.stride + tap_y).checked_sub(self.padding).filter(|&iy| iy < self.in_height)
    }

    /// Locates what tap column `tap_x` of output column `first` reads in an
    /// image split into column phases. Returns the start of its phase run
    /// for `channel` and input row `iy`, and the offset into that run. Later output
    /// columns read the entries that follow. `first` must be a valid
    /// column of the tap.
    fn phase_run(&self, channel: usize, iy: usize, tap_x: usize, first: usize) -> (usize, usize) {
        let column = first * self.stride + tap_x - self.padding;
        let phase = column % self.stride;
        let run = ((channel * self.in_height + iy) * self.stride + phase) * self.phase_width();
        (run, column / self.stride)
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

/// Splits every row of an image into its column phases for a strided
/// convolution: phase `q` of a row contains the row's columns `q`, `q + s`,
/// `q + 2s`, and so on, so that each tap reads one contiguous run.
///
/// # Shapes
/// `image`: `[C, H_in, W_in]` → `phases`: `[C, H_in, s, ⌈W_in / s⌉]`; the
/// unused tail of a short phase keeps its old contents.
fn split_phases(image: &[f32], geometry: &Geometry, phases: &mut [f32]) {
    let (stride, width) = (geometry.stride, geometry.phase_width());
    for (row, out) in image.chunks_exact(geometry.in_width).zip(phases.chunks_exact_mut(stride * width)) {
        if stride == 2 {
            let (even, odd) = out.split_at_mut(width);
            deinterleave(row, even, odd);
            continue;
        }
        for (phase, run) in out.chunks_exact_mut(width).enumerate() {
            let source = row.get(phase..).unwrap_or_default().iter().step_by(stride);
            run.iter_mut().zip(source).for_each(|(slot, &value)| *slot = value);
        }
    }
}

/// Writes phase-split rows back into an image: the inverse of
/// [`split_phases`]. Every pixel comes from exactly one phase entry, so the
/// image is written without being read.
///
/// # Shapes
/// `phases`: `[C, H_in, s, ⌈W_in / s⌉]` → `image`: `[C, H_in, W_in]`.
fn merge_phases(phases: &[f32], geometry: &Geometry, image: &mut [f32]) {
    let (stride, width) = (geometry.stride, geometry.phase_width());
    for (row, split) in image.chunks_exact_mut(geometry.in_width).zip(phases.chunks_exact(stride * width)) {
        if stride == 2 {
            let (even, odd) = split.split_at(width);
            interleave(even, odd, row);
            continue;
        }
        for (phase, run) in split.chunks_exact(width).enumerate() {
            let targets = row.get_mut(phase..).unwrap_or_default().iter_mut().step_by(stride);
            targets.zip(run).for_each(|(pixel, &value)| *pixel = value);
        }
    }
}

/// Splits one row into its two phases for stride 2, as [`split_phases`]
/// does: pairs of pixels go to `even` and `odd`, a form the compiler turns
/// into vector shuffles. A row of odd width ends with one more even pixel.
fn deinterleave(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let pairs = row.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[row.len() / 2] = *last;
    }
    for (pair, (even, odd)) in pairs.zip(even.iter_mut().zip(odd.iter_mut())) {
        (*even, *odd) = (pair[0], pair[1]);
    }
}

/// Merges the two phases of one row for stride 2: the inverse of
/// [`deinterleave`].
fn interleave(even: &[f32], odd: &[f32], row: &mut [f32]) {
    let width = row.len();
    let mut pairs = row.chunks_exact_mut(2);
    for (pair, (&even, &odd)) in pairs.by_ref().zip(even.iter().zip(odd)) {
        (pair[0], pair[1]) = (even, odd);
    }
    if let [last] = pairs.into_remainder() {
        *last = even[width / 2];
    }
}

/// Writes the columns of one image: `cols[(c·K + ty)·K + tx, oy·W_out + ox]`
/// is the input pixel that tap `(ty, tx)` of channel `c` reads for output
/// position `(oy, ox)`, or 0 in the padding. The image comes split into
/// column phases by [`split_phases`], or as it is for stride 1, so every run
/// of an output row is one copy.
///
/// Rows start `row_stride` entries apart, so an image's columns can fill
/// one block of a wider matrix; entries between the rows are left alone.
///
/// # Shapes
/// `phases`: `[C, H_in, s, ⌈W_in / s⌉]` → `cols`: `[C·K², L]` with row
/// stride `row_stride` ≥ `L`.
pub(super) fn im2col(phases: &[f32], geometry: &Geometry, cols: &mut [f32], row_stride: usize) {
    let g = geometry;
    let plane = g.out_plane();
    let rows = phases.len() / g.phase_plane() * g.taps();
    for row_index in 0..rows {
        let row = &mut cols[row_index * row_stride..][..plane];
        let (channel, tap_y, tap_x) = g.row_tap(row_index);
        let (first, end) = g.valid_columns(tap_x);
        for (oy, out_row) in row.chunks_exact_mut(g.out_width).enumerate() {
            match g.input_row(oy, tap_y) {
                Some(iy) if first < end => {
                    let (run, start) = g.phase_run(channel, iy, tap_x, first);
                    out_row[..first].fill(0.0);
                    out_row[first..end].copy_from_slice(&phases[run + start..run + start + end - first]);
                    out_row[end..].fill(0.0);
                }
                _ => out_row.fill(0.0),
            }
        }
    }
}

/// Adds every column entry back into the input pixel it was read from: the
/// adjoint of [`im2col`], into an image split into column phases. `phases`
/// must start zeroed or hold values to add to.
///
/// # Shapes
/// `cols`: `[C·K², L]` with row stride `row_stride` ≥ `L` → `phases`:
/// `[C, H_in, s, ⌈W_in / s⌉]`.
pub(super) fn col2im(cols: &[f32], geometry: &Geometry, row_stride: usize, phases: &mut [f32]) {
    let g = geometry;
    let plane = g.out_plane();
    let rows = phases.len() / g.phase_plane() * g.taps();
    for row_index in 0..rows {
        let row = &cols[row_index * row_stride..][..plane];
        let (channel, tap_y, tap_x) = g.row_tap(row_index);
        let (first, end) = g.valid_columns(tap_x);
        if first >= end {
            continue;
        }
        for (oy, col_row) in row.chunks_exact(g.out_width).enumerate() {
            if let Some(iy) = g.input_row(oy, tap_y) {
                let (run, start) = g.phase_run(channel, iy, tap_x, first);
                let targets = &mut phases[run + start..run + start + end - first];
                targets.iter_mut().zip(&col_row[first..end]).for_each(|(pixel, &value)| *pixel += value);
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

/// Output columns a group's matrix product should span at least: enough
/// rows of the transposed product for several of gemm's register tiles.
const GROUP_COLUMNS: usize = 256;

/// Division of a batch over the thread pool: `group` consecutive images per
/// matrix product, groups in parallel with single-threaded
/// products, or groups in turn with a parallel product when there are fewer
/// groups than threads.
#[derive(Clone, Copy, Debug)]
struct Plan {
    group: usize,
    parallel: bool,
    parallelism: Parallelism,
}

impl Plan {
    /// Chooses the plan for `batch` images with `plane` output positions each.
    fn new(batch: usize, plane: usize) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let images_needed = GROUP_COLUMNS.div_ceil(plane.max(1));
        let group = images_needed.min(batch.div_ceil(threads)).max(1);
        let groups = batch.div_ceil(group);
        let (parallel, parallelism) =
            if threads > 1 && groups >= threads { (true, Parallelism::None) } else { (false, pool_parallelism()) };
        Self { group, parallel, parallelism }
    }
}

thread_local! {
    /// This thread's scratch buffers, kept between calls so that the large
    /// allocations are not handed back to the system every time.
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Runs `job` on three scratch buffers of the given lengths with unspecified
/// contents: this thread's own, or fresh ones if a caller up the stack has
/// borrowed them.
fn with_scratch<R>(lengths: [usize; 3], job: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let [a, b, c] = &mut *buffers;
            for (buffer, &length) in [&mut *a, &mut *b, &mut *c].into_iter().zip(&lengths) {
                grow(buffer, length);
            }
            job(&mut a[..lengths[0]], &mut b[..lengths[1]], &mut c[..lengths[2]])
        }
        Err(_) => job(&mut vec![0.0; lengths[0]], &mut vec![0.0; lengths[1]], &mut vec![0.0; lengths[2]]),
    })
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Builds `batch` images of `per_image` values each by running
/// `job(first image, output chunk)` over the groups of `plan`. Each chunk
/// starts zeroed.
fn group_outputs(
    batch: usize,
    per_image: usize,
    plan: Plan,
    job: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let chunk = per_image * plan.group;
    fill_in_chunks(batch * per_image, chunk, plan.parallel, |index, piece| job(index * plan.group, piece))
}

/// Writes the columns of images `first..first + count` side by side into
/// `cols`, a `[C·K², count·L]` matrix. `phases` is scratch for one image
/// split into column phases, and is empty for stride 1.
fn group_columns(
    x: &[f32],
    in_image: usize,
    geometry: &Geometry,
    (first, count): (usize, usize),
    cols: &mut [f32],
    phases: &mut [f32],
) {
    let plane = geometry.out_plane();
    for j in 0..count {
        let image = &x[(first + j) * in_image..(first + j + 1) * in_image];
        let source = if geometry.stride == 1 {
            image
        } else {
            split_phases(image, geometry, phases);
            &*phases
        };
        im2col(source, geometry, &mut cols[j * plane..], count * plane);
    }
}

/// Floats of one image of `channels` channels split into column phases; 0
/// for stride 1, which needs no split.
fn phases_len(geometry: &Geometry, channels: usize) -> usize {
    if geometry.stride == 1 {
        0
    } else {
        channels * geometry.phase_plane()
    }
}

/// Lists the start of each `L`-long piece in both orders when `count`
/// images in `[count, channels, L]` order form a `[channels, count·L]`
/// matrix.
fn pieces(count: usize, channels: usize, plane: usize) -> impl Iterator<Item = (usize, usize)> {
    let width = count * plane;
    (0..count).flat_map(move |j| (0..channels).map(move |c| ((j * channels + c) * plane, c * width + j * plane)))
}

/// Floats of staging that a group of `count` images needs for its
/// `[channels, count·L]` matrix: none for one image, whose block already is
/// that matrix.
fn staging_len((count, channels, plane): (usize, usize, usize)) -> usize {
    if count == 1 {
        0
    } else {
        channels * count * plane
    }
}

/// Returns `count` images in `[count, channels, L]` order as a
/// `[channels, count·L]` matrix: the images themselves when `count` is 1,
/// else their copy in `staging`.
fn as_matrix<'a>(images: &'a [f32], staging: &'a mut [f32], dims: (usize, usize, usize)) -> &'a [f32] {
    if dims.0 == 1 {
        images
    } else {
        gather(images, staging, dims);
        staging
    }
}

/// Copies `count` images from `[count, channels, L]` order into a
/// `[channels, count·L]` matrix.
fn gather(images: &[f32], matrix: &mut [f32], (count, channels, plane): (usize, usize, usize)) {
    for (image, row) in pieces(count, channels, plane) {
        matrix[row..row + plane].copy_from_slice(&images[image..image + plane]);
    }
}

/// Copies a `[channels, count·L]` matrix back into `count` images in
/// `[count, channels, L]` order: the inverse of [`gather`].
fn scatter(matrix: &[f32], images: &mut [f32], (count, channels, plane): (usize, usize, usize)) {
    for (image, row) in pieces(count, channels, plane) {
        images[image..image + plane].copy_from_slice(&matrix[row..row + plane]);
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
    if g.is_dense() {
        return dense_forward(x, weight, batch, out_channels, rows);
    }
    let plane = g.out_plane();
    let plan = Plan::new(batch, plane);

    group_outputs(batch, out_channels * plane, plan, |first, out| {
        let count = out.len() / (out_channels * plane);
        let width = count * plane;
        let staging = staging_len((count, out_channels, plane));
        let phases = phases_len(g, rows / g.taps());
        with_scratch([rows * width, staging, phases], |cols, product, phases| {
            group_columns(x, in_image, g, (first, count), cols, phases);
            let lhs = Operand::rows(weight, rows);
            let dst = if count == 1 { &mut *out } else { &mut *product };
            matmul(dst, (out_channels, width, rows), lhs, Operand::rows(cols, width), false, plan.parallelism);
            if count > 1 {
                scatter(product, out, (count, out_channels, plane));
            }
        });
    })
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
    if g.is_dense() {
        return dense_input_grad(grad_y, weight, batch, out_channels, rows);
    }
    let plane = g.out_plane();
    let in_image = rows / g.taps() * g.in_plane();
    let plan = Plan::new(batch, plane);

    group_outputs(batch, in_image, plan, |first, images| {
        let count = images.len() / in_image.max(1);
        let width = count * plane;
        let dy_images = &grad_y[first * out_channels * plane..(first + count) * out_channels * plane];
        let staging = staging_len((count, out_channels, plane));
        let phases = phases_len(g, rows / g.taps());
        with_scratch([rows * width, staging, phases], |cols, dy_matrix, phases| {
            let dy = as_matrix(dy_images, dy_matrix, (count, out_channels, plane));
            let lhs = Operand::transposed(weight, rows);
            matmul(cols, (rows, width, out_channels), lhs, Operand::rows(dy, width), false, plan.parallelism);
            for (j, image) in images.chunks_exact_mut(in_image).enumerate() {
                if g.stride == 1 {
                    col2im(&cols[j * plane..], g, width, image);
                } else {
                    phases.fill(0.0);
                    col2im(&cols[j * plane..], g, width, phases);
                    merge_phases(phases, g, image);
                }
            }
        });
    })
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
    if g.is_dense() {
        return dense_weight_grad(x, grad_y, batch, out_channels, rows);
    }
    let plane = g.out_plane();
    if batch == 0 {
        return vec![0f32; out_channels * rows];
    }
    let plan = Plan::new(batch, plane);

    // Contiguous runs of groups, one partial sum each, added in order.
    let groups = batch.div_ceil(plan.group);
    let workers = if plan.parallel { rayon::current_num_threads().min(groups) } else { 1 };
    let per_worker = groups.div_ceil(workers) * plan.group;
    let add_group = |first: usize, count: usize, sum: &mut [f32], accumulate: bool| {
        let width = count * plane;
        let dy_images = &grad_y[first * out_channels * plane..(first + count) * out_channels * plane];
        let staging = staging_len((count, out_channels, plane));
        let phases = phases_len(g, rows / g.taps());
        with_scratch([rows * width, staging, phases], |cols, dy_matrix, phases| {
            group_columns(x, in_image, g, (first, count), cols, phases);
            let dy = as_matrix(dy_images, dy_matrix, (count, out_channels, plane));
            let (lhs, rhs) = (Operand::rows(dy, width), Operand::transposed(cols, width));
            matmul(sum, (out_channels, rows, width), lhs, rhs, accumulate, plan.parallelism);
        });
    };
    let partial = |worker: usize| -> Vec<f32> {
        let mut sum = vec![0f32; out_channels * rows];
        let images = worker * per_worker..((worker + 1) * per_worker).min(batch);
        for first in images.clone().step_by(plan.group) {
            add_group(first, plan.group.min(images.end - first), &mut sum, first > images.start);
        }
        sum
    };
    let sums: Vec<Vec<f32>> = if plan.parallel {
        (0..workers).into_par_iter().map(partial).collect()
    } else {
        (0..workers).map(partial).collect()
    };

    let mut sums = sums.into_iter();
    let mut grad_w = sums.next().unwrap_or_default();
    for sum in sums {
        grad_w.iter_mut().zip(&sum).for_each(|(total, value)| *total += value);
    }
    grad_w
}

/// Parallelism of one matrix product over the whole thread pool.
fn pool_parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        threads => Parallelism::Rayon(threads),
    }
}

/// Computes [`forward`] for a kernel that covers the whole input as one
/// product of the batch with the weight, `y = X · Wᵀ`.
///
/// # Shapes
/// `x`: `[N, C·K²]`, `weight`: `[M, C·K²]` → `[N, M]`.
fn dense_forward(x: &[f32], weight: &[f32], batch: usize, out_channels: usize, rows: usize) -> Vec<f32> {
    let mut y = vec![0f32; batch * out_channels];
    let (lhs, rhs) = (Operand::rows(x, rows), Operand::transposed(weight, rows));
    matmul(&mut y, (batch, out_channels, rows), lhs, rhs, false, pool_parallelism());
    y
}

/// Computes [`input_grad`] for a kernel that covers the whole input as
/// `dX = dY · W`.
///
/// # Shapes
/// `grad_y`: `[N, M]`, `weight`: `[M, C·K²]` → `[N, C·K²]`.
fn dense_input_grad(grad_y: &[f32], weight: &[f32], batch: usize, out_channels: usize, rows: usize) -> Vec<f32> {
    let mut x = vec![0f32; batch * rows];
    let (lhs, rhs) = (Operand::rows(grad_y, out_channels), Operand::rows(weight, rows));
    matmul(&mut x, (batch, rows, out_channels), lhs, rhs, false, pool_parallelism());
    x
}

/// Computes [`weight_grad`] for a kernel that covers the whole input as
/// `dW = dYᵀ · X`.
///
/// # Shapes
/// `x`: `[N, C·K²]`, `grad_y`: `[N, M]` → `[M, C·K²]`.
fn dense_weight_grad(x: &[f32], grad_y: &[f32], batch: usize, out_channels: usize, rows: usize) -> Vec<f32> {
    let mut grad_w = vec![0f32; out_channels * rows];
    let (lhs, rhs) = (Operand::transposed(grad_y, out_channels), Operand::rows(x, rows));
    matmul(&mut grad_w, (out_channels, rows, batch), lhs, rhs, false, pool_parallelism());
    grad_w
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

    /// Computes the `[C·K², L]` columns of one `[C, H_in, W_in]` image, entry
    /// by entry.
    pub fn im2col(image: &[f32], g: &Geometry) -> Vec<f32> {
        let channels = image.len() / g.in_plane();
        let mut cols = vec![0f32; channels * g.taps() * g.out_plane()];
        for (row, out) in cols.chunks_exact_mut(g.out_plane()).enumerate() {
            let (c, ty, tx) = g.row_tap(row);
            for (position, value) in out.iter_mut().enumerate() {
                if let Some(i) = source(g, position / g.out_width, position % g.out_width, ty, tx) {
                    *value = image[c * g.in_plane() + i];
                }
            }
        }
        cols
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
    /// Kernel 1 to 4, stride 1 to 3, padding below the kernel, inputs from
    /// 1x1 to 9x9, batches of 1 to 3.
    fn random_case(rng: &mut ChaCha8Rng) -> (Geometry, usize, usize, usize) {
        loop {
            let kernel = rng.gen_range(1..=4);
            let padding = rng.gen_range(0..kernel.min(3));
            let (h, w) = (rng.gen_range(1..=9), rng.gen_range(1..=9));
            if let Some(g) = Geometry::of_convolution(kernel, rng.gen_range(1..=3), padding, h, w) {
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

    /// Batches that split into several groups of images, on pools of one to
    /// three threads, give the reference's forward pass and adjoint
    /// gradients.
    #[test]
    fn grouped_batches_match_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let g = Geometry::of_convolution(4, 2, 1, 4, 6).unwrap();
        let (batch, channels, out_channels) = (11, 3, 5);
        let x = values(batch * channels * g.in_plane(), &mut rng);
        let w = values(out_channels * channels * g.taps(), &mut rng);
        let dy = values(batch * out_channels * g.out_plane(), &mut rng);
        let slow = reference::forward(&x, &w, batch, channels, out_channels, &g);
        let expected = dot(&slow, &dy);
        for threads in 1..=3 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (fast, dx, dw) = pool.install(|| {
                let fast = forward(&x, &w, batch, out_channels, &g);
                (fast, input_grad(&dy, &w, batch, out_channels, &g), weight_grad(&x, &dy, batch, out_channels, &g))
            });
            assert_close(&fast, &slow, 1e-5, &format!("{threads} threads"));
            let tolerance = 1e-4 * (1.0 + expected.abs());
            assert!((dot(&dx, &x) - expected).abs() < tolerance, "input gradient, {threads} threads");
            assert!((dot(&dw, &w) - expected).abs() < tolerance, "weight gradient, {threads} threads");
        }
    }

    /// Kernels that cover the whole input, as in the discriminator's last
    /// layer and the generator's first, give the reference's forward pass
    /// and adjoint gradients on pools of one to three threads.
    #[test]
    fn dense_layers_match_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        // (kernel, stride, batch, input channels, output channels)
        let cases = [(4, 1, 5, 7, 1), (4, 2, 3, 6, 9), (1, 1, 4, 3, 2), (3, 3, 1, 2, 5)];
        for (kernel, stride, batch, channels, out_channels) in cases {
            let g = Geometry::of_convolution(kernel, stride, 0, kernel, kernel).unwrap();
            assert!(g.is_dense());
            let x = values(batch * channels * g.in_plane(), &mut rng);
            let w = values(out_channels * channels * g.taps(), &mut rng);
            let dy = values(batch * out_channels, &mut rng);
            let slow = reference::forward(&x, &w, batch, channels, out_channels, &g);
            let expected = dot(&slow, &dy);
            for threads in 1..=3 {
                let case = format!("{g:?} batch {batch} {channels}->{out_channels}, {threads} threads");
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (fast, dx, dw) = pool.install(|| {
                    let fast = forward(&x, &w, batch, out_channels, &g);
                    (fast, input_grad(&dy, &w, batch, out_channels, &g), weight_grad(&x, &dy, batch, out_channels, &g))
                });
                assert_close(&fast, &slow, 1e-5, &case);
                let tolerance = 1e-4 * (1.0 + expected.abs());
                assert!((dot(&dx, &x) - expected).abs() < tolerance, "input gradient, {case}");
                assert!((dot(&dw, &w) - expected).abs() < tolerance, "weight gradient, {case}");
            }
        }
    }

    /// Splits an image into column phases, or copies it for stride 1.
    fn split(image: &[f32], g: &Geometry, channels: usize) -> Vec<f32> {
        if g.stride == 1 {
            return image.to_vec();
        }
        let mut phases = vec![0f32; channels * g.phase_plane()];
        split_phases(image, g, &mut phases);
        phases
    }

    /// im2col over column phases, written into a wider matrix, gives the
    /// reference columns exactly and leaves the entries between rows alone.
    #[test]
    fn im2col_matches_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..CASES {
            let (g, _, channels, _) = random_case(&mut rng);
            let image = values(channels * g.in_plane(), &mut rng);
            let row_stride = g.out_plane() + 3;
            let mut cols = vec![7f32; channels * g.taps() * row_stride];
            im2col(&split(&image, &g, channels), &g, &mut cols, row_stride);
            let expected = reference::im2col(&image, &g);
            for (row, want) in cols.chunks_exact(row_stride).zip(expected.chunks_exact(g.out_plane())) {
                assert_eq!(&row[..g.out_plane()], want, "{g:?}");
                assert!(row[g.out_plane()..].iter().all(|&v| v == 7.0), "{g:?}");
            }
        }
    }

    /// col2im followed by merging the phases is the adjoint of splitting
    /// the phases followed by im2col, and merging undoes splitting.
    #[test]
    fn col2im_is_adjoint_of_im2col() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..CASES {
            let (g, _, channels, _) = random_case(&mut rng);
            let image = values(channels * g.in_plane(), &mut rng);
            let other = values(channels * g.taps() * g.out_plane(), &mut rng);
            let cols = reference::im2col(&image, &g);
            let mut back = vec![0f32; image.len()];
            if g.stride == 1 {
                col2im(&other, &g, g.out_plane(), &mut back);
            } else {
                let mut phases = vec![0f32; channels * g.phase_plane()];
                col2im(&other, &g, g.out_plane(), &mut phases);
                merge_phases(&phases, &g, &mut back);
                let mut round_trip = vec![0f32; image.len()];
                merge_phases(&split(&image, &g, channels), &g, &mut round_trip);
                assert_eq!(round_trip, image, "{g:?}");
            }
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
