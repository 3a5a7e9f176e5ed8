//! Any bytes, as the `data.pkl` of a `torch.save` archive given to the
//! PyTorch importer, give a generator or an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dcgan_fuzz::record_caught_panics(), |data: &[u8]| {
    let archive = dcgan_fuzz::torch_archive(data);
    dcgan_fuzz::run_catching_escapes(|| {
        let _ = dcgan_export::parse_pytorch_generator(Path::new("fuzz.pth"), &archive);
    });
});
