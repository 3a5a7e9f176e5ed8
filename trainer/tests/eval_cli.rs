//! `dcgan eval` end to end with the stand-in Inception network.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use dcgan_trainer::eval::POOL_FEATURES;

use common::stand_in::write_stand_in;

fn dcgan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan")).args(args).output().expect("dcgan runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn copy_faces(dir: &Path, count: usize) {
    let mut faces: Vec<_> =
        std::fs::read_dir(common::faces_dir()).unwrap().map(|entry| entry.unwrap().path()).collect();
    faces.retain(|path| path.extension().is_some_and(|ext| ext == "jpg"));
    faces.sort();
    std::fs::create_dir_all(dir).unwrap();
    for face in faces.iter().take(count) {
        std::fs::copy(face, dir.join(face.file_name().unwrap())).unwrap();
    }
}

#[test]
fn eval_prints_table_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let inception = dir.path().join("inception.onnx");
    write_stand_in(&inception, POOL_FEATURES, 299);
    let real = dir.path().join("real");
    copy_faces(&real, 6);
    let json = dir.path().join("scores.json");

    let output = dcgan(&[
        "eval",
        "--real",
        real.to_str().unwrap(),
        "--fake",
        real.to_str().unwrap(),
        "--inception",
        inception.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--batch-size",
        "4",
        "--kid-subsets",
        "3",
        "--kid-subset-size",
        "5",
        "--is-splits",
        "2",
    ]);
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("| FID |"), "{printed}");
    assert!(printed.contains("| SSIM | 1.0000 (6 pairs) |"), "{printed}");
    assert!(printed.contains("warning:"), "{printed}");
    assert!(printed.contains("6 images"), "{printed}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["fid"].as_f64().unwrap().abs() < 1e-6, "{report}");
    assert_eq!(report["kid"]["subsets"], 3);
    assert_eq!(report["paired"]["pairs"], 6);
    assert_eq!(report["real"]["images"], 6);
}

#[test]
fn eval_rejects_unfit_network() {
    let dir = tempfile::tempdir().unwrap();
    let inception = dir.path().join("small.onnx");
    write_stand_in(&inception, 64, 299);
    let real = dir.path().join("real");
    copy_faces(&real, 2);

    let output = dcgan(&[
        "eval",
        "--real",
        real.to_str().unwrap(),
        "--fake",
        real.to_str().unwrap(),
        "--inception",
        inception.to_str().unwrap(),
    ]);
    let printed = text(&output);
    assert!(!output.status.success());
    assert!(printed.contains("small.onnx") && printed.contains("[N, 2048]"), "{printed}");
}

#[test]
fn eval_needs_fake_or_model() {
    let output = dcgan(&["eval", "--real", "a", "--inception", "b.onnx"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--fake"), "{}", text(&output));

    let output = dcgan(&["eval", "--real", "a", "--inception", "b.onnx", "--model", "g.onnx"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--count"), "{}", text(&output));
}

#[test]
fn eval_without_inception_compares_pairs_only() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    copy_faces(&real, 3);
    let json = dir.path().join("pairs.json");

    let output = dcgan(&["eval", "--real", real.to_str().unwrap(), "--fake", real.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("| SSIM | 1.0000 (3 pairs) |"), "{printed}");
    assert!(printed.contains("need --inception"), "{printed}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["pairs"], 3);

    let output = dcgan(&["eval", "--real", real.to_str().unwrap(), "--model", "g.onnx", "--count", "4"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--model needs --inception FILE"), "{}", text(&output));
}
