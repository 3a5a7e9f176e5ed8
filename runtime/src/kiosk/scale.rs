//! Bilinear scaling of a square RGB888 face to a square on screen.
//!
//! Pixel centres are aligned, as in OpenCV's `INTER_LINEAR`: output pixel `d`
//! samples the source at `(d + 0.5) * source / output - 0.5`, clamped to the
//! image, and blends its two neighbours on each axis.

use embedded_graphics::pixelcolor::Rgb888;

/// Source pixels and weight for one output coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    near: usize,
    far: usize,
    far_weight: f32,
}

/// A precomputed bilinear scaling from `source_size` to `output_size` pixels
/// per side.
///
/// The tap table is built once in [`BilinearScaler::new`]; sampling never
/// allocates.
#[derive(Debug, Clone)]
pub struct BilinearScaler {
    source_size: usize,
    taps: Vec<Tap>,
}

impl BilinearScaler {
    /// A scaler from `source_size` to `output_size` pixels per side. Sizes of
    /// 0 count as 1.
    pub fn new(source_size: usize, output_size: usize) -> Self {
        let source_size = source_size.max(1);
        let output_size = output_size.max(1);
        let ratio = source_size as f64 / output_size as f64;
        let last = (source_size - 1) as f64;

        let taps = (0..output_size)
            .map(|d| {
                let position = ((d as f64 + 0.5) * ratio - 0.5).clamp(0.0, last);
                let near = position.floor() as usize;
                Tap { near, far: (near + 1).min(source_size - 1), far_weight: (position - near as f64) as f32 }
            })
            .collect();
        BilinearScaler { source_size, taps }
    }

    /// Pixels per side of the output.
    pub fn output_size(&self) -> usize {
        self.taps.len()
    }

    /// Pixels per side of the source.
    pub fn source_size(&self) -> usize {
        self.source_size
    }

    /// The output pixel at column `x`, row `y`.
    ///
    /// # Shapes
    ///
    /// - `source`: `[source_size, source_size, 3]` bytes, row-major RGB888.
    ///
    /// # Panics
    ///
    /// If `x` or `y` is not below [`BilinearScaler::output_size`] or `source`
    /// is shorter than the shape above.
    #[inline]
    pub fn sample(&self, source: &[u8], x: usize, y: usize) -> Rgb888 {
        let column = self.taps[x];
        let row = self.taps[y];
        let stride = 3 * self.source_size;
        let top = &source[row.near * stride..];
        let bottom = &source[row.far * stride..];

        let mut rgb = [0u8; 3];
        for (channel, out) in rgb.iter_mut().enumerate() {
            let at = |line: &[u8], tap_column: usize| f32::from(line[3 * tap_column + channel]);
            let upper = lerp(at(top, column.near), at(top, column.far), column.far_weight);
            let lower = lerp(at(bottom, column.near), at(bottom, column.far), column.far_weight);
            *out = lerp(upper, lower, row.far_weight).round() as u8;
        }
        Rgb888::new(rgb[0], rgb[1], rgb[2])
    }

    /// The output pixels row by row, for `DrawTarget::fill_contiguous`.
    pub fn pixels<'a>(&'a self, source: &'a [u8]) -> ScaledPixels<'a> {
        ScaledPixels { scaler: self, source, x: 0, y: 0 }
    }

    /// Scales a whole image into a new RGB888 buffer of `output_size` squared
    /// pixels.
    ///
    /// # Shapes
    ///
    /// - `source`: `[source_size, source_size, 3]` bytes.
    /// - returns: `[output_size, output_size, 3]` bytes.
    pub fn scale(&self, source: &[u8]) -> Vec<u8> {
        self.pixels(source)
            .flat_map(|color| {
                use embedded_graphics::pixelcolor::RgbColor;
                [color.r(), color.g(), color.b()]
            })
            .collect()
    }
}

#[inline]
fn lerp(a: f32, b: f32, weight: f32) -> f32 {
    a + (b - a) * weight
}

/// Iterator over a scaled image's pixels, row-major.
#[derive(Debug, Clone)]
pub struct ScaledPixels<'a> {
    scaler: &'a BilinearScaler,
    source: &'a [u8],
    x: usize,
    y: usize,
}

impl Iterator for ScaledPixels<'_> {
    type Item = Rgb888;

    fn next(&mut self) -> Option<Rgb888> {
        let size = self.scaler.output_size();
        if self.y >= size {
            return None;
        }
        let color = self.scaler.sample(self.source, self.x, self.y);
        self.x += 1;
        if self.x == size {
            self.x = 0;
            self.y += 1;
        }
        Some(color)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::SplitMix64;

    /// The textbook formula, evaluated directly in f64 for every pixel.
    fn scale_naive(source: &[u8], source_size: usize, output_size: usize) -> Vec<u8> {
        let ratio = source_size as f64 / output_size as f64;
        let last = (source_size - 1) as f64;
        let coordinate = |d: usize| ((d as f64 + 0.5) * ratio - 0.5).clamp(0.0, last);
        let value = |x: usize, y: usize, c: usize| f64::from(source[3 * (y * source_size + x) + c]);

        let mut out = Vec::with_capacity(3 * output_size * output_size);
        for dy in 0..output_size {
            for dx in 0..output_size {
                let (sx, sy) = (coordinate(dx), coordinate(dy));
                let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(source_size - 1), (y0 + 1).min(source_size - 1));
                let (wx, wy) = (sx - x0 as f64, sy - y0 as f64);
                for c in 0..3 {
                    let top = value(x0, y0, c) * (1.0 - wx) + value(x1, y0, c) * wx;
                    let bottom = value(x0, y1, c) * (1.0 - wx) + value(x1, y1, c) * wx;
                    out.push((top * (1.0 - wy) + bottom * wy).round() as u8);
                }
            }
        }
        out
    }

    fn random_image(size: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64::for_index(seed, 0);
        (0..3 * size * size).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn matches_naive_formula_on_random_images() {
        for (seed, (source_size, output_size)) in
            [(1, 4), (4, 4), (4, 9), (16, 5), (7, 30), (64, 480), (3, 2)].into_iter().enumerate()
        {
            let source = random_image(source_size, seed as u64);
            let fast = BilinearScaler::new(source_size, output_size).scale(&source);
            let naive = scale_naive(&source, source_size, output_size);
            assert_eq!(fast.len(), naive.len());
            // f32 and f64 may round a value that lands on .5 differently.
            let worst = fast.iter().zip(&naive).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{source_size} -> {output_size}: off by {worst}");
        }
    }

    #[test]
    fn same_size_is_identity() {
        let source = random_image(8, 3);
        assert_eq!(BilinearScaler::new(8, 8).scale(&source), source);
    }

    #[test]
    fn upscaled_constant_stays_constant() {
        let source = vec![77u8; 3 * 5 * 5];
        let scaled = BilinearScaler::new(5, 23).scale(&source);
        assert!(scaled.iter().all(|&v| v == 77));
    }

    #[test]
    fn upscaling_is_smooth() {
        // A black-to-white ramp upscaled 4x has no step larger than the
        // source's step divided by the factor, rounded up.
        let source: Vec<u8> = (0..4u8).flat_map(|x| [x * 85; 3]).cycle().take(3 * 16).collect();
        let scaled = BilinearScaler::new(4, 16).scale(&source);
        let row: Vec<u8> = scaled[..3 * 16].chunks(3).map(|p| p[0]).collect();
        let biggest_step = row.windows(2).map(|w| w[1].abs_diff(w[0])).max().unwrap();
        assert!(biggest_step <= 22, "row {row:?}");
    }
}
