//! Fast and integer kernels against the scalar kernels, on random shapes.

use alloc::vec;
use alloc::vec::Vec;

use super::fast::{self, from_padded, to_padded};
use super::panels;
use super::*;
use crate::latent::fill_latents;
use crate::quantized::{calibrate_activation_scales, fold_batch_norm, generate};
use crate::reference::random_weights;
use crate::spec::Activation;

/// A small xorshift generator, so the shapes and values are reproducible.
struct Shapes(u64);

impl Shapes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    fn value(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn values(&mut self, count: usize) -> Vec<f32> {
        (0..count).map(|_| self.value()).collect()
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn stride2_spec(in_channels: usize, out_channels: usize, in_size: usize, activation: Activation) -> LayerSpec {
    LayerSpec {
        in_channels,
        out_channels,
        stride: 2,
        padding: 1,
        in_size,
        out_size: 2 * in_size,
        batch_norm: activation == Activation::Relu,
        activation,
    }
}

/// Runs one stride-2 layer through the fast kernels on a CHW input and returns CHW.
fn phase_layer_output(spec: &LayerSpec, kernel: &[f32], bias: &[f32], input: &[f32]) -> Vec<f32> {
    let layer = fast::PhaseLayer::new(spec, kernel, bias);
    let padded_input = to_padded(input, spec.in_channels, spec.in_size);
    match spec.activation {
        Activation::Relu => {
            let mut output = vec![f32::NAN; fast::padded_len(spec.out_channels, spec.out_size)];
            layer.forward(&padded_input, fast::Sink::Hidden(&mut output));
            from_padded(&output, spec.out_channels, spec.out_size)
        }
        Activation::Tanh => {
            let mut output = vec![f32::NAN; spec.out_channels * spec.out_size * spec.out_size];
            layer.forward(&padded_input, fast::Sink::Image(&mut output));
            output
        }
    }
}

#[test]
fn phase_layer_matches_scalar_on_random_shapes() {
    let mut shapes = Shapes(0x5eed);
    for case in 0..24 {
        let in_channels = shapes.range(1, 40);
        let out_channels = shapes.range(1, 40);
        let in_size = 4 << shapes.range(0, 2);
        let activation = if case % 3 == 0 { Activation::Tanh } else { Activation::Relu };
        let spec = stride2_spec(in_channels, out_channels, in_size, activation);

        let kernel = shapes.values(spec.weight_len());
        let bias = shapes.values(out_channels);
        let input = shapes.values(in_channels * in_size * in_size);
        let mut expected = vec![0.0; out_channels * spec.out_size * spec.out_size];
        scalar::layer_forward(&spec, &kernel, &bias, &input, &mut expected);

        let actual = phase_layer_output(&spec, &kernel, &bias, &input);
        let diff = max_abs_diff(&actual, &expected);
        assert!(diff < 1e-4, "case {case} {spec:?}: max abs difference {diff}");
    }
}

/// Random input and weights for one register block of `channels` inputs.
fn block_case(shapes: &mut Shapes, channels: usize) -> (usize, Vec<f32>, [isize; fast::PHASE_TAPS], Vec<f32>) {
    let size = 8;
    let stride = fast::padded_channels(channels);
    let input = to_padded(&shapes.values(channels * size * size), channels, size);
    let row = (size + 2) as isize * stride as isize;
    let offsets = [0, -(stride as isize), -row, row + stride as isize];
    let weights = shapes.values(channels * fast::PHASE_TAPS * fast::BLOCK);
    (stride, input, offsets, weights)
}

#[test]
fn portable_block_matches_selected_block() {
    let mut shapes = Shapes(77);
    for channels in [1, 2, 15, 16, 17, 40] {
        let (stride, input, offsets, weights) = block_case(&mut shapes, channels);
        let bias = [0.25; fast::BLOCK];
        let first = 3 * 10 + 1;

        let portable = fast::block_portable(stride, &input, first, &offsets, &weights, &bias);
        let selected = fast::select_kernel()(stride, &input, first, &offsets, &weights, &bias);
        let diff = max_abs_diff(portable.as_flattened(), selected.as_flattened());
        assert!(diff < 1e-4, "{channels} channels: max abs difference {diff}");
    }
}

#[test]
fn int8_portable_block_equals_selected_block() {
    let mut shapes = Shapes(78);
    for channels in [2, 16, 18, 40] {
        let stride = fast::padded_channels(channels);
        let input: Vec<i16> = (0..10 * 10 * stride).map(|_| shapes.range(0, 254) as i16 - 127).collect();
        let weights: Vec<i16> =
            (0..stride / 2 * fast::PHASE_TAPS * fast::BLOCK * 2).map(|_| shapes.range(0, 254) as i16 - 127).collect();
        let row = 10 * stride as isize;
        let offsets = [0, stride as isize, row, row + stride as isize];
        let first = 2 * 10 + 1;

        let portable = int8::block_portable(stride, &input, first, &offsets, &weights);
        let selected = int8::select_kernel()(stride, &input, first, &offsets, &weights);
        assert_eq!(portable, selected, "{channels} channels");
    }
}

#[test]
fn fast_engine_matches_scalar_generator() {
    let mut shapes = Shapes(99);
    for case in 0..8 {
        let spec = GeneratorSpec {
            nz: shapes.range(1, 24),
            ngf: shapes.range(1, 12),
            nc: shapes.range(1, 4),
            image_size: 8 << shapes.range(0, 2),
        };
        let folded = fold_batch_norm(&random_weights(spec, case).unwrap()).unwrap();
        let engine = Engine::new(&folded, &EngineConfig::default()).unwrap();
        assert_eq!(engine.precision(), Precision::F32);

        let mut latent = vec![0.0; spec.nz];
        fill_latents(case, 0, spec.nz, &mut latent);
        let expected = generate(&folded, &latent, 1).unwrap();
        let mut scratch = vec![f32::NAN; engine.scratch_len()];
        let mut out = vec![0.0; engine.output_len()];
        engine.generate_into(&latent, &mut scratch, &mut out).unwrap();

        let diff = max_abs_diff(&out, &expected);
        assert!(diff < 1e-4, "case {case} {spec:?}: max abs difference {diff}");
    }
}

/// An all-int8 generator with calibrated activation scales.
fn int8_generator(spec: GeneratorSpec, seed: u64) -> (QuantizedGenerator, QuantizedGenerator) {
    let folded = fold_batch_norm(&random_weights(spec, seed).unwrap()).unwrap();
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, 1, 8).unwrap();
    (folded, int8)
}

#[test]
fn int8_engine_stays_close_to_f32() {
    let mut shapes = Shapes(2024);
    for case in 0..6 {
        let spec = GeneratorSpec {
            nz: shapes.range(4, 24),
            ngf: shapes.range(2, 12),
            nc: 3,
            image_size: 8 << shapes.range(0, 2),
        };
        let (folded, int8) = int8_generator(spec, case);
        let engine = Engine::new(&int8, &EngineConfig::default()).unwrap();
        assert_eq!(engine.precision(), Precision::Int8);

        let mut latent = vec![0.0; spec.nz];
        fill_latents(100 + case, 0, spec.nz, &mut latent);
        let expected = generate(&folded, &latent, 1).unwrap();
        let mut scratch = vec![f32::NAN; engine.scratch_len()];
        let mut out = vec![0.0; engine.output_len()];
        engine.generate_into(&latent, &mut scratch, &mut out).unwrap();

        // Random weights spread activations far less evenly than trained
        // ones, so this bound is looser than the trained-model target.
        let diff = max_abs_diff(&out, &expected);
        assert!(diff < 0.25, "case {case} {spec:?}: max abs difference {diff}");
        let mean = out.iter().zip(&expected).map(|(a, b)| (a - b).abs()).sum::<f32>() / out.len() as f32;
        assert!(mean < 0.05, "case {case} {spec:?}: mean abs difference {mean}");
    }
}

#[test]
fn int8_engine_without_activation_scales_runs_f32() {
    let (_, mut int8) = int8_generator(GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 }, 3);
    int8.activation_scales.clear();
    let engine = Engine::new(&int8, &EngineConfig::default()).unwrap();
    assert_eq!(engine.precision(), Precision::F32);
}

