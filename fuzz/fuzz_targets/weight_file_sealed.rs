//! Weight files with a valid magic, version, length and checksum but fuzzed
//! content give a generator or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcgan_runtime::weight_file::read(&dcgan_fuzz::seal_weight_file(data));
});
