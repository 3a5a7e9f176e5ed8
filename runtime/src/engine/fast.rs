//! Fast f32 kernels of the core.
//!
//! Activations between layers are stored channels-last with a one-pixel zero
//! border: `[size + 2, size + 2, channels_padded]`, where `channels_padded`
//! rounds the channel count up to [`BLOCK`]. The border replaces bounds checks,
//! and the padded channels are zero because their weights and biases are.
//!
//! A transposed convolution with kernel 4, stride 2 and padding 1 splits into
//! four 2x2 convolutions, one per output phase `(y % 2, x % 2)` (sub-pixel
//! decomposition): output row `2m + py` reads input rows `m + dy` through
//! kernel rows `ky` with
//!
//! | `py` | `(ky, dy)` pairs |
//! | --- | --- |
//! | 0 | `(1, 0)`, `(3, -1)` |
//! | 1 | `(2, 0)`, `(0, 1)` |
//!
//! and the same for columns. Each phase is a small matrix product computed
//! in register blocks of [`PIXELS`] output pixels by [`BLOCK`] output
//! channels. The weights are packed at build time, so a block reads them
//! contiguously.

use alloc::vec;
use alloc::vec::Vec;

use crate::spec::{LayerSpec, KERNEL};

/// Output channels per register block.
pub(crate) const BLOCK: usize = 16;

/// Output pixels (along a row) per register block.
pub(crate) const PIXELS: usize = 4;

/// Taps of one phase: 2 rows by 2 columns.
pub(crate) const PHASE_TAPS: usize = 4;

/// `(ky, dy)` pairs of output phase `p`, as in the module table.
pub(crate) const PHASE_ROWS: [[(usize, isize); 2]; 2] = [[(1, 0), (3, -1)], [(2, 0), (0, 1)]];

/// Rounds `channels` up to a multiple of [`BLOCK`].
pub(crate) fn padded_channels(channels: usize) -> usize {
    channels.div_ceil(BLOCK) * BLOCK
}

/// Words of a padded channels-last activation of `channels` by `size` by `size`.
pub(crate) fn padded_len(channels: usize, size: usize) -> usize {
    (size + 2) * (size + 2) * padded_channels(channels)
}

/// The first layer: latent `[nz]` to `[4, 4, out]`, a matrix-vector product.
#[derive(Clone, Debug)]
pub(crate) struct Projection {
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    /// `[in, 16 taps, out_padded]`.
    weights: Vec<f32>,
    /// `[out_padded]`.
    bias: Vec<f32>,
}

impl Projection {
    /// Packs a `[in, out, 4, 4]` kernel.
    pub(crate) fn new(spec: &LayerSpec, kernel: &[f32], bias: &[f32]) -> Self {
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let padded = padded_channels(outputs);
        let taps = KERNEL * KERNEL;
        let mut weights = vec![0.0; inputs * taps * padded];
        for i in 0..inputs {
            for o in 0..outputs {
                for tap in 0..taps {
                    weights[(i * taps + tap) * padded + o] = kernel[(i * outputs + o) * taps + tap];
                }
            }
        }
        let mut padded_bias = vec![0.0; padded];
        padded_bias[..outputs].copy_from_slice(bias);
        Self { in_channels: inputs, out_channels: outputs, weights, bias: padded_bias }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        (self.weights.len() + self.bias.len()) * core::mem::size_of::<f32>()
    }

