//! The kiosk with a real (small) generator: headless PNG frames against
//! `dcgan-edge generate`, morphs, skips, and recovery from a missing model.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{weights, write_model, SMALL};
use dcgan_runtime::kiosk::scale::BilinearScaler;
use dcgan_runtime::kiosk::timeline::Scene;
use dcgan_runtime::kiosk::{
    Frame, FramebufferGeometry, Kiosk, KioskControl, KioskOptions, Layout, MemoryFramebuffer, PngFrames,
};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::Size;
use image::RgbImage;

/// Red of the error screen's background.
const ERROR_BACKGROUND: Rgb888 = Rgb888::new(96, 0, 0);

fn dcgan_edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan-edge")).args(args).output().expect("dcgan-edge starts")
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_png(path: &Path) -> RgbImage {
    image::open(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display())).to_rgb8()
}

/// Returns the face square of a frame as RGB888 bytes.
fn crop_face(frame: &RgbImage, layout: &Layout) -> Vec<u8> {
    let face = layout.face;
    let mut bytes = Vec::new();
    for y in 0..face.size.height {
        for x in 0..face.size.width {
            let pixel = frame.get_pixel(face.top_left.x as u32 + x, face.top_left.y as u32 + y);
            bytes.extend(pixel.0);
        }
    }
    bytes
}

fn options(model: &Path) -> KioskOptions {
    KioskOptions {
        hold: Duration::from_millis(200),
        morph: Duration::from_millis(300),
        fps: 10.0,
        retry: Duration::from_millis(100),
        realtime: false,
        ..KioskOptions::new(model)
    }
}

fn memory_display(width: u32, height: u32) -> MemoryFramebuffer {
    MemoryFramebuffer::new(FramebufferGeometry::xrgb8888(width, height, 4 * width + 12)).unwrap()
}

/// Fraction of on-screen pixels of the presented frame that are `color`.
fn share_of(display: &MemoryFramebuffer, color: Rgb888) -> f64 {
    let geometry = *display.geometry();
    let value = geometry.pack(color).to_le_bytes();
    let mut matching = 0usize;
    for line in display.device().chunks_exact(geometry.line_length as usize) {
        let pixels = &line[..4 * geometry.width as usize];
        matching += pixels.chunks_exact(4).filter(|pixel| **pixel == value).count();
    }
    matching as f64 / f64::from(geometry.width * geometry.height)
}

#[test]
fn headless_first_frame_matches_generate() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 3));
    let model_arg = model.to_str().unwrap();
    let faces = dir.path().join("faces");
    let frames = dir.path().join("frames");

    let generated = dcgan_edge(&[
        "generate",
        "--model",
        model_arg,
        "--count",
        "1",
        "--seed",
        "7",
        "--batch-size",
        "1",
        "--out",
        faces.to_str().unwrap(),
    ]);
    assert_success(&generated);
    let kiosk = dcgan_edge(&[
        "kiosk",
        "--model",
        model_arg,
        "--display",
        &format!("png:{}", frames.display()),
        "--size",
        "120x90",
        "--seed",
        "7",
        "--hold",
        "1s",
        "--morph",
        "1s",
        "--fps",
        "10",
        "--frames",
        "3",
    ]);
    assert_success(&kiosk);

    let names: Vec<String> =
        std::fs::read_dir(&frames).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");

    let layout = Layout::new(Size::new(120, 90));
    let first = read_png(&PngFrames::frame_path(&frames, 0));
    assert_eq!(first.dimensions(), (120, 90));
    let face = read_png(&faces.join("face_00000.png"));
    let expected = BilinearScaler::new(SMALL.image_size, layout.face.size.width as usize).scale(face.as_raw());
    assert_eq!(crop_face(&first, &layout), expected);

    // The face is held for 10 frames, so the next frames repeat it.
    assert_eq!(read_png(&PngFrames::frame_path(&frames, 2)), first);
    // The caption strip has white text on black.
    let caption = layout.caption;
    let caption_pixels: Vec<[u8; 3]> = (caption.top_left.y as u32..90)
        .flat_map(|y| (0..120).map(move |x| (x, y)))
        .map(|(x, y)| first.get_pixel(x, y).0)
        .collect();
    assert!(caption_pixels.contains(&[255, 255, 255]));
    assert!(caption_pixels.contains(&[0, 0, 0]));
}

