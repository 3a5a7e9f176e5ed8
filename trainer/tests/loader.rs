//! Image-folder loader on real awkward files and real CelebA faces.

use std::path::{Path, PathBuf};

use dcgan_trainer::data::folder::{load_folder, load_image, LoadError, LoadOptions};
use dcgan_trainer::data::ImageSet;
use image::RgbImage;

fn shared_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name)
}

fn awkward_dir() -> PathBuf {
    shared_data("awkward-images")
}

fn load_awkward() -> (ImageSet, dcgan_trainer::data::folder::LoadReport) {
    load_folder(&awkward_dir(), &LoadOptions::default()).expect("awkward folder loads")
}

/// Index in the sorted load order of the file whose name contains `needle`.
fn index_of(needle: &str) -> usize {
    let mut usable = [
        "exif_orientation_6_stored_sideways__052926.jpg",
        "grayscale_8bit__119591.jpg",
        "nested_subfolder/inner/plain_face_in_nested_folder__174712.jpg",
        "palette_256colours__137986.gif",
        "rgba_transparent_bg__092983.png",
        "uppercase_extension__134956.JPG",
    ];
    usable.sort_unstable_by_key(|name| awkward_dir().join(name));
    usable
        .iter()
        .position(|name| name.contains(needle))
        .expect("known file")
}

fn pixel(images: &ImageSet, index: usize, x: usize, y: usize) -> [u8; 3] {
    let size = images.image_size();
    let start = (y * size + x) * 3;
    let image = images.image(index);
    [image[start], image[start + 1], image[start + 2]]
}

fn mean_abs_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.len() as f64
}

#[test]
fn awkward_folder_totals() {
    let (images, report) = load_awkward();

    assert_eq!(images.len(), 6);
    assert_eq!(report.loaded, 6);
    assert_eq!(report.skipped.len(), 2, "skipped: {:?}", report.skipped);
    assert_eq!(report.hidden, 1);
    assert_eq!(images.image_size(), 64);
    assert_eq!(images.image(0).len(), 64 * 64 * 3);

    let skipped_names: Vec<String> = report
        .skipped
        .iter()
        .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        skipped_names,
        ["truncated_at_half__052093.jpg", "zero_bytes.jpg"]
    );
    assert!(
        report.skipped[1].1.contains("empty"),
        "reason: {}",
        report.skipped[1].1
    );
}

#[test]
fn awkward_folder_order_is_deterministic() {
    let (first, _) = load_awkward();
    let options = LoadOptions {
        threads: 1,
        ..LoadOptions::default()
    };
    let (second, _) = load_folder(&awkward_dir(), &options).unwrap();

    for index in 0..first.len() {
        assert_eq!(
            first.image(index),
            second.image(index),
            "image {index} differs"
        );
    }
}

#[test]
fn grayscale_has_equal_channels() {
    let (images, _) = load_awkward();
    let gray = images.image(index_of("grayscale"));

    for rgb in gray.chunks_exact(3) {
        assert_eq!(rgb[0], rgb[1]);
        assert_eq!(rgb[1], rgb[2]);
    }
    let distinct: std::collections::HashSet<u8> = gray.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "the grey face should have many levels, got {}",
        distinct.len()
    );
}

#[test]
fn transparent_background_is_black() {
    let (images, _) = load_awkward();
    let index = index_of("rgba");
    let last = images.image_size() - 1;

    for (x, y) in [(0, 0), (last, 0), (0, last), (last, last)] {
        let [r, g, b] = pixel(&images, index, x, y);
        assert!(
            r < 10 && g < 10 && b < 10,
            "corner ({x}, {y}) is {:?}, expected black",
            [r, g, b]
        );
    }

    let centre = images.image_size() / 2;
    let face = pixel(&images, index, centre, centre);
    assert!(
        face.iter().any(|&channel| channel > 40),
        "the face in the middle is not black: {face:?}"
    );
}

#[test]
fn palette_gif_is_coloured() {
    let (images, _) = load_awkward();
    let gif = images.image(index_of("palette"));

    let coloured = gif
        .chunks_exact(3)
        .filter(|rgb| rgb[0] != rgb[1] || rgb[1] != rgb[2])
        .count();
    assert!(coloured > gif.len() / 6, "only {coloured} coloured pixels");
}

#[test]
fn exif_rotated_face_is_upright() {
    let (images, _) = load_awkward();
    let rotated_file = images.image(index_of("exif"));
    let upright = load_image(&shared_data("faces/052926.jpg"), 64).unwrap();
    let sideways = image::imageops::rotate90(&upright);

    let upright_difference = mean_abs_difference(rotated_file, upright.as_raw());
    let sideways_difference = mean_abs_difference(rotated_file, sideways.as_raw());

    assert!(
        upright_difference < 6.0,
        "upright difference {upright_difference}"
    );
    assert!(
        sideways_difference > 4.0 * upright_difference,
        "sideways {sideways_difference} vs upright {upright_difference}"
    );
}

#[test]
fn uppercase_and_nested_files_match_sources() {
    let (images, _) = load_awkward();

    for (needle, source) in [
        ("uppercase", "faces/134956.jpg"),
        ("nested", "faces/174712.jpg"),
    ] {
        let expected = load_image(&shared_data(source), 64).unwrap();
        assert_eq!(
            images.image(index_of(needle)),
            expected.as_raw().as_slice(),
            "{needle}"
        );
    }
}

