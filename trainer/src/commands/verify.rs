//! `dcgan verify`: flags and report; the comparison is `dcgan_export::verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use dcgan_export::verify::{verify, Thresholds, VerifyOptions};
use dcgan_export::GeneratorSource;
use dcgan_trainer::checkpoint::{checkpoint_path, load_checkpoint};

#[derive(Args)]
pub struct VerifyArgs {
    /// Run directory (or its checkpoint.safetensors) with the f32 reference.
    #[arg(value_name = "RUN_DIR", required_unless_present = "from_pytorch", conflicts_with = "from_pytorch")]
    run_dir: Option<PathBuf>,

    /// Take the f32 reference from a PyTorch .pth or safetensors state_dict instead.
    #[arg(long, value_name = "FILE")]
    from_pytorch: Option<PathBuf>,

    /// f32 ONNX file to run through tract.
    #[arg(long, value_name = "FILE")]
    onnx: Option<PathBuf>,

    /// Int8 weight file to run through the runtime core.
    #[arg(long, value_name = "FILE")]
    int8: Option<PathBuf>,

    /// QDQ ONNX file to run through tract.
    #[arg(long, value_name = "FILE")]
    qdq_onnx: Option<PathBuf>,

    /// Number of latents to compare (faces 0..N of --seed).
    #[arg(long, value_name = "N", default_value_t = 16)]
    latents: usize,

    /// Seed of the latents.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    seed: u64,

    /// Largest max abs error of the image allowed for forms with f32 weights.
    #[arg(long, value_name = "ERROR", default_value_t = Thresholds::default().max_abs_f32)]
    max_abs_f32: f32,

    /// Smallest PSNR of the image in dB allowed for every form.
    #[arg(long, value_name = "DB", default_value_t = Thresholds::default().min_psnr)]
    min_psnr: f64,

    /// Smallest SSIM of the image allowed for every form.
    #[arg(long, value_name = "SSIM", default_value_t = Thresholds::default().min_ssim)]
    min_ssim: f64,
}

/// Runs the comparison, prints the report, and returns exit status 1 when a
/// threshold is crossed.
pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let source = match (&args.from_pytorch, &args.run_dir) {
        (Some(file), _) => GeneratorSource::Pytorch(file.clone()),
        (None, Some(run_dir)) => GeneratorSource::Checkpoint(run_dir.clone()),
        (None, None) => anyhow::bail!("give a RUN_DIR or --from-pytorch FILE as the reference"),
    };
    let options = VerifyOptions {
        source: source.clone(),
        onnx: args.onnx.clone(),
        int8: args.int8.clone(),
        qdq_onnx: args.qdq_onnx.clone(),
        latents: args.latents,
        seed: args.seed,
        thresholds: Thresholds { max_abs_f32: args.max_abs_f32, min_psnr: args.min_psnr, min_ssim: args.min_ssim },
    };
    let mut report = verify(&options).with_context(|| format!("cannot verify {}", source.path().display()))?;
    if let GeneratorSource::Checkpoint(run_dir) = &source {
        let images = trainer_images(run_dir, &report.latent_values, report.spec.nz)?;
        report.add_form("trainer checkpoint (candle, eval mode)", Some(checkpoint_path(run_dir)), false, &images);
    }
    print!("{report}");
    if report.passed() {
        println!("\nverify: all forms within the thresholds");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nverify: FAILED: at least one form crossed a threshold");
        Ok(ExitCode::FAILURE)
    }
}

/// Runs the trainer's own eval-mode generator from the checkpoint.
///
/// # Shapes
///
/// - `latents`: `[N, nz]`; returns `[N, nc, image_size, image_size]`.
fn trainer_images(run_dir: &std::path::Path, latents: &[f32], nz: usize) -> Result<Vec<f32>> {
    let device = candle_core::Device::Cpu;
    let path = checkpoint_path(run_dir);
    let (state, _) = load_checkpoint(&path, &device).with_context(|| format!("cannot load {}", path.display()))?;
    let count = latents.len() / nz;
    let z = candle_core::Tensor::from_vec(latents.to_vec(), (count, nz, 1, 1), &device)?;
    let images = state.generator.forward_eval(&z).context("the trainer's forward pass failed")?;
    Ok(images.flatten_all()?.to_vec1::<f32>()?)
}
