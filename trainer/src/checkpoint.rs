//! Saving and restoring a run's complete state.
//!
//! A checkpoint is one safetensors file (names as in
//! [`dcgan_export::checkpoint`]) with f32 tensors:
//! - both networks' weights and BatchNorm running statistics
//!   (`netG.main.*`, `netD.main.*`);
//! - both Adam optimizers' moments, `adam.netG.m.main.0.weight`,
//!   `adam.netG.v.main.0.weight` and so on.
//!
//! Its string metadata contains the format version, the generator spec, what the
//! model was trained from, the [`TrainConfig`] as JSON, the epoch and global
//! iteration reached, the data set size, both Adam step counts, the seed and
//! the random-stream scheme. Random draws are counter-based (see
//! [`crate::rng`]), so the seed and the iteration reached are the whole
//! random state.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use dcgan_export::checkpoint::{FORMAT, META_FORMAT, META_GENERATOR_SPEC, META_TRAINED_FROM};
pub use dcgan_export::checkpoint::{META_EPOCH, META_ITERATION};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use thiserror::Error;

use crate::config::{ConfigError, TrainConfig};
use crate::model::{ModelError, NamedVar};
use crate::rng::RNG_SCHEME;
use crate::state::TrainingState;

pub use dcgan_export::checkpoint::CHECKPOINT_FILE;

/// Metadata key: the [`TrainConfig`] as JSON.
pub const META_CONFIG: &str = "config";
/// Metadata key: the number of training images, which fixes the schedule.
pub const META_DATASET_LEN: &str = "dataset_len";
/// Metadata key: the generator's Adam step count.
pub const META_GENERATOR_STEPS: &str = "adam.netG.step";
/// Metadata key: the discriminator's Adam step count.
pub const META_DISCRIMINATOR_STEPS: &str = "adam.netD.step";
/// Metadata key: the run's seed.
pub const META_SEED: &str = "seed";
/// Metadata key: the random-stream scheme, [`RNG_SCHEME`].
pub const META_RNG: &str = "rng";

/// Position of a run in its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunProgress {
    /// Epochs completed, which is also the 0-based index of the epoch in
    /// progress.
    pub epoch: u64,
    /// Iterations completed over the whole run.
    pub iteration: u64,
    /// Number of training images.
    pub dataset_len: usize,
}

/// The settings and position stored with a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The data directory the run trains on, or `synthetic`.
    pub trained_from: String,
    /// Position of the run.
    pub progress: RunProgress,
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// A file operation failed.
    #[error("cannot access checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The checkpoint could not be serialised.
    #[error("cannot serialise checkpoint {path}: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: SafeTensorError,
    },
    /// The file is not valid safetensors: damaged or cut short.
    #[error(
        "{path} is not a readable checkpoint ({source}): the file is damaged or cut short, \
         for example by an interrupted copy. Copy it again, or start a new run"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: SafeTensorError,
    },
    /// The file was written by another program or format version.
    #[error(
        "{path} has checkpoint format {found:?}, expected {FORMAT:?}: it was not written by this version of dcgan"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format found, if any.
        found: Option<String>,
    },
    /// A metadata entry is missing or invalid.
    #[error("checkpoint {path}: metadata {key:?} is {problem}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// Description of the problem.
        problem: String,
    },
    /// A tensor the configuration needs is missing.
    #[error("checkpoint {path} has no tensor {name}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A tensor has the wrong type or shape.
    #[error("checkpoint {path}: tensor {name} is {found}, expected f32 {expected:?}")]
    TensorMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Type and shape found.
        found: String,
    },
    /// The stored configuration is invalid.
    #[error("checkpoint {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: ConfigError,
    },
    /// The networks could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Path of the checkpoint inside `run_dir`.
pub fn checkpoint_path(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINT_FILE)
}

/// Writes `state` and `info` to `path` atomically: into a temporary file in
/// the same directory, synced, then renamed over `path`.
pub fn save_checkpoint(path: &Path, state: &TrainingState, info: &CheckpointInfo) -> Result<(), CheckpointError> {
    let named = state.named_tensors();
    let mut host = Vec::with_capacity(named.len());
    for tensor in &named {
        let values = tensor.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = values.iter().flat_map(|value| value.to_le_bytes()).collect();
        host.push((tensor.name.as_str(), tensor.var.dims().to_vec(), bytes));
    }

    let safetensors_error = |source| CheckpointError::Safetensors { path: path.to_owned(), source };
    let mut views = Vec::with_capacity(host.len());
    for (name, shape, bytes) in &host {
        views.push((*name, TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(safetensors_error)?));
    }
    let bytes = safetensors::serialize(views, Some(metadata(state, info))).map_err(safetensors_error)?;

    write_atomic(path, &bytes).map_err(|source| CheckpointError::Io { path: path.to_owned(), source })
}