#[test]
fn bad_activation_scales_are_rejected() {
    let (_, mut int8) = int8_generator(GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 }, 3);
    int8.activation_scales[1] = f32::NAN;
    let err = Engine::new(&int8, &EngineConfig::default()).unwrap_err();
    let expected = QuantizedError::Value { layer: 1, tensor: "activation scales", index: 1 };
    assert_eq!(err, EngineError::Generator(expected));

    int8.activation_scales.pop();
    let err = Engine::new(&int8, &EngineConfig::default()).unwrap_err();
    assert!(
        matches!(err, EngineError::Generator(QuantizedError::Length { tensor: "activation scales", .. })),
        "{err:?}"
    );
}

/// Random stride-2 shapes for the panel kernels: channel counts that leave
/// partial panels of both widths and input sizes that leave partial pixel
/// blocks.
fn panel_shapes(shapes: &mut Shapes, cases: usize) -> Vec<(usize, usize, usize)> {
    let mut list = vec![(1, 1, 1), (3, 16, 3), (17, 33, 5), (40, 3, 6), (64, 64, 4), (9, 48, 2)];
    for _ in 0..cases {
        list.push((shapes.range(1, 70), shapes.range(1, 70), shapes.range(1, 9)));
    }
    list
}

#[test]
fn panel_layer_matches_scalar_on_random_shapes() {
    if !panels::f32_supported() {
        return;
    }
    let mut shapes = Shapes(0xa512);
    for (case, (in_channels, out_channels, in_size)) in panel_shapes(&mut shapes, 18).into_iter().enumerate() {
        let activation = if case % 3 == 1 { Activation::Tanh } else { Activation::Relu };
        let spec = stride2_spec(in_channels, out_channels, in_size, activation);
        let kernel = shapes.values(spec.weight_len());
        let bias = shapes.values(out_channels);
        let input = shapes.values(in_channels * in_size * in_size);
        let mut expected = vec![0.0; out_channels * spec.out_size * spec.out_size];
        scalar::layer_forward(&spec, &kernel, &bias, &input, &mut expected);

        let layer = panels::PanelLayer::new(&spec, &kernel, &bias);
        let padded_input = to_padded(&input, in_channels, in_size);
        let actual = match activation {
            Activation::Relu => {
                let mut output = vec![f32::NAN; fast::padded_len(out_channels, spec.out_size)];
                layer.forward(&padded_input, fast::Sink::Hidden(&mut output));
                let border = to_padded(&from_padded(&output, out_channels, spec.out_size), out_channels, spec.out_size);
                assert_eq!(output, border, "case {case} {spec:?}: border or padded channels not zero");
                from_padded(&output, out_channels, spec.out_size)
            }
            Activation::Tanh => {
                let mut output = vec![f32::NAN; out_channels * spec.out_size * spec.out_size];
                layer.forward(&padded_input, fast::Sink::Image(&mut output));
                output
            }
        };
        let diff = max_abs_diff(&actual, &expected);
        assert!(diff < 1e-4, "case {case} {spec:?}: max abs difference {diff}");
    }
}