#[test]
fn strict_mode_names_bad_file() {
    let options = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let error = load_folder(&awkward_dir(), &options).unwrap_err();

    assert!(matches!(error, LoadError::Decode { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("truncated_at_half__052093.jpg"),
        "{message}"
    );
    assert!(message.contains("strict"), "{message}");
}

#[test]
fn strict_mode_names_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shared_data("faces/000058.jpg"), dir.path().join("a.jpg")).unwrap();
    std::fs::write(dir.path().join("b.jpg"), b"").unwrap();
    let options = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };

    let message = load_folder(dir.path(), &options).unwrap_err().to_string();

    assert!(message.contains("b.jpg"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn truncated_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shared_data("faces/000058.jpg"),
        dir.path().join("complete.jpg"),
    )
    .unwrap();
    let sources = [
        ("faces/000086.jpg", "cut.jpg"),
        ("awkward-images/rgba_transparent_bg__092983.png", "cut.png"),
        ("awkward-images/palette_256colours__137986.gif", "cut.gif"),
    ];
    for (source, name) in sources {
        let bytes = std::fs::read(shared_data(source)).unwrap();
        std::fs::write(dir.path().join(name), &bytes[..bytes.len() * 2 / 3]).unwrap();
    }

    let (images, report) = load_folder(dir.path(), &LoadOptions::default()).unwrap();

    assert_eq!(images.len(), 1);
    let skipped: Vec<String> = report
        .skipped
        .iter()
        .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        skipped,
        ["cut.gif", "cut.jpg", "cut.png"],
        "{:?}",
        report.skipped
    );
    assert!(
        report.skipped[1].1.contains("truncated"),
        "{}",
        report.skipped[1].1
    );
}

#[test]
fn all_faces_load_without_skips() {
    let (images, report) = load_folder(&shared_data("faces"), &LoadOptions::default()).unwrap();

    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(images.len(), report.loaded);
    assert!(images.len() > 2_000, "{} faces", images.len());
}

#[test]
fn missing_folder_error() {
    let missing = awkward_dir().join("no-such-folder");
    let error = load_folder(&missing, &LoadOptions::default()).unwrap_err();

    assert!(matches!(error, LoadError::NotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("no-such-folder"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn file_instead_of_folder_error() {
    let file = shared_data("faces/000058.jpg");
    let error = load_folder(&file, &LoadOptions::default()).unwrap_err();

    assert!(
        matches!(error, LoadError::NotADirectory { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("000058.jpg"), "{error}");
}

#[test]
fn empty_folder_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not an image").unwrap();
    std::fs::write(dir.path().join(".hidden.jpg"), b"").unwrap();

    let error = load_folder(dir.path(), &LoadOptions::default()).unwrap_err();

    assert!(
        matches!(
            error,
            LoadError::NoImages {
                other_files: 1,
                hidden: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(".jpg/.jpeg/.png/.gif/.bmp/.webp"),
        "{message}"
    );
    assert!(message.contains("recursively"), "{message}");
}

#[test]
fn only_broken_files_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.png"), b"").unwrap();
    std::fs::write(dir.path().join("text.jpg"), b"hello, not a jpeg").unwrap();

    let error = load_folder(dir.path(), &LoadOptions::default()).unwrap_err();

    assert!(
        matches!(error, LoadError::NoUsableImages { skipped: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_options_are_rejected() {
    let zero_size = LoadOptions {
        image_size: 0,
        ..LoadOptions::default()
    };
    let zero_limit = LoadOptions {
        limit: Some(0),
        ..LoadOptions::default()
    };

    let size_error = load_folder(&awkward_dir(), &zero_size).unwrap_err();
    let limit_error = load_folder(&awkward_dir(), &zero_limit).unwrap_err();

    assert!(
        matches!(size_error, LoadError::InvalidImageSize { image_size: 0 }),
        "{size_error:?}"
    );
    assert!(
        matches!(limit_error, LoadError::InvalidLimit),
        "{limit_error:?}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_loop_is_scanned_once() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::copy(shared_data("faces/000058.jpg"), inner.join("face.jpg")).unwrap();
    std::os::unix::fs::symlink(dir.path(), inner.join("loop")).unwrap();
    std::os::unix::fs::symlink(
        shared_data("faces/000086.jpg"),
        dir.path().join("linked.jpg"),
    )
    .unwrap();

    let (images, report) = load_folder(dir.path(), &LoadOptions::default()).unwrap();

    assert_eq!(images.len(), 2);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
}

#[test]
fn faces_with_limit() {
    let options = LoadOptions {
        limit: Some(64),
        ..LoadOptions::default()
    };
    let (images, report) = load_folder(&shared_data("faces"), &options).unwrap();

    assert_eq!(images.len(), 64);
    assert_eq!(report.loaded, 64);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(images.image_size(), 64);

    let first = load_image(&shared_data("faces/000058.jpg"), 64).unwrap();
    assert_eq!(
        images.image(0),
        first.as_raw().as_slice(),
        "sorted order starts with 000058.jpg"
    );

    let mut batch = Vec::new();
    images.fill_batch(&[0, 63], &mut batch);
    assert_eq!(batch.len(), 2 * 3 * 64 * 64);
    assert!(batch.iter().all(|value| (-1.0..=1.0).contains(value)));
    let mean = batch.iter().sum::<f32>() / batch.len() as f32;
    assert!(
        mean.abs() < 0.8,
        "a photo batch should not be saturated, mean {mean}"
    );
}

#[test]
fn other_image_sizes() {
    let options = LoadOptions {
        image_size: 32,
        limit: Some(3),
        threads: 2,
        ..LoadOptions::default()
    };
    let (images, _) = load_folder(&shared_data("faces"), &options).unwrap();

    assert_eq!(images.len(), 3);
    assert_eq!(images.image(0).len(), 32 * 32 * 3);
    let single: RgbImage = load_image(&shared_data("faces/000058.jpg"), 32).unwrap();
    assert_eq!(single.dimensions(), (32, 32));
}
