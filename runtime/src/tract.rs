//! tract backend for DCGAN generator ONNX files.
//!
//! [`TractGenerator`] loads any ONNX graph that maps a latent `[N, nz, 1, 1]`
//! to an image batch `[N, C, S, S]`, such as the files `dcgan export` writes or
//! a PyTorch export of the tutorial's `netG`. tract runs a plan whose shapes are
//! all concrete noticeably faster than one with a symbolic batch, so the
//! generator keeps one optimised plan per batch size it has been asked for.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimensionValue;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::{ModelProto, ValueInfoProto};
use tract_onnx::prelude::*;

use crate::latent::fill_latents;
use crate::pixel::{chw_to_rgb888, to_u8};

/// ONNX `metadata_props` key: latent length.
pub const META_NZ: &str = "nz";
/// ONNX `metadata_props` key: feature maps in the generator's last hidden layer.
pub const META_NGF: &str = "ngf";
/// ONNX `metadata_props` key: image channels.
pub const META_NC: &str = "nc";
/// ONNX `metadata_props` key: image height and width in pixels.
pub const META_IMAGE_SIZE: &str = "image_size";
/// ONNX `metadata_props` key: where the model was trained from.
pub const META_TRAINED_FROM: &str = "trained_from";
/// ONNX `metadata_props` key: version of the dcgan-edge exporter.
pub const META_PRODUCER_VERSION: &str = "producer_version";

/// A failure to load or run a generator ONNX file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model file does not exist.
    #[error("model file {} not found: export one with `dcgan export RUN_DIR --onnx FILE`", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The model file exists but could not be read.
    #[error("failed to read model file {}: {source}", path.display())]
    Read {
        /// The unreadable file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not an ONNX model.
    #[error(
        "{} is not an ONNX model ({reason}): export it again with `dcgan export --onnx`, \
         or pass a weight file from `dcgan export --int8` to the core backend",
        path.display()
    )]
    NotOnnx {
        /// The rejected file.
        path: PathBuf,
        /// The decoding failure.
        reason: String,
    },
    /// The ONNX model's inputs, outputs or metadata are not a generator's.
    #[error("{} is not a DCGAN generator: {reason}", path.display())]
    NotGenerator {
        /// The rejected file.
        path: PathBuf,
        /// The mismatch, naming the input, output or metadata entry.
        reason: String,
    },
    /// tract failed to analyse, optimise or run the graph.
    #[error("tract failed on {} while {stage}: {message}", path.display())]
    Tract {
        /// The model file.
        path: PathBuf,
        /// The step that failed, for example `optimising the plan for batch 8`.
        stage: String,
        /// tract's error and its causes.
        message: String,
    },
    /// A batch size of zero was requested.
    #[error("{}: the batch size must be at least 1", path.display())]
    ZeroBatch {
        /// The model file.
        path: PathBuf,
    },
    /// The latent buffer does not hold `batch * nz` values.
    #[error("{}: expected {expected} latent values (batch {batch} x nz {nz}), found {found}", path.display())]
    LatentLength {
        /// The model file.
        path: PathBuf,
        /// Requested batch size.
        batch: usize,
        /// The model's latent length.
        nz: usize,
        /// Values needed: `batch * nz`.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// Face indices `first..first + count` do not fit in a `u64`.
    #[error("{}: face indices from {first} for {count} faces overflow a 64-bit index", path.display())]
    FaceIndexOverflow {
        /// The model file.
        path: PathBuf,
        /// First face index.
        first: u64,
        /// Number of faces.
        count: usize,
    },
    /// RGB output was requested from a model that has neither 1 nor 3 channels.
    #[error("{}: cannot convert {channels}-channel images to RGB: only 1 and 3 channels are supported", path.display())]
    UnsupportedChannels {
        /// The model file.
        path: PathBuf,
        /// The model's output channels.
        channels: usize,
    },
}

/// A DCGAN generator ONNX model run by tract.
pub struct TractGenerator {
    path: PathBuf,
    model: InferenceModel,
    nz: usize,
    channels: usize,
    image_size: usize,
    metadata: BTreeMap<String, String>,
    plans: HashMap<usize, Arc<TypedRunnableModel>>,
}

impl fmt::Debug for TractGenerator {
    // The graph and plans print thousands of lines, so they are summarised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TractGenerator")
            .field("path", &self.path)
            .field("nz", &self.nz)
            .field("channels", &self.channels)
            .field("image_size", &self.image_size)
            .field("metadata", &self.metadata)
            .field("planned_batch_sizes", &self.planned_batch_sizes())
            .finish_non_exhaustive()
    }
}

