//! `dcgan`: trains the PyTorch DCGAN tutorial's model and exports it to ONNX.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dcgan_trainer::checkpoint::{checkpoint_path, CHECKPOINT_FILE};
use dcgan_trainer::data::folder::{load_folder_with_progress, LoadOptions, LoadReport};
use dcgan_trainer::data::ImageSet;
use dcgan_trainer::demo::DemoConfig;
use dcgan_trainer::train::{IterationStats, LOSS_PLOT_FILE, ResumeOverrides, RunStart, StopReason, TrainObserver, TrainSummary};
use dcgan_trainer::TrainConfig;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

#[path = "commands/bench_train.rs"]
mod bench_train_command;
#[path = "commands/verify.rs"]
mod verify_command;
#[path = "commands/eval.rs"]
mod eval_command;

#[derive(Parser)]
#[command(
    name = "dcgan",
    version,
    about = "Train the PyTorch DCGAN tutorial's face generator with candle and export it to ONNX"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a DCGAN on a folder of images, or resume a run.
    Train(TrainArgs),
    /// Export a run's generator, or one saved by PyTorch, to ONNX, QDQ ONNX
    /// or an int8 weight file.
    Export(ExportArgs),
    /// Run the same latents through every given form of one generator and
    /// compare each with the f32 reference; exits with status 1 when a
    /// threshold is crossed.
    Verify(verify_command::VerifyArgs),
    /// Train a reduced DCGAN on built-in synthetic faces, export it and
    /// generate a grid of faces with the edge runtime; needs no download.
    Demo(DemoArgs),
    /// Time the full training step (images/s) on random 64x64 images at
    /// several batch sizes, beside PyTorch's when torch is installed.
    ///
    /// A step is one iteration of the tutorial's loop: the discriminator on a
    /// real and a fake batch with its Adam update, then the generator's
    /// update against it. Loading images is not part of it.
    BenchTrain(bench_train_command::BenchTrainArgs),
    /// Measure generated images against real ones: FID, KID and Inception
    /// Score through an Inception-v3 ONNX, and SSIM and PSNR of same-named
    /// image pairs.
    Eval(eval_command::EvalArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Folder of training images (JPEG, PNG, GIF, BMP, WebP). On --resume
    /// it defaults to the folder the run was trained on.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    data: Option<PathBuf>,

    /// Run directory for config.json, checkpoint.safetensors, losses.csv,
    /// losses.png and samples/; it must not hold a checkpoint yet.
    #[arg(long, value_name = "RUN_DIR", required_unless_present = "resume", conflicts_with = "resume")]
    out: Option<PathBuf>,

    /// Continue the run in RUN_DIR from its checkpoint, with its stored
    /// settings. Only --data, --device, --workers, --strict and --stop-after
    /// may be given with it.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,

    #[command(flatten)]
    hyper: HyperArgs,

    /// Compute device: cpu, cuda, cuda:N, metal or metal:N [default: cpu,
    /// or the run's device on --resume].
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,

    /// Threads that decode images; 0 uses all cores [default: 0, or the
    /// run's setting on --resume].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Fail on the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,

    /// Stop after this global iteration (counted from 1) and write a
    /// checkpoint; the schedule of the full run stays the same.
    #[arg(long, value_name = "ITERATION")]
    stop_after: Option<u64>,
}

/// Settings fixed at the start of a run.
#[derive(Args)]
struct HyperArgs {
    /// Passes over the data set.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().epochs, conflicts_with = "resume")]
    epochs: u64,

    /// Images per batch.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().batch_size, conflicts_with = "resume")]
    batch_size: usize,

    /// Adam learning rate of both networks.
    #[arg(long, value_name = "RATE", default_value_t = TrainConfig::default().lr, conflicts_with = "resume")]
    lr: f64,

    /// Adam's first-moment decay rate.
    #[arg(long, value_name = "BETA", default_value_t = TrainConfig::default().beta1, conflicts_with = "resume")]
    beta1: f64,

    /// Length of the latent vector.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().nz, conflicts_with = "resume")]
    nz: usize,

    /// Feature maps in the generator's last hidden layer.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().ngf, conflicts_with = "resume")]
    ngf: usize,

    /// Feature maps in the discriminator's first layer.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().ndf, conflicts_with = "resume")]
    ndf: usize,

    /// Height and width of the training images, in pixels: a power of two
    /// from 8 to 1024.
    #[arg(long, value_name = "PIXELS", default_value_t = TrainConfig::default().image_size, conflicts_with = "resume")]
    image_size: usize,

