//! Runs a DCGAN generator on edge devices.
//!
//! The core is `#![no_std]` with `alloc`: the allocation-free generator
//! ([`engine`]), the architecture description
//! ([`spec`]), seeded latents ([`latent`]), pixel conversion ([`pixel`]) and a
//! naive scalar forward pass ([`reference`](mod@reference)) that checks the other backends,
//! the folded and int8 form of the generator ([`quantized`]) and its compact
//! weight file ([`weight_file`]).
//! The `std` feature adds the tract ONNX backend (`tract`), image grids
//! (`grid`), the face-generator kiosk (`kiosk`) and the board binary
//! `dcgan-edge`.
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
pub mod error_text;
#[cfg(feature = "std")]
pub mod grid;
#[cfg(feature = "std")]
pub mod kiosk;
#[cfg(feature = "std")]
pub mod tract;

pub use spec::{Activation, GeneratorSpec, LayerSpec, SpecError};
pub use quantized::{Kernel, QuantizedGenerator, QuantizedLayer};
pub use weights::{BatchNormWeights, GeneratorWeights, LayerWeights};
#[cfg(feature = "std")]
pub use tract::{RuntimeError, TractGenerator};