impl TractGenerator {
    /// Loads a generator from an ONNX file and builds its batch-1 plan.
    ///
    /// The latent length comes from the `nz` metadata entry when present and
    /// from the graph input's shape otherwise. Channels and image size come
    /// from the analysed graph, which must agree with the `nc` and
    /// `image_size` metadata entries where present.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotFound`] or [`RuntimeError::Read`] when the file cannot
    /// be read, [`RuntimeError::NotOnnx`] when it is not an ONNX model,
    /// [`RuntimeError::NotGenerator`] when its input is not `[N, nz, 1, 1]` or
    /// its output not `[N, C, S, S]`, and [`RuntimeError::Tract`] when tract
    /// cannot analyse or optimise it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RuntimeError> {
        let path = path.as_ref();
        let started = Instant::now();

        let proto = read_model_proto(path)?;
        let metadata = metadata_props(&proto);
        let nz = latent_length(path, &proto, &metadata)?;

        let model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|err| tract_error(path, "parsing the ONNX graph", err))?;
        if model.inputs.len() != 1 || model.outputs.len() != 1 {
            let reason = format!(
                "a generator has one input and one output, this graph has {} inputs and {} outputs",
                model.inputs.len(),
                model.outputs.len()
            );
            return Err(not_generator(path, reason));
        }

        let mut generator = TractGenerator {
            path: path.to_path_buf(),
            model,
            nz,
            channels: 0,
            image_size: 0,
            metadata,
            plans: HashMap::new(),
        };
        let plan = generator.build_plan(1)?;
        (generator.channels, generator.image_size) = image_shape(path, &plan)?;
        generator.check_metadata()?;
        generator.plans.insert(1, plan);

        log::debug!(
            "loaded {} (nz {nz}, {} channels, {}x{}) in {:.2?}",
            path.display(),
            generator.channels,
            generator.image_size,
            generator.image_size,
            started.elapsed()
        );
        Ok(generator)
    }

    /// The ONNX file this generator was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of one latent vector.
    pub fn nz(&self) -> usize {
        self.nz
    }

    /// Channels of a generated image (3 for RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Height and width of a generated image, in pixels.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// Returns the model's ONNX `metadata_props`, sorted by key.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Batch sizes that already have an optimised plan, in ascending order.
    pub fn planned_batch_sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self.plans.keys().copied().collect();
        sizes.sort_unstable();
        sizes
    }

    /// Runs the generator on `batch` latents, building and caching a plan for
    /// this batch size on first use.
    ///
    /// # Shapes
    ///
    /// - `latents`: `[batch, nz]` (the same memory as `[batch, nz, 1, 1]`).
    /// - returns: `[batch, channels, image_size, image_size]`, row-major
    ///   (NCHW), values in `[-1, 1]` for a Tanh output.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::ZeroBatch`] for `batch == 0`,
    /// [`RuntimeError::LatentLength`] when `latents.len() != batch * nz`, and
    /// [`RuntimeError::Tract`] when tract fails.
    pub fn generate(&mut self, latents: &[f32], batch: usize) -> Result<Vec<f32>, RuntimeError> {
        self.check_latents(latents, batch)?;
        let plan = self.plan(batch)?;

        let input = Tensor::from_shape(&[batch, self.nz, 1, 1], latents)
            .map_err(|err| tract_error(&self.path, "building the input tensor", err))?;
        let outputs = plan
            .run(tvec!(input.into_tvalue()))
            .map_err(|err| tract_error(&self.path, &format!("running a batch of {batch}"), err))?;

        let expected = [batch, self.channels, self.image_size, self.image_size];
        let output = &outputs[0];
        if output.shape() != expected {
            let reason = format!(
                "a batch of {batch} produced shape {:?}, expected {expected:?}",
                output.shape()
            );
            return Err(not_generator(&self.path, reason));
        }
        let values = output
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(|err| tract_error(&self.path, "reading the output tensor", err))?;
        Ok(values)
    }

    /// Generates faces `first..first + count` of run `seed` as RGB888 images,
    /// `batch_size` at a time.
    ///
    /// Face `k`'s latent depends only on `(seed, k)`, so a face is the same
    /// whichever range or batch size produced it, up to the float rounding of
    /// the plan that ran it. One-channel models give grey RGB pixels.
    ///
    /// # Shapes
    ///
    /// - returns: `count` images, each `[image_size, image_size, 3]` bytes
    ///   (row-major, interleaved RGB).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::ZeroBatch`] for `batch_size == 0`,
    /// [`RuntimeError::FaceIndexOverflow`] when `first + count` overflows,
    /// [`RuntimeError::UnsupportedChannels`] for models with neither 1 nor 3
    /// channels, and the errors of [`TractGenerator::generate`].
    pub fn generate_faces(
        &mut self,
        seed: u64,
        first: u64,
        count: usize,
        batch_size: usize,
    ) -> Result<Vec<Vec<u8>>, RuntimeError> {
        self.check_face_request(first, count, batch_size)?;

        let mut faces = Vec::with_capacity(count);
        let mut latents = Vec::new();
        for start in (0..count).step_by(batch_size) {
            let batch = batch_size.min(count - start);
            latents.resize(batch * self.nz, 0.0);
            fill_latents(seed, first + start as u64, self.nz, &mut latents);

            let images = self.generate(&latents, batch)?;
            let image_len = self.channels * self.image_size * self.image_size;
            faces.extend(
                images
                    .chunks_exact(image_len)
                    .map(|chw| self.to_rgb888(chw)),
            );
        }
        Ok(faces)
    }

    /// Generates one face from `latent` straight into a caller's RGB888
    /// buffer, with the batch-1 plan.
    ///
    /// This skips the intermediate vectors of
    /// [`TractGenerator::generate_faces`], so a render loop can reuse its
    /// buffers. tract itself still allocates the input and output tensors of
    /// each run and frees them before this returns.
    ///
    /// # Shapes
    ///
    /// - `latent`: `[nz]`.
    /// - `rgb`: `[image_size, image_size, 3]` bytes, row-major, overwritten.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::LatentLength`] when `latent.len() != nz`,
    /// [`RuntimeError::UnsupportedChannels`] for models with neither 1 nor 3
    /// channels, [`RuntimeError::NotGenerator`] when `rgb` or the output has
    /// the wrong size, and [`RuntimeError::Tract`] when tract fails.
    pub fn generate_face_into(&mut self, latent: &[f32], rgb: &mut [u8]) -> Result<(), RuntimeError> {
        self.check_latents(latent, 1)?;
        self.check_face_request(0, 1, 1)?;
        let pixels = self.image_size * self.image_size;
        if rgb.len() != 3 * pixels {
            let reason = format!("the RGB buffer has {} bytes, expected {}", rgb.len(), 3 * pixels);
            return Err(not_generator(&self.path, reason));
        }
        let plan = self.plan(1)?;

        let input = Tensor::from_shape(&[1, self.nz, 1, 1], latent)
            .map_err(|err| tract_error(&self.path, "building the input tensor", err))?;
        let outputs =
            plan.run(tvec!(input.into_tvalue())).map_err(|err| tract_error(&self.path, "running a batch of 1", err))?;
        let chw = outputs[0]
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|err| tract_error(&self.path, "reading the output tensor", err))?;
        if chw.len() != self.channels * pixels {
            let reason = format!("one face produced {} values, expected {}", chw.len(), self.channels * pixels);
            return Err(not_generator(&self.path, reason));
        }

        if self.channels == 3 {
            chw_to_rgb888(chw, self.image_size, rgb);
        } else {
            for (pixel, &value) in rgb.chunks_exact_mut(3).zip(chw) {
                pixel.fill(to_u8(value));
            }
        }
        Ok(())
    }

    fn check_latents(&self, latents: &[f32], batch: usize) -> Result<(), RuntimeError> {
        if batch == 0 {
            return Err(RuntimeError::ZeroBatch {
                path: self.path.clone(),
            });
        }
        let expected = batch * self.nz;
        if latents.len() != expected {
            return Err(RuntimeError::LatentLength {
                path: self.path.clone(),
                batch,
                nz: self.nz,
                expected,
                found: latents.len(),
            });
        }
        Ok(())
    }

    fn check_face_request(
        &self,
        first: u64,
        count: usize,
        batch_size: usize,
    ) -> Result<(), RuntimeError> {
        if batch_size == 0 {
            return Err(RuntimeError::ZeroBatch {
                path: self.path.clone(),
            });
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(RuntimeError::UnsupportedChannels {
                path: self.path.clone(),
                channels: self.channels,
            });
        }
        let overflows = u64::try_from(count)
            .ok()
            .and_then(|count| first.checked_add(count))
            .is_none();
        if overflows {
            return Err(RuntimeError::FaceIndexOverflow {
                path: self.path.clone(),
                first,
                count,
            });
        }
        Ok(())
    }

    /// Converts one `[channels, size, size]` image to RGB888.
    fn to_rgb888(&self, chw: &[f32]) -> Vec<u8> {
        let mut rgb = vec![0u8; 3 * self.image_size * self.image_size];
        if self.channels == 3 {
            chw_to_rgb888(chw, self.image_size, &mut rgb);
        } else {
            for (pixel, &value) in rgb.chunks_exact_mut(3).zip(chw) {
                pixel.fill(to_u8(value));
            }
        }
        rgb
    }

    /// Returns the cached plan for `batch`, building it on first use.
    fn plan(&mut self, batch: usize) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
        if let Some(plan) = self.plans.get(&batch) {
            return Ok(plan.clone());
        }
        let plan = self.build_plan(batch)?;
        self.plans.insert(batch, plan.clone());
        Ok(plan)
    }

    /// Optimises the graph with the batch dimension fixed to `batch`.
    fn build_plan(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
        let started = Instant::now();
        let stage = format!("optimising the plan for batch {batch}");

        let fact = f32::fact([batch, self.nz, 1, 1]);
        let plan = self
            .model
            .clone()
            .with_input_fact(0, fact.into())
            .and_then(|model| model.into_optimized())
            .and_then(|model| model.into_runnable())
            .map_err(|err| tract_error(&self.path, &stage, err))?;

        log::debug!(
            "built the tract plan for batch {batch} of {} in {:.2?}",
            self.path.display(),
            started.elapsed()
        );
        Ok(plan)
    }

    /// Checks the `nc` and `image_size` metadata entries, where present,
    /// against the analysed graph.
    fn check_metadata(&self) -> Result<(), RuntimeError> {
        for (key, actual) in [(META_NC, self.channels), (META_IMAGE_SIZE, self.image_size)] {
            let Some(declared) = metadata_usize(&self.path, &self.metadata, key)? else {
                continue;
            };
            if declared != actual {
                let reason =
                    format!("metadata {key} = {declared}, but the graph produces {actual}");
                return Err(not_generator(&self.path, reason));
            }
        }
        Ok(())
    }
}

