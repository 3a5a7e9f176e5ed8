//! Writes small valid files as seed corpora for the cargo-fuzz targets in `fuzz/`.
//!
//! ```text
//! cargo run -p dcgan-export --example fuzz_seeds -- fuzz/corpus
//! ```
//!
//! Every file describes generators with random weights and 8x8 or 16x16
//! images, so each is a few kilobytes. The folder of each target is named
//! after it (`fuzz/corpus/weight_file`, `fuzz/corpus/pth`, ...), which is
//! where `cargo fuzz run TARGET` looks for its corpus.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dcgan_export::checkpoint::{write_generator_checkpoint, CheckpointInfo};
use dcgan_export::{generator_to_onnx, generator_to_qdq_onnx};
use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm, CALIBRATION_LATENTS, CALIBRATION_SEED};
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::weight_file::{self, CHECKSUM_LEN};
use dcgan_runtime::{GeneratorSpec, GeneratorWeights, QuantizedGenerator};
use safetensors::tensor::{Dtype, TensorView};

/// The generator the `pth_pickle` target's archive has room for: its
/// tensors fit the 2,048-byte storages that `fuzz/src/lib.rs` adds.
const TINY: GeneratorSpec = GeneratorSpec { nz: 4, ngf: 2, nc: 3, image_size: 8 };

/// A second, deeper generator: three layers and 16x16 images.
const SMALL: GeneratorSpec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".to_string()));
    let tiny = random_weights(TINY, 1)?;
    let small = random_weights(SMALL, 2)?;

    write_weight_files(&out.join("weight_file"), &tiny, &small)?;
    write_weight_files(&out.join("weight_file_sealed"), &tiny, &small)?;
    write_safetensors(&out.join("safetensors"), &tiny, &small)?;
    write_checkpoints(&out.join("checkpoint"), &tiny, &small)?;
    write_onnx(&out.join("onnx"), &tiny)?;
    write_pth(&out.join("pth"), &out.join("pth_pickle"), &tiny)?;
    check_seeds(&out)?;
    println!("wrote seed corpora under {}", out.display());
    Ok(())
}

/// Reads every seed back with the reader its target fuzzes, so that each
/// corpus starts from files the readers accept.
fn check_seeds(out: &Path) -> Result<()> {
    for (target, read) in [
        ("weight_file", read_weight_file as fn(&Path, &[u8]) -> Result<()>),
        ("safetensors", read_pytorch),
        ("pth", read_pytorch),
        ("checkpoint", read_checkpoint),
        ("onnx", read_onnx),
    ] {
        for entry in fs::read_dir(out.join(target))? {
            let path = entry?.path();
            let bytes = fs::read(&path)?;
            read(&path, &bytes).with_context(|| format!("the seed {} is not valid", path.display()))?;
        }
    }
    Ok(())
}

fn read_weight_file(_: &Path, bytes: &[u8]) -> Result<()> {
    weight_file::read(bytes)?;
    Ok(())
}

fn read_pytorch(path: &Path, bytes: &[u8]) -> Result<()> {
    dcgan_export::parse_pytorch_generator(path, bytes)?;
    Ok(())
}

fn read_checkpoint(path: &Path, bytes: &[u8]) -> Result<()> {
    dcgan_export::checkpoint::parse_generator(path, bytes)?;
    Ok(())
}

fn read_onnx(path: &Path, bytes: &[u8]) -> Result<()> {
    let proto = dcgan_runtime::tract::decode_model_proto(path, bytes)?;
    dcgan_runtime::tract::declared_latent_length(path, &proto)?;
    Ok(())
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join(name);
    fs::write(&path, bytes).with_context(|| format!("failed to write {}", path.display()))
}

/// Folds BatchNorm, quantizes the layers `int8` selects, and calibrates the
/// activation scales as `dcgan export --int8` does.
fn quantize(weights: &GeneratorWeights, int8: impl Fn(usize) -> bool) -> Result<QuantizedGenerator> {
    let mut generator = fold_batch_norm(weights)?.quantize(int8);
    generator.activation_scales = calibrate_activation_scales(&generator, CALIBRATION_SEED, CALIBRATION_LATENTS)?;
    Ok(generator)
}

