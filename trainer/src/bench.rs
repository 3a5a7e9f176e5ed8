//! Throughput of the full training step, and the same step in PyTorch.
//!
//! [`bench_train_step`] times [`crate::train::train_step`] (the discriminator
//! on a real and a fake batch, its Adam step, the generator's step) on
//! random images, so no data set is needed. [`pytorch_train_step`] runs the
//! same step through PyTorch with the script `benches/pytorch_step.py`, when
//! a Python with `torch` is at hand, for a side-by-side ratio.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use thiserror::Error;

use crate::config::{ConfigError, TrainConfig};
use crate::device::DeviceError;
use crate::model::ModelError;
use crate::rng::iteration_noise;
use crate::state::TrainingState;
use crate::train::train_step;

/// The PyTorch side of the benchmark, run with `python - ARGS` on stdin.
pub const PYTORCH_SCRIPT: &str = include_str!("../benches/pytorch_step.py");

/// Exit status of [`PYTORCH_SCRIPT`] when `torch` cannot be imported.
const TORCH_MISSING: i32 = 3;

/// Settings of a benchmark run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// Feature maps in the generator's last hidden layer (64 in the tutorial).
    pub ngf: usize,
    /// Feature maps in the discriminator's first layer (64 in the tutorial).
    pub ndf: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps.
    pub iterations: usize,
    /// Compute device: `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
}

impl BenchConfig {
    /// Builds the training configuration the benchmark's networks come from:
    /// the tutorial's, with this benchmark's sizes.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            ngf: self.ngf,
            ndf: self.ndf,
            batch_size: self.batch_size,
            device: self.device.clone(),
            ..TrainConfig::default()
        }
    }
}

/// Timings of a benchmark run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    /// Images per step.
    pub batch_size: usize,
    /// Duration of every timed step, in order.
    pub steps: Vec<Duration>,
}