/// Reads and decodes the file, rejecting anything without a graph.
pub(crate) fn read_model_proto(path: &Path) -> Result<ModelProto, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RuntimeError::NotFound {
            path: path.to_path_buf(),
        },
        _ => RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    decode_model_proto(path, &bytes)
}

/// Decodes the content of an ONNX file as [`TractGenerator::load`] does
/// before it hands the graph to tract, and rejects anything without a graph.
/// `path` only names the file in errors.
///
/// # Errors
///
/// [`RuntimeError::NotOnnx`] when `bytes` is not an ONNX model with a graph.
pub fn decode_model_proto(path: &Path, bytes: &[u8]) -> Result<ModelProto, RuntimeError> {
    let not_onnx = |reason: String| RuntimeError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|err| not_onnx(format!("{err:#}")))?;
    match &proto.graph {
        Some(graph) if !graph.node.is_empty() => Ok(proto),
        _ => Err(not_onnx("the file holds no ONNX graph".to_string())),
    }
}

/// Returns the latent length `nz` of a decoded generator, as
/// [`TractGenerator::load`] infers it before tract analyses the graph: from
/// the `nz` metadata entry and the graph input's declared shape
/// `[N, nz, 1, 1]`, which must agree where both exist.
///
/// # Errors
///
/// [`RuntimeError::NotGenerator`] when the graph has other than one input,
/// the input is not float `[N, nz, 1, 1]`, `nz` is 0, missing or differs
/// from the metadata entry.
pub fn declared_latent_length(path: &Path, proto: &ModelProto) -> Result<usize, RuntimeError> {
    latent_length(path, proto, &metadata_props(proto))
}

