//! The generator core: builds once, then generates faces without allocating.
//!
//! [`Engine::new`] takes a folded generator ([`QuantizedGenerator`], from the
//! weight file or from [`crate::quantized::fold_batch_norm`]) and copies its
//! tensors into the layout the kernels read. That is the only allocation.
//! Every call after it works in two caller-provided buffers:
//!
//! - a scratch buffer of [`Engine::scratch_len`] `f32` words, which contains the
//!   latent and the activations between layers;
//! - the output, [`Engine::output_len`] `f32` values or
//!   [`Engine::pixel_len`] bytes.
//!
//! Both sizes are known once the engine is built, so a microcontroller can
//! place the buffers in static memory.
//!
//! [`Engine::new`] also picks the kernels once: AVX-512 weight panels where
//! the CPU has them ([`Kernels::Panels`]), register blocks otherwise.
//!
//! ```
//! use dcgan_runtime::engine::{Engine, EngineConfig, PixelFormat};
//! use dcgan_runtime::quantized::fold_batch_norm;
//! use dcgan_runtime::reference::random_weights;
//! use dcgan_runtime::GeneratorSpec;
//!
//! let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
//! let generator = fold_batch_norm(&random_weights(spec, 1).unwrap()).unwrap();
//! let engine = Engine::new(&generator, &EngineConfig::default()).unwrap();
//!
//! let mut scratch = vec![0.0f32; engine.scratch_len()];
//! let mut pixels = vec![0u8; engine.pixel_len(PixelFormat::Rgb565Le)];
//! engine.generate_face(7, 0, &mut scratch, PixelFormat::Rgb565Le, &mut pixels).unwrap();
//! ```

mod error;
mod fast;
mod int8;
mod panels;
#[cfg_attr(not(test), allow(dead_code))]
mod scalar;

use alloc::vec::Vec;

pub use error::EngineError;

use crate::latent::fill_latent;
use crate::pixel;
use crate::quantized::{Kernel, QuantizedError, QuantizedGenerator};
use crate::spec::{GeneratorSpec, LayerSpec};

/// Default of [`EngineConfig::memory_limit`]: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Settings of [`Engine::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest number of bytes the engine may need for its weights plus one
    /// scratch buffer. A generator whose declared sizes need more is rejected
    /// before anything is allocated.
    pub memory_limit: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { memory_limit: DEFAULT_MEMORY_LIMIT }
    }
}

/// Byte layout of generated pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes per pixel: red, green, blue.
    Rgb888,
    /// 2 bytes per pixel, 5-6-5 bits, least significant byte first.
    Rgb565Le,
    /// 2 bytes per pixel, 5-6-5 bits, most significant byte first.
    Rgb565Be,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb888 => 3,
            PixelFormat::Rgb565Le | PixelFormat::Rgb565Be => 2,
        }
    }
}

/// Arithmetic of an engine's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and activations (int8 kernels dequantized at build).
    F32,
    /// int8 weights and activations, i32 sums: the generator was all int8
    /// and carried activation scales.
    Int8,
}

impl Precision {
    /// Returns the precision an engine built from `generator` runs at: int8 when
    /// every kernel is int8 and the activation scales are present.
    pub fn of(generator: &QuantizedGenerator) -> Self {
        let all_int8 = generator.layers.iter().all(|layer| layer.kernel.is_int8());
        if all_int8 && !generator.activation_scales.is_empty() {
            Precision::Int8
        } else {
            Precision::F32
        }
    }
}

/// Kernel family of an engine's stride-2 layers, chosen once at build.
///
/// Both families compute the same layers. int8 results are bit-identical
/// across families and targets, and f32 results differ only by rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kernels {
    /// Register blocks of 4 pixels by 16 channels: AVX2 + FMA (detected at
    /// run time with `std`), NEON on aarch64, or portable code.
    Blocks,
    /// Packed weight panels and 8 x 32 or 16 x 16 register blocks on x86_64
    /// with AVX-512F, and AVX-512 VNNI for int8.
    Panels,
}

impl Kernels {
    /// Returns the fastest family this CPU runs at `precision`.
    ///
    /// With `std` the CPU is checked at run time; without it, the target
    /// features the crate was compiled for decide.
    pub fn detect(precision: Precision) -> Self {
        if Kernels::Panels.is_supported(precision) {
            Kernels::Panels
        } else {
            Kernels::Blocks
        }
    }

