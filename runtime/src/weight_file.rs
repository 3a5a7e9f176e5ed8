//! The compact weight file of a folded, optionally int8 generator.
//!
//! The byte layout is documented in `docs/weight-format.md`. In short, all
//! integers and floats are little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic [`MAGIC`] |
//! | 8 | 4 | format version, [`VERSION`] |
//! | 12 | 4 | flags, 0 |
//! | 16 | 8 | total file length in bytes, checksum included |
//! | 24 | 4 × 5 | `nz`, `ngf`, `nc`, `image_size`, layer count |
//! | 44 | … | one record per layer |
//! | end − 4 | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! A layer record is `in_channels`, `out_channels`, `stride`, `padding` (u32
//! each), the kernel type (u8: 0 = f32, 1 = int8), the activation (u8: 0 =
//! ReLU, 1 = Tanh), two zero bytes, then for an f32 kernel its
//! `in * out * 16` f32 values, or for an int8 kernel `out` f32 scales followed
//! by `in * out * 16` int8 values, and finally `out` f32 biases.
//!
//! Version 2 adds, after the last layer record, the activation scales: a
//! u32 count (0, or the layer count) and that many f32 values, the int8
//! scale of each layer's input. Version 1 files have no such section and
//! are still read, with no activation scales.
//!
//! [`read()`] checks, in this order: length of the fixed header, magic,
//! version, declared length, checksum, then every record against the
//! architecture the header describes. Every failure is a [`WeightFileError`].

use alloc::vec::Vec;
use core::fmt;

use crate::quantized::{Kernel, QuantizedError, QuantizedGenerator, QuantizedLayer};
use crate::spec::{Activation, GeneratorSpec, LayerSpec};

/// First 8 bytes of every weight file.
pub const MAGIC: [u8; 8] = *b"DCGANWF\0";

/// Format version this module writes.
pub const VERSION: u32 = 2;

/// Oldest format version this module reads.
pub const MIN_VERSION: u32 = 1;

/// Bytes of the fixed header, before the first layer record.
pub const HEADER_LEN: usize = 44;

/// Bytes of a layer record before its tensors.
pub const LAYER_HEADER_LEN: usize = 20;

/// Bytes of the trailing CRC-32.
pub const CHECKSUM_LEN: usize = 4;

/// Kernel type byte of an f32 kernel.
pub const KERNEL_F32: u8 = 0;
/// Kernel type byte of an int8 kernel.
pub const KERNEL_INT8: u8 = 1;
/// Activation byte of ReLU.
pub const ACTIVATION_RELU: u8 = 0;
/// Activation byte of Tanh.
pub const ACTIVATION_TANH: u8 = 1;

