//! `dcgan bench-train`: images per second of the full training step, beside
//! PyTorch's when a Python with torch is at hand.

use anyhow::{Context, Result};
use clap::Args;
use dcgan_trainer::bench::{bench_train_step, pytorch_train_step, BenchConfig};

#[derive(Args)]
pub struct BenchTrainArgs {
    /// Models to time, as NGF:NDF pairs [default: 64:64 (the tutorial's) and 16:16].
    #[arg(long, value_name = "NGF:NDF", value_delimiter = ',', default_values_t = ["64:64".to_owned(), "16:16".to_owned()])]
    models: Vec<String>,

    /// Batch sizes to time.
    #[arg(long, value_name = "N", value_delimiter = ',', default_values_t = [32usize, 128])]
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

    /// Python interpreter for the PyTorch side; skipped when it cannot import torch.
    #[arg(long, value_name = "PYTHON", default_value = "python3")]
    python: String,

    /// Time only the candle trainer.
    #[arg(long)]
    no_pytorch: bool,
}

pub fn run(args: &BenchTrainArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    println!(
        "device {}, {threads} threads, median of {} steps after {} warm-up steps",
        args.device, args.iterations, args.warmup
    );
    println!(
        "{:>7} {:>5} | {:>9} {:>9} | {:>9} {:>9} | {:>6}",
        "ngf:ndf", "batch", "ms/step", "images/s", "torch ms", "images/s", "ratio"
    );
    let mut pytorch_available = !args.no_pytorch && args.device == "cpu";
    for model in &args.models {
        let (ngf, ndf) = parse_model(model)?;
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
            let theirs = if pytorch_available { pytorch_train_step(&args.python, &config, threads)? } else { None };
            if pytorch_available && theirs.is_none() {
                println!("(PyTorch skipped: {} is missing or cannot import torch)", args.python);
                pytorch_available = false;
            }
            let ms = ours.median().as_secs_f64() * 1e3;
            match theirs {
                Some(torch) => println!(
                    "{model:>7} {batch_size:>5} | {ms:>9.1} {:>9.1} | {:>9.1} {:>9.1} | {:>5.2}x",
                    ours.images_per_second(),
                    torch.median_seconds * 1e3,
                    torch.images_per_second,
                    torch.images_per_second / ours.images_per_second()
                ),
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
    println!("ratio: PyTorch's images/s over dcgan's (below 1 means dcgan is faster)");
    Ok(())
}

fn parse_model(text: &str) -> Result<(usize, usize)> {
    let parsed = text.split_once(':').and_then(|(ngf, ndf)| Some((ngf.parse().ok()?, ndf.parse().ok()?)));
    parsed.with_context(|| format!("invalid model {text:?}: write NGF:NDF, for example 64:64"))
}
