//! Any bytes given to the `.pth` / safetensors importer give a result or an error.
//! Seed the corpus with `export/tests/golden/netG.pth` to start from a valid archive.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcgan_export::parse_pytorch_generator(Path::new("fuzz-input"), data);
});