/// A weight file that [`read()`] rejects.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightFileError {
    /// The file is shorter than the fixed header or than its declared length.
    Truncated {
        /// Bytes the header says (or the fixed header needs).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file does not start with [`MAGIC`].
    Magic {
        /// The first bytes of the file (up to 8).
        found: Vec<u8>,
    },
    /// The format version is not between [`MIN_VERSION`] and [`VERSION`].
    Version {
        /// The version in the file.
        found: u32,
    },
    /// The file is longer than its declared length.
    TrailingBytes {
        /// Declared length.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The stored CRC-32 differs from the one computed over the file.
    Checksum {
        /// The stored value.
        stored: u32,
        /// The computed value.
        computed: u32,
    },
    /// A header or layer field has a value this version does not support.
    Field {
        /// The field, for example `layer 2 kernel type`.
        field: &'static str,
        /// Layer index, when the field belongs to a layer.
        layer: Option<usize>,
        /// The value in the file.
        found: u64,
        /// The value or range expected.
        expected: &'static str,
    },
    /// A layer record's geometry differs from the architecture the header describes.
    Geometry {
        /// Layer index, from 0 at the latent.
        layer: usize,
        /// `[in, out, stride, padding]` the header's architecture needs.
        expected: [usize; 4],
        /// `[in, out, stride, padding]` in the file.
        found: [usize; 4],
    },
    /// The tensors fail [`QuantizedGenerator::validate`].
    Tensors(QuantizedError),
}

impl fmt::Display for WeightFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightFileError::Truncated { expected, found } => {
                write!(f, "truncated: expected {expected} bytes, found {found}; export the file again")
            }
            WeightFileError::Magic { found } => write!(
                f,
                "not a dcgan-edge weight file: it starts with {found:02x?} instead of {MAGIC:02x?}; write one with `dcgan export --int8 FILE`"
            ),
            WeightFileError::Version { found } => write!(
                f,
                "weight format version {found} is not supported: this build reads versions {MIN_VERSION} to {VERSION}; export the file again with this version of dcgan"
            ),
            WeightFileError::TrailingBytes { expected, found } => {
                write!(f, "{found} bytes, but its header declares {expected}: the file was appended to or corrupted")
            }
            WeightFileError::Checksum { stored, computed } => write!(
                f,
                "bad checksum: stored CRC-32 {stored:#010x}, computed {computed:#010x}; the file is corrupted, export it again"
            ),
            WeightFileError::Field { field, layer: Some(layer), found, expected } => {
                write!(f, "layer {layer} {field} is {found}, expected {expected}")
            }
            WeightFileError::Field { field, layer: None, found, expected } => {
                write!(f, "{field} is {found}, expected {expected}")
            }
            WeightFileError::Geometry { layer, expected, found } => write!(
                f,
                "layer {layer} has [in, out, stride, padding] {found:?}, but the header's architecture needs {expected:?}"
            ),
            WeightFileError::Tensors(err) => write!(f, "invalid tensors: {err}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WeightFileError {}

/// CRC-32 with the IEEE polynomial (reflected 0xEDB88320), as zlib, PNG and
/// `cksum -a crc32b` compute it.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc32_table();
    let crc = bytes.iter().fold(!0u32, |crc, &byte| TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8));
    !crc
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut value = index as u32;
        let mut bit = 0;
        while bit < 8 {
            value = if value & 1 == 1 { (value >> 1) ^ 0xEDB8_8320 } else { value >> 1 };
            bit += 1;
        }
        table[index] = value;
        index += 1;
    }
    table
}

/// Encodes a folded generator as a weight file.
///
/// # Errors
///
/// The errors of [`QuantizedGenerator::validate`].
pub fn write(generator: &QuantizedGenerator) -> Result<Vec<u8>, QuantizedError> {
    generator.validate()?;
    let spec = generator.spec;
    let specs = spec.layers();

    // Stage 1: fixed header with a placeholder length.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&MAGIC);
    put_u32(&mut bytes, VERSION);
    put_u32(&mut bytes, 0);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    for value in [spec.nz, spec.ngf, spec.nc, spec.image_size, specs.len()] {
        put_u32(&mut bytes, value as u32);
    }

    // Stage 2: layer records.
    for (layer_spec, layer) in specs.iter().zip(&generator.layers) {
        write_layer(&mut bytes, layer_spec, layer);
    }
    put_u32(&mut bytes, generator.activation_scales.len() as u32);
    put_f32s(&mut bytes, &generator.activation_scales);

    // Stage 3: total length, then the checksum over everything before it.
    let total = (bytes.len() + CHECKSUM_LEN) as u64;
    bytes[16..24].copy_from_slice(&total.to_le_bytes());
    let checksum = crc32(&bytes);
    put_u32(&mut bytes, checksum);
    Ok(bytes)
}

fn write_layer(bytes: &mut Vec<u8>, spec: &LayerSpec, layer: &QuantizedLayer) {
    for value in [spec.in_channels, spec.out_channels, spec.stride, spec.padding] {
        put_u32(bytes, value as u32);
    }
    let kernel_type = if layer.kernel.is_int8() { KERNEL_INT8 } else { KERNEL_F32 };
    let activation = match spec.activation {
        Activation::Relu => ACTIVATION_RELU,
        Activation::Tanh => ACTIVATION_TANH,
    };
    bytes.extend_from_slice(&[kernel_type, activation, 0, 0]);

    match &layer.kernel {
        Kernel::F32(values) => put_f32s(bytes, values),
        Kernel::Int8 { values, scales } => {
            put_f32s(bytes, scales);
            bytes.extend(values.iter().map(|&v| v as u8));
        }
    }
    put_f32s(bytes, &layer.bias);
}

