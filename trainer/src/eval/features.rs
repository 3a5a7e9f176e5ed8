//! Inception-v3 features through tract: the 2048-d pool features for FID
//! and KID and the class logits for the Inception Score.
//!
//! The ONNX graph must take one float32 input `[N, 3, 299, 299]` with RGB
//! values in `[-1, 1]`. That is pytorch-fid's `InceptionV3` with
//! `resize_input` and `normalize_input` turned off, because this module does
//! both steps. It must return the pool features as `[N, 2048]` or
//! `[N, 2048, 1, 1]`, and optionally logits `[N, 1008]` (the FID Inception's
//! classifier) or `[N, 1000]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use tract_onnx::prelude::*;

use super::matrix::FeatureMatrix;
use super::resize::inception_input;
use super::EvalError;

/// Height and width of the Inception input, in pixels.
pub const INCEPTION_SIZE: usize = 299;
/// Length of the pool feature vector.
pub const POOL_FEATURES: usize = 2048;
/// Logit counts accepted: the FID Inception's 1008 classes or ImageNet's 1000.
pub const LOGIT_CLASSES: [usize; 2] = [1008, 1000];

/// Description of the inputs and outputs an Inception ONNX file needs, for error messages.
pub const EXPECTED_INCEPTION: &str = "one float32 input [N, 3, 299, 299] (RGB in [-1, 1]) and outputs \
    `pool3` [N, 2048] or [N, 2048, 1, 1], plus optionally `logits` [N, 1008] or [N, 1000]";

/// Features of a batch of images.
#[derive(Clone, Debug, PartialEq)]
pub struct InceptionOutput {
    /// Pool features, `[N, 2048]`.
    pub pool: FeatureMatrix,
    /// Class logits, `[N, classes]`, when the graph has them.
    pub logits: Option<FeatureMatrix>,
}

/// An Inception-v3 ONNX network with a plan for one fixed batch size.
pub struct InceptionNet {
    path: PathBuf,
    batch_size: usize,
    plan: Arc<TypedRunnableModel>,
    pool_output: usize,
    logits_output: Option<(usize, usize)>,
}

impl std::fmt::Debug for InceptionNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InceptionNet")
            .field("path", &self.path)
            .field("batch_size", &self.batch_size)
            .field("logits_classes", &self.logits_output.map(|(_, classes)| classes))
            .finish_non_exhaustive()
    }
}

impl InceptionNet {
    /// Loads the network and optimises a plan for batches of `batch_size`
    /// images; shorter batches are padded.
    ///
    /// # Errors
    /// [`EvalError::ModelRead`] when the file cannot be read or parsed,
    /// [`EvalError::NotInception`] when its inputs or outputs do not have
    /// the shapes of [`EXPECTED_INCEPTION`], and [`EvalError::Tract`] when
    /// tract cannot optimise it.
    pub fn load(path: &Path, batch_size: usize) -> Result<Self, EvalError> {
        if batch_size == 0 {
            return Err(EvalError::InvalidSetting("the Inception batch size must be at least 1".into()));
        }
        if !path.is_file() {
            return Err(EvalError::ModelRead {
                path: path.to_owned(),
                reason: "the file does not exist; see the README section on the Inception network".into(),
            });
        }

        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|err| EvalError::ModelRead { path: path.to_owned(), reason: format!("{err:#}") })?;
        if model.inputs.len() != 1 {
            return Err(not_inception(path, format!("the graph has {} inputs", model.inputs.len())));
        }
        let output_names = output_names(&model);

        let fact = f32::fact([batch_size, 3, INCEPTION_SIZE, INCEPTION_SIZE]);
        let typed = model
            .with_input_fact(0, fact.into())
            .and_then(|model| model.into_typed())
            .map_err(|err| not_inception(path, format!("its input does not accept [N, 3, 299, 299] images: {err:#}")))?;

        let shapes = output_shapes(&typed, batch_size).map_err(|reason| not_inception(path, reason))?;
        let (pool_output, logits_output) =
            pick_outputs(&output_names, &shapes, batch_size).map_err(|reason| not_inception(path, reason))?;

