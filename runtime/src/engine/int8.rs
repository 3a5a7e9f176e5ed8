//! Integer kernels of the core: int8 weights and activations, i32 sums.
//!
//! The layout and the phase decomposition are those of [`super::fast`];
//! activations are stored as `i16` holding int8 values so that two input
//! channels form one 32-bit pair for `pmaddwd`-style products.
//!
//! Each layer input `x` is quantized with one scale per layer, `q = round(x /
//! s_in)` clamped to `[-127, 127]`, and each kernel with one scale per output
//! channel, `w = wq * s_w[o]`. The i32 sum `acc = Σ q * wq` is exact, so every
//! kernel variant and every target computes the same sums. Requantization to
//! the next layer's input is, in f32 and always in this order (Rust never
//! fuses a multiply and an add on its own):
//!
//! `q_next = min(127, trunc(max(0, acc * m[o] + b[o]) + 0.5))` with
//! `m[o] = s_in * s_w[o] / s_next` and `b[o] = bias[o] / s_next`,
//!
//! and the last layer computes `tanh(acc * (s_in * s_w[o]) + bias[o])` with
//! [`libm::tanhf`], a software function, so its result is the same on every
//! target as well.

use alloc::vec;
use alloc::vec::Vec;

use super::fast::{padded_channels, padded_len, tap_bases, BLOCK, PHASE_ROWS, PHASE_TAPS, PIXELS};
use crate::spec::{LayerSpec, KERNEL};

/// Largest int8 magnitude used.
const QMAX: f32 = 127.0;

/// Quantizes one latent value with scale `scale`.
fn quantize_input(value: f32, scale: f32) -> i32 {
    libm::roundf(value / scale).clamp(-QMAX, QMAX) as i32
}

/// Requantizes a ReLU output: `min(127, trunc(max(0, acc * m + b) + 0.5))`.
pub(crate) fn requantize(acc: i32, multiplier: f32, shift: f32) -> i16 {
    let real = acc as f32 * multiplier + shift;
    (real.max(0.0) + 0.5).min(QMAX) as i16
}

/// Per-channel factors of a layer's output stage.
#[derive(Clone, Debug)]
pub(crate) struct OutputStage {
    /// `[padded]`: `s_in * s_w[o] / s_next`, or `s_in * s_w[o]` for the image.
    pub(crate) multiplier: Vec<f32>,
    /// `[padded]`: `bias[o] / s_next`, or `bias[o]` for the image.
    pub(crate) shift: Vec<f32>,
}

impl OutputStage {
    /// Computes the factors of `out_channels` channels, zero up to `padded`.
    pub(crate) fn new(
        out_channels: usize,
        padded: usize,
        input_scale: f32,
        weight_scales: &[f32],
        bias: &[f32],
        next: Option<f32>,
    ) -> Self {
        let mut multiplier = vec![0.0; padded];
        let mut shift = vec![0.0; padded];
        for o in 0..out_channels {
            let dequantize = input_scale * weight_scales[o];
            (multiplier[o], shift[o]) = match next {
                Some(next) => (dequantize / next, bias[o] / next),
                None => (dequantize, bias[o]),
            };
        }
        Self { multiplier, shift }
    }

    /// Bytes of the two factor vectors.
    pub(crate) fn bytes(&self) -> usize {
        (self.multiplier.len() + self.shift.len()) * core::mem::size_of::<f32>()
    }
}

/// The first layer: latent `[nz]` to `[4, 4, out]` int8 activations.
#[derive(Clone, Debug)]
pub(crate) struct Projection8 {
    out_channels: usize,
    input_scale: f32,
    /// `[in, 16 taps, out_padded]`.
    weights: Vec<i8>,
    stage: OutputStage,
}

/// Inputs to build one int8 layer.
pub(crate) struct Int8Parts<'a> {
    pub(crate) spec: &'a LayerSpec,
    /// `[in, out, 4, 4]` int8 kernel values.
    pub(crate) values: &'a [i8],
    /// `[out]` kernel scales.
    pub(crate) weight_scales: &'a [f32],
    /// `[out]` biases.
    pub(crate) bias: &'a [f32],
    /// Scale of this layer's input.
    pub(crate) input_scale: f32,
    /// Scale of the next layer's input, `None` for the last layer.
    pub(crate) next_scale: Option<f32>,
}

