//! AVX-512 kernels of the core: packed weight panels and a register-blocked
//! microkernel, for f32 and for int8 through VNNI.
//!
//! The layout and the phase decomposition are those of [`super::fast`]. Each
//! phase of a stride-2 layer is a matrix product `[M, K] x [K, N]` with `M`
//! the phase's output pixels (`in_size^2`), `K = 4 taps x in` and `N = out`.
//! At build time the weights of each phase are packed into panels of
//! [`Width::channels`] output channels, `[4 phases, panels, 4 taps, in,
//! width]` for f32, so a panel is one contiguous stream. A microkernel keeps
//! a block of [`Width::pixels`] output pixels by one panel in `zmm`
//! accumulators and runs over the whole `K`. The panel is the outer loop, so
//! its weights (at most 256 KiB for the tutorial's 512-channel layer) stay
//! in L2 while every pixel block of the phase reads them.
//!
//! Layers with at most 16 output channels (the image layer) use one-vector
//! panels and twice the pixels per block, so fewer lanes are wasted.
//!
//! The int8 kernels read activations as unsigned bytes: every hidden layer
//! ends in ReLU, so its requantized values lie in `0..=127`. `vpdpbusd`
//! multiplies four such bytes by four int8 weights and adds the products to
//! an i32 lane, so int8 weights are packed `[4 phases, panels, 4 taps, in /
//! 4, width, 4]`. The sums are exact and equal those of the portable kernel,
//! and the output stage is [`super::int8`]'s, so the pixels are the same
//! bit for bit.

use alloc::vec;
use alloc::vec::Vec;

use super::fast::{padded_channels, padded_len, PHASE_ROWS, PHASE_TAPS};
use super::int8::{requantize, OutputStage};
use crate::spec::{LayerSpec, KERNEL};

/// Lanes of one `zmm` vector of f32 or i32.
const LANES: usize = 16;

/// Largest panel width in channels: two vectors.
pub(crate) const MAX_CHANNELS: usize = 2 * LANES;

/// Largest pixel block.
pub(crate) const MAX_PIXELS: usize = 16;

/// Panel shape of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 8 pixels by 32 channels (16 accumulators).
    Wide,
    /// 16 pixels by 16 channels (16 accumulators), for at most 16 output channels.
    Narrow,
}

impl Width {
    /// Returns the panel shape for a layer with `out_channels` outputs.
    pub(crate) fn for_outputs(out_channels: usize) -> Self {
        if out_channels <= LANES {
            Width::Narrow
        } else {
            Width::Wide
        }
    }

    /// Output channels per panel.
    pub(crate) fn channels(self) -> usize {
        match self {
            Width::Wide => 2 * LANES,
            Width::Narrow => LANES,
        }
    }

    /// Output pixels per block.
    pub(crate) fn pixels(self) -> usize {
        match self {
            Width::Wide => 8,
            Width::Narrow => 16,
        }
    }
}