        let plan = typed
            .into_optimized()
            .and_then(|model| model.into_runnable())
            .map_err(|err| EvalError::Tract { path: path.to_owned(), message: format!("{err:#}") })?;
        log::info!(
            "loaded Inception network {} (pool output `{}`, logits {})",
            path.display(),
            output_names[pool_output],
            logits_output.map_or("none".to_string(), |(index, classes)| format!("`{}` [N, {classes}]", output_names[index]))
        );
        Ok(Self { path: path.to_owned(), batch_size, plan, pool_output, logits_output })
    }

    /// Images per network run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether the network returns class logits, which the Inception Score needs.
    pub fn has_logits(&self) -> bool {
        self.logits_output.is_some()
    }

    /// Runs at most [`InceptionNet::batch_size`] images through the network.
    ///
    /// # Shapes
    /// `images`: `k <= batch_size` RGB images of any size; returns pool
    /// features `[k, 2048]` and logits `[k, classes]`.
    ///
    /// # Errors
    /// [`EvalError::InvalidSetting`] for more images than the batch size and
    /// [`EvalError::Tract`] when the network fails.
    pub fn features(&self, images: &[&RgbImage]) -> Result<InceptionOutput, EvalError> {
        if images.len() > self.batch_size {
            return Err(EvalError::InvalidSetting(format!(
                "{} images given to an Inception plan for batches of {}",
                images.len(),
                self.batch_size
            )));
        }

        // Stage 1: [batch, 3, 299, 299] input, zero-padded past the images.
        let image_len = 3 * INCEPTION_SIZE * INCEPTION_SIZE;
        let mut input = vec![0f32; self.batch_size * image_len];
        for (image, slot) in images.iter().zip(input.chunks_exact_mut(image_len)) {
            slot.copy_from_slice(&inception_input(image, INCEPTION_SIZE));
        }
        let tensor = Tensor::from_shape(&[self.batch_size, 3, INCEPTION_SIZE, INCEPTION_SIZE], &input)
            .map_err(|err| self.tract_error(err))?;

        // Stage 2: run, then keep the rows of real images.
        let outputs = self.plan.run(tvec!(tensor.into_tvalue())).map_err(|err| self.tract_error(err))?;
        let pool = self.rows(&outputs[self.pool_output], images.len(), POOL_FEATURES)?;
        let logits = match self.logits_output {
            Some((index, classes)) => Some(self.rows(&outputs[index], images.len(), classes)?),
            None => None,
        };
        Ok(InceptionOutput { pool, logits })
    }

    /// Copies the first `count` rows of an output of `cols` values per image.
    fn rows(&self, output: &TValue, count: usize, cols: usize) -> Result<FeatureMatrix, EvalError> {
        let values = output
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(|err| self.tract_error(err))?;
        if values.len() < count * cols {
            return Err(EvalError::Shape {
                what: format!("output of {}", self.path.display()),
                expected: format!("at least {count} x {cols} values"),
                found: format!("{} values", values.len()),
            });
        }
        let kept: Vec<f64> = values[..count * cols].iter().map(|&v| f64::from(v)).collect();
        FeatureMatrix::new(count, cols, kept)
    }

    fn tract_error(&self, err: TractError) -> EvalError {
        EvalError::Tract { path: self.path.clone(), message: format!("{err:#}") }
    }
}

/// Names of the graph outputs, in order; `output N` where tract has no label.
fn output_names(model: &InferenceModel) -> Vec<String> {
    model
        .outputs
        .iter()
        .enumerate()
        .map(|(index, outlet)| model.outlet_label(*outlet).map_or_else(|| format!("output {index}"), str::to_owned))
        .collect()
}

/// Concrete output shapes for a fixed batch.
fn output_shapes(model: &TypedModel, batch_size: usize) -> Result<Vec<Vec<usize>>, String> {
    model
        .output_outlets()
        .map_err(|err| format!("{err:#}"))?
        .iter()
        .map(|outlet| {
            let fact = model.outlet_fact(*outlet).map_err(|err| format!("{err:#}"))?;
            fact.shape
                .as_concrete()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| format!("an output has no fixed shape for a batch of {batch_size}: {:?}", fact.shape))
        })
        .collect()
}

/// Picks the pool output and the optional logits output by shape.
fn pick_outputs(
    names: &[String],
    shapes: &[Vec<usize>],
    batch_size: usize,
) -> Result<(usize, Option<(usize, usize)>), String> {
    let is_pool = |shape: &[usize]| {
        shape == [batch_size, POOL_FEATURES] || shape == [batch_size, POOL_FEATURES, 1, 1]
    };
    let logit_classes = |shape: &[usize]| match shape {
        [n, classes] if *n == batch_size && LOGIT_CLASSES.contains(classes) => Some(*classes),
        _ => None,
    };

    let pool = shapes.iter().position(|shape| is_pool(shape));
    let logits = shapes.iter().enumerate().find_map(|(index, shape)| logit_classes(shape).map(|c| (index, c)));
    match pool {
        Some(pool) => Ok((pool, logits)),
        None => {
            let found: Vec<String> = names
                .iter()
                .zip(shapes)
                .map(|(name, shape)| format!("`{name}` {shape:?}"))
                .collect();
            Err(format!("no output has the pool feature shape [N, 2048]; outputs for N = {batch_size}: {}", found.join(", ")))
        }
    }
}

fn not_inception(path: &Path, reason: String) -> EvalError {
    EvalError::NotInception { path: path.to_owned(), reason }
}
