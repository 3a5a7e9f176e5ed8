//! Compares every given form of one generator against its f32 reference.
//!
//! The reference is the naive f32 forward pass of `dcgan_runtime::reference`
//! on the weights of the trainer checkpoint or PyTorch file, with BatchNorm in
//! eval mode. The same seeded latents then run through:
//!
//! - the folded f32 generator in the runtime core (always);
//! - an f32 ONNX file through tract;
//! - an int8 weight file through the runtime core, layer by layer with f32
//!   activations, and as a board runs it: through the core's engine, with
//!   int8 activations when the file carries activation scales;
//! - a QDQ ONNX file through tract.
//!
//! Each form gets max abs error, PSNR and SSIM against the reference, per
//! layer where the form exposes its layers and for the final image, and
//! fails when a [`Thresholds`] value is crossed.

use std::fmt;
use std::path::PathBuf;

use dcgan_runtime::engine::{Engine, EngineConfig, Precision};
use dcgan_runtime::latent::fill_latents;
use dcgan_runtime::quantized::{self, fold_batch_norm, QuantizedGenerator};
use dcgan_runtime::reference;
use dcgan_runtime::spec::GeneratorSpec;
use dcgan_runtime::tract::TractGenerator;

use crate::{read_source, read_weight_file, ExportError, GeneratorSource};

/// Limits a form must meet; the defaults are the project's fidelity target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Largest max abs error of the final image for forms with f32 weights.
    pub max_abs_f32: f32,
    /// Smallest PSNR of the final image in dB, for every form.
    pub min_psnr: f64,
    /// Smallest SSIM of the final image, for every form.
    pub min_ssim: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { max_abs_f32: 1e-4, min_psnr: 35.0, min_ssim: 0.98 }
    }
}

/// Inputs of [`verify`].
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyOptions {
    /// The f32 reference: a trainer checkpoint or a PyTorch file.
    pub source: GeneratorSource,
    /// An f32 ONNX file to run through tract.
    pub onnx: Option<PathBuf>,
    /// An int8 weight file to run through the runtime core.
    pub int8: Option<PathBuf>,
    /// A QDQ ONNX file to run through tract.
    pub qdq_onnx: Option<PathBuf>,
    /// Number of latents, faces `0..latents` of `seed`.
    pub latents: usize,
    /// Seed of the latents (see `dcgan_runtime::latent`).
    pub seed: u64,
    /// Limits that make the check fail.
    pub thresholds: Thresholds,
}

/// Error measures of one tensor against its reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Largest absolute difference.
    pub max_abs: f32,
    /// Peak signal-to-noise ratio in dB, with the reference's value range as
    /// the peak (2 for images in `[-1, 1]`); infinite for identical tensors.
    pub psnr: f64,
    /// Mean SSIM over all channel planes, or `None` for maps smaller than
    /// the 7x7 window.
    pub ssim: Option<f64>,
}

/// Results of one form of the generator.
#[derive(Clone, Debug, PartialEq)]
pub struct FormReport {
    /// Name of the form, for example `int8 weight file (runtime core)`.
    pub name: String,
    /// The file, or `None` for forms built in memory.
    pub path: Option<PathBuf>,
    /// Whether any of its kernels are int8, which exempts it from `max_abs_f32`.
    pub int8: bool,
    /// Per-layer metrics after each activation, where the form exposes layers.
    pub layers: Vec<Metrics>,
    /// Metrics of the final image.
    pub image: Metrics,
    /// Thresholds this form crossed, as sentences.
    pub failures: Vec<String>,
}

/// Everything [`verify`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// The generator's architecture.
    pub spec: GeneratorSpec,
    /// Number of latents compared.
    pub latents: usize,
    /// One entry per form, in the order listed in the module documentation.
    pub forms: Vec<FormReport>,
    /// The latents, `[latents, nz]`, for forms that callers run themselves.
    pub latent_values: Vec<f32>,
    /// The reference images, `[latents, nc, image_size, image_size]`.
    pub reference_images: Vec<f32>,
    /// The thresholds the forms were checked against.
    pub thresholds: Thresholds,
}