#[test]
fn morph_frames_move_between_faces() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 5));
    let mut display = memory_display(64, 64);
    let control = KioskControl::new();
    // hold 2 frames, morph 3 frames at 10 fps.
    let mut kiosk = Kiosk::new(options(&model), Size::new(64, 64)).unwrap();

    let mut frames = Vec::new();
    let mut scenes = Vec::new();
    for _ in 0..6 {
        let Frame::Face(scene) = kiosk.step(&mut display, &control).unwrap() else {
            panic!("the model loads, so every frame shows a face");
        };
        scenes.push(scene);
        frames.push(display.device().to_vec());
    }

    assert_eq!(scenes[0], Scene::Hold { face: 0 });
    assert_eq!(scenes[2], Scene::Morph { from: 0, step: 0, steps: 3 });
    assert_eq!(scenes[5], Scene::Hold { face: 1 });
    assert_eq!(frames[0], frames[1]);
    for step in 2..6 {
        assert_ne!(frames[step], frames[step - 1], "frame {step} repeats the previous one");
    }
}

#[test]
fn skip_starts_next_face() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 5));
    let mut display = memory_display(32, 32);
    let control = KioskControl::new();
    let mut kiosk = Kiosk::new(options(&model), Size::new(32, 32)).unwrap();

    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Face(Scene::Hold { face: 0 }));
    control.request_skip();
    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Face(Scene::Morph { from: 0, step: 0, steps: 3 }));
    control.request_skip();
    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Face(Scene::Hold { face: 1 }));
}

/// Steps the kiosk until it shows a face, for at most five seconds.
fn step_until_face(kiosk: &mut Kiosk, display: &mut MemoryFramebuffer, control: &KioskControl) -> Frame {
    let started = Instant::now();
    loop {
        let frame = kiosk.step(display, control).unwrap();
        if frame != Frame::Error || started.elapsed() > Duration::from_secs(5) {
            return frame;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn error_screen_then_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("generator.onnx");
    let mut display = memory_display(160, 120);
    let control = KioskControl::new();
    let options = KioskOptions { retry: Duration::from_millis(300), ..options(&model) };
    let mut kiosk = Kiosk::new(options, Size::new(160, 120)).unwrap();

    // Missing file: the error screen.
    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Error);
    assert!(share_of(&display, ERROR_BACKGROUND) > 0.5, "the error screen is mostly dark red");
    assert!(share_of(&display, Rgb888::new(255, 255, 255)) > 0.01, "the error screen has text");
    assert_eq!(kiosk.summary().load_failures, 1);

    // An invalid file is still an error; retries wait for --retry.
    std::fs::write(&model, b"not an onnx model").unwrap();
    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Error);
    assert_eq!(kiosk.summary().load_failures, 1, "no retry before 300 ms");
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(kiosk.step(&mut display, &control).unwrap(), Frame::Error);
    assert_eq!(kiosk.summary().load_failures, 2);

    // A valid model appears: the kiosk recovers without a restart.
    let written = write_model(dir.path(), "staged.onnx", &weights(SMALL, 2));
    std::fs::rename(written, &model).unwrap();
    let frame = step_until_face(&mut kiosk, &mut display, &control);
    assert_eq!(frame, Frame::Face(Scene::Hold { face: 0 }));
    assert_eq!(kiosk.summary().loads, 1);
    assert!(share_of(&display, ERROR_BACKGROUND) < 0.01, "the face replaced the error screen");
}

#[test]
fn cli_shows_error_frames_for_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    let missing = dir.path().join("missing.onnx");

    let output = dcgan_edge(&[
        "kiosk",
        "--model",
        missing.to_str().unwrap(),
        "--display",
        &format!("png:{}", frames.display()),
        "--size",
        "160x120",
        "--frames",
        "2",
        "--fps",
        "20",
        "--retry",
        "50ms",
    ]);
    // Every frame was an error screen, so the run reports failure.
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.onnx"), "the error is logged: {stderr}");

    let first = read_png(&PngFrames::frame_path(&frames, 0));
    assert_eq!(first.get_pixel(0, 0).0, [96, 0, 0]);
}

#[test]
fn cli_rejects_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let png = format!("png:{}", dir.path().join("frames").display());
    for (flag, value) in [("--display", "hdmi:0"), ("--size", "800"), ("--hold", "soon"), ("--fps", "0")] {
        let mut args = vec!["kiosk", "--model", "g.onnx", flag, value];
        if flag != "--display" {
            args.extend(["--display", png.as_str()]);
        }
        let output = dcgan_edge(&args);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(value), "{flag} {value}: {stderr}");
    }
    assert!(!dir.path().join("frames").exists(), "invalid flags open no display");
}
