//! Exports trained DCGAN generators for other runtimes.
//!
//! [`checkpoint`] reads the generator out of a training checkpoint, [`onnx`]
//! writes it as an ONNX model, and [`export_checkpoint`] does both.
//! [`pytorch`] imports generators saved by PyTorch, [`qdq`] writes the folded
//! int8 form as a QDQ ONNX model, [`export_generator`] writes any set of
//! forms, and [`verify`] compares the forms of one generator.
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
pub mod layers;
pub mod onnx;
pub mod pytorch;
pub mod qdq;
pub mod verify;

use std::path::{Path, PathBuf};

use dcgan_runtime::spec::GeneratorSpec;

pub use checkpoint::{read_generator, write_generator_checkpoint, CheckpointInfo};
pub use error::ExportError;
pub use layers::{parse_layer_list, DEFAULT_KEEP_F32};
pub use onnx::{generator_to_onnx, write_onnx};
pub use pytorch::{parse_pytorch_generator, read_pytorch_generator, ImportInfo};
pub use qdq::{generator_to_qdq_onnx, write_qdq_onnx};

/// Result of [`export_checkpoint`]: the exported spec and file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The exported generator's architecture.
    pub spec: GeneratorSpec,
    /// Size of the ONNX file in bytes.
    pub bytes: u64,
    /// The ONNX file.
    pub path: PathBuf,
}

/// Exports the generator of a training run to an ONNX file.
///
/// `run_dir` is a run directory or its checkpoint file (see
/// [`read_generator`]). The model's metadata records `trained_from` (the
/// training folder's name, without its parent directories, so that a shared
/// model does not reveal the trainer's file system) and, where the checkpoint
/// has them, `epoch` and `iteration`.
///
/// # Errors
///
/// The errors of [`read_generator`] and [`write_onnx`].
pub fn export_checkpoint(run_dir: &Path, onnx: &Path) -> Result<ExportSummary, ExportError> {
    let (weights, info) = read_generator(run_dir)?;

    let metadata = checkpoint_metadata(&info);
    let bytes = write_onnx(&weights, &metadata, onnx)?;
    Ok(ExportSummary {
        spec: weights.spec,
        bytes,
        path: onnx.to_path_buf(),
    })
}

/// Where a generator is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeneratorSource {
    /// A training run directory or its `checkpoint.safetensors`.
    Checkpoint(PathBuf),
    /// A PyTorch `.pth` or safetensors `state_dict` (see [`pytorch`]).
    Pytorch(PathBuf),
}

impl GeneratorSource {
    /// The path given.
    pub fn path(&self) -> &Path {
        match self {
            GeneratorSource::Checkpoint(path) | GeneratorSource::Pytorch(path) => path,
        }
    }
}

/// Reads a generator and the ONNX metadata that records its origin.
///
/// # Errors
///
/// The errors of [`read_generator`] or [`read_pytorch_generator`].
pub fn read_source(
    source: &GeneratorSource,
) -> Result<(dcgan_runtime::GeneratorWeights, Vec<(String, String)>), ExportError> {
    match source {
        GeneratorSource::Checkpoint(path) => {
            let (weights, info) = read_generator(path)?;
            Ok((weights, checkpoint_metadata(&info)))
        }
        GeneratorSource::Pytorch(path) => {
            let (weights, info) = read_pytorch_generator(path)?;
            Ok((weights, pytorch::import_metadata(path, &info)))
        }
    }
}

/// Files [`export_generator`] writes; `None` skips a form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportTargets {
    /// f32 ONNX with BatchNorm nodes, as [`write_onnx`] writes it.
    pub onnx: Option<PathBuf>,
    /// Weight file of the folded generator (see `dcgan_runtime::weight_file`).
    pub int8: Option<PathBuf>,
    /// QDQ ONNX of the folded generator, as [`write_qdq_onnx`] writes it.
    pub qdq_onnx: Option<PathBuf>,
    /// Layers whose kernels stay f32 in the weight file and QDQ ONNX, in the
    /// syntax of [`parse_layer_list`] (for example `first,last` or `none`).
    pub keep_f32: String,
}

