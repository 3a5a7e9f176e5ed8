//! Reading the image files of an evaluation folder.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::EvalError;
use crate::data::folder::IMAGE_EXTENSIONS;

/// Lists the image files directly inside `dir` (not in subfolders), sorted
/// by name. Hidden files (names starting with `.`) and other extensions are
/// skipped.
///
/// # Errors
/// [`EvalError::Io`] when the folder cannot be read and
/// [`EvalError::EmptyFolder`] when it contains no image file.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Io { path: dir.to_owned(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| EvalError::Io { path: dir.to_owned(), source })?.path();
        if path.is_file() && is_image_name(&path) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(EvalError::EmptyFolder { dir: dir.to_owned() });
    }
    files.sort();
    Ok(files)
}

fn is_image_name(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|name| name.to_str()).is_none_or(|name| name.starts_with('.'));
    let extension = path.extension().and_then(|ext| ext.to_str()).map(str::to_ascii_lowercase);
    !hidden && extension.is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.as_str()))
}

/// Decodes an image file at its own size as 8-bit RGB (alpha is dropped,
/// grey is expanded).
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be read and [`EvalError::Decode`]
/// when it is not a valid image.
pub fn load_rgb(path: &Path) -> Result<RgbImage, EvalError> {
    let reader = image::ImageReader::open(path)
        .map_err(|source| EvalError::Io { path: path.to_owned(), source })?
        .with_guessed_format()
        .map_err(|source| EvalError::Io { path: path.to_owned(), source })?;
    let image = reader.decode().map_err(|err| EvalError::Decode { path: path.to_owned(), reason: err.to_string() })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(EvalError::Decode { path: path.to_owned(), reason: "the image has no pixels".into() });
    }
    Ok(image.to_rgb8())
}
