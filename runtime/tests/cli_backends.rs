//! `dcgan-edge` on weight files (the core backend) next to ONNX files (tract):
//! backend choice, `info`, `bench` and their errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{weights, write_model, SMALL};
use dcgan_runtime::quantized::fold_batch_norm;
use dcgan_runtime::weight_file;

fn dcgan_edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan-edge")).args(args).output().expect("dcgan-edge starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes the int8 weight file of the small test generator (first layer f32).
fn write_weight_file(dir: &Path, seed: u64) -> PathBuf {
    let folded = fold_batch_norm(&weights(SMALL, seed)).unwrap();
    let path = dir.join("generator.dcgw");
    std::fs::write(&path, weight_file::write(&folded.quantize(|index| index != 0)).unwrap()).unwrap();
    path
}

#[test]
fn weight_file_generates_with_core() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_weight_file(dir.path(), 3);
    let out = dir.path().join("faces");

    let output =
        dcgan_edge(&["generate", "--model", model.to_str().unwrap(), "--count", "3", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));

    let forced = dir.path().join("forced");
    let args = ["generate", "--model", model.to_str().unwrap(), "--count", "3", "--backend", "core"];
    let output = dcgan_edge(&[&args[..], &["--out", forced.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    for index in 0..3 {
        let name = format!("face_{index:05}.png");
        let first = std::fs::read(out.join(&name)).unwrap();
        let second = std::fs::read(forced.join(&name)).unwrap();
        assert_eq!(first, second, "{name} differs between detected and forced core backend");
    }
}

#[test]
fn kiosk_runs_weight_file_on_core() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_weight_file(dir.path(), 5);
    let frames = dir.path().join("frames");
    let display = format!("png:{}", frames.display());

    let args = ["kiosk", "--model", model.to_str().unwrap(), "--backend", "core", "--display", &display];
    let output = dcgan_edge(&[&args[..], &["--size", "64x48", "--frames", "3", "--memory-limit", "8M"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("showed 3 frames (0 error screens)"), "{}", stdout(&output));
    assert_eq!(std::fs::read_dir(&frames).unwrap().count(), 3);
}

#[test]
fn kiosk_fails_when_model_never_loads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("missing.dcgw");
    let display = format!("png:{}", dir.path().join("frames").display());

    let output = dcgan_edge(&["kiosk", "--model", model.to_str().unwrap(), "--display", &display, "--frames", "2"]);
    assert!(!output.status.success());
    assert!(stdout(&output).contains("showed 2 frames (2 error screens)"), "{}", stdout(&output));
    assert!(stderr(&output).contains("never loaded"), "{}", stderr(&output));
}

#[test]
fn wrong_backend_names_file_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_weight_file(dir.path(), 1);
    let out = dir.path().join("faces");
    let args = ["generate", "--model", model.to_str().unwrap(), "--backend", "tract", "--out", out.to_str().unwrap()];

    let output = dcgan_edge(&args);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("generator.dcgw"), "{message}");
    assert!(message.contains("the tract backend reads ONNX files"), "{message}");
    assert!(!out.exists(), "no output directory after a failed load");
}

#[test]
fn memory_limit_rejects_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_weight_file(dir.path(), 1);
    let out = dir.path().join("faces");
    let args = ["generate", "--model", model.to_str().unwrap(), "--memory-limit", "1K", "--out", out.to_str().unwrap()];

    let output = dcgan_edge(&args);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("limit of 1024 bytes"), "{message}");
    assert!(message.contains("raise the memory limit"), "{message}");

    let output = dcgan_edge(&["generate", "--model", model.to_str().unwrap(), "--memory-limit", "lots", "--out", "x"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("invalid memory size \"lots\""), "{}", stderr(&output));
}

#[test]
fn unknown_file_kind_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("notes.txt");
    std::fs::write(&model, "not a model").unwrap();

    let output = dcgan_edge(&["info", "--model", model.to_str().unwrap()]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("neither an ONNX model nor a dcgan-edge weight file"), "{message}");
}

#[test]
fn info_lists_layers_of_both_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let weight_path = write_weight_file(dir.path(), 2);
    let onnx_path = write_model(dir.path(), "generator.onnx", &weights(SMALL, 2));

    let output = dcgan_edge(&["info", "--model", weight_path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(printed.contains("dcgan-edge weight file (backend core)"), "{printed}");
    assert!(printed.contains("int8"), "{printed}");
    assert!(printed.contains("ConvTranspose2d+Tanh"), "{printed}");

    let output = dcgan_edge(&["info", "--model", onnx_path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(printed.contains("ONNX model (backend tract)"), "{printed}");
    assert!(printed.contains("ConvTranspose2d+BN+ReLU"), "{printed}");
    assert!(printed.contains("ConvTranspose2d+Tanh"), "{printed}");
    assert!(printed.contains("file size:"), "{printed}");
    assert!(printed.lines().any(|line| line.starts_with("parameters: ")), "{printed}");
}

#[test]
fn bench_reports_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let weight_path = write_weight_file(dir.path(), 4);
    let onnx_path = write_model(dir.path(), "generator.onnx", &weights(SMALL, 4));

    for (model, backend) in [(&weight_path, "core"), (&onnx_path, "tract")] {
        let output = dcgan_edge(&["bench", "--model", model.to_str().unwrap(), "--iterations", "5"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let printed = stdout(&output);
        assert!(printed.contains(&format!("backend:    {backend}")), "{printed}");
        assert!(printed.contains("p50"), "{printed}");
        assert!(printed.contains("p99"), "{printed}");
        assert!(printed.contains("faces/s"), "{printed}");
        assert!(printed.contains("peak RSS:   "), "{printed}");
    }
}
