//! Synthetic cartoon faces: shape, determinism, variety, and a grid to look at.

use dcgan_trainer::data::synthetic::{synthetic_faces, write_synthetic_pngs};
use dcgan_trainer::data::ImageSet;
use image::RgbImage;

fn mean_abs_difference(a: &[u8], b: &[u8]) -> f64 {
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.len() as f64
}

/// Tiles the first `columns * rows` images into one picture, with a 2-pixel gap.
fn grid(images: &ImageSet, columns: u32, rows: u32) -> RgbImage {
    let size = images.image_size() as u32;
    let step = size + 2;
    let mut out = RgbImage::from_pixel(
        columns * step + 2,
        rows * step + 2,
        image::Rgb([255, 255, 255]),
    );

    for index in 0..(columns * rows) as usize {
        let tile = RgbImage::from_raw(size, size, images.image(index).to_vec()).unwrap();
        let x = 2 + (index as u32 % columns) * step;
        let y = 2 + (index as u32 / columns) * step;
        image::imageops::replace(&mut out, &tile, i64::from(x), i64::from(y));
    }
    out
}

#[test]
fn synthetic_count_and_size() {
    let images = synthetic_faces(10, 64, 1);

    assert_eq!(images.len(), 10);
    assert_eq!(images.image_size(), 64);
    assert_eq!(images.image(9).len(), 64 * 64 * 3);
}

#[test]
fn synthetic_other_sizes() {
    for size in [8, 32, 128] {
        let images = synthetic_faces(3, size, 5);
        assert_eq!(images.len(), 3, "size {size}");
        assert_eq!(images.image(2).len(), size * size * 3, "size {size}");
    }
    assert!(synthetic_faces(0, 64, 1).is_empty());
    assert!(synthetic_faces(4, 0, 1).is_empty());
}

#[test]
fn synthetic_is_deterministic() {
    let first = synthetic_faces(20, 64, 42);
    let second = synthetic_faces(20, 64, 42);
    let prefix = synthetic_faces(5, 64, 42);

    for index in 0..20 {
        assert_eq!(first.image(index), second.image(index), "face {index}");
    }
    for index in 0..5 {
        assert_eq!(
            first.image(index),
            prefix.image(index),
            "face {index} depends on the count"
        );
    }
}

#[test]
fn synthetic_seeds_differ() {
    let a = synthetic_faces(4, 64, 1);
    let b = synthetic_faces(4, 64, 2);

    for index in 0..4 {
        assert_ne!(a.image(index), b.image(index), "face {index}");
    }
}

#[test]
fn synthetic_faces_vary() {
    let images = synthetic_faces(50, 64, 7);

    for i in 0..images.len() {
        for j in (i + 1)..images.len() {
            let difference = mean_abs_difference(images.image(i), images.image(j));
            assert!(
                difference > 5.0,
                "faces {i} and {j} are nearly equal ({difference})"
            );
        }
    }

    let mut batch = Vec::new();
    images.fill_batch(&(0..50).collect::<Vec<_>>(), &mut batch);
    let mean = batch.iter().sum::<f32>() / batch.len() as f32;
    let variance = batch
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f32>()
        / batch.len() as f32;
    assert!(mean.abs() < 0.5, "mean {mean}");
    assert!(
        variance.sqrt() > 0.25,
        "standard deviation {}",
        variance.sqrt()
    );
}

#[test]
fn synthetic_face_centre_is_skin() {
    let images = synthetic_faces(30, 64, 3);

    for index in 0..images.len() {
        // Between the eyes and the nose, every face shows skin, which is
        // warm: red is at least green and blue.
        let image = images.image(index);
        let at = ((33 * 64) + 32) * 3;
        let [r, g, b] = [image[at], image[at + 1], image[at + 2]];
        assert!(
            r >= g && g >= b.saturating_sub(10),
            "face {index} centre is {:?}",
            [r, g, b]
        );
    }
}

#[test]
fn synthetic_grid_png() {
    let images = synthetic_faces(64, 64, 999);
    let path = std::env::temp_dir().join("dcgan-synthetic-grid.png");

    grid(&images, 8, 8).save(&path).unwrap();

    let reread = image::open(&path).unwrap();
    assert_eq!((reread.width(), reread.height()), (8 * 66 + 2, 8 * 66 + 2));
}

#[test]
fn write_pngs_to_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces");

    write_synthetic_pngs(&out, 3, 32, 9).unwrap();

    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["face_000000.png", "face_000001.png", "face_000002.png"]
    );
    let first = image::open(out.join("face_000000.png")).unwrap().to_rgb8();
    assert_eq!(
        first.as_raw().as_slice(),
        synthetic_faces(1, 32, 9).image(0)
    );
}
