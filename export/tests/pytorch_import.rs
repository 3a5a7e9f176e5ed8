//! Import of generators saved by PyTorch, against PyTorch's own outputs.
//!
//! `golden/make_netg.py` wrote the `.pth` files and the eval-mode outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use dcgan_export::{read_pytorch_generator, write_onnx, ExportError};
use dcgan_runtime::reference;
use dcgan_runtime::tract::TractGenerator;
use dcgan_runtime::{GeneratorSpec, GeneratorWeights};
use safetensors::tensor::{Dtype, TensorView};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const TOLERANCE: f32 = 1e-4;
const SPEC: GeneratorSpec = GeneratorSpec { nz: 100, ngf: 4, nc: 3, image_size: 64 };

fn golden(name: &str) -> PathBuf {
    Path::new(GOLDEN).join(name)
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(golden(name)).unwrap();
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn imported() -> GeneratorWeights {
    read_pytorch_generator(&golden("netG.pth")).unwrap().0
}

#[test]
fn pth_state_dict_matches_pytorch_forward() {
    let (weights, info) = read_pytorch_generator(&golden("netG.pth")).unwrap();
    assert_eq!(weights.spec, SPEC);
    assert_eq!(info.prefix, "");

    let latents = read_f32("latents.f32");
    let expected = read_f32("images.f32");
    let actual = reference::generate(&weights, &latents, 3).unwrap();
    let diff = max_abs_diff(&actual, &expected);
    assert!(diff < TOLERANCE, "max abs difference {diff}");
}

#[test]
fn pth_export_through_tract_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("netG.onnx");
    write_onnx(&imported(), &[], &onnx).unwrap();

    let latents = read_f32("latents.f32");
    let output = TractGenerator::load(&onnx).unwrap().generate(&latents, 3).unwrap();
    let diff = max_abs_diff(&output, &read_f32("images.f32"));
    assert!(diff < TOLERANCE, "max abs difference {diff}");
}

#[test]
fn whole_checkpoint_with_module_prefix_imports() {
    let (weights, info) = read_pytorch_generator(&golden("netG_checkpoint.pth")).unwrap();
    assert_eq!(info.prefix, "netG.module.");
    assert_eq!(weights, imported());
}

/// Writes `tensors` as a safetensors file.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The tutorial's `state_dict` of `weights`, with `prefix` before every name.
fn state_dict(weights: &GeneratorWeights, prefix: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut tensors = Vec::new();
    for (index, (spec, layer)) in weights.spec.layers().iter().zip(&weights.layers).enumerate() {
        let shape = vec![spec.in_channels, spec.out_channels, 4, 4];
        tensors.push((format!("{prefix}main.{}.weight", 3 * index), shape, layer.weight.clone()));
        if let Some(bn) = &layer.batch_norm {
            let parts = [
                ("weight", &bn.gamma),
                ("bias", &bn.beta),
                ("running_mean", &bn.running_mean),
                ("running_var", &bn.running_var),
            ];
            for (part, values) in parts {
                tensors.push((
                    format!("{prefix}main.{}.{part}", 3 * index + 1),
                    vec![spec.out_channels],
                    values.clone(),
                ));
            }
        }
    }
    tensors
}

#[test]
fn safetensors_state_dict_imports() {
    let dir = tempfile::tempdir().unwrap();
    for prefix in ["", "module."] {
        let path = dir.path().join("netG.safetensors");
        write_safetensors(&path, &state_dict(&imported(), prefix));
        let (weights, info) = read_pytorch_generator(&path).unwrap();
        assert_eq!(info.prefix, prefix);
        assert_eq!(weights, imported());
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.safetensors");
    let mut tensors = state_dict(&imported(), "");
    tensors.retain(|(name, _, _)| name != "main.4.running_var");
    write_safetensors(&path, &tensors);

    let err = read_pytorch_generator(&path).unwrap_err();
    assert!(matches!(&err, ExportError::MissingTensor { name, .. } if name == "main.4.running_var"), "{err}");
    assert!(err.to_string().contains("missing.safetensors"), "{err}");
}

#[test]
fn missing_layer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gap.safetensors");
    let mut tensors = state_dict(&imported(), "");
    tensors.retain(|(name, _, _)| name != "main.6.weight");
    write_safetensors(&path, &tensors);

    let err = read_pytorch_generator(&path).unwrap_err();
    assert!(matches!(&err, ExportError::MissingTensor { name, .. } if name == "main.6.weight"), "{err}");
}

