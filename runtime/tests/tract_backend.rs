//! The tract backend against the reference forward pass, and its errors.

mod common;

use common::{max_abs_diff, weights, write_model, SMALL};
use dcgan_runtime::latent::{fill_latent, fill_latents};
use dcgan_runtime::reference;
use dcgan_runtime::tract::{RuntimeError, TractGenerator};
use dcgan_runtime::GeneratorSpec;
use prost::Message;
use tract_onnx::pb::ModelProto;

const TOLERANCE: f32 = 1e-4;

#[test]
fn small_model_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let weights = weights(SMALL, 11);
    let mut generator = TractGenerator::load(write_model(dir.path(), "g.onnx", &weights)).unwrap();

    for batch in [1, 2, 5] {
        let mut latents = vec![0.0; batch * SMALL.nz];
        fill_latents(3, 0, SMALL.nz, &mut latents);
        let expected = reference::generate(&weights, &latents, batch).unwrap();
        let actual = generator.generate(&latents, batch).unwrap();
        let diff = max_abs_diff(&actual, &expected);
        assert!(diff < TOLERANCE, "batch {batch}: max difference {diff}");
    }
}

#[test]
fn grayscale_eight_pixel_model_matches_reference() {
    let spec = GeneratorSpec {
        nz: 5,
        ngf: 3,
        nc: 1,
        image_size: 8,
    };
    let dir = tempfile::tempdir().unwrap();
    let weights = weights(spec, 4);
    let mut generator = TractGenerator::load(write_model(dir.path(), "g.onnx", &weights)).unwrap();

    let mut latents = vec![0.0; 2 * spec.nz];
    fill_latents(9, 0, spec.nz, &mut latents);
    let expected = reference::generate(&weights, &latents, 2).unwrap();
    let diff = max_abs_diff(&generator.generate(&latents, 2).unwrap(), &expected);
    assert!(diff < TOLERANCE, "max difference {diff}");

    let faces = generator.generate_faces(9, 0, 2, 2).unwrap();
    let first_pixel = &faces[0][..3];
    assert_eq!(first_pixel[0], first_pixel[1]);
    assert_eq!(first_pixel[1], first_pixel[2]);
}

#[test]
fn load_reads_shape_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let generator =
        TractGenerator::load(write_model(dir.path(), "g.onnx", &weights(SMALL, 1))).unwrap();

    assert_eq!(generator.nz(), SMALL.nz);
    assert_eq!(generator.channels(), SMALL.nc);
    assert_eq!(generator.image_size(), SMALL.image_size);
    assert_eq!(generator.metadata()["trained_from"], "synthetic");
    assert_eq!(generator.metadata()["ngf"], "4");
    assert_eq!(generator.planned_batch_sizes(), [1]);
}

#[test]
fn load_without_metadata_uses_graph_facts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "g.onnx", &weights(SMALL, 1));
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    model.metadata_props.clear();
    std::fs::write(&path, model.encode_to_vec()).unwrap();

    let generator = TractGenerator::load(&path).unwrap();

    assert!(generator.metadata().is_empty());
    assert_eq!(generator.nz(), SMALL.nz);
    assert_eq!(generator.image_size(), SMALL.image_size);
}

#[test]
fn plans_are_cached_per_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator =
        TractGenerator::load(write_model(dir.path(), "g.onnx", &weights(SMALL, 1))).unwrap();

    generator.generate_faces(0, 0, 7, 3).unwrap();
    assert_eq!(generator.planned_batch_sizes(), [1, 3]);
    generator.generate_faces(0, 0, 6, 3).unwrap();
    assert_eq!(generator.planned_batch_sizes(), [1, 3]);
}

#[test]
fn face_depends_only_on_seed_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let weights = weights(SMALL, 5);
    let mut generator = TractGenerator::load(write_model(dir.path(), "g.onnx", &weights)).unwrap();

    let of_eight = generator.generate_faces(7, 0, 8, 8).unwrap();
    let of_sixty_four = generator.generate_faces(7, 0, 64, 64).unwrap();
    let alone = generator.generate_faces(7, 5, 1, 1).unwrap();
    assert_eq!(of_eight.len(), 8);
    assert_eq!(of_sixty_four.len(), 64);

    // With tract 0.23 on x86-64 every batch size computes a face with the
    // same float operations, so the bytes agree exactly. A backend that
    // reorders sums per batch size would break this and need a tolerance.
    assert_eq!(of_eight[5], of_sixty_four[5]);
    assert_eq!(of_eight[5], alone[0]);
    for batch_size in [1, 3, 16] {
        let faces = generator.generate_faces(7, 0, 8, batch_size).unwrap();
        assert_eq!(faces[5], of_eight[5], "batch size {batch_size}");
    }

    // The bytes are those of the reference pass, up to float rounding.
    let mut latent = vec![0.0; SMALL.nz];
    fill_latent(7, 5, &mut latent);
    let expected = reference::generate(&weights, &latent, 1).unwrap();
    let mut expected_rgb = vec![0u8; 3 * 16 * 16];
    dcgan_runtime::pixel::chw_to_rgb888(&expected, 16, &mut expected_rgb);
    let off_by_more_than_one = expected_rgb
        .iter()
        .zip(&alone[0])
        .filter(|(a, b)| a.abs_diff(**b) > 1)
        .count();
    assert_eq!(off_by_more_than_one, 0);
}

