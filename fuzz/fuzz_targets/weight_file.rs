//! Any bytes given to the weight file reader give a generator or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcgan_runtime::weight_file::read(data);
});
