//! Any bytes given to the training checkpoint reader of `dcgan export` give a
//! generator or an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcgan_export::checkpoint::parse_generator(Path::new("checkpoint.safetensors"), data);
});
