//! The exported ONNX model, decoded back with prost.

use std::collections::BTreeMap;

use dcgan_export::onnx::{generator_to_onnx, write_onnx, IR_VERSION, OPSET_VERSION};
use dcgan_export::ExportError;
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::{GeneratorSpec, GeneratorWeights};
use prost::Message;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimensionValue;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, ValueInfoProto};

fn tutorial_weights() -> GeneratorWeights {
    random_weights(GeneratorSpec::default(), 3).unwrap()
}

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("the export is a valid protobuf")
}

/// `["N", "100", "1", "1"]` style dims of a value info.
fn dims(info: &ValueInfoProto) -> Vec<String> {
    let Some(TypeValue::TensorType(tensor)) = info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        panic!("{} is not a tensor", info.name);
    };
    assert_eq!(tensor.elem_type, 1, "{} is float32", info.name);
    tensor
        .shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|dim| match dim.value.as_ref().unwrap() {
            DimensionValue::DimValue(value) => value.to_string(),
            DimensionValue::DimParam(param) => param.clone(),
        })
        .collect()
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> &'a AttributeProto {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{} has no {name}", node.name))
}

#[test]
fn model_header_and_io() {
    let model = decode(&generator_to_onnx(&tutorial_weights(), &[]).unwrap());

    assert_eq!(model.ir_version, IR_VERSION);
    assert_eq!(model.ir_version, 8);
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!(model.opset_import[0].domain, "");
    assert_eq!(model.opset_import[0].version, OPSET_VERSION);
    assert_eq!(model.opset_import[0].version, 17);
    assert_eq!(model.producer_name, "dcgan-edge");
    assert_eq!(model.producer_version, env!("CARGO_PKG_VERSION"));

    let graph = model.graph.unwrap();
    assert_eq!(graph.input.len(), 1);
    assert_eq!(graph.input[0].name, "z");
    assert_eq!(dims(&graph.input[0]), ["N", "100", "1", "1"]);
    assert_eq!(graph.output.len(), 1);
    assert_eq!(graph.output[0].name, "image");
    assert_eq!(dims(&graph.output[0]), ["N", "3", "64", "64"]);
}

#[test]
fn nodes_follow_the_tutorial() {
    let model = decode(&generator_to_onnx(&tutorial_weights(), &[]).unwrap());
    let graph = model.graph.unwrap();

    let ops: Vec<&str> = graph
        .node
        .iter()
        .map(|node| node.op_type.as_str())
        .collect();
    let mut expected = Vec::new();
    for _ in 0..4 {
        expected.extend(["ConvTranspose", "BatchNormalization", "Relu"]);
    }
    expected.extend(["ConvTranspose", "Tanh"]);
    assert_eq!(ops, expected);
    assert!(graph.node.iter().all(|node| node.domain.is_empty()));

    // Each node consumes the previous one's output, from `z` to `image`.
    assert_eq!(graph.node[0].input[0], "z");
    for pair in graph.node.windows(2) {
        assert_eq!(
            pair[1].input[0], pair[0].output[0],
            "{} feeds {}",
            pair[0].name, pair[1].name
        );
    }
    assert_eq!(graph.node.last().unwrap().output, ["image"]);

    let first = &graph.node[0];
    assert_eq!(first.input, ["z", "main.0.weight"], "no bias input");
    assert_eq!(attribute(first, "kernel_shape").ints, [4, 4]);
    assert_eq!(attribute(first, "strides").ints, [1, 1]);
    assert_eq!(attribute(first, "pads").ints, [0, 0, 0, 0]);
    let second = &graph.node[3];
    assert_eq!(second.input, ["main.2.output", "main.3.weight"]);
    assert_eq!(attribute(second, "strides").ints, [2, 2]);
    assert_eq!(attribute(second, "pads").ints, [1, 1, 1, 1]);

    let batch_norm = &graph.node[1];
    assert_eq!(
        batch_norm.input,
        [
            "main.0.output",
            "main.1.weight",
            "main.1.bias",
            "main.1.running_mean",
            "main.1.running_var"
        ]
    );
    assert_eq!(attribute(batch_norm, "epsilon").f, 1e-5);
    assert_eq!(batch_norm.output.len(), 1, "inference form has one output");
}

