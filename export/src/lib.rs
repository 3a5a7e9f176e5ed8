//! Exports trained DCGAN generators for other runtimes.
//!
//! [`checkpoint`] reads the generator out of a training checkpoint, [`onnx`]
//! writes it as an ONNX model, and [`export_checkpoint`] does both.
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
pub mod onnx;

use std::path::{Path, PathBuf};

use dcgan_runtime::spec::GeneratorSpec;

pub use checkpoint::{read_generator, write_generator_checkpoint, CheckpointInfo};
pub use error::ExportError;
pub use onnx::{generator_to_onnx, write_onnx};

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

    let mut metadata = vec![(
        checkpoint::META_TRAINED_FROM.to_string(),
        folder_name(&info.trained_from),
    )];
    for (key, value) in [
        (checkpoint::META_EPOCH, info.epoch),
        (checkpoint::META_ITERATION, info.iteration),
    ] {
        if let Some(value) = value {
            metadata.push((key.to_string(), value.to_string()));
        }
    }

    let bytes = write_onnx(&weights, &metadata, onnx)?;
    Ok(ExportSummary {
        spec: weights.spec,
        bytes,
        path: onnx.to_path_buf(),
    })
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
