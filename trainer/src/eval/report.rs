//! The whole evaluation: features of both image sets, the metrics, and a
//! report that serialises to JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dcgan_runtime::tract::TractGenerator;
use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;

use super::features::{InceptionNet, InceptionOutput, POOL_FEATURES};
use super::fid::frechet_distance;
use super::inception_score::{inception_score, InceptionScore, DEFAULT_IS_SPLITS};
use super::kid::{kernel_inception_distance, KidOptions, KidScore};
use super::matrix::FeatureMatrix;
use super::psnr::psnr;
use super::sources::{list_images, load_rgb};
use super::ssim::ssim;
use super::EvalError;

/// Images per set below which FID is unreliable: with fewer samples than
/// the 2048 pool features the covariance is singular and FID is biased
/// upwards, so pytorch-fid advises at least 2048 images.
pub const MIN_STABLE_IMAGES: usize = POOL_FEATURES;

/// The images compared with the real ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeSource {
    /// A folder of images; files with the same name as a real image are
    /// also compared with SSIM and PSNR.
    Folder(PathBuf),
    /// A generator ONNX file and how many faces to generate from it.
    Model {
        /// The generator ONNX file.
        path: PathBuf,
        /// Number of faces.
        count: usize,
        /// Seed of the latents; face `k` uses latent `k` of this seed.
        seed: u64,
    },
}

/// Settings of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Images per Inception run.
    pub batch_size: usize,
    /// KID subsets.
    pub kid: KidOptions,
    /// Inception Score splits.
    pub inception_score_splits: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { batch_size: 32, kid: KidOptions::default(), inception_score_splits: DEFAULT_IS_SPLITS }
    }
}

/// A stage of [`evaluate`] and how far it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What runs: `real features`, `fake features` or `paired images`.
    pub stage: &'static str,
    /// Images done.
    pub done: usize,
    /// Images in the stage.
    pub total: usize,
}

/// One image set of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetSummary {
    /// The folder or generator file.
    pub source: String,
    /// Images evaluated.
    pub images: usize,
}

/// SSIM and PSNR over image pairs with the same file name.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairedScores {
    /// Number of pairs.
    pub pairs: usize,
    /// Mean SSIM over the pairs.
    pub ssim: f64,
    /// Mean PSNR in decibels over the pairs that differ; `None` when every
    /// pair is identical, whose PSNR is infinite.
    pub psnr: Option<f64>,
    /// Pairs whose images are identical.
    pub identical_pairs: usize,
}

/// Everything [`evaluate`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// The real images.
    pub real: SetSummary,
    /// The images compared with them.
    pub fake: SetSummary,
    /// The Inception ONNX file.
    pub inception: String,
    /// Fréchet Inception Distance.
    pub fid: f64,
    /// Kernel Inception Distance.
    pub kid: KidScore,
    /// Inception Score of the compared images; `None` when the network has
    /// no logits or there are fewer images than splits.
    pub inception_score: Option<InceptionScore>,
    /// Inception Score of the real images, as a reference.
    pub real_inception_score: Option<InceptionScore>,
    /// SSIM and PSNR of same-named pairs; `None` when no file name matches.
    pub paired: Option<PairedScores>,
    /// Warnings about the reliability of the figures.
    pub warnings: Vec<String>,
}