impl VerifyReport {
    /// Measures images that the caller computed from [`VerifyReport::latent_values`]
    /// (for example with the trainer's own forward pass) and adds them as a form.
    pub fn add_form(&mut self, name: &str, path: Option<PathBuf>, int8: bool, images: &[f32]) {
        let image = measure(images, &self.reference_images, self.spec.image_size, Some(2.0));
        let failures = check(&image, int8, &self.thresholds);
        self.forms.push(FormReport { name: name.to_string(), path, int8, layers: Vec::new(), image, failures });
    }

    /// Whether no form crossed a threshold.
    pub fn passed(&self) -> bool {
        self.forms.iter().all(|form| form.failures.is_empty())
    }
}

/// Runs every form and measures it against the f32 reference.
///
/// # Errors
///
/// The errors of reading the source, the weight file or the ONNX files, and
/// [`ExportError::Verify`] when a form does not match the reference's
/// architecture or fails to run.
pub fn verify(options: &VerifyOptions) -> Result<VerifyReport, ExportError> {
    let (weights, _) = read_source(&options.source)?;
    let spec = weights.spec;
    let batch = options.latents.max(1);
    let mut latents = vec![0.0f32; batch * spec.nz];
    fill_latents(options.seed, 0, spec.nz, &mut latents);

    // Stage 1: the f32 reference, layer by layer.
    let reference_layers =
        reference::generate_layers(&weights, &latents, batch).map_err(|err| verify_error(err.to_string()))?;
    let thresholds = &options.thresholds;
    let mut forms = Vec::new();

    // Stage 2: the folded f32 generator in the runtime core.
    let folded = fold_batch_norm(&weights)?;
    forms.push(core_form("folded f32 (runtime core)", None, &folded, &reference_layers, &latents, batch, thresholds)?);

    // Stage 3: the files given.
    if let Some(path) = &options.onnx {
        let output = run_tract(path, &latents, spec)?;
        forms.push(final_form("f32 ONNX (tract)", path, false, &output, &reference_layers, spec, thresholds));
    }
    if let Some(path) = &options.int8 {
        let generator = read_weight_file(path)?;
        if generator.spec != spec {
            return Err(verify_error(format!(
                "{} holds a generator {:?}, but the reference is {spec:?}",
                path.display(),
                generator.spec
            )));
        }
        let name = "int8 weight file (runtime core)";
        forms.push(core_form(name, Some(path), &generator, &reference_layers, &latents, batch, thresholds)?);
        forms.push(engine_form(path, &generator, &reference_layers, &latents, thresholds)?);
    }
    if let Some(path) = &options.qdq_onnx {
        let output = run_tract(path, &latents, spec)?;
        forms.push(final_form("QDQ ONNX (tract)", path, true, &output, &reference_layers, spec, thresholds));
    }
    let reference_images = reference_layers.last().cloned().unwrap_or_default();
    Ok(VerifyReport { spec, latents: batch, forms, latent_values: latents, reference_images, thresholds: *thresholds })
}

fn verify_error(reason: String) -> ExportError {
    ExportError::Verify { reason }
}

fn core_form(
    name: &str,
    path: Option<&PathBuf>,
    generator: &QuantizedGenerator,
    reference_layers: &[Vec<f32>],
    latents: &[f32],
    batch: usize,
    thresholds: &Thresholds,
) -> Result<FormReport, ExportError> {
    let outputs = quantized::generate_layers(generator, latents, batch).map_err(|err| verify_error(err.to_string()))?;
    let specs = generator.spec.layers();
    let layers: Vec<Metrics> = specs
        .iter()
        .zip(outputs.iter().zip(reference_layers))
        .map(|(layer, (output, expected))| measure(output, expected, layer.out_size, None))
        .collect();
    let image = measure(
        outputs.last().map_or(&[][..], Vec::as_slice),
        reference_layers.last().map_or(&[][..], Vec::as_slice),
        generator.spec.image_size,
        Some(2.0),
    );
    let int8 = !generator.int8_layers().is_empty();
    let failures = check(&image, int8, thresholds);
    Ok(FormReport { name: name.to_string(), path: path.cloned(), int8, layers, image, failures })
}

