//! Folded and int8 exports: weight file, QDQ ONNX through tract and
//! onnxruntime, f32 ONNX through both runtimes.

use std::path::{Path, PathBuf};
use std::process::Command;

use dcgan_export::{generator_to_qdq_onnx, write_onnx, write_qdq_onnx};
use dcgan_runtime::latent::fill_latents;
use dcgan_runtime::quantized::{self, fold_batch_norm, Kernel, QuantizedGenerator};
use dcgan_runtime::reference::{self, random_weights};
use dcgan_runtime::tract::TractGenerator;
use dcgan_runtime::{weight_file, GeneratorSpec};

const SPEC: GeneratorSpec = GeneratorSpec { nz: 16, ngf: 8, nc: 3, image_size: 32 };

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn latents(count: usize, nz: usize) -> Vec<f32> {
    let mut latents = vec![0.0; count * nz];
    fill_latents(21, 0, nz, &mut latents);
    latents
}

/// Scale factor of output channel `channel`: from 1/16 to 16, so that
/// per-channel int8 scales differ by a factor of 256 within every layer.
fn channel_factor(channel: usize) -> f32 {
    [1.0 / 16.0, 16.0, 0.25, 4.0, 1.0][channel % 5]
}

/// A folded generator whose output channels have strongly different
/// magnitudes but which computes the same images as the unscaled one.
///
/// Channel `o` of a hidden layer's kernel and bias is multiplied by
/// `channel_factor(o)`, and the next layer's input-channel `o` slice is
/// divided by it; ReLU commutes with positive scaling, so the function is
/// unchanged up to rounding.
fn skewed_generator(seed: u64) -> QuantizedGenerator {
    let mut folded = fold_batch_norm(&random_weights(SPEC, seed).unwrap()).unwrap();
    let specs = SPEC.layers();
    for index in 0..specs.len() - 1 {
        let (out_channels, next_out) = (specs[index].out_channels, specs[index + 1].out_channels);
        let Kernel::F32(kernel) = &mut folded.layers[index].kernel else { unreachable!("folded kernels are f32") };
        for (slice, taps) in kernel.chunks_exact_mut(16).enumerate() {
            taps.iter_mut().for_each(|w| *w *= channel_factor(slice % out_channels));
        }
        for (channel, bias) in folded.layers[index].bias.iter_mut().enumerate() {
            *bias *= channel_factor(channel);
        }
        let Kernel::F32(next) = &mut folded.layers[index + 1].kernel else { unreachable!("folded kernels are f32") };
        for (slice, taps) in next.chunks_exact_mut(16).enumerate() {
            taps.iter_mut().for_each(|w| *w /= channel_factor(slice / next_out));
        }
    }
    folded
}

#[test]
fn skewed_generator_keeps_function() {
    let weights = random_weights(SPEC, 5).unwrap();
    let z = latents(2, SPEC.nz);
    let expected = reference::generate(&weights, &z, 2).unwrap();
    let actual = quantized::generate(&skewed_generator(5), &z, 2).unwrap();
    let diff = max_abs_diff(&expected, &actual);
    assert!(diff < 1e-4, "max abs difference {diff}");
}

#[test]
fn per_channel_qdq_through_tract_matches_core() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = skewed_generator(5).quantize(|_| true);
    let path = dir.path().join("qdq.onnx");
    write_qdq_onnx(&int8, &[], &path).unwrap();

    let z = latents(4, SPEC.nz);
    let expected = quantized::generate(&int8, &z, 4).unwrap();
    let mut generator = TractGenerator::load(&path).unwrap();
    assert_eq!(generator.metadata()["int8_layers"], "0,1,2,3");
    let actual = generator.generate(&z, 4).unwrap();
    let diff = max_abs_diff(&actual, &expected);
    assert!(diff < 1e-4, "tract QDQ against the runtime core: max abs difference {diff}");

    // The comparison is sensitive to the per-axis scales: channel 0's scale
    // on every channel, the failure of older tract releases, moves the
    // output far more than the tolerance.
    let mut wrong = int8.clone();
    for layer in &mut wrong.layers {
        if let Kernel::Int8 { scales, .. } = &mut layer.kernel {
            let first = scales[0];
            scales.iter_mut().for_each(|scale| *scale = first);
        }
    }
    let wrong_output = quantized::generate(&wrong, &z, 4).unwrap();
    let wrong_diff = max_abs_diff(&wrong_output, &expected);
    assert!(wrong_diff > 0.1, "a per-tensor scale changes the output by only {wrong_diff}");
}