    /// Returns whether this CPU runs the family at `precision`.
    pub fn is_supported(self, precision: Precision) -> bool {
        match (self, precision) {
            (Kernels::Blocks, _) => true,
            (Kernels::Panels, Precision::F32) => panels::f32_supported(),
            (Kernels::Panels, Precision::Int8) => panels::int8_supported(),
        }
    }
}

/// The packed layers of one precision and kernel family. The first layer
/// projects the latent, every later one is a stride-2 transposed
/// convolution, and a valid spec has at least one of those.
#[derive(Clone, Debug)]
enum Plan {
    F32 { projection: fast::Projection, layers: Vec<fast::PhaseLayer> },
    F32Panels { projection: fast::Projection, layers: Vec<panels::PanelLayer> },
    Int8 { projection: int8::Projection8, layers: Vec<int8::PhaseLayer8> },
    Int8Panels { projection: int8::Projection8, layers: Vec<panels::PanelLayer8> },
}

impl Plan {
    /// Bytes of every packed tensor.
    fn bytes(&self) -> usize {
        match self {
            Plan::F32 { projection, layers } => projection.bytes() + layers.iter().map(|l| l.bytes()).sum::<usize>(),
            Plan::F32Panels { projection, layers } => {
                projection.bytes() + layers.iter().map(|l| l.bytes()).sum::<usize>()
            }
            Plan::Int8 { projection, layers } => projection.bytes() + layers.iter().map(|l| l.bytes()).sum::<usize>(),
            Plan::Int8Panels { projection, layers } => {
                projection.bytes() + layers.iter().map(|l| l.bytes()).sum::<usize>()
            }
        }
    }
}

/// A generator ready to run; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Engine {
    spec: GeneratorSpec,
    plan: Plan,
    /// Words of each of the two activation buffers in scratch.
    max_activation: usize,
}

impl Engine {
    /// Builds an engine from a folded generator.
    ///
    /// # Errors
    ///
    /// [`EngineError::Generator`] when `generator` fails
    /// [`QuantizedGenerator::validate`], and [`EngineError::MemoryLimit`]
    /// when its packed weights plus one scratch buffer would exceed
    /// `config.memory_limit`.
    pub fn new(generator: &QuantizedGenerator, config: &EngineConfig) -> Result<Self, EngineError> {
        Self::with_kernels(generator, config, Kernels::detect(Precision::of(generator)))
    }

    /// Builds an engine whose stride-2 layers run `kernels`, to compare the
    /// families or to test one. [`Engine::new`] picks the fastest.
    ///
    /// A family the CPU does not run ([`Kernels::is_supported`]) falls back
    /// to [`Kernels::Blocks`]; [`Engine::kernels`] returns the one in use.
    ///
    /// # Errors
    ///
    /// As [`Engine::new`].
    pub fn with_kernels(
        generator: &QuantizedGenerator,
        config: &EngineConfig,
        kernels: Kernels,
    ) -> Result<Self, EngineError> {
        generator.spec.validate().map_err(|err| EngineError::Generator(QuantizedError::Spec(err)))?;
        let specs = generator.spec.layers();
        let precision = Precision::of(generator);
        let kernels = if kernels.is_supported(precision) { kernels } else { Kernels::Blocks };
        let needed = check_memory(&generator.spec, &specs, precision, kernels, config.memory_limit)?;
        generator.validate().map_err(EngineError::Generator)?;

        let plan = match precision {
            Precision::Int8 => int8_plan(&specs, generator, kernels),
            Precision::F32 => f32_plan(&specs, generator, kernels),
        };
        let engine = Self { spec: generator.spec, plan, max_activation: max_activation(&specs) };
        debug_assert_eq!(needed, engine.plan.bytes() + engine.scratch_len() * core::mem::size_of::<f32>());
        Ok(engine)
    }

    /// Returns the generator's architecture.
    pub fn spec(&self) -> GeneratorSpec {
        self.spec
    }

    /// Returns the arithmetic the engine runs.
    pub fn precision(&self) -> Precision {
        match self.plan {
            Plan::F32 { .. } | Plan::F32Panels { .. } => Precision::F32,
            Plan::Int8 { .. } | Plan::Int8Panels { .. } => Precision::Int8,
        }
    }

