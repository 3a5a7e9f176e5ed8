//! The `dcgan-edge` binary, run as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{weights, write_model, SMALL};

fn dcgan_edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan-edge"))
        .args(args)
        .output()
        .expect("dcgan-edge starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn generate_writes_faces_and_grid() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));
    let out = dir.path().join("faces");
    let grid = dir.path().join("grids/grid.png");

    let output = dcgan_edge(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--count",
        "10",
        "--seed",
        "7",
        "--batch-size",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--grid",
        grid.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));

    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("face_{i:05}.png")).collect();
    assert_eq!(names, expected);

    let face = image::open(out.join("face_00003.png")).unwrap().to_rgb8();
    assert_eq!(face.dimensions(), (16, 16));

    // ceil(sqrt(10)) = 4 columns and 3 rows of 16 px tiles with 2 px padding.
    let grid_image = image::open(&grid).unwrap().to_rgb8();
    assert_eq!(grid_image.dimensions(), (4 * 18 + 2, 3 * 18 + 2));
    assert_eq!(
        grid_image.get_pixel(2 + 18 * 3, 2).0,
        face.get_pixel(0, 0).0
    );

    let printed = stdout(&output);
    assert!(printed.contains(out.to_str().unwrap()), "{printed}");
    assert!(printed.contains(grid.to_str().unwrap()), "{printed}");
}

#[test]
fn generate_is_reproducible_across_batch_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));

    let run = |name: &str, batch_size: &str| {
        let out = dir.path().join(name);
        let args = [
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--count",
            "6",
            "--seed",
            "42",
        ];
        let output = dcgan_edge(
            &[
                &args[..],
                &["--batch-size", batch_size, "--out", out.to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(output.status.success(), "stderr: {}", stderr(&output));
        std::fs::read(out.join("face_00005.png")).unwrap()
    };
    assert_eq!(run("a", "1"), run("b", "6"));
}

#[test]
fn info_prints_shape_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));

    let output = dcgan_edge(&["info", "--model", model.to_str().unwrap()]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));

    let printed = stdout(&output);
    assert!(printed.contains("nz:         8"), "{printed}");
    assert!(printed.contains("image size: 16x16"), "{printed}");
    assert!(printed.contains("trained_from = synthetic"), "{printed}");
}

/// Output into a pipe that is already closed ends the process without a
/// panic message, as `dcgan-edge info ... | head -1` would.
#[cfg(unix)]
#[test]
fn closed_pipe_ends_quietly() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcgan-edge"))
        .args(["info", "--model", model.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dcgan-edge starts");
    drop(child.stdout.take());

    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    assert!(!message.contains("failed printing"), "{message}");
}

#[test]
fn missing_model_fails_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.onnx");
    let out = dir.path().join("faces");

    let output = dcgan_edge(&[
        "generate",
        "--model",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("nope.onnx"), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn zero_count_is_a_usage_error() {
    let output = dcgan_edge(&["generate", "--model", "m.onnx", "--out", "faces", "--count", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--count"), "{}", stderr(&output));
}

#[test]
fn directory_as_model_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().to_str().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dcgan-edge"))
        .args(["info", "--model", model])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(!message.contains("backtrace"), "{message}");
    assert_eq!(message.matches(model).count(), 1, "{message}");
}

#[test]
fn zero_batch_size_is_a_usage_error() {
    let output = dcgan_edge(&[
        "generate",
        "--model",
        "m.onnx",
        "--out",
        "faces",
        "--batch-size",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--batch-size"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn first_offsets_face_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));
    let all = dir.path().join("all");
    let tail = dir.path().join("tail");
    let model = model.to_str().unwrap();

    let output = dcgan_edge(&[
        "generate",
        "--model",
        model,
        "--count",
        "5",
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let args = [
        "generate",
        "--model",
        model,
        "--first",
        "3",
        "--count",
        "2",
        "--out",
        tail.to_str().unwrap(),
    ];
    let output = dcgan_edge(&args);
    assert!(output.status.success(), "stderr: {}", stderr(&output));

    let mut names: Vec<String> = std::fs::read_dir(&tail)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["face_00003.png", "face_00004.png"]);
    for name in names {
        assert_eq!(
            std::fs::read(tail.join(&name)).unwrap(),
            std::fs::read(all.join(&name)).unwrap(),
            "{name}"
        );
    }
}
