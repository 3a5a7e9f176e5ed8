//! Peak signal-to-noise ratio (PSNR) of two RGB images.

use image::RgbImage;

use super::ssim::check_same_size;
use super::EvalError;

/// Computes `10 log10(255^2 / MSE)` in decibels, with the mean squared
/// error over every pixel and channel: scikit-image's
/// `peak_signal_noise_ratio(a, b, data_range=255)`. Identical images give
/// `f64::INFINITY`.
///
/// # Errors
/// [`EvalError::Shape`] for images of different sizes.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> Result<f64, EvalError> {
    check_same_size(a, b)?;
    let squared_error: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&p, &q)| {
            let diff = f64::from(p) - f64::from(q);
            diff * diff
        })
        .sum();
    let mse = squared_error / a.as_raw().len() as f64;
    if mse == 0.0 {
        return Ok(f64::INFINITY);
    }
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}