impl Projection8 {
    pub(crate) fn new(parts: &Int8Parts<'_>) -> Self {
        let spec = parts.spec;
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let padded = padded_channels(outputs);
        let taps = KERNEL * KERNEL;
        let mut weights = vec![0; inputs * taps * padded];
        for i in 0..inputs {
            for o in 0..outputs {
                for tap in 0..taps {
                    weights[(i * taps + tap) * padded + o] = parts.values[(i * outputs + o) * taps + tap];
                }
            }
        }
        let stage = OutputStage::new(
            outputs,
            padded_channels(outputs),
            parts.input_scale,
            parts.weight_scales,
            parts.bias,
            parts.next_scale,
        );
        Self { out_channels: outputs, input_scale: parts.input_scale, weights, stage }
    }

    /// Runs the layer into a padded `[6, 6, out_padded]` buffer.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[in]`.
    /// - `sums`: `[16 * out_padded]` i32 working memory.
    /// - `output`: at least [`padded_len`]`(out, 4)` values; the border is zeroed.
    pub(crate) fn forward<T: Stored>(&self, latent: &[f32], sums: &mut [i32], output: &mut [T]) {
        let padded = padded_channels(self.out_channels);
        let taps = KERNEL * KERNEL;
        let sums = &mut sums[..taps * padded];
        sums.fill(0);

        // Stage 1: quantize each latent value and accumulate `[16 taps, out_padded]`.
        for (i, &value) in latent.iter().enumerate() {
            let q = quantize_input(value, self.input_scale);
            let rows = &self.weights[i * taps * padded..][..taps * padded];
            multiply_add(sums, rows, q);
        }

        // Stage 2: requantize into the interior of the padded output.
        let output = &mut output[..padded_len(self.out_channels, 4)];
        output.fill(T::ZERO);
        for (tap, row) in sums.chunks_exact(padded).enumerate() {
            let (ky, kx) = (tap / KERNEL, tap % KERNEL);
            let target = &mut output[((ky + 1) * 6 + kx + 1) * padded..][..padded];
            for (o, (t, &acc)) in target.iter_mut().zip(row).enumerate() {
                *t = T::from_requantized(requantize(acc, self.stage.multiplier[o], self.stage.shift[o]));
            }
        }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        self.weights.len() + self.stage.bytes()
    }
}

