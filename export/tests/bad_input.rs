//! Randomised damage to every reader's input: weight files, `.pth`,
//! safetensors and ONNX. Each reader must return an error (or, for harmless
//! damage, a valid result) and never panic.
//!
//! These run with plain `cargo test` on the stable toolchain. The cargo-fuzz
//! targets in `fuzz/` drive the same readers with coverage guidance.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use dcgan_export::{read_pytorch_generator, read_weight_file, write_onnx};
use dcgan_runtime::latent::SplitMix64;
use dcgan_runtime::quantized::fold_batch_norm;
use dcgan_runtime::reference::random_weights;
use dcgan_runtime::tract::TractGenerator;
use dcgan_runtime::{weight_file, GeneratorSpec};

const SPEC: GeneratorSpec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
const GOLDEN_PTH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/netG.pth");

/// Damages `bytes` in one of several ways, chosen by `rng`.
fn mutate(bytes: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let pick = |rng: &mut SplitMix64, bound: usize| (rng.next_u64() % bound.max(1) as u64) as usize;
    match rng.next_u64() % 5 {
        0 => out.truncate(pick(rng, bytes.len())),
        1 => {
            for _ in 0..1 + pick(rng, 8) {
                let index = pick(rng, out.len());
                if let Some(byte) = out.get_mut(index) {
                    *byte ^= 1 << pick(rng, 8);
                }
            }
        }
        2 => {
            let index = pick(rng, out.len());
            let random: Vec<u8> = (0..1 + pick(rng, 32)).map(|_| rng.next_u64() as u8).collect();
            out.splice(index..index, random);
        }
        3 => {
            let start = pick(rng, out.len());
            let end = (start + 1 + pick(rng, 64)).min(out.len());
            out.drain(start..end);
        }
        _ => out = (0..pick(rng, 512)).map(|_| rng.next_u64() as u8).collect(),
    }
    out
}

fn weight_file_bytes() -> Vec<u8> {
    let folded = fold_batch_norm(&random_weights(SPEC, 1).unwrap()).unwrap();
    weight_file::write(&folded.quantize(|index| index != 0)).unwrap()
}

#[test]
fn weight_file_reader_survives_damage() {
    let original = weight_file_bytes();
    let mut rng = SplitMix64::for_index(11, 0);
    let mut rejected = 0;
    for _ in 0..3000 {
        let mut damaged = mutate(&original, &mut rng);
        // Half of the cases get a valid checksum, so the parser behind it runs too.
        if rng.next_u64() % 2 == 0 && damaged.len() >= 4 {
            let end = damaged.len() - 4;
            let checksum = weight_file::crc32(&damaged[..end]);
            damaged[end..].copy_from_slice(&checksum.to_le_bytes());
        }
        if weight_file::read(&damaged).is_err() {
            rejected += 1;
        }
    }
    assert!(rejected > 2500, "only {rejected} of 3000 damaged files were rejected");
}

#[test]
fn weight_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let original = weight_file_bytes();
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty.dcgw", Vec::new()),
        ("truncated.dcgw", original[..original.len() / 2].to_vec()),
        ("random.dcgw", (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect()),
        ("flipped.dcgw", {
            let mut bytes = original.clone();
            bytes[100] ^= 4;
            bytes
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = read_weight_file(&path).unwrap_err().to_string();
        assert!(message.contains(name), "{message}");
    }
    let missing = read_weight_file(&dir.path().join("missing.dcgw")).unwrap_err().to_string();
    assert!(missing.contains("missing.dcgw"), "{missing}");
}

/// Rebuilds a `.pth` zip archive with `data.pkl` replaced and every entry stored.
fn with_pickle(pth: &[u8], pickle: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(pth)).unwrap();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        writer.start_file(name.as_str(), options).unwrap();
        let content = if name.ends_with("data.pkl") { pickle } else { &data };
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn original_pickle(pth: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(pth)).unwrap();
    let names: Vec<String> = archive.file_names().map(|name| name.unwrap().to_string()).collect();
    let name = names.into_iter().find(|name| name.ends_with("data.pkl")).unwrap();
    let mut data = Vec::new();
    archive.by_name(&name).unwrap().read_to_end(&mut data).unwrap();
    data
}

fn import_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    match read_pytorch_generator(&path) {
        Ok(_) => Ok(()),
        Err(err) => {
            let message = err.to_string();
            assert!(message.contains(name), "the error does not name the file: {message}");
            Err(message)
        }
    }
}

#[test]
fn pth_reader_survives_damaged_pickles() {
    let dir = tempfile::tempdir().unwrap();
    let pth = std::fs::read(GOLDEN_PTH).unwrap();
    let pickle = original_pickle(&pth);
    assert!(import_bytes(dir.path(), "rebuilt.pth", &with_pickle(&pth, &pickle)).is_ok());

    let mut rng = SplitMix64::for_index(12, 0);
    let mut rejected = 0;
    for _ in 0..400 {
        let damaged = with_pickle(&pth, &mutate(&pickle, &mut rng));
        if import_bytes(dir.path(), "damaged.pth", &damaged).is_err() {
            rejected += 1;
        }
    }
    assert!(rejected > 200, "only {rejected} of 400 damaged pickles were rejected");
}

#[test]
fn pth_and_safetensors_readers_survive_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let pth = std::fs::read(GOLDEN_PTH).unwrap();
    let mut rng = SplitMix64::for_index(13, 0);
    for _ in 0..300 {
        // Damage that leaves the file valid is possible (for example in padding).
        let _ = import_bytes(dir.path(), "damaged.pth", &mutate(&pth, &mut rng));
    }

    let mut safetensors = Vec::new();
    let header = br#"{"main.0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    safetensors.extend_from_slice(&(header.len() as u64).to_le_bytes());
    safetensors.extend_from_slice(header);
    safetensors.extend_from_slice(&[0u8; 16]);
    for _ in 0..1000 {
        assert!(import_bytes(dir.path(), "damaged.safetensors", &mutate(&safetensors, &mut rng)).is_err());
    }
}

#[test]
fn onnx_loader_survives_damaged_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    write_onnx(&random_weights(SPEC, 2).unwrap(), &[], &path).unwrap();
    let original = std::fs::read(&path).unwrap();
    let damaged_path = dir.path().join("damaged.onnx");

    let mut rng = SplitMix64::for_index(14, 0);
    for _ in 0..150 {
        std::fs::write(&damaged_path, mutate(&original, &mut rng)).unwrap();
        if let Err(err) = TractGenerator::load(&damaged_path) {
            let message = err.to_string();
            assert!(message.contains("damaged.onnx"), "{message}");
        }
    }
}
