//! Image grids and PNG output.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};

use image::{ImageFormat, RgbImage};

/// A failure to write a PNG file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The image could not be encoded as PNG.
    #[error("failed to encode {} as PNG: {source}", path.display())]
    Encode {
        /// The destination file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The file could not be written or moved into place.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file that failed: the destination or its temporary sibling.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

/// Tiles square RGB888 images into a grid with torchvision's `make_grid`
/// layout: `columns` tiles per row, `padding` black pixels around every tile,
/// and a last row that may be partly empty.
///
/// 64 tiles of 64x64 in 8 columns with 2 pixels of padding give a 530x530
/// image. `columns == 0` counts as 1.
///
/// # Shapes
///
/// - `images`: each `[image_size, image_size, 3]` bytes, row-major.
/// - returns: width `c * (image_size + padding) + padding` and height
///   `r * (image_size + padding) + padding`, where `c = min(columns, n)` and
///   `r = ceil(n / c)` for `n` images.
///
/// # Panics
///
/// If an image is not `3 * image_size * image_size` bytes long, or the grid
/// is more than `u32::MAX` pixels wide or high.
pub fn make_grid(images: &[&[u8]], image_size: usize, columns: usize, padding: usize) -> RgbImage {
    let tile_len = 3 * image_size * image_size;
    if let Some(index) = images.iter().position(|image| image.len() != tile_len) {
        panic!(
            "make_grid: image {index} has {} bytes, expected {tile_len} for {image_size}x{image_size} RGB",
            images[index].len()
        );
    }

    let columns = columns.max(1).min(images.len());
    let rows = images.len().div_ceil(columns.max(1));
    let step = image_size + padding;
    let width = to_u32(columns * step + padding);
    let height = to_u32(rows * step + padding);
    let mut grid = RgbImage::new(width, height);

    for (index, image) in images.iter().enumerate() {
        let left = (index % columns) * step + padding;
        let top = (index / columns) * step + padding;
        copy_tile(&mut grid, image, image_size, left, top);
    }
    grid
}

/// Copies one `[size, size, 3]` tile into `grid` with its top-left corner at
/// `(left, top)`.
fn copy_tile(grid: &mut RgbImage, tile: &[u8], size: usize, left: usize, top: usize) {
    let grid_width = grid.width() as usize;
    let buffer: &mut [u8] = grid;
    for (row, source) in tile.chunks_exact(3 * size).enumerate() {
        let start = 3 * ((top + row) * grid_width + left);
        buffer[start..start + source.len()].copy_from_slice(source);
    }
}

fn to_u32(pixels: usize) -> u32 {
    u32::try_from(pixels)
        .unwrap_or_else(|_| panic!("make_grid: a grid of {pixels} pixels does not fit in u32"))
}

/// Writes `image` as a PNG file without ever leaving a partial file at `path`:
/// the PNG goes to a temporary file next to it, which is then renamed.
///
/// # Errors
///
/// [`GridError::Encode`] when encoding fails and [`GridError::Write`] when the
/// temporary file cannot be written or renamed; the temporary file is removed
/// on failure.
pub fn save_png_atomic(image: &RgbImage, path: &Path) -> Result<(), GridError> {
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|source| GridError::Encode {
            path: path.to_path_buf(),
            source,
        })?;

    let temporary = temporary_path(path);
    let written = std::fs::write(&temporary, png.get_ref())
        .map_err(|source| GridError::Write {
            path: temporary.clone(),
            source,
        })
        .and_then(|()| {
            std::fs::rename(&temporary, path).map_err(|source| GridError::Write {
                path: path.to_path_buf(),
                source,
            })
        });
    if written.is_err() {
        // Best effort: the temporary file may not exist, and the original error matters more.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `DIR/.NAME.tmp` for `DIR/NAME`, in the same directory so the rename stays
/// on one file system.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "image.png".into(), |name| name.to_string_lossy());
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(size: usize, value: u8) -> Vec<u8> {
        vec![value; 3 * size * size]
    }

    #[test]
    fn tutorial_grid_is_530_pixels() {
        let tiles: Vec<Vec<u8>> = (0..64).map(|_| tile(64, 200)).collect();
        let refs: Vec<&[u8]> = tiles.iter().map(Vec::as_slice).collect();
        let grid = make_grid(&refs, 64, 8, 2);
        assert_eq!(grid.dimensions(), (530, 530));
    }

    #[test]
    fn tiles_sit_inside_black_padding() {
        let tiles = [tile(2, 10), tile(2, 20), tile(2, 30)];
        let refs: Vec<&[u8]> = tiles.iter().map(Vec::as_slice).collect();
        let grid = make_grid(&refs, 2, 2, 1);
        // Two columns, two rows: 2 * (2 + 1) + 1 = 7 pixels each way.
        assert_eq!(grid.dimensions(), (7, 7));
        assert_eq!(grid.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(grid.get_pixel(1, 1).0, [10; 3]);
        assert_eq!(grid.get_pixel(2, 2).0, [10; 3]);
        assert_eq!(grid.get_pixel(3, 1).0, [0, 0, 0]);
        assert_eq!(grid.get_pixel(4, 1).0, [20; 3]);
        assert_eq!(grid.get_pixel(1, 4).0, [30; 3]);
        // The missing fourth tile stays black.
        assert_eq!(grid.get_pixel(4, 4).0, [0, 0, 0]);
    }

    #[test]
    fn fewer_images_than_columns_shrink_the_grid() {
        let tiles = [tile(4, 1), tile(4, 2)];
        let refs: Vec<&[u8]> = tiles.iter().map(Vec::as_slice).collect();
        assert_eq!(make_grid(&refs, 4, 8, 2).dimensions(), (14, 8));
    }

    #[test]
    fn pixels_keep_their_rgb_order() {
        let mut face = tile(1, 0);
        face.copy_from_slice(&[1, 2, 3]);
        let grid = make_grid(&[&face], 1, 1, 0);
        assert_eq!(grid.get_pixel(0, 0).0, [1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "image 2 has 2 bytes")]
    fn wrong_tile_length_panics() {
        let good = tile(1, 0);
        make_grid(&[&good, &[0, 0, 0][..], &[0u8; 2][..]], 1, 1, 0);
    }

    #[test]
    fn save_png_atomic_writes_a_readable_png() {
        let dir = std::env::temp_dir().join(format!("dcgan-grid-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grid.png");
        let image = make_grid(&[&tile(3, 77)], 3, 1, 2);

        save_png_atomic(&image, &path).unwrap();

        let read = image::open(&path).unwrap().to_rgb8();
        assert_eq!(read, image);
        assert!(!temporary_path(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_atomic_names_missing_directory() {
        let path = std::env::temp_dir()
            .join("dcgan-grid-no-such-dir")
            .join("grid.png");
        let err = save_png_atomic(&make_grid(&[], 1, 1, 1), &path).unwrap_err();
        assert!(err.to_string().contains("dcgan-grid-no-such-dir"), "{err}");
    }
}