#[test]
fn different_seeds_give_different_faces() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator =
        TractGenerator::load(write_model(dir.path(), "g.onnx", &weights(SMALL, 5))).unwrap();
    let a = generator.generate_faces(1, 0, 2, 2).unwrap();
    let b = generator.generate_faces(2, 0, 2, 2).unwrap();
    assert_ne!(a[0], b[0]);
    assert_ne!(a[0], a[1]);
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.onnx");
    let err = TractGenerator::load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("absent.onnx"), "{message}");
    assert!(message.contains("dcgan export"), "{message}");
}

#[test]
fn non_onnx_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: [(&str, &[u8]); 4] = [
        ("empty.onnx", b""),
        ("text.onnx", b"this is not a model\n"),
        ("random.onnx", &random),
        ("face.onnx", &std::fs::read(celeba_photo()).unwrap()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = TractGenerator::load(&path).unwrap_err();
        assert!(
            matches!(err, RuntimeError::NotOnnx { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn truncated_model_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "g.onnx", &weights(SMALL, 1));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let err = TractGenerator::load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotOnnx { .. }), "{err:?}");
}

#[test]
fn classifier_onnx_is_not_a_generator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("classifier.onnx");
    std::fs::write(&path, relu_model([1, 3, 8, 8]).encode_to_vec()).unwrap();

    let err = TractGenerator::load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotGenerator { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("[1, 3, 8, 8]"), "{message}");
    assert!(message.contains("[N, nz, 1, 1]"), "{message}");
}

#[test]
fn latent_passthrough_is_not_a_generator() {
    // Input [N, 4, 1, 1] fits, but the output is not an image.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.onnx");
    std::fs::write(&path, relu_model([1, 4, 1, 1]).encode_to_vec()).unwrap();

    let err = TractGenerator::load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotGenerator { .. }), "{err:?}");
    assert!(err.to_string().contains("expected [1, C, S, S]"), "{err}");
}

#[test]
fn contradicting_metadata_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "g.onnx", &weights(SMALL, 1));
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    for entry in &mut model.metadata_props {
        if entry.key == "image_size" {
            entry.value = "64".to_string();
        }
    }
    std::fs::write(&path, model.encode_to_vec()).unwrap();

    let err = TractGenerator::load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotGenerator { .. }), "{err:?}");
    assert!(err.to_string().contains("image_size = 64"), "{err}");
}

#[test]
fn generate_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator =
        TractGenerator::load(write_model(dir.path(), "g.onnx", &weights(SMALL, 1))).unwrap();

    let err = generator.generate(&[0.0; 7], 1).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::LatentLength {
                expected: 8,
                found: 7,
                ..
            }
        ),
        "{err:?}"
    );
    let err = generator.generate(&[], 0).unwrap_err();
    assert!(matches!(err, RuntimeError::ZeroBatch { .. }), "{err:?}");
    let err = generator.generate_faces(0, 0, 4, 0).unwrap_err();
    assert!(matches!(err, RuntimeError::ZeroBatch { .. }), "{err:?}");
    let err = generator.generate_faces(0, u64::MAX, 2, 1).unwrap_err();
    assert!(
        matches!(err, RuntimeError::FaceIndexOverflow { .. }),
        "{err:?}"
    );
    assert!(generator.generate_faces(0, 0, 0, 4).unwrap().is_empty());
}

/// Builds a one-node `Relu` model with a fixed input shape.
fn relu_model(shape: [i64; 4]) -> ModelProto {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::tensor_shape_proto::{dimension::Value, Dimension};
    use tract_onnx::pb::type_proto::{Tensor, Value as TypeValue};
    use tract_onnx::pb::{
        GraphProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };

    let dims = shape
        .iter()
        .map(|&d| Dimension {
            value: Some(Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    let tensor = Tensor {
        elem_type: DataType::Float as i32,
        shape: Some(TensorShapeProto { dim: dims }),
    };
    let info = |name: &str| ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(tensor.clone())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = NodeProto {
        input: vec!["x".to_string()],
        output: vec!["y".to_string()],
        op_type: "Relu".to_string(),
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![node],
            input: vec![info("x")],
            output: vec![info("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Returns the path of a real CelebA JPEG from the test data.
fn celeba_photo() -> std::path::PathBuf {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/faces");
    let mut photos: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    photos.sort();
    photos
        .into_iter()
        .next()
        .expect("the faces directory holds photos")
}

#[test]
fn debug_output_is_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let generator =
        TractGenerator::load(write_model(dir.path(), "g.onnx", &weights(SMALL, 1))).unwrap();
    let debug = format!("{generator:?}");
    assert!(debug.contains("nz: 8"), "{debug}");
    assert!(debug.contains("planned_batch_sizes: [1]"), "{debug}");
    assert!(debug.len() < 1000, "{debug}");
}