    /// Runs the layer with ReLU into a padded `[6, 6, out_padded]` buffer.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[in]`.
    /// - `output`: at least [`padded_len`]`(out, 4)` words; the border is zeroed.
    pub(crate) fn forward(&self, latent: &[f32], output: &mut [f32]) {
        let padded = self.bias.len();
        let output = &mut output[..padded_len(self.out_channels, 4)];
        output.fill(0.0);

        // Stage 1: accumulate `[16 taps, out_padded]` in the interior rows.
        let taps = KERNEL * KERNEL;
        for tap in 0..taps {
            let target = interior(output, tap, padded);
            target.copy_from_slice(&self.bias);
        }
        for (i, &value) in latent.iter().enumerate().take(self.in_channels) {
            let rows = &self.weights[i * taps * padded..][..taps * padded];
            for (tap, row) in rows.chunks_exact(padded).enumerate() {
                let target = interior(output, tap, padded);
                multiply_add(target, row, value);
            }
        }

        // Stage 2: ReLU.
        for tap in 0..taps {
            interior(output, tap, padded).iter_mut().for_each(|x| *x = x.max(0.0));
        }
    }
}

/// Adds `value * weights` to `sums`: with AVX-512 when the CPU has it, so
/// the compiler vectorises 16 wide. Rust does not fuse the multiply and the
/// add, so both versions round the same way.
fn multiply_add(sums: &mut [f32], weights: &[f32], value: f32) {
    #[inline(always)]
    fn body(sums: &mut [f32], weights: &[f32], value: f32) {
        sums.iter_mut().zip(weights).for_each(|(acc, &w)| *acc += value * w);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn body_avx512(sums: &mut [f32], weights: &[f32], value: f32) {
        body(sums, weights, value);
    }

    #[cfg(target_arch = "x86_64")]
    if super::panels::f32_supported() {
        // SAFETY: `f32_supported` detected AVX-512F.
        return unsafe { body_avx512(sums, weights, value) };
    }
    body(sums, weights, value)
}

/// Channels of tap `ky * 4 + kx` inside a padded `[6, 6, padded]` buffer.
fn interior(output: &mut [f32], tap: usize, padded: usize) -> &mut [f32] {
    let (ky, kx) = (tap / KERNEL, tap % KERNEL);
    &mut output[((ky + 1) * 6 + kx + 1) * padded..][..padded]
}

/// A stride-2 layer packed for the phase kernels.
#[derive(Clone, Debug)]
pub(crate) struct PhaseLayer {
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) in_size: usize,
    /// `[4 phases, out_padded / BLOCK, in, 4 taps, BLOCK]`.
    weights: Vec<f32>,
    /// `[out_padded]`.
    bias: Vec<f32>,
}

