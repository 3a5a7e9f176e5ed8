//! One generator type over both backends: tract for ONNX files, the core
//! ([`crate::engine`]) for weight files.
//!
//! [`Generator::load`] picks the backend from the file's first bytes (a
//! weight file starts with [`weight_file::MAGIC`], an ONNX model with the
//! protobuf tag of its `ir_version`) or from [`LoadOptions::backend`].
//! Which file kinds a build can read depends on its features: the core is
//! always built, tract only with the `tract` feature.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::engine::{Engine, EngineConfig, EngineError, DEFAULT_MEMORY_LIMIT};
use crate::latent::fill_latent;
use crate::pixel::chw_to_rgb888;
use crate::quantized::QuantizedGenerator;
#[cfg(feature = "tract")]
use crate::tract::{RuntimeError, TractGenerator};
use crate::weight_file;

/// The first byte of an ONNX file: the protobuf tag of field 1
/// (`ir_version`, a varint), which every ONNX writer puts first.
const ONNX_FIRST_BYTE: u8 = 0x08;

/// What runs a generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// tract, which reads ONNX files (f32 and QDQ int8).
    Tract,
    /// The built-in core, which reads dcgan-edge weight files (f32 and int8).
    Core,
}

impl BackendKind {
    /// Returns the name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Tract => "tract",
            BackendKind::Core => "core",
        }
    }

    /// Returns whether this build contains the backend.
    pub fn is_built(self) -> bool {
        match self {
            BackendKind::Tract => cfg!(feature = "tract"),
            BackendKind::Core => true,
        }
    }

    /// Returns the file kind the backend reads.
    pub fn reads(self) -> FileKind {
        match self {
            BackendKind::Tract => FileKind::Onnx,
            BackendKind::Core => FileKind::WeightFile,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "tract" => Ok(BackendKind::Tract),
            "core" => Ok(BackendKind::Core),
            _ => Err(format!("unknown backend {text:?}: use tract (ONNX files) or core (weight files)")),
        }
    }
}

/// The kind of a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An ONNX model, as `dcgan export --onnx` writes.
    Onnx,
    /// A dcgan-edge weight file, as `dcgan export --int8` writes.
    WeightFile,
}

impl FileKind {
    /// Returns the backend that reads this kind of file.
    pub fn backend(self) -> BackendKind {
        match self {
            FileKind::Onnx => BackendKind::Tract,
            FileKind::WeightFile => BackendKind::Core,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Onnx => "an ONNX model",
            FileKind::WeightFile => "a dcgan-edge weight file",
        })
    }
}

/// A failure to pick a backend, load a model or run it; every variant names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The model file does not exist.
    #[error("model file {} not found: export one with `dcgan export RUN_DIR --onnx FILE` or `--int8 FILE`", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The model file could not be read.
    #[error("failed to read model file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither an ONNX model nor a weight file.
    #[error(
        "{} is neither an ONNX model nor a dcgan-edge weight file (it starts with {found:02x?}): \
         the tract backend reads ONNX files and the core backend reads weight files from `dcgan export --int8`",
        path.display()
    )]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        found: Vec<u8>,
    },
    /// The chosen or detected backend is not part of this build.
    #[error(
        "{} is {kind}, which needs the {backend} backend, but this dcgan-edge was built without it: \
         rebuild with `--features {backend}`, or pass a weight file from `dcgan export --int8` to the core backend",
        path.display()
    )]
    NotBuilt {
        /// The file.
        path: PathBuf,
        /// The file's kind.
        kind: FileKind,
        /// The missing backend.
        backend: BackendKind,
    },
    /// `--backend` names a backend that cannot read this kind of file.
    #[error(
        "the {backend} backend cannot read {}, which is {kind}: the tract backend reads ONNX files, \
         the core backend reads weight files; drop --backend to pick it from the file",
        path.display()
    )]
    WrongBackend {
        /// The file.
        path: PathBuf,
        /// The file's kind.
        kind: FileKind,
        /// The requested backend.
        backend: BackendKind,
    },
    /// The weight file is invalid.
    #[error(transparent)]
    WeightFile(#[from] weight_file::LoadError),
    /// The core rejected the generator or a call.
    #[error("{}: {source}", path.display())]
    Engine {
        /// The file.
        path: PathBuf,
        /// The core's error.
        #[source]
        source: EngineError,
    },
    /// tract failed to load or run the model.
    #[cfg(feature = "tract")]
    #[error(transparent)]
    Tract(#[from] RuntimeError),
}

/// How [`Generator::load`] loads a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The backend to use; `None` picks it from the file.
    pub backend: Option<BackendKind>,
    /// Largest number of bytes the core may use for weights and scratch.
    pub memory_limit: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { backend: None, memory_limit: DEFAULT_MEMORY_LIMIT }
    }
}

