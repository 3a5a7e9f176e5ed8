//! Training hyperparameters and run settings.

use std::path::Path;

use dcgan_runtime::{GeneratorSpec, SpecError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::device::{DeviceError, DeviceSpec};
use crate::model::DiscriminatorSpec;

/// File name of the configuration copy inside a run directory.
pub const CONFIG_FILE: &str = "config.json";

/// Everything that decides a training run.
///
/// [`Default`] gives the PyTorch DCGAN tutorial's values. Iterations count
/// optimizer steps over the whole run, from 1; the last, partial batch of an
/// epoch is kept, as PyTorch's `DataLoader` does by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the data set.
    pub epochs: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Adam learning rate of both networks.
    pub lr: f64,
    /// Adam's first-moment decay rate.
    pub beta1: f64,
    /// Adam's second-moment decay rate.
    pub beta2: f64,
    /// Length of the latent vector.
    pub nz: usize,
    /// Feature maps in the generator's last hidden layer.
    pub ngf: usize,
    /// Feature maps in the discriminator's first layer.
    pub ndf: usize,
    /// Image channels. Only 3 (RGB) is supported, because training images
    /// are RGB.
    pub nc: usize,
    /// Height and width of the training images, in pixels: a power of two.
    pub image_size: usize,
    /// Seed of every random draw: initial weights, shuffling, noise and the
    /// fixed sample latents.
    pub seed: u64,
    /// Batches of 64 fixed latents over which the generator's BatchNorm
    /// running statistics are recomputed before each sample grid and
    /// checkpoint, so eval mode and the exported model match the current
    /// weights; 0 keeps PyTorch's running averages (momentum 0.1).
    pub bn_calibration_batches: usize,
    /// Iterations between sample grids; 0 writes only the final grid.
    pub sample_every: u64,
    /// Iterations between checkpoints; 0 writes only the final checkpoint.
    pub checkpoint_every: u64,
    /// Batches between log lines within an epoch, counted as the tutorial
    /// does (batch 0, `log_every`, ...); 0 turns log lines off.
    pub log_every: u64,
    /// Compute device: `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N`.
    pub device: String,
    /// Threads that decode training images; 0 uses all cores.
    pub workers: usize,
    /// Whether an unreadable training image is an error instead of being
    /// skipped.
    pub strict: bool,
    /// Global iteration after which the run writes a checkpoint and stops,
    /// without changing the schedule of the full run.
    pub stop_after: Option<u64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 128,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            nz: 100,
            ngf: 64,
            ndf: 64,
            nc: 3,
            image_size: 64,
            seed: 999,
            bn_calibration_batches: 4,
            sample_every: 500,
            checkpoint_every: 500,
            log_every: 50,
            device: "cpu".to_owned(),
            workers: 0,
            strict: false,
            stop_after: None,
        }
    }
}

/// A [`TrainConfig`] value that training cannot use.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A count that must be positive is zero.
    #[error("{name} = 0 is invalid: use a value of at least 1")]
    Zero {
        /// Which setting.
        name: &'static str,
    },
    /// A learning rate that is not a positive finite number.
    #[error("learning rate {0} is invalid: use a positive finite value such as 2e-4")]
    LearningRate(f64),
    /// An Adam decay rate outside `[0, 1)`.
    #[error("{name} = {value} is invalid: Adam decay rates must be in [0, 1)")]
    Beta {
        /// `beta1` or `beta2`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A channel count other than 3.
    #[error("nc = {0} is not supported: training images are RGB, so use nc = 3")]
    Channels(usize),
    /// The generator spec is invalid.
    #[error("invalid generator: {0}")]
    Generator(SpecError),
    /// `ndf` is out of range.
    #[error("ndf = {0} is out of range: use a value from 1 to 65536")]
    Ndf(usize),
    /// The device string does not parse.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A configuration file could not be read or written.
    #[error("cannot access configuration file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A configuration file is not valid JSON for [`TrainConfig`].
    #[error("invalid configuration JSON in {origin}: {source}")]
    Json {
        /// Where the JSON came from (a path or a checkpoint).
        origin: String,
        /// The cause.
        source: serde_json::Error,
    },
}

impl TrainConfig {
    /// Checks every value, so that training fails before it starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [("epochs", self.epochs), ("batch_size", self.batch_size as u64)] {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        if self.stop_after == Some(0) {
            return Err(ConfigError::Zero { name: "stop_after" });
        }

        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::LearningRate(self.lr));
        }
        for (name, value) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(ConfigError::Beta { name, value });
            }
        }

        if self.nc != 3 {
            return Err(ConfigError::Channels(self.nc));
        }
        self.generator_spec().validate().map_err(ConfigError::Generator)?;
        if self.ndf == 0 || self.ndf > 65536 {
            return Err(ConfigError::Ndf(self.ndf));
        }

        self.device_spec()?;
        Ok(())
    }

    /// The generator architecture these settings describe.
    pub fn generator_spec(&self) -> GeneratorSpec {
        GeneratorSpec { nz: self.nz, ngf: self.ngf, nc: self.nc, image_size: self.image_size }
    }

    /// The discriminator architecture these settings describe.
    pub fn discriminator_spec(&self) -> DiscriminatorSpec {
        DiscriminatorSpec { ndf: self.ndf, nc: self.nc, image_size: self.image_size }
    }

    /// The parsed [`TrainConfig::device`].
    pub fn device_spec(&self) -> Result<DeviceSpec, DeviceError> {
        self.device.parse()
    }

    /// Serialises the configuration as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and options always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a configuration from JSON; `origin` names the source in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(json).map_err(|source| ConfigError::Json { origin: origin.to_owned(), source })
    }

    /// Writes the configuration as JSON to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        std::fs::write(path, self.to_json() + "\n").map_err(|source| ConfigError::Io { path: path.to_owned(), source })
    }

    /// Reads a configuration written by [`TrainConfig::save`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let json = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        Self::from_json(&json, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn json_round_trip() {
        let config = TrainConfig { stop_after: Some(7), device: "cuda:1".into(), ..Default::default() };
        let parsed = TrainConfig::from_json(&config.to_json(), "test").unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let parsed = TrainConfig::from_json(r#"{"epochs": 2}"#, "test").unwrap();
        assert_eq!(parsed, TrainConfig { epochs: 2, ..Default::default() });
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            (TrainConfig { epochs: 0, ..Default::default() }, "epochs = 0"),
            (TrainConfig { batch_size: 0, ..Default::default() }, "batch_size = 0"),
            (TrainConfig { stop_after: Some(0), ..Default::default() }, "stop_after = 0"),
            (TrainConfig { lr: -1.0, ..Default::default() }, "learning rate -1"),
            (TrainConfig { lr: f64::NAN, ..Default::default() }, "learning rate NaN"),
            (TrainConfig { beta1: 1.0, ..Default::default() }, "beta1 = 1"),
            (TrainConfig { beta2: -0.1, ..Default::default() }, "beta2 = -0.1"),
            (TrainConfig { nc: 1, ..Default::default() }, "nc = 1"),
            (TrainConfig { image_size: 48, ..Default::default() }, "image size 48"),
            (TrainConfig { ngf: 0, ..Default::default() }, "ngf = 0"),
            (TrainConfig { ndf: 0, ..Default::default() }, "ndf = 0"),
            (TrainConfig { device: "tpu".into(), ..Default::default() }, "\"tpu\""),
        ];
        for (config, expected) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} does not contain {expected:?}");
        }
    }
}