/// Where a stride-2 layer writes its result.
#[derive(Debug)]
pub(crate) enum Sink<'a> {
    /// ReLU into a padded channels-last buffer for the next layer.
    Hidden(&'a mut [f32]),
    /// Tanh into a `[channels, size, size]` image.
    Image(&'a mut [f32]),
}

impl PhaseLayer {
    /// Packs a `[in, out, 4, 4]` kernel.
    pub(crate) fn new(spec: &LayerSpec, kernel: &[f32], bias: &[f32]) -> Self {
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let padded = padded_channels(outputs);
        let blocks = padded / BLOCK;
        let mut weights = vec![0.0; 4 * blocks * inputs * PHASE_TAPS * BLOCK];
        for phase in 0..4 {
            for o in 0..outputs {
                let (block, lane) = (o / BLOCK, o % BLOCK);
                for i in 0..inputs {
                    for (tap, (ky, kx)) in phase_kernel_taps(phase).into_iter().enumerate() {
                        let packed = (((phase * blocks + block) * inputs + i) * PHASE_TAPS + tap) * BLOCK + lane;
                        weights[packed] = kernel[((i * outputs + o) * KERNEL + ky) * KERNEL + kx];
                    }
                }
            }
        }
        let mut padded_bias = vec![0.0; padded];
        padded_bias[..outputs].copy_from_slice(bias);
        Self { in_channels: inputs, out_channels: outputs, in_size: spec.in_size, weights, bias: padded_bias }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        (self.weights.len() + self.bias.len()) * core::mem::size_of::<f32>()
    }

    /// Runs the layer on a padded channels-last input.
    ///
    /// # Shapes
    ///
    /// - `input`: [`padded_len`]`(in, in_size)` words, zero border.
    /// - `sink`: [`Sink::Hidden`] of at least [`padded_len`]`(out, 2 * in_size)`
    ///   words (its border is zeroed here), or [`Sink::Image`] of exactly
    ///   `out * (2 * in_size)^2` words.
    pub(crate) fn forward(&self, input: &[f32], mut sink: Sink<'_>) {
        let out_size = 2 * self.in_size;
        if let Sink::Hidden(buffer) = &mut sink {
            buffer[..padded_len(self.out_channels, out_size)].fill(0.0);
        }
        let input = &input[..padded_len(self.in_channels, self.in_size)];
        let kernel = select_kernel();

        let blocks = self.bias.len() / BLOCK;
        for phase in 0..4 {
            let offsets = self.tap_offsets(phase);
            for block in 0..blocks {
                let weights = &self.weights[(phase * blocks + block) * self.in_channels * PHASE_TAPS * BLOCK..]
                    [..self.in_channels * PHASE_TAPS * BLOCK];
                let bias: &[f32; BLOCK] = self.bias[block * BLOCK..][..BLOCK].try_into().unwrap_or(&[0.0; BLOCK]);
                for m in 0..self.in_size {
                    for n in (0..self.in_size).step_by(PIXELS) {
                        let first = (m + 1) * (self.in_size + 2) + n + 1;
                        let acc = kernel(self.input_channels_padded(), input, first, &offsets, weights, bias);
                        self.store(&mut sink, phase, block, m, n, &acc);
                    }
                }
            }
        }
    }

    fn input_channels_padded(&self) -> usize {
        padded_channels(self.in_channels)
    }

    /// Offsets, in words, from an output pixel's centre input to each tap's input.
    fn tap_offsets(&self, phase: usize) -> [isize; PHASE_TAPS] {
        let row = (self.in_size + 2) as isize;
        let channels = self.input_channels_padded() as isize;
        let (rows, columns) = (PHASE_ROWS[phase / 2], PHASE_ROWS[phase % 2]);
        let mut offsets = [0; PHASE_TAPS];
        for (tap, offset) in offsets.iter_mut().enumerate() {
            *offset = (rows[tap / 2].1 * row + columns[tap % 2].1) * channels;
        }
        offsets
    }

    /// Writes one register block with its activation.
    fn store(&self, sink: &mut Sink<'_>, phase: usize, block: usize, m: usize, n: usize, acc: &[[f32; BLOCK]; PIXELS]) {
        let out_size = 2 * self.in_size;
        let (y, x0) = (2 * m + phase / 2, 2 * n + phase % 2);
        match sink {
            Sink::Hidden(buffer) => {
                let padded = padded_channels(self.out_channels);
                for (p, values) in acc.iter().enumerate() {
                    let pixel = (y + 1) * (out_size + 2) + x0 + 2 * p + 1;
                    let target = &mut buffer[pixel * padded + block * BLOCK..][..BLOCK];
                    target.iter_mut().zip(values).for_each(|(t, &v)| *t = v.max(0.0));
                }
            }
            Sink::Image(image) => {
                let plane = out_size * out_size;
                let channels = (self.out_channels - block * BLOCK).min(BLOCK);
                for (p, values) in acc.iter().enumerate() {
                    let pixel = y * out_size + x0 + 2 * p;
                    for (lane, &v) in values.iter().enumerate().take(channels) {
                        image[(block * BLOCK + lane) * plane + pixel] = libm::tanhf(v);
                    }
                }
            }
        }
    }
}

/// `(ky, kx)` of the four taps of `phase`, in the packed order.
fn phase_kernel_taps(phase: usize) -> [(usize, usize); PHASE_TAPS] {
    let (rows, columns) = (PHASE_ROWS[phase / 2], PHASE_ROWS[phase % 2]);
    let mut taps = [(0, 0); PHASE_TAPS];
    for (tap, entry) in taps.iter_mut().enumerate() {
        *entry = (rows[tap / 2].0, columns[tap % 2].0);
    }
    taps
}

/// Computes the input offset, in words, of each tap for the [`PIXELS`] output
/// pixels of a block, indexed `p * PHASE_TAPS + tap`.
///
/// # Panics
///
/// When `span` words from a tap's offset would fall outside `input_len`. The
/// padded layout rules this out, and the SIMD kernels rely on this check to
/// read through raw pointers.
pub(crate) fn tap_bases(
    channels: usize,
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    span: usize,
    input_len: usize,
) -> [isize; PIXELS * PHASE_TAPS] {
    let mut bases = [0isize; PIXELS * PHASE_TAPS];
    for p in 0..PIXELS {
        for tap in 0..PHASE_TAPS {
            let base = ((first + p) * channels) as isize + offsets[tap];
            assert!(base >= 0, "tap before the start of the padded input");
            assert!(base as usize + span <= input_len, "tap past the end of the padded input");
            bases[p * PHASE_TAPS + tap] = base;
        }
    }
    bases
}

/// A register-block kernel: `[PIXELS, BLOCK]` accumulators started at `bias`.
///
/// Arguments: input channel stride, padded input, index of the first output
/// pixel's centre input pixel, tap offsets in words, packed weights
/// `[in, 4 taps, BLOCK]` of the block, bias of the block.
type BlockKernel = fn(usize, &[f32], usize, &[isize; PHASE_TAPS], &[f32], &[f32; BLOCK]) -> [[f32; BLOCK]; PIXELS];

/// Picks the fastest block kernel the CPU supports.
pub(crate) fn select_kernel() -> BlockKernel {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return block_avx2;
    }
    #[cfg(target_arch = "aarch64")]
    return block_neon;
    #[cfg(not(target_arch = "aarch64"))]
    block_portable
}

