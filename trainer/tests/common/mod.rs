//! Helpers shared by the trainer's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use dcgan_trainer::data::folder::{load_folder, LoadOptions};
use dcgan_trainer::data::ImageSet;
use dcgan_trainer::TrainConfig;

/// The CelebA sample photos shipped next to the repository.
pub fn faces_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/faces"))
}

/// The first `count` face photos, preprocessed to `image_size`.
pub fn load_faces(count: usize, image_size: usize) -> ImageSet {
    let options = LoadOptions { image_size, threads: 0, strict: true, limit: Some(count) };
    let (images, report) = load_folder(&faces_dir(), &options).expect("face photos load");
    assert_eq!(report.loaded, count);
    images
}

/// A reduced model that trains in seconds on two cores.
pub fn small_config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        nz: 16,
        ngf: 8,
        ndf: 8,
        image_size: 32,
        seed: 7,
        sample_every: 4,
        checkpoint_every: 5,
        log_every: 2,
        ..TrainConfig::default()
    }
}
pub mod stand_in;