    /// Returns the kernel family of the stride-2 layers.
    pub fn kernels(&self) -> Kernels {
        match self.plan {
            Plan::F32 { .. } | Plan::Int8 { .. } => Kernels::Blocks,
            Plan::F32Panels { .. } | Plan::Int8Panels { .. } => Kernels::Panels,
        }
    }

    /// `f32` words of scratch that every generate call needs.
    pub fn scratch_len(&self) -> usize {
        self.spec.nz + self.output_len() + 2 * self.max_activation
    }

    /// Values of one generated image, `nc * image_size * image_size`.
    pub fn output_len(&self) -> usize {
        self.spec.nc * self.spec.image_size * self.spec.image_size
    }

    /// Bytes of one generated image in `format`.
    pub fn pixel_len(&self, format: PixelFormat) -> usize {
        self.spec.image_size * self.spec.image_size * format.bytes_per_pixel()
    }

    /// Runs the generator on one latent.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[nz]`.
    /// - `scratch`: at least [`Engine::scratch_len`] words; its contents on
    ///   entry do not matter.
    /// - `out`: `[nc, image_size, image_size]` (CHW), values in `[-1, 1]`.
    ///
    /// # Errors
    ///
    /// [`EngineError::Length`] when a buffer has the wrong size.
    pub fn generate_into(&self, latent: &[f32], scratch: &mut [f32], out: &mut [f32]) -> Result<(), EngineError> {
        check_len("latent", self.spec.nz, latent.len(), true)?;
        check_len("scratch", self.scratch_len(), scratch.len(), false)?;
        check_len("output", self.output_len(), out.len(), true)?;

        let (input, buffers) = scratch.split_at_mut(self.spec.nz);
        input.copy_from_slice(latent);
        self.run(input, buffers, out);
        Ok(())
    }

    /// Generates face `index` of seed `seed` as pixels.
    ///
    /// The latent is the one [`crate::latent::fill_latent`] gives, so every
    /// backend draws the same face for the same `(seed, index)`.
    ///
    /// # Shapes
    ///
    /// - `scratch`: at least [`Engine::scratch_len`] words.
    /// - `out`: [`Engine::pixel_len`] bytes, rows top to bottom.
    ///
    /// # Errors
    ///
    /// [`EngineError::Length`] when a buffer has the wrong size, and
    /// [`EngineError::Channels`] when the generator does not make 3-channel
    /// images.
    pub fn generate_face(
        &self,
        seed: u64,
        index: u64,
        scratch: &mut [f32],
        format: PixelFormat,
        out: &mut [u8],
    ) -> Result<(), EngineError> {
        if self.spec.nc != 3 {
            return Err(EngineError::Channels { found: self.spec.nc });
        }
        check_len("scratch", self.scratch_len(), scratch.len(), false)?;
        check_len("pixel", self.pixel_len(format), out.len(), true)?;

        let (latent, buffers) = scratch.split_at_mut(self.spec.nz);
        fill_latent(seed, index, latent);
        let (image, rest) = buffers.split_at_mut(self.output_len());
        self.run(latent, rest, image);
        write_pixels(image, self.spec.image_size, format, out);
        Ok(())
    }

    /// Runs every layer, ping-ponging between the two halves of `buffers`
    /// (each `max_activation` words), and writes the image into `image`.
    ///
    /// # Shapes
    ///
    /// - `input`: `[nz]`.
    /// - `buffers`: at least `2 * max_activation` words.
    /// - `image`: `[nc, image_size, image_size]`.
    fn run(&self, input: &[f32], buffers: &mut [f32], image: &mut [f32]) {
        let (mut source, mut target) = buffers.split_at_mut(self.max_activation);
        match &self.plan {
            Plan::F32 { projection, layers } => {
                projection.forward(input, source);
                let last = layers.len() - 1;
                for (index, layer) in layers.iter().enumerate() {
                    let sink = if index == last { fast::Sink::Image(&mut *image) } else { fast::Sink::Hidden(target) };
                    layer.forward(source, sink);
                    core::mem::swap(&mut source, &mut target);
                }
            }
            Plan::F32Panels { projection, layers } => {
                projection.forward(input, source);
                let last = layers.len() - 1;
                for (index, layer) in layers.iter().enumerate() {
                    let sink = if index == last { fast::Sink::Image(&mut *image) } else { fast::Sink::Hidden(target) };
                    layer.forward(source, sink);
                    core::mem::swap(&mut source, &mut target);
                }
            }
            Plan::Int8Panels { projection, layers } => {
                projection.forward(input, as_i32(target), as_u8(source));
                let last = layers.len() - 1;
                for (index, layer) in layers.iter().enumerate() {
                    let sink = if index == last {
                        panels::Sink8::Image(&mut *image)
                    } else {
                        panels::Sink8::Hidden(as_u8(target))
                    };
                    layer.forward(as_u8(source), sink);
                    core::mem::swap(&mut source, &mut target);
                }
            }
            Plan::Int8 { projection, layers } => {
                projection.forward(input, as_i32(target), as_i16(source));
                let last = layers.len() - 1;
                for (index, layer) in layers.iter().enumerate() {
                    let sink = if index == last {
                        int8::Sink8::Image(&mut *image)
                    } else {
                        int8::Sink8::Hidden(as_i16(target))
                    };
                    layer.forward(as_i16(source), sink);
                    core::mem::swap(&mut source, &mut target);
                }
            }
        }
    }
}

