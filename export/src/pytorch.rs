//! Import of generators trained with the PyTorch DCGAN tutorial.
//!
//! [`read_pytorch_generator`] accepts:
//!
//! - a `torch.save` file (`.pth`, a zip archive) containing the generator's
//!   `state_dict`, or a dictionary that contains it at any depth (a
//!   whole-checkpoint dict such as `{"netG": ..., "netD": ..., "optimizerG": ...}`);
//! - a safetensors file with the same tensor names.
//!
//! The tutorial's `netG.state_dict()` names the layers `main.0.weight`
//! (transposed convolution), `main.1.weight`, `main.1.bias`,
//! `main.1.running_mean`, `main.1.running_var` and
//! `main.1.num_batches_tracked` (BatchNorm), then `main.3...` and so on; a model
//! wrapped in `DataParallel` adds a `module.` prefix. The generator is the set
//! of tensors under the prefix `P` for which both `P main.0.weight` and
//! `P main.1.running_mean` exist (the discriminator has no BatchNorm at
//! `main.1`). `nz`, `ngf`, `nc` and the image size follow from the kernel shapes.
//!
//! `.pth` files are read with candle's pickle reader, which interprets the
//! pickle opcodes as data and never imports or runs Python code. Tensors must
//! be float32 or float64, contiguous, and stored in the archive.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack};
use dcgan_runtime::spec::{GeneratorSpec, KERNEL};
use dcgan_runtime::weights::{BatchNormWeights, GeneratorWeights, LayerWeights};
use safetensors::tensor::{Dtype, SafeTensors};

use crate::checkpoint::BATCH_NORM_EPS;
use crate::ExportError;

/// `format` of [`ExportError::InvalidImport`] for `torch.save` files.
const PTH: &str = "PyTorch .pth";
/// `format` of [`ExportError::InvalidImport`] for safetensors files.
const SAFETENSORS: &str = "safetensors";

/// Largest data.pkl this reader parses; a generator's is a few kilobytes.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Origin of an imported generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportInfo {
    /// `PyTorch .pth` or `safetensors`.
    pub format: &'static str,
    /// Prefix of the generator's tensor names in the file, such as `""`,
    /// `"module."` or `"netG."`.
    pub prefix: String,
}

/// One tensor of the file: its shape and, for float tensors, its values.
#[derive(Clone, Debug)]
struct RawTensor {
    shape: Vec<usize>,
    /// `None` for integer tensors such as `num_batches_tracked`.
    values: Option<Vec<f32>>,
    dtype: String,
}

/// Reads a PyTorch or safetensors generator `state_dict`.
///
/// # Errors
///
/// [`ExportError::Read`] when the file cannot be read,
/// [`ExportError::InvalidImport`] when it is neither a readable `.pth` nor
/// safetensors file, [`ExportError::NoGenerator`] when no generator
/// `state_dict` is found in it, [`ExportError::MissingTensor`],
/// [`ExportError::UnexpectedTensor`], [`ExportError::TensorShape`],
/// [`ExportError::TensorDtype`] or [`ExportError::NonFinite`] for a bad tensor.
pub fn read_pytorch_generator(path: &Path) -> Result<(GeneratorWeights, ImportInfo), ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read { path: path.to_path_buf(), source })?;
    parse_pytorch_generator(path, &bytes)
}

/// Parses the content of a PyTorch or safetensors file as
/// [`read_pytorch_generator`] does; `path` only names the file in errors.
///
/// # Errors
///
/// As [`read_pytorch_generator`], except for [`ExportError::Read`].
pub fn parse_pytorch_generator(path: &Path, bytes: &[u8]) -> Result<(GeneratorWeights, ImportInfo), ExportError> {
    // Stage 1: every tensor of the file by its full, dotted name.
    let (format, tensors) = if bytes.starts_with(b"PK\x03\x04") {
        (PTH, read_pth_tensors(path, bytes)?)
    } else {
        (SAFETENSORS, read_safetensors_tensors(path, bytes)?)
    };

    // Stage 2: the generator's prefix, then its spec from the kernel shapes.
    let prefix = generator_prefix(path, &tensors)?;
    let spec = infer_spec(path, &tensors, &prefix)?;

    // Stage 3: every expected tensor with its shape checked, and no extras.
    let weights = collect_weights(path, &tensors, &prefix, spec)?;
    check_extra_tensors(path, &tensors, &prefix, spec)?;
    weights.validate()?;
    log::debug!("imported a {format} generator from {} (prefix `{prefix}`): {spec:?}", path.display());
    Ok((weights, ImportInfo { format, prefix }))
}

