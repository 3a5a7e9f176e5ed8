//! ONNX export of the generator.
//!
//! The graph mirrors the PyTorch tutorial's `netG.main` in inference form:
//! per layer a `ConvTranspose` without bias, then `BatchNormalization` with
//! running statistics and `Relu`, and a final `Tanh`. Initializers carry the
//! PyTorch `state_dict` names (`main.0.weight`, `main.1.running_mean`, ...),
//! the input is `z` float32 `[N, nz, 1, 1]` and the output `image` float32
//! `[N, nc, S, S]` with a symbolic batch `N`. The model uses ONNX IR version 8
//! and the default-domain operator set 17.

use std::collections::BTreeMap;
use std::path::Path;

use dcgan_runtime::spec::{Activation, GeneratorSpec, LayerSpec, KERNEL};
use dcgan_runtime::tract::{META_IMAGE_SIZE, META_NC, META_NGF, META_NZ, META_PRODUCER_VERSION};
use dcgan_runtime::weights::{BatchNormWeights, GeneratorWeights};
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimensionValue;
use tract_onnx::pb::tensor_shape_proto::Dimension;
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::ExportError;

/// ONNX IR version of the exported model (ONNX 1.13 and later read it).
pub const IR_VERSION: i64 = 8;
/// Version of the default-domain operator set the graph uses.
pub const OPSET_VERSION: i64 = 17;
/// `producer_name` of the exported model.
pub const PRODUCER_NAME: &str = "dcgan-edge";
/// Name of the graph input, `[N, nz, 1, 1]`.
pub const INPUT_NAME: &str = "z";
/// Name of the graph output, `[N, nc, image_size, image_size]`.
pub const OUTPUT_NAME: &str = "image";
/// Symbolic batch dimension of the input and output.
pub const BATCH_DIM: &str = "N";

/// protobuf cannot encode or parse messages of 2 GiB or more.
pub(crate) const PROTOBUF_LIMIT: usize = i32::MAX as usize;

/// Encodes the generator as an ONNX model.
///
/// `metadata_props` get `nz`, `ngf`, `nc`, `image_size` and
/// `producer_version`, then the entries of `metadata` (for example
/// `trained_from`).
///
/// # Errors
///
/// [`ExportError::Weights`] for weights that do not fit their spec,
/// [`ExportError::ReservedMetadataKey`] or
/// [`ExportError::DuplicateMetadataKey`] for bad `metadata`, and
/// [`ExportError::TooLarge`] for generators past protobuf's 2 GiB limit.
pub fn generator_to_onnx(
    weights: &GeneratorWeights,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, ExportError> {
    weights.validate()?;
    let metadata_props = model_metadata(&weights.spec, metadata)?;

    let weight_bytes = 4 * weights.spec.parameter_count();
    if weight_bytes >= PROTOBUF_LIMIT {
        return Err(ExportError::TooLarge {
            bytes: weight_bytes,
        });
    }

    encode_model(
        generator_graph(weights),
        "DCGAN generator: latent z [N, nz, 1, 1] to image [N, nc, S, S] in [-1, 1]",
        metadata_props,
    )
}

/// Wraps `graph` in a model of this exporter's IR version, opset and
/// producer, and encodes it.
///
/// # Errors
///
/// [`ExportError::TooLarge`] when the encoded model passes protobuf's 2 GiB
/// limit.
pub(crate) fn encode_model(
    graph: GraphProto,
    doc_string: &str,
    metadata_props: Vec<StringStringEntryProto>,
) -> Result<Vec<u8>, ExportError> {
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET_VERSION }],
        producer_name: PRODUCER_NAME.to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: doc_string.to_string(),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    };
    let bytes = model.encode_to_vec();
    if bytes.len() >= PROTOBUF_LIMIT {
        return Err(ExportError::TooLarge { bytes: bytes.len() });
    }
    Ok(bytes)
}

/// Encodes the generator with [`generator_to_onnx`] and writes it to `path`
/// through a temporary sibling file and a rename, so `path` never contains a
/// partial model. Creates missing parent directories.
///
/// Returns the number of bytes written.
///
/// # Errors
///
/// The errors of [`generator_to_onnx`], and [`ExportError::Write`] when the
/// file cannot be written.
pub fn write_onnx(
    weights: &GeneratorWeights,
    metadata: &[(String, String)],
    path: &Path,
) -> Result<u64, ExportError> {
    let bytes = generator_to_onnx(weights, metadata)?;
    crate::write_atomic(path, &bytes)?;
    log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(bytes.len() as u64)
}

