//! `dcgan-edge info`: what a model file contains, for both file kinds.

use std::path::{Path, PathBuf};

use crate::backend::{detect_file_kind, BackendError, BackendKind, FileKind};
use crate::spec::Activation;
use crate::weight_file;

/// One transposed convolution of a generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// What the layer computes, for example `ConvTranspose2d+BN+ReLU`.
    pub kind: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input height and width.
    pub in_size: usize,
    /// Output height and width.
    pub out_size: usize,
    /// Weight type: `int8` or `f32`.
    pub weights: &'static str,
}

/// A summary of a model file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// The file.
    pub path: PathBuf,
    /// What kind of file it is.
    pub kind: FileKind,
    /// File size in bytes.
    pub file_size: u64,
    /// Latent length.
    pub nz: usize,
    /// Image channels.
    pub channels: usize,
    /// Image height and width.
    pub image_size: usize,
    /// Key-value metadata: ONNX `metadata_props`, or the weight file's
    /// header fields.
    pub metadata: Vec<(String, String)>,
    /// Stored parameters: every weight, scale and bias value in the file.
    pub parameter_count: u64,
    /// The transposed convolutions from latent to image.
    pub layers: Vec<LayerInfo>,
}

/// Reads `path` (an ONNX model or a weight file) and summarises it.
///
/// # Errors
///
/// The errors of [`detect_file_kind`], [`BackendError::NotBuilt`] for an
/// ONNX file in a build without tract, and the backend's load errors.
pub fn inspect(path: &Path) -> Result<ModelInfo, BackendError> {
    let kind = detect_file_kind(path)?;
    let file_size =
        std::fs::metadata(path).map_err(|source| BackendError::Read { path: path.to_path_buf(), source })?.len();
    match kind {
        FileKind::WeightFile => inspect_weight_file(path, file_size),
        FileKind::Onnx => inspect_onnx(path, file_size),
    }
}

/// Describes in words the arithmetic the core engine runs `generator` with.
fn core_precision(generator: &crate::quantized::QuantizedGenerator) -> &'static str {
    match crate::engine::Precision::of(generator) {
        crate::engine::Precision::Int8 => "int8 weights and activations, i32 sums",
        crate::engine::Precision::F32 => "f32 activations (int8 needs every layer int8 and activation scales)",
    }
}

fn inspect_weight_file(path: &Path, file_size: u64) -> Result<ModelInfo, BackendError> {
    let bytes = std::fs::read(path)
        .map_err(|source| weight_file::LoadError::Read { path: path.to_path_buf(), source })?;
    let generator = weight_file::read(&bytes)
        .map_err(|error| weight_file::LoadError::Invalid { path: path.to_path_buf(), error })?;
    let version = weight_file::declared_version(&bytes).unwrap_or(weight_file::VERSION);
    let spec = generator.spec;
    let layers = spec
        .layers()
        .iter()
        .zip(&generator.layers)
        .map(|(layer, stored)| LayerInfo {
            kind: layer_kind(layer.batch_norm, layer.activation),
            in_channels: layer.in_channels,
            out_channels: layer.out_channels,
            in_size: layer.in_size,
            out_size: layer.out_size,
            weights: if stored.kernel.is_int8() { "int8" } else { "f32" },
        })
        .collect();
    let parameter_count = generator
        .layers
        .iter()
        .map(|layer| {
            let scales = if layer.kernel.is_int8() { layer.bias.len() } else { 0 };
            (layer.kernel.len() + scales + layer.bias.len()) as u64
        })
        .sum();
    let metadata = vec![
        ("format".to_string(), format!("dcgan-edge weight file version {version}")),
        ("ngf".to_string(), spec.ngf.to_string()),
        ("batch_norm".to_string(), "folded into the kernels and biases".to_string()),
        ("core_precision".to_string(), core_precision(&generator).to_string()),
    ];
    Ok(ModelInfo {
        path: path.to_path_buf(),
        kind: FileKind::WeightFile,
        file_size,
        nz: spec.nz,
        channels: spec.nc,
        image_size: spec.image_size,
        metadata,
        parameter_count,
        layers,
    })
}

fn layer_kind(batch_norm: bool, activation: Activation) -> String {
    let activation = match activation {
        Activation::Relu => "ReLU",
        Activation::Tanh => "Tanh",
    };
    if batch_norm {
        format!("ConvTranspose2d+BN+{activation}")
    } else {
        format!("ConvTranspose2d+{activation}")
    }
}

#[cfg(not(feature = "tract"))]
fn inspect_onnx(path: &Path, _file_size: u64) -> Result<ModelInfo, BackendError> {
    Err(BackendError::NotBuilt { path: path.to_path_buf(), kind: FileKind::Onnx, backend: BackendKind::Tract })
}