/// Random int8 values in `low..=high`.
fn int8_values(shapes: &mut Shapes, count: usize, low: i16, high: i16) -> Vec<i8> {
    (0..count).map(|_| (low + shapes.range(0, (high - low) as usize) as i16) as i8).collect()
}

/// Draws a padded channels-last int8 activation of ReLU outputs in `0..=127`.
fn int8_activation(shapes: &mut Shapes, channels: usize, size: usize) -> Vec<i16> {
    let chw: Vec<f32> = int8_values(shapes, channels * size * size, 0, 127).iter().map(|&v| f32::from(v)).collect();
    to_padded(&chw, channels, size).iter().map(|&v| v as i16).collect()
}

/// Integer sums of a stride-2 layer by scatter, `[out, out_size, out_size]`.
fn int8_sums(spec: &LayerSpec, values: &[i8], input: &[i16]) -> Vec<i32> {
    let (in_size, out_size) = (spec.in_size, spec.out_size);
    let channels = fast::padded_channels(spec.in_channels);
    let mut sums = vec![0i32; spec.out_channels * out_size * out_size];
    for i in 0..spec.in_channels {
        for (y, x) in (0..in_size).flat_map(|y| (0..in_size).map(move |x| (y, x))) {
            let q = i32::from(input[((y + 1) * (in_size + 2) + x + 1) * channels + i]);
            for o in 0..spec.out_channels {
                for (ky, kx) in (0..4).flat_map(|ky| (0..4).map(move |kx| (ky, kx))) {
                    let (Some(oy), Some(ox)) = ((2 * y + ky).checked_sub(1), (2 * x + kx).checked_sub(1)) else {
                        continue;
                    };
                    if oy < out_size && ox < out_size {
                        let w = i32::from(values[((i * spec.out_channels + o) * 4 + ky) * 4 + kx]);
                        sums[(o * out_size + oy) * out_size + ox] += q * w;
                    }
                }
            }
        }
    }
    sums
}

