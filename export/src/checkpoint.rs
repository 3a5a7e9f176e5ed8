//! The trainer's checkpoint format, as far as exporting needs it.
//!
//! A checkpoint is one safetensors file, `RUN_DIR/checkpoint.safetensors`.
//! Tensor names follow the PyTorch DCGAN tutorial's `state_dict` with a
//! network prefix, so `netG.main.0.weight` is the generator's first
//! transposed convolution and `netG.main.1.running_mean` its BatchNorm's
//! running mean. Generator layer `i` (from 0 at the latent) has its
//! convolution at `main.{3i}` and its BatchNorm at `main.{3i+1}`.
//! The safetensors metadata holds the configuration as JSON.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use dcgan_runtime::spec::{GeneratorSpec, LayerSpec, KERNEL};
use dcgan_runtime::weights::{BatchNormWeights, GeneratorWeights, LayerWeights};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use serde::Deserialize;

use crate::ExportError;

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Metadata key: format name and version, [`FORMAT`].
pub const META_FORMAT: &str = "format";
/// Value of [`META_FORMAT`] this version writes and reads.
pub const FORMAT: &str = "dcgan-edge-checkpoint/1";
/// Metadata key: the generator spec as JSON, `{"nz":100,"ngf":64,"nc":3,"image_size":64}`.
pub const META_GENERATOR_SPEC: &str = "generator_spec";
/// Metadata key: where the model was trained from (the data directory, or `synthetic`).
pub const META_TRAINED_FROM: &str = "trained_from";

/// Name of generator layer `layer`'s transposed-convolution weight.
pub fn generator_conv_key(layer: usize) -> String {
    format!("netG.main.{}.weight", 3 * layer)
}

/// Name of generator layer `layer`'s BatchNorm tensor `part`
/// (`weight`, `bias`, `running_mean` or `running_var`).
pub fn generator_bn_key(layer: usize, part: &str) -> String {
    format!("netG.main.{}.{part}", 3 * layer + 1)
}

/// Metadata key: the last completed epoch, a decimal integer (optional).
pub const META_EPOCH: &str = "epoch";
/// Metadata key: the last completed training iteration, a decimal integer (optional).
pub const META_ITERATION: &str = "iteration";

/// BatchNorm epsilon of every generator layer. Checkpoints do not store it:
/// it is the default of PyTorch's `BatchNorm2d` and of candle's `batch_norm`.
pub const BATCH_NORM_EPS: f32 = 1e-5;

/// Training record of a checkpoint: everything besides the generator weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Source of the training data ([`META_TRAINED_FROM`]), or empty when
    /// the checkpoint has no such entry.
    pub trained_from: String,
    /// The last completed epoch ([`META_EPOCH`]), when recorded.
    pub epoch: Option<u64>,
    /// The last completed training iteration ([`META_ITERATION`]), when recorded.
    pub iteration: Option<u64>,
    /// Every metadata entry of the file, the ones above included.
    pub metadata: BTreeMap<String, String>,
}

/// `{"nz":100,"ngf":64,"nc":3,"image_size":64}`, the JSON of [`META_GENERATOR_SPEC`].
#[derive(Deserialize)]
struct SpecJson {
    nz: usize,
    ngf: usize,
    nc: usize,
    image_size: usize,
}

impl SpecJson {
    fn to_json(&self) -> String {
        let SpecJson {
            nz,
            ngf,
            nc,
            image_size,
        } = self;
        format!(r#"{{"nz":{nz},"ngf":{ngf},"nc":{nc},"image_size":{image_size}}}"#)
    }
}

/// Reads the generator and its training record from a checkpoint.
///
/// `path` is either a run directory, which contains [`CHECKPOINT_FILE`], or the
/// checkpoint file itself. Tensors other than the generator's (the
/// discriminator's, optimiser state, `num_batches_tracked`) are ignored.
///
/// # Errors
///
/// [`ExportError::CheckpointNotFound`] when there is no checkpoint,
/// [`ExportError::InvalidCheckpoint`] for files safetensors cannot parse,
/// [`ExportError::Metadata`] for a missing or unsupported format or spec, and
/// [`ExportError::MissingTensor`], [`ExportError::TensorShape`],
/// [`ExportError::TensorDtype`] or [`ExportError::NonFinite`] for a bad
/// generator tensor.
pub fn read_generator(path: &Path) -> Result<(GeneratorWeights, CheckpointInfo), ExportError> {
    let path = checkpoint_path(path);
    let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ExportError::CheckpointNotFound { path: path.clone() },
        _ => ExportError::Read {
            path: path.clone(),
            source,
        },
    })?;
    parse_generator(&path, &bytes)
}

