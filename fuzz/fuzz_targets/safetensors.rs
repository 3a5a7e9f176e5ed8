//! Any bytes that do not start like a zip archive, given to the PyTorch
//! importer, go to its safetensors reader and give a generator or an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Zip archives go to the .pth reader, which the `pth` targets cover.
    if data.starts_with(b"PK\x03\x04") {
        return;
    }
    let _ = dcgan_export::parse_pytorch_generator(Path::new("fuzz.safetensors"), data);
});
