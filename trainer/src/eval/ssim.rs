//! Structural similarity (SSIM) of two RGB images, as scikit-image computes it.

use image::RgbImage;

use super::EvalError;

/// Standard deviation of the Gaussian window, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// Radius of the Gaussian window: `int(truncate * sigma + 0.5)` with
/// scipy's default `truncate = 3.5`, so the window is 11 x 11.
pub const SSIM_RADIUS: usize = 5;
/// Range of the pixel values (8-bit images).
pub const SSIM_DATA_RANGE: f64 = 255.0;
const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// Computes the mean SSIM of two RGB images of the same size, the average of
/// the three channels' SSIM.
///
/// It equals scikit-image's `structural_similarity(a, b, channel_axis=-1,
/// gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=255)`: local statistics from an 11 x 11 Gaussian window
/// (sigma 1.5), `K1 = 0.01`, `K2 = 0.03`, and the mean over the pixels at
/// least 5 pixels from the border. scikit-image crops that border after
/// filtering, so its filter padding never enters the mean, and this function
/// computes only the pixels it keeps.
///
/// # Errors
/// [`EvalError::Shape`] for images of different sizes and
/// [`EvalError::ImageTooSmall`] for images narrower or lower than 11 pixels.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> Result<f64, EvalError> {
    check_same_size(a, b)?;
    let window = 2 * SSIM_RADIUS + 1;
    if (a.width() as usize) < window || (a.height() as usize) < window {
        return Err(EvalError::ImageTooSmall { width: a.width(), height: a.height(), min: window as u32 });
    }

    let weights = gaussian_weights(SSIM_SIGMA, SSIM_RADIUS);
    let total: f64 = (0..3).map(|channel| channel_ssim(a, b, channel, &weights)).sum();
    Ok(total / 3.0)
}

/// Normalised 1-D Gaussian weights `exp(-x^2 / (2 sigma^2))` for
/// `x = -radius..=radius`, as scipy's `gaussian_filter1d` uses them.
fn gaussian_weights(sigma: f64, radius: usize) -> Vec<f64> {
    let radius = radius as i64;
    let raw: Vec<f64> = (-radius..=radius).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

/// Mean SSIM of one channel over the pixels away from the border.
fn channel_ssim(a: &RgbImage, b: &RgbImage, channel: usize, weights: &[f64]) -> f64 {
    let width = a.width() as usize;
    let height = a.height() as usize;
    let x: Vec<f64> = a.as_raw().iter().skip(channel).step_by(3).map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = b.as_raw().iter().skip(channel).step_by(3).map(|&v| f64::from(v)).collect();
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();

    // Stage 1: filtered planes over the kept region `[inner_h, inner_w]`.
    let filter = |plane: &[f64]| filter_valid(plane, width, height, weights);
    let (mu_x, mu_y) = (filter(&x), filter(&y));
    let (mu_xx, mu_yy, mu_xy) = (filter(&xx), filter(&yy), filter(&xy));

    // Stage 2: the SSIM map and its mean.
    let c1 = (K1 * SSIM_DATA_RANGE).powi(2);
    let c2 = (K2 * SSIM_DATA_RANGE).powi(2);
    let mut sum = 0.0;
    for i in 0..mu_x.len() {
        let (ux, uy) = (mu_x[i], mu_y[i]);
        let var_x = mu_xx[i] - ux * ux;
        let var_y = mu_yy[i] - uy * uy;
        let cov = mu_xy[i] - ux * uy;
        let numerator = (2.0 * ux * uy + c1) * (2.0 * cov + c2);
        let denominator = (ux * ux + uy * uy + c1) * (var_x + var_y + c2);
        sum += numerator / denominator;
    }
    sum / mu_x.len() as f64
}

/// Separable Gaussian filter of a `[height, width]` plane, evaluated only
/// where the whole window lies inside the plane.
///
/// # Shapes
/// Returns `[height - 2r, width - 2r]` with `r` the window radius.
fn filter_valid(plane: &[f64], width: usize, height: usize, weights: &[f64]) -> Vec<f64> {
    let radius = weights.len() / 2;
    let inner_w = width - 2 * radius;
    let inner_h = height - 2 * radius;

    // Along rows (vertical), for every column: [inner_h, width].
    let mut vertical = vec![0.0; inner_h * width];
    for i in 0..inner_h {
        for (k, w) in weights.iter().enumerate() {
            let source = &plane[(i + k) * width..(i + k + 1) * width];
            for (out, v) in vertical[i * width..(i + 1) * width].iter_mut().zip(source) {
                *out += w * v;
            }
        }
    }

    // Along columns (horizontal): [inner_h, inner_w].
    let mut out = vec![0.0; inner_h * inner_w];
    for i in 0..inner_h {
        let row = &vertical[i * width..(i + 1) * width];
        for j in 0..inner_w {
            out[i * inner_w + j] = weights.iter().zip(&row[j..j + weights.len()]).map(|(w, v)| w * v).sum();
        }
    }
    out
}

/// Checks that two images have the same width and height.
pub(crate) fn check_same_size(a: &RgbImage, b: &RgbImage) -> Result<(), EvalError> {
    if a.dimensions() != b.dimensions() {
        return Err(EvalError::Shape {
            what: "second image".into(),
            expected: format!("{}x{} pixels, as the first", a.width(), a.height()),
            found: format!("{}x{} pixels", b.width(), b.height()),
        });
    }
    Ok(())
}