/// Parses the content of a checkpoint file as [`read_generator`] does;
/// `path` only names the file in errors.
///
/// # Errors
///
/// As [`read_generator`], except for [`ExportError::CheckpointNotFound`] and
/// [`ExportError::Read`].
pub fn parse_generator(path: &Path, bytes: &[u8]) -> Result<(GeneratorWeights, CheckpointInfo), ExportError> {
    let invalid = |err: SafeTensorError| ExportError::InvalidCheckpoint {
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;

    let metadata: BTreeMap<String, String> = header
        .metadata()
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let info = checkpoint_info(path, metadata)?;
    let spec = generator_spec(path, &info.metadata)?;

    let layers = spec
        .layers()
        .iter()
        .enumerate()
        .map(|(index, layer)| read_layer(path, &tensors, index, layer))
        .collect::<Result<Vec<_>, _>>()?;
    let weights = GeneratorWeights { spec, layers };
    weights.validate()?;

    log::debug!(
        "read a {}x{} generator from {}",
        spec.image_size,
        spec.image_size,
        path.display()
    );
    Ok((weights, info))
}

/// Writes `weights` as a checkpoint that [`read_generator`] reads back: the
/// generator tensors under their `netG.` names and the metadata keys of this
/// module, taken from `info` and `weights.spec`.
///
/// The trainer writes its own, fuller checkpoints with the same names; this
/// writer serves tests and tools that only have a generator. Entries of
/// `info.metadata` for keys this function sets are replaced. The file is
/// written to a temporary sibling and renamed, so `path` never contains a
/// partial checkpoint.
///
/// # Errors
///
/// [`ExportError::Weights`] for weights that do not fit their spec,
/// [`ExportError::BatchNormEps`] for an epsilon other than
/// [`BATCH_NORM_EPS`], and [`ExportError::Write`] when the file cannot be
/// written.
pub fn write_generator_checkpoint(
    path: &Path,
    weights: &GeneratorWeights,
    info: &CheckpointInfo,
) -> Result<(), ExportError> {
    weights.validate()?;
    let tensors = generator_tensors(weights)?;
    let views = tensors
        .iter()
        .map(|tensor| {
            TensorView::new(Dtype::F32, tensor.shape.clone(), &tensor.bytes)
                .map(|view| (tensor.name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ExportError::Serialize {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;

    let metadata = checkpoint_metadata(weights, info);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|err| ExportError::Serialize {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    crate::write_atomic(path, &bytes)
}

/// Resolves a run directory to its checkpoint file and keeps any other path.
fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Checks the format and parses the optional training record.
fn checkpoint_info(
    path: &Path,
    metadata: BTreeMap<String, String>,
) -> Result<CheckpointInfo, ExportError> {
    let metadata_error = |key: &str, problem: String| ExportError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        problem,
    };

    match metadata.get(META_FORMAT) {
        Some(format) if format == FORMAT => {}
        Some(format) => {
            let problem = format!("is `{format}`, but this version reads `{FORMAT}` only");
            return Err(metadata_error(META_FORMAT, problem));
        }
        None => {
            let problem = "is missing: the file is not a dcgan-edge checkpoint".to_string();
            return Err(metadata_error(META_FORMAT, problem));
        }
    }

    let counter = |key: &str| -> Result<Option<u64>, ExportError> {
        let Some(value) = metadata.get(key) else {
            return Ok(None);
        };
        let problem = || format!("is `{value}`, expected a non-negative integer");
        value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| metadata_error(key, problem()))
    };
    let epoch = counter(META_EPOCH)?;
    let iteration = counter(META_ITERATION)?;

    let trained_from = metadata.get(META_TRAINED_FROM).cloned().unwrap_or_default();
    Ok(CheckpointInfo {
        trained_from,
        epoch,
        iteration,
        metadata,
    })
}

/// Parses and validates the generator spec JSON.
fn generator_spec(
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<GeneratorSpec, ExportError> {
    let metadata_error = |problem: String| ExportError::Metadata {
        path: path.to_path_buf(),
        key: META_GENERATOR_SPEC.to_string(),
        problem,
    };
    let json = metadata.get(META_GENERATOR_SPEC).ok_or_else(|| {
        metadata_error("is missing: the checkpoint does not describe its generator".to_string())
    })?;
    let parsed: SpecJson = serde_json::from_str(json)
        .map_err(|err| metadata_error(format!("is invalid JSON `{json}`: {err}")))?;

    let spec = GeneratorSpec {
        nz: parsed.nz,
        ngf: parsed.ngf,
        nc: parsed.nc,
        image_size: parsed.image_size,
    };
    spec.validate()
        .map_err(|err| metadata_error(format!("describes an unsupported generator: {err}")))?;
    Ok(spec)
}

/// Reads one layer's convolution weight and, where the spec has one, its BatchNorm.
fn read_layer(
    path: &Path,
    tensors: &SafeTensors<'_>,
    index: usize,
    layer: &LayerSpec,
) -> Result<LayerWeights, ExportError> {
    let kernel_shape = [layer.in_channels, layer.out_channels, KERNEL, KERNEL];
    let weight = read_f32(path, tensors, &generator_conv_key(index), &kernel_shape)?;

    let batch_norm = if layer.batch_norm {
        let channels = [layer.out_channels];
        let part = |name: &str| read_f32(path, tensors, &generator_bn_key(index, name), &channels);
        Some(BatchNormWeights {
            gamma: part("weight")?,
            beta: part("bias")?,
            running_mean: part("running_mean")?,
            running_var: part("running_var")?,
            eps: BATCH_NORM_EPS,
        })
    } else {
        None
    };
    Ok(LayerWeights { weight, batch_norm })
}

/// Reads an F32 tensor of exactly `shape`, rejecting NaN and infinities.
fn read_f32(
    path: &Path,
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ExportError> {
    let view = tensors
        .tensor(name)
        .map_err(|_| ExportError::MissingTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
        })?;
    if view.dtype() != Dtype::F32 {
        let found = format!("{:?}", view.dtype());
        return Err(ExportError::TensorDtype {
            path: path.to_path_buf(),
            name: name.to_string(),
            found,
        });
    }
    if view.shape() != shape {
        return Err(ExportError::TensorShape {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }

    // safetensors stores little-endian values and validated the byte length.
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .collect();
    let count = values.iter().filter(|value| !value.is_finite()).count();
    if count > 0 {
        return Err(ExportError::NonFinite {
            path: path.to_path_buf(),
            name: name.to_string(),
            count,
        });
    }
    Ok(values)
}

/// A tensor ready for safetensors: F32 values as little-endian bytes.
struct NamedTensor {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Every generator tensor under its checkpoint name.
fn generator_tensors(weights: &GeneratorWeights) -> Result<Vec<NamedTensor>, ExportError> {
    let mut tensors = Vec::new();
    for (index, (spec, layer)) in weights
        .spec
        .layers()
        .iter()
        .zip(&weights.layers)
        .enumerate()
    {
        let shape = vec![spec.in_channels, spec.out_channels, KERNEL, KERNEL];
        tensors.push(NamedTensor {
            name: generator_conv_key(index),
            shape,
            bytes: le_bytes(&layer.weight),
        });

        let Some(bn) = &layer.batch_norm else {
            continue;
        };
        if bn.eps != BATCH_NORM_EPS {
            return Err(ExportError::BatchNormEps {
                layer: index,
                eps: bn.eps,
                expected: BATCH_NORM_EPS,
            });
        }
        let parts = [
            ("weight", &bn.gamma),
            ("bias", &bn.beta),
            ("running_mean", &bn.running_mean),
            ("running_var", &bn.running_var),
        ];
        for (part, values) in parts {
            let name = generator_bn_key(index, part);
            tensors.push(NamedTensor {
                name,
                shape: vec![spec.out_channels],
                bytes: le_bytes(values),
            });
        }
    }
    Ok(tensors)
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// `info.metadata` with the format, spec and training record set.
fn checkpoint_metadata(
    weights: &GeneratorWeights,
    info: &CheckpointInfo,
) -> HashMap<String, String> {
    let spec = weights.spec;
    let spec_json = SpecJson {
        nz: spec.nz,
        ngf: spec.ngf,
        nc: spec.nc,
        image_size: spec.image_size,
    };

    let mut metadata: HashMap<String, String> = info.metadata.clone().into_iter().collect();
    metadata.insert(META_FORMAT.to_string(), FORMAT.to_string());
    metadata.insert(META_GENERATOR_SPEC.to_string(), spec_json.to_json());
    metadata.insert(META_TRAINED_FROM.to_string(), info.trained_from.clone());
    for (key, value) in [(META_EPOCH, info.epoch), (META_ITERATION, info.iteration)] {
        match value {
            Some(value) => metadata.insert(key.to_string(), value.to_string()),
            None => metadata.remove(key),
        };
    }
    metadata
}