/// The weight file through [`Engine`], the path `dcgan-edge --backend core`
/// and microcontrollers run: int8 activations when the file has their scales.
fn engine_form(
    path: &std::path::Path,
    generator: &QuantizedGenerator,
    reference_layers: &[Vec<f32>],
    latents: &[f32],
    thresholds: &Thresholds,
) -> Result<FormReport, ExportError> {
    let engine = Engine::new(generator, &EngineConfig::default()).map_err(|err| verify_error(err.to_string()))?;
    let name = match engine.precision() {
        Precision::Int8 => "int8 weight file (core engine, int8 activations)",
        Precision::F32 => "int8 weight file (core engine, f32 activations)",
    };

    let mut scratch = vec![0.0f32; engine.scratch_len()];
    let mut images = vec![0.0f32; latents.len() / generator.spec.nz * engine.output_len()];
    for (latent, image) in latents.chunks_exact(generator.spec.nz).zip(images.chunks_exact_mut(engine.output_len())) {
        engine.generate_into(latent, &mut scratch, image).map_err(|err| verify_error(err.to_string()))?;
    }
    Ok(final_form(name, path, true, &images, reference_layers, generator.spec, thresholds))
}

fn final_form(
    name: &str,
    path: &std::path::Path,
    int8: bool,
    output: &[f32],
    reference_layers: &[Vec<f32>],
    spec: GeneratorSpec,
    thresholds: &Thresholds,
) -> FormReport {
    let expected = reference_layers.last().map_or(&[][..], Vec::as_slice);
    let image = measure(output, expected, spec.image_size, Some(2.0));
    let failures = check(&image, int8, thresholds);
    FormReport { name: name.to_string(), path: Some(path.to_path_buf()), int8, layers: Vec::new(), image, failures }
}

fn run_tract(path: &std::path::Path, latents: &[f32], spec: GeneratorSpec) -> Result<Vec<f32>, ExportError> {
    let mut generator = TractGenerator::load(path)?;
    let found = (generator.nz(), generator.channels(), generator.image_size());
    if found != (spec.nz, spec.nc, spec.image_size) {
        return Err(verify_error(format!(
            "{} has (nz, nc, image_size) = {found:?}, but the reference has ({}, {}, {})",
            path.display(),
            spec.nz,
            spec.nc,
            spec.image_size
        )));
    }
    // Batches of 16 bound tract's memory for large latent counts.
    let mut output = Vec::new();
    for chunk in latents.chunks(16 * spec.nz) {
        output.extend(generator.generate(chunk, chunk.len() / spec.nz)?);
    }
    Ok(output)
}

/// Lists the thresholds `image` crosses.
fn check(image: &Metrics, int8: bool, thresholds: &Thresholds) -> Vec<String> {
    let mut failures = Vec::new();
    if !int8 && !(image.max_abs <= thresholds.max_abs_f32) {
        failures.push(format!("max abs error {:.3e} exceeds {:.1e}", image.max_abs, thresholds.max_abs_f32));
    }
    if !(image.psnr >= thresholds.min_psnr) {
        failures.push(format!("PSNR {:.2} dB is below {:.2} dB", image.psnr, thresholds.min_psnr));
    }
    match image.ssim {
        Some(ssim) if !(ssim >= thresholds.min_ssim) => {
            failures.push(format!("SSIM {ssim:.4} is below {:.4}", thresholds.min_ssim));
        }
        _ => {}
    }
    failures
}

/// Measures `actual` against `expected`, both `[planes, size, size]`.
///
/// `peak` is the data range of PSNR and SSIM: `Some(2.0)` for images in
/// `[-1, 1]`, or `None` for the reference's own `max - min`.
pub fn measure(actual: &[f32], expected: &[f32], size: usize, peak: Option<f64>) -> Metrics {
    let max_abs = actual.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let (min, max) = expected.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = peak.unwrap_or(f64::from(max - min)).max(f64::MIN_POSITIVE);

    let squared: f64 = actual.iter().zip(expected).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let mse = squared / expected.len().max(1) as f64;
    let psnr = if mse == 0.0 { f64::INFINITY } else { 10.0 * (range * range / mse).log10() };
    let ssim = ssim(actual, expected, size, range);
    let mismatch = actual.len() != expected.len();
    Metrics { max_abs: if mismatch { f32::INFINITY } else { max_abs }, psnr: if mismatch { 0.0 } else { psnr }, ssim }
}

