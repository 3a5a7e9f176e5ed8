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

/// Packs 8-bit red, green and blue into RGB565: 5 bits red (high), 6 bits
/// green, 5 bits blue, each rounded to nearest.
#[inline]
pub fn rgb565(r: u8, g: u8, b: u8) -> u16 {
    let scale = |value: u8, max: u16| (u16::from(value) * max + 127) / 255;
    (scale(r, 31) << 11) | (scale(g, 63) << 5) | scale(b, 31)
}

/// Converts one planar `[3, size, size]` image to RGB565, two bytes per
/// pixel, most significant byte first when `big_endian`.
///
/// `chw.len()` must be `3 * size * size` and `out.len()` `2 * size * size`.
pub fn chw_to_rgb565(chw: &[f32], size: usize, out: &mut [u8], big_endian: bool) {
    let plane = size * size;
    for (pixel, bytes) in out.chunks_exact_mut(2).enumerate().take(plane) {
        let value = rgb565(to_u8(chw[pixel]), to_u8(chw[plane + pixel]), to_u8(chw[2 * plane + pixel]));
        let encoded = if big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
        bytes.copy_from_slice(&encoded);
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

    #[test]
    fn rgb565_packs_rounded_channels() {
        assert_eq!(rgb565(255, 255, 255), 0xFFFF);
        assert_eq!(rgb565(255, 0, 0), 0xF800);
        assert_eq!(rgb565(0, 255, 0), 0x07E0);
        assert_eq!(rgb565(0, 0, 255), 0x001F);
        // 128 / 255 * 31 = 15.56 rounds to 16; * 63 = 31.6 rounds to 32.
        assert_eq!(rgb565(128, 128, 128), (16 << 11) | (32 << 5) | 16);
    }

    #[test]
    fn rgb565_byte_orders() {
        // 1x1 image, pure red: 0xF800.
        let mut out = [0u8; 2];
        chw_to_rgb565(&[1.0, -1.0, -1.0], 1, &mut out, false);
        assert_eq!(out, [0x00, 0xF8]);
        chw_to_rgb565(&[1.0, -1.0, -1.0], 1, &mut out, true);
        assert_eq!(out, [0xF8, 0x00]);
    }
}
