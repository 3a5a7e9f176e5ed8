//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dcgan_runtime::reference::random_weights;
use dcgan_runtime::{GeneratorSpec, GeneratorWeights};

/// A small generator that builds and runs in milliseconds: 16x16 RGB.
pub const SMALL: GeneratorSpec = GeneratorSpec {
    nz: 8,
    ngf: 4,
    nc: 3,
    image_size: 16,
};

/// Seeded random weights for `spec`.
pub fn weights(spec: GeneratorSpec, seed: u64) -> GeneratorWeights {
    random_weights(spec, seed).expect("test specs are valid")
}

/// Exports `weights` to `dir/name` with a `trained_from` entry and returns the path.
pub fn write_model(dir: &Path, name: &str, weights: &GeneratorWeights) -> PathBuf {
    let path = dir.join(name);
    let metadata = [("trained_from".to_string(), "synthetic".to_string())];
    dcgan_export::write_onnx(weights, &metadata, &path).expect("export succeeds");
    path
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
