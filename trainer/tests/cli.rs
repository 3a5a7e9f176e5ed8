//! The `dcgan` command line: help, argument checks, and a tiny run that is
//! stopped, resumed and exported.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use dcgan_trainer::checkpoint::{checkpoint_path, read_checkpoint_info};
use dcgan_trainer::train::{read_loss_log, LOSSES_FILE};

fn dcgan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan")).args(args).output().expect("dcgan runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Creates a folder of symbolic links to the first `count` face photos.
#[cfg(unix)]
fn face_links(dir: &Path, count: usize) {
    let mut faces: Vec<_> =
        std::fs::read_dir(common::faces_dir()).unwrap().map(|entry| entry.unwrap().path()).collect();
    faces.sort();
    std::fs::create_dir_all(dir).unwrap();
    for face in faces.iter().filter(|path| path.extension().is_some_and(|ext| ext == "jpg")).take(count) {
        std::os::unix::fs::symlink(face, dir.join(face.file_name().unwrap())).unwrap();
    }
}

#[test]
fn train_help_lists_units_and_defaults() {
    let output = dcgan(&["train", "--help"]);
    assert!(output.status.success());
    let help = text(&output);
    for expected in [
        "--epochs <N>",
        "[default: 5]",
        "--batch-size <N>",
        "[default: 128]",
        "--lr <RATE>",
        "[default: 0.0002]",
        "--image-size <PIXELS>",
        "--seed <SEED>",
        "[default: 999]",
        "--sample-every <ITERATIONS>",
        "--stop-after <ITERATION>",
        "--resume <RUN_DIR>",
        "--device <DEVICE>",
        "--workers <N>",
        "--strict",
    ] {
        assert!(help.contains(expected), "help lacks {expected:?}:\n{help}");
    }
}

#[test]
fn bench_train_takes_comma_lists() {
    let help = text(&dcgan(&["bench-train", "--help"]));
    assert!(help.contains("[default: 64:64,16:16]"), "{help}");
    assert!(help.contains("[default: 32,128]"), "{help}");

    let output = dcgan(&[
        "bench-train",
        "--models",
        "4:4,2:2",
        "--batches",
        "2",
        "--warmup",
        "1",
        "--iterations",
        "1",
        "--no-pytorch",
    ]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("median of 1 step after 1 warm-up step\n"), "{report}");
    assert!(report.contains("    4:4     2 |"), "{report}");
    assert!(report.contains("    2:2     2 |"), "{report}");
    // Without PyTorch there is no ratio to explain.
    assert!(!report.contains("ratio:"), "{report}");
}

#[test]
fn resume_rejects_hyperparameters() {
    let output = dcgan(&["train", "--resume", "run", "--epochs", "3"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("cannot be used with"), "{}", text(&output));
}

#[test]
fn export_names_every_output_flag() {
    let output = dcgan(&["export", "run"]);
    assert_eq!(output.status.code(), Some(2));
    let message = text(&output);
    for flag in ["--onnx", "--int8", "--qdq-onnx"] {
        assert!(message.contains(flag), "{flag} missing from: {message}");
    }
}

#[test]
fn missing_checkpoint_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let output = dcgan(&["train", "--resume", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("checkpoint.safetensors"), "{message}");
    assert!(message.contains("start a new run with --data DIR"), "{message}");
}

// Without the `cuda` feature candle cannot open a CUDA device.
#[cfg(not(feature = "cuda"))]
#[test]
fn unavailable_device_rejected_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = dir.path().join("no-such-folder");
    let args = ["train", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cuda"];
    let output = dcgan(&args);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("cannot open device cuda:0"), "{message}");
    assert!(!message.contains("no-such-folder"), "images were loaded before the device check: {message}");
    assert!(!run.exists(), "a failed start left {}", run.display());
}

#[cfg(unix)]
#[test]
fn tiny_run_stops_resumes_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("faces");
    face_links(&data, 20);
    let run = dir.path().join("run");
    let (data_arg, run_arg) = (data.to_str().unwrap(), run.to_str().unwrap());

    let settings =
        ["--epochs", "2", "--batch-size", "8", "--nz", "8", "--ngf", "4", "--ndf", "4", "--image-size", "16"];
    let mut args = vec!["train", "--data", data_arg, "--out", run_arg, "--log-every", "1", "--stop-after", "4"];
    args.extend(settings);
    let output = dcgan(&args);
    let message = text(&output);
    assert!(output.status.success(), "{message}");
    assert!(message.contains("[0/2][0/3]\tLoss_D: "), "{message}");
    assert!(message.contains("stopped after iteration 4"), "{message}");
    assert!(message.contains("20 loaded, 0 skipped"), "{message}");
    assert_eq!(read_checkpoint_info(&checkpoint_path(&run)).unwrap().progress.iteration, 4);

    let output = dcgan(&["train", "--resume", run_arg, "--stop-after", "4"]);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("stop_after 4 is not after the checkpoint's iteration 4"), "{message}");
    assert!(!message.contains("loaded"), "images were loaded before the check: {message}");

    let mut again = vec!["train", "--data", data_arg, "--out", run_arg];
    again.extend(settings);
    let output = dcgan(&again);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("already exists"), "{message}");
    assert!(!message.contains("loaded"), "images were loaded before the check: {message}");

    let output = dcgan(&["train", "--resume", run_arg]);
    let message = text(&output);
    assert!(output.status.success(), "{message}");
    assert!(message.contains("run completed"), "{message}");
    let rows = read_loss_log(&run.join(LOSSES_FILE)).unwrap();
    assert_eq!(rows.iter().map(|row| row.iteration).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);

    let onnx = dir.path().join("generator.onnx");
    let output = dcgan(&["export", run_arg, "--onnx", onnx.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(std::fs::metadata(&onnx).unwrap().len() > 0);
}

#[test]
fn demo_rejects_changed_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let out_arg = out.to_str().unwrap();
    let tiny = ["--images", "16", "--batch-size", "8", "--ngf", "4", "--ndf", "4", "--image-size", "16"];
    let mut args = vec!["demo", "--out", out_arg, "--epochs", "1"];
    args.extend(tiny);
    let output = dcgan(&args);
    assert!(output.status.success(), "{}", text(&output));

    let mut longer = vec!["demo", "--out", out_arg, "--epochs", "2"];
    longer.extend(tiny);
    let output = dcgan(&longer);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("1 epoch at batch 8"), "{message}");
    assert!(message.contains("2 epochs at batch 8"), "{message}");
    assert!(message.contains("choose a new --out folder"), "{message}");
}