    /// Seed of the initial weights, shuffling, noise and sample latents.
    #[arg(long, value_name = "SEED", default_value_t = TrainConfig::default().seed, conflicts_with = "resume")]
    seed: u64,

    /// Batches of 64 fixed latents over which the generator's BatchNorm
    /// statistics are recomputed before each sample grid and checkpoint; 0
    /// keeps PyTorch's running averages.
    #[arg(long, value_name = "BATCHES", default_value_t = TrainConfig::default().bn_calibration_batches, conflicts_with = "resume")]
    bn_calibration_batches: usize,

    /// Iterations between sample grids; 0 writes only the final grid.
    #[arg(long, value_name = "ITERATIONS", default_value_t = TrainConfig::default().sample_every, conflicts_with = "resume")]
    sample_every: u64,

    /// Iterations between checkpoints; 0 writes only the final checkpoint.
    #[arg(long, value_name = "ITERATIONS", default_value_t = TrainConfig::default().checkpoint_every, conflicts_with = "resume")]
    checkpoint_every: u64,

    /// Batches between progress lines within an epoch; 0 turns them off.
    #[arg(long, value_name = "BATCHES", default_value_t = TrainConfig::default().log_every, conflicts_with = "resume")]
    log_every: u64,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("outputs").required(true).multiple(true).args(["onnx", "int8", "qdq_onnx"])))]
struct ExportArgs {
    /// Run directory (or its checkpoint.safetensors) to export from.
    #[arg(value_name = "RUN_DIR", required_unless_present = "from_pytorch", conflicts_with = "from_pytorch")]
    run_dir: Option<PathBuf>,

    /// Export a generator saved by PyTorch instead: a torch.save file of the
    /// tutorial's netG.state_dict() (or of a dict that contains it), or the same
    /// tensors in safetensors.
    #[arg(long, value_name = "FILE")]
    from_pytorch: Option<PathBuf>,

    /// f32 ONNX file to write. Give at least one of --onnx, --int8 and --qdq-onnx.
    #[arg(long, value_name = "FILE")]
    onnx: Option<PathBuf>,

    /// Weight file to write for the runtime core: BatchNorm folded, int8
    /// kernels with per-output-channel scales.
    #[arg(long, value_name = "FILE")]
    int8: Option<PathBuf>,

    /// QDQ ONNX file to write: the folded generator with int8 weights and
    /// DequantizeLinear nodes.
    #[arg(long, value_name = "FILE")]
    qdq_onnx: Option<PathBuf>,

    /// Layers to keep in f32 in --int8 and --qdq-onnx: none, all, first,
    /// last or indices from 0 at the latent, comma-separated.
    #[arg(long, value_name = "LAYERS", default_value = dcgan_export::DEFAULT_KEEP_F32)]
    keep_f32: String,
}

#[derive(Args)]
struct DemoArgs {
    /// Folder for every output. Running the demo again with the same settings
    /// continues the stored run; other settings need a new folder.
    #[arg(long, value_name = "DIR", default_value = "demo-run")]
    out: PathBuf,

    /// Synthetic training images to draw.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().images)]
    images: usize,

    /// Passes over the synthetic images.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().train.epochs)]
    epochs: u64,

    /// Images per batch.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().train.batch_size)]
    batch_size: usize,

    /// Feature maps in the generator's last hidden layer.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().train.ngf)]
    ngf: usize,

    /// Feature maps in the discriminator's first layer.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().train.ndf)]
    ndf: usize,

    /// Height and width of the faces, in pixels: a power of two.
    #[arg(long, value_name = "PIXELS", default_value_t = DemoConfig::default().train.image_size)]
    image_size: usize,

    /// Compute device: cpu, cuda, cuda:N, metal or metal:N.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
}

