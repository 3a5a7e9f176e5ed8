//! Any bytes given to the runtime's ONNX reader give a latent length or an
//! error. The target runs the steps of `TractGenerator::load` before tract
//! analyses the graph: decoding and the checks of the graph input and
//! metadata. tract's graph analysis is tract's own code and is not fuzzed here.
#![no_main]

use std::path::Path;

use dcgan_runtime::tract::{declared_latent_length, decode_model_proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.onnx");
    if let Ok(proto) = decode_model_proto(path, data) {
        let _ = declared_latent_length(path, &proto);
    }
});
