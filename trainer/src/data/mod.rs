//! Training images: a folder loader, a synthetic face set, and the in-memory
//! [`ImageSet`] both produce.

pub mod folder;
pub mod synthetic;

/// Square RGB images held as bytes, ready to batch.
///
/// # Layout
/// Image `i` occupies `pixels[i * s * s * 3 .. (i + 1) * s * s * 3]` with
/// `s = image_size`, row-major, interleaved RGB (`HWC`). Bytes keep memory at
/// a quarter of f32: 12,288 bytes per 64x64 image.
#[derive(Clone, Debug, Default)]
pub struct ImageSet {
    image_size: usize,
    pixels: Vec<u8>,
}

impl ImageSet {
    /// Creates an empty set of `image_size` x `image_size` images.
    pub fn new(image_size: usize) -> Self {
        Self { image_size, pixels: Vec::new() }
    }

    /// Height and width of every image, in pixels.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// Bytes per image: `image_size² × 3`.
    pub fn image_len(&self) -> usize {
        self.image_size * self.image_size * 3
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len().checked_div(self.image_len()).unwrap_or(0)
    }

    /// Whether the set has no image.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Reserves memory for at least `additional` more images, so that loading
    /// a large folder does not reallocate (and briefly double) the buffer.
    pub fn reserve(&mut self, additional: usize) {
        self.pixels.reserve(additional.saturating_mul(self.image_len()));
    }

    /// Appends one image given as interleaved RGB bytes.
    ///
    /// # Panics
    /// If `rgb.len()` is not [`ImageSet::image_len`]: callers produce images
    /// of the set's size, so a mismatch is a bug in the caller.
    pub fn push(&mut self, rgb: &[u8]) {
        assert_eq!(rgb.len(), self.image_len(), "image of the wrong size pushed to ImageSet");
        self.pixels.extend_from_slice(rgb);
    }

    /// The RGB bytes of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }

    /// Writes images `indices` as planar f32 scaled to `[-1, 1]`, the layout
    /// `[N, 3, s, s]` the networks take, into `out`.
    pub fn fill_batch(&self, indices: &[usize], out: &mut Vec<f32>) {
        let plane = self.image_size * self.image_size;
        out.clear();
        out.resize(indices.len() * 3 * plane, 0.0);
        for (slot, &index) in indices.iter().enumerate() {
            let image = self.image(index);
            let chw = &mut out[slot * 3 * plane..(slot + 1) * 3 * plane];
            for (pixel, rgb) in image.chunks_exact(3).enumerate() {
                for channel in 0..3 {
                    chw[channel * plane + pixel] = rgb[channel] as f32 / 127.5 - 1.0;
                }
            }
        }
    }
}