#[test]
fn initializers_use_state_dict_names() {
    let weights = tutorial_weights();
    let model = decode(&generator_to_onnx(&weights, &[]).unwrap());
    let graph = model.graph.unwrap();

    let initializers: BTreeMap<&str, &tract_onnx::pb::TensorProto> = graph
        .initializer
        .iter()
        .map(|tensor| (tensor.name.as_str(), tensor))
        .collect();
    // Five kernels and four BatchNorms of four tensors each.
    assert_eq!(initializers.len(), 5 + 4 * 4);

    let kernel = initializers["main.12.weight"];
    assert_eq!(kernel.dims, [64, 3, 4, 4]);
    assert_eq!(kernel.data_type, 1);
    let values: Vec<f32> = kernel
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, weights.layers[4].weight);

    let mean = initializers["main.10.running_mean"];
    assert_eq!(mean.dims, [64]);
    let values: Vec<f32> = mean
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(
        &values,
        &weights.layers[3].batch_norm.as_ref().unwrap().running_mean
    );
    assert!(
        !initializers.contains_key("main.13.weight"),
        "Tanh has no weights"
    );
}

#[test]
fn metadata_holds_spec_and_extras() {
    let extra = [
        ("trained_from".to_string(), "data/faces".to_string()),
        ("epoch".to_string(), "5".to_string()),
    ];
    let model = decode(&generator_to_onnx(&tutorial_weights(), &extra).unwrap());

    let metadata: BTreeMap<&str, &str> = model
        .metadata_props
        .iter()
        .map(|entry| (entry.key.as_str(), entry.value.as_str()))
        .collect();
    assert_eq!(metadata["nz"], "100");
    assert_eq!(metadata["ngf"], "64");
    assert_eq!(metadata["nc"], "3");
    assert_eq!(metadata["image_size"], "64");
    assert_eq!(metadata["producer_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(metadata["trained_from"], "data/faces");
    assert_eq!(metadata["epoch"], "5");
    assert_eq!(metadata.len(), 7);
}

#[test]
fn bad_metadata_is_rejected() {
    let weights = tutorial_weights();

    let reserved = [("nz".to_string(), "7".to_string())];
    let err = generator_to_onnx(&weights, &reserved).unwrap_err();
    assert!(
        matches!(err, ExportError::ReservedMetadataKey { ref key } if key == "nz"),
        "{err:?}"
    );

    let twice = [
        ("note".to_string(), "a".to_string()),
        ("note".to_string(), "b".to_string()),
    ];
    let err = generator_to_onnx(&weights, &twice).unwrap_err();
    assert!(
        matches!(err, ExportError::DuplicateMetadataKey { ref key } if key == "note"),
        "{err:?}"
    );
}

#[test]
fn invalid_weights_are_rejected() {
    let mut weights = tutorial_weights();
    weights.layers[2].batch_norm = None;
    let err = generator_to_onnx(&weights, &[]).unwrap_err();
    assert!(matches!(err, ExportError::Weights(_)), "{err:?}");
    assert!(err.to_string().contains("layer 2"), "{err}");
}

#[test]
fn write_onnx_creates_parents_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models/nested/generator.onnx");
    let weights = random_weights(
        GeneratorSpec {
            nz: 4,
            ngf: 2,
            nc: 3,
            image_size: 8,
        },
        0,
    )
    .unwrap();

    let bytes = write_onnx(&weights, &[], &path).unwrap();

    assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        generator_to_onnx(&weights, &[]).unwrap()
    );
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["generator.onnx"]);
}

#[test]
fn write_onnx_into_a_file_path_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"a file, not a directory").unwrap();
    let weights = random_weights(
        GeneratorSpec {
            nz: 4,
            ngf: 2,
            nc: 3,
            image_size: 8,
        },
        0,
    )
    .unwrap();

    let err = write_onnx(&weights, &[], &blocker.join("generator.onnx")).unwrap_err();

    assert!(matches!(err, ExportError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains("blocker"), "{err}");
}
