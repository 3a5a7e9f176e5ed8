//! One training session: the iteration loop and what it writes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::diversity::DiversityMonitor;
use super::loss_log::{read_loss_log, LossLog};
use super::pictures::{write_progress_gif, write_real_vs_fake};
use super::samples::{calibration_noise, final_sample_path, fixed_noise, sample_path, write_sample_grid};
use super::{
    IterationStats, RunStart, StopReason, TrainError, TrainObserver, TrainSummary, LOSSES_FILE, LOSS_PLOT_FILE,
};
use crate::checkpoint::{checkpoint_path, save_checkpoint, CheckpointInfo, RunProgress};
use crate::config::TrainConfig;
use crate::data::ImageSet;
use crate::rng::{epoch_permutation, iteration_noise};
use crate::state::TrainingState;

use super::step::{train_step, StepOutput};

/// Everything a training session needs, from the first iteration it runs to
/// its final outputs.
pub(super) struct Session<'a> {
    config: TrainConfig,
    data: &'a ImageSet,
    run_dir: &'a Path,
    trained_from: String,
    state: TrainingState,
    device: Device,
    log: LossLog,
    fixed_noise: Tensor,
    calibration_noise: Vec<Tensor>,
    batches_per_epoch: u64,
    total_iterations: u64,
    batch_values: Vec<f32>,
    last_checkpoint: Option<u64>,
    last_sample: Option<(u64, PathBuf)>,
    last_grid: Option<RgbImage>,
    diversity: DiversityMonitor,
}

