//! `dcgan-edge`: generates faces from an exported generator ONNX file or
//! weight file.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dcgan_runtime::grid::{make_grid, save_png_atomic};
use dcgan_runtime::kiosk;
use embedded_graphics::prelude::Size;
use dcgan_runtime::backend::{parse_memory_size, BackendKind, Generator, LoadOptions};
use dcgan_runtime::engine::DEFAULT_MEMORY_LIMIT;
use image::RgbImage;

/// Padding between grid tiles, in pixels, as in torchvision's `make_grid`.
const GRID_PADDING: usize = 2;

#[derive(Parser)]
#[command(
    name = "dcgan-edge",
    version,
    about = "Runs an exported DCGAN generator on this device"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates faces as PNG files, and optionally a grid of all of them.
    Generate(GenerateArgs),
    /// Shows generated faces on a screen, one at a time, morphing between them.
    Kiosk(KioskArgs),
    /// Prints a model's latent length, image size, metadata and layers.
    Info {
        /// Generator ONNX file or weight file, as written by `dcgan export`.
        #[arg(long)]
        model: PathBuf,
    },
    /// Measures latency, throughput and peak memory of one model and backend.
    Bench(BenchArgs),
}

// The --memory-limit help shows "64M"; this keeps it equal to the library's default.
const _: () = assert!(DEFAULT_MEMORY_LIMIT == 64 << 20);

/// Model loading flags, shared by `generate`, `bench` and `kiosk`.
#[derive(clap::Args)]
struct BackendArgs {
    /// Backend: tract (ONNX files) or core (weight files); default: picked
    /// from the file's first bytes.
    #[arg(long)]
    backend: Option<BackendKind>,
    /// Most memory the core may use for weights and scratch, for example
    /// 64M; larger models are rejected before anything is allocated.
    #[arg(long, default_value = "64M", value_parser = parse_memory_size)]
    memory_limit: usize,
}

impl BackendArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions { backend: self.backend, memory_limit: self.memory_limit }
    }

    fn load(&self, model: &Path) -> Result<Generator> {
        Ok(Generator::load(model, &self.options())?)
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Generator ONNX file or weight file.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Timed faces, after one warm-up face.
    #[arg(long, default_value = "50")]
    iterations: NonZeroUsize,
    /// Seed of the latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Generator ONNX file or weight file, as written by `dcgan export`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Number of faces to generate (at least 1).
    #[arg(long, default_value = "64")]
    count: NonZeroUsize,
    /// Seed of the latents: face k of a seed is the same in every run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Index of the first face; files are numbered by face index.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Directory for the face_NNNNN.png files; created if missing.
    #[arg(long)]
    out: PathBuf,
    /// Also write all faces as one grid PNG to this file.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Faces per inference call; each batch size used costs one plan build.
    #[arg(long, default_value = "16")]
    batch_size: NonZeroUsize,
}

#[derive(clap::Args)]
struct KioskArgs {
    /// Generator ONNX file or weight file; while it is missing or invalid the
    /// kiosk shows an error screen and retries.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Where to draw: fb:/dev/fbN (Linux framebuffer), png:DIR (a PNG file per
    /// frame) or window (desktop window; needs the `window` feature).
    #[arg(long, default_value = "fb:/dev/fb0")]
    display: kiosk::DisplaySpec,
    /// Frame size in pixels for png: and window displays, as WIDTHxHEIGHT; a
    /// framebuffer uses its own resolution.
    #[arg(long, default_value = "800x480", value_parser = kiosk::parse_size)]
    size: Size,
    /// How long each face stays still, for example 5s or 500ms. A bare number is seconds.
    #[arg(long, default_value = "5s", value_parser = kiosk::parse_duration)]
    hold: Duration,
    /// How long the morph to the next face takes, for example 1.5s; 0s cuts.
    #[arg(long, default_value = "1.5s", value_parser = kiosk::parse_duration)]
    morph: Duration,
    /// Frames per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Seed of the latents: face k of a seed is the same in every run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many frames (default: run until Ctrl-C or q).
    #[arg(long)]
    frames: Option<u64>,
    /// Time between attempts to load a missing or invalid model.
    #[arg(long, default_value = "5s", value_parser = kiosk::parse_duration)]
    retry: Duration,
}

/// Lets a closed pipe end the process quietly, as other Unix command-line
/// tools do (`dcgan-edge info --model m.onnx | head -1`). Rust ignores
/// SIGPIPE by default, so printing to a closed pipe would panic instead.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: this resets one signal to its default action before any other
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}