/// Portable block kernel; the compiler vectorises the lane loop.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
pub(crate) fn block_portable(
    channels: usize,
    input: &[f32],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[f32],
    bias: &[f32; BLOCK],
) -> [[f32; BLOCK]; PIXELS] {
    let mut acc = [*bias; PIXELS];
    let in_channels = weights.len() / (PHASE_TAPS * BLOCK);
    let bases = tap_bases(channels, first, offsets, in_channels, input.len());

    for (c, taps) in weights.chunks_exact(PHASE_TAPS * BLOCK).enumerate().take(in_channels) {
        for (tap, w) in taps.chunks_exact(BLOCK).enumerate() {
            let w: &[f32; BLOCK] = w.try_into().unwrap_or(&[0.0; BLOCK]);
            for (p, row) in acc.iter_mut().enumerate() {
                let value = input[bases[p * PHASE_TAPS + tap] as usize + c];
                for lane in 0..BLOCK {
                    row[lane] += value * w[lane];
                }
            }
        }
    }
    acc
}

/// AVX2 + FMA block kernel: 4 pixels by 16 channels in 8 `ymm` accumulators.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn block_avx2(
    channels: usize,
    input: &[f32],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[f32],
    bias: &[f32; BLOCK],
) -> [[f32; BLOCK]; PIXELS] {
    // SAFETY: `select_kernel` returns this function only after detecting AVX2 and FMA.
    unsafe { block_avx2_inner(channels, input, first, offsets, weights, bias) }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2_inner(
    channels: usize,
    input: &[f32],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[f32],
    bias: &[f32; BLOCK],
) -> [[f32; BLOCK]; PIXELS] {
    use core::arch::x86_64::*;

    let in_channels = weights.len() / (PHASE_TAPS * BLOCK);

    // Every read index is checked once here, so the loop can use raw pointers.
    let bases = tap_bases(channels, first, offsets, in_channels, input.len());

    let pointer = input.as_ptr();
    let b0 = _mm256_loadu_ps(bias.as_ptr());
    let b1 = _mm256_loadu_ps(bias.as_ptr().add(8));
    let mut acc = [[b0, b1]; PIXELS];
    let mut w = weights.as_ptr();
    for c in 0..in_channels as isize {
        for tap in 0..PHASE_TAPS {
            let w0 = _mm256_loadu_ps(w);
            let w1 = _mm256_loadu_ps(w.add(8));
            w = w.add(BLOCK);
            for p in 0..PIXELS {
                let value = _mm256_broadcast_ss(&*pointer.offset(bases[p * PHASE_TAPS + tap] + c));
                acc[p][0] = _mm256_fmadd_ps(value, w0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(value, w1, acc[p][1]);
            }
        }
    }

    let mut out = [[0.0f32; BLOCK]; PIXELS];
    for p in 0..PIXELS {
        _mm256_storeu_ps(out[p].as_mut_ptr(), acc[p][0]);
        _mm256_storeu_ps(out[p].as_mut_ptr().add(8), acc[p][1]);
    }
    out
}

/// NEON block kernel: 4 pixels by 16 channels in 16 `q` accumulators. NEON
/// is part of every aarch64 target.
#[cfg(target_arch = "aarch64")]
fn block_neon(
    channels: usize,
    input: &[f32],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[f32],
    bias: &[f32; BLOCK],
) -> [[f32; BLOCK]; PIXELS] {
    use core::arch::aarch64::*;

    let in_channels = weights.len() / (PHASE_TAPS * BLOCK);

    // Every read index is checked once here, so the loop can use raw pointers.
    let bases = tap_bases(channels, first, offsets, in_channels, input.len());

    // SAFETY: NEON is always present on aarch64. `weights` has
    // `in_channels * 4 * BLOCK` values, and every input read was checked above.
    unsafe {
        let pointer = input.as_ptr();
        let b = [
            vld1q_f32(bias.as_ptr()),
            vld1q_f32(bias.as_ptr().add(4)),
            vld1q_f32(bias.as_ptr().add(8)),
            vld1q_f32(bias.as_ptr().add(12)),
        ];
        let mut acc = [b; PIXELS];
        let mut w = weights.as_ptr();
        for c in 0..in_channels as isize {
            for tap in 0..PHASE_TAPS {
                let lanes = [vld1q_f32(w), vld1q_f32(w.add(4)), vld1q_f32(w.add(8)), vld1q_f32(w.add(12))];
                w = w.add(BLOCK);
                for p in 0..PIXELS {
                    let value = *pointer.offset(bases[p * PHASE_TAPS + tap] + c);
                    for quarter in 0..4 {
                        acc[p][quarter] = vfmaq_n_f32(acc[p][quarter], lanes[quarter], value);
                    }
                }
            }
        }

        let mut out = [[0.0f32; BLOCK]; PIXELS];
        for p in 0..PIXELS {
            for quarter in 0..4 {
                vst1q_f32(out[p].as_mut_ptr().add(4 * quarter), acc[p][quarter]);
            }
        }
        out
    }
}

/// Converts a `[channels, size, size]` map to the padded channels-last layout.
#[cfg(test)]
pub(crate) fn to_padded(chw: &[f32], channels: usize, size: usize) -> Vec<f32> {
    let padded = padded_channels(channels);
    let mut out = vec![0.0; padded_len(channels, size)];
    for c in 0..channels {
        for y in 0..size {
            for x in 0..size {
                out[((y + 1) * (size + 2) + x + 1) * padded + c] = chw[(c * size + y) * size + x];
            }
        }
    }
    out
}

/// Converts a padded channels-last map back to `[channels, size, size]`.
#[cfg(test)]
pub(crate) fn from_padded(hwc: &[f32], channels: usize, size: usize) -> Vec<f32> {
    let padded = padded_channels(channels);
    let mut out = vec![0.0; channels * size * size];
    for c in 0..channels {
        for y in 0..size {
            for x in 0..size {
                out[(c * size + y) * size + x] = hwc[((y + 1) * (size + 2) + x + 1) * padded + c];
            }
        }
    }
    out
}