fn put_u32(bytes: &mut Vec<u8>, value: u32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

fn put_f32s(bytes: &mut Vec<u8>, values: &[f32]) {
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
}

/// Decodes a weight file.
///
/// # Errors
///
/// A [`WeightFileError`] for any file [`write()`] could not have produced: a
/// wrong magic, an unknown version, a length other than the declared one, a
/// bad checksum, a field out of range, or tensors that fail validation.
pub fn read(bytes: &[u8]) -> Result<QuantizedGenerator, WeightFileError> {
    let version = check_envelope(bytes)?;

    // The envelope is intact, so every record lies within `body`, unless the
    // writer itself was wrong; the cursor still checks every read.
    let body = &bytes[..bytes.len() - CHECKSUM_LEN];
    let mut cursor = Cursor { bytes: body, position: 24 };
    let spec = read_spec(&mut cursor)?;
    let layer_count = cursor.u32()? as usize;
    let specs = spec.layers();
    if layer_count != specs.len() {
        return Err(field_error("layer count", None, layer_count as u64, "log2(image_size) - 1"));
    }

    let layers = specs
        .iter()
        .enumerate()
        .map(|(index, layer_spec)| read_layer(&mut cursor, index, layer_spec))
        .collect::<Result<Vec<_>, _>>()?;
    let activation_scales = if version >= 2 { read_activation_scales(&mut cursor, specs.len())? } else { Vec::new() };
    if cursor.position != body.len() {
        let found = body.len() as u64;
        return Err(WeightFileError::TrailingBytes { expected: cursor.position as u64, found });
    }

    let generator = QuantizedGenerator { spec, layers, activation_scales };
    generator.validate().map_err(WeightFileError::Tensors)?;
    Ok(generator)
}

/// Reads the activation-scale section of a version 2 file.
fn read_activation_scales(cursor: &mut Cursor<'_>, layers: usize) -> Result<Vec<f32>, WeightFileError> {
    let count = cursor.u32()? as usize;
    if count != 0 && count != layers {
        return Err(field_error("activation scale count", None, count as u64, "0 or the layer count"));
    }
    cursor.f32s(count)
}

/// Checks the magic, version, declared length and checksum, and returns the version.
fn check_envelope(bytes: &[u8]) -> Result<u32, WeightFileError> {
    let found = bytes.len() as u64;
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(WeightFileError::Magic { found: bytes[..magic_len].to_vec() });
    }
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(WeightFileError::Truncated { expected: (HEADER_LEN + CHECKSUM_LEN) as u64, found });
    }

    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(WeightFileError::Version { found: version });
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(&bytes[16..24]);
    let expected = u64::from_le_bytes(length);
    if found < expected {
        return Err(WeightFileError::Truncated { expected, found });
    }
    if found > expected {
        return Err(WeightFileError::TrailingBytes { expected, found });
    }

    let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32(body);
    if stored != computed {
        return Err(WeightFileError::Checksum { stored, computed });
    }
    Ok(version)
}

fn read_spec(cursor: &mut Cursor<'_>) -> Result<GeneratorSpec, WeightFileError> {
    let mut values = [0usize; 4];
    for value in &mut values {
        *value = cursor.u32()? as usize;
    }
    let [nz, ngf, nc, image_size] = values;
    let spec = GeneratorSpec { nz, ngf, nc, image_size };
    spec.validate().map_err(|err| WeightFileError::Tensors(QuantizedError::Spec(err)))?;
    Ok(spec)
}