/// Compares the images in `real_dir` with `fake` through the Inception
/// network at `inception`.
///
/// `progress` receives every finished batch. Warnings (too few images for a
/// stable FID, no logits for the Inception Score) are logged and listed in
/// the report.
///
/// # Errors
/// Any [`EvalError`]: unreadable folders or images, an ONNX file that is not
/// an Inception network or not a generator, or fewer than 2 images in a set.
pub fn evaluate(
    real_dir: &Path,
    fake: &FakeSource,
    inception: &Path,
    options: &EvalOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<EvalReport, EvalError> {
    let real_files = list_images(real_dir)?;
    let net = InceptionNet::load(inception, options.batch_size)?;
    let mut warnings = Vec::new();

    let real = folder_features(&net, &real_files, "real features", progress)?;
    let (fake_features, fake_summary, paired) = match fake {
        FakeSource::Folder(dir) => {
            let fake_files = list_images(dir)?;
            let features = folder_features(&net, &fake_files, "fake features", progress)?;
            let paired = paired_scores(&real_files, &fake_files, progress)?;
            if paired.is_none() {
                warnings.push(format!(
                    "no file in {} has the name of a file in {}: SSIM and PSNR were skipped",
                    dir.display(),
                    real_dir.display()
                ));
            }
            (features, SetSummary { source: dir.display().to_string(), images: fake_files.len() }, paired)
        }
        FakeSource::Model { path, count, seed } => {
            let features = generated_features(&net, path, *count, *seed, progress)?;
            (features, SetSummary { source: path.display().to_string(), images: *count }, None)
        }
    };

    let real_summary = SetSummary { source: real_dir.display().to_string(), images: real_files.len() };
    for set in [&real_summary, &fake_summary] {
        if set.images < MIN_STABLE_IMAGES {
            warnings.push(format!(
                "{} has {} images, fewer than the {MIN_STABLE_IMAGES} that a stable FID needs: treat FID and KID as rough",
                set.source, set.images
            ));
        }
    }

    let fid = frechet_distance(&real.pool, &fake_features.pool)?;
    let kid = kernel_inception_distance(&real.pool, &fake_features.pool, &options.kid)?;
    let inception_score = optional_score(&fake_features, "the compared images", options, &mut warnings)?;
    let real_inception_score = optional_score(&real, "the real images", options, &mut warnings)?;
    for warning in &warnings {
        log::warn!("{warning}");
    }

    Ok(EvalReport {
        real: real_summary,
        fake: fake_summary,
        inception: inception.display().to_string(),
        fid,
        kid,
        inception_score,
        real_inception_score,
        paired,
        warnings,
    })
}

/// Compares same-named images of two folders with SSIM and PSNR only; no
/// Inception network is needed.
///
/// # Errors
/// [`EvalError::InvalidSetting`] when no file in `fake_dir` has the name of
/// a file in `real_dir`, and the image errors of [`evaluate`].
pub fn evaluate_paired(
    real_dir: &Path,
    fake_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<PairedScores, EvalError> {
    let real_files = list_images(real_dir)?;
    let fake_files = list_images(fake_dir)?;
    paired_scores(&real_files, &fake_files, progress)?.ok_or_else(|| {
        EvalError::InvalidSetting(format!(
            "no file in {} has the name of a file in {}: SSIM and PSNR compare same-named files. \
             Give --inception FILE for FID and KID over any two sets",
            fake_dir.display(),
            real_dir.display()
        ))
    })
}

/// Inception Score of a set, or a warning why there is none.
fn optional_score(
    features: &InceptionOutput,
    set: &str,
    options: &EvalOptions,
    warnings: &mut Vec<String>,
) -> Result<Option<InceptionScore>, EvalError> {
    let Some(logits) = &features.logits else {
        if set == "the compared images" {
            warnings.push("the Inception network has no logits output: the Inception Score was skipped".into());
        }
        return Ok(None);
    };
    if logits.rows() < options.inception_score_splits {
        warnings.push(format!(
            "the Inception Score of {set} was skipped: {} images are fewer than its {} splits",
            logits.rows(),
            options.inception_score_splits
        ));
        return Ok(None);
    }
    inception_score(logits, options.inception_score_splits).map(Some)
}

/// Features of image files, decoded in parallel one batch at a time.
fn folder_features(
    net: &InceptionNet,
    files: &[PathBuf],
    stage: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> Result<InceptionOutput, EvalError> {
    let mut collected = Collected::default();
    for batch in files.chunks(net.batch_size()) {
        let images: Vec<RgbImage> = batch.par_iter().map(|path| load_rgb(path)).collect::<Result<_, _>>()?;
        collected.push(net, &images)?;
        progress(Progress { stage, done: collected.rows(), total: files.len() });
    }
    Ok(collected.finish())
}

/// Features of `count` faces of a generator ONNX, one batch at a time.
fn generated_features(
    net: &InceptionNet,
    path: &Path,
    count: usize,
    seed: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<InceptionOutput, EvalError> {
    let mut generator = TractGenerator::load(path)?;
    let size = generator.image_size() as u32;
    let mut collected = Collected::default();
    for first in (0..count).step_by(net.batch_size()) {
        let batch = net.batch_size().min(count - first);
        let faces = generator.generate_faces(seed, first as u64, batch, batch)?;
        let images: Vec<RgbImage> =
            faces.into_iter().filter_map(|rgb| RgbImage::from_raw(size, size, rgb)).collect();
        collected.push(net, &images)?;
        progress(Progress { stage: "fake features", done: collected.rows(), total: count });
    }
    Ok(collected.finish())
}

/// Feature rows gathered batch by batch.
#[derive(Default)]
struct Collected {
    pool: Option<FeatureMatrix>,
    logits: Option<FeatureMatrix>,
}

impl Collected {
    fn push(&mut self, net: &InceptionNet, images: &[RgbImage]) -> Result<(), EvalError> {
        let refs: Vec<&RgbImage> = images.iter().collect();
        let output = net.features(&refs)?;
        append(&mut self.pool, &output.pool)?;
        if let Some(logits) = &output.logits {
            append(&mut self.logits, logits)?;
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.pool.as_ref().map_or(0, FeatureMatrix::rows)
    }

    fn finish(self) -> InceptionOutput {
        InceptionOutput { pool: self.pool.unwrap_or_else(|| FeatureMatrix::with_cols(POOL_FEATURES)), logits: self.logits }
    }
}

fn append(target: &mut Option<FeatureMatrix>, rows: &FeatureMatrix) -> Result<(), EvalError> {
    let matrix = target.get_or_insert_with(|| FeatureMatrix::with_cols(rows.cols()));
    for row in 0..rows.rows() {
        matrix.push_row(rows.row(row))?;
    }
    Ok(())
}

/// SSIM and PSNR of the real and fake files that share a file name.
fn paired_scores(
    real_files: &[PathBuf],
    fake_files: &[PathBuf],
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<PairedScores>, EvalError> {
    let fake_by_name: HashMap<_, _> = fake_files.iter().filter_map(|path| Some((path.file_name()?, path))).collect();
    let pairs: Vec<(&PathBuf, &PathBuf)> = real_files
        .iter()
        .filter_map(|real| Some((real, *fake_by_name.get(real.file_name()?)?)))
        .collect();
    if pairs.is_empty() {
        return Ok(None);
    }

    let scores: Vec<(f64, f64)> = pairs.par_iter().map(|(real, fake)| pair_score(real, fake)).collect::<Result<_, _>>()?;
    progress(Progress { stage: "paired images", done: pairs.len(), total: pairs.len() });

    let ssim_mean = scores.iter().map(|(s, _)| s).sum::<f64>() / scores.len() as f64;
    let finite: Vec<f64> = scores.iter().map(|(_, p)| *p).filter(|p| p.is_finite()).collect();
    let psnr_mean = (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64);
    Ok(Some(PairedScores {
        pairs: pairs.len(),
        ssim: ssim_mean,
        psnr: psnr_mean,
        identical_pairs: scores.len() - finite.len(),
    }))
}

fn pair_score(real: &Path, fake: &Path) -> Result<(f64, f64), EvalError> {
    let a = load_rgb(real)?;
    let b = load_rgb(fake)?;
    if a.dimensions() != b.dimensions() {
        return Err(EvalError::PairSize {
            real: real.to_owned(),
            fake: fake.to_owned(),
            real_size: a.dimensions(),
            fake_size: b.dimensions(),
        });
    }
    Ok((ssim(&a, &b)?, psnr(&a, &b)?))
}
