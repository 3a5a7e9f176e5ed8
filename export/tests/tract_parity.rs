//! Exported models run through tract agree with the reference forward pass.

use dcgan_export::checkpoint::CHECKPOINT_FILE;
use dcgan_export::{
    export_checkpoint, write_generator_checkpoint, write_onnx, CheckpointInfo, ExportError,
};
use dcgan_runtime::latent::fill_latents;
use dcgan_runtime::reference::{self, random_weights};
use dcgan_runtime::tract::TractGenerator;
use dcgan_runtime::GeneratorSpec;

const TOLERANCE: f32 = 1e-4;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn tutorial_generator_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generator.onnx");
    let spec = GeneratorSpec::default();
    let weights = random_weights(spec, 17).unwrap();
    write_onnx(&weights, &[], &path).unwrap();
    let mut generator = TractGenerator::load(&path).unwrap();

    let mut latents = vec![0.0; 3 * spec.nz];
    fill_latents(999, 0, spec.nz, &mut latents);
    let expected = reference::generate(&weights, &latents, 3).unwrap();
    let image_len = 3 * 64 * 64;

    let single = generator.generate(&latents[..spec.nz], 1).unwrap();
    let diff = max_abs_diff(&single, &expected[..image_len]);
    assert!(diff < TOLERANCE, "batch 1: max difference {diff}");

    let batch = generator.generate(&latents, 3).unwrap();
    let diff = max_abs_diff(&batch, &expected);
    assert!(diff < TOLERANCE, "batch 3: max difference {diff}");

    // Random weights spread the outputs, so the comparison is not vacuous.
    let spread = expected.iter().fold(0.0f32, |max, v| max.max(v.abs()));
    assert!(spread > 0.5, "reference outputs stay within {spread} of 0");

    // With tract 0.23 on x86-64 the batch-3 plan computes face 0 bit for bit
    // as the batch-1 plan does.
    assert_eq!(&batch[..image_len], &single[..]);
}

#[test]
fn export_checkpoint_round_trips_through_tract() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let spec = GeneratorSpec {
        nz: 10,
        ngf: 4,
        nc: 3,
        image_size: 32,
    };
    let weights = random_weights(spec, 2).unwrap();
    let info = CheckpointInfo {
        trained_from: "/home/someone/data/faces".to_string(),
        epoch: Some(5),
        ..Default::default()
    };
    write_generator_checkpoint(&run_dir.join(CHECKPOINT_FILE), &weights, &info).unwrap();
    let onnx = dir.path().join("out/generator.onnx");

    let summary = export_checkpoint(&run_dir, &onnx).unwrap();

    assert_eq!(summary.spec, spec);
    assert_eq!(summary.path, onnx);
    assert_eq!(summary.bytes, std::fs::metadata(&onnx).unwrap().len());

    let mut generator = TractGenerator::load(&onnx).unwrap();
    // Only the folder's name leaves the training machine.
    assert_eq!(generator.metadata()["trained_from"], "faces");
    assert_eq!(generator.metadata()["epoch"], "5");
    assert!(!generator.metadata().contains_key("iteration"));

    let mut latents = vec![0.0; 2 * spec.nz];
    fill_latents(1, 0, spec.nz, &mut latents);
    let expected = reference::generate(&weights, &latents, 2).unwrap();
    let diff = max_abs_diff(&generator.generate(&latents, 2).unwrap(), &expected);
    assert!(diff < TOLERANCE, "max difference {diff}");
}

#[test]
fn export_without_checkpoint_says_to_train() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("generator.onnx");

    let err = export_checkpoint(dir.path(), &onnx).unwrap_err();

    assert!(
        matches!(err, ExportError::CheckpointNotFound { .. }),
        "{err:?}"
    );
    assert!(!onnx.exists());
}