fn read_layer(cursor: &mut Cursor<'_>, index: usize, spec: &LayerSpec) -> Result<QuantizedLayer, WeightFileError> {
    let mut geometry = [0usize; 4];
    for value in &mut geometry {
        *value = cursor.u32()? as usize;
    }
    let expected = [spec.in_channels, spec.out_channels, spec.stride, spec.padding];
    if geometry != expected {
        return Err(WeightFileError::Geometry { layer: index, expected, found: geometry });
    }

    let [kernel_type, activation, reserved_low, reserved_high] = cursor.array::<4>()?;
    let expected_activation = match spec.activation {
        Activation::Relu => ACTIVATION_RELU,
        Activation::Tanh => ACTIVATION_TANH,
    };
    if activation != expected_activation {
        let expected = if expected_activation == ACTIVATION_RELU { "0 (ReLU)" } else { "1 (Tanh)" };
        return Err(field_error("activation", Some(index), activation.into(), expected));
    }
    if reserved_low != 0 || reserved_high != 0 {
        let found = u64::from(u16::from_le_bytes([reserved_low, reserved_high]));
        return Err(field_error("reserved bytes", Some(index), found, "0"));
    }

    let (weights, channels) = (spec.weight_len(), spec.out_channels);
    let kernel = match kernel_type {
        KERNEL_F32 => Kernel::F32(cursor.f32s(weights)?),
        KERNEL_INT8 => {
            let scales = cursor.f32s(channels)?;
            let values = cursor.take(weights)?.iter().map(|&byte| byte as i8).collect();
            Kernel::Int8 { values, scales }
        }
        other => return Err(field_error("kernel type", Some(index), other.into(), "0 (f32) or 1 (int8)")),
    };
    let bias = cursor.f32s(channels)?;
    Ok(QuantizedLayer { kernel, bias })
}

fn field_error(field: &'static str, layer: Option<usize>, found: u64, expected: &'static str) -> WeightFileError {
    WeightFileError::Field { field, layer, found, expected }
}

/// Reads little-endian values from the checked body of a weight file.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], WeightFileError> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            let expected = (self.position as u64).saturating_add(count as u64);
            return Err(WeightFileError::Truncated { expected, found: self.bytes.len() as u64 });
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WeightFileError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u32(&mut self) -> Result<u32, WeightFileError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn f32s(&mut self, count: usize) -> Result<Vec<f32>, WeightFileError> {
        let bytes = self.take(count.checked_mul(4).unwrap_or(usize::MAX))?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

/// A weight file that could not be loaded, naming the file.
#[cfg(feature = "std")]
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read weight file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a valid weight file.
    #[error("weight file {}: {error}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// The problem found in it.
        error: WeightFileError,
    },
}

/// Reads and decodes the weight file at `path`.
///
/// # Errors
///
/// [`LoadError::Read`] when the file cannot be read and
/// [`LoadError::Invalid`] with the [`read()`] error otherwise.
#[cfg(feature = "std")]
pub fn load(path: &std::path::Path) -> Result<QuantizedGenerator, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    read(&bytes).map_err(|error| LoadError::Invalid { path: path.to_path_buf(), error })
}