#[test]
fn extra_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.safetensors");
    let mut tensors = state_dict(&imported(), "");
    tensors.push(("main.3.bias".to_string(), vec![16], vec![0.0; 16]));
    write_safetensors(&path, &tensors);

    let err = read_pytorch_generator(&path).unwrap_err();
    assert!(matches!(&err, ExportError::UnexpectedTensor { name, .. } if name == "main.3.bias"), "{err}");
}

#[test]
fn wrong_shape_names_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.safetensors");
    let mut tensors = state_dict(&imported(), "");
    let gamma = tensors.iter_mut().find(|(name, _, _)| name == "main.7.weight").unwrap();
    gamma.1 = vec![4, 2];

    write_safetensors(&path, &tensors);
    let err = read_pytorch_generator(&path).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("main.7.weight"), "{message}");
    assert!(message.contains("[8]") && message.contains("[4, 2]"), "{message}");
}

#[test]
fn unrelated_safetensors_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    write_safetensors(&path, &[("encoder.weight".to_string(), vec![2, 2], vec![1.0; 4])]);
    let err = read_pytorch_generator(&path).unwrap_err();
    assert!(matches!(err, ExportError::NoGenerator { .. }), "{err}");
    assert!(err.to_string().contains("main.0.weight"), "{err}");
}

/// Truncated, empty and random-byte files: an error naming the file, no panic.
#[test]
fn damaged_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pth = std::fs::read(golden("netG.pth")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.pth", Vec::new()),
        ("head.pth", pth[..100].to_vec()),
        ("half.pth", pth[..pth.len() / 2].to_vec()),
        ("tail-cut.pth", pth[..pth.len() - 10].to_vec()),
        ("random.safetensors", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
    ];
    let mut corrupted = pth.clone();
    let middle = corrupted.len() / 3;
    corrupted[middle..middle + 64].fill(0xAB);
    cases.push(("corrupted.pth", corrupted));

    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let message = match read_pytorch_generator(&path) {
            Err(err) => err.to_string(),
            // A corruption of padding bytes or unused storage may go unnoticed.
            Ok(_) if name == "corrupted.pth" => continue,
            Ok(_) => panic!("{name} was accepted"),
        };
        assert!(message.contains(name), "{name}: the error does not name the file: {message}");
    }
}

/// The virtual environment's Python with onnx and onnxruntime, which
/// `scripts/test.sh` creates. Outside CI a missing one skips the check.
fn python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("DCGAN_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))),
    ];
    let found = candidates.into_iter().flatten().find(|path| path.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "no Python with onnxruntime: run scripts/test.sh to create .venv");
        eprintln!("skipping the onnxruntime check: run scripts/test.sh to create .venv");
    }
    found
}

/// The f32 ONNX and the all-int8 QDQ ONNX of the imported generator pass
/// onnx.checker, and onnxruntime reproduces PyTorch's images (f32 within
/// 1e-4, QDQ within the int8 error).
#[test]
fn pth_exports_match_pytorch_in_onnxruntime() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let weights = imported();
    let f32_path = dir.path().join("netG.onnx");
    write_onnx(&weights, &[], &f32_path).unwrap();
    let folded = dcgan_runtime::quantized::fold_batch_norm(&weights).unwrap();
    let qdq_path = dir.path().join("netG_qdq.onnx");
    dcgan_export::write_qdq_onnx(&folded.quantize(|_| true), &[], &qdq_path).unwrap();

    let inputs = dir.path().join("inputs.json");
    let input_json = serde_json::json!({ "z": read_f32("latents.f32"), "shape": [3, 100, 1, 1] });
    std::fs::write(&inputs, input_json.to_string()).unwrap();
    let expected = dir.path().join("expected.json");
    std::fs::write(&expected, serde_json::to_string(&read_f32("images.f32")).unwrap()).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/check_onnx.py");
    for (model, tolerance) in [(&f32_path, "1e-4"), (&qdq_path, "0.05")] {
        let output = Command::new(&python)
            .arg(script)
            .arg(model)
            .args(["--nz", "100", "--nc", "3", "--image-size", "64", "--tol", tolerance])
            .arg("--inputs")
            .arg(&inputs)
            .arg("--expected")
            .arg(&expected)
            .output()
            .expect("check_onnx.py starts");
        let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "check_onnx.py failed on {}:\n{report}", model.display());
    }
}