fn invalid(path: &Path, format: &'static str, reason: impl ToString) -> ExportError {
    ExportError::InvalidImport { path: path.to_path_buf(), format, reason: reason.to_string() }
}

fn read_safetensors_tensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, RawTensor>, ExportError> {
    if bytes.is_empty() {
        return Err(invalid(path, SAFETENSORS, "the file is empty"));
    }
    let file = SafeTensors::deserialize(bytes).map_err(|err| {
        let reason = format!("{err} (the file is neither a torch.save zip archive nor safetensors)");
        invalid(path, SAFETENSORS, reason)
    })?;

    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => Some(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            Dtype::F64 => Some(
                data.chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                    .collect(),
            ),
            _ => None,
        };
        let tensor = RawTensor { shape: view.shape().to_vec(), values, dtype: format!("{:?}", view.dtype()) };
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

fn read_pth_tensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, RawTensor>, ExportError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|err| invalid(path, PTH, err))?;
    let pickle_name = archive
        .file_names()
        .filter_map(|name| name.ok().map(|name| name.into_owned()))
        .find(|name| name.ends_with("data.pkl"))
        .ok_or_else(|| invalid(path, PTH, "the zip archive has no data.pkl: it was not written by torch.save"))?;
    let data_dir = pickle_name.trim_end_matches("data.pkl").to_string();

    // Stage 1: parse the pickle into an object tree, without running code.
    let pickle = read_entry(path, &mut archive, &pickle_name, MAX_PICKLE_BYTES)?;
    let object = parse_pickle(path, &pickle)?;

    // Stage 2: find the tensors in the tree, then load their storages.
    let mut references = Vec::new();
    collect_tensor_references(&object, "", &mut references);
    if references.is_empty() {
        let reason = "its pickle holds no tensors in a dictionary: save the model's state_dict(), not the model object";
        return Err(invalid(path, PTH, reason));
    }
    let mut tensors = BTreeMap::new();
    for (name, reference) in references {
        let reference = reference.map_err(|reason| invalid(path, PTH, format!("tensor {name}: {reason}")))?;
        let tensor = load_storage(path, &mut archive, &data_dir, &name, &reference)?;
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

fn read_entry(
    path: &Path,
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ExportError> {
    let entry = archive.by_name(name).map_err(|err| invalid(path, PTH, format!("entry {name}: {err}")))?;
    let mut data = Vec::new();
    entry.take(limit).read_to_end(&mut data).map_err(|err| invalid(path, PTH, format!("entry {name}: {err}")))?;
    Ok(data)
}

/// Runs candle's pickle reader on `bytes`.
fn parse_pickle(path: &Path, bytes: &[u8]) -> Result<Object, ExportError> {
    // NOTE: candle 0.11's reader can panic on some malformed pickles (for
    // example a LONG1 opcode of more than 8 bytes overflows a shift), so a
    // panic is turned into an error here instead of ending the process.
    let parsed = std::panic::catch_unwind(|| {
        let mut stack = Stack::empty();
        let mut reader = std::io::BufReader::new(bytes);
        stack.read_loop(&mut reader)?;
        stack.finalize()
    });
    match parsed {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(err)) => Err(invalid(path, PTH, format!("data.pkl is not a supported pickle: {err}"))),
        Err(_) => Err(invalid(path, PTH, "data.pkl is a malformed pickle")),
    }
}

/// A tensor's place in the archive, from `torch._utils._rebuild_tensor_v2`.
#[derive(Debug)]
struct StorageReference {
    storage_type: String,
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Walks dictionaries and collects every value that rebuilds a tensor, with
/// its dotted name. Keys that are not strings and other values are skipped.
fn collect_tensor_references(object: &Object, prefix: &str, out: &mut Vec<(String, Result<StorageReference, String>)>) {
    let Object::Dict(entries) = object else { return };
    for (key, value) in entries {
        let Object::Unicode(key) = key else { continue };
        let name = format!("{prefix}{key}");
        if let Some(reference) = tensor_reference(value) {
            out.push((name, reference));
        } else {
            collect_tensor_references(value, &format!("{name}."), out);
        }
    }
}

/// `Some` when `object` rebuilds a tensor (possibly wrapped in a parameter).
fn tensor_reference(object: &Object) -> Option<Result<StorageReference, String>> {
    let Object::Reduce { callable, args } = object else { return None };
    let Object::Class { module_name, class_name } = callable.as_ref() else { return None };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2") => Some(rebuild_arguments(args)),
        ("torch._utils", "_rebuild_parameter") => match args.as_ref() {
            Object::Tuple(items) => items.first().and_then(tensor_reference),
            _ => Some(Err("malformed _rebuild_parameter arguments".to_string())),
        },
        _ => None,
    }
}

/// Parses `(storage, storage_offset, size, stride, ...)`, where storage is the
/// persistent id `("storage", StorageClass, key, location, numel)`.
fn rebuild_arguments(args: &Object) -> Result<StorageReference, String> {
    let Object::Tuple(items) = args else { return Err("malformed _rebuild_tensor_v2 arguments".to_string()) };
    let [storage, offset, size, stride, ..] = items.as_slice() else {
        return Err(format!("_rebuild_tensor_v2 has {} arguments, expected at least 4", items.len()));
    };

    let Object::PersistentLoad(storage) = storage else { return Err("storage is not a persistent id".to_string()) };
    let Object::Tuple(storage) = storage.as_ref() else { return Err("storage id is not a tuple".to_string()) };
    let (storage_type, key) = match storage.as_slice() {
        [_, Object::Class { class_name, .. }, Object::Unicode(key), ..] => (class_name.clone(), key.clone()),
        _ => return Err("storage id is not (\"storage\", class, key, location, size)".to_string()),
    };

    Ok(StorageReference {
        storage_type,
        key,
        offset: non_negative(offset).ok_or("storage offset is not a non-negative integer")?,
        shape: integer_tuple(size).ok_or("size is not a tuple of non-negative integers")?,
        stride: integer_tuple(stride).ok_or("stride is not a tuple of non-negative integers")?,
    })
}

fn non_negative(object: &Object) -> Option<usize> {
    match object {
        Object::Int(value) => usize::try_from(*value).ok(),
        Object::Long(value) => usize::try_from(*value).ok(),
        _ => None,
    }
}

fn integer_tuple(object: &Object) -> Option<Vec<usize>> {
    let Object::Tuple(items) = object else { return None };
    items.iter().map(non_negative).collect()
}

/// Reads a tensor's values from `{data_dir}data/{key}`.
fn load_storage(
    path: &Path,
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    data_dir: &str,
    name: &str,
    reference: &StorageReference,
) -> Result<RawTensor, ExportError> {
    let element_size = match reference.storage_type.as_str() {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "BFloat16Storage" => 2,
        _ => 1,
    };
    let count = reference.shape.iter().try_fold(1usize, |count, &dim| count.checked_mul(dim));
    let count = count.ok_or_else(|| invalid(path, PTH, format!("tensor {name}: shape overflows")))?;
    let dtype = reference.storage_type.trim_end_matches("Storage").to_string();
    let float = matches!(reference.storage_type.as_str(), "FloatStorage" | "DoubleStorage");
    if !float {
        return Ok(RawTensor { shape: reference.shape.clone(), values: None, dtype });
    }

    // Row-major (C-contiguous) strides; dimensions of size 1 may have any stride.
    if reference.stride.len() != reference.shape.len() {
        let (shape, stride) = (&reference.shape, &reference.stride);
        let reason = format!("tensor {name} has shape {shape:?} but stride {stride:?} of another length");
        return Err(invalid(path, PTH, reason));
    }
    let mut expected_stride = 1usize;
    for (dim, stride) in reference.shape.iter().zip(&reference.stride).rev() {
        if *dim != 1 && *stride != expected_stride {
            let reason =
                format!("tensor {name} is not contiguous (stride {:?}): save tensor.contiguous()", reference.stride);
            return Err(invalid(path, PTH, reason));
        }
        // A shape with a 0 passes the element count's overflow check above,
        // but the strides of its other dimensions can still overflow.
        expected_stride = expected_stride
            .checked_mul(*dim)
            .ok_or_else(|| invalid(path, PTH, format!("tensor {name}: stride {:?} overflows", reference.stride)))?;
    }

    let entry = format!("{data_dir}data/{}", reference.key);
    let needed = reference.offset.saturating_add(count).saturating_mul(element_size);
    let data = read_entry(path, archive, &entry, needed as u64)?;
    if data.len() < needed {
        let reason = format!("tensor {name} needs {needed} bytes of storage {entry}, which has {}", data.len());
        return Err(invalid(path, PTH, reason));
    }

    let data = &data[reference.offset * element_size..needed];
    let values = if element_size == 4 {
        data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        data.chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect()
    };
    Ok(RawTensor { shape: reference.shape.clone(), values: Some(values), dtype })
}

/// Finds the one prefix under which a generator `state_dict` lives.
fn generator_prefix(path: &Path, tensors: &BTreeMap<String, RawTensor>) -> Result<String, ExportError> {
    let prefixes: Vec<String> = tensors
        .keys()
        .filter_map(|name| name.strip_suffix("main.0.weight"))
        .filter(|prefix| prefix.is_empty() || prefix.ends_with('.'))
        .filter(|prefix| tensors.contains_key(&format!("{prefix}main.1.running_mean")))
        .map(str::to_string)
        .collect();

    match prefixes.as_slice() {
        [prefix] => Ok(prefix.clone()),
        [] => {
            let sample: Vec<&str> = tensors.keys().take(6).map(String::as_str).collect();
            let reason = format!(
                "expected tensors `main.0.weight` and `main.1.running_mean` (with an optional prefix such as `module.`), found {} tensors: {}{}",
                tensors.len(),
                sample.join(", "),
                if tensors.len() > sample.len() { ", ..." } else { "" }
            );
            Err(ExportError::NoGenerator { path: path.to_path_buf(), reason })
        }
        several => {
            let reason = format!("several generators under the prefixes {several:?}: save only one");
            Err(ExportError::NoGenerator { path: path.to_path_buf(), reason })
        }
    }
}

fn conv_key(prefix: &str, layer: usize) -> String {
    format!("{prefix}main.{}.weight", 3 * layer)
}

fn bn_key(prefix: &str, layer: usize, part: &str) -> String {
    format!("{prefix}main.{}.{part}", 3 * layer + 1)
}

/// Infers the spec from the transposed-convolution kernels `main.{3i}.weight`.
fn infer_spec(path: &Path, tensors: &BTreeMap<String, RawTensor>, prefix: &str) -> Result<GeneratorSpec, ExportError> {
    let kernels: Vec<&RawTensor> = (0..).map_while(|layer| tensors.get(&conv_key(prefix, layer))).collect();
    let no_generator = |reason: String| ExportError::NoGenerator { path: path.to_path_buf(), reason };

    for (layer, kernel) in kernels.iter().enumerate() {
        if kernel.shape.len() != 4 || kernel.shape[2..] != [KERNEL, KERNEL] {
            let expected = "[in, out, 4, 4]";
            return Err(no_generator(format!(
                "{} has shape {:?}, expected {expected}",
                conv_key(prefix, layer),
                kernel.shape
            )));
        }
    }
    let (Some(first), Some(last)) = (kernels.first(), kernels.last()) else {
        return Err(no_generator(format!("{} is missing", conv_key(prefix, 0))));
    };
    // A kernel after a gap means a layer in between is missing.
    let gap = (kernels.len() + 1..kernels.len() + 8).find(|&layer| tensors.contains_key(&conv_key(prefix, layer)));
    if gap.is_some() {
        return Err(ExportError::MissingTensor { path: path.to_path_buf(), name: conv_key(prefix, kernels.len()) });
    }
    if kernels.len() < 2 {
        return Err(no_generator(format!("only one layer found: {} is missing", conv_key(prefix, 1))));
    }

    let ngf = kernels[kernels.len() - 2].shape[1];
    let image_size = 1usize.checked_shl(kernels.len() as u32 + 1).unwrap_or(0);
    let spec = GeneratorSpec { nz: first.shape[0], ngf, nc: last.shape[1], image_size };
    spec.validate()
        .map_err(|err| no_generator(format!("the kernel shapes describe an unsupported generator: {err}")))?;
    Ok(spec)
}

/// Reads every tensor the spec needs, checking dtype, shape and finiteness.
fn collect_weights(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
    prefix: &str,
    spec: GeneratorSpec,
) -> Result<GeneratorWeights, ExportError> {
    let float = |name: String, shape: &[usize]| -> Result<Vec<f32>, ExportError> {
        let tensor = tensors
            .get(&name)
            .ok_or_else(|| ExportError::MissingTensor { path: path.to_path_buf(), name: name.clone() })?;
        if tensor.shape != shape {
            let (expected, found) = (shape.to_vec(), tensor.shape.clone());
            return Err(ExportError::TensorShape { path: path.to_path_buf(), name, expected, found });
        }
        let Some(values) = &tensor.values else {
            let found = tensor.dtype.clone();
            return Err(ExportError::TensorDtype { path: path.to_path_buf(), name, found });
        };
        let count = values.iter().filter(|value| !value.is_finite()).count();
        if count > 0 {
            return Err(ExportError::NonFinite { path: path.to_path_buf(), name, count });
        }
        Ok(values.clone())
    };

    let mut layers = Vec::new();
    for (index, layer) in spec.layers().iter().enumerate() {
        let kernel_shape = [layer.in_channels, layer.out_channels, KERNEL, KERNEL];
        let weight = float(conv_key(prefix, index), &kernel_shape)?;
        let batch_norm = if layer.batch_norm {
            let channels = [layer.out_channels];
            Some(BatchNormWeights {
                gamma: float(bn_key(prefix, index, "weight"), &channels)?,
                beta: float(bn_key(prefix, index, "bias"), &channels)?,
                running_mean: float(bn_key(prefix, index, "running_mean"), &channels)?,
                running_var: float(bn_key(prefix, index, "running_var"), &channels)?,
                eps: BATCH_NORM_EPS,
            })
        } else {
            None
        };
        layers.push(LayerWeights { weight, batch_norm });
    }
    Ok(GeneratorWeights { spec, layers })
}

/// Rejects tensors under the generator's prefix that the architecture has no
/// place for. With an empty prefix only names starting with `main.` count, so
/// that other entries of a whole-checkpoint file are ignored.
fn check_extra_tensors(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
    prefix: &str,
    spec: GeneratorSpec,
) -> Result<(), ExportError> {
    let mut expected: Vec<String> = Vec::new();
    for (index, layer) in spec.layers().iter().enumerate() {
        expected.push(conv_key(prefix, index));
        if layer.batch_norm {
            for part in ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"] {
                expected.push(bn_key(prefix, index, part));
            }
        }
    }

    let scope = if prefix.is_empty() { "main." } else { prefix };
    let extra = tensors.iter().find(|(name, _)| name.starts_with(scope) && !expected.contains(name));
    match extra {
        Some((name, tensor)) => Err(ExportError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.clone(),
            shape: tensor.shape.clone(),
        }),
        None => Ok(()),
    }
}