/// Returns the format version a weight file declares at offset 8, or `None`
/// when `bytes` is shorter than that field. It does not validate the file.
pub fn declared_version(bytes: &[u8]) -> Option<u32> {
    let field = bytes.get(8..12)?;
    <[u8; 4]>::try_from(field).ok().map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::fold_batch_norm;
    use crate::reference::random_weights;

    fn sample() -> QuantizedGenerator {
        let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
        fold_batch_norm(&random_weights(spec, 3).unwrap()).unwrap().quantize(|index| index != 0)
    }

    /// Recomputes the checksum after an edit of the body.
    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - CHECKSUM_LEN;
        let checksum = crc32(&bytes[..end]);
        bytes[end..].copy_from_slice(&checksum.to_le_bytes());
    }

    #[test]
    fn crc32_matches_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_keeps_every_value() {
        let generator = sample();
        let bytes = write(&generator).unwrap();
        assert_eq!(read(&bytes).unwrap(), generator);
    }

    #[test]
    fn layout_matches_documented_offsets() {
        let generator = sample();
        let bytes = write(&generator).unwrap();
        assert_eq!(&bytes[..8], b"DCGANWF\0");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), bytes.len() as u64);
        // Layer 0 (f32): 8 x 8 x 16 kernel floats and 8 biases; layer 1 (int8): 4 scales,
        // 8 x 4 x 16 bytes, 4 biases; layer 2 (int8): 3 scales, 4 x 3 x 16 bytes, 3 biases.
        let layer0 = LAYER_HEADER_LEN + 4 * (8 * 8 * 16 + 8);
        let layer1 = LAYER_HEADER_LEN + 4 * 4 + 8 * 4 * 16 + 4 * 4;
        let layer2 = LAYER_HEADER_LEN + 4 * 3 + 4 * 3 * 16 + 4 * 3;
        // Version 2: a u32 count of activation scales, 0 here.
        let scales = 4;
        assert_eq!(bytes.len(), HEADER_LEN + layer0 + layer1 + layer2 + scales + CHECKSUM_LEN);
        assert_eq!(bytes.len(), 4_996 + 4, "the example in docs/weight-format.md");
        assert_eq!(bytes[HEADER_LEN + 16], KERNEL_F32);
        assert_eq!(bytes[HEADER_LEN + layer0 + 16], KERNEL_INT8);
        assert_eq!(bytes[HEADER_LEN + layer0 + layer1 + 17], ACTIVATION_TANH);
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut bytes = write(&sample()).unwrap();
        bytes[0] = b'X';
        assert!(matches!(read(&bytes), Err(WeightFileError::Magic { .. })));
        assert!(matches!(read(b"PK\x03\x04"), Err(WeightFileError::Magic { .. })));
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut bytes = write(&sample()).unwrap();
        bytes[8] = 3;
        assert_eq!(read(&bytes), Err(WeightFileError::Version { found: 3 }));
        bytes[8] = 0;
        assert_eq!(read(&bytes), Err(WeightFileError::Version { found: 0 }));
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let mut bytes = write(&sample()).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        assert!(matches!(read(&bytes), Err(WeightFileError::Checksum { .. })));
    }

    #[test]
    fn truncated_and_empty_files_are_rejected() {
        let bytes = write(&sample()).unwrap();
        assert!(matches!(read(&[]), Err(WeightFileError::Truncated { .. })));
        for length in [4, 8, 20, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
            let result = read(&bytes[..length]);
            assert!(matches!(result, Err(WeightFileError::Truncated { .. })), "length {length}: {result:?}");
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = write(&sample()).unwrap();
        bytes.push(0);
        assert!(matches!(read(&bytes), Err(WeightFileError::TrailingBytes { .. })));
    }

    #[test]
    fn unknown_kernel_type_is_rejected() {
        let mut bytes = write(&sample()).unwrap();
        bytes[HEADER_LEN + 16] = 7;
        reseal(&mut bytes);
        let err = read(&bytes).unwrap_err();
        assert!(matches!(err, WeightFileError::Field { field: "kernel type", layer: Some(0), found: 7, .. }), "{err}");
    }

    #[test]
    fn wrong_geometry_is_rejected() {
        let mut bytes = write(&sample()).unwrap();
        bytes[HEADER_LEN] = 9;
        reseal(&mut bytes);
        assert!(matches!(read(&bytes), Err(WeightFileError::Geometry { layer: 0, .. })));
    }

    #[test]
    fn zero_scale_is_rejected() {
        let generator = sample();
        let mut bytes = write(&generator).unwrap();
        let layer0 = LAYER_HEADER_LEN + 4 * (8 * 8 * 16 + 8);
        bytes[HEADER_LEN + layer0 + LAYER_HEADER_LEN..][..4].fill(0);
        reseal(&mut bytes);
        let err = read(&bytes).unwrap_err();
        assert!(matches!(err, WeightFileError::Tensors(QuantizedError::Value { layer: 1, .. })), "{err}");
    }
}
