//! Runs a DCGAN generator on edge devices.
//!
//! The core is `#![no_std]` with `alloc`: the allocation-free generator
//! ([`engine`]), the architecture description
//! ([`spec`]), seeded latents ([`latent`]), pixel conversion ([`pixel`]) and a
//! naive scalar forward pass ([`reference`](mod@reference)) that checks the other backends,
//! the folded and int8 form of the generator ([`quantized`]) and its compact
//! weight file ([`weight_file`]).
//! The `std` feature adds one generator type over both backends
//! (`backend`), benchmarks (`bench`), model summaries (`model_info`), image
//! grids (`grid`), the face-generator kiosk (`kiosk`) and the board binary
//! `dcgan-edge`. The `tract` feature adds the tract ONNX backend (`tract`).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod engine;
pub mod latent;
pub mod pixel;
pub mod quantized;
pub mod reference;
pub mod spec;
pub mod weight_file;
pub mod weights;

#[cfg(feature = "std")]
pub mod backend;
#[cfg(feature = "std")]
pub mod bench;
#[cfg(feature = "std")]
pub mod error_text;
#[cfg(feature = "std")]
pub mod grid;
#[cfg(feature = "std")]
pub mod kiosk;
#[cfg(feature = "std")]
pub mod model_info;
#[cfg(feature = "tract")]
pub mod tract;

#[cfg(feature = "std")]
pub use backend::{BackendError, BackendKind, Generator, LoadOptions};
pub use quantized::{Kernel, QuantizedGenerator, QuantizedLayer};
pub use spec::{Activation, GeneratorSpec, LayerSpec, SpecError};
#[cfg(feature = "tract")]
pub use tract::{RuntimeError, TractGenerator};
pub use weights::{BatchNormWeights, GeneratorWeights, LayerWeights};
