//! Compute device selection.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use thiserror::Error;

/// A compute device, as written in [`crate::config::TrainConfig::device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The host CPU.
    Cpu,
    /// The CUDA GPU with this ordinal; needs the `cuda` feature.
    Cuda(usize),
    /// The Metal GPU with this ordinal; needs the `metal` feature.
    Metal(usize),
}

/// A device that cannot be named or opened.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// The device string does not parse.
    #[error("unknown device {0:?}: use cpu, cuda, cuda:N, metal or metal:N")]
    Parse(String),
    /// candle could not open the device.
    #[error("cannot open device {device}: {source} (CUDA and Metal need dcgan built with --features cuda or --features metal)")]
    Open {
        /// The requested device.
        device: DeviceSpec,
        /// The cause.
        source: candle_core::Error,
    },
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse_error = || DeviceError::Parse(text.to_owned());
        let (kind, ordinal) = match text.split_once(':') {
            Some((kind, ordinal)) => (kind, ordinal.parse::<usize>().map_err(|_| parse_error())?),
            None => (text, 0),
        };
        match kind {
            "cpu" if !text.contains(':') => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
            "metal" => Ok(DeviceSpec::Metal(ordinal)),
            _ => Err(parse_error()),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
            DeviceSpec::Metal(ordinal) => write!(f, "metal:{ordinal}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device with candle.
    pub fn open(self) -> Result<Device, DeviceError> {
        let opened = match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => Device::new_cuda(ordinal),
            DeviceSpec::Metal(ordinal) => Device::new_metal(ordinal),
        };
        opened.map_err(|source| DeviceError::Open { device: self, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(2));
        assert_eq!("metal:0".parse::<DeviceSpec>().unwrap(), DeviceSpec::Metal(0));
    }

    #[test]
    fn rejects_unknown_devices() {
        for text in ["", "gpu", "cpu:0", "cuda:", "cuda:x", "cuda:-1"] {
            assert!(text.parse::<DeviceSpec>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn display_round_trips() {
        for spec in [DeviceSpec::Cpu, DeviceSpec::Cuda(1), DeviceSpec::Metal(0)] {
            assert_eq!(spec.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
    }
}
