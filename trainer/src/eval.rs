//! Evaluation of a generator: FID, KID and Inception Score from an
//! Inception-v3 ONNX network, and SSIM and PSNR between paired images.
//!
//! The metric functions ([`frechet_distance`], [`kernel_inception_distance`],
//! [`inception_score`], [`ssim()`], [`psnr()`]) work on plain matrices and
//! images. [`evaluate`] runs the whole comparison of a folder of real images
//! with a folder of generated ones or with images from a generator ONNX,
//! reading images in batches so memory stays at one batch of decoded images
//! plus the feature matrices.

mod features;
mod fid;
mod inception_score;
mod kid;
mod matrix;
mod psnr;
mod report;
mod resize;
mod sources;
mod ssim;

use std::path::PathBuf;

use thiserror::Error;

pub use features::{InceptionNet, InceptionOutput, EXPECTED_INCEPTION, INCEPTION_SIZE, LOGIT_CLASSES, POOL_FEATURES};
pub use fid::{frechet_distance, frechet_distance_from_stats};
pub use inception_score::{inception_score, InceptionScore, DEFAULT_IS_SPLITS};
pub use kid::{kernel_inception_distance, mmd2_unbiased, KidOptions, KidScore, DEFAULT_KID_SUBSETS, DEFAULT_KID_SUBSET_SIZE};
pub use matrix::{psd_sqrt, trace_sqrt_product, FeatureMatrix, GaussianStats};
pub use psnr::psnr;
pub use report::{evaluate, evaluate_paired, EvalOptions, EvalReport, FakeSource, PairedScores, Progress, SetSummary, MIN_STABLE_IMAGES};
pub use resize::{inception_input, resize_bilinear};
pub use sources::{list_images, load_rgb};
pub use ssim::{ssim, SSIM_DATA_RANGE, SSIM_RADIUS, SSIM_SIGMA};

/// A failed evaluation.
#[derive(Debug, Error)]
pub enum EvalError {
    /// Values do not have the expected shape.
    #[error("invalid {what}: expected {expected}, found {found}")]
    Shape {
        /// The value whose shape is wrong.
        what: String,
        /// The expected shape.
        expected: String,
        /// The shape found.
        found: String,
    },
    /// Too few samples for a metric to be defined.
    #[error("{metric} needs at least {needed} images, found {found}: evaluate more images")]
    TooFewSamples {
        /// The metric.
        metric: &'static str,
        /// Minimum number of images.
        needed: usize,
        /// Images given.
        found: usize,
    },
    /// A setting is out of range.
    #[error("invalid evaluation setting: {0}")]
    InvalidSetting(String),
    /// An image is smaller than the SSIM window.
    #[error("image of {width}x{height} pixels is smaller than the {min}x{min} SSIM window")]
    ImageTooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Minimum width and height.
        min: u32,
    },
    /// An ONNX file cannot be read or parsed.
    #[error("cannot load ONNX model {}: {reason}", path.display())]
    ModelRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The ONNX file's inputs or outputs do not fit an Inception network.
    #[error("{} does not fit as the Inception network: {reason}; expected {EXPECTED_INCEPTION}", path.display())]
    NotInception {
        /// The file.
        path: PathBuf,
        /// The mismatch.
        reason: String,
    },
    /// tract failed to optimise or run the network.
    #[error("tract failed on {}: {message}", path.display())]
    Tract {
        /// The file.
        path: PathBuf,
        /// tract's error and its causes.
        message: String,
    },
    /// A folder or file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image file does not decode.
    #[error("cannot decode image {}: {reason}; remove or replace the file", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// A folder contains no image file.
    #[error("no image files (.jpg, .jpeg, .png, .gif, .bmp, .webp) found in {}", dir.display())]
    EmptyFolder {
        /// The folder.
        dir: PathBuf,
    },
    /// Two images with the same file name have different sizes.
    #[error("paired images {} and {} differ in size ({}x{} and {}x{}): SSIM and PSNR need equal sizes", real.display(), fake.display(), real_size.0, real_size.1, fake_size.0, fake_size.1)]
    PairSize {
        /// The real image.
        real: PathBuf,
        /// The image compared with it.
        fake: PathBuf,
        /// Width and height of the real image.
        real_size: (u32, u32),
        /// Width and height of the other image.
        fake_size: (u32, u32),
    },
    /// The generator ONNX failed to load or run.
    #[error(transparent)]
    Generator(#[from] dcgan_runtime::tract::RuntimeError),
}
