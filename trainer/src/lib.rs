//! Trains the DCGAN of the PyTorch tutorial with candle.
//!
//! [`train::train`] runs the tutorial's training loop on an in-memory
//! [`data::ImageSet`], writing checkpoints, sample grids and a loss log into
//! a run directory; [`train::resume`] continues such a run exactly.
//! [`eval`] measures a generator with FID, KID, Inception Score, SSIM and PSNR.
#![warn(missing_docs)]

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod demo;
pub mod device;
pub mod eval;
pub mod loss;
pub mod model;
pub mod plot;
pub mod rng;
pub mod state;
pub mod train;

pub use config::TrainConfig;
pub use model::{Discriminator, Generator};
pub use train::{resume, resume_with, train, TrainError, TrainObserver, TrainSummary};