/// Collects the model's `metadata_props` into a map. A repeated key keeps its last value.
fn metadata_props(proto: &ModelProto) -> BTreeMap<String, String> {
    proto
        .metadata_props
        .iter()
        .map(|entry| (entry.key.clone(), entry.value.clone()))
        .collect()
}

/// The latent length, from the `nz` metadata entry and the graph input's
/// declared shape `[N, nz, 1, 1]`; where both exist they must agree.
fn latent_length(
    path: &Path,
    proto: &ModelProto,
    metadata: &BTreeMap<String, String>,
) -> Result<usize, RuntimeError> {
    let input = graph_input(path, proto)?;
    let from_graph = latent_length_from_input(path, input)?;
    let from_metadata = metadata_usize(path, metadata, META_NZ)?;

    match (from_metadata, from_graph) {
        (Some(declared), Some(actual)) if declared != actual => {
            let reason = format!(
                "metadata nz = {declared}, but input `{}` has {actual} channels",
                input.name
            );
            Err(not_generator(path, reason))
        }
        (Some(nz), _) | (None, Some(nz)) if nz > 0 => Ok(nz),
        (Some(_), _) | (None, Some(_)) => {
            Err(not_generator(path, "the latent length nz is 0".to_string()))
        }
        (None, None) => {
            let reason = format!(
                "input `{}` has no fixed shape [N, nz, 1, 1] and there is no `{META_NZ}` metadata entry",
                input.name
            );
            Err(not_generator(path, reason))
        }
    }
}

