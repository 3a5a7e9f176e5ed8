//! The training loop of the DCGAN tutorial.
//!
//! Each iteration trains the discriminator on a real batch (label 1) and on a
//! detached fake batch (label 0), steps its optimizer, then trains the
//! generator to make the updated discriminator output 1 on the same fakes.
//! A run directory receives:
//! - `config.json`, the [`TrainConfig`];
//! - `checkpoint.safetensors`, every `checkpoint_every` iterations and at the
//!   end (see [`crate::checkpoint`]);
//! - `losses.csv`, one row per iteration;
//! - `samples/iter_NNNNNN.png` every `sample_every` iterations and
//!   `samples/final.png` when the run completes;
//! - `losses.png`, the loss curves, when the run ends;
//! - `progress.gif`, the sample grids as an animation, and
//!   `real-vs-fake.png`, training images beside the last grid, when the run
//!   ends.
//!
//! `losses.csv` also logs the mean pairwise distance of the fixed-noise
//! samples, and the run warns through [`TrainObserver::on_warning`] when it
//! falls far below its first value, a sign of mode collapse. A NaN or
//! infinite loss stops the run with [`TrainError::NonFiniteLoss`] and
//! leaves the last checkpoint as it was; a checkpoint is never written from
//! weights that hold a NaN or an infinity.
//!
//! An epoch visits every image once in an order drawn from `(seed, epoch)`,
//! and its last batch may be smaller than `batch_size`, as with PyTorch's
//! `DataLoader`. The noise of each iteration is drawn from
//! `(seed, iteration)`, so a resumed run repeats exactly what an
//! uninterrupted run computes.

mod diversity;
mod loss_log;
mod observer;
mod pictures;
mod run;
mod samples;
mod step;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use thiserror::Error;

use crate::adam::AdamError;
use crate::checkpoint::{checkpoint_path, load_checkpoint, read_checkpoint_info, CheckpointError, CheckpointInfo};
use crate::config::{ConfigError, TrainConfig, CONFIG_FILE};
use crate::data::ImageSet;
use crate::device::DeviceError;
use crate::model::ModelError;
use crate::plot::PlotError;
use crate::state::TrainingState;

pub use diversity::{mean_pairwise_distance, DiversityMonitor, COLLAPSE_RATIO};
pub use loss_log::{read_loss_log, LossRecord, LOSSES_FILE, LOSSES_HEADER, LOSSES_HEADER_WITHOUT_DIVERSITY};
pub use pictures::{PROGRESS_GIF_FILE, PROGRESS_GIF_FRAME_MS, PROGRESS_GIF_MAX_FRAMES, REAL_VS_FAKE_FILE};
pub use observer::{IterationStats, LogObserver, RunStart, TrainObserver};
pub use step::{train_step, StepOutput};
pub use samples::{final_sample_path, sample_path, SAMPLES_DIR, SAMPLE_COLUMNS, SAMPLE_COUNT, SAMPLE_PADDING};

/// File name of the loss plot inside a run directory.
pub const LOSS_PLOT_FILE: &str = "losses.png";

/// Reason a run returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Every epoch is done.
    Completed,
    /// The iteration set by `stop_after` is done.
    StopAfter,
    /// The stop flag was set.
    Interrupted,
}

/// Outcome of a finished, stopped or interrupted run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    /// Reason the run returned.
    pub stop_reason: StopReason,
    /// Iterations completed before this call (non-zero when resuming).
    pub start_iteration: u64,
    /// Iterations completed in total, which is the state the checkpoint contains.
    pub iteration: u64,
    /// Iterations of the whole run.
    pub total_iterations: u64,
    /// Images trained on in this call.
    pub images: u64,
    /// Wall time of the iterations in this call.
    pub elapsed: Duration,
    /// The last iteration's losses, if this call ran any iteration.
    pub last: Option<IterationStats>,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// The last sample grid written.
    pub sample: Option<PathBuf>,
    /// The loss log.
    pub loss_log: PathBuf,
    /// The loss plot; `None` when no iteration has run yet.
    pub loss_plot: Option<PathBuf>,
    /// The animation of the sample grids; `None` when no grid exists yet.
    pub progress_gif: Option<PathBuf>,
    /// Training images beside the last sample grid; `None` when this call
    /// rendered no grid.
    pub real_vs_fake: Option<PathBuf>,
}

impl TrainSummary {
    /// Training throughput of this call, in images per second.
    pub fn images_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.images as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Settings that [`resume_with`] may change in a stored configuration,
/// because they do not change what the run computes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeOverrides {
    /// Another compute device (`cpu`, `cuda:N`, `metal`).
    pub device: Option<String>,
    /// Global iteration after which to stop again; `None` runs to the end.
    /// A stored `stop_after` is always dropped on resume.
    pub stop_after: Option<u64>,
}

