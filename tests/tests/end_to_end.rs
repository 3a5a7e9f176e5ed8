//! Train → export → generate, across the trainer, exporter and runtime.
//!
//! One reduced model is trained on real face photos; its exported ONNX must
//! then reproduce the trainer's eval-mode generator through tract and through
//! onnxruntime, and the command-line tools must chain the same way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use dcgan_runtime::latent::fill_latents;
use dcgan_runtime::tract::TractGenerator;
use dcgan_trainer::checkpoint::{checkpoint_path, load_checkpoint};
use dcgan_trainer::data::folder::{load_folder, LoadOptions};
use dcgan_trainer::TrainConfig;

const FACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/faces");

/// A generator small enough to train in seconds, at the tutorial's image size.
fn reduced_config() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 16,
        ngf: 16,
        ndf: 16,
        sample_every: 10,
        checkpoint_every: 10,
        log_every: 10,
        stop_after: Some(20),
        ..TrainConfig::default()
    }
}

/// Trains the reduced model once for all tests and returns its run directory.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_dir, run) = RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let run = dir.path().join("run");
        let options = LoadOptions { image_size: 64, threads: 0, strict: true, limit: Some(512) };
        let (images, _) = load_folder(Path::new(FACES), &options).expect("face photos load");

        let stop = AtomicBool::new(false);
        dcgan_trainer::train(&reduced_config(), &images, &run, FACES, &mut (), &stop).expect("training runs");
        (dir, run)
    });
    run
}

/// Runs the trainer's eval-mode generator from the run's checkpoint on the
/// latents of faces `0..count` of `seed`.
fn trainer_images(run: &Path, seed: u64, count: usize) -> (Vec<f32>, Vec<f32>) {
    let (state, _) = load_checkpoint(&checkpoint_path(run), &Device::Cpu).expect("checkpoint loads");
    let nz = state.generator.spec().nz;

    let mut latents = vec![0.0f32; count * nz];
    fill_latents(seed, 0, nz, &mut latents);
    let z = Tensor::from_vec(latents.clone(), (count, nz, 1, 1), &Device::Cpu).expect("latent tensor");
    let images = state.generator.forward_eval(&z).expect("forward pass");
    let images = images.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("image values");
    (latents, images)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn export(run: &Path, name: &str) -> PathBuf {
    let onnx = run.parent().expect("run has a parent").join(name);
    dcgan_export::export_checkpoint(run, &onnx).expect("export succeeds");
    onnx
}

#[test]
fn onnx_through_tract_matches_trainer() {
    let run = trained_run();
    let onnx = export(run, "tract.onnx");
    let (latents, expected) = trainer_images(run, 11, 8);

    let mut generator = TractGenerator::load(&onnx).expect("tract loads the export");
    assert_eq!(generator.nz(), 100);
    assert_eq!(generator.image_size(), 64);
    for batch in [1, 8] {
        let mut output = Vec::new();
        for chunk in latents.chunks(batch * 100) {
            output.extend(generator.generate(chunk, chunk.len() / 100).expect("tract runs"));
        }
        let diff = max_abs_diff(&output, &expected);
        assert!(diff <= 1e-4, "batch {batch}: max abs difference {diff} exceeds 1e-4");
    }
}

#[test]
fn trained_images_are_not_constant() {
    let (_, images) = trainer_images(trained_run(), 3, 4);
    let min = images.iter().copied().fold(f32::INFINITY, f32::min);
    let max = images.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(images.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    assert!(max - min > 0.1, "images span only [{min}, {max}]");
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

#[test]
fn onnx_passes_checker_and_onnxruntime() {
    let Some(python) = python() else { return };
    let run = trained_run();
    let onnx = export(run, "onnxruntime.onnx");
    let (latents, expected) = trainer_images(run, 5, 4);

    let dir = run.parent().expect("run has a parent");
    let inputs = dir.join("inputs.json");
    let expected_path = dir.join("expected.json");
    let input_json = serde_json::json!({ "z": latents, "shape": [4, 100, 1, 1] });
    std::fs::write(&inputs, input_json.to_string()).expect("inputs written");
    std::fs::write(&expected_path, serde_json::to_string(&expected).expect("json")).expect("expected written");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_onnx.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&onnx)
        .args(["--nz", "100", "--image-size", "64", "--tol", "1e-4"])
        .arg("--inputs")
        .arg(&inputs)
        .arg("--expected")
        .arg(&expected_path)
        .output()
        .expect("check_onnx.py starts");
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check_onnx.py failed:\n{report}");
}

/// Path of a workspace binary built next to this test executable.
fn workspace_binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe.parent().and_then(Path::parent).expect("target profile directory");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} is missing: build it with `cargo build --workspace --bins`", binary.display());
    binary
}

fn run_tool(binary: &Path, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(binary).args(args).output().expect("tool starts");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} {:?} failed:\n{text}", binary.display(), args);
    text
}

#[test]
fn command_line_chain_produces_grid() {
    let dcgan = workspace_binary("dcgan");
    let edge = workspace_binary("dcgan-edge");
    let dir = tempfile::tempdir().expect("temporary directory");
    let run = dir.path().join("run");
    let onnx = dir.path().join("generator.onnx");
    let faces = dir.path().join("faces");
    let grid = dir.path().join("grid.png");

    let train_args = [
        "train", "--data", FACES, "--out", run.to_str().unwrap(), "--batch-size", "8", "--ngf", "8", "--ndf", "8",
        "--image-size", "32", "--stop-after", "3",
    ];
    let train_args: Vec<&std::ffi::OsStr> = train_args.iter().map(std::ffi::OsStr::new).collect();
    // NOTE: the whole folder is decoded; 2,999 photos take a few seconds.
    run_tool(&dcgan, &train_args);
    assert!(checkpoint_path(&run).exists());

    run_tool(&dcgan, &["export".as_ref(), run.as_os_str(), "--onnx".as_ref(), onnx.as_os_str()]);
    run_tool(
        &edge,
        &[
            "generate".as_ref(),
            "--model".as_ref(),
            onnx.as_os_str(),
            "--count".as_ref(),
            "64".as_ref(),
            "--seed".as_ref(),
            "7".as_ref(),
            "--out".as_ref(),
            faces.as_os_str(),
            "--grid".as_ref(),
            grid.as_os_str(),
        ],
    );

    let grid_image = image::open(&grid).expect("grid is a PNG");
    // 8 columns of 32 px faces with 2 px padding around and between them.
    assert_eq!((grid_image.width(), grid_image.height()), (8 * 32 + 9 * 2, 8 * 32 + 9 * 2));
    let written = std::fs::read_dir(&faces).expect("faces folder").count();
    assert_eq!(written, 64);
}
