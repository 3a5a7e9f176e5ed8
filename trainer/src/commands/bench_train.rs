//! `dcgan bench-train`: images per second of the full training step, beside
//! PyTorch's when a Python with torch is at hand.

use anyhow::{bail, Context, Result};
use clap::Args;
use dcgan_trainer::bench::{bench_train_step, pytorch_train_step, BenchConfig};
use dcgan_trainer::TrainConfig;

use crate::count_of;

/// The interpreter tried when `--python` is not given.
const DEFAULT_PYTHON: &str = "python3";

#[derive(Args)]
pub struct BenchTrainArgs {
    /// Models to time, as comma-separated NGF:NDF pairs. 64:64 is the
    /// tutorial's model.
    #[arg(long, value_name = "NGF:NDF,...", value_delimiter = ',', default_value = "64:64,16:16")]
    models: Vec<String>,

    /// Batch sizes to time, comma-separated.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "32,128")]
    batches: Vec<usize>,

    /// Untimed steps before the timed ones.
    #[arg(long, value_name = "N", default_value_t = 2)]
    warmup: usize,

    /// Timed steps; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 5)]
    iterations: usize,

    /// Compute device: cpu, cuda, cuda:N, metal or metal:N.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,

    /// Python interpreter with torch for the PyTorch side [default: python3,
    /// skipped when it is missing or cannot import torch]. An interpreter
    /// given here must import torch.
    #[arg(long, value_name = "PYTHON")]
    python: Option<String>,

    /// Time only the candle trainer.
    #[arg(long)]
    no_pytorch: bool,
}

pub fn run(args: &BenchTrainArgs) -> Result<()> {
    let models = args.models.iter().map(|model| parse_model(model)).collect::<Result<Vec<_>>>()?;
    if let Some(&batch) = args.batches.iter().find(|&&batch| batch == 0) {
        bail!("invalid batch size {batch}: use a value of at least 1");
    }
    if args.iterations == 0 {
        bail!("invalid --iterations 0: time at least 1 step");
    }
    let python = args.python.as_deref().unwrap_or(DEFAULT_PYTHON);
    let threads = rayon::current_num_threads();
    let size = TrainConfig::default().image_size;
    println!(
        "{size}x{size} images, device {}, {threads} threads, median of {} after {}",
        args.device,
        count_of(args.iterations, "step"),
        count_of(args.warmup, "warm-up step")
    );
    println!(
        "{:>7} {:>5} | {:>9} {:>9} | {:>9} {:>9} | {:>6}",
        "ngf:ndf", "batch", "ms/step", "images/s", "torch ms", "images/s", "ratio"
    );

    let mut pytorch_available = !args.no_pytorch && args.device == "cpu";
    let mut pytorch_version = None;
    for (model, &(ngf, ndf)) in args.models.iter().zip(&models) {
        for &batch_size in &args.batches {
            let config = BenchConfig {
                ngf,
                ndf,
                batch_size,
                warmup: args.warmup,
                iterations: args.iterations,
                device: args.device.clone(),
            };
            let ours = bench_train_step(&config)
                .with_context(|| format!("benchmark of model {model} at batch {batch_size}"))?;
            let theirs = if pytorch_available { pytorch_train_step(python, &config, threads)? } else { None };
            if pytorch_available && theirs.is_none() {
                if args.python.is_some() {
                    bail!("{python} is missing or cannot import torch: pass a Python that has torch, or --no-pytorch");
                }
                println!("(PyTorch skipped: {python} is missing or cannot import torch; pass --python PATH)");
                pytorch_available = false;
            }
            let ms = ours.median().as_secs_f64() * 1e3;
            match theirs {
                Some(torch) => {
                    println!(
                        "{model:>7} {batch_size:>5} | {ms:>9.1} {:>9.1} | {:>9.1} {:>9.1} | {:>5.2}x",
                        ours.images_per_second(),
                        torch.median_seconds * 1e3,
                        torch.images_per_second,
                        torch.images_per_second / ours.images_per_second()
                    );
                    pytorch_version = Some((torch.torch, torch.threads));
                }
                None => println!(
                    "{model:>7} {batch_size:>5} | {ms:>9.1} {:>9.1} | {:>9} {:>9} | {:>6}",
                    ours.images_per_second(),
                    "-",
                    "-",
                    "-"
                ),
            }
        }
    }
    if let Some((version, torch_threads)) = pytorch_version {
        println!("PyTorch {version}, {torch_threads} intra-op threads");
        println!("ratio: PyTorch's images/s over dcgan's (below 1 means dcgan is faster)");
    }
    Ok(())
}

fn parse_model(text: &str) -> Result<(usize, usize)> {
    let parsed = text.split_once(':').and_then(|(ngf, ndf)| Some((ngf.parse().ok()?, ndf.parse().ok()?)));
    parsed.with_context(|| format!("invalid model {text:?}: write NGF:NDF, for example 64:64"))
}
