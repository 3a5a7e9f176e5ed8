//! The trainer's checkpoint format, as far as exporting needs it.
//!
//! A checkpoint is one safetensors file, `RUN_DIR/checkpoint.safetensors`.
//! Tensor names follow the PyTorch DCGAN tutorial's `state_dict` with a
//! network prefix, so `netG.main.0.weight` is the generator's first
//! transposed convolution and `netG.main.1.running_mean` its BatchNorm's
//! running mean. Generator layer `i` (from 0 at the latent) has its
//! convolution at `main.{3i}` and its BatchNorm at `main.{3i+1}`.
//! The safetensors metadata holds the configuration as JSON.

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Metadata key: format name and version, [`FORMAT`].
pub const META_FORMAT: &str = "format";
/// Value of [`META_FORMAT`] this version writes and reads.
pub const FORMAT: &str = "dcgan-edge-checkpoint/1";
/// Metadata key: the generator spec as JSON, `{"nz":100,"ngf":64,"nc":3,"image_size":64}`.
pub const META_GENERATOR_SPEC: &str = "generator_spec";
/// Metadata key: where the model was trained from (the data directory, or `synthetic`).
pub const META_TRAINED_FROM: &str = "trained_from";

/// Name of generator layer `layer`'s transposed-convolution weight.
pub fn generator_conv_key(layer: usize) -> String {
    format!("netG.main.{}.weight", 3 * layer)
}

/// Name of generator layer `layer`'s BatchNorm tensor `part`
/// (`weight`, `bias`, `running_mean` or `running_var`).
pub fn generator_bn_key(layer: usize, part: &str) -> String {
    format!("netG.main.{}.{part}", 3 * layer + 1)
}
