//! Writes a small int8 weight file (8-dimensional latent, 16x16 faces) to
//! `OUT_DIR`, which the library embeds with `include_bytes!`. Every layer is
//! int8 and the activation scales are calibrated, so the core runs its
//! integer path on it.

use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm, CALIBRATION_LATENTS, CALIBRATION_SEED};
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::{weight_file, GeneratorSpec};

fn main() {
    let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
    let weights = random_weights(spec, 7).expect("the check spec is valid");
    let mut generator = fold_batch_norm(&weights).expect("random weights fold").quantize(|_| true);
    generator.activation_scales = calibrate_activation_scales(&generator, CALIBRATION_SEED, CALIBRATION_LATENTS)
        .expect("the folded generator is valid");
    let bytes = weight_file::write(&generator).expect("the folded generator is valid");

    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(std::path::Path::new(&out_dir).join("check.dcgw"), bytes).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}