#[test]
fn int8_panel_layer_equals_integer_reference() {
    if !panels::int8_supported() {
        return;
    }
    let mut shapes = Shapes(0x7e57);
    for (case, (in_channels, out_channels, in_size)) in panel_shapes(&mut shapes, 18).into_iter().enumerate() {
        let last = case % 3 == 1;
        let spec =
            stride2_spec(in_channels, out_channels, in_size, if last { Activation::Tanh } else { Activation::Relu });
        let values = int8_values(&mut shapes, spec.weight_len(), -127, 127);
        let weight_scales: Vec<f32> = (0..out_channels).map(|_| 0.001 + shapes.value().abs() * 0.01).collect();
        let bias = shapes.values(out_channels);
        let next_scale = (!last).then_some(0.05);
        let parts = int8::Int8Parts {
            spec: &spec,
            values: &values,
            weight_scales: &weight_scales,
            bias: &bias,
            input_scale: 0.02,
            next_scale,
        };
        let layer = panels::PanelLayer8::new(&parts);
        let input = int8_activation(&mut shapes, in_channels, in_size);
        let bytes: Vec<u8> = input.iter().map(|&v| v as u8).collect();

        // The expected output: exact sums through the shared output stage.
        let sums = int8_sums(&spec, &values, &input);
        let stage = int8::OutputStage::new(out_channels, out_channels, 0.02, &weight_scales, &bias, next_scale);
        let plane = spec.out_size * spec.out_size;
        if last {
            let expected: Vec<u32> = sums
                .iter()
                .enumerate()
                .map(|(at, &sum)| {
                    let o = at / plane;
                    libm::tanhf(sum as f32 * stage.multiplier[o] + stage.shift[o]).to_bits()
                })
                .collect();
            let mut actual = vec![f32::NAN; sums.len()];
            layer.forward(&bytes, panels::Sink8::Image(&mut actual));
            let actual: Vec<u32> = actual.iter().map(|v| v.to_bits()).collect();
            assert_eq!(actual, expected, "case {case} {spec:?}");
        } else {
            let chw: Vec<f32> = sums
                .iter()
                .enumerate()
                .map(|(at, &sum)| {
                    let o = at / plane;
                    f32::from(int8::requantize(sum, stage.multiplier[o], stage.shift[o]))
                })
                .collect();
            let expected: Vec<u8> = to_padded(&chw, out_channels, spec.out_size).iter().map(|&v| v as u8).collect();
            let mut actual = vec![255; expected.len()];
            layer.forward(&bytes, panels::Sink8::Hidden(&mut actual));
            assert_eq!(actual, expected, "case {case} {spec:?}");
        }
    }
}