/// Writes version 2 files (all int8, first layer f32, all f32) and a version 1 file.
fn write_weight_files(dir: &Path, tiny: &GeneratorWeights, small: &GeneratorWeights) -> Result<()> {
    save(dir, "tiny-int8.dcgw", &weight_file::write(&quantize(tiny, |_| true)?)?)?;
    save(dir, "small-first-f32.dcgw", &weight_file::write(&quantize(small, |index| index != 0)?)?)?;
    save(dir, "tiny-f32.dcgw", &weight_file::write(&fold_batch_norm(tiny)?.quantize(|_| false))?)?;

    // Version 1 has no activation-scale section: drop its count (0 here),
    // then fix the declared length and checksum.
    let mut bytes = weight_file::write(&fold_batch_norm(tiny)?.quantize(|_| true))?;
    let body_end = bytes.len() - CHECKSUM_LEN;
    bytes.drain(body_end - 4..body_end);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let length = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&length.to_le_bytes());
    let body_end = bytes.len() - CHECKSUM_LEN;
    let checksum = weight_file::crc32(&bytes[..body_end]);
    bytes[body_end..].copy_from_slice(&checksum.to_le_bytes());
    save(dir, "tiny-v1.dcgw", &bytes)
}

/// One tensor of a `state_dict`, with the tutorial's name and shape.
struct StateTensor {
    name: String,
    shape: Vec<usize>,
    /// `None` for `num_batches_tracked`, an int64 scalar.
    values: Option<Vec<f32>>,
}

/// Lists the tutorial's `netG.state_dict()` for `weights`, names prefixed with `prefix`.
fn state_dict(weights: &GeneratorWeights, prefix: &str) -> Vec<StateTensor> {
    let mut tensors = Vec::new();
    for (index, (spec, layer)) in weights.spec.layers().iter().zip(&weights.layers).enumerate() {
        tensors.push(StateTensor {
            name: format!("{prefix}main.{}.weight", 3 * index),
            shape: vec![spec.in_channels, spec.out_channels, 4, 4],
            values: Some(layer.weight.clone()),
        });
        let Some(bn) = &layer.batch_norm else { continue };
        let parts = [
            ("weight", &bn.gamma),
            ("bias", &bn.beta),
            ("running_mean", &bn.running_mean),
            ("running_var", &bn.running_var),
        ];
        for (part, values) in parts {
            let name = format!("{prefix}main.{}.{part}", 3 * index + 1);
            tensors.push(StateTensor { name, shape: vec![spec.out_channels], values: Some(values.clone()) });
        }
        let name = format!("{prefix}main.{}.num_batches_tracked", 3 * index + 1);
        tensors.push(StateTensor { name, shape: Vec::new(), values: None });
    }
    tensors
}