fn metadata(state: &TrainingState, info: &CheckpointInfo) -> HashMap<String, String> {
    let spec = info.config.generator_spec();
    let generator_spec = serde_json::json!({
        "nz": spec.nz, "ngf": spec.ngf, "nc": spec.nc, "image_size": spec.image_size,
    });
    let config = serde_json::to_string(&info.config).unwrap_or_default();
    let entries = [
        (META_FORMAT, FORMAT.to_owned()),
        (META_GENERATOR_SPEC, generator_spec.to_string()),
        (META_TRAINED_FROM, info.trained_from.clone()),
        (META_CONFIG, config),
        (META_EPOCH, info.progress.epoch.to_string()),
        (META_ITERATION, info.progress.iteration.to_string()),
        (META_DATASET_LEN, info.progress.dataset_len.to_string()),
        (META_GENERATOR_STEPS, state.generator_optimizer.step_count().to_string()),
        (META_DISCRIMINATOR_STEPS, state.discriminator_optimizer.step_count().to_string()),
        (META_SEED, info.config.seed.to_string()),
        (META_RNG, RNG_SCHEME.to_owned()),
    ];
    entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}

/// Writes `bytes` to `path` through a synced temporary file and a rename,
/// so that `path` contains either its old or its new contents after a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));

    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;

    sync_parent_dir(path);
    Ok(())
}

/// Syncs the directory entry of a renamed file where the platform allows.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if let Err(err) = File::open(parent).and_then(|dir| dir.sync_all()) {
            log::warn!("cannot sync directory {}: {err}", parent.display());
        }
    }
}

/// Reads only the settings and position of the checkpoint at `path`.
pub fn read_checkpoint_info(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_owned(), source })?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|source| CheckpointError::Damaged { path: path.to_owned(), source })?;
    let metadata = header.metadata().clone().unwrap_or_default();
    MetadataReader { path, metadata: &metadata }.info()
}

/// Restores the complete training state saved at `path` onto `device`.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(TrainingState, CheckpointInfo), CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_owned(), source })?;
    let safetensors_error = |source| CheckpointError::Damaged { path: path.to_owned(), source };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(safetensors_error)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let reader = MetadataReader { path, metadata: &metadata };
    let info = reader.info()?;

    let mut state = TrainingState::init(&info.config, device)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(safetensors_error)?;
    for named in state.named_tensors() {
        restore_tensor(path, &tensors, &named, device)?;
    }
    state.generator_optimizer.set_step_count(reader.number(META_GENERATOR_STEPS)?);
    state.discriminator_optimizer.set_step_count(reader.number(META_DISCRIMINATOR_STEPS)?);
    Ok((state, info))
}

fn restore_tensor(
    path: &Path,
    tensors: &SafeTensors<'_>,
    named: &NamedVar,
    device: &Device,
) -> Result<(), CheckpointError> {
    let view = tensors
        .tensor(&named.name)
        .map_err(|_| CheckpointError::MissingTensor { path: path.to_owned(), name: named.name.clone() })?;
    let expected = named.var.dims();
    if view.dtype() != Dtype::F32 || view.shape() != expected {
        return Err(CheckpointError::TensorMismatch {
            path: path.to_owned(),
            name: named.name.clone(),
            expected: expected.to_vec(),
            found: format!("{:?} {:?}", view.dtype(), view.shape()),
        });
    }

    let values: Vec<f32> =
        view.data().chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect();
    named.var.set(&Tensor::from_vec(values, expected, device)?)?;
    Ok(())
}

/// Typed access to a checkpoint's string metadata.
struct MetadataReader<'a> {
    path: &'a Path,
    metadata: &'a HashMap<String, String>,
}

impl MetadataReader<'_> {
    fn info(&self) -> Result<CheckpointInfo, CheckpointError> {
        let format = self.metadata.get(META_FORMAT);
        if format.map(String::as_str) != Some(FORMAT) {
            return Err(CheckpointError::UnsupportedFormat { path: self.path.to_owned(), found: format.cloned() });
        }
        let scheme = self.text(META_RNG)?;
        if scheme != RNG_SCHEME {
            return Err(self.invalid(META_RNG, format!("{scheme:?}, but this version draws with {RNG_SCHEME:?}")));
        }

        let config_error = |source| CheckpointError::Config { path: self.path.to_owned(), source };
        let config =
            TrainConfig::from_json(self.text(META_CONFIG)?, &self.path.display().to_string()).map_err(config_error)?;
        config.validate().map_err(config_error)?;

        let progress = RunProgress {
            epoch: self.number(META_EPOCH)?,
            iteration: self.number(META_ITERATION)?,
            dataset_len: self.number(META_DATASET_LEN)?,
        };
        Ok(CheckpointInfo { config, trained_from: self.text(META_TRAINED_FROM)?.to_owned(), progress })
    }

    fn text(&self, key: &'static str) -> Result<&str, CheckpointError> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| self.invalid(key, "missing".to_owned()))
    }

    fn number<T: std::str::FromStr>(&self, key: &'static str) -> Result<T, CheckpointError> {
        let text = self.text(key)?;
        text.parse().map_err(|_| self.invalid(key, format!("{text:?}, not a non-negative integer")))
    }

    fn invalid(&self, key: &'static str, problem: String) -> CheckpointError {
        CheckpointError::Metadata { path: self.path.to_owned(), key, problem }
    }
}
