//! The generator core against tract, its int8 path against its f32 path,
//! the int8 results pinned by a hash, and its errors.

mod common;

use common::{max_abs_diff, weights, write_model, SMALL};
use dcgan_runtime::engine::{Engine, EngineConfig, EngineError, PixelFormat, Precision};
use dcgan_runtime::latent::fill_latent;
use dcgan_runtime::quantized::{
    calibrate_activation_scales, fold_batch_norm, QuantizedError, CALIBRATION_LATENTS, CALIBRATION_SEED,
};
use dcgan_runtime::weight_file::{self, crc32, WeightFileError};
use dcgan_runtime::{GeneratorSpec, QuantizedGenerator, TractGenerator};

/// A mid-size generator: 32x32 RGB, enough channels for several register blocks.
const MEDIUM: GeneratorSpec = GeneratorSpec { nz: 20, ngf: 24, nc: 3, image_size: 32 };

fn int8_generator(spec: GeneratorSpec, seed: u64) -> QuantizedGenerator {
    let folded = fold_batch_norm(&weights(spec, seed)).unwrap();
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, CALIBRATION_SEED, CALIBRATION_LATENTS).unwrap();
    int8
}

fn generate(engine: &Engine, seed: u64, index: u64) -> Vec<f32> {
    let mut latent = vec![0.0; engine.spec().nz];
    fill_latent(seed, index, &mut latent);
    let mut scratch = vec![0.0; engine.scratch_len()];
    let mut out = vec![0.0; engine.output_len()];
    engine.generate_into(&latent, &mut scratch, &mut out).unwrap();
    out
}

/// Peak signal-to-noise ratio of images in `[-1, 1]` (peak-to-peak 2).
fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (4.0 / mse).log10()
}

#[test]
fn f32_core_matches_tract() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, seed) in [(SMALL, 11), (MEDIUM, 12)] {
        let weights = weights(spec, seed);
        let mut tract = TractGenerator::load(write_model(dir.path(), "g.onnx", &weights)).unwrap();
        let engine = Engine::new(&fold_batch_norm(&weights).unwrap(), &EngineConfig::default()).unwrap();

        for index in 0..3 {
            let mut latent = vec![0.0; spec.nz];
            fill_latent(5, index, &mut latent);
            let expected = tract.generate(&latent, 1).unwrap();
            let diff = max_abs_diff(&generate(&engine, 5, index), &expected);
            assert!(diff < 1e-4, "{spec:?} face {index}: max abs difference {diff}");
        }
    }
}

#[test]
fn int8_core_is_close_to_f32_core() {
    let folded = fold_batch_norm(&weights(MEDIUM, 21)).unwrap();
    let f32_engine = Engine::new(&folded, &EngineConfig::default()).unwrap();
    let int8_engine = Engine::new(&int8_generator(MEDIUM, 21), &EngineConfig::default()).unwrap();
    assert_eq!(int8_engine.precision(), Precision::Int8);

    for index in 0..4 {
        let value = psnr(&generate(&int8_engine, 3, index), &generate(&f32_engine, 3, index));
        // Random weights; a trained generator is held to 35 dB by its export check.
        assert!(value > 25.0, "face {index}: PSNR {value:.1} dB");
    }
}

/// CRC-32 of the RGB888 pixels of faces 0..4 of seed 42 from the int8 core
/// on `int8_generator(MEDIUM, 7)`. Integer sums and a fixed order of f32
/// steps make this the same on every target; x86_64 and aarch64 (under
/// qemu) must both reproduce it.
const INT8_GOLDEN_CRC: u32 = 0x9a75_0ab8;

#[test]
fn int8_pixels_match_golden_hash() {
    let engine = Engine::new(&int8_generator(MEDIUM, 7), &EngineConfig::default()).unwrap();
    let mut scratch = vec![0.0; engine.scratch_len()];
    let mut pixels = Vec::new();
    for index in 0..4 {
        let mut face = vec![0u8; engine.pixel_len(PixelFormat::Rgb888)];
        engine.generate_face(42, index, &mut scratch, PixelFormat::Rgb888, &mut face).unwrap();
        pixels.extend_from_slice(&face);
    }
    assert_eq!(crc32(&pixels), INT8_GOLDEN_CRC, "CRC-32 {:#010x}", crc32(&pixels));
}

