//! The generator core: builds once, then generates faces without allocating.
//!
//! [`Engine::new`] takes a folded generator ([`QuantizedGenerator`], from the
//! weight file or from [`crate::quantized::fold_batch_norm`]) and copies its
//! tensors into the layout the kernels read. That is the only allocation.
//! Every call after it works in two caller-provided buffers:
//!
//! - a scratch buffer of [`Engine::scratch_len`] `f32` words, which holds the
//!   latent and the activations between layers;
//! - the output, [`Engine::output_len`] `f32` values or
//!   [`Engine::pixel_len`] bytes.
//!
//! Both sizes are known once the engine is built, so a microcontroller can
//! place the buffers in static memory.
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
mod scalar;

use alloc::vec::Vec;

pub use error::EngineError;

use crate::latent::fill_latent;
use crate::pixel;
use crate::quantized::{QuantizedError, QuantizedGenerator};
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

/// One layer in the engine's layout.
#[derive(Clone, Debug)]
struct EngineLayer {
    spec: LayerSpec,
    /// `[in_channels, out_channels, 4, 4]`, BatchNorm folded in.
    kernel: Vec<f32>,
    /// `[out_channels]`.
    bias: Vec<f32>,
}

/// A generator ready to run; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Engine {
    spec: GeneratorSpec,
    layers: Vec<EngineLayer>,
    /// Largest layer output, in values.
    max_activation: usize,
}

impl Engine {
    /// Builds an engine from a folded generator.
    ///
    /// # Errors
    ///
    /// [`EngineError::Generator`] when `generator` fails
    /// [`QuantizedGenerator::validate`], and [`EngineError::MemoryLimit`]
    /// when its weights plus scratch would exceed `config.memory_limit`.
    pub fn new(generator: &QuantizedGenerator, config: &EngineConfig) -> Result<Self, EngineError> {
        generator.spec.validate().map_err(|err| EngineError::Generator(QuantizedError::Spec(err)))?;
        let specs = generator.spec.layers();
        check_memory(&specs, generator.spec.nz, config.memory_limit)?;
        generator.validate().map_err(EngineError::Generator)?;

        let layers = specs
            .iter()
            .zip(&generator.layers)
            .map(|(spec, layer)| EngineLayer { spec: *spec, kernel: layer.kernel.dequantize(), bias: layer.bias.clone() })
            .collect();
        Ok(Self { spec: generator.spec, layers, max_activation: max_activation(&specs) })
    }

    /// The generator's architecture.
    pub fn spec(&self) -> GeneratorSpec {
        self.spec
    }

    /// `f32` words of scratch that every generate call needs.
    pub fn scratch_len(&self) -> usize {
        self.spec.nz + 2 * self.max_activation
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
        out.copy_from_slice(self.run(input, buffers));
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
        let image = self.run(latent, buffers);
        write_pixels(image, self.spec.image_size, format, out);
        Ok(())
    }

    /// Runs every layer, ping-ponging between the two halves of `buffers`
    /// (each `max_activation` words), and returns the image.
    ///
    /// # Shapes
    ///
    /// - `input`: `[nz]`.
    /// - returns: `[nc, image_size, image_size]`, inside `buffers`.
    fn run<'a>(&self, input: &[f32], buffers: &'a mut [f32]) -> &'a [f32] {
        let (mut source, mut target) = buffers.split_at_mut(self.max_activation);
        let mut source_len = 0;

        for (index, layer) in self.layers.iter().enumerate() {
            let len = layer.output_len();
            let from: &[f32] = if index == 0 { input } else { &source[..source_len] };
            scalar::layer_forward(&layer.spec, &layer.kernel, &layer.bias, from, &mut target[..len]);

            core::mem::swap(&mut source, &mut target);
            source_len = len;
        }

        let image: &'a [f32] = source;
        &image[..source_len]
    }
}

impl EngineLayer {
    fn output_len(&self) -> usize {
        self.spec.out_channels * self.spec.out_size * self.spec.out_size
    }
}

/// Largest layer output, in values.
fn max_activation(specs: &[LayerSpec]) -> usize {
    specs.iter().map(|layer| layer.out_channels * layer.out_size * layer.out_size).max().unwrap_or(0)
}

/// Rejects a generator whose f32 weights plus scratch exceed `limit` bytes,
/// computed from the declared sizes with overflow checks.
fn check_memory(specs: &[LayerSpec], nz: usize, limit: usize) -> Result<(), EngineError> {
    let words = specs.iter().try_fold(nz, |total: usize, layer| {
        let activation = layer.out_channels.checked_mul(layer.out_size)?.checked_mul(layer.out_size)?;
        total.checked_add(layer.weight_len())?.checked_add(layer.out_channels)?.checked_add(2 * activation)
    });
    let needed = words.and_then(|words| words.checked_mul(core::mem::size_of::<f32>())).unwrap_or(usize::MAX);
    if needed > limit {
        return Err(EngineError::MemoryLimit { needed, limit });
    }
    Ok(())
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
mod tests {
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
        assert_eq!(err, EngineError::Length { buffer: "scratch", expected: engine.scratch_len(), found: scratch.len() });

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
        let huge = QuantizedGenerator { spec: GeneratorSpec { nz: 100, ngf: 65536, nc: 3, image_size: 1024 }, layers: Vec::new() };
        let err = Engine::new(&huge, &EngineConfig::default()).unwrap_err();
        assert!(matches!(err, EngineError::MemoryLimit { .. }), "{err:?}");
    }
}
