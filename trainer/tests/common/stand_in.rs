//! A small stand-in for the Inception-v3 ONNX network, with its input and
//! output names and shapes: input `images` [N, 3, 299, 299], outputs
//! `pool3` [N, 2048] and `logits` [N, 1008].
//!
//! The graph averages each channel over the image (GlobalAveragePool) and
//! maps the three means linearly to the outputs, so its features are known
//! in closed form: `pool3[j] = sum_c mean_c * pool_weight(c, j)`.

use std::path::Path;

use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimensionValue;
use tract_onnx::pb::tensor_shape_proto::Dimension;
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// Weight from channel `c` to pool feature `j`.
pub fn pool_weight(c: usize, j: usize) -> f32 {
    ((j as f32) * 0.37 + (c as f32) * 1.3).sin()
}

/// Weight from channel `c` to logit `k`.
pub fn logit_weight(c: usize, k: usize) -> f32 {
    4.0 * ((k as f32) * 0.11 + (c as f32) * 2.1).cos()
}

/// Writes the stand-in with `pool_len` pool features (2048 for a fitting
/// network) and `input_size` declared input pixels (299).
pub fn write_stand_in(path: &Path, pool_len: usize, input_size: usize) {
    let pool: Vec<f32> = (0..3).flat_map(|c| (0..pool_len).map(move |j| pool_weight(c, j))).collect();
    let logits: Vec<f32> = (0..3).flat_map(|c| (0..1008).map(move |k| logit_weight(c, k))).collect();

    let graph = GraphProto {
        name: "inception_stand_in".into(),
        input: vec![value_info("images", &[3, input_size, input_size])],
        output: vec![value_info("pool3", &[pool_len]), value_info("logits", &[1008])],
        initializer: vec![float_tensor("pool_weight", &[3, pool_len], &pool), float_tensor("logit_weight", &[3, 1008], &logits)],
        node: vec![
            node("GlobalAveragePool", &["images"], "pooled", vec![]),
            node("Flatten", &["pooled"], "flat", vec![int_attribute("axis", 1)]),
            node("MatMul", &["flat", "pool_weight"], "pool3", vec![]),
            node("MatMul", &["flat", "logit_weight"], "logits", vec![]),
        ],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        producer_name: "dcgan-edge tests".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(graph),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

fn node(op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|name| name.to_string()).collect(),
        output: vec![output.to_string()],
        name: output.to_string(),
        op_type: op_type.to_string(),
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let batch = Dimension { value: Some(DimensionValue::DimParam("N".into())), ..Default::default() };
    let fixed = dims.iter().map(|&dim| Dimension { value: Some(DimensionValue::DimValue(dim as i64)), ..Default::default() });
    let shape = TensorShapeProto { dim: std::iter::once(batch).chain(fixed).collect() };
    let tensor = TensorType { elem_type: DataType::Float as i32, shape: Some(shape) };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto { value: Some(TypeValue::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&dim| dim as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|value| value.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn int_attribute(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}