/// Parses a memory size: bytes, or a number with a `K`, `M` or `G` suffix
/// (powers of 1024, an optional `iB` or `B` after it), for example `64M`
/// or `512KiB`.
///
/// # Errors
///
/// A message naming the text and the accepted forms.
pub fn parse_memory_size(text: &str) -> Result<usize, String> {
    let invalid = || format!("invalid memory size {text:?}: use bytes or a number with K, M or G, for example 64M");
    let trimmed = text.trim();
    let without_unit = trimmed.strip_suffix("iB").or_else(|| trimmed.strip_suffix('B')).unwrap_or(trimmed);
    let (number, shift) = match without_unit.char_indices().last() {
        Some((at, 'K' | 'k')) => (&without_unit[..at], 10),
        Some((at, 'M' | 'm')) => (&without_unit[..at], 20),
        Some((at, 'G' | 'g')) => (&without_unit[..at], 30),
        _ => (without_unit, 0),
    };
    let value: usize = number.trim().parse().map_err(|_| invalid())?;
    value.checked_mul(1usize << shift).ok_or_else(invalid)
}

/// Reads the first bytes of `path` and returns its file kind.
///
/// A file that starts with neither signature counts as ONNX when its name
/// ends in `.onnx`, so tract reports what is wrong with it.
///
/// # Errors
///
/// [`BackendError::NotFound`], [`BackendError::Read`] and
/// [`BackendError::UnknownKind`].
pub fn detect_file_kind(path: &Path) -> Result<FileKind, BackendError> {
    let mut head = Vec::with_capacity(weight_file::MAGIC.len());
    let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
    file.take(weight_file::MAGIC.len() as u64).read_to_end(&mut head).map_err(|source| io_error(path, source))?;

    if head.starts_with(&weight_file::MAGIC) {
        Ok(FileKind::WeightFile)
    } else if head.first() == Some(&ONNX_FIRST_BYTE) || path.extension().is_some_and(|ext| ext == "onnx") {
        Ok(FileKind::Onnx)
    } else {
        Err(BackendError::UnknownKind { path: path.to_path_buf(), found: head })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> BackendError {
    if source.kind() == std::io::ErrorKind::NotFound {
        BackendError::NotFound { path: path.to_path_buf() }
    } else {
        BackendError::Read { path: path.to_path_buf(), source }
    }
}

/// A weight file run by the core, with the buffers of one face.
#[derive(Debug)]
pub struct CoreGenerator {
    path: PathBuf,
    generator: QuantizedGenerator,
    engine: Engine,
    scratch: Vec<f32>,
    image: Vec<f32>,
}

impl CoreGenerator {
    /// Loads a weight file and builds the core's engine for it.
    ///
    /// # Errors
    ///
    /// [`BackendError::WeightFile`] for an unreadable or invalid file and
    /// [`BackendError::Engine`] when the generator exceeds `memory_limit`.
    pub fn load(path: &Path, memory_limit: usize) -> Result<Self, BackendError> {
        if !path.exists() {
            return Err(BackendError::NotFound { path: path.to_path_buf() });
        }
        let generator = weight_file::load(path)?;
        let engine = Engine::new(&generator, &EngineConfig { memory_limit })
            .map_err(|source| BackendError::Engine { path: path.to_path_buf(), source })?;
        let scratch = vec![0.0; engine.scratch_len()];
        let image = vec![0.0; engine.output_len()];
        Ok(Self { path: path.to_path_buf(), generator, engine, scratch, image })
    }

    /// The folded generator as read from the file.
    pub fn generator(&self) -> &QuantizedGenerator {
        &self.generator
    }

    /// The engine that runs it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs one latent into RGB888 bytes.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[nz]`.
    /// - `rgb`: `[image_size, image_size, 3]` bytes, overwritten.
    ///
    /// # Errors
    ///
    /// [`BackendError::Engine`] for wrong buffer lengths or a generator
    /// that does not make 3-channel images.
    pub fn generate_face_into(&mut self, latent: &[f32], rgb: &mut [u8]) -> Result<(), BackendError> {
        let spec = self.engine.spec();
        let engine_error = |source| BackendError::Engine { path: self.path.clone(), source };
        if spec.nc != 3 {
            return Err(engine_error(EngineError::Channels { found: spec.nc }));
        }
        let expected = 3 * spec.image_size * spec.image_size;
        if rgb.len() != expected {
            return Err(engine_error(EngineError::Length { buffer: "pixel", expected, found: rgb.len() }));
        }

        self.engine.generate_into(latent, &mut self.scratch, &mut self.image).map_err(engine_error)?;
        chw_to_rgb888(&self.image, spec.image_size, rgb);
        Ok(())
    }
}

/// A loaded generator on either backend.
pub enum Generator {
    /// An ONNX model run by tract.
    #[cfg(feature = "tract")]
    Tract(TractGenerator),
    /// A weight file run by the core.
    Core(CoreGenerator),
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator").field("backend", &self.backend()).field("path", &self.path()).finish()
    }
}

#[cfg(feature = "tract")]
impl From<TractGenerator> for Generator {
    fn from(generator: TractGenerator) -> Self {
        Generator::Tract(generator)
    }
}

impl From<CoreGenerator> for Generator {
    fn from(generator: CoreGenerator) -> Self {
        Generator::Core(generator)
    }
}

impl Generator {
    /// Loads `path` with the backend that `options` requests, or else the one
    /// its first bytes call for.
    ///
    /// # Errors
    ///
    /// [`BackendError::NotBuilt`] when that backend is not in this build,
    /// [`BackendError::WrongBackend`] when `options.backend` cannot read the
    /// file, and the load errors of the backend.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, BackendError> {
        let kind = detect_file_kind(path)?;
        let backend = options.backend.unwrap_or(kind.backend());
        if backend.reads() != kind {
            return Err(BackendError::WrongBackend { path: path.to_path_buf(), kind, backend });
        }
        if !backend.is_built() {
            return Err(BackendError::NotBuilt { path: path.to_path_buf(), kind, backend });
        }

        match backend {
            BackendKind::Core => Ok(Generator::Core(CoreGenerator::load(path, options.memory_limit)?)),
            #[cfg(feature = "tract")]
            BackendKind::Tract => Ok(Generator::Tract(TractGenerator::load(path)?)),
            #[cfg(not(feature = "tract"))]
            BackendKind::Tract => Err(BackendError::NotBuilt { path: path.to_path_buf(), kind, backend }),
        }
    }

    /// The backend running this generator.
    pub fn backend(&self) -> BackendKind {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(_) => BackendKind::Tract,
            Generator::Core(_) => BackendKind::Core,
        }
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => generator.path(),
            Generator::Core(generator) => &generator.path,
        }
    }

    /// Length of one latent vector.
    pub fn nz(&self) -> usize {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => generator.nz(),
            Generator::Core(generator) => generator.engine.spec().nz,
        }
    }

    /// Image channels.
    pub fn channels(&self) -> usize {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => generator.channels(),
            Generator::Core(generator) => generator.engine.spec().nc,
        }
    }

    /// Image height and width in pixels.
    pub fn image_size(&self) -> usize {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => generator.image_size(),
            Generator::Core(generator) => generator.engine.spec().image_size,
        }
    }

    /// Runs one latent into RGB888 bytes.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[nz]`.
    /// - `rgb`: `[image_size, image_size, 3]` bytes, overwritten.
    ///
    /// # Errors
    ///
    /// The backend's errors for wrong lengths or a failed run.
    pub fn generate_face_into(&mut self, latent: &[f32], rgb: &mut [u8]) -> Result<(), BackendError> {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => Ok(generator.generate_face_into(latent, rgb)?),
            Generator::Core(generator) => generator.generate_face_into(latent, rgb),
        }
    }

    /// Generates faces `first..first + count` of `seed` as RGB888 images,
    /// `batch_size` faces per tract run (the core runs one at a time).
    ///
    /// # Shapes
    ///
    /// - returns: `count` vectors of `[image_size, image_size, 3]` bytes.
    ///
    /// # Errors
    ///
    /// The backend's errors.
    pub fn generate_faces(
        &mut self,
        seed: u64,
        first: u64,
        count: usize,
        batch_size: usize,
    ) -> Result<Vec<Vec<u8>>, BackendError> {
        match self {
            #[cfg(feature = "tract")]
            Generator::Tract(generator) => Ok(generator.generate_faces(seed, first, count, batch_size)?),
            Generator::Core(generator) => {
                let _ = batch_size;
                let spec = generator.engine.spec();
                let mut latent = vec![0.0; spec.nz];
                let mut faces = Vec::with_capacity(count);
                for offset in 0..count as u64 {
                    fill_latent(seed, first.wrapping_add(offset), &mut latent);
                    let mut rgb = vec![0; 3 * spec.image_size * spec.image_size];
                    generator.generate_face_into(&latent, &mut rgb)?;
                    faces.push(rgb);
                }
                Ok(faces)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::fold_batch_norm;
    use crate::reference::random_weights;
    use crate::spec::GeneratorSpec;

    fn weight_file_at(dir: &Path) -> PathBuf {
        let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
        let generator = fold_batch_norm(&random_weights(spec, 2).unwrap()).unwrap().quantize(|_| true);
        let path = dir.join("g.dcgw");
        std::fs::write(&path, weight_file::write(&generator).unwrap()).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dcgan-backend-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn memory_sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_memory_size("1000"), Ok(1000));
        assert_eq!(parse_memory_size("64M"), Ok(64 << 20));
        assert_eq!(parse_memory_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_memory_size("2G"), Ok(2 << 30));
        assert!(parse_memory_size("lots").unwrap_err().contains("\"lots\""));
        assert!(parse_memory_size("").is_err());
    }

    #[test]
    fn kinds_are_detected_from_first_bytes() {
        let dir = temp_dir("kinds");
        let weights = weight_file_at(&dir);
        assert_eq!(detect_file_kind(&weights).unwrap(), FileKind::WeightFile);

        let onnx = dir.join("model.bin");
        std::fs::write(&onnx, [0x08, 0x08, 0x12]).unwrap();
        assert_eq!(detect_file_kind(&onnx).unwrap(), FileKind::Onnx);

        let text = dir.join("notes.txt");
        std::fs::write(&text, b"hello").unwrap();
        let err = detect_file_kind(&text).unwrap_err();
        assert!(matches!(err, BackendError::UnknownKind { .. }), "{err:?}");
        assert!(err.to_string().contains("notes.txt"), "{err}");

        let err = detect_file_kind(&dir.join("missing.dcgw")).unwrap_err();
        assert!(matches!(err, BackendError::NotFound { .. }), "{err:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn core_generates_what_the_engine_generates() {
        let dir = temp_dir("core");
        let path = weight_file_at(&dir);
        let mut generator = Generator::load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(generator.backend(), BackendKind::Core);
        assert_eq!((generator.nz(), generator.channels(), generator.image_size()), (8, 3, 16));

        let faces = generator.generate_faces(4, 2, 2, 16).unwrap();
        // Without the tract feature the core is the only variant.
        #[allow(irrefutable_let_patterns)]
        let Generator::Core(core) = &generator else { panic!("expected the core backend") };
        let mut scratch = vec![0.0; core.engine().scratch_len()];
        let mut expected = vec![0u8; 16 * 16 * 3];
        core.engine().generate_face(4, 3, &mut scratch, crate::engine::PixelFormat::Rgb888, &mut expected).unwrap();
        assert_eq!(faces[1], expected);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wrong_backend_and_memory_limit_are_errors() {
        let dir = temp_dir("wrong");
        let path = weight_file_at(&dir);
        let options = LoadOptions { backend: Some(BackendKind::Tract), ..LoadOptions::default() };
        let err = Generator::load(&path, &options).unwrap_err();
        assert!(matches!(err, BackendError::WrongBackend { .. }), "{err:?}");
        assert!(err.to_string().contains("g.dcgw"), "{err}");

        let options = LoadOptions { memory_limit: 1000, ..LoadOptions::default() };
        let err = Generator::load(&path, &options).unwrap_err();
        assert!(matches!(err, BackendError::Engine { source: EngineError::MemoryLimit { .. }, .. }), "{err:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
