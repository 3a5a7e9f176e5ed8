//! Any bytes given to the tract ONNX loader give a generator or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = tempfile::NamedTempFile::new() else { return };
    if std::fs::write(file.path(), data).is_ok() {
        let _ = dcgan_runtime::TractGenerator::load(file.path());
    }
});