/// Files a session writes when it ends.
pub(super) struct FinalOutputs {
    pub(super) checkpoint: PathBuf,
    pub(super) sample: Option<PathBuf>,
    pub(super) loss_plot: Option<PathBuf>,
    pub(super) progress_gif: Option<PathBuf>,
    pub(super) real_vs_fake: Option<PathBuf>,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        config: TrainConfig,
        data: &'a ImageSet,
        run_dir: &'a Path,
        trained_from: &str,
        state: TrainingState,
        device: Device,
        log: LossLog,
    ) -> Result<Self, TrainError> {
        let fixed_noise = fixed_noise(config.seed, config.nz, &device)
            .map_err(|source| TrainError::Tensor { context: "creating the fixed latents", source })?;
        let calibration_noise = calibration_noise(config.seed, config.nz, config.bn_calibration_batches, &device)
            .map_err(|source| TrainError::Tensor { context: "creating the calibration latents", source })?;
        let batches_per_epoch = data.len().div_ceil(config.batch_size) as u64;
        let total_iterations = batches_per_epoch * config.epochs;
        Ok(Self {
            config,
            data,
            run_dir,
            trained_from: trained_from.to_owned(),
            state,
            device,
            log,
            fixed_noise,
            calibration_noise,
            batches_per_epoch,
            total_iterations,
            batch_values: Vec::new(),
            last_checkpoint: None,
            last_sample: None,
            last_grid: None,
            diversity: DiversityMonitor::default(),
        })
    }

    /// Runs from `start_iteration` completed iterations until the end, the
    /// `stop_after` iteration or `stop`, then writes the final outputs.
    pub(super) fn run(
        mut self,
        start_iteration: u64,
        observer: &mut dyn TrainObserver,
        stop: &AtomicBool,
    ) -> Result<TrainSummary, TrainError> {
        if start_iteration > 0 {
            // The checkpoint being resumed from already contains this state.
            self.last_checkpoint = Some(start_iteration);
            self.diversity = DiversityMonitor::new(self.first_logged_diversity()?);
        }
        observer.on_start(&self.run_start(start_iteration));

        let started = Instant::now();
        let mut iteration = start_iteration;
        let mut images = 0u64;
        let mut last = None;
        let mut permutation: Option<(u64, Vec<usize>)> = None;
        let stop_reason = loop {
            if iteration >= self.total_iterations {
                break StopReason::Completed;
            }
            if self.config.stop_after.is_some_and(|limit| iteration >= limit) {
                break StopReason::StopAfter;
            }
            if stop.load(Ordering::Relaxed) {
                log::info!("stop requested after iteration {iteration}");
                break StopReason::Interrupted;
            }

            let epoch = iteration / self.batches_per_epoch;
            let batch = iteration % self.batches_per_epoch;
            if permutation.as_ref().is_none_or(|(cached, _)| *cached != epoch) {
                permutation = Some((epoch, epoch_permutation(self.config.seed, epoch, self.data.len())));
            }
            let order = permutation.as_ref().map(|(_, order)| order.as_slice()).unwrap_or_default();
            let start = batch as usize * self.config.batch_size;
            let indices = &order[start..(start + self.config.batch_size).min(order.len())];

            iteration += 1;
            let output = self.step(indices, iteration).map_err(|source| TrainError::Step { iteration, source })?;
            let stats = self.stats(epoch, batch, iteration, indices.len(), &output);
            images += indices.len() as u64;
            last = Some(self.after_iteration(stats, observer)?);
        };
        let elapsed = started.elapsed();

        let outputs = self.finish(iteration, stop_reason, observer)?;
        Ok(TrainSummary {
            stop_reason,
            start_iteration,
            iteration,
            total_iterations: self.total_iterations,
            images,
            elapsed,
            last,
            checkpoint: outputs.checkpoint,
            sample: outputs.sample,
            loss_log: self.run_dir.join(LOSSES_FILE),
            loss_plot: outputs.loss_plot,
            progress_gif: outputs.progress_gif,
            real_vs_fake: outputs.real_vs_fake,
        })
    }

    /// Reads the first `sample_diversity` of the loss log, the mode-collapse
    /// monitor's reference when a run resumes.
    fn first_logged_diversity(&self) -> Result<Option<f32>, TrainError> {
        let path = self.run_dir.join(LOSSES_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(read_loss_log(&path)?.iter().find_map(|record| record.sample_diversity))
    }

    fn run_start(&self, start_iteration: u64) -> RunStart {
        RunStart {
            start_iteration,
            total_iterations: self.total_iterations,
            batches_per_epoch: self.batches_per_epoch,
            batch_size: self.config.batch_size,
            dataset_len: self.data.len(),
            device: self.config.device.clone(),
            generator_parameters: self.state.generator.parameter_count(),
            discriminator_parameters: self.state.discriminator.parameter_count(),
        }
    }

    /// Runs one iteration of the tutorial's loop on the images `indices`.
    fn step(&mut self, indices: &[usize], iteration: u64) -> candle_core::Result<StepOutput> {
        let size = self.config.image_size;
        let nz = self.config.nz;
        let count = indices.len();
        self.data.fill_batch(indices, &mut self.batch_values);
        let real = Tensor::from_slice(&self.batch_values, (count, 3, size, size), &self.device)?;
        let noise_values = iteration_noise(self.config.seed, iteration, count * nz);
        let noise = Tensor::from_vec(noise_values, (count, nz, 1, 1), &self.device)?;

        train_step(&mut self.state, &real, &noise)
    }

    fn stats(
        &self,
        epoch: u64,
        batch: u64,
        iteration: u64,
        batch_images: usize,
        output: &StepOutput,
    ) -> IterationStats {
        IterationStats {
            epoch,
            epochs: self.config.epochs,
            batch,
            batches_per_epoch: self.batches_per_epoch,
            iteration,
            total_iterations: self.total_iterations,
            batch_images,
            loss_d: output.loss_d,
            loss_g: output.loss_g,
            d_x: output.d_x,
            d_g_z1: output.d_g_z1,
            d_g_z2: output.d_g_z2,
            sample_diversity: None,
        }
    }

    /// Records one iteration and writes the periodic outputs that are due.
    ///
    /// It renders the sample grid first, so the grid's diversity goes into
    /// the same row of the loss log. A non-finite loss stops the run before any
    /// checkpoint of these weights is written.
    fn after_iteration(
        &mut self,
        mut stats: IterationStats,
        observer: &mut dyn TrainObserver,
    ) -> Result<IterationStats, TrainError> {
        let iteration = stats.iteration;
        let finite = stats.loss_d.is_finite() && stats.loss_g.is_finite();
        if finite && is_due(iteration, self.config.sample_every) {
            stats.sample_diversity = Some(self.sample(iteration, sample_path(self.run_dir, iteration), observer)?);
        }

        self.log.append(&stats)?;
        observer.on_iteration(&stats);
        if self.config.log_every > 0 && stats.batch % self.config.log_every == 0 {
            observer.on_log_line(&stats.log_line());
        }
        if !finite {
            return Err(self.non_finite_loss(&stats));
        }

        if is_due(iteration, self.config.checkpoint_every) {
            self.checkpoint(iteration, observer)?;
        }
        Ok(stats)
    }

    /// Builds the error for a NaN or infinite loss, after plotting the
    /// losses so far; the checkpoint on disk is left as it is.
    fn non_finite_loss(&self, stats: &IterationStats) -> TrainError {
        if let Err(err) = self.plot_losses() {
            log::warn!("could not plot the losses after the non-finite loss: {err}");
        }
        TrainError::NonFiniteLoss {
            iteration: stats.iteration,
            loss_d: stats.loss_d,
            loss_g: stats.loss_g,
            checkpoint: self.kept_checkpoint(),
        }
    }

    /// The checkpoint on disk and its iteration, if one was written.
    fn kept_checkpoint(&self) -> Option<(u64, PathBuf)> {
        self.last_checkpoint.map(|iteration| (iteration, checkpoint_path(self.run_dir)))
    }

    /// Recomputes the generator's BatchNorm running statistics for its
    /// current weights; without calibration batches it keeps the running
    /// averages, as PyTorch does.
    fn recalibrate(&self) -> Result<(), TrainError> {
        if self.calibration_noise.is_empty() {
            return Ok(());
        }
        self.state
            .generator
            .recalibrate_batch_norm(&self.calibration_noise)
            .map_err(|source| TrainError::Tensor { context: "recalibrating BatchNorm", source })
    }

    /// Writes a sample grid and returns the samples' mean pairwise distance,
    /// warning through `observer` when it suggests mode collapse.
    fn sample(&mut self, iteration: u64, path: PathBuf, observer: &mut dyn TrainObserver) -> Result<f32, TrainError> {
        self.recalibrate()?;
        let grid = write_sample_grid(&self.state.generator, &self.fixed_noise, &path)?;
        observer.on_sample(&path);
        if let Some(warning) = self.diversity.observe(iteration, grid.diversity) {
            observer.on_warning(&warning);
        }
        self.last_sample = Some((iteration, path));
        self.last_grid = Some(grid.image);
        Ok(grid.diversity)
    }

    fn checkpoint(&mut self, iteration: u64, observer: &mut dyn TrainObserver) -> Result<PathBuf, TrainError> {
        let path = checkpoint_path(self.run_dir);
        let info = CheckpointInfo {
            config: self.config.clone(),
            trained_from: self.trained_from.clone(),
            progress: RunProgress {
                epoch: iteration / self.batches_per_epoch,
                iteration,
                dataset_len: self.data.len(),
            },
        };
        self.recalibrate()?;
        if let Some(tensor) = self.first_non_finite_tensor()? {
            return Err(TrainError::NonFiniteWeights { iteration, tensor, checkpoint: self.kept_checkpoint() });
        }
        save_checkpoint(&path, &self.state, &info)?;
        observer.on_checkpoint(&path);
        self.last_checkpoint = Some(iteration);
        Ok(path)
    }

    /// Names the first tensor of the training state that contains a NaN or an
    /// infinity, if any.
    fn first_non_finite_tensor(&self) -> Result<Option<String>, TrainError> {
        for named in self.state.named_tensors() {
            // x - x is 0 for finite x and NaN for NaN or an infinity.
            let tensor = named.var.as_tensor();
            let check = tensor
                .sub(tensor)
                .and_then(|zeros| zeros.sum_all())
                .and_then(|sum| sum.to_dtype(candle_core::DType::F32))
                .and_then(|sum| sum.to_scalar::<f32>())
                .map_err(|source| TrainError::Tensor { context: "checking the weights for NaN", source })?;
            if !check.is_finite() {
                return Ok(Some(named.name));
            }
        }
        Ok(None)
    }

    /// Writes the checkpoint, the last sample grid, the loss plot and the
    /// pictures for a run that stops after `iteration` iterations.
    fn finish(
        &mut self,
        iteration: u64,
        reason: StopReason,
        observer: &mut dyn TrainObserver,
    ) -> Result<FinalOutputs, TrainError> {
        let checkpoint = if self.last_checkpoint == Some(iteration) {
            checkpoint_path(self.run_dir)
        } else {
            self.checkpoint(iteration, observer)?
        };

        if reason == StopReason::Completed {
            self.sample(iteration, final_sample_path(self.run_dir), observer)?;
        } else if iteration > 0 && self.last_sample.as_ref().is_none_or(|(done, _)| *done != iteration) {
            self.sample(iteration, sample_path(self.run_dir, iteration), observer)?;
        }

        let loss_plot = self.plot_losses()?;
        let sample = self.last_sample.as_ref().map(|(_, path)| path.clone());
        let final_grid = final_sample_path(self.run_dir);
        let completed = reason == StopReason::Completed;
        let progress_gif = write_progress_gif(self.run_dir, completed.then_some(final_grid.as_path()))?;
        let real_vs_fake = match &self.last_grid {
            Some(grid) => Some(write_real_vs_fake(self.data, grid, self.run_dir)?),
            None => None,
        };
        Ok(FinalOutputs { checkpoint, sample, loss_plot, progress_gif, real_vs_fake })
    }

    /// Plots every row of the loss log, including rows of earlier sessions.
    fn plot_losses(&self) -> Result<Option<PathBuf>, TrainError> {
        let records = read_loss_log(&self.run_dir.join(LOSSES_FILE))?;
        if records.is_empty() {
            return Ok(None);
        }
        let loss_d: Vec<f32> = records.iter().map(|record| record.loss_d).collect();
        let loss_g: Vec<f32> = records.iter().map(|record| record.loss_g).collect();
        let path = self.run_dir.join(LOSS_PLOT_FILE);
        crate::plot::plot_losses(&loss_d, &loss_g, &path)?;
        Ok(Some(path))
    }
}

fn is_due(iteration: u64, every: u64) -> bool {
    every > 0 && iteration % every == 0
}