/// Packs every layer for the f32 kernels, dequantizing int8 kernels.
fn f32_plan(specs: &[LayerSpec], generator: &QuantizedGenerator, kernels: Kernels) -> Plan {
    let layers = &generator.layers;
    let projection = fast::Projection::new(&specs[0], &layers[0].kernel.dequantize(), &layers[0].bias);
    let stride2 = specs[1..].iter().zip(&layers[1..]);
    match kernels {
        Kernels::Blocks => {
            let layers = stride2
                .map(|(spec, layer)| fast::PhaseLayer::new(spec, &layer.kernel.dequantize(), &layer.bias))
                .collect();
            Plan::F32 { projection, layers }
        }
        Kernels::Panels => {
            let layers = stride2
                .map(|(spec, layer)| panels::PanelLayer::new(spec, &layer.kernel.dequantize(), &layer.bias))
                .collect();
            Plan::F32Panels { projection, layers }
        }
    }
}

/// Packs every layer for the int8 kernels. The caller has checked that
/// every kernel is int8 and that the generator has activation scales.
fn int8_plan(specs: &[LayerSpec], generator: &QuantizedGenerator, kernels: Kernels) -> Plan {
    let scales = &generator.activation_scales;
    let parts = |index: usize| {
        let layer = &generator.layers[index];
        let (values, weight_scales): (&[i8], &[f32]) = match &layer.kernel {
            Kernel::Int8 { values, scales } => (values, scales),
            Kernel::F32(_) => (&[], &[]),
        };
        int8::Int8Parts {
            spec: &specs[index],
            values,
            weight_scales,
            bias: &layer.bias,
            input_scale: scales[index],
            next_scale: scales.get(index + 1).copied(),
        }
    };
    let projection = int8::Projection8::new(&parts(0));
    match kernels {
        Kernels::Blocks => {
            let layers = (1..specs.len()).map(|index| int8::PhaseLayer8::new(&parts(index))).collect();
            Plan::Int8 { projection, layers }
        }
        Kernels::Panels => {
            let layers = (1..specs.len()).map(|index| panels::PanelLayer8::new(&parts(index))).collect();
            Plan::Int8Panels { projection, layers }
        }
    }
}

/// Views f32 scratch words as bytes, four per word.
fn as_u8(words: &mut [f32]) -> &mut [u8] {
    // SAFETY: the length covers the same bytes, u8 has alignment 1, and every
    // bit pattern is a valid u8.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) }
}

/// Views f32 scratch words as `i16` values, two per word.
fn as_i16(words: &mut [f32]) -> &mut [i16] {
    // SAFETY: f32 is at least as aligned as i16, the length covers the same
    // bytes, and every bit pattern is a valid i16.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<i16>(), words.len() * 2) }
}

/// Views f32 scratch words as `i32` values.
fn as_i32(words: &mut [f32]) -> &mut [i32] {
    // SAFETY: f32 and i32 have the same size and alignment, and every bit
    // pattern is a valid i32.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<i32>(), words.len()) }
}

/// Words of one activation buffer: the largest padded channels-last layer
/// output, or the int8 projection's i32 sums, whichever is larger.
fn max_activation(specs: &[LayerSpec]) -> usize {
    specs
        .iter()
        .map(|layer| {
            fast::padded_len(layer.out_channels, layer.out_size).max(16 * fast::padded_channels(layer.out_channels))
        })
        .max()
        .unwrap_or(0)
}

