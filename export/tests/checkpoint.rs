//! Reading and writing generator checkpoints, good and bad.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use dcgan_export::checkpoint::{
    generator_bn_key, generator_conv_key, CHECKPOINT_FILE, FORMAT, META_FORMAT, META_GENERATOR_SPEC,
};
use dcgan_export::{read_generator, write_generator_checkpoint, CheckpointInfo, ExportError};
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::{GeneratorSpec, GeneratorWeights};
use safetensors::tensor::{Dtype, TensorView};

/// A tensor's name, shape and F32 values.
type RawTensor = (String, Vec<usize>, Vec<f32>);

const SMALL: GeneratorSpec = GeneratorSpec {
    nz: 6,
    ngf: 4,
    nc: 3,
    image_size: 16,
};

fn small_weights() -> GeneratorWeights {
    random_weights(SMALL, 21).unwrap()
}

fn info() -> CheckpointInfo {
    CheckpointInfo {
        trained_from: "data/faces".to_string(),
        epoch: Some(4),
        iteration: Some(790),
        metadata: BTreeMap::from([("learning_rate".to_string(), "0.0002".to_string())]),
    }
}

/// Writes a good checkpoint into `dir` as a run directory would hold it.
fn write_run(dir: &Path) -> PathBuf {
    let path = dir.join(CHECKPOINT_FILE);
    write_generator_checkpoint(&path, &small_weights(), &info()).unwrap();
    path
}

/// Writes a checkpoint of arbitrary F32 tensors and metadata.
fn write_raw(path: &Path, tensors: &[RawTensor], metadata: HashMap<String, String>) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
}

/// Returns the tensors and metadata of a good small checkpoint, for tests to spoil.
fn good_parts() -> (Vec<RawTensor>, HashMap<String, String>) {
    let weights = small_weights();
    let mut tensors = Vec::new();
    for (index, (spec, layer)) in SMALL.layers().iter().zip(&weights.layers).enumerate() {
        tensors.push((
            generator_conv_key(index),
            vec![spec.in_channels, spec.out_channels, 4, 4],
            layer.weight.clone(),
        ));
        if let Some(bn) = &layer.batch_norm {
            for (part, values) in [
                ("weight", &bn.gamma),
                ("bias", &bn.beta),
                ("running_mean", &bn.running_mean),
                ("running_var", &bn.running_var),
            ] {
                tensors.push((
                    generator_bn_key(index, part),
                    vec![spec.out_channels],
                    values.clone(),
                ));
            }
        }
    }
    let metadata = HashMap::from([
        (META_FORMAT.to_string(), FORMAT.to_string()),
        (
            META_GENERATOR_SPEC.to_string(),
            r#"{"nz":6,"ngf":4,"nc":3,"image_size":16}"#.to_string(),
        ),
        ("trained_from".to_string(), "synthetic".to_string()),
    ]);
    (tensors, metadata)
}

#[test]
fn round_trip_preserves_weights_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_run(dir.path());

    let (weights, read_info) = read_generator(&path).unwrap();

    assert_eq!(weights, small_weights());
    assert_eq!(read_info.trained_from, "data/faces");
    assert_eq!(read_info.epoch, Some(4));
    assert_eq!(read_info.iteration, Some(790));
    assert_eq!(read_info.metadata["learning_rate"], "0.0002");
    assert_eq!(read_info.metadata[META_FORMAT], FORMAT);
    assert_eq!(
        read_info.metadata[META_GENERATOR_SPEC],
        r#"{"nz":6,"ngf":4,"nc":3,"image_size":16}"#
    );
}

#[test]
fn run_directory_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let (weights, _) = read_generator(dir.path()).unwrap();
    assert_eq!(weights, small_weights());
}

#[test]
fn tutorial_checkpoint_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tutorial.safetensors");
    let weights = random_weights(GeneratorSpec::default(), 1).unwrap();
    write_generator_checkpoint(&path, &weights, &CheckpointInfo::default()).unwrap();

    let (read, read_info) = read_generator(&path).unwrap();

    assert_eq!(read, weights);
    assert_eq!(read_info.epoch, None);
    assert_eq!(read_info.iteration, None);
    assert_eq!(read_info.trained_from, "");
}