/// One file written by [`export_generator`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    /// `onnx`, `int8` or `qdq-onnx`.
    pub kind: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Result of [`export_generator`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// The exported generator's architecture.
    pub spec: GeneratorSpec,
    /// Layers stored as int8 in the weight file and QDQ ONNX.
    pub int8_layers: Vec<usize>,
    /// The files written, in the order f32 ONNX, weight file, QDQ ONNX.
    pub files: Vec<WrittenFile>,
}

/// Reads a generator and writes every requested form of it.
///
/// BatchNorm is folded into the convolutions, and every layer not in
/// `targets.keep_f32` is quantized to int8 per output channel (see
/// `dcgan_runtime::quantized`), for the weight file and the QDQ ONNX.
///
/// # Errors
///
/// The errors of [`read_source`], [`write_onnx`] and [`write_qdq_onnx`],
/// [`ExportError::LayerList`] for an invalid `keep_f32` list,
/// and [`ExportError::Write`] when the weight file cannot be written.
pub fn export_generator(source: &GeneratorSource, targets: &ExportTargets) -> Result<ExportReport, ExportError> {
    let (weights, metadata) = read_source(source)?;
    let keep_f32 = parse_layer_list(&targets.keep_f32, weights.spec.num_layers())?;

    let mut files = Vec::new();
    if let Some(path) = &targets.onnx {
        let bytes = write_onnx(&weights, &metadata, path)?;
        files.push(WrittenFile { kind: "onnx", path: path.clone(), bytes });
    }

    let folded = dcgan_runtime::quantized::fold_batch_norm(&weights)?;
    let mut quantized = folded.quantize(|index| !keep_f32.contains(&index));
    // Activation scales for the core's integer path, from the scalar
    // reference on fixed seeded latents, so every export of one checkpoint
    // writes the same file.
    quantized.activation_scales = dcgan_runtime::quantized::calibrate_activation_scales(
        &quantized,
        dcgan_runtime::quantized::CALIBRATION_SEED,
        dcgan_runtime::quantized::CALIBRATION_LATENTS,
    )?;
    if let Some(path) = &targets.int8 {
        let bytes = dcgan_runtime::weight_file::write(&quantized)?;
        write_atomic(path, &bytes)?;
        log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
        files.push(WrittenFile { kind: "int8", path: path.clone(), bytes: bytes.len() as u64 });
    }
    if let Some(path) = &targets.qdq_onnx {
        let bytes = write_qdq_onnx(&quantized, &metadata, path)?;
        files.push(WrittenFile { kind: "qdq-onnx", path: path.clone(), bytes });
    }
    Ok(ExportReport { spec: weights.spec, int8_layers: quantized.int8_layers(), files })
}

/// `trained_from` and, where recorded, `epoch` and `iteration`.
fn checkpoint_metadata(info: &CheckpointInfo) -> Vec<(String, String)> {
    // Only the training folder's name is recorded, so that a shared model
    // does not reveal the trainer's file system.
    let mut metadata = vec![(checkpoint::META_TRAINED_FROM.to_string(), folder_name(&info.trained_from))];
    for (key, value) in [(checkpoint::META_EPOCH, info.epoch), (checkpoint::META_ITERATION, info.iteration)] {
        if let Some(value) = value {
            metadata.push((key.to_string(), value.to_string()));
        }
    }
    metadata
}

/// Reads a weight file, naming it in any error.
///
/// # Errors
///
/// [`ExportError::Read`] when the file cannot be read and
/// [`ExportError::WeightFile`] when it is not a valid weight file.
pub fn read_weight_file(path: &Path) -> Result<dcgan_runtime::QuantizedGenerator, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read { path: path.to_path_buf(), source })?;
    dcgan_runtime::weight_file::read(&bytes).map_err(|error| ExportError::WeightFile { path: path.to_path_buf(), error })
}

/// Returns the last component of `path`, or `path` itself when it has none
/// (for example `synthetic`).
fn folder_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |name| name.to_string_lossy().into_owned())
}

/// Writes `bytes` to a temporary sibling of `path` and renames it over
/// `path`, creating missing parent directories. Readers see the old file or
/// the complete new one, never a partial write.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Write { path, source }
    };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(write_error(parent))?;
    }

    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |name| name.to_string_lossy());
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let written = std::fs::write(&temporary, bytes)
        .map_err(write_error(&temporary))
        .and_then(|()| std::fs::rename(&temporary, path).map_err(write_error(path)));
    if written.is_err() {
        // Best effort: the temporary file may not exist, and the original error matters more.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