/// Adds `q * weights` to `sums`: with AVX-512 when the CPU has it, so the
/// compiler vectorises the i32 products 16 wide. Integer sums are exact, so
/// both versions return the same values.
fn multiply_add(sums: &mut [i32], weights: &[i8], q: i32) {
    #[inline(always)]
    fn body(sums: &mut [i32], weights: &[i8], q: i32) {
        sums.iter_mut().zip(weights).for_each(|(acc, &w)| *acc += q * i32::from(w));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn body_avx512(sums: &mut [i32], weights: &[i8], q: i32) {
        body(sums, weights, q);
    }

    #[cfg(target_arch = "x86_64")]
    if super::panels::f32_supported() {
        // SAFETY: `f32_supported` detected AVX-512F.
        return unsafe { body_avx512(sums, weights, q) };
    }
    body(sums, weights, q)
}

/// Element type of stored int8 activations: `i16` for the channel-pair
/// kernels, `u8` for the panel kernels. Requantized values lie in `0..=127`,
/// so both hold them exactly.
pub(crate) trait Stored: Copy {
    /// The zero of the padding.
    const ZERO: Self;

    /// Converts a requantized value in `0..=127`.
    fn from_requantized(value: i16) -> Self;
}

impl Stored for i16 {
    const ZERO: Self = 0;

    fn from_requantized(value: i16) -> Self {
        value
    }
}

impl Stored for u8 {
    const ZERO: Self = 0;

    fn from_requantized(value: i16) -> Self {
        value as u8
    }
}

/// A stride-2 int8 layer packed for the phase kernels.
#[derive(Clone, Debug)]
pub(crate) struct PhaseLayer8 {
    in_channels: usize,
    out_channels: usize,
    in_size: usize,
    /// `[4 phases, out_padded / BLOCK, in_padded / 2, 4 taps, BLOCK, 2]`.
    weights: Vec<i16>,
    stage: OutputStage,
}

/// Where a stride-2 int8 layer writes its result.
#[derive(Debug)]
pub(crate) enum Sink8<'a> {
    /// Requantized ReLU output into a padded channels-last buffer.
    Hidden(&'a mut [i16]),
    /// Tanh into a `[channels, size, size]` f32 image.
    Image(&'a mut [f32]),
}

impl PhaseLayer8 {
    pub(crate) fn new(parts: &Int8Parts<'_>) -> Self {
        let spec = parts.spec;
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let (in_padded, out_padded) = (padded_channels(inputs), padded_channels(outputs));
        let (pairs, blocks) = (in_padded / 2, out_padded / BLOCK);
        let mut weights = vec![0; 4 * blocks * pairs * PHASE_TAPS * BLOCK * 2];
        for phase in 0..4 {
            let (rows, columns) = (PHASE_ROWS[phase / 2], PHASE_ROWS[phase % 2]);
            for o in 0..outputs {
                let (block, lane) = (o / BLOCK, o % BLOCK);
                for i in 0..inputs {
                    for tap in 0..PHASE_TAPS {
                        let (ky, kx) = (rows[tap / 2].0, columns[tap % 2].0);
                        let packed = ((((phase * blocks + block) * pairs + i / 2) * PHASE_TAPS + tap) * BLOCK + lane)
                            * 2
                            + i % 2;
                        let value = parts.values[((i * outputs + o) * KERNEL + ky) * KERNEL + kx];
                        weights[packed] = i16::from(value);
                    }
                }
            }
        }
        let stage = OutputStage::new(
            outputs,
            padded_channels(outputs),
            parts.input_scale,
            parts.weight_scales,
            parts.bias,
            parts.next_scale,
        );
        Self { in_channels: inputs, out_channels: outputs, in_size: spec.in_size, weights, stage }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        self.weights.len() * core::mem::size_of::<i16>() + self.stage.bytes()
    }

    /// Runs the layer on a padded channels-last int8 input.
    ///
    /// # Shapes
    ///
    /// As [`super::fast::PhaseLayer::forward`], with `i16` activations.
    pub(crate) fn forward(&self, input: &[i16], mut sink: Sink8<'_>) {
        let out_size = 2 * self.in_size;
        if let Sink8::Hidden(buffer) = &mut sink {
            buffer[..padded_len(self.out_channels, out_size)].fill(0);
        }
        let input = &input[..padded_len(self.in_channels, self.in_size)];
        let kernel = select_kernel();

        let blocks = padded_channels(self.out_channels) / BLOCK;
        let block_len = padded_channels(self.in_channels) / 2 * PHASE_TAPS * BLOCK * 2;
        for phase in 0..4 {
            let offsets = self.tap_offsets(phase);
            for block in 0..blocks {
                let weights = &self.weights[(phase * blocks + block) * block_len..][..block_len];
                for m in 0..self.in_size {
                    for n in (0..self.in_size).step_by(PIXELS) {
                        let first = (m + 1) * (self.in_size + 2) + n + 1;
                        let acc = kernel(padded_channels(self.in_channels), input, first, &offsets, weights);
                        self.store(&mut sink, phase, block, m, n, &acc);
                    }
                }
            }
        }
    }

    /// Offsets, in values, from an output pixel's centre input to each tap's input.
    fn tap_offsets(&self, phase: usize) -> [isize; PHASE_TAPS] {
        let row = (self.in_size + 2) as isize;
        let channels = padded_channels(self.in_channels) as isize;
        let (rows, columns) = (PHASE_ROWS[phase / 2], PHASE_ROWS[phase % 2]);
        let mut offsets = [0; PHASE_TAPS];
        for (tap, offset) in offsets.iter_mut().enumerate() {
            *offset = (rows[tap / 2].1 * row + columns[tap % 2].1) * channels;
        }
        offsets
    }

    /// Writes one register block through the output stage.
    fn store(
        &self,
        sink: &mut Sink8<'_>,
        phase: usize,
        block: usize,
        m: usize,
        n: usize,
        acc: &[[i32; BLOCK]; PIXELS],
    ) {
        let out_size = 2 * self.in_size;
        let (y, x0) = (2 * m + phase / 2, 2 * n + phase % 2);
        let multiplier = &self.stage.multiplier[block * BLOCK..][..BLOCK];
        let shift = &self.stage.shift[block * BLOCK..][..BLOCK];
        match sink {
            Sink8::Hidden(buffer) => {
                let padded = padded_channels(self.out_channels);
                for (p, sums) in acc.iter().enumerate() {
                    let pixel = (y + 1) * (out_size + 2) + x0 + 2 * p + 1;
                    let target = &mut buffer[pixel * padded + block * BLOCK..][..BLOCK];
                    for lane in 0..BLOCK {
                        target[lane] = requantize(sums[lane], multiplier[lane], shift[lane]);
                    }
                }
            }
            Sink8::Image(image) => {
                let plane = out_size * out_size;
                let channels = (self.out_channels - block * BLOCK).min(BLOCK);
                for (p, sums) in acc.iter().enumerate() {
                    let pixel = y * out_size + x0 + 2 * p;
                    for lane in 0..channels {
                        let real = sums[lane] as f32 * multiplier[lane] + shift[lane];
                        image[(block * BLOCK + lane) * plane + pixel] = libm::tanhf(real);
                    }
                }
            }
        }
    }
}

/// An int8 register-block kernel returning `[PIXELS, BLOCK]` i32 sums.
///
/// Arguments: input channel stride (even), padded input, index of the first
/// output pixel's centre input pixel, tap offsets in values, packed weights
/// `[in_padded / 2, 4 taps, BLOCK, 2]` of the block.
type BlockKernel8 = fn(usize, &[i16], usize, &[isize; PHASE_TAPS], &[i16]) -> [[i32; BLOCK]; PIXELS];

/// Picks the fastest block kernel the CPU supports. All of them return the
/// same sums.
pub(crate) fn select_kernel() -> BlockKernel8 {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if std::is_x86_feature_detected!("avx2") {
        return block_avx2;
    }
    #[cfg(target_arch = "aarch64")]
    return block_neon;
    #[cfg(not(target_arch = "aarch64"))]
    block_portable
}

/// Portable int8 block kernel.
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
pub(crate) fn block_portable(
    channels: usize,
    input: &[i16],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[i16],
) -> [[i32; BLOCK]; PIXELS] {
    let mut acc = [[0i32; BLOCK]; PIXELS];
    let pairs = weights.len() / (PHASE_TAPS * BLOCK * 2);
    let bases = tap_bases(channels, first, offsets, 2 * pairs, input.len());

    for (pair, taps) in weights.chunks_exact(PHASE_TAPS * BLOCK * 2).enumerate() {
        for (tap, w) in taps.chunks_exact(BLOCK * 2).enumerate() {
            for (p, row) in acc.iter_mut().enumerate() {
                let base = bases[p * PHASE_TAPS + tap] as usize + 2 * pair;
                let (a0, a1) = (i32::from(input[base]), i32::from(input[base + 1]));
                for lane in 0..BLOCK {
                    row[lane] += a0 * i32::from(w[2 * lane]) + a1 * i32::from(w[2 * lane + 1]);
                }
            }
        }
    }
    acc
}

/// AVX2 int8 block kernel: `vpmaddwd` on channel pairs, 8 `ymm` accumulators.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn block_avx2(
    channels: usize,
    input: &[i16],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[i16],
) -> [[i32; BLOCK]; PIXELS] {
    // SAFETY: `select_kernel` returns this function only after detecting AVX2.
    unsafe { block_avx2_inner(channels, input, first, offsets, weights) }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn block_avx2_inner(
    channels: usize,
    input: &[i16],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[i16],
) -> [[i32; BLOCK]; PIXELS] {
    use core::arch::x86_64::*;

    let pairs = weights.len() / (PHASE_TAPS * BLOCK * 2);

    // Every read index is checked once here, so the loop can use raw pointers.
    let bases = tap_bases(channels, first, offsets, 2 * pairs, input.len());

    let pointer = input.as_ptr();
    let mut acc = [[_mm256_setzero_si256(); 2]; PIXELS];
    let mut w = weights.as_ptr() as *const __m256i;
    for pair in 0..pairs as isize {
        for tap in 0..PHASE_TAPS {
            let w0 = _mm256_loadu_si256(w);
            let w1 = _mm256_loadu_si256(w.add(1));
            w = w.add(2);
            for p in 0..PIXELS {
                let source = pointer.offset(bases[p * PHASE_TAPS + tap] + 2 * pair) as *const i32;
                let value = _mm256_set1_epi32(source.read_unaligned());
                acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(value, w0));
                acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(value, w1));
            }
        }
    }

    let mut out = [[0i32; BLOCK]; PIXELS];
    for p in 0..PIXELS {
        _mm256_storeu_si256(out[p].as_mut_ptr() as *mut __m256i, acc[p][0]);
        _mm256_storeu_si256(out[p].as_mut_ptr().add(8) as *mut __m256i, acc[p][1]);
    }
    out
}

