//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::collections::HashSet;
use std::io::{Cursor, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use dcgan_runtime::weight_file::{crc32, CHECKSUM_LEN, HEADER_LEN, MAGIC};

/// Message and location of the last panic, and the locations already reported.
static PANICS: Mutex<(Option<String>, Option<HashSet<String>>)> = Mutex::new((None, None));

/// Replaces libfuzzer-sys's panic hook, which aborts on every panic, with one
/// that records the panic and prints each new location once.
///
/// The `.pth` reader turns panics of candle's pickle parser into errors with
/// `catch_unwind`, so a panic there is not a crash of the command line.
/// [`run_catching_escapes`] still aborts, and so reports a crash, when a
/// panic leaves the reader.
pub fn record_caught_panics() {
    panic::set_hook(Box::new(|info| {
        let location = info.location().map_or_else(|| "unknown".to_string(), ToString::to_string);
        let Ok(mut panics) = PANICS.lock() else { return };
        if panics.1.get_or_insert_with(HashSet::new).insert(location.clone()) {
            eprintln!("panic at {location} (reported once per location): {info}");
        }
        panics.0 = Some(info.to_string());
    }));
}

/// Runs `read` and aborts the process, which libFuzzer records as a crash,
/// when a panic escapes it.
pub fn run_catching_escapes(read: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(read)).is_ok() {
        return;
    }
    let message = PANICS.lock().ok().and_then(|panics| panics.0.clone()).unwrap_or_default();
    eprintln!("a panic escaped the reader: {message}");
    std::process::abort();
}

/// Gives `data` the weight file's magic, a version of 1 or 2 (from the low
/// bit of byte 8), its true length and a valid CRC-32, so that the fuzzer
/// reaches the layer records instead of stopping at the checksum. Inputs
/// shorter than the fixed header and checksum are returned unchanged.
pub fn seal_weight_file(data: &[u8]) -> Vec<u8> {
    let mut bytes = data.to_vec();
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
        return bytes;
    }

    bytes[..8].copy_from_slice(&MAGIC);
    let version = 1 + u32::from(bytes[8] & 1);
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    let length = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&length.to_le_bytes());

    let end = bytes.len() - CHECKSUM_LEN;
    let checksum = crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Storage entries `archive/data/0` to `archive/data/{STORAGES - 1}` of [`torch_archive`].
pub const STORAGES: usize = 16;

/// Bytes of each storage entry: room for the tensors of a generator with
/// `nz` 4, `ngf` 2, `nc` 3 and 8x8 images, which the seed pickle describes.
pub const STORAGE_BYTES: usize = 2048;

/// Builds a `torch.save` zip archive with `pickle` as `archive/data.pkl` and
/// [`STORAGES`] float storages of [`STORAGE_BYTES`] bytes, every value 0.5.
///
/// zip entries carry a CRC-32 that the reader checks, so a fuzzer that
/// mutates whole `.pth` files rarely gets a changed pickle past the archive.
/// Building the archive around the fuzzed pickle lets it reach the pickle
/// parser and the tensor lookup.
pub fn torch_archive(pickle: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let storage: Vec<u8> = std::iter::repeat(0.5f32.to_le_bytes()).take(STORAGE_BYTES / 4).flatten().collect();

    // Writing to memory with stored entries fails only on a bug here.
    let mut add = |name: String, content: &[u8]| {
        writer.start_file(name, options).expect("start a zip entry in memory");
        writer.write_all(content).expect("write a zip entry to memory");
    };
    add("archive/data.pkl".to_string(), pickle);
    for key in 0..STORAGES {
        add(format!("archive/data/{key}"), &storage);
    }
    add("archive/version".to_string(), b"3\n");
    writer.finish().expect("finish a zip archive in memory").into_inner()
}