#[test]
fn missing_checkpoint_says_to_train() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_generator(dir.path()).unwrap_err();
    assert!(
        matches!(err, ExportError::CheckpointNotFound { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(CHECKPOINT_FILE), "{message}");
    assert!(message.contains("dcgan train"), "{message}");
}

#[test]
fn unparseable_files_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(write_run(dir.path())).unwrap();
    let random: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let cases: [(&str, &[u8]); 5] = [
        ("empty.safetensors", b""),
        ("random.safetensors", &random),
        ("truncated.safetensors", &good[..good.len() - 100]),
        ("header-only.safetensors", &good[..40]),
        ("text.safetensors", b"{\"not\": \"safetensors\"}"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_generator(&path).unwrap_err();
        assert!(
            matches!(err, ExportError::InvalidCheckpoint { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
        assert!(err.to_string().contains("cut short"), "{name}: {err}");
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (mut tensors, metadata) = good_parts();
    tensors.retain(|(name, _, _)| name != "netG.main.4.running_var");
    write_raw(&path, &tensors, metadata);

    let err = read_generator(&path).unwrap_err();
    assert!(matches!(err, ExportError::MissingTensor { .. }), "{err:?}");
    assert!(err.to_string().contains("netG.main.4.running_var"), "{err}");
}

#[test]
fn wrong_shape_names_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (mut tensors, metadata) = good_parts();
    // Layer 1 is ConvTranspose2d(8, 4): store its kernel transposed.
    let conv = tensors
        .iter_mut()
        .find(|(name, _, _)| name == "netG.main.3.weight")
        .unwrap();
    conv.1 = vec![4, 8, 4, 4];
    write_raw(&path, &tensors, metadata);

    let err = read_generator(&path).unwrap_err();
    assert!(matches!(err, ExportError::TensorShape { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("netG.main.3.weight: expected shape [8, 4, 4, 4], found [4, 8, 4, 4]"),
        "{message}"
    );
    assert!(message.contains("c.safetensors"), "{message}");
}

#[test]
fn wrong_dtype_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (tensors, metadata) = good_parts();

    // The first kernel as F16 bytes (any two bytes per value will do).
    let (name, shape, values) = &tensors[0];
    let half_bytes = vec![0u8; values.len() * 2];
    let f32_bytes: Vec<Vec<u8>> = tensors[1..]
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = vec![(
        name.clone(),
        TensorView::new(Dtype::F16, shape.clone(), &half_bytes).unwrap(),
    )];
    for ((name, shape, _), bytes) in tensors[1..].iter().zip(&f32_bytes) {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
        ));
    }
    std::fs::write(
        &path,
        safetensors::serialize(views, Some(metadata)).unwrap(),
    )
    .unwrap();

    let err = read_generator(&path).unwrap_err();
    assert!(matches!(err, ExportError::TensorDtype { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("netG.main.0.weight: expected dtype F32, found F16"),
        "{err}"
    );
}

#[test]
fn bad_metadata_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let cases: [(&str, Option<&str>, &str); 6] = [
        (META_FORMAT, None, "not a dcgan-edge checkpoint"),
        (
            META_FORMAT,
            Some("dcgan-edge-checkpoint/2"),
            "dcgan-edge-checkpoint/2",
        ),
        (META_GENERATOR_SPEC, None, "is missing"),
        (META_GENERATOR_SPEC, Some("{\"nz\": 6"), "invalid JSON"),
        (
            META_GENERATOR_SPEC,
            Some(r#"{"nz":6,"ngf":4,"nc":3,"image_size":12}"#),
            "image size 12",
        ),
        ("epoch", Some("four"), "`four`"),
    ];
    for (key, value, expected) in cases {
        let (tensors, mut metadata) = good_parts();
        match value {
            Some(value) => metadata.insert(key.to_string(), value.to_string()),
            None => metadata.remove(key),
        };
        write_raw(&path, &tensors, metadata);

        let err = read_generator(&path).unwrap_err();
        assert!(
            matches!(err, ExportError::Metadata { .. }),
            "{key}={value:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(key), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn spec_that_disagrees_with_tensors_is_a_shape_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (tensors, mut metadata) = good_parts();
    metadata.insert(
        META_GENERATOR_SPEC.to_string(),
        r#"{"nz":100,"ngf":4,"nc":3,"image_size":16}"#.to_string(),
    );
    write_raw(&path, &tensors, metadata);

    let err = read_generator(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("netG.main.0.weight: expected shape [100, 8, 4, 4], found [6, 8, 4, 4]"),
        "{err}"
    );
}

#[test]
fn diverged_weights_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (mut tensors, metadata) = good_parts();
    tensors[2].2[0] = f32::NAN;
    tensors[2].2[1] = f32::INFINITY;
    write_raw(&path, &tensors, metadata);

    let err = read_generator(&path).unwrap_err();
    assert!(
        matches!(err, ExportError::NonFinite { count: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&tensors[2].0), "{err}");
}

#[test]
fn writer_rejects_unstorable_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");

    let mut weights = small_weights();
    weights.layers[0].batch_norm.as_mut().unwrap().eps = 1e-3;
    let err = write_generator_checkpoint(&path, &weights, &info()).unwrap_err();
    assert!(
        matches!(err, ExportError::BatchNormEps { layer: 0, .. }),
        "{err:?}"
    );

    let mut weights = small_weights();
    weights.layers[1].weight.pop();
    let err = write_generator_checkpoint(&path, &weights, &info()).unwrap_err();
    assert!(matches!(err, ExportError::Weights(_)), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn extra_tensors_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let (mut tensors, metadata) = good_parts();
    tensors.push((
        "netD.main.0.weight".to_string(),
        vec![4, 3, 4, 4],
        vec![0.5; 192],
    ));
    tensors.push((
        "netG.main.1.num_batches_tracked".to_string(),
        vec![1],
        vec![0.0],
    ));
    write_raw(&path, &tensors, metadata);

    let (weights, _) = read_generator(&path).unwrap();
    assert_eq!(weights, small_weights());
}
