//! Errors of the generator core.

use core::fmt;

use crate::quantized::QuantizedError;

/// Why the core cannot build a generator or run a call.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineError {
    /// The folded generator does not fit its spec.
    Generator(QuantizedError),
    /// The generator's weights plus scratch need more memory than allowed.
    MemoryLimit {
        /// Bytes the declared sizes need.
        needed: usize,
        /// The limit, [`super::EngineConfig::memory_limit`].
        limit: usize,
    },
    /// A buffer passed to a generate call has the wrong length.
    Length {
        /// Which buffer (`latent`, `scratch`, `output` or `pixel`).
        buffer: &'static str,
        /// Length needed (the minimum for `scratch`).
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// Pixels were requested from a generator that does not make RGB images.
    Channels {
        /// The generator's image channels.
        found: usize,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Generator(err) => write!(f, "invalid generator: {err}"),
            EngineError::MemoryLimit { needed, limit } => write!(
                f,
                "the generator needs {needed} bytes for weights and scratch, more than the limit of {limit} bytes: \
                 raise the memory limit (dcgan-edge --memory-limit) if this device has that much memory"
            ),
            EngineError::Length { buffer, expected, found } if *buffer == "scratch" => {
                write!(f, "the scratch buffer has {found} values but the generator needs at least {expected}")
            }
            EngineError::Length { buffer, expected, found } => {
                write!(f, "the {buffer} buffer has {found} values but the generator needs exactly {expected}")
            }
            EngineError::Channels { found } => {
                write!(f, "the generator makes {found}-channel images; pixels need 3 channels (RGB)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Generator(err) => Some(err),
            _ => None,
        }
    }
}