/// Side of the SSIM window, as in scikit-image's `structural_similarity`.
const SSIM_WINDOW: usize = 7;

/// Mean SSIM over every `size x size` plane.
///
/// Follows scikit-image's `structural_similarity` defaults: a 7x7 uniform
/// window, sample covariances, `K1 = 0.01`, `K2 = 0.03`, and the mean over
/// window positions that lie fully inside the plane.
pub fn ssim(actual: &[f32], expected: &[f32], size: usize, data_range: f64) -> Option<f64> {
    let plane = size * size;
    if size < SSIM_WINDOW || actual.len() != expected.len() || expected.is_empty() || expected.len() % plane != 0 {
        return None;
    }
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let n = (SSIM_WINDOW * SSIM_WINDOW) as f64;
    let covariance_norm = n / (n - 1.0);

    let mut total = 0.0;
    let mut count = 0usize;
    for (x, y) in actual.chunks_exact(plane).zip(expected.chunks_exact(plane)) {
        for top in 0..=size - SSIM_WINDOW {
            for left in 0..=size - SSIM_WINDOW {
                let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for row in top..top + SSIM_WINDOW {
                    for column in left..left + SSIM_WINDOW {
                        let (a, b) = (f64::from(x[row * size + column]), f64::from(y[row * size + column]));
                        sx += a;
                        sy += b;
                        sxx += a * a;
                        syy += b * b;
                        sxy += a * b;
                    }
                }
                let (mx, my) = (sx / n, sy / n);
                let vx = covariance_norm * (sxx / n - mx * mx);
                let vy = covariance_norm * (syy / n - my * my);
                let cxy = covariance_norm * (sxy / n - mx * my);
                total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
                count += 1;
            }
        }
    }
    Some(total / count as f64)
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ssim = self.ssim.map_or_else(|| "-".to_string(), |ssim| format!("{ssim:.5}"));
        write!(f, "max abs {:>10.3e}   PSNR {:>7.2} dB   SSIM {ssim:>7}", self.max_abs, self.psnr)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec;
        writeln!(
            f,
            "generator nz={} ngf={} nc={} {}x{}, {} latents, against the f32 reference forward pass",
            spec.nz, spec.ngf, spec.nc, spec.image_size, spec.image_size, self.latents
        )?;
        for form in &self.forms {
            let path = form.path.as_ref().map(|path| format!(" {}", path.display())).unwrap_or_default();
            writeln!(f, "\n{}{path}", form.name)?;
            for (index, layer) in form.layers.iter().enumerate() {
                writeln!(f, "  layer {index}  {layer}")?;
            }
            writeln!(f, "  image    {}", form.image)?;
            if form.failures.is_empty() {
                writeln!(f, "  ok")?;
            }
            for failure in &form.failures {
                writeln!(f, "  FAILED: {failure}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_tensors_measure_perfect() {
        let values: Vec<f32> = (0..3 * 64).map(|v| (v as f32 * 0.37).sin()).collect();
        let metrics = measure(&values, &values, 8, Some(2.0));
        assert_eq!(metrics.max_abs, 0.0);
        assert!(metrics.psnr.is_infinite());
        assert!((metrics.ssim.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_constant_offset() {
        // An offset of 0.02 on a range of 2: PSNR = 10 log10(4 / 0.0004) = 40 dB.
        let expected = vec![0.5f32; 64];
        let actual = vec![0.52f32; 64];
        let metrics = measure(&actual, &expected, 8, Some(2.0));
        assert!((metrics.psnr - 40.0).abs() < 1e-3, "{}", metrics.psnr);
        assert!((metrics.max_abs - 0.02).abs() < 1e-6);
    }

    #[test]
    fn ssim_drops_with_noise() {
        let expected: Vec<f32> = (0..256).map(|v| ((v % 16) as f32 / 8.0) - 1.0).collect();
        let noisy: Vec<f32> =
            expected.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 0.2 } else { -0.2 }).collect();
        let ssim = ssim(&noisy, &expected, 16, 2.0).unwrap();
        assert!(ssim < 0.95, "{ssim}");
        assert!(ssim > 0.0, "{ssim}");
        assert_eq!(super::ssim(&expected, &expected, 4, 2.0), None);
    }
}