/// Lists the spec entries, then the caller's, rejecting reserved and repeated keys.
pub(crate) fn model_metadata(
    spec: &GeneratorSpec,
    metadata: &[(String, String)],
) -> Result<Vec<StringStringEntryProto>, ExportError> {
    let reserved = [
        (META_NZ, spec.nz.to_string()),
        (META_NGF, spec.ngf.to_string()),
        (META_NC, spec.nc.to_string()),
        (META_IMAGE_SIZE, spec.image_size.to_string()),
        (META_PRODUCER_VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ];

    let mut extra = BTreeMap::new();
    for (key, value) in metadata {
        if reserved.iter().any(|(reserved_key, _)| reserved_key == key) {
            return Err(ExportError::ReservedMetadataKey { key: key.clone() });
        }
        if extra.insert(key.clone(), value.clone()).is_some() {
            return Err(ExportError::DuplicateMetadataKey { key: key.clone() });
        }
    }

    let entries = reserved
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .chain(extra);
    Ok(entries
        .map(|(key, value)| StringStringEntryProto { key, value })
        .collect())
}

/// Builds the graph: nodes, initializers, and the `z` and `image` value infos.
fn generator_graph(weights: &GeneratorWeights) -> GraphProto {
    let spec = weights.spec;
    let mut graph = GraphProto {
        name: "dcgan_generator".to_string(),
        input: vec![tensor_info(INPUT_NAME, [spec.nz, 1, 1])],
        output: vec![tensor_info(
            OUTPUT_NAME,
            [spec.nc, spec.image_size, spec.image_size],
        )],
        ..Default::default()
    };

    let mut current = INPUT_NAME.to_string();
    for (index, (layer, layer_weights)) in spec.layers().iter().zip(&weights.layers).enumerate() {
        current = add_conv_transpose(&mut graph, index, layer, &layer_weights.weight, current);
        if let Some(batch_norm) = &layer_weights.batch_norm {
            current = add_batch_norm(&mut graph, index, batch_norm, current);
        }
        current = add_activation(&mut graph, index, layer, current);
    }
    graph
}

/// `main.{3i}`: transposed convolution of layer `index`, without bias.
fn add_conv_transpose(
    graph: &mut GraphProto,
    index: usize,
    layer: &LayerSpec,
    weight: &[f32],
    input: String,
) -> String {
    let module = format!("main.{}", 3 * index);
    let weight_name = format!("{module}.weight");
    let dims = [layer.in_channels, layer.out_channels, KERNEL, KERNEL];
    graph
        .initializer
        .push(float_tensor(&weight_name, &dims, weight));

    let (kernel, stride, padding) = (KERNEL as i64, layer.stride as i64, layer.padding as i64);
    let attributes = vec![
        ints_attribute("kernel_shape", vec![kernel, kernel]),
        ints_attribute("strides", vec![stride, stride]),
        ints_attribute("pads", vec![padding, padding, padding, padding]),
        ints_attribute("dilations", vec![1, 1]),
        int_attribute("group", 1),
    ];
    add_node(
        graph,
        "ConvTranspose",
        &module,
        vec![input, weight_name],
        attributes,
    )
}

/// `main.{3i+1}`: BatchNormalization of layer `index` in inference form.
fn add_batch_norm(
    graph: &mut GraphProto,
    index: usize,
    weights: &BatchNormWeights,
    input: String,
) -> String {
    let module = format!("main.{}", 3 * index + 1);
    let channels = [weights.gamma.len()];
    let parts = [
        ("weight", &weights.gamma),
        ("bias", &weights.beta),
        ("running_mean", &weights.running_mean),
        ("running_var", &weights.running_var),
    ];

    let mut inputs = vec![input];
    for (part, values) in parts {
        let name = format!("{module}.{part}");
        graph
            .initializer
            .push(float_tensor(&name, &channels, values));
        inputs.push(name);
    }
    add_node(
        graph,
        "BatchNormalization",
        &module,
        inputs,
        vec![float_attribute("epsilon", weights.eps)],
    )
}

/// `main.{3i+2}` (`Relu`) after a hidden layer, or `main.{3i+1}` (`Tanh`)
/// after the last one, which writes the graph output.
pub(crate) fn add_activation(
    graph: &mut GraphProto,
    index: usize,
    layer: &LayerSpec,
    input: String,
) -> String {
    match layer.activation {
        Activation::Relu => add_node(
            graph,
            "Relu",
            &format!("main.{}", 3 * index + 2),
            vec![input],
            Vec::new(),
        ),
        Activation::Tanh => {
            let module = format!("main.{}", 3 * index + 1);
            graph.node.push(NodeProto {
                input: vec![input],
                output: vec![OUTPUT_NAME.to_string()],
                name: module,
                op_type: "Tanh".to_string(),
                ..Default::default()
            });
            OUTPUT_NAME.to_string()
        }
    }
}

/// Appends a node named `module` whose single output is `{module}.output`,
/// and returns that output's name.
pub(crate) fn add_node(
    graph: &mut GraphProto,
    op_type: &str,
    module: &str,
    input: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> String {
    let output = format!("{module}.output");
    graph.node.push(NodeProto {
        input,
        output: vec![output.clone()],
        name: module.to_string(),
        op_type: op_type.to_string(),
        attribute,
        ..Default::default()
    });
    output
}

/// Builds a float32 tensor value info of shape `[N, dims...]`.
pub(crate) fn tensor_info(name: &str, dims: [usize; 3]) -> ValueInfoProto {
    let batch = Dimension {
        value: Some(DimensionValue::DimParam(BATCH_DIM.to_string())),
        ..Default::default()
    };
    let fixed = dims.iter().map(|&dim| Dimension {
        value: Some(DimensionValue::DimValue(dim as i64)),
        ..Default::default()
    });
    let shape = TensorShapeProto {
        dim: std::iter::once(batch).chain(fixed).collect(),
    };

    let tensor = TensorType {
        elem_type: DataType::Float as i32,
        shape: Some(shape),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a float32 initializer stored as little-endian `raw_data`.
pub(crate) fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&dim| dim as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn ints_attribute(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints,
        ..Default::default()
    }
}

pub(crate) fn int_attribute(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn float_attribute(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}
