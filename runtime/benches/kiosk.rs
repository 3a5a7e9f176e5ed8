//! Kiosk benchmark: frame rate and the time to generate plus draw one frame
//! with a tutorial-size generator, then a soak run that renders many frames
//! with a tiny generator and records resident memory along the way.
//!
//! ```sh
//! cargo bench -p dcgan-runtime --bench kiosk                       # 300 timed frames, 100,000 soak frames
//! cargo bench -p dcgan-runtime --bench kiosk -- --soak-frames 1000 # a shorter soak
//! ```
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it renders a few
//! frames with the tiny generator only, as a smoke test.
//!
//! Both parts draw into an in-memory XRGB8888 or RGB565 framebuffer and copy
//! each frame to a second buffer, as a real framebuffer would be written.
//! Every frame is a morph step, so every frame runs the generator.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use dcgan_runtime::kiosk::{FramebufferGeometry, Kiosk, KioskControl, KioskOptions, KioskSummary, MemoryFramebuffer};
use dcgan_runtime::latent::fill_latent;
use dcgan_runtime::{GeneratorSpec, TractGenerator};
use embedded_graphics::prelude::Size;

/// The tutorial's generator: nz 100, ngf 64, 64x64 RGB.
const TUTORIAL: GeneratorSpec = GeneratorSpec { nz: 100, ngf: 64, nc: 3, image_size: 64 };

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|arg| arg == "--bench");
    let soak_frames = flag_value(&args, "--soak-frames").unwrap_or(if bench { 100_000 } else { 50 });
    let dir = tempfile::tempdir().expect("a temporary folder");

    if bench {
        let model = common::write_model(dir.path(), "tutorial.onnx", &common::weights(TUTORIAL, 1));
        println!("## Frame time, tutorial-size generator (random weights)\n");
        time_frames(&model, FramebufferGeometry::xrgb8888(800, 480, 3200), 300);
        time_frames(&model, FramebufferGeometry::rgb565(1920, 1080, 3840), 100);
    }

    let tiny = common::write_model(dir.path(), "tiny.onnx", &common::weights(common::SMALL, 1));
    println!("\n## Soak, tiny generator (nz 8, ngf 4, 16x16), 320x240 RGB565\n");
    soak(&tiny, soak_frames);
}

fn flag_value(args: &[String], flag: &str) -> Option<u64> {
    let at = args.iter().position(|arg| arg == flag)?;
    let value = args.get(at + 1)?;
    match value.parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{flag} needs a whole number, got {value:?}"),
    }
}

/// Options under which every frame is a new morph step.
fn every_frame_generates(model: &Path) -> KioskOptions {
    KioskOptions {
        hold: Duration::ZERO,
        morph: Duration::from_secs(1),
        fps: 30.0,
        realtime: false,
        ..KioskOptions::new(model)
    }
}

/// Times `frames` kiosk frames on a memory framebuffer, and the generator
/// alone, after a warm-up.
fn time_frames(model: &Path, geometry: FramebufferGeometry, frames: usize) {
    let size = Size::new(geometry.width, geometry.height);
    let mut display = MemoryFramebuffer::new(geometry).expect("a valid geometry");
    let control = KioskControl::new();
    let mut kiosk = Kiosk::new(every_frame_generates(model), size).expect("valid options");
    for _ in 0..10 {
        kiosk.step(&mut display, &control).expect("a frame");
    }

    let mut times = Vec::with_capacity(frames);
    let started = Instant::now();
    for _ in 0..frames {
        let frame_started = Instant::now();
        kiosk.step(&mut display, &control).expect("a frame");
        times.push(frame_started.elapsed());
    }
    let total = started.elapsed();
    let generate = time_generator(model, frames);

    times.sort_unstable();
    println!(
        "{}x{} at {} bits per pixel: {frames} frames, {:.1} frames/s; generate + draw + copy per frame: median {:.2} ms, \
         p95 {:.2} ms; generator alone: median {:.2} ms",
        geometry.width,
        geometry.height,
        geometry.bits_per_pixel,
        frames as f64 / total.as_secs_f64(),
        millis(times[frames / 2]),
        millis(times[frames * 95 / 100]),
        millis(generate),
    );
}

/// Median time of one batch-1 generator run into an RGB888 buffer.
fn time_generator(model: &Path, runs: usize) -> Duration {
    let mut generator = TractGenerator::load(model).expect("the model loads");
    let mut latent = vec![0.0; generator.nz()];
    let mut rgb = vec![0; 3 * generator.image_size() * generator.image_size()];
    let mut times: Vec<Duration> = (0..runs + 5)
        .map(|index| {
            fill_latent(0, index as u64, &mut latent);
            let started = Instant::now();
            generator.generate_face_into(&latent, &mut rgb).expect("a face");
            started.elapsed()
        })
        .skip(5)
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Renders `frames` frames and prints resident memory after a warm-up, at
/// every tenth of the run and at the end.
fn soak(model: &Path, frames: u64) {
    let geometry = FramebufferGeometry::rgb565(320, 240, 640);
    let mut display = MemoryFramebuffer::new(geometry).expect("a valid geometry");
    let control = KioskControl::new();
    let options = KioskOptions { frames: None, ..every_frame_generates(model) };
    let mut kiosk = Kiosk::new(options, Size::new(320, 240)).expect("valid options");

    let warm_up = (frames / 100).clamp(1, 1000);
    for _ in 0..warm_up {
        kiosk.step(&mut display, &control).expect("a frame");
    }
    let start_kib = resident_kib();
    println!("after {warm_up} warm-up frames: resident {start_kib} KiB");

    let report_every = (frames / 10).max(1);
    let started = Instant::now();
    for frame in 1..=frames {
        kiosk.step(&mut display, &control).expect("a frame");
        if frame % report_every == 0 {
            println!("frame {frame}: resident {} KiB", resident_kib());
        }
    }
    let elapsed = started.elapsed();
    let end_kib = resident_kib();

    let KioskSummary { error_frames, .. } = kiosk.summary().clone();
    assert_eq!(error_frames, 0, "the soak shows faces only");
    assert_eq!(display.frames(), warm_up + frames);
    println!(
        "{frames} frames in {:.1} s ({:.0} frames/s); resident memory {start_kib} KiB at start, {end_kib} KiB at end \
         ({:+} KiB)",
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64(),
        end_kib as i64 - start_kib as i64
    );
}

/// `VmRSS` of this process in KiB, from `/proc/self/status`; 0 where that
/// file does not exist (not Linux).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
