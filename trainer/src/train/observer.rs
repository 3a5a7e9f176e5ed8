//! Progress events that a training run reports.

use std::path::Path;

/// Description of a run, reported before its first iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStart {
    /// Iterations already completed (non-zero when resuming).
    pub start_iteration: u64,
    /// Iterations of the whole run: `epochs × batches_per_epoch`.
    pub total_iterations: u64,
    /// Iterations per epoch, the last batch of an epoch possibly partial.
    pub batches_per_epoch: u64,
    /// Images per full batch.
    pub batch_size: usize,
    /// Number of training images.
    pub dataset_len: usize,
    /// The compute device, as configured.
    pub device: String,
    /// Learnable values in the generator.
    pub generator_parameters: usize,
    /// Learnable values in the discriminator.
    pub discriminator_parameters: usize,
}

/// Losses and discriminator outputs of one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IterationStats {
    /// Epoch, counted from 0.
    pub epoch: u64,
    /// Epochs of the whole run.
    pub epochs: u64,
    /// Batch within the epoch, counted from 0.
    pub batch: u64,
    /// Batches per epoch.
    pub batches_per_epoch: u64,
    /// Global iteration, counted from 1 over the whole run.
    pub iteration: u64,
    /// Iterations of the whole run.
    pub total_iterations: u64,
    /// Images in this batch.
    pub batch_images: usize,
    /// Discriminator loss on the real and the fake batch, summed.
    pub loss_d: f32,
    /// Generator loss.
    pub loss_g: f32,
    /// Mean discriminator output on the real batch.
    pub d_x: f32,
    /// Mean discriminator output on the fake batch, before the discriminator step.
    pub d_g_z1: f32,
    /// Mean discriminator output on the fake batch, after the discriminator step.
    pub d_g_z2: f32,
    /// Mean pairwise distance of the fixed-noise samples, on iterations that
    /// render the sample grid (see `train::diversity`).
    pub sample_diversity: Option<f32>,
}

impl IterationStats {
    /// Formats the tutorial's progress line, such as
    /// `[0/5][50/1583]\tLoss_D: 1.2345\tLoss_G: 2.3456\tD(x): 0.5000\tD(G(z)): 0.4000 / 0.3000`.
    pub fn log_line(&self) -> String {
        format!(
            "[{}/{}][{}/{}]\tLoss_D: {:.4}\tLoss_G: {:.4}\tD(x): {:.4}\tD(G(z)): {:.4} / {:.4}",
            self.epoch,
            self.epochs,
            self.batch,
            self.batches_per_epoch,
            self.loss_d,
            self.loss_g,
            self.d_x,
            self.d_g_z1,
            self.d_g_z2
        )
    }
}

/// Receives a run's progress. Every method does nothing by default.
///
/// The library never prints: a command-line front end implements this to
/// print log lines and drive a progress bar, and `()` ignores everything.
pub trait TrainObserver {
    /// Called once, before the first iteration.
    fn on_start(&mut self, _start: &RunStart) {}

    /// Called after every iteration.
    fn on_iteration(&mut self, _stats: &IterationStats) {}

    /// Called with the tutorial's progress line every `log_every` batches.
    fn on_log_line(&mut self, _line: &str) {}

    /// Called after a sample grid is written.
    fn on_sample(&mut self, _path: &Path) {}

    /// Called after a checkpoint is written.
    fn on_checkpoint(&mut self, _path: &Path) {}

    /// Called with a warning about the run, such as possible mode collapse.
    fn on_warning(&mut self, _message: &str) {}
}

impl TrainObserver for () {}

/// An observer that forwards log lines, samples and checkpoints to the `log`
/// crate at info level.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogObserver;

impl TrainObserver for LogObserver {
    fn on_log_line(&mut self, line: &str) {
        log::info!("{line}");
    }

    fn on_sample(&mut self, path: &Path) {
        log::info!("wrote sample grid {}", path.display());
    }

    fn on_checkpoint(&mut self, path: &Path) {
        log::info!("wrote checkpoint {}", path.display());
    }

    fn on_warning(&mut self, message: &str) {
        log::warn!("{message}");
    }
}