#[test]
fn weight_file_round_trip_keeps_int8_path() {
    let int8 = int8_generator(SMALL, 2);
    let read = weight_file::read(&weight_file::write(&int8).unwrap()).unwrap();
    assert_eq!(read.activation_scales, int8.activation_scales);

    let engine = Engine::new(&read, &EngineConfig::default()).unwrap();
    assert_eq!(engine.precision(), Precision::Int8);
    let original = Engine::new(&int8, &EngineConfig::default()).unwrap();
    assert_eq!(generate(&engine, 1, 0), generate(&original, 1, 0));
}

/// Rewrites the CRC-32 after a test edits a weight file.
fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 4;
    let checksum = crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&checksum.to_le_bytes());
}

#[test]
fn weight_file_with_bad_activation_scale_is_rejected() {
    let int8 = int8_generator(SMALL, 2);
    let mut bytes = weight_file::write(&int8).unwrap();

    // The last scale sits just before the checksum.
    let end = bytes.len() - 4;
    bytes[end - 4..end].copy_from_slice(&(-1.0f32).to_le_bytes());
    reseal(&mut bytes);
    let err = weight_file::read(&bytes).unwrap_err();
    let expected = QuantizedError::Value { layer: 2, tensor: "activation scales", index: 2 };
    assert_eq!(err, WeightFileError::Tensors(expected));
    assert!(err.to_string().contains("activation scales"), "{err}");
}

#[test]
fn weight_file_with_wrong_scale_count_is_rejected() {
    let int8 = int8_generator(SMALL, 2);
    let mut bytes = weight_file::write(&int8).unwrap();

    // The count of 3 scales sits before the 3 values and the checksum.
    let at = bytes.len() - 4 - 3 * 4 - 4;
    bytes[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bytes);
    let err = weight_file::read(&bytes).unwrap_err();
    assert!(matches!(err, WeightFileError::Field { field: "activation scale count", found: 2, .. }), "{err:?}");
}

#[test]
fn version_1_file_is_still_read() {
    let mut int8 = int8_generator(SMALL, 2);
    int8.activation_scales.clear();
    let mut bytes = weight_file::write(&int8).unwrap();

    // A version 1 file is a version 2 file without the (empty) scale section.
    let end = bytes.len() - 4;
    bytes.drain(end - 4..end);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let length = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&length.to_le_bytes());
    reseal(&mut bytes);

    let read = weight_file::read(&bytes).unwrap();
    assert!(read.activation_scales.is_empty());
    let engine = Engine::new(&read, &EngineConfig::default()).unwrap();
    assert_eq!(engine.precision(), Precision::F32);
}

#[test]
fn generator_over_memory_limit_is_rejected() {
    let int8 = int8_generator(MEDIUM, 2);
    let err = Engine::new(&int8, &EngineConfig { memory_limit: 100_000 }).unwrap_err();
    assert!(matches!(err, EngineError::MemoryLimit { limit: 100_000, .. }), "{err:?}");
    assert!(err.to_string().contains("raise the memory limit"), "{err}");
}

#[test]
fn wrong_buffer_sizes_are_rejected() {
    let engine = Engine::new(&int8_generator(SMALL, 2), &EngineConfig::default()).unwrap();
    let latent = vec![0.0; SMALL.nz + 1];
    let mut scratch = vec![0.0; engine.scratch_len()];
    let mut out = vec![0.0; engine.output_len()];
    let err = engine.generate_into(&latent, &mut scratch, &mut out).unwrap_err();
    assert_eq!(err, EngineError::Length { buffer: "latent", expected: SMALL.nz, found: SMALL.nz + 1 });

    let mut short = vec![0.0; engine.output_len() - 1];
    let err = engine.generate_into(&latent[..SMALL.nz], &mut scratch, &mut short).unwrap_err();
    assert_eq!(err, EngineError::Length { buffer: "output", expected: engine.output_len(), found: short.len() });
}