/// Returns whether the CPU runs the f32 panel kernels, which need AVX-512F.
/// With `std` the CPU is checked at run time; without it, the compile-time
/// target features decide.
pub(crate) fn f32_supported() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    return cfg!(target_feature = "avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Returns whether the CPU runs the int8 panel kernels, which need AVX-512F
/// and AVX-512 VNNI.
pub(crate) fn int8_supported() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    return std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vnni");
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    return cfg!(all(target_feature = "avx512f", target_feature = "avx512vnni"));
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Rounds `channels` up to whole panels of `width`.
fn panel_channels(channels: usize, width: Width) -> usize {
    channels.div_ceil(width.channels()) * width.channels()
}

/// Rounds input channels up to whole groups of 4 for `vpdpbusd`.
fn grouped(channels: usize) -> usize {
    channels.div_ceil(4) * 4
}

/// Output channels of a layer rounded up to whole panels as the panel
/// layers pack them, or `None` on overflow.
pub(crate) fn padded_outputs(out_channels: usize) -> Option<usize> {
    let lanes = Width::for_outputs(out_channels).channels();
    Some(out_channels.checked_add(lanes - 1)? / lanes * lanes)
}

/// `(ky, kx)` of tap `tap` of `phase`, in the packed order.
fn kernel_tap(phase: usize, tap: usize) -> (usize, usize) {
    (PHASE_ROWS[phase / 2][tap / 2].0, PHASE_ROWS[phase % 2][tap % 2].0)
}

/// Offsets, in values, from a pixel's centre input to each tap's input for
/// a padded input of `channels` (already padded) by `in_size` by `in_size`.
fn tap_offsets(phase: usize, in_size: usize, channels: usize) -> [isize; PHASE_TAPS] {
    let row = (in_size + 2) as isize;
    let (rows, columns) = (PHASE_ROWS[phase / 2], PHASE_ROWS[phase % 2]);
    let mut offsets = [0; PHASE_TAPS];
    for (tap, offset) in offsets.iter_mut().enumerate() {
        *offset = (rows[tap / 2].1 * row + columns[tap % 2].1) * channels as isize;
    }
    offsets
}

/// One pixel block of a phase: the phase's pixel index of each row of the
/// block and the input offset of each of its taps.
///
/// Rows past the phase's last pixel repeat that pixel, so the kernel reads
/// valid memory; their results are not stored.
struct PixelBlock {
    /// Rows that hold a real pixel.
    count: usize,
    /// `[pixels, 4 taps]` offsets into the padded input, in values.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    bases: [[isize; PHASE_TAPS]; MAX_PIXELS],
}

impl PixelBlock {
    /// Computes the block that starts at phase pixel `start`.
    ///
    /// # Panics
    ///
    /// When `span` values from a tap's offset would fall outside `input_len`.
    /// The padded layout rules this out, and the kernels rely on this check
    /// to read through raw pointers.
    fn new(
        start: usize,
        width: Width,
        in_size: usize,
        channels: usize,
        offsets: &[isize; 4],
        span: usize,
        input_len: usize,
    ) -> Self {
        let total = in_size * in_size;
        let count = (total - start).min(width.pixels());
        let mut bases = [[0isize; PHASE_TAPS]; MAX_PIXELS];
        for (row, taps) in bases.iter_mut().enumerate().take(width.pixels()) {
            let pixel = (start + row).min(total - 1);
            let centre = ((pixel / in_size + 1) * (in_size + 2) + pixel % in_size + 1) * channels;
            for (tap, base) in taps.iter_mut().enumerate() {
                let offset = centre as isize + offsets[tap];
                assert!(offset >= 0, "tap before the start of the padded input");
                assert!(offset as usize + span <= input_len, "tap past the end of the padded input");
                *base = offset;
            }
        }
        Self { count, bases }
    }

    /// Index of `row`'s output pixel in a padded `[out + 2, out + 2]` map,
    /// or in an unpadded `[out, out]` map when `border` is 0.
    fn output_pixel(start: usize, row: usize, phase: usize, in_size: usize, border: usize) -> usize {
        let pixel = start + row;
        let (y, x) = (2 * (pixel / in_size) + phase / 2, 2 * (pixel % in_size) + phase % 2);
        let side = 2 * in_size + 2 * border;
        (y + border) * side + x + border
    }
}

/// A stride-2 layer packed in f32 panels.
#[derive(Clone, Debug)]
pub(crate) struct PanelLayer {
    in_channels: usize,
    out_channels: usize,
    in_size: usize,
    width: Width,
    /// `[4 phases, panels, 4 taps, in, width]`.
    weights: Vec<f32>,
    /// `[panels * width]`.
    bias: Vec<f32>,
}

impl PanelLayer {
    /// Packs a `[in, out, 4, 4]` kernel.
    pub(crate) fn new(spec: &LayerSpec, kernel: &[f32], bias: &[f32]) -> Self {
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let width = Width::for_outputs(outputs);
        let (lanes, panels) = (width.channels(), panel_channels(outputs, width) / width.channels());
        let mut weights = vec![0.0; 4 * panels * PHASE_TAPS * inputs * lanes];
        for phase in 0..4 {
            for o in 0..outputs {
                let (panel, lane) = (o / lanes, o % lanes);
                for tap in 0..PHASE_TAPS {
                    let (ky, kx) = kernel_tap(phase, tap);
                    for i in 0..inputs {
                        let packed = (((phase * panels + panel) * PHASE_TAPS + tap) * inputs + i) * lanes + lane;
                        weights[packed] = kernel[((i * outputs + o) * KERNEL + ky) * KERNEL + kx];
                    }
                }
            }
        }
        let mut padded_bias = vec![0.0; panels * lanes];
        padded_bias[..outputs].copy_from_slice(bias);
        Self { in_channels: inputs, out_channels: outputs, in_size: spec.in_size, width, weights, bias: padded_bias }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        (self.weights.len() + self.bias.len()) * core::mem::size_of::<f32>()
    }

    /// Runs the layer on a padded channels-last input; as
    /// [`super::fast::PhaseLayer::forward`].
    ///
    /// # Panics
    ///
    /// When the CPU lacks AVX-512F ([`f32_supported`]). The engine builds
    /// panel layers only after that check.
    pub(crate) fn forward(&self, input: &[f32], mut sink: super::fast::Sink<'_>) {
        assert!(f32_supported(), "the f32 panel kernels need AVX-512F");
        let out_size = 2 * self.in_size;
        if let super::fast::Sink::Hidden(buffer) = &mut sink {
            buffer[..padded_len(self.out_channels, out_size)].fill(0.0);
        }
        let channels = padded_channels(self.in_channels);
        let input = &input[..padded_len(self.in_channels, self.in_size)];
        let lanes = self.width.channels();
        let panels = self.bias.len() / lanes;
        let panel_len = PHASE_TAPS * self.in_channels * lanes;

        for phase in 0..4 {
            let offsets = tap_offsets(phase, self.in_size, channels);
            for panel in 0..panels {
                let weights = &self.weights[(phase * panels + panel) * panel_len..][..panel_len];
                let bias = &self.bias[panel * lanes..][..lanes];
                for start in (0..self.in_size * self.in_size).step_by(self.width.pixels()) {
                    let block = PixelBlock::new(
                        start,
                        self.width,
                        self.in_size,
                        channels,
                        &offsets,
                        self.in_channels,
                        input.len(),
                    );
                    let mut sums = [[0.0f32; MAX_CHANNELS]; MAX_PIXELS];
                    run_f32(self.width, input, &block, self.in_channels, weights, bias, &mut sums);
                    self.store(&mut sink, phase, panel, start, &block, &sums);
                }
            }
        }
    }

    /// Writes one block's sums with the layer's activation.
    fn store(
        &self,
        sink: &mut super::fast::Sink<'_>,
        phase: usize,
        panel: usize,
        start: usize,
        block: &PixelBlock,
        sums: &[[f32; MAX_CHANNELS]; MAX_PIXELS],
    ) {
        let first = panel * self.width.channels();
        let count = (self.out_channels - first).min(self.width.channels());
        match sink {
            super::fast::Sink::Hidden(buffer) => {
                let padded = padded_channels(self.out_channels);
                for (row, values) in sums.iter().enumerate().take(block.count) {
                    let pixel = PixelBlock::output_pixel(start, row, phase, self.in_size, 1);
                    let target = &mut buffer[pixel * padded + first..][..count];
                    target.iter_mut().zip(values).for_each(|(t, &v)| *t = v.max(0.0));
                }
            }
            super::fast::Sink::Image(image) => {
                let plane = 4 * self.in_size * self.in_size;
                for (row, values) in sums.iter().enumerate().take(block.count) {
                    let pixel = PixelBlock::output_pixel(start, row, phase, self.in_size, 0);
                    for (lane, &v) in values.iter().enumerate().take(count) {
                        image[(first + lane) * plane + pixel] = libm::tanhf(v);
                    }
                }
            }
        }
    }
}

/// Runs the f32 microkernel of `width` on one block.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn run_f32(
    width: Width,
    input: &[f32],
    block: &PixelBlock,
    in_channels: usize,
    weights: &[f32],
    bias: &[f32],
    sums: &mut [[f32; MAX_CHANNELS]; MAX_PIXELS],
) {
    assert_eq!(weights.len(), PHASE_TAPS * in_channels * width.channels(), "weights of one panel");
    assert_eq!(bias.len(), width.channels(), "bias of one panel");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `PanelLayer::forward`, the only caller, asserted
    // `f32_supported`, so the CPU has AVX-512F. `PixelBlock::new` checked that `in_channels` values
    // from every base lie inside `input`, and the asserts above check the
    // weight and bias lengths the kernel reads.
    unsafe {
        match width {
            Width::Wide => {
                kernel_f32::<8, 2>(input.as_ptr(), &block.bases, in_channels, weights.as_ptr(), bias.as_ptr(), sums)
            }
            Width::Narrow => {
                kernel_f32::<16, 1>(input.as_ptr(), &block.bases, in_channels, weights.as_ptr(), bias.as_ptr(), sums)
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("panel layers are built only on x86_64");
}

/// f32 microkernel: `PIXELS` output pixels by `VECTORS` x 16 channels in
/// `zmm` accumulators started at the bias, over 4 taps by `in_channels`.
///
/// # Safety
///
/// The CPU has AVX-512F; `input.offset(bases[p][tap]) .. + in_channels` is
/// readable for every `p < PIXELS` and tap; `weights` has `4 * in_channels *
/// VECTORS * 16` values and `bias` `VECTORS * 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_f32<const PIXELS: usize, const VECTORS: usize>(
    input: *const f32,
    bases: &[[isize; PHASE_TAPS]; MAX_PIXELS],
    in_channels: usize,
    weights: *const f32,
    bias: *const f32,
    sums: &mut [[f32; MAX_CHANNELS]; MAX_PIXELS],
) {
    use core::arch::x86_64::*;

    let mut acc = [[_mm512_setzero_ps(); VECTORS]; PIXELS];
    for row in acc.iter_mut() {
        for (vector, lanes) in row.iter_mut().enumerate() {
            *lanes = _mm512_loadu_ps(bias.add(vector * LANES));
        }
    }

    let mut w = weights;
    for tap in 0..PHASE_TAPS {
        let mut rows = [input; PIXELS];
        for (p, row) in rows.iter_mut().enumerate() {
            *row = input.offset(bases[p][tap]);
        }
        for c in 0..in_channels {
            let mut panel = [_mm512_setzero_ps(); VECTORS];
            for (vector, lanes) in panel.iter_mut().enumerate() {
                *lanes = _mm512_loadu_ps(w.add(vector * LANES));
            }
            w = w.add(VECTORS * LANES);
            for p in 0..PIXELS {
                let value = _mm512_set1_ps(*rows[p].add(c));
                for vector in 0..VECTORS {
                    acc[p][vector] = _mm512_fmadd_ps(value, panel[vector], acc[p][vector]);
                }
            }
        }
    }

    for p in 0..PIXELS {
        for vector in 0..VECTORS {
            _mm512_storeu_ps(sums[p].as_mut_ptr().add(vector * LANES), acc[p][vector]);
        }
    }
}

/// A stride-2 layer packed in int8 panels for `vpdpbusd`.
#[derive(Clone, Debug)]
pub(crate) struct PanelLayer8 {
    in_channels: usize,
    out_channels: usize,
    in_size: usize,
    width: Width,
    /// `[4 phases, panels, 4 taps, in / 4, width, 4]`.
    weights: Vec<i8>,
    stage: OutputStage,
}

impl PanelLayer8 {
    /// Packs an int8 layer.
    pub(crate) fn new(parts: &super::int8::Int8Parts<'_>) -> Self {
        let spec = parts.spec;
        let (inputs, outputs) = (spec.in_channels, spec.out_channels);
        let width = Width::for_outputs(outputs);
        let (lanes, panels) = (width.channels(), panel_channels(outputs, width) / width.channels());
        let groups = grouped(inputs) / 4;
        let mut weights = vec![0; 4 * panels * PHASE_TAPS * groups * lanes * 4];
        for phase in 0..4 {
            for o in 0..outputs {
                let (panel, lane) = (o / lanes, o % lanes);
                for tap in 0..PHASE_TAPS {
                    let (ky, kx) = kernel_tap(phase, tap);
                    for i in 0..inputs {
                        let group = (((phase * panels + panel) * PHASE_TAPS + tap) * groups + i / 4) * lanes;
                        weights[(group + lane) * 4 + i % 4] =
                            parts.values[((i * outputs + o) * KERNEL + ky) * KERNEL + kx];
                    }
                }
            }
        }
        let stage = OutputStage::new(
            outputs,
            panels * lanes,
            parts.input_scale,
            parts.weight_scales,
            parts.bias,
            parts.next_scale,
        );
        Self { in_channels: inputs, out_channels: outputs, in_size: spec.in_size, width, weights, stage }
    }

    /// Bytes of the packed tensors.
    pub(crate) fn bytes(&self) -> usize {
        self.weights.len() + self.stage.bytes()
    }

    /// Runs the layer on a padded channels-last input of unsigned bytes.
    ///
    /// # Shapes
    ///
    /// As [`super::fast::PhaseLayer::forward`], with `u8` activations in
    /// `0..=127`.
    ///
    /// # Panics
    ///
    /// When the CPU lacks AVX-512F or AVX-512 VNNI ([`int8_supported`]). The
    /// engine builds panel layers only after that check.
    pub(crate) fn forward(&self, input: &[u8], mut sink: Sink8<'_>) {
        assert!(int8_supported(), "the int8 panel kernels need AVX-512F and AVX-512 VNNI");
        let out_size = 2 * self.in_size;
        if let Sink8::Hidden(buffer) = &mut sink {
            buffer[..padded_len(self.out_channels, out_size)].fill(0);
        }
        let channels = padded_channels(self.in_channels);
        let input = &input[..padded_len(self.in_channels, self.in_size)];
        let lanes = self.width.channels();
        let panels = self.stage.multiplier.len() / lanes;
        let groups = grouped(self.in_channels) / 4;
        let panel_len = PHASE_TAPS * groups * lanes * 4;

        for phase in 0..4 {
            let offsets = tap_offsets(phase, self.in_size, channels);
            for panel in 0..panels {
                let weights = &self.weights[(phase * panels + panel) * panel_len..][..panel_len];
                for start in (0..self.in_size * self.in_size).step_by(self.width.pixels()) {
                    let block =
                        PixelBlock::new(start, self.width, self.in_size, channels, &offsets, 4 * groups, input.len());
                    let mut sums = [[0i32; MAX_CHANNELS]; MAX_PIXELS];
                    run_int8(self.width, input, &block, groups, weights, &mut sums);
                    self.store(&mut sink, phase, panel, start, &block, &sums);
                }
            }
        }
    }

    /// Writes one block's sums through the output stage.
    fn store(
        &self,
        sink: &mut Sink8<'_>,
        phase: usize,
        panel: usize,
        start: usize,
        block: &PixelBlock,
        sums: &[[i32; MAX_CHANNELS]; MAX_PIXELS],
    ) {
        let first = panel * self.width.channels();
        let count = (self.out_channels - first).min(self.width.channels());
        let multiplier = &self.stage.multiplier[first..][..count];
        let shift = &self.stage.shift[first..][..count];
        match sink {
            Sink8::Hidden(buffer) => {
                let padded = padded_channels(self.out_channels);
                for (row, values) in sums.iter().enumerate().take(block.count) {
                    let pixel = PixelBlock::output_pixel(start, row, phase, self.in_size, 1);
                    let target = &mut buffer[pixel * padded + first..][..count];
                    for (lane, t) in target.iter_mut().enumerate() {
                        *t = requantize(values[lane], multiplier[lane], shift[lane]) as u8;
                    }
                }
            }
            Sink8::Image(image) => {
                let plane = 4 * self.in_size * self.in_size;
                for (row, values) in sums.iter().enumerate().take(block.count) {
                    let pixel = PixelBlock::output_pixel(start, row, phase, self.in_size, 0);
                    for lane in 0..count {
                        let real = values[lane] as f32 * multiplier[lane] + shift[lane];
                        image[(first + lane) * plane + pixel] = libm::tanhf(real);
                    }
                }
            }
        }
    }
}

/// Destination of an int8 panel layer's result.
#[derive(Debug)]
pub(crate) enum Sink8<'a> {
    /// Requantized ReLU output, `0..=127`, into a padded channels-last buffer.
    Hidden(&'a mut [u8]),
    /// Tanh into a `[channels, size, size]` f32 image.
    Image(&'a mut [f32]),
}

/// Runs the int8 microkernel of `width` on one block.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn run_int8(
    width: Width,
    input: &[u8],
    block: &PixelBlock,
    groups: usize,
    weights: &[i8],
    sums: &mut [[i32; MAX_CHANNELS]; MAX_PIXELS],
) {
    assert_eq!(weights.len(), PHASE_TAPS * groups * width.channels() * 4, "weights of one panel");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `PanelLayer8::forward`, the only caller, asserted
    // `int8_supported`, so the CPU has AVX-512F and VNNI. `PixelBlock::new` checked that `4 * groups`
    // bytes from every base lie inside `input`, and the assert above checks
    // the weight length the kernel reads.
    unsafe {
        match width {
            Width::Wide => kernel_int8::<8, 2>(input.as_ptr(), &block.bases, groups, weights.as_ptr(), sums),
            Width::Narrow => kernel_int8::<16, 1>(input.as_ptr(), &block.bases, groups, weights.as_ptr(), sums),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("panel layers are built only on x86_64");
}

/// int8 microkernel: `PIXELS` output pixels by `VECTORS` x 16 channels of
/// i32 sums, each `vpdpbusd` adding four input channels.
///
/// # Safety
///
/// The CPU has AVX-512F and AVX-512 VNNI; `input.offset(bases[p][tap]) .. +
/// 4 * groups` is readable for every `p < PIXELS` and tap; `weights` has `4
/// * groups * VECTORS * 16 * 4` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn kernel_int8<const PIXELS: usize, const VECTORS: usize>(
    input: *const u8,
    bases: &[[isize; PHASE_TAPS]; MAX_PIXELS],
    groups: usize,
    weights: *const i8,
    sums: &mut [[i32; MAX_CHANNELS]; MAX_PIXELS],
) {
    use core::arch::x86_64::*;

    let mut acc = [[_mm512_setzero_si512(); VECTORS]; PIXELS];
    let mut w = weights;
    for tap in 0..PHASE_TAPS {
        let mut rows = [input; PIXELS];
        for (p, row) in rows.iter_mut().enumerate() {
            *row = input.offset(bases[p][tap]);
        }
        for group in 0..groups {
            let mut panel = [_mm512_setzero_si512(); VECTORS];
            for (vector, lanes) in panel.iter_mut().enumerate() {
                *lanes = _mm512_loadu_si512(w.add(vector * 4 * LANES).cast());
            }
            w = w.add(VECTORS * 4 * LANES);
            for p in 0..PIXELS {
                let quad = rows[p].add(4 * group).cast::<i32>().read_unaligned();
                let value = _mm512_set1_epi32(quad);
                for vector in 0..VECTORS {
                    acc[p][vector] = _mm512_dpbusd_epi32(acc[p][vector], value, panel[vector]);
                }
            }
        }
    }

    for p in 0..PIXELS {
        for vector in 0..VECTORS {
            _mm512_storeu_si512(sums[p].as_mut_ptr().add(vector * LANES).cast(), acc[p][vector]);
        }
    }
}
