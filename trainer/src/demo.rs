//! The end-to-end demo: synthetic faces in, a grid of generated faces out.
//!
//! The demo needs no download. It draws a synthetic face set, trains a
//! reduced DCGAN on it, exports the generator to ONNX and generates faces
//! from that ONNX with the edge runtime's tract backend, which is the code
//! behind `dcgan-edge generate`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dcgan_export::{export_checkpoint, ExportError};
use dcgan_runtime::grid::{make_grid, save_png_atomic, GridError};
use dcgan_runtime::tract::{RuntimeError, TractGenerator};
use thiserror::Error;

use crate::checkpoint::{checkpoint_path, read_checkpoint_info};
use crate::data::synthetic::synthetic_faces;
use crate::data::ImageSet;
use crate::train::{self, TrainError, TrainObserver, TrainSummary};
use crate::TrainConfig;

/// Value of the checkpoint's `trained_from` for demo runs.
pub const TRAINED_FROM: &str = "synthetic";

/// Settings of the demo. [`Default`] is sized to finish in a few minutes on
/// two CPU cores.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoConfig {
    /// Folder that receives every output.
    pub out: PathBuf,
    /// Synthetic training images to draw.
    pub images: usize,
    /// Training settings: the tutorial's, with a smaller model.
    pub train: TrainConfig,
    /// Faces to generate with the edge runtime.
    pub faces: usize,
    /// Seed of the generated faces' latents.
    pub face_seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        // 32x32 images cost a quarter of 64x64 per layer, which buys the
        // roughly 2,000 iterations after which most samples show a head with
        // hair, skin, shirt and often eyes (at 1,000 about a third were blobs). A discriminator half the generator's width
        // keeps the two balanced over this short run: with equal widths the
        // samples at iteration 1,000 were paler and less varied.
        let train = TrainConfig {
            epochs: 32,
            batch_size: 64,
            ngf: 32,
            ndf: 16,
            image_size: 32,
            sample_every: 100,
            checkpoint_every: 200,
            ..TrainConfig::default()
        };
        Self { out: PathBuf::from("demo-run"), images: 4096, train, faces: 64, face_seed: 7 }
    }
}

/// Paths of the demo's outputs.
#[derive(Clone, Debug)]
pub struct DemoOutputs {
    /// Grid of 64 synthetic training images.
    pub data_preview: PathBuf,
    /// The training run directory (checkpoint, losses, sample grids).
    pub run_dir: PathBuf,
    /// Summary of the training in this call, which ran no iteration when an
    /// earlier demo had already finished the run.
    pub training: TrainSummary,
    /// The exported generator.
    pub onnx: PathBuf,
    /// Grid of faces generated from the ONNX by the edge runtime.
    pub grid: PathBuf,
}

/// A demo step that failed.
#[derive(Debug, Error)]
pub enum DemoError {
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The edge runtime could not load or run the exported generator.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A grid could not be written.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// The output folder contains a run with other settings, which a demo
    /// call would otherwise continue with the stored settings.
    #[error("{} contains a demo run with {stored}, but {requested} was requested: choose a new --out folder, or delete {} to start over", out.display(), out.display())]
    SettingsChanged {
        /// The demo folder.
        out: PathBuf,
        /// The stored run's settings.
        stored: String,
        /// The requested settings.
        requested: String,
    },
    /// A stored run could not be read.
    #[error(transparent)]
    Checkpoint(#[from] Box<crate::checkpoint::CheckpointError>),
    /// The output folder could not be created.
    #[error("cannot create the demo folder {}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the demo: draw data, train (or continue an earlier demo's run),
/// export, generate.
///
/// Running it again on the same folder continues the stored run, which
/// returns at once when that run is complete, then exports and generates
/// again.
///
/// # Errors
/// The [`DemoError`] of the step that failed.
pub fn run_demo(config: &DemoConfig, observer: &mut dyn TrainObserver, stop: &AtomicBool) -> Result<DemoOutputs, DemoError> {
    let run_dir = config.out.join("run");
    check_stored_settings(config, &run_dir)?;

    std::fs::create_dir_all(&config.out).map_err(|source| DemoError::Io { path: config.out.clone(), source })?;
    let data = synthetic_faces(config.images, config.train.image_size, config.train.seed);
    let data_preview = config.out.join("data-preview.png");
    save_png_atomic(&preview_grid(&data), &data_preview)?;

    let training = if checkpoint_path(&run_dir).exists() {
        train::resume(&run_dir, &data, observer, stop)?
    } else {
        train::train(&config.train, &data, &run_dir, TRAINED_FROM, observer, stop)?
    };

    let onnx = config.out.join("generator.onnx");
    export_checkpoint(&run_dir, &onnx)?;

    let grid = config.out.join("generated-grid.png");
    generate_grid(&onnx, config, &grid)?;

    Ok(DemoOutputs { data_preview, run_dir, training, onnx, grid })
}

/// Rejects a demo folder whose stored run has other settings than `config`,
/// so that changed flags never silently continue the old run.
fn check_stored_settings(config: &DemoConfig, run_dir: &Path) -> Result<(), DemoError> {
    let path = checkpoint_path(run_dir);
    if !path.exists() {
        return Ok(());
    }

    let info = read_checkpoint_info(&path).map_err(Box::new)?;
    let stored = settings_summary(&info.config, info.progress.dataset_len);
    let requested = settings_summary(&config.train, config.images);
    if stored != requested {
        return Err(DemoError::SettingsChanged { out: config.out.clone(), stored, requested });
    }
    Ok(())
}

/// Describes the settings that a demo's flags control.
fn settings_summary(train: &TrainConfig, images: usize) -> String {
    let epochs = if train.epochs == 1 { "epoch" } else { "epochs" };
    format!(
        "{images} images of {0}x{0}, {1} {epochs} at batch {2}, ngf {3}, ndf {4}",
        train.image_size, train.epochs, train.batch_size, train.ngf, train.ndf
    )
}

/// Lays the first 64 training images out as an 8x8 grid.
fn preview_grid(data: &ImageSet) -> image::RgbImage {
    let count = data.len().min(64);
    let images: Vec<&[u8]> = (0..count).map(|index| data.image(index)).collect();
    make_grid(&images, data.image_size(), 8, 2)
}

/// Generates `config.faces` faces from `onnx` with tract and saves their grid.
fn generate_grid(onnx: &Path, config: &DemoConfig, path: &Path) -> Result<(), DemoError> {
    let mut generator = TractGenerator::load(onnx)?;
    let faces = generator.generate_faces(config.face_seed, 0, config.faces, 16)?;

    let tiles: Vec<&[u8]> = faces.iter().map(Vec::as_slice).collect();
    let columns = (config.faces as f64).sqrt().ceil() as usize;
    save_png_atomic(&make_grid(&tiles, generator.image_size(), columns.max(1), 2), path)?;
    Ok(())
}