/// Runs `engine` on face `(seed, index)` and returns the image and its RGB565 pixels.
fn face(engine: &Engine, seed: u64, index: u64) -> (Vec<f32>, Vec<u8>) {
    let mut scratch = vec![f32::NAN; engine.scratch_len()];
    let mut latent = vec![0.0; engine.spec().nz];
    fill_latents(seed, index, engine.spec().nz, &mut latent);
    let mut image = vec![0.0; engine.output_len()];
    engine.generate_into(&latent, &mut scratch, &mut image).unwrap();
    let mut pixels = vec![0u8; engine.pixel_len(PixelFormat::Rgb565Le)];
    engine.generate_face(seed, index, &mut scratch, PixelFormat::Rgb565Le, &mut pixels).unwrap();
    (image, pixels)
}

#[test]
fn int8_panel_engine_equals_block_engine() {
    if !panels::int8_supported() {
        return;
    }
    let mut shapes = Shapes(4242);
    for case in 0..4 {
        let spec = GeneratorSpec {
            nz: shapes.range(4, 24),
            ngf: shapes.range(2, 20),
            nc: 3,
            image_size: 8 << shapes.range(0, 2),
        };
        let (_, int8) = int8_generator(spec, 50 + case);
        let config = EngineConfig::default();
        let blocks = Engine::with_kernels(&int8, &config, Kernels::Blocks).unwrap();
        let panels = Engine::with_kernels(&int8, &config, Kernels::Panels).unwrap();

        let (expected_image, expected_pixels) = face(&blocks, case, 3);
        let (image, pixels) = face(&panels, case, 3);
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&image), bits(&expected_image), "case {case} {spec:?}");
        assert_eq!(pixels, expected_pixels, "case {case} {spec:?}");
    }
}

#[test]
fn f32_panel_engine_matches_scalar_generator() {
    if !panels::f32_supported() {
        return;
    }
    let mut shapes = Shapes(4343);
    for case in 0..4 {
        let spec = GeneratorSpec {
            nz: shapes.range(1, 24),
            ngf: shapes.range(1, 20),
            nc: shapes.range(1, 4),
            image_size: 8 << shapes.range(0, 2),
        };
        let folded = fold_batch_norm(&random_weights(spec, 60 + case).unwrap()).unwrap();
        let engine = Engine::with_kernels(&folded, &EngineConfig::default(), Kernels::Panels).unwrap();

        let mut latent = vec![0.0; spec.nz];
        fill_latents(case, 0, spec.nz, &mut latent);
        let expected = generate(&folded, &latent, 1).unwrap();
        let mut scratch = vec![f32::NAN; engine.scratch_len()];
        let mut out = vec![0.0; engine.output_len()];
        engine.generate_into(&latent, &mut scratch, &mut out).unwrap();

        let diff = max_abs_diff(&out, &expected);
        assert!(diff < 1e-4, "case {case} {spec:?}: max abs difference {diff}");
    }
}

#[test]
fn memory_check_counts_allocated_bytes() {
    let families =
        if panels::int8_supported() { vec![Kernels::Blocks, Kernels::Panels] } else { vec![Kernels::Blocks] };
    for spec in [
        GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 },
        GeneratorSpec { nz: 13, ngf: 9, nc: 1, image_size: 32 },
        GeneratorSpec { nz: 100, ngf: 20, nc: 3, image_size: 64 },
    ] {
        let (folded, int8) = int8_generator(spec, 7);
        for generator in [&folded, &int8] {
            for &kernels in &families {
                let engine = Engine::with_kernels(generator, &EngineConfig::default(), kernels).unwrap();
                let precision = engine.precision();
                let allocated = engine.plan.bytes() + engine.scratch_len() * core::mem::size_of::<f32>();
                let planned = planned_bytes(&spec, &spec.layers(), precision, kernels);
                assert_eq!(planned, Some(allocated), "{spec:?} {precision:?} {kernels:?}");

                let limit = EngineConfig { memory_limit: allocated - 1 };
                let err = Engine::with_kernels(generator, &limit, kernels).unwrap_err();
                assert_eq!(err, EngineError::MemoryLimit { needed: allocated, limit: allocated - 1 });
            }
        }
    }
}
