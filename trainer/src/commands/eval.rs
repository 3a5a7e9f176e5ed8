//! `dcgan eval`: compares generated images with real ones.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use dcgan_trainer::eval::{
    evaluate, evaluate_paired, EvalOptions, EvalReport, PairedScores, FakeSource, KidOptions, Progress, DEFAULT_IS_SPLITS, DEFAULT_KID_SUBSETS,
    DEFAULT_KID_SUBSET_SIZE,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of real images (the files directly inside it).
    #[arg(long, value_name = "DIR")]
    real: PathBuf,

    /// Folder of generated images; files named like a real image are also
    /// compared pairwise with SSIM and PSNR.
    #[arg(long, value_name = "DIR", required_unless_present = "model", conflicts_with = "model")]
    fake: Option<PathBuf>,

    /// Generator ONNX file (from `dcgan export`) to generate the compared
    /// images with.
    #[arg(long, value_name = "FILE", requires = "count")]
    model: Option<PathBuf>,

    /// Faces to generate with --model.
    #[arg(long, value_name = "N", requires = "model", value_parser = clap::value_parser!(u64).range(2..))]
    count: Option<u64>,

    /// Seed of the generated faces' latents.
    #[arg(long, value_name = "SEED", default_value_t = 0, requires = "model")]
    seed: u64,

    /// Inception-v3 ONNX file: input [N, 3, 299, 299] in [-1, 1], outputs
    /// pool features [N, 2048] and optionally logits [N, 1008]. The README
    /// explains how to export it from pytorch-fid. Needed for FID, KID and
    /// IS; without it, --fake folders are compared by SSIM and PSNR only.
    #[arg(long, value_name = "FILE")]
    inception: Option<PathBuf>,

    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,

    /// Images per Inception run.
    #[arg(long, value_name = "N", default_value_t = EvalOptions::default().batch_size as u64, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,

    /// KID subsets.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KID_SUBSETS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    kid_subsets: u64,

    /// Images per KID subset (the smaller set's size when that is smaller).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KID_SUBSET_SIZE as u64, value_parser = clap::value_parser!(u64).range(2..))]
    kid_subset_size: u64,

    /// Inception Score splits.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_IS_SPLITS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    is_splits: u64,
}

/// Runs the evaluation, prints the table and writes the JSON.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let fake = match (&args.fake, &args.model, args.count) {
        (Some(dir), _, _) => FakeSource::Folder(dir.clone()),
        (None, Some(path), Some(count)) => FakeSource::Model { path: path.clone(), count: count as usize, seed: args.seed },
        _ => anyhow::bail!("give --fake DIR, or --model FILE with --count N"),
    };
    let Some(inception) = &args.inception else {
        return run_paired(args);
    };
    let options = EvalOptions {
        batch_size: args.batch_size as usize,
        kid: KidOptions { subsets: args.kid_subsets as usize, subset_size: args.kid_subset_size as usize, seed: 0 },
        inception_score_splits: args.is_splits as usize,
    };

    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} images ({eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let mut on_progress = |progress: Progress| {
        bar.set_message(progress.stage);
        bar.set_length(progress.total as u64);
        bar.set_position(progress.done as u64);
    };
    let report = evaluate(&args.real, &fake, inception, &options, &mut on_progress)
        .with_context(|| format!("evaluation against {} failed", args.real.display()))?;
    bar.finish_and_clear();

    print_table(&report);
    if let Some(path) = &args.json {
        write_json(&report, path)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// SSIM and PSNR of same-named files, for runs without an Inception network.
fn run_paired(args: &EvalArgs) -> Result<ExitCode> {
    let Some(fake) = &args.fake else {
        anyhow::bail!(
            "--model needs --inception FILE: generated faces have no same-named real image, \
             so only FID, KID and IS apply (the README explains how to get the Inception file)"
        );
    };
    let paired = evaluate_paired(&args.real, fake, &mut |_| {})
        .with_context(|| format!("comparing {} with {} failed", fake.display(), args.real.display()))?;

    println!("real:      {}", args.real.display());
    println!("compared:  {}", fake.display());
    println!("inception: none (FID, KID and IS need --inception)");
    println!();
    println!("| metric | value |");
    println!("| --- | --- |");
    print_paired(&paired);
    if let Some(path) = &args.json {
        write_json(&paired, path)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_paired(paired: &PairedScores) {
    println!("| SSIM | {:.4} ({} pairs) |", paired.ssim, paired.pairs);
    match paired.psnr {
        Some(psnr) => println!("| PSNR | {psnr:.2} dB ({} identical pairs left out) |", paired.identical_pairs),
        None => println!("| PSNR | infinite: every pair is identical |"),
    }
}

fn print_table(report: &EvalReport) {
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("real:      {} ({} images)", report.real.source, report.real.images);
    println!("compared:  {} ({} images)", report.fake.source, report.fake.images);
    println!("inception: {}", report.inception);
    println!();
    println!("| metric | value |");
    println!("| --- | --- |");
    println!("| FID | {:.4} |", report.fid);
    println!("| KID | {:.6} ± {:.6} ({} subsets of {}) |", report.kid.mean, report.kid.std, report.kid.subsets, report.kid.subset_size);
    match &report.inception_score {
        Some(score) => println!("| IS | {:.4} ± {:.4} ({} splits) |", score.mean, score.std, score.splits),
        None => println!("| IS | not computed |"),
    }
    if let Some(score) = &report.real_inception_score {
        println!("| IS of the real images | {:.4} ± {:.4} |", score.mean, score.std);
    }
    match &report.paired {
        Some(paired) => print_paired(paired),
        None => println!("| SSIM, PSNR | no pairs with the same file name |"),
    }
}

/// Writes the report as pretty JSON through a temporary file.
fn write_json(report: &impl serde::Serialize, path: &std::path::Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report).context("cannot serialise the evaluation report")?;
    let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&temporary, format!("{text}\n")).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot rename {} to {}", temporary.display(), path.display()))?;
    Ok(())
}
