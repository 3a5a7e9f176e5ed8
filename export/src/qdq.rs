//! QDQ ONNX export of a folded, optionally int8 generator.
//!
//! Each int8 layer stores its kernel as an INT8 initializer
//! `main.{3i}.weight_quantized` `[in, out, 4, 4]` with per-output-channel
//! scales `main.{3i}.weight_scale` `[out]` and zero points
//! `main.{3i}.weight_zero_point` `[out]` (all 0), and a `DequantizeLinear`
//! node with `axis = 1` turns it back into the f32 kernel `main.{3i}.weight`.
//! Layers kept in f32 store `main.{3i}.weight` directly. Every
//! `ConvTranspose` takes the folded bias `main.{3i}.bias` as its third input,
//! followed by `Relu`, or `Tanh` after the last layer. Activations stay f32:
//! only the weights are quantized, so no calibration data is needed.
//!
//! Input, output, metadata, IR version and opset are those of
//! [`crate::onnx`], and the file adds the metadata entry `int8_layers`
//! (comma-separated layer indices).

use std::path::Path;

use dcgan_runtime::quantized::{Kernel, QuantizedGenerator};
use dcgan_runtime::spec::{LayerSpec, KERNEL};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, TensorProto};

use crate::onnx::{
    add_activation, add_node, encode_model, float_tensor, int_attribute, ints_attribute, model_metadata, tensor_info,
    INPUT_NAME, OUTPUT_NAME,
};
use crate::ExportError;

/// ONNX `metadata_props` key: comma-separated indices of the int8 layers.
pub const META_INT8_LAYERS: &str = "int8_layers";

/// Encodes a folded generator as a QDQ ONNX model.
///
/// # Errors
///
/// [`ExportError::Quantized`] for tensors that do not fit their spec,
/// [`ExportError::ReservedMetadataKey`] or
/// [`ExportError::DuplicateMetadataKey`] for bad `metadata`, and
/// [`ExportError::TooLarge`] past protobuf's 2 GiB limit.
pub fn generator_to_qdq_onnx(
    generator: &QuantizedGenerator,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, ExportError> {
    generator.validate()?;
    let int8_layers = generator.int8_layers().iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    if metadata.iter().any(|(key, _)| key == META_INT8_LAYERS) {
        return Err(ExportError::ReservedMetadataKey { key: META_INT8_LAYERS.to_string() });
    }
    let mut metadata = metadata.to_vec();
    metadata.push((META_INT8_LAYERS.to_string(), int8_layers));
    let metadata_props = model_metadata(&generator.spec, &metadata)?;

    encode_model(
        qdq_graph(generator),
        "DCGAN generator with folded BatchNorm and int8 weights (QDQ): latent z [N, nz, 1, 1] to image [N, nc, S, S] in [-1, 1]",
        metadata_props,
    )
}

/// Encodes with [`generator_to_qdq_onnx`] and writes `path` atomically.
/// Returns the number of bytes written.
///
/// # Errors
///
/// The errors of [`generator_to_qdq_onnx`], and [`ExportError::Write`].
pub fn write_qdq_onnx(
    generator: &QuantizedGenerator,
    metadata: &[(String, String)],
    path: &Path,
) -> Result<u64, ExportError> {
    let bytes = generator_to_qdq_onnx(generator, metadata)?;
    crate::write_atomic(path, &bytes)?;
    log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(bytes.len() as u64)
}

fn qdq_graph(generator: &QuantizedGenerator) -> GraphProto {
    let spec = generator.spec;
    let mut graph = GraphProto {
        name: "dcgan_generator_qdq".to_string(),
        input: vec![tensor_info(INPUT_NAME, [spec.nz, 1, 1])],
        output: vec![tensor_info(OUTPUT_NAME, [spec.nc, spec.image_size, spec.image_size])],
        ..Default::default()
    };

    let mut current = INPUT_NAME.to_string();
    for (index, (layer_spec, layer)) in spec.layers().iter().zip(&generator.layers).enumerate() {
        let module = format!("main.{}", 3 * index);
        let weight = add_weight(&mut graph, &module, layer_spec, &layer.kernel);
        let bias = format!("{module}.bias");
        graph.initializer.push(float_tensor(&bias, &[layer_spec.out_channels], &layer.bias));
        current = add_conv_transpose(&mut graph, &module, layer_spec, vec![current, weight, bias]);
        current = add_activation(&mut graph, index, layer_spec, current);
    }
    graph
}

/// Adds the kernel of one layer and returns the name of its f32 value:
/// an initializer for f32 kernels, a `DequantizeLinear` output for int8 ones.
fn add_weight(graph: &mut GraphProto, module: &str, spec: &LayerSpec, kernel: &Kernel) -> String {
    let weight = format!("{module}.weight");
    let dims = [spec.in_channels, spec.out_channels, KERNEL, KERNEL];
    let (values, scales) = match kernel {
        Kernel::F32(values) => {
            graph.initializer.push(float_tensor(&weight, &dims, values));
            return weight;
        }
        Kernel::Int8 { values, scales } => (values, scales),
    };

    let quantized = format!("{weight}_quantized");
    let scale = format!("{weight}_scale");
    let zero_point = format!("{weight}_zero_point");
    graph.initializer.push(int8_tensor(&quantized, &dims, values));
    graph.initializer.push(float_tensor(&scale, &[scales.len()], scales));
    graph.initializer.push(int8_tensor(&zero_point, &[scales.len()], &vec![0; scales.len()]));

    // axis 1 is the output channel of a ConvTranspose kernel [in, out, kH, kW].
    graph.node.push(tract_onnx::pb::NodeProto {
        input: vec![quantized, scale, zero_point],
        output: vec![weight.clone()],
        name: format!("{module}.dequantize"),
        op_type: "DequantizeLinear".to_string(),
        attribute: vec![int_attribute("axis", 1)],
        ..Default::default()
    });
    weight
}

fn add_conv_transpose(graph: &mut GraphProto, module: &str, layer: &LayerSpec, inputs: Vec<String>) -> String {
    let (kernel, stride, padding) = (KERNEL as i64, layer.stride as i64, layer.padding as i64);
    let attributes = vec![
        ints_attribute("kernel_shape", vec![kernel, kernel]),
        ints_attribute("strides", vec![stride, stride]),
        ints_attribute("pads", vec![padding, padding, padding, padding]),
        ints_attribute("dilations", vec![1, 1]),
        int_attribute("group", 1),
    ];
    add_node(graph, "ConvTranspose", module, inputs, attributes)
}

/// Builds an INT8 initializer stored as `raw_data`.
fn int8_tensor(name: &str, dims: &[usize], values: &[i8]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&dim| dim as i64).collect(),
        data_type: DataType::Int8 as i32,
        raw_data: values.iter().map(|&value| value as u8).collect(),
        ..Default::default()
    }
}