/// Asks glibc's allocator to keep freed memory in the process. A training
/// step frees and allocates the same tensor sizes every iteration. With the
/// default settings, large blocks are mapped from the kernel and handed back
/// when freed, so every step maps them again as fresh pages that fault in
/// one by one. With all blocks served from the heap and freed memory kept,
/// five steps of the tutorial's model at batch 128 take 0.24 million page
/// faults. They take 0.60 million with the largest mmap threshold glibc
/// accepts (32 MiB), and 2.1 million with its defaults (docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    /// Free memory at the top of the heap kept before trimming.
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;

    // An mmap limit of 0 serves blocks from the heap. Only a block too large
    // for a worker thread's heap is still mapped.
    // SAFETY: mallopt only changes allocator parameters, and it runs before
    // any other thread exists.
    let mmap_off = unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) } == 1;
    // SAFETY: as above.
    let applied = mmap_off && unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) } == 1;
    if !applied {
        log::debug!("glibc did not accept the allocator settings; keeping its defaults");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => run_train(args),
        Command::Export(args) => run_export(&args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify_command::run(&args),
        Command::Demo(args) => run_demo(&args),
        Command::BenchTrain(args) => bench_train_command::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => eval_command::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", dcgan_runtime::error_text::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let stop = install_interrupt_handler()?;
    let (summary, report) = match &args.resume {
        Some(run_dir) => resume_run(&args, run_dir, &stop)?,
        None => new_run(&args, &stop)?,
    };

    print_summary(&summary, report.as_ref());
    if summary.stop_reason == StopReason::Interrupted {
        // 128 + SIGINT, as shells report a run stopped by Ctrl-C.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn new_run(args: &TrainArgs, stop: &AtomicBool) -> Result<(TrainSummary, Option<LoadReport>)> {
    let config = config_from_args(args);
    config.validate().context("invalid training settings")?;
    let (Some(data_dir), Some(run_dir)) = (&args.data, &args.out) else {
        bail!("--data and --out are required to start a run");
    };
    // Settings, device and run directory are checked before the images are
    // decoded, which takes minutes on a large folder.
    dcgan_trainer::train::check_new_run(&config, run_dir)?;

    let (data, report) = load_images(data_dir, config.image_size, config.workers, config.strict)?;
    let mut observer = CliObserver::new();
    // Stored absolute, so that a resume from another directory finds it.
    let trained_from = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone()).display().to_string();
    let summary = dcgan_trainer::train(&config, &data, run_dir, &trained_from, &mut observer, stop)
        .with_context(|| format!("training into {} failed", run_dir.display()))?;
    observer.bar.finish_and_clear();
    Ok((summary, Some(report)))
}

fn resume_run(args: &TrainArgs, run_dir: &Path, stop: &AtomicBool) -> Result<(TrainSummary, Option<LoadReport>)> {
    if !run_dir.is_dir() {
        bail!("cannot resume {}: no such folder; pass the --out folder of an earlier run", run_dir.display());
    }
    if !checkpoint_path(run_dir).exists() {
        bail!(
            "cannot resume {}: it contains no {CHECKPOINT_FILE}; start a new run with --data DIR --out {} instead",
            run_dir.display(),
            run_dir.display()
        );
    }
    let overrides = ResumeOverrides { device: args.device.clone(), stop_after: args.stop_after };
    let info = dcgan_trainer::train::check_resume(run_dir, &overrides)
        .with_context(|| format!("cannot resume {}", run_dir.display()))?;
    let data_dir = match &args.data {
        Some(dir) => dir.clone(),
        None if info.trained_from == "synthetic" => {
            bail!("{} was trained on synthetic faces: pass --data DIR to resume it on a folder", run_dir.display())
        }
        None if !Path::new(&info.trained_from).is_dir() => bail!(
            "{} was trained on {}, which is not a folder from the current directory: pass --data DIR to resume it",
            run_dir.display(),
            info.trained_from
        ),
        None => PathBuf::from(&info.trained_from),
    };

    let config = &info.config;
    let workers = args.workers.unwrap_or(config.workers);
    let (data, report) = load_images(&data_dir, config.image_size, workers, args.strict || config.strict)?;
    let mut observer = CliObserver::new();
    let summary = dcgan_trainer::resume_with(run_dir, &data, &overrides, &mut observer, stop)
        .with_context(|| format!("resuming {} failed", run_dir.display()))?;
    observer.bar.finish_and_clear();
    Ok((summary, Some(report)))
}

fn config_from_args(args: &TrainArgs) -> TrainConfig {
    let hyper = &args.hyper;
    let defaults = TrainConfig::default();
    TrainConfig {
        epochs: hyper.epochs,
        batch_size: hyper.batch_size,
        lr: hyper.lr,
        beta1: hyper.beta1,
        nz: hyper.nz,
        ngf: hyper.ngf,
        ndf: hyper.ndf,
        image_size: hyper.image_size,
        seed: hyper.seed,
        bn_calibration_batches: hyper.bn_calibration_batches,
        sample_every: hyper.sample_every,
        checkpoint_every: hyper.checkpoint_every,
        log_every: hyper.log_every,
        device: args.device.clone().unwrap_or(defaults.device.clone()),
        workers: args.workers.unwrap_or(defaults.workers),
        strict: args.strict,
        stop_after: args.stop_after,
        ..defaults
    }
}

fn load_images(dir: &Path, image_size: usize, workers: usize, strict: bool) -> Result<(ImageSet, LoadReport)> {
    let options = LoadOptions { image_size, threads: workers, strict, limit: None };
    let bar = ProgressBar::new(0);
    bar.set_style(style("{spinner} loading images [{bar:30}] {pos}/{len} ({eta} left)"));
    let loaded = load_folder_with_progress(dir, &options, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    loaded.with_context(|| format!("cannot load training images from {}", dir.display()))
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file, so any run of the binary
    // catches a parse failure. The default bar is a safe fallback.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Sets a flag on the first Ctrl-C, which makes training checkpoint and
/// stop; a second Ctrl-C exits at once.
fn install_interrupt_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without a final checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt received: writing a checkpoint after this iteration (Ctrl-C again to exit now)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// Formats an integer count with its noun, as in "1 step" or "5 steps".
fn count_of(count: impl std::fmt::Display, noun: &str) -> String {
    let count = count.to_string();
    if count == "1" {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Prints log lines and drives a progress bar with images/s and ETA.
struct CliObserver {
    bar: ProgressBar,
    iteration: u64,
}

impl CliObserver {
    fn new() -> Self {
        Self { bar: ProgressBar::hidden(), iteration: 0 }
    }

    fn print(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }
}

impl TrainObserver for CliObserver {
    fn on_start(&mut self, start: &RunStart) {
        self.print(&format!(
            "training on {} images, {} iterations per epoch, device {} (netG {} parameters, netD {})",
            start.dataset_len,
            start.batches_per_epoch,
            start.device,
            start.generator_parameters,
            start.discriminator_parameters
        ));
        if start.dataset_len < start.batch_size {
            self.print(&format!(
                "warning: the batch size {} is larger than the {} training images, so every batch holds all {} of them",
                start.batch_size, start.dataset_len, start.dataset_len
            ));
        }
        let batch_size = start.batch_size.min(start.dataset_len) as f64;
        let template =
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} it, {images_per_second} images/s, ETA {eta} {msg}";
        let style = style(template).with_key(
            "images_per_second",
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.1}", state.per_sec() * batch_size);
            },
        );
        self.bar = ProgressBar::new(start.total_iterations).with_style(style).with_position(start.start_iteration);
        self.bar.reset_eta();
        self.iteration = start.start_iteration;
    }

    fn on_iteration(&mut self, stats: &IterationStats) {
        self.iteration = stats.iteration;
        self.bar.set_position(stats.iteration);
        self.bar.set_message(format!("Loss_D {:.3} Loss_G {:.3}", stats.loss_d, stats.loss_g));
    }

    fn on_log_line(&mut self, line: &str) {
        self.print(line);
    }

    fn on_sample(&mut self, path: &Path) {
        self.print(&format!("wrote sample grid {}", path.display()));
    }

    fn on_checkpoint(&mut self, path: &Path) {
        self.print(&format!("wrote checkpoint of iteration {}: {}", self.iteration, path.display()));
    }

    fn on_warning(&mut self, message: &str) {
        self.print(&format!("warning: {message}"));
    }
}

fn print_summary(summary: &TrainSummary, report: Option<&LoadReport>) {
    let status = match summary.stop_reason {
        StopReason::Completed => "completed".to_owned(),
        StopReason::StopAfter => format!("stopped after iteration {} (--stop-after)", summary.iteration),
        StopReason::Interrupted => format!("interrupted after iteration {}", summary.iteration),
    };
    println!("\nrun {status}");
    println!(
        "  iterations:  {} of {} ({} in this session)",
        summary.iteration,
        summary.total_iterations,
        summary.iteration - summary.start_iteration
    );
    println!("  throughput:  {:.1} images/s over {:.1} s", summary.images_per_second(), summary.elapsed.as_secs_f64());
    if let Some(last) = &summary.last {
        println!("  last:        {}", last.log_line());
    }
    if let Some(report) = report {
        println!(
            "  images:      {} loaded, {} skipped, {} hidden files ignored",
            report.loaded,
            report.skipped.len(),
            report.hidden
        );
    }
    println!("  checkpoint:  {}", summary.checkpoint.display());
    if let Some(sample) = &summary.sample {
        println!("  samples:     {}", sample.display());
    }
    println!("  loss log:    {}", summary.loss_log.display());
    if let Some(plot) = &summary.loss_plot {
        println!("  loss plot:   {}", plot.display());
    }
    if let Some(gif) = &summary.progress_gif {
        println!("  animation:   {}", gif.display());
    }
    if let Some(pair) = &summary.real_vs_fake {
        println!("  real/fake:   {}", pair.display());
    }
    if summary.stop_reason != StopReason::Completed {
        let run_dir = summary.checkpoint.parent().unwrap_or(Path::new("."));
        println!("continue with: dcgan train --resume {}", run_dir.display());
    }
}

fn run_export(args: &ExportArgs) -> Result<()> {
    let source = match (&args.from_pytorch, &args.run_dir) {
        (Some(file), _) => dcgan_export::GeneratorSource::Pytorch(file.clone()),
        (None, Some(run_dir)) => dcgan_export::GeneratorSource::Checkpoint(run_dir.clone()),
        (None, None) => bail!("give a RUN_DIR or --from-pytorch FILE to export from"),
    };
    let targets = dcgan_export::ExportTargets {
        onnx: args.onnx.clone(),
        int8: args.int8.clone(),
        qdq_onnx: args.qdq_onnx.clone(),
        keep_f32: args.keep_f32.clone(),
    };
    let report = dcgan_export::export_generator(&source, &targets)
        .with_context(|| format!("cannot export {}", source.path().display()))?;

    let spec = report.spec;
    println!(
        "generator nz={} ngf={} nc={} {}x{}, int8 layers {:?}",
        spec.nz, spec.ngf, spec.nc, spec.image_size, spec.image_size, report.int8_layers
    );
    for file in &report.files {
        println!("wrote {} ({}, {} bytes)", file.path.display(), file.kind, file.bytes);
    }
    Ok(())
}

/// How to run `dcgan-edge`: its path when it was built beside this binary,
/// otherwise the build command first. Building it together with the
/// trainer reuses every dependency this build compiled; `cargo run -p
/// dcgan-runtime` alone would compile many of them again with other features.
fn board_binary_hint() -> String {
    let beside = std::env::current_exe().ok().map(|exe| exe.with_file_name("dcgan-edge"));
    match beside {
        Some(path) if path.is_file() => format!("  {}", path.display()),
        _ => "  cargo build --release -p dcgan-trainer -p dcgan-runtime\n  target/release/dcgan-edge".to_owned(),
    }
}

fn run_demo(args: &DemoArgs) -> Result<ExitCode> {
    let stop = install_interrupt_handler()?;
    let defaults = DemoConfig::default();
    let config = DemoConfig {
        out: args.out.clone(),
        images: args.images,
        train: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            ngf: args.ngf,
            ndf: args.ndf,
            image_size: args.image_size,
            device: args.device.clone(),
            ..defaults.train
        },
        ..defaults
    };
    let started = Instant::now();
    println!(
        "demo: {} synthetic faces, {} of a DCGAN with ngf={} ndf={} at batch {}, outputs in {}",
        config.images,
        count_of(config.train.epochs, "epoch"),
        config.train.ngf,
        config.train.ndf,
        config.train.batch_size,
        config.out.display()
    );

    let mut observer = CliObserver::new();
    let outputs = dcgan_trainer::demo::run_demo(&config, &mut observer, &stop).context("demo failed")?;
    observer.bar.finish_and_clear();
    if outputs.training.stop_reason == StopReason::Interrupted {
        print_summary(&outputs.training, None);
        return Ok(ExitCode::from(130));
    }

    println!("\ndemo finished in {:.0} s", started.elapsed().as_secs_f64());
    println!("  training data:    {}", outputs.data_preview.display());
    println!("  training run:     {}", outputs.run_dir.display());
    println!("  sample grids:     {}", outputs.run_dir.join("samples").display());
    println!("  loss plot:        {}", outputs.run_dir.join(LOSS_PLOT_FILE).display());
    println!("  generator ONNX:   {}", outputs.onnx.display());
    println!("  generated faces:  {}", outputs.grid.display());
    let edge = board_binary_hint();
    println!(
        "the same faces from the board binary:\n{edge} generate --model {} --count {} --seed {} \\\n    --out {} --grid {}",
        outputs.onnx.display(),
        config.faces,
        config.face_seed,
        config.out.join("faces").display(),
        config.out.join("faces").join("grid.png").display()
    );
    Ok(ExitCode::SUCCESS)
}