impl BenchResult {
    /// Median step duration.
    pub fn median(&self) -> Duration {
        let mut sorted = self.steps.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    /// Fastest step.
    pub fn best(&self) -> Duration {
        self.steps.iter().min().copied().unwrap_or_default()
    }

    /// Images per second at the median step duration.
    pub fn images_per_second(&self) -> f64 {
        let seconds = self.median().as_secs_f64();
        if seconds > 0.0 {
            self.batch_size as f64 / seconds
        } else {
            0.0
        }
    }
}

/// A benchmark that could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The sizes are not a trainable configuration.
    #[error("invalid benchmark settings: {0}")]
    Config(#[from] ConfigError),
    /// The device cannot be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The networks cannot be built.
    #[error("cannot build the networks: {0}")]
    Model(#[from] ModelError),
    /// A step failed.
    #[error("training step failed: {0}")]
    Step(#[from] candle_core::Error),
    /// `iterations` is 0.
    #[error("iterations = 0: time at least one step")]
    NoIterations,
    /// The Python interpreter could not be started.
    #[error("cannot run {python}: {source}; pass the path of a Python with torch installed")]
    PythonStart {
        /// The interpreter.
        python: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The PyTorch script failed.
    #[error("the PyTorch benchmark failed ({status}): {stderr}")]
    PythonFailed {
        /// Exit status.
        status: String,
        /// The script's stderr output.
        stderr: String,
    },
    /// The PyTorch script printed something unexpected.
    #[error("cannot read the PyTorch benchmark's output {output:?}: {source}")]
    PythonOutput {
        /// The last line of stdout.
        output: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Times `config.iterations` training steps after `config.warmup` untimed
/// ones, on random images in `[-1, 1]` and the noise training would draw.
pub fn bench_train_step(config: &BenchConfig) -> Result<BenchResult, BenchError> {
    if config.iterations == 0 {
        return Err(BenchError::NoIterations);
    }
    let train_config = config.train_config();
    train_config.validate()?;
    let device = train_config.device_spec()?.open()?;
    let mut state = TrainingState::init(&train_config, &device)?;

    let (batch, size, nz) = (config.batch_size, train_config.image_size, train_config.nz);
    let mut rng = ChaCha8Rng::seed_from_u64(train_config.seed);
    let pixels: Vec<f32> = (0..batch * train_config.nc * size * size).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let real = Tensor::from_vec(pixels, (batch, train_config.nc, size, size), &device)?;

    let mut steps = Vec::with_capacity(config.iterations);
    for iteration in 0..config.warmup + config.iterations {
        let noise = iteration_noise(train_config.seed, iteration as u64 + 1, batch * nz);
        let noise = Tensor::from_vec(noise, (batch, nz, 1, 1), &device)?;
        let started = Instant::now();
        let output = train_step(&mut state, &real, &noise)?;
        device.synchronize()?;
        if iteration >= config.warmup {
            steps.push(started.elapsed());
        }
        log::debug!("step {iteration}: Loss_D {} Loss_G {}", output.loss_d, output.loss_g);
    }
    Ok(BenchResult { batch_size: batch, steps })
}

/// The PyTorch figures of one benchmark, as [`PYTORCH_SCRIPT`] prints them.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PytorchResult {
    /// PyTorch's version string.
    pub torch: String,
    /// Intra-op threads PyTorch used.
    pub threads: usize,
    /// Median step duration, in seconds.
    pub median_seconds: f64,
    /// Images per second at the median step duration.
    pub images_per_second: f64,
}

/// Runs the same benchmark through PyTorch on the same device (`cpu`,
/// `cuda:N`, or `metal` as PyTorch's `mps`) with `threads` CPU threads.
///
/// Returns `Ok(None)` when `python` does not exist or cannot import `torch`.
pub fn pytorch_train_step(
    python: &str,
    config: &BenchConfig,
    threads: usize,
) -> Result<Option<PytorchResult>, BenchError> {
    let args = [
        "-".to_owned(),
        format!("--ngf={}", config.ngf),
        format!("--ndf={}", config.ndf),
        format!("--batch={}", config.batch_size),
        format!("--warmup={}", config.warmup),
        format!("--iterations={}", config.iterations),
        format!("--threads={threads}"),
        format!("--device={}", torch_device(&config.device)),
        "--json".to_owned(),
    ];
    let start_error = |source| BenchError::PythonStart { python: python.to_owned(), source };
    let spawned =
        Command::new(python).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            log::info!("PyTorch benchmark skipped: {python} not found");
            return Ok(None);
        }
        Err(err) => return Err(start_error(err)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(PYTORCH_SCRIPT.as_bytes()).map_err(start_error)?;
    }
    let output = child.wait_with_output().map_err(start_error)?;
    if output.status.code() == Some(TORCH_MISSING) {
        log::info!("{}", String::from_utf8_lossy(&output.stderr).trim());
        return Ok(None);
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(BenchError::PythonFailed { status: output.status.to_string(), stderr });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    serde_json::from_str(&last).map(Some).map_err(|source| BenchError::PythonOutput { output: last, source })
}

/// Translates a trainer device name into PyTorch's: `metal` and `metal:N`
/// are `mps`, and `cuda` and `cpu` keep their names.
fn torch_device(device: &str) -> String {
    if device.starts_with("metal") {
        "mps".to_owned()
    } else {
        device.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_rate() {
        let steps = [3, 1, 2].map(Duration::from_millis).to_vec();
        let result = BenchResult { batch_size: 4, steps };
        assert_eq!(result.median(), Duration::from_millis(2));
        assert_eq!(result.best(), Duration::from_millis(1));
        assert!((result.images_per_second() - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn torch_device_names() {
        assert_eq!(torch_device("cpu"), "cpu");
        assert_eq!(torch_device("cuda:1"), "cuda:1");
        assert_eq!(torch_device("metal"), "mps");
        assert_eq!(torch_device("metal:0"), "mps");
    }

    #[test]
    fn zero_iterations_is_an_error() {
        let config = BenchConfig { ngf: 4, ndf: 4, batch_size: 2, warmup: 0, iterations: 0, device: "cpu".to_owned() };
        assert!(matches!(bench_train_step(&config), Err(BenchError::NoIterations)));
    }

    #[test]
    fn missing_python_skips_pytorch() {
        let config = BenchConfig { ngf: 2, ndf: 2, batch_size: 2, warmup: 0, iterations: 1, device: "cpu".to_owned() };
        let result = pytorch_train_step("/nonexistent/python3", &config, 1).unwrap();
        assert!(result.is_none());
    }

    #[test]
    fn tiny_model_runs() {
        let config = BenchConfig { ngf: 2, ndf: 2, batch_size: 2, warmup: 0, iterations: 1, device: "cpu".to_owned() };
        let result = bench_train_step(&config).unwrap();
        assert_eq!(result.steps.len(), 1);
    }
}