/// NEON int8 block kernel: widening `smlal` products of each channel pair,
/// 16 `q` accumulators. NEON is part of every aarch64 target.
#[cfg(target_arch = "aarch64")]
fn block_neon(
    channels: usize,
    input: &[i16],
    first: usize,
    offsets: &[isize; PHASE_TAPS],
    weights: &[i16],
) -> [[i32; BLOCK]; PIXELS] {
    use core::arch::aarch64::*;

    let pairs = weights.len() / (PHASE_TAPS * BLOCK * 2);

    // Every read index is checked once here, so the loop can use raw pointers.
    let bases = tap_bases(channels, first, offsets, 2 * pairs, input.len());

    // SAFETY: NEON is always present on aarch64. `weights` has
    // `pairs * 4 * BLOCK * 2` values, and every input read was checked above.
    unsafe {
        let pointer = input.as_ptr();
        let mut acc = [[vdupq_n_s32(0); 4]; PIXELS];
        let mut w = weights.as_ptr();
        for pair in 0..pairs as isize {
            for tap in 0..PHASE_TAPS {
                // `.0` is each lane's weight for the even channel, `.1` for the odd one.
                let low = vld2q_s16(w);
                let high = vld2q_s16(w.add(16));
                w = w.add(2 * BLOCK);
                for p in 0..PIXELS {
                    let source = pointer.offset(bases[p * PHASE_TAPS + tap] + 2 * pair);
                    let (a0, a1) = (*source, *source.add(1));
                    let row = &mut acc[p];
                    row[0] = vmlal_n_s16(vmlal_n_s16(row[0], vget_low_s16(low.0), a0), vget_low_s16(low.1), a1);
                    row[1] = vmlal_high_n_s16(vmlal_high_n_s16(row[1], low.0, a0), low.1, a1);
                    row[2] = vmlal_n_s16(vmlal_n_s16(row[2], vget_low_s16(high.0), a0), vget_low_s16(high.1), a1);
                    row[3] = vmlal_high_n_s16(vmlal_high_n_s16(row[3], high.0, a0), high.1, a1);
                }
            }
        }

        let mut out = [[0i32; BLOCK]; PIXELS];
        for p in 0..PIXELS {
            for quarter in 0..4 {
                vst1q_s32(out[p].as_mut_ptr().add(4 * quarter), acc[p][quarter]);
            }
        }
        out
    }
}