fn safetensors_bytes(tensors: &[StateTensor], as_f64: bool) -> Result<Vec<u8>> {
    let data: Vec<(Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|tensor| match &tensor.values {
            Some(values) if as_f64 => (Dtype::F64, values.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect()),
            Some(values) => (Dtype::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            None => (Dtype::I64, 20i64.to_le_bytes().to_vec()),
        })
        .collect();
    let views = tensors
        .iter()
        .zip(&data)
        .map(|(tensor, (dtype, bytes))| {
            Ok((tensor.name.as_str(), TensorView::new(*dtype, tensor.shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, None)?)
}

fn write_safetensors(dir: &Path, tiny: &GeneratorWeights, small: &GeneratorWeights) -> Result<()> {
    save(dir, "tiny.safetensors", &safetensors_bytes(&state_dict(tiny, ""), false)?)?;
    save(dir, "tiny-module-f64.safetensors", &safetensors_bytes(&state_dict(tiny, "module."), true)?)?;
    save(dir, "small.safetensors", &safetensors_bytes(&state_dict(small, ""), false)?)
}

fn write_checkpoints(dir: &Path, tiny: &GeneratorWeights, small: &GeneratorWeights) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let info = CheckpointInfo {
        trained_from: "faces".to_string(),
        epoch: Some(3),
        iteration: Some(120),
        ..Default::default()
    };
    write_generator_checkpoint(&dir.join("tiny.safetensors"), tiny, &info)?;
    write_generator_checkpoint(&dir.join("small.safetensors"), small, &CheckpointInfo::default())?;
    Ok(())
}

fn write_onnx(dir: &Path, tiny: &GeneratorWeights) -> Result<()> {
    let metadata = [("trained_from".to_string(), "faces".to_string())];
    save(dir, "tiny.onnx", &generator_to_onnx(tiny, &metadata)?)?;
    save(dir, "tiny-qdq.onnx", &generator_to_qdq_onnx(&quantize(tiny, |_| true)?, &metadata)?)
}

/// Writes a `torch.save` archive of the tiny generator's `state_dict`, and
/// its `data.pkl` alone for the `pth_pickle` target, whose storages are
/// `archive/data/0` to `archive/data/15`.
fn write_pth(pth_dir: &Path, pickle_dir: &Path, tiny: &GeneratorWeights) -> Result<()> {
    let tensors = state_dict(tiny, "");
    let pickle = Pickle::state_dict(&tensors);
    save(pickle_dir, "tiny.pkl", &pickle)?;

    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("archive/data.pkl", options)?;
    writer.write_all(&pickle)?;
    for (key, tensor) in tensors.iter().enumerate() {
        writer.start_file(format!("archive/data/{key}"), options)?;
        match &tensor.values {
            Some(values) => writer.write_all(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())?,
            None => writer.write_all(&20i64.to_le_bytes())?,
        }
    }
    writer.start_file("archive/version", options)?;
    writer.write_all(b"3\n")?;
    save(pth_dir, "tiny.pth", &writer.finish()?.into_inner())
}

/// The pickle opcodes (protocol 2) that `torch.save` uses for a `state_dict`.
struct Pickle(Vec<u8>);

impl Pickle {
    /// Encodes an `OrderedDict` of `_rebuild_tensor_v2` calls, tensor `i` in storage `i`.
    fn state_dict(tensors: &[StateTensor]) -> Vec<u8> {
        let mut pickle = Pickle(vec![0x80, 2]);
        pickle.ordered_dict();
        pickle.0.push(b'(');
        for (key, tensor) in tensors.iter().enumerate() {
            pickle.string(&tensor.name);
            pickle.tensor(key, tensor);
        }
        pickle.0.extend_from_slice(b"u.");
        pickle.0
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }

    fn string(&mut self, text: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(text.len() as u32).to_le_bytes());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn int(&mut self, value: usize) {
        self.0.push(b'J');
        self.0.extend_from_slice(&(value as i32).to_le_bytes());
    }

    fn int_tuple(&mut self, values: &[usize]) {
        self.0.push(b'(');
        for &value in values {
            self.int(value);
        }
        self.0.push(b't');
    }

    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend_from_slice(b")R");
    }

    /// `_rebuild_tensor_v2(storage, 0, shape, strides, False, OrderedDict())`
    /// with the persistent id `("storage", class, key, "cpu", numel)`.
    fn tensor(&mut self, key: usize, tensor: &StateTensor) {
        let numel = tensor.shape.iter().product::<usize>();
        let mut strides = vec![1; tensor.shape.len()];
        for dim in (0..tensor.shape.len().saturating_sub(1)).rev() {
            strides[dim] = strides[dim + 1] * tensor.shape[dim + 1];
        }
        let storage_class = if tensor.values.is_some() { "FloatStorage" } else { "LongStorage" };

        self.global("torch._utils", "_rebuild_tensor_v2");
        self.0.push(b'(');
        self.0.push(b'(');
        self.string("storage");
        self.global("torch", storage_class);
        self.string(&key.to_string());
        self.string("cpu");
        self.int(numel);
        self.0.extend_from_slice(b"tQ");
        self.int(0);
        self.int_tuple(&tensor.shape);
        self.int_tuple(&strides);
        self.0.push(0x89);
        self.ordered_dict();
        self.0.extend_from_slice(b"tR");
    }
}