/// A training run that could not start or continue.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error("invalid training configuration: {0}")]
    Config(#[from] ConfigError),
    /// The compute device cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The data set has no image.
    #[error("the training set is empty: it needs at least one image")]
    EmptyData,
    /// The images do not have the configured size.
    #[error("training images are {found}x{found} pixels but the model is configured for {expected}x{expected}: load them with image size {expected}")]
    ImageSize {
        /// The configured image size.
        expected: usize,
        /// The data set's image size.
        found: usize,
    },
    /// The data set differs in size from the one the checkpoint trained on.
    #[error("the checkpoint was trained on {expected} images but {found} were given: resume with the same data")]
    DatasetChanged {
        /// Images the checkpoint trained on.
        expected: usize,
        /// Images given.
        found: usize,
    },
    /// A resumed run would stop at or before the iteration it starts from.
    #[error("stop_after {stop_after} is not after the checkpoint's iteration {iteration}: choose an iteration after {iteration}, or none to run to the end")]
    StopAfterReached {
        /// The requested last iteration.
        stop_after: u64,
        /// The checkpoint's iteration.
        iteration: u64,
    },
    /// The run directory already contains a checkpoint.
    #[error("{} already exists: resume that run or choose a new directory", path.display())]
    RunExists {
        /// The existing checkpoint.
        path: PathBuf,
    },
    /// The networks could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation of a training iteration failed.
    #[error("training iteration {iteration} failed: {source}")]
    Step {
        /// The global iteration, from 1.
        iteration: u64,
        /// The cause.
        source: candle_core::Error,
    },
    /// Another tensor operation failed.
    #[error("{context} failed: {source}")]
    Tensor {
        /// Operation that failed.
        context: &'static str,
        /// The cause.
        source: candle_core::Error,
    },
    /// An optimizer step failed.
    #[error(transparent)]
    Optimizer(#[from] AdamError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(Box<CheckpointError>),
    /// A file in the run directory could not be accessed.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The loss log does not parse.
    #[error("invalid loss log {} at line {line}: {problem}", path.display())]
    LossLog {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Description of the problem.
        problem: String,
    },
    /// A sample grid could not be written.
    #[error(transparent)]
    Sample(#[from] dcgan_runtime::grid::GridError),
    /// The loss plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A picture of the run could not be read or encoded.
    #[error("cannot write the picture {}: {reason}", path.display())]
    Picture {
        /// The picture or the grid being read.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// A loss became NaN or infinite, so the run stopped.
    #[error("training stopped at iteration {iteration}: Loss_D is {loss_d} and Loss_G is {loss_g}, so the networks diverged; {}", kept_checkpoint_hint(checkpoint))]
    NonFiniteLoss {
        /// The iteration, from 1.
        iteration: u64,
        /// Discriminator loss.
        loss_d: f32,
        /// Generator loss.
        loss_g: f32,
        /// The checkpoint left on disk and its iteration, if any.
        checkpoint: Option<(u64, PathBuf)>,
    },
    /// A tensor of the training state became NaN or infinite, so the run
    /// stopped instead of writing it to the checkpoint.
    #[error("training stopped at iteration {iteration}: tensor {tensor} holds NaN or infinite values, so it was not saved; {}", kept_checkpoint_hint(checkpoint))]
    NonFiniteWeights {
        /// The iteration, from 1.
        iteration: u64,
        /// Name of the first non-finite tensor.
        tensor: String,
        /// The checkpoint left on disk and its iteration, if any.
        checkpoint: Option<(u64, PathBuf)>,
    },
}

/// Describes the checkpoint a diverged run left behind.
fn kept_checkpoint_hint(checkpoint: &Option<(u64, PathBuf)>) -> String {
    match checkpoint {
        Some((iteration, path)) => format!(
            "the last good checkpoint, of iteration {iteration}, is kept at {}; start a new run with a lower --lr",
            path.display()
        ),
        None => "no checkpoint had been written yet; start a new run with a lower --lr".to_string(),
    }
}

impl From<CheckpointError> for TrainError {
    fn from(err: CheckpointError) -> Self {
        TrainError::Checkpoint(Box::new(err))
    }
}

/// Checks everything about a new run that does not need its images: the
/// settings, the compute device, and that `run_dir` contains no checkpoint yet.
/// Returns the opened device. Callers that load a large folder call it first,
/// so a mistake shows before the images are decoded. Writes nothing.
///
/// # Errors
/// [`TrainError::Config`], [`TrainError::Device`] or
/// [`TrainError::RunExists`].
pub fn check_new_run(config: &TrainConfig, run_dir: &Path) -> Result<candle_core::Device, TrainError> {
    config.validate()?;
    let device = config.device_spec()?.open()?;
    let checkpoint = checkpoint_path(run_dir);
    if checkpoint.exists() {
        return Err(TrainError::RunExists { path: checkpoint });
    }
    Ok(device)
}

/// Checks everything about resuming `run_dir` that does not need its images:
/// the checkpoint's settings with `overrides` applied, the compute device, and
/// that `overrides.stop_after` lies after the checkpoint's iteration. Returns
/// the checkpoint's settings and position. Writes nothing.
///
/// # Errors
/// [`TrainError::Checkpoint`], [`TrainError::Config`],
/// [`TrainError::Device`] or [`TrainError::StopAfterReached`].
pub fn check_resume(run_dir: &Path, overrides: &ResumeOverrides) -> Result<CheckpointInfo, TrainError> {
    let mut info = read_checkpoint_info(&checkpoint_path(run_dir))?;
    if let Some(device) = &overrides.device {
        info.config.device = device.clone();
    }
    info.config.stop_after = overrides.stop_after;
    info.config.validate()?;
    info.config.device_spec()?.open()?;

    let iteration = info.progress.iteration;
    if let Some(stop_after) = overrides.stop_after.filter(|&stop_after| stop_after <= iteration) {
        return Err(TrainError::StopAfterReached { stop_after, iteration });
    }
    Ok(info)
}

/// Trains new networks on `data`, writing into `run_dir`.
///
/// `trained_from` is stored in the checkpoint: the data directory, or
/// `synthetic`. Setting `stop` makes the run write a checkpoint and return
/// [`StopReason::Interrupted`] before its next iteration.
///
/// # Errors
/// [`TrainError::RunExists`] if `run_dir` already contains a checkpoint, and
/// the other [`TrainError`]s for invalid settings or data and failed I/O.
pub fn train(
    config: &TrainConfig,
    data: &ImageSet,
    run_dir: &Path,
    trained_from: &str,
    observer: &mut dyn TrainObserver,
    stop: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    let device = check_new_run(config, run_dir)?;
    check_data(config, data)?;

    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io { path: run_dir.to_owned(), source })?;
    config.save(&run_dir.join(CONFIG_FILE))?;

    let state = TrainingState::init(config, &device)?;
    log::debug!("{}\n{}", state.generator, state.discriminator);

    let log = loss_log::LossLog::create(&run_dir.join(LOSSES_FILE))?;
    let session = run::Session::new(config.clone(), data, run_dir, trained_from, state, device, log)?;
    session.run(0, observer, stop)
}

/// Continues the run in `run_dir` from its checkpoint, with its stored
/// configuration and without a `stop_after` limit.
///
/// `data` must be the images the run trained on; their order is fixed by the
/// seed. See [`resume_with`] for the errors.
pub fn resume(
    run_dir: &Path,
    data: &ImageSet,
    observer: &mut dyn TrainObserver,
    stop: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    resume_with(run_dir, data, &ResumeOverrides::default(), observer, stop)
}

/// Continues the run in `run_dir` from its checkpoint, with `overrides`
/// applied to its stored configuration.
///
/// Rows of `losses.csv` after the checkpoint's iteration are dropped, so the
/// log has no duplicate rows.
///
/// # Errors
/// [`TrainError::Checkpoint`] for a missing or invalid checkpoint,
/// [`TrainError::DatasetChanged`] or [`TrainError::ImageSize`] for data that
/// differs from the run's, and the other [`TrainError`]s for failed I/O.
pub fn resume_with(
    run_dir: &Path,
    data: &ImageSet,
    overrides: &ResumeOverrides,
    observer: &mut dyn TrainObserver,
    stop: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    let path = checkpoint_path(run_dir);
    let stored = check_resume(run_dir, overrides)?;
    let config = stored.config.clone();
    check_data(&config, data)?;
    if data.len() != stored.progress.dataset_len {
        return Err(TrainError::DatasetChanged { expected: stored.progress.dataset_len, found: data.len() });
    }

    let device = config.device_spec()?.open()?;
    let (state, info) = load_checkpoint(&path, &device)?;
    config.save(&run_dir.join(CONFIG_FILE))?;
    log::info!("resuming {} after iteration {}", run_dir.display(), info.progress.iteration);

    let log = loss_log::LossLog::resume(&run_dir.join(LOSSES_FILE), info.progress.iteration)?;
    let session = run::Session::new(config, data, run_dir, &info.trained_from, state, device, log)?;
    session.run(info.progress.iteration, observer, stop)
}

fn check_data(config: &TrainConfig, data: &ImageSet) -> Result<(), TrainError> {
    if data.is_empty() {
        return Err(TrainError::EmptyData);
    }
    if data.image_size() != config.image_size {
        return Err(TrainError::ImageSize { expected: config.image_size, found: data.image_size() });
    }
    Ok(())
}