/// The ONNX metadata of an imported generator: `trained_from` names the file.
pub fn import_metadata(path: &Path, info: &ImportInfo) -> Vec<(String, String)> {
    let source = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
    vec![(crate::checkpoint::META_TRAINED_FROM.to_string(), format!("{} {}", info.format, source.display()))]
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Builds a `torch.save` archive whose `data.pkl` is `pickle` and whose
    /// storage `archive/data/0` is empty.
    fn archive(pickle: &[u8]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        writer.start_file("archive/data.pkl", options).unwrap();
        writer.write_all(pickle).unwrap();
        writer.start_file("archive/data/0", options).unwrap();
        writer.finish().unwrap().into_inner()
    }

    /// `{"main.0.weight": _rebuild_tensor_v2(("storage", FloatStorage, "0",
    /// "cpu", 0), 0, size, stride)}`, with `size` and `stride` already encoded.
    fn tensor_pickle(size: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut pickle = b"\x80\x02}(X\x0d\x00\x00\x00main.0.weightctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
        pickle.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000");
        pickle.extend_from_slice(b"X\x03\x00\x00\x00cpuK\x00tQK\x00");
        pickle.extend_from_slice(size);
        pickle.extend_from_slice(stride);
        pickle.extend_from_slice(b"tRu.");
        pickle
    }

    #[test]
    fn empty_tensor_stride_overflow_is_rejected() {
        // Shape (0, D, D, D) with D = 2^31 - 1 has no elements, and the
        // contiguous strides (D^3, D^2, D, 1) overflow 64 bits at D^3.
        let d = b"J\xff\xff\xff\x7f";
        let size = [b"(K\x00".as_slice(), d, d, d, b"t"].concat();
        let d_squared = [b"\x8a\x08".as_slice(), &((1u64 << 31) - 1).pow(2).to_le_bytes()].concat();
        let stride = [b"(K\x00".as_slice(), &d_squared, d, b"K\x01t"].concat();

        let bytes = archive(&tensor_pickle(&size, &stride));
        let err = parse_pytorch_generator(Path::new("overflow.pth"), &bytes).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("overflow.pth"), "{message}");
        assert!(message.contains("main.0.weight: stride"), "{message}");
        assert!(message.contains("overflows"), "{message}");
    }

    #[test]
    fn stride_of_other_length_is_rejected() {
        let bytes = archive(&tensor_pickle(b"(K\x02K\x03t", b"(K\x01t"));
        let err = parse_pytorch_generator(Path::new("short.pth"), &bytes).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("short.pth"), "{message}");
        assert!(message.contains("stride [1] of another length"), "{message}");
    }
}
