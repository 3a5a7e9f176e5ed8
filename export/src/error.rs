//! The error type of every export step.

use std::io;
use std::path::PathBuf;

use dcgan_runtime::quantized::QuantizedError;
use dcgan_runtime::weight_file::WeightFileError;
use dcgan_runtime::weights::WeightsError;

/// A failure to read a checkpoint or to write an export.
///
/// Variants about a file name it, and variants about a tensor name the tensor.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The checkpoint file, or the run directory that should hold it, does
    /// not exist.
    #[error("no checkpoint at {}: pass a run directory written by `dcgan train --out DIR` or its checkpoint file", path.display())]
    CheckpointNotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The unreadable file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file or its temporary sibling could not be written or renamed.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a readable safetensors file (empty, truncated or garbage).
    #[error(
        "{} is not a valid safetensors checkpoint ({reason}): the file is damaged or cut short, \
         for example by an interrupted copy. Copy it again, or export from another checkpoint",
        path.display()
    )]
    InvalidCheckpoint {
        /// The rejected file.
        path: PathBuf,
        /// The safetensors parser's error message.
        reason: String,
    },
    /// A metadata entry is missing or invalid.
    #[error("{}: metadata key `{key}` {problem}", path.display())]
    Metadata {
        /// The checkpoint file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// The problem, as the end of a sentence ("is missing ...").
        problem: String,
    },
    /// A generator tensor is missing from the checkpoint.
    #[error("{}: tensor {name} is missing: the checkpoint holds no complete generator", path.display())]
    MissingTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name, such as `netG.main.0.weight`.
        name: String,
    },
    /// A tensor's shape differs from the one the generator spec needs.
    #[error("{}: {name}: expected shape {expected:?}, found {found:?}", path.display())]
    TensorShape {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Shape the spec in the metadata needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is not stored as 32-bit floats.
    #[error("{}: {name}: expected dtype F32, found {found}", path.display())]
    TensorDtype {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The dtype in the file.
        found: String,
    },
    /// A tensor contains NaN or infinite values.
    #[error("{}: {name} holds {count} NaN or infinite values: the training run diverged, so the generator is unusable", path.display())]
    NonFinite {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Number of non-finite values.
        count: usize,
    },
    /// The weights do not fit their spec.
    #[error("invalid generator weights: {0}")]
    Weights(#[from] WeightsError),
    /// A BatchNorm epsilon other than the one checkpoints assume.
    #[error("layer {layer}: BatchNorm eps {eps} cannot be stored: checkpoints assume PyTorch's default {expected}")]
    BatchNormEps {
        /// Layer index, from 0 at the latent.
        layer: usize,
        /// The rejected epsilon.
        eps: f32,
        /// The epsilon checkpoints assume.
        expected: f32,
    },
    /// Extra ONNX metadata tries to set a key the exporter derives itself.
    #[error("ONNX metadata key `{key}` is reserved: the exporter sets it from the generator spec")]
    ReservedMetadataKey {
        /// The rejected key.
        key: String,
    },
    /// Extra ONNX metadata names a key twice.
    #[error("ONNX metadata key `{key}` is given twice")]
    DuplicateMetadataKey {
        /// The repeated key.
        key: String,
    },
    /// The serialized model would exceed protobuf's 2 GiB message limit.
    #[error("the ONNX model would be {bytes} bytes, over the 2 GiB protobuf limit: use a smaller ngf or image size")]
    TooLarge {
        /// Estimated size of the encoded model.
        bytes: usize,
    },
    /// A folded or int8 generator does not fit its spec.
    #[error("invalid folded generator: {0}")]
    Quantized(#[from] QuantizedError),
    /// A weight file is not valid.
    #[error("weight file {}: {error}", path.display())]
    WeightFile {
        /// The weight file.
        path: PathBuf,
        /// The problem found in it.
        error: WeightFileError,
    },
    /// A PyTorch or safetensors file could not be parsed.
    #[error("{} is not a readable {format} file: {reason}", path.display())]
    InvalidImport {
        /// The rejected file.
        path: PathBuf,
        /// `PyTorch .pth` or `safetensors`.
        format: &'static str,
        /// What the parser found wrong.
        reason: String,
    },
    /// A PyTorch or safetensors file contains no generator `state_dict`.
    #[error("{}: no DCGAN generator found: {reason}", path.display())]
    NoGenerator {
        /// The file.
        path: PathBuf,
        /// What was searched for and what was found.
        reason: String,
    },
    /// A generator `state_dict` contains a tensor the architecture has no place for.
    #[error("{}: unexpected tensor {name} with shape {shape:?}: the tutorial's generator has no such parameter", path.display())]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// `--keep-f32` or a similar layer list names no valid layer.
    #[error("invalid layer list `{list}`: {reason}")]
    LayerList {
        /// The list as given.
        list: String,
        /// The problem found in it.
        reason: String,
    },
    /// tract failed to load or run an ONNX file.
    #[error(transparent)]
    Runtime(#[from] dcgan_runtime::RuntimeError),
    /// `dcgan verify` found forms it cannot compare.
    #[error("cannot verify: {reason}")]
    Verify {
        /// What does not fit.
        reason: String,
    },
    /// safetensors failed to serialize the tensors.
    #[error("failed to serialize checkpoint {}: {reason}", path.display())]
    Serialize {
        /// The destination file.
        path: PathBuf,
        /// The safetensors writer's error message.
        reason: String,
    },
}
