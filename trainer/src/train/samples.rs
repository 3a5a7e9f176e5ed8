//! Sample grids from the fixed latents.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use dcgan_runtime::grid::{make_grid, save_png_atomic};
use image::RgbImage;
use dcgan_runtime::latent::fill_latents;
use dcgan_runtime::pixel::chw_to_rgb888;

use super::diversity::mean_pairwise_distance;
use super::TrainError;
use crate::model::Generator;

/// Number of fixed latents in a sample grid, as in the tutorial.
pub const SAMPLE_COUNT: usize = 64;

/// Tiles per row of a sample grid.
pub const SAMPLE_COLUMNS: usize = 8;

/// Pixels between tiles of a sample grid.
pub const SAMPLE_PADDING: usize = 2;

/// Name of the folder of sample grids inside a run directory.
pub const SAMPLES_DIR: &str = "samples";

/// Creates the run's fixed latents: faces `0..64` of `dcgan_runtime::latent` for
/// `seed`, so the runtime can generate the same faces from the exported model.
///
/// # Shapes
/// Returns `[64, nz, 1, 1]`.
pub(crate) fn fixed_noise(seed: u64, nz: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut values = vec![0f32; SAMPLE_COUNT * nz];
    fill_latents(seed, 0, nz, &mut values);
    Tensor::from_vec(values, (SAMPLE_COUNT, nz, 1, 1), device)
}

/// Face index of the first calibration latent: far past the fixed latents,
/// so the two sets never overlap.
const CALIBRATION_FIRST_INDEX: u64 = 1 << 32;

/// Latents for [`Generator::recalibrate_batch_norm`]: `batches` batches of
/// 64, fixed by the seed.
///
/// # Shapes
/// Returns `batches` tensors of `[64, nz, 1, 1]`.
pub(crate) fn calibration_noise(seed: u64, nz: usize, batches: usize, device: &Device) -> candle_core::Result<Vec<Tensor>> {
    let mut values = vec![0f32; SAMPLE_COUNT * nz];
    (0..batches)
        .map(|batch| {
            let first = CALIBRATION_FIRST_INDEX + (batch * SAMPLE_COUNT) as u64;
            fill_latents(seed, first, nz, &mut values);
            Tensor::from_slice(&values, (SAMPLE_COUNT, nz, 1, 1), device)
        })
        .collect()
}

/// Path of the sample grid written after `iteration`.
pub fn sample_path(run_dir: &Path, iteration: u64) -> PathBuf {
    run_dir.join(SAMPLES_DIR).join(format!("iter_{iteration:06}.png"))
}

/// Path of the sample grid written when a run completes.
pub fn final_sample_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SAMPLES_DIR).join("final.png")
}

/// A rendered sample grid.
pub(crate) struct SampleGrid {
    /// The grid as written.
    pub(crate) image: RgbImage,
    /// Mean pairwise distance of the samples, see [`mean_pairwise_distance`].
    pub(crate) diversity: f32,
}

/// Renders the fixed latents with the generator in eval mode, as an 8x8 grid
/// with 2-pixel padding, to a PNG at `path`, and measures how different the
/// samples are.
///
/// Eval mode uses the BatchNorm running statistics. Unless the run
/// recalibrates them first (`bn_calibration_batches`), they lag behind the
/// weights early in a run and the grid looks nearly uniform grey.
pub(crate) fn write_sample_grid(generator: &Generator, noise: &Tensor, path: &Path) -> Result<SampleGrid, TrainError> {
    let images = generator.forward_eval(noise).map_err(|source| TrainError::Tensor { context: "sample", source })?;
    let (count, _, size, _) = images.dims4().map_err(|source| TrainError::Tensor { context: "sample", source })?;
    let values = images
        .flatten_all()
        .and_then(|flat| flat.to_vec1::<f32>())
        .map_err(|source| TrainError::Tensor { context: "sample", source })?;

    let image_len = 3 * size * size;
    let diversity = mean_pairwise_distance(&values, image_len);
    let mut tiles = vec![0u8; count * image_len];
    for (chw, rgb) in values.chunks_exact(image_len).zip(tiles.chunks_exact_mut(image_len)) {
        chw_to_rgb888(chw, size, rgb);
    }
    let tile_refs: Vec<&[u8]> = tiles.chunks_exact(image_len).collect();
    let grid = make_grid(&tile_refs, size, SAMPLE_COLUMNS, SAMPLE_PADDING);

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io { path: dir.to_owned(), source })?;
    }
    save_png_atomic(&grid, path)?;
    Ok(SampleGrid { image: grid, diversity })
}
