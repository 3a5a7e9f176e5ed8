//! Writes a small int8 weight file (8-dimensional latent, 16x16 faces) to
//! `OUT_DIR`, which the library embeds with `include_bytes!`.

use dcgan_runtime::quantized::fold_batch_norm;
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::{weight_file, GeneratorSpec};

fn main() {
    let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
    let weights = random_weights(spec, 7).expect("the check spec is valid");
    let generator = fold_batch_norm(&weights).expect("random weights fold").quantize(|_| true);
    let bytes = weight_file::write(&generator).expect("the folded generator is valid");

    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(std::path::Path::new(&out_dir).join("check.dcgw"), bytes).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}
