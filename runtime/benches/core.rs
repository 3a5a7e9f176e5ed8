//! Generator core benchmark: one tutorial-size face (batch 1) from the f32
//! core, the int8 core and tract, each on one thread.
//!
//! ```sh
//! cargo bench -p dcgan-runtime --bench core                        # 200 timed runs per backend
//! cargo bench -p dcgan-runtime --bench core -- --runs 50 --onnx target/core-bench.onnx
//! .venv/bin/python runtime/benches/core_onnxruntime.py target/core-bench.onnx
//! ```
//!
//! `--onnx PATH` keeps the tutorial-size ONNX (random weights of seed 1), so
//! `core_onnxruntime.py` can time onnxruntime on the same model. Without
//! `--bench` (as `cargo test --all-targets` runs it) it times a few runs of
//! a tiny generator, as a smoke test.
//!
//! Each backend runs 10 warm-up faces, then the timed runs. The report gives
//! the median and the 10th and 90th percentiles, because the median is the
//! figure least moved by other load on a shared machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dcgan_runtime::engine::{Engine, EngineConfig, PixelFormat};
use dcgan_runtime::latent::fill_latent;
use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm, CALIBRATION_SEED};
use dcgan_runtime::{GeneratorSpec, TractGenerator};

/// The tutorial's generator: nz 100, ngf 64, 64x64 RGB.
const TUTORIAL: GeneratorSpec = GeneratorSpec { nz: 100, ngf: 64, nc: 3, image_size: 64 };

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|arg| arg == "--bench");
    let runs = flag(&args, "--runs").and_then(|value| value.parse().ok()).unwrap_or(if bench { 200 } else { 3 });
    let spec = if bench { TUTORIAL } else { common::SMALL };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let onnx = flag(&args, "--onnx").map(PathBuf::from).unwrap_or_else(|| dir.path().join("generator.onnx"));

    // Stage 1: one set of weights for every backend.
    let weights = common::weights(spec, 1);
    let folded = fold_batch_norm(&weights).expect("random weights fold");
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, CALIBRATION_SEED, 4).expect("calibration runs");
    let model = common::write_model(onnx.parent().expect("a folder"), &file_name(&onnx), &weights);

    // Stage 2: time each backend.
    println!("## Generator core, {spec:?}, batch 1, one thread, {runs} runs\n");
    println!("| backend | median | p10 | p90 |\n| --- | --- | --- | --- |");
    for (name, generator) in [("core f32", &folded), ("core int8", &int8)] {
        let engine = Engine::new(generator, &EngineConfig::default()).expect("engine builds");
        let mut scratch = vec![0.0; engine.scratch_len()];
        let mut pixels = vec![0u8; engine.pixel_len(PixelFormat::Rgb888)];
        let mut index = 0;
        report(
            name,
            time(runs, || {
                index += 1;
                engine.generate_face(1, index, &mut scratch, PixelFormat::Rgb888, &mut pixels).expect("face");
                black_box(&pixels);
            }),
        );
    }

    let mut tract = TractGenerator::load(&model).expect("tract loads the model");
    let mut latent = vec![0.0; spec.nz];
    let mut rgb = vec![0u8; 3 * spec.image_size * spec.image_size];
    let mut index = 0;
    report(
        "tract",
        time(runs, || {
            index += 1;
            fill_latent(1, index, &mut latent);
            tract.generate_face_into(&latent, &mut rgb).expect("face");
            black_box(&rgb);
        }),
    );
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|arg| arg == name)?;
    args.get(at + 1).map(String::as_str)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

/// Runs `work` 10 times untimed, then `runs` times, and returns the sorted times.
fn time(runs: usize, mut work: impl FnMut()) -> Vec<Duration> {
    for _ in 0..10 {
        work();
    }
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, sorted: Vec<Duration>) {
    let at = |fraction: f64| sorted[((sorted.len() - 1) as f64 * fraction).round() as usize].as_secs_f64() * 1e3;
    println!("| {name} | {:.3} ms | {:.3} ms | {:.3} ms |", at(0.5), at(0.1), at(0.9));
}