#[cfg(feature = "tract")]
fn inspect_onnx(path: &Path, file_size: u64) -> Result<ModelInfo, BackendError> {
    use std::collections::HashMap;

    use tract_onnx::pb::tensor_proto::DataType;

    let _ = BackendKind::Tract;
    let generator = crate::tract::TractGenerator::load(path)?;
    let proto = crate::tract::read_model_proto(path)?;
    let graph = proto.graph.unwrap_or_default();

    // Initializers by name: (dims, element type).
    let initializers: HashMap<&str, (&[i64], i32)> =
        graph.initializer.iter().map(|t| (t.name.as_str(), (t.dims.as_slice(), t.data_type))).collect();
    // Outputs of DequantizeLinear nodes, mapped to their quantized input.
    let dequantized: HashMap<&str, &str> = graph
        .node
        .iter()
        .filter(|node| node.op_type == "DequantizeLinear")
        .filter_map(|node| Some((node.output.first()?.as_str(), node.input.first()?.as_str())))
        .collect();

    let mut layers = Vec::new();
    let mut in_size = 1usize;
    for node in graph.node.iter().filter(|node| node.op_type == "ConvTranspose") {
        let Some(weight_name) = node.input.get(1) else { continue };
        let source = dequantized.get(weight_name.as_str()).copied().unwrap_or(weight_name);
        let Some(&(dims, data_type)) = initializers.get(source) else { continue };
        let dim = |index: usize| dims.get(index).map_or(0, |&d| usize::try_from(d).unwrap_or(0));
        let ints =
            |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone()).unwrap_or_default();
        let stride = ints("strides").first().copied().unwrap_or(1).max(0) as usize;
        let pad = ints("pads").first().copied().unwrap_or(0).max(0) as usize;
        let out_size = ((in_size.saturating_sub(1)) * stride + dim(2)).saturating_sub(2 * pad);
        let int8 = data_type == DataType::Int8 as i32 || data_type == DataType::Uint8 as i32;
        layers.push(LayerInfo {
            kind: "ConvTranspose2d".to_string(),
            in_channels: dim(0),
            out_channels: dim(1),
            in_size,
            out_size,
            weights: if int8 { "int8" } else { "f32" },
        });
        in_size = out_size;
    }
    mark_activations(&graph.node, &mut layers);

    let parameter_count =
        graph.initializer.iter().map(|t| t.dims.iter().map(|&d| u64::try_from(d).unwrap_or(0)).product::<u64>()).sum();
    let metadata = generator.metadata().iter().map(|(key, value)| (key.clone(), value.clone())).collect();
    Ok(ModelInfo {
        path: path.to_path_buf(),
        kind: FileKind::Onnx,
        file_size,
        nz: generator.nz(),
        channels: generator.channels(),
        image_size: generator.image_size(),
        metadata,
        parameter_count,
        layers,
    })
}

/// Appends the BatchNorm and activation ops that follow each transposed
/// convolution, in graph order, to the layer kinds.
#[cfg(feature = "tract")]
fn mark_activations(nodes: &[tract_onnx::pb::NodeProto], layers: &mut [LayerInfo]) {
    let mut layer = None;
    for node in nodes {
        match node.op_type.as_str() {
            "ConvTranspose" => layer = Some(layer.map_or(0, |index: usize| index + 1)),
            "BatchNormalization" | "Relu" | "Tanh" => {
                if let Some(info) = layer.and_then(|index| layers.get_mut(index)) {
                    let name = match node.op_type.as_str() {
                        "BatchNormalization" => "BN",
                        "Relu" => "ReLU",
                        _ => "Tanh",
                    };
                    info.kind = format!("{}+{name}", info.kind);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::fold_batch_norm;
    use crate::reference::random_weights;
    use crate::spec::GeneratorSpec;

    #[test]
    fn weight_file_summary_lists_layers() {
        let dir = std::env::temp_dir().join(format!("dcgan-model-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
        let generator = fold_batch_norm(&random_weights(spec, 2).unwrap()).unwrap().quantize(|index| index != 0);
        let path = dir.join("g.dcgw");
        let bytes = weight_file::write(&generator).unwrap();
        std::fs::write(&path, &bytes).unwrap();

        let info = inspect(&path).unwrap();
        assert_eq!(info.file_size, bytes.len() as u64);
        assert_eq!((info.nz, info.channels, info.image_size), (8, 3, 16));
        let shapes: Vec<_> =
            info.layers.iter().map(|l| (l.in_channels, l.out_channels, l.out_size, l.weights)).collect();
        assert_eq!(shapes, [(8, 8, 4, "f32"), (8, 4, 8, "int8"), (4, 3, 16, "int8")]);
        assert_eq!(info.layers[2].kind, "ConvTranspose2d+Tanh");
        // Kernels, plus a scale per output channel of int8 layers, plus biases.
        assert_eq!(info.parameter_count, (8 * 8 * 16 + 8) + (8 * 4 * 16 + 4 + 4) + (4 * 3 * 16 + 3 + 3));
        let format = info.metadata.iter().find(|(key, _)| key == "format").map(|(_, value)| value.as_str());
        assert_eq!(format, Some(format!("dcgan-edge weight file version {}", weight_file::VERSION).as_str()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
