//! Bilinear resizing as PyTorch's `F.interpolate(mode="bilinear",
//! align_corners=False)` computes it, the resize pytorch-fid applies before
//! its Inception network.

/// Source taps of one output coordinate: two input indices and their weights.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Taps {
    low: usize,
    high: usize,
    low_weight: f32,
    high_weight: f32,
}

/// Taps for every output index along one axis of `input` to `output` pixels.
///
/// PyTorch's rule (`area_pixel_compute_source_index` with
/// `align_corners=False`): source `s = (o + 0.5) * input / output - 0.5`,
/// clamped to at least 0; it blends `floor(s)` and the next index (the last
/// index again at the far edge) with weights `1 - frac(s)` and `frac(s)`.
fn axis_taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let source = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let low = (source as usize).min(input - 1);
            let high = if low < input - 1 { low + 1 } else { low };
            let high_weight = source - low as f32;
            Taps { low, high, low_weight: 1.0 - high_weight, high_weight }
        })
        .collect()
}

/// Resizes one plane of `[in_h, in_w]` values to `[out_h, out_w]`.
///
/// # Shapes
/// `plane`: `[in_h, in_w]` row-major; returns `[out_h, out_w]`.
///
/// # Panics
/// When a size is 0 or `plane.len() != in_h * in_w`; callers check both.
pub fn resize_bilinear(plane: &[f32], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    assert!(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, "resize sizes must be positive");
    assert_eq!(plane.len(), in_h * in_w, "plane length must be in_h * in_w");

    let rows = axis_taps(in_h, out_h);
    let cols = axis_taps(in_w, out_w);
    let mut out = Vec::with_capacity(out_h * out_w);
    for row in &rows {
        let low_row = &plane[row.low * in_w..(row.low + 1) * in_w];
        let high_row = &plane[row.high * in_w..(row.high + 1) * in_w];
        for col in &cols {
            let top = col.low_weight * low_row[col.low] + col.high_weight * low_row[col.high];
            let bottom = col.low_weight * high_row[col.low] + col.high_weight * high_row[col.high];
            out.push(row.low_weight * top + row.high_weight * bottom);
        }
    }
    out
}

/// Converts an RGB888 image to the Inception input of pytorch-fid: values
/// scaled to `[0, 1]`, resized bilinearly to `size` x `size`, then mapped
/// to `[-1, 1]` by `2x - 1`.
///
/// # Shapes
/// `rgb`: `[height, width, 3]` interleaved; returns `[3, size, size]` (CHW).
pub fn inception_input(rgb: &image::RgbImage, size: usize) -> Vec<f32> {
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = Vec::with_capacity(3 * size * size);
    for channel in 0..3 {
        let plane: Vec<f32> = rgb.as_raw().iter().skip(channel).step_by(3).map(|&v| f32::from(v) / 255.0).collect();
        let resized = resize_bilinear(&plane, height, width, size, size);
        out.extend(resized.into_iter().map(|v| 2.0 * v - 1.0));
    }
    out
}