/// Finds the one graph input that is not an initializer (old exporters list
/// initializers among the inputs).
fn graph_input<'a>(path: &Path, proto: &'a ModelProto) -> Result<&'a ValueInfoProto, RuntimeError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| not_generator(path, "the model has no graph".to_string()))?;
    let initializers: Vec<&str> = graph
        .initializer
        .iter()
        .map(|tensor| tensor.name.as_str())
        .collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|input| !initializers.contains(&input.name.as_str()))
        .collect();

    match inputs.as_slice() {
        [input] => Ok(input),
        _ => {
            let names: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
            Err(not_generator(
                path,
                format!("a generator has exactly one input, this graph has {names:?}"),
            ))
        }
    }
}

/// `nz` from an input declared as float `[N, nz, 1, 1]`; `None` where the
/// shape is not declared or `nz` is symbolic.
fn latent_length_from_input(
    path: &Path,
    input: &ValueInfoProto,
) -> Result<Option<usize>, RuntimeError> {
    let Some(TypeValue::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(None);
    };
    if tensor.elem_type != DataType::Float as i32 {
        let found =
            DataType::try_from(tensor.elem_type).map_or("an unknown type", |t| t.as_str_name());
        let reason = format!("input `{}` is {found}, expected FLOAT latents", input.name);
        return Err(not_generator(path, reason));
    }
    let Some(shape) = &tensor.shape else {
        return Ok(None);
    };

    let dims: Vec<Option<i64>> = shape
        .dim
        .iter()
        .map(|dim| match dim.value {
            Some(DimensionValue::DimValue(value)) => Some(value),
            _ => None,
        })
        .collect();
    let describe = || {
        dims.iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match dims.as_slice() {
        [_, nz, Some(1), Some(1)] => Ok(nz.and_then(|nz| usize::try_from(nz).ok())),
        _ => {
            let reason = format!(
                "input `{}` has shape [{}], expected [N, nz, 1, 1]",
                input.name,
                describe()
            );
            Err(not_generator(path, reason))
        }
    }
}

/// `(channels, image_size)` from the batch-1 plan's output `[1, C, S, S]`.
fn image_shape(path: &Path, plan: &TypedRunnableModel) -> Result<(usize, usize), RuntimeError> {
    let fact = plan
        .model()
        .output_fact(0)
        .map_err(|err| tract_error(path, "reading the output shape", err))?;
    if fact.datum_type != f32::datum_type() {
        return Err(not_generator(
            path,
            format!("the output is {:?}, expected f32 pixels", fact.datum_type),
        ));
    }
    // A 1x1 "image" is a latent passed through, not a generated picture.
    match fact.shape.as_concrete() {
        Some(&[1, channels, height, width]) if height == width && channels > 0 && height > 1 => {
            Ok((channels, height))
        }
        _ => {
            let reason = format!(
                "for a batch of 1 the output has shape {:?}, expected [1, C, S, S] with S at least 2",
                fact.shape
            );
            Err(not_generator(path, reason))
        }
    }
}

/// Parses a metadata entry as a count, or returns `None` when it is absent.
fn metadata_usize(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<usize>, RuntimeError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    value.trim().parse().map(Some).map_err(|_| {
        not_generator(
            path,
            format!("metadata {key} = {value:?} is not a non-negative integer"),
        )
    })
}

fn not_generator(path: &Path, reason: String) -> RuntimeError {
    RuntimeError::NotGenerator {
        path: path.to_path_buf(),
        reason,
    }
}

fn tract_error(path: &Path, stage: &str, err: TractError) -> RuntimeError {
    RuntimeError::Tract {
        path: path.to_path_buf(),
        stage: stage.to_string(),
        message: format!("{err:#}"),
    }
}