fn main() -> ExitCode {
    restore_sigpipe();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = match Cli::parse().command {
        Command::Generate(args) => generate(&args),
        Command::Kiosk(args) => run_kiosk(args),
        Command::Info { model } => info(&model),
        Command::Bench(args) => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", dcgan_runtime::error_text::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Generates and saves one batch at a time, so memory stays bounded by the
/// batch size unless a grid needs every face.
fn generate(args: &GenerateArgs) -> Result<()> {
    let mut generator = args.backend.load(&args.model)?;
    let size = generator.image_size();
    let batch_size = args.batch_size.get();
    let count = args.count.get();
    if args.first.checked_add(count as u64).is_none() {
        bail!(
            "--first {} plus --count {count} overflows the 64-bit face index: choose a smaller --first",
            args.first
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create output directory {}", args.out.display()))?;

    let started = Instant::now();
    let mut grid_faces = Vec::new();
    for start in (0..count).step_by(batch_size) {
        let first = args.first + start as u64;
        let faces = generator.generate_faces(
            args.seed,
            first,
            batch_size.min(count - start),
            batch_size,
        )?;
        for (offset, face) in faces.iter().enumerate() {
            let path = args
                .out
                .join(format!("face_{:05}.png", first + offset as u64));
            save_png_atomic(&face_image(face, size)?, &path)?;
        }
        if args.grid.is_some() {
            grid_faces.extend(faces);
        }
    }
    log::info!(
        "generated and saved {count} faces in {:.2?}",
        started.elapsed()
    );
    let noun = if count == 1 { "face" } else { "faces" };
    println!("wrote {count} {noun} of {size}x{size} to {}", args.out.display());

    if let Some(grid_path) = &args.grid {
        write_grid(&grid_faces, size, grid_path)?;
    }
    Ok(())
}

fn face_image(rgb: &[u8], size: usize) -> Result<RgbImage> {
    let side = u32::try_from(size).context("image size does not fit in u32")?;
    match RgbImage::from_raw(side, side, rgb.to_vec()) {
        Some(image) => Ok(image),
        None => bail!(
            "a generated face has {} bytes, expected {} for {size}x{size} RGB",
            rgb.len(),
            3 * size * size
        ),
    }
}

/// Writes the faces as a grid of `ceil(sqrt(count))` columns.
fn write_grid(faces: &[Vec<u8>], size: usize, path: &Path) -> Result<()> {
    if faces.is_empty() {
        println!("no faces, so no grid was written");
        return Ok(());
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create grid directory {}", parent.display()))?;
    }

    let columns = ceil_sqrt(faces.len());
    let tiles: Vec<&[u8]> = faces.iter().map(Vec::as_slice).collect();
    let grid = make_grid(&tiles, size, columns, GRID_PADDING);
    save_png_atomic(&grid, path)?;
    println!(
        "wrote a {}x{} grid of {} faces to {}",
        grid.width(),
        grid.height(),
        faces.len(),
        path.display()
    );
    Ok(())
}

fn ceil_sqrt(n: usize) -> usize {
    let root = n.isqrt();
    if root * root < n {
        root + 1
    } else {
        root
    }
}

/// Runs the kiosk; PNG frames render as fast as possible, screens at --fps.
fn run_kiosk(args: KioskArgs) -> Result<()> {
    let options = kiosk::KioskOptions {
        model: args.model,
        load: args.backend.options(),
        seed: args.seed,
        hold: args.hold,
        morph: args.morph,
        fps: args.fps,
        frames: args.frames,
        retry: args.retry,
        realtime: !matches!(args.display, kiosk::DisplaySpec::Png(_)),
    };
    let control = Arc::new(kiosk::KioskControl::new());
    let on_signal = Arc::clone(&control);
    ctrlc::set_handler(move || on_signal.request_stop()).context("failed to install the Ctrl-C handler")?;
    let _keys = kiosk::TerminalKeys::start(Arc::clone(&control));

    let model = options.model.clone();
    let summary = kiosk::run_on(&args.display, args.size, options, &control).with_context(|| match &args.display {
        kiosk::DisplaySpec::Framebuffer(_) => {
            "the kiosk could not use the framebuffer: on a machine without one, use --display png:DIR or window"
                .to_string()
        }
        _ => "the kiosk stopped".to_string(),
    })?;
    println!("showed {} frames ({} error screens)", summary.frames, summary.error_frames);
    if summary.frames > 0 && summary.error_frames == summary.frames {
        bail!(
            "every frame was an error screen because {} never loaded: run `dcgan-edge info --model {}` to see why",
            model.display(),
            model.display()
        );
    }
    Ok(())
}

fn info(model: &Path) -> Result<()> {
    let info = dcgan_runtime::model_info::inspect(model)?;
    println!("model:      {}", model.display());
    println!("kind:       {} (backend {})", info.kind, info.kind.backend());
    println!("file size:  {} bytes", info.file_size);
    println!("nz:         {}", info.nz);
    println!("channels:   {}", info.channels);
    println!("image size: {0}x{0}", info.image_size);
    println!("parameters: {}", info.parameter_count);
    if info.metadata.is_empty() {
        println!("metadata:   none");
    } else {
        println!("metadata:");
        for (key, value) in &info.metadata {
            println!("  {key} = {value}");
        }
    }
    println!("layers:");
    for (index, layer) in info.layers.iter().enumerate() {
        println!(
            "  {index}: {:<28} {:>4} -> {:<4} channels  {:>3}x{:<3} -> {:>3}x{:<3}  {}",
            layer.kind,
            layer.in_channels,
            layer.out_channels,
            layer.in_size,
            layer.in_size,
            layer.out_size,
            layer.out_size,
            layer.weights
        );
    }
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<()> {
    let mut generator = args.backend.load(&args.model)?;
    let report = dcgan_runtime::bench::run(&mut generator, args.iterations.get(), args.seed)?;
    println!("model:      {}", args.model.display());
    println!("backend:    {}", generator.backend());
    println!("iterations: {} faces of {1}x{1}, batch 1", report.iterations, generator.image_size());
    println!("latency:    p50 {:.3} ms, p99 {:.3} ms", millis(report.p50), millis(report.p99));
    println!("throughput: {:.1} faces/s", report.faces_per_second);
    match report.peak_resident_bytes {
        Some(bytes) => println!("peak RSS:   {:.1} MiB", bytes as f64 / f64::from(1 << 20)),
        None => println!("peak RSS:   not reported by this system"),
    }
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
