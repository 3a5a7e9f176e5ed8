//! Any bytes that start like a zip archive, given to the PyTorch importer,
//! give a generator or an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dcgan_fuzz::record_caught_panics(), |data: &[u8]| {
    // Other inputs go to the safetensors reader, which its own target covers.
    if !data.starts_with(b"PK\x03\x04") {
        return;
    }
    dcgan_fuzz::run_catching_escapes(|| {
        let _ = dcgan_export::parse_pytorch_generator(Path::new("fuzz.pth"), data);
    });
});