/// Rejects a generator whose packed tensors plus one scratch buffer exceed
/// `limit` bytes, computed from the declared sizes with overflow checks, and
/// returns those bytes.
fn check_memory(
    spec: &GeneratorSpec,
    specs: &[LayerSpec],
    precision: Precision,
    kernels: Kernels,
    limit: usize,
) -> Result<usize, EngineError> {
    let needed = planned_bytes(spec, specs, precision, kernels).unwrap_or(usize::MAX);
    if needed > limit {
        return Err(EngineError::MemoryLimit { needed, limit });
    }
    Ok(needed)
}

/// Bytes that [`Engine::with_kernels`] allocates for the packed tensors plus
/// the bytes of one scratch buffer, or `None` on overflow. Each term mirrors
/// the vectors one layer constructor allocates.
fn planned_bytes(spec: &GeneratorSpec, specs: &[LayerSpec], precision: Precision, kernels: Kernels) -> Option<usize> {
    const F32: usize = core::mem::size_of::<f32>();
    let (first, rest) = specs.split_first()?;

    // The projection: `[in, 16 taps, out_padded]` f32 or i8 weights, plus a
    // bias (f32) or two output-stage factors (int8) per padded channel.
    let padded = first.out_channels.checked_add(fast::BLOCK - 1)? / fast::BLOCK * fast::BLOCK;
    let projection = first.in_channels.checked_mul(16)?.checked_mul(padded)?;
    let mut total = match precision {
        Precision::F32 => projection.checked_add(padded)?.checked_mul(F32)?,
        Precision::Int8 => projection.checked_add(padded.checked_mul(2 * F32)?)?,
    };

    // Stride-2 layers: 16 weights per input and output channel, both rounded
    // up as the kernel family packs them.
    for layer in rest {
        let bytes = match (precision, kernels) {
            (Precision::F32, Kernels::Blocks) => {
                let padded = layer.out_channels.checked_add(fast::BLOCK - 1)? / fast::BLOCK * fast::BLOCK;
                layer.in_channels.checked_mul(16)?.checked_add(1)?.checked_mul(padded)?.checked_mul(F32)?
            }
            (Precision::F32, Kernels::Panels) => {
                let padded = panels::padded_outputs(layer.out_channels)?;
                layer.in_channels.checked_mul(16)?.checked_add(1)?.checked_mul(padded)?.checked_mul(F32)?
            }
            (Precision::Int8, Kernels::Blocks) => {
                let padded = layer.out_channels.checked_add(fast::BLOCK - 1)? / fast::BLOCK * fast::BLOCK;
                let inputs = layer.in_channels.checked_add(fast::BLOCK - 1)? / fast::BLOCK * fast::BLOCK;
                let weights = inputs.checked_mul(16)?.checked_mul(padded)?.checked_mul(2)?;
                weights.checked_add(padded.checked_mul(2 * F32)?)?
            }
            (Precision::Int8, Kernels::Panels) => {
                let padded = panels::padded_outputs(layer.out_channels)?;
                let inputs = layer.in_channels.checked_add(3)? / 4 * 4;
                let weights = inputs.checked_mul(16)?.checked_mul(padded)?;
                weights.checked_add(padded.checked_mul(2 * F32)?)?
            }
        };
        total = total.checked_add(bytes)?;
    }

    // One scratch buffer: latent, image and two activation buffers.
    let mut activation = 0usize;
    for layer in specs {
        let padded = layer.out_channels.checked_add(fast::BLOCK - 1)? / fast::BLOCK * fast::BLOCK;
        let border = layer.out_size.checked_add(2)?;
        activation = activation.max(border.checked_mul(border)?.checked_mul(padded)?).max(padded.checked_mul(16)?);
    }
    let image = spec.nc.checked_mul(spec.image_size)?.checked_mul(spec.image_size)?;
    let scratch = spec.nz.checked_add(image)?.checked_add(activation.checked_mul(2)?)?;
    total.checked_add(scratch.checked_mul(F32)?)
}