#[test]
fn qdq_keeps_chosen_layers_f32() {
    let int8 = skewed_generator(6).quantize(|index| index != 0 && index != 3);
    assert_eq!(int8.int8_layers(), [1, 2]);
    let bytes = generator_to_qdq_onnx(&int8, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.onnx");
    std::fs::write(&path, bytes).unwrap();

    let z = latents(2, SPEC.nz);
    let mut generator = TractGenerator::load(&path).unwrap();
    assert_eq!(generator.metadata()["int8_layers"], "1,2");
    let diff = max_abs_diff(&generator.generate(&z, 2).unwrap(), &quantized::generate(&int8, &z, 2).unwrap());
    assert!(diff < 1e-4, "max abs difference {diff}");
}

#[test]
fn weight_file_round_trips_and_runs() {
    let int8 = skewed_generator(7).quantize(|index| index != 3);
    let bytes = weight_file::write(&int8).unwrap();
    let read = weight_file::read(&bytes).unwrap();
    assert_eq!(read, int8);

    // int8 kernels take a quarter of the f32 bytes.
    let f32_bytes = weight_file::write(&skewed_generator(7)).unwrap().len();
    assert!(bytes.len() * 3 < f32_bytes, "{} bytes int8 against {f32_bytes} f32", bytes.len());
}

/// The virtual environment's Python with onnx and onnxruntime, which
/// `scripts/test.sh` creates. Outside CI a missing one skips the check.
fn python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("DCGAN_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))),
    ];
    let found = candidates.into_iter().flatten().find(|path| path.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "no Python with onnxruntime: run scripts/test.sh to create .venv");
        eprintln!("skipping the onnxruntime check: run scripts/test.sh to create .venv");
    }
    found
}

/// Runs `check_onnx.py` (onnx.checker with full_check, then onnxruntime on
/// `z`) and requires onnxruntime's output to match `expected` within `tolerance`.
fn check_with_onnxruntime(python: &Path, model: &Path, z: &[f32], expected: &[f32], tolerance: f32) {
    let dir = model.parent().unwrap();
    let inputs = dir.join("inputs.json");
    let expected_path = dir.join("expected.json");
    let batch = z.len() / SPEC.nz;
    let input_json = serde_json::json!({ "z": z, "shape": [batch, SPEC.nz, 1, 1] });
    std::fs::write(&inputs, input_json.to_string()).unwrap();
    std::fs::write(&expected_path, serde_json::to_string(expected).unwrap()).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/check_onnx.py");
    let output = Command::new(python)
        .arg(script)
        .arg(model)
        .args(["--nz", &SPEC.nz.to_string(), "--image-size", &SPEC.image_size.to_string()])
        .args(["--tol", &tolerance.to_string()])
        .arg("--inputs")
        .arg(&inputs)
        .arg("--expected")
        .arg(&expected_path)
        .output()
        .expect("check_onnx.py starts");
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check_onnx.py failed on {}:\n{report}", model.display());
}

#[test]
fn per_channel_qdq_matches_onnxruntime() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let int8 = skewed_generator(8).quantize(|_| true);
    let path = dir.path().join("qdq.onnx");
    write_qdq_onnx(&int8, &[], &path).unwrap();

    let z = latents(3, SPEC.nz);
    let tract_output = TractGenerator::load(&path).unwrap().generate(&z, 3).unwrap();
    check_with_onnxruntime(&python, &path, &z, &tract_output, 1e-4);
}

#[test]
fn f32_onnx_matches_onnxruntime() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f32.onnx");
    write_onnx(&random_weights(SPEC, 9).unwrap(), &[], &path).unwrap();

    let z = latents(3, SPEC.nz);
    let tract_output = TractGenerator::load(&path).unwrap().generate(&z, 3).unwrap();
    check_with_onnxruntime(&python, &path, &z, &tract_output, 1e-4);
}
