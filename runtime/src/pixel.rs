//! Conversion from generator output to 8-bit pixels.

/// Maps a generator output in `[-1, 1]` to a byte: `((x + 1) / 2 * 255)`
/// rounded to nearest and clamped to `0..=255`. NaN maps to 0.
#[inline]
pub fn to_u8(x: f32) -> u8 {
    let scaled = (x + 1.0) * 0.5 * 255.0;
    // `as` saturates, and maps NaN to 0.
    libm::roundf(scaled) as u8
}

/// Converts one planar `[3, size, size]` image to interleaved RGB888 bytes.
///
/// `chw.len()` must be `3 * size * size` and `rgb.len()` the same.
pub fn chw_to_rgb888(chw: &[f32], size: usize, rgb: &mut [u8]) {
    let plane = size * size;
    for (pixel, out) in rgb.chunks_exact_mut(3).enumerate().take(plane) {
        out[0] = to_u8(chw[pixel]);
        out[1] = to_u8(chw[plane + pixel]);
        out[2] = to_u8(chw[2 * plane + pixel]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_scales_rounds_and_clamps() {
        assert_eq!(to_u8(-1.0), 0);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(0.0), 128); // 127.5 rounds away from zero
        assert_eq!(to_u8(-2.0), 0);
        assert_eq!(to_u8(3.0), 255);
        assert_eq!(to_u8(f32::NAN), 0);
    }

    #[test]
    fn chw_interleaves_channels() {
        // 1x1 image: R = 1, G = -1, B = 0.
        let mut rgb = [0u8; 3];
        chw_to_rgb888(&[1.0, -1.0, 0.0], 1, &mut rgb);
        assert_eq!(rgb, [255, 0, 128]);
    }
}