/// Checks a buffer length; `exact` buffers must match, others may be longer.
fn check_len(buffer: &'static str, expected: usize, found: usize, exact: bool) -> Result<(), EngineError> {
    let fits = if exact { found == expected } else { found >= expected };
    if fits {
        Ok(())
    } else {
        Err(EngineError::Length { buffer, expected, found })
    }
}

/// Converts a `[3, size, size]` image in `[-1, 1]` to pixels in `format`.
fn write_pixels(chw: &[f32], size: usize, format: PixelFormat, out: &mut [u8]) {
    match format {
        PixelFormat::Rgb888 => pixel::chw_to_rgb888(chw, size, out),
        PixelFormat::Rgb565Le => pixel::chw_to_rgb565(chw, size, out, false),
        PixelFormat::Rgb565Be => pixel::chw_to_rgb565(chw, size, out, true),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod engine_tests {
    use alloc::vec;

    use super::*;
    use crate::latent::fill_latents;
    use crate::quantized::fold_batch_norm;
    use crate::reference::{self, random_weights};

    fn small_spec() -> GeneratorSpec {
        GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 }
    }

    fn engine(seed: u64) -> (crate::weights::GeneratorWeights, Engine) {
        let weights = random_weights(small_spec(), seed).unwrap();
        let engine = Engine::new(&fold_batch_norm(&weights).unwrap(), &EngineConfig::default()).unwrap();
        (weights, engine)
    }

    #[test]
    fn matches_reference() {
        let (weights, engine) = engine(3);
        let mut latent = vec![0.0; 8];
        fill_latents(5, 2, 8, &mut latent);

        let expected = reference::generate(&weights, &latent, 1).unwrap();
        let mut scratch = vec![f32::NAN; engine.scratch_len()];
        let mut out = vec![0.0; engine.output_len()];
        engine.generate_into(&latent, &mut scratch, &mut out).unwrap();

        let diff = expected.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-5, "max abs difference {diff}");
    }

    #[test]
    fn face_pixels_match_generate_into() {
        let (_, engine) = engine(4);
        let mut scratch = vec![0.0; engine.scratch_len()];
        let mut latent = vec![0.0; 8];
        fill_latents(9, 1, 8, &mut latent);
        let mut image = vec![0.0; engine.output_len()];
        engine.generate_into(&latent, &mut scratch, &mut image).unwrap();
        let mut expected = vec![0u8; engine.pixel_len(PixelFormat::Rgb888)];
        pixel::chw_to_rgb888(&image, 16, &mut expected);

        let mut pixels = vec![0u8; expected.len()];
        engine.generate_face(9, 1, &mut scratch, PixelFormat::Rgb888, &mut pixels).unwrap();
        assert_eq!(pixels, expected);
    }

    #[test]
    fn wrong_buffers_are_rejected() {
        let (_, engine) = engine(1);
        let mut scratch = vec![0.0; engine.scratch_len() - 1];
        let mut out = vec![0u8; engine.pixel_len(PixelFormat::Rgb565Be)];
        let err = engine.generate_face(0, 0, &mut scratch, PixelFormat::Rgb565Be, &mut out).unwrap_err();
        assert_eq!(
            err,
            EngineError::Length { buffer: "scratch", expected: engine.scratch_len(), found: scratch.len() }
        );

        let mut scratch = vec![0.0; engine.scratch_len()];
        let err = engine.generate_face(0, 0, &mut scratch, PixelFormat::Rgb888, &mut out).unwrap_err();
        assert_eq!(err, EngineError::Length { buffer: "pixel", expected: 16 * 16 * 3, found: 16 * 16 * 2 });
    }

    #[test]
    fn memory_limit_is_checked_before_allocating() {
        let (weights, _) = engine(1);
        let folded = fold_batch_norm(&weights).unwrap();
        let err = Engine::new(&folded, &EngineConfig { memory_limit: 1024 }).unwrap_err();
        assert!(matches!(err, EngineError::MemoryLimit { limit: 1024, .. }), "{err:?}");

        // A declared size far beyond any device is rejected from the spec alone.
        let huge = QuantizedGenerator {
            spec: GeneratorSpec { nz: 100, ngf: 65536, nc: 3, image_size: 1024 },
            layers: Vec::new(),
            activation_scales: Vec::new(),
        };
        let err = Engine::new(&huge, &EngineConfig::default()).unwrap_err();
        assert!(matches!(err, EngineError::MemoryLimit { .. }), "{err:?}");
    }
}
