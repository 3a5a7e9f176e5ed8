//! Image-folder loader: decodes every image under a folder into an
//! [`ImageSet`], preprocessed as the PyTorch DCGAN tutorial does.
//!
//! # Preprocessing
//! Each file goes through the same steps, in this order:
//!
//! 1. Decode, detecting the format from the file's bytes (the extension is
//!    the fallback). A GIF contributes its first frame only. A JPEG without
//!    its end-of-image marker is rejected as truncated, because image 0.25
//!    would decode the missing part as flat grey without an error.
//! 2. Apply the EXIF orientation, so photos stored sideways come out upright.
//! 3. Convert to 8-bit RGB. Grey images get three equal channels, and images
//!    with an alpha channel are composited over **black**: a fully transparent
//!    pixel becomes `(0, 0, 0)` whatever colour is stored under it.
//! 4. Resize so the shorter side is `image_size`, with the longer side
//!    truncated to `image_size * long / short` as torchvision's
//!    `Resize(image_size)` computes it. The filter is antialiased bilinear
//!    (a triangle widened when downscaling), computed as Pillow's
//!    `Image.resize(size, Image.BILINEAR)` does, the call torchvision makes
//!    for PIL images. A decoded RGB image therefore gives the same bytes as
//!    torchvision's `Resize` then `CenterCrop`. JPEG decoders themselves
//!    (zune-jpeg here, libjpeg in Pillow) can differ by a few levels.
//! 5. Centre-crop to `image_size` x `image_size`, rounding the offset half to
//!    even as torchvision's `CenterCrop` does.
//!
//! # Folder scan
//! The scan recurses into subfolders and matches the extensions in
//! [`IMAGE_EXTENSIONS`] case-insensitively. Files and folders whose names
//! start with `.` are hidden and ignored. Symbolic links to folders are
//! followed, but each folder is visited once (by canonical path), so a link
//! loop cannot make the scan run forever. Paths are sorted, so the same
//! folder always gives the same image order.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use rayon::prelude::*;
use thiserror::Error;

use super::ImageSet;

/// Extensions, compared in lower case, of the files the loader decodes.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "gif", "bmp", "webp"];

/// Number of files decoded in parallel between two progress reports.
const CHUNK_LEN: usize = 256;

/// Settings of [`load_folder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Height and width of the output images, in pixels.
    pub image_size: usize,
    /// Number of decoding threads, where 0 uses rayon's default (all cores,
    /// or `RAYON_NUM_THREADS`).
    pub threads: usize,
    /// Whether a file that fails to decode aborts the load with an error
    /// instead of being skipped with a warning.
    pub strict: bool,
    /// Keeps only the first `limit` usable images in sorted path order.
    pub limit: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            image_size: 64,
            threads: 0,
            strict: false,
            limit: None,
        }
    }
}

/// Counts of loaded, skipped and ignored entries from one [`load_folder`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Number of images loaded into the [`ImageSet`].
    pub loaded: usize,
    /// Image files, and subfolders, that could not be read, each with the
    /// reason. The loader logs one warning for each.
    pub skipped: Vec<(PathBuf, String)>,
    /// Hidden files and folders (name starting with `.`) that were ignored.
    /// The files inside a hidden folder are not counted.
    pub hidden: usize,
    /// Files ignored because their extension is not in [`IMAGE_EXTENSIONS`].
    pub other_files: usize,
}

/// Reasons one image file could not be turned into an RGB image.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The file could not be read.
    #[error("failed to read the file: {0}")]
    Read(#[source] io::Error),
    /// The file has no bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The image has a width or height of 0.
    #[error("the image has no pixels ({width}x{height})")]
    NoPixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The bytes start like none of the supported formats, whatever the
    /// file's extension.
    #[error("the bytes are not a JPEG, PNG, GIF, BMP or WebP image (the file starts with {start}): check the file, or move it out of the image folder")]
    NotAnImage {
        /// The first bytes, as hex or quoted text.
        start: String,
    },
    /// The JPEG data stops before its end-of-image marker.
    #[error("the JPEG data ends before its end-of-image marker, so the file is truncated")]
    TruncatedJpeg,
    /// The bytes are not a supported image, or the image data is corrupt or
    /// truncated.
    #[error("not a valid image: {0}")]
    Image(#[source] ImageError),
}

/// Errors of [`load_folder`].
#[derive(Debug, Error)]
pub enum LoadError {
    /// The requested image size is 0 or does not fit in `u32`.
    #[error("invalid image size {image_size}: expected a positive number of pixels such as 64")]
    InvalidImageSize {
        /// The rejected size.
        image_size: usize,
    },
    /// The requested limit is 0.
    #[error("invalid image limit 0: expected at least 1, or no limit")]
    InvalidLimit,
    /// The folder does not exist.
    #[error("image folder {} does not exist: pass a folder that contains .jpg/.jpeg/.png/.gif/.bmp/.webp files", dir.display())]
    NotFound {
        /// The missing folder.
        dir: PathBuf,
    },
    /// The path exists but is not a folder.
    #[error("{} is not a folder: pass the folder that contains the images, not a single file", path.display())]
    NotADirectory {
        /// The path given as the folder.
        path: PathBuf,
    },
    /// The folder could not be listed.
    #[error("failed to read folder {}: {source}", dir.display())]
    ReadDir {
        /// The folder that could not be listed.
        dir: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// In strict mode, a subfolder or linked file could not be read.
    #[error("failed to read {}: {reason}; fix its permissions, or load without --strict to skip it", path.display())]
    Unreadable {
        /// The subfolder or file.
        path: PathBuf,
        /// The reason it could not be read.
        reason: String,
    },
    /// The scan found no file with an image extension.
    #[error(
        "no images found in {}: expected .jpg/.jpeg/.png/.gif/.bmp/.webp files, searched recursively \
         (ignored: {other_files} with other extensions, {hidden} hidden)",
        dir.display()
    )]
    NoImages {
        /// The folder that was searched.
        dir: PathBuf,
        /// Files ignored for their extension.
        other_files: usize,
        /// Hidden files and folders ignored.
        hidden: usize,
    },
    /// Every image file failed to decode.
    #[error(
        "none of the {skipped} image files in {} could be decoded (the warnings above give each reason): \
         check the files or pass another folder",
        dir.display()
    )]
    NoUsableImages {
        /// The folder that was searched.
        dir: PathBuf,
        /// Number of files that failed.
        skipped: usize,
    },
    /// In strict mode, one file failed to decode.
    #[error("failed to load {}: {source}; remove or replace the file, or load without --strict to skip it", path.display())]
    Decode {
        /// The file that failed.
        path: PathBuf,
        /// The cause of the failure.
        #[source]
        source: DecodeError,
    },
    /// The decoding thread pool could not be created.
    #[error("failed to start {threads} decoding threads: {source}")]
    ThreadPool {
        /// The requested number of threads (0 = rayon's default).
        threads: usize,
        /// The error from rayon.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// Loads every image under `dir`, recursively, as `image_size` x
/// `image_size` RGB (see the module documentation for each step).
///
/// Files that fail to decode are skipped with one `log::warn!` line each and
/// listed in the report, unless `options.strict` is set.
///
/// # Memory
/// The set keeps 8-bit RGB, `image_size² × 3` bytes per image: 12,288 bytes
/// at 64x64, so CelebA's 202,599 photos take about 2.5 GB.
///
/// # Errors
/// See [`LoadError`]: a missing, unreadable or image-free folder, an invalid
/// option, no decodable image, or in strict mode the first file (in sorted
/// order) that fails.
pub fn load_folder(dir: &Path, options: &LoadOptions) -> Result<(ImageSet, LoadReport), LoadError> {
    load_folder_with_progress(dir, options, |_, _| {})
}

/// Loads like [`load_folder`], and calls `on_progress(done, total)` after each
/// batch of files is decoded, for a progress bar. `total` is the number of
/// image files found, so with a limit the load may finish before `done`
/// reaches it.
///
/// # Errors
/// As [`load_folder`].
pub fn load_folder_with_progress(
    dir: &Path,
    options: &LoadOptions,
    mut on_progress: impl FnMut(usize, usize),
) -> Result<(ImageSet, LoadReport), LoadError> {
    check_options(options)?;
    check_folder(dir)?;

    let scan = scan_folder(dir)?;
    let mut report = LoadReport {
        hidden: scan.hidden,
        other_files: scan.other_files,
        ..LoadReport::default()
    };
    if let (true, Some((path, reason))) = (options.strict, scan.unreadable.first()) {
        return Err(LoadError::Unreadable {
            path: path.clone(),
            reason: reason.clone(),
        });
    }
    for (path, reason) in scan.unreadable {
        log::warn!("skipped {}: {reason}", path.display());
        report.skipped.push((path, reason));
    }
    if scan.files.is_empty() {
        return Err(LoadError::NoImages {
            dir: dir.to_path_buf(),
            other_files: scan.other_files,
            hidden: scan.hidden,
        });
    }

    log::info!(
        "loading {} image files from {}",
        scan.files.len(),
        dir.display()
    );
    let images = decode_files(&scan.files, options, &mut report, &mut on_progress)?;
    if images.is_empty() {
        return Err(LoadError::NoUsableImages {
            dir: dir.to_path_buf(),
            skipped: report.skipped.len(),
        });
    }

    report.loaded = images.len();
    log::info!(
        "loaded {} images from {} ({} skipped)",
        report.loaded,
        dir.display(),
        report.skipped.len()
    );
    Ok((images, report))
}

/// Loads one image file and preprocesses it to `image_size` x `image_size`
/// RGB, exactly as [`load_folder`] does for each file.
///
/// # Errors
/// [`DecodeError`] when the file cannot be read, is empty, or is not a valid
/// image.
pub fn load_image(path: &Path, image_size: u32) -> Result<RgbImage, DecodeError> {
    let image = decode_oriented(path)?;
    Ok(preprocess(image, image_size))
}

/// Converts a decoded image to `image_size` x `image_size` RGB: alpha
/// composited over black, shorter side resized to `image_size`, centre crop.
///
/// An `image_size` of 0, or an image without pixels, gives an empty image.
pub fn preprocess(image: DynamicImage, image_size: u32) -> RgbImage {
    if image_size == 0 || image.width() == 0 || image.height() == 0 {
        return RgbImage::new(0, 0);
    }

    let rgb = to_rgb_over_black(image);
    resize_and_centre_crop(rgb, image_size)
}

fn check_options(options: &LoadOptions) -> Result<(), LoadError> {
    let size_fits = u32::try_from(options.image_size).is_ok();
    if options.image_size == 0 || !size_fits {
        return Err(LoadError::InvalidImageSize {
            image_size: options.image_size,
        });
    }
    if options.limit == Some(0) {
        return Err(LoadError::InvalidLimit);
    }
    Ok(())
}

fn check_folder(dir: &Path) -> Result<(), LoadError> {
    match fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(LoadError::NotADirectory {
            path: dir.to_path_buf(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(LoadError::NotFound {
            dir: dir.to_path_buf(),
        }),
        Err(source) => Err(LoadError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}

/// Result of walking a folder tree.
#[derive(Default)]
struct Scan {
    /// Image files, sorted.
    files: Vec<PathBuf>,
    /// Subfolders or links that could not be read, with the reason.
    unreadable: Vec<(PathBuf, String)>,
    hidden: usize,
    other_files: usize,
}

fn scan_folder(dir: &Path) -> Result<Scan, LoadError> {
    let mut scan = Scan::default();
    let mut visited = HashSet::new();
    let root = fs::canonicalize(dir).map_err(|source| LoadError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    visited.insert(root);

    let entries = fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    scan_entries(entries, &mut scan, &mut visited);

    scan.files.sort_unstable();
    Ok(scan)
}

fn scan_subfolder(dir: &Path, scan: &mut Scan, visited: &mut HashSet<PathBuf>) {
    let canonical = match fs::canonicalize(dir) {
        Ok(canonical) => canonical,
        Err(error) => {
            return scan.unreadable.push((
                dir.to_path_buf(),
                format!("failed to resolve the folder: {error}"),
            ))
        }
    };
    if !visited.insert(canonical) {
        log::debug!(
            "not entering {} again: the folder was already scanned",
            dir.display()
        );
        return;
    }

    match fs::read_dir(dir) {
        Ok(entries) => scan_entries(entries, scan, visited),
        Err(error) => scan.unreadable.push((
            dir.to_path_buf(),
            format!("failed to read the folder: {error}"),
        )),
    }
}

fn scan_entries(entries: fs::ReadDir, scan: &mut Scan, visited: &mut HashSet<PathBuf>) {
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                log::debug!("skipped an unreadable folder entry: {error}");
                continue;
            }
        };
        scan_entry(&entry, scan, visited);
    }
}

fn scan_entry(entry: &fs::DirEntry, scan: &mut Scan, visited: &mut HashSet<PathBuf>) {
    let path = entry.path();
    if entry.file_name().to_string_lossy().starts_with('.') {
        log::debug!("ignored hidden entry {}", path.display());
        scan.hidden += 1;
        return;
    }

    // `fs::metadata` follows symbolic links, so a link counts as what it
    // points to. The canonical-path set catches loops.
    let metadata = match fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) => {
            if has_image_extension(&path) {
                scan.unreadable
                    .push((path, format!("failed to read the file's metadata: {error}")));
            } else {
                log::debug!("ignored {}: {error}", path.display());
            }
            return;
        }
    };

    if metadata.is_dir() {
        scan_subfolder(&path, scan, visited);
    } else if metadata.is_file() && has_image_extension(&path) {
        scan.files.push(path);
    } else {
        log::debug!("ignored {}: not an image file", path.display());
        scan.other_files += 1;
    }
}

fn has_image_extension(path: &Path) -> bool {
    let Some(extension) = path.extension().and_then(|extension| extension.to_str()) else {
        return false;
    };
    IMAGE_EXTENSIONS
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known))
}

/// Decodes `files` in parallel, in batches of [`CHUNK_LEN`], and keeps the
/// results in path order.
fn decode_files(
    files: &[PathBuf],
    options: &LoadOptions,
    report: &mut LoadReport,
    on_progress: &mut impl FnMut(usize, usize),
) -> Result<ImageSet, LoadError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|index| format!("image-loader-{index}"))
        .build()
        .map_err(|source| LoadError::ThreadPool {
            threads: options.threads,
            source,
        })?;
    // `check_options` verified that the size fits in u32.
    let image_size = options.image_size as u32;
    let limit = options.limit.unwrap_or(usize::MAX);

    let mut images = ImageSet::new(options.image_size);
    images.reserve(files.len().min(limit));
    let mut done = 0;
    while done < files.len() && images.len() < limit {
        // With a limit, decode only about as many files as are still needed
        // (at least one per thread), so a limit of 64 does not decode a whole batch.
        let wanted = (limit - images.len()).max(pool.current_num_threads());
        let chunk = &files[done..files.len().min(done + wanted.min(CHUNK_LEN))];
        let decoded: Vec<_> = pool.install(|| {
            chunk
                .par_iter()
                .map(|path| load_image(path, image_size))
                .collect()
        });

        for (path, result) in chunk.iter().zip(decoded) {
            if images.len() == limit {
                break;
            }
            match result {
                Ok(image) => images.push(image.as_raw()),
                Err(source) if options.strict => {
                    return Err(LoadError::Decode {
                        path: path.clone(),
                        source,
                    })
                }
                Err(error) => {
                    log::warn!("skipped {}: {error}", path.display());
                    report.skipped.push((path.clone(), error.to_string()));
                }
            }
        }

        done += chunk.len();
        on_progress(done, files.len());
    }
    Ok(images)
}

/// Reads and decodes `path`, then applies its EXIF orientation.
fn decode_oriented(path: &Path) -> Result<DynamicImage, DecodeError> {
    let bytes = fs::read(path).map_err(DecodeError::Read)?;
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }

    // The format comes from the bytes: every supported format starts with a
    // signature, so a file without one is not an image whatever its name.
    let format = image::guess_format(&bytes).map_err(|_| DecodeError::NotAnImage { start: describe_start(&bytes) })?;

    // image 0.25 decodes JPEGs leniently: missing data comes out as flat grey
    // with no error, so truncated files are caught here instead.
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(&bytes)?;
    }

    let mut reader = ImageReader::new(Cursor::new(bytes.as_slice()));
    reader.set_format(format);
    let mut decoder = reader.into_decoder().map_err(DecodeError::Image)?;

    // `ImageReader::decode` applies the same allocation limit (512 MiB by
    // default in image 0.25) before decoding, which `into_decoder` skips.
    Limits::default()
        .reserve(decoder.total_bytes())
        .map_err(DecodeError::Image)?;
    let orientation = decoder.orientation().unwrap_or_else(|error| {
        log::debug!(
            "ignored the unreadable EXIF orientation of {}: {error}",
            path.display()
        );
        image::metadata::Orientation::NoTransforms
    });

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::NoPixels { width, height });
    }

    let mut image = DynamicImage::from_decoder(decoder).map_err(DecodeError::Image)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Formats the first bytes of a file for an error message: quoted when they are
/// printable text, hex otherwise.
fn describe_start(bytes: &[u8]) -> String {
    let start = &bytes[..bytes.len().min(8)];
    if start.iter().all(|byte| byte.is_ascii_graphic() || *byte == b' ') {
        format!("{:?}", String::from_utf8_lossy(start))
    } else {
        start.iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(" ")
    }
}

/// Walks the JPEG marker segments and the entropy-coded scans up to the
/// end-of-image marker (`FF D9`), which a truncated file lacks.
///
/// Segments with a length (including EXIF thumbnails, which are complete
/// JPEGs themselves) are skipped whole. Inside a scan, `FF 00` (a stuffed
/// `FF` byte) and `FF D0`..`FF D7` (restart markers) belong to the data, and
/// any other `FF xx` ends the scan. Stray bytes between segments are skipped,
/// as libjpeg does.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), DecodeError> {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    const TEM: u8 = 0x01;

    let mut position = 0;
    loop {
        // Find the next marker: `FF`, any fill `FF`s, then the marker code.
        position += bytes
            .get(position..)
            .and_then(|rest| rest.iter().position(|&byte| byte == 0xFF))
            .ok_or(DecodeError::TruncatedJpeg)?;
        while bytes.get(position) == Some(&0xFF) {
            position += 1;
        }
        let marker = *bytes.get(position).ok_or(DecodeError::TruncatedJpeg)?;
        position += 1;

        match marker {
            EOI => return Ok(()),
            SOI | TEM | 0xD0..=0xD7 => {}
            _ => {
                let length_bytes = bytes
                    .get(position..position + 2)
                    .ok_or(DecodeError::TruncatedJpeg)?;
                position += usize::from(u16::from_be_bytes([length_bytes[0], length_bytes[1]]));
                if marker == SOS {
                    position = end_of_scan(bytes, position).ok_or(DecodeError::TruncatedJpeg)?;
                }
            }
        }
    }
}

/// Position of the first marker after the entropy-coded data that starts at
/// `start`, or `None` if the data runs to the end of `bytes`.
fn end_of_scan(bytes: &[u8], start: usize) -> Option<usize> {
    let mut position = start;
    loop {
        position += bytes
            .get(position..)?
            .iter()
            .position(|&byte| byte == 0xFF)?;
        match bytes.get(position + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => position += 1,
            _ => return Some(position),
        }
    }
}

/// Converts any colour type to 8-bit RGB, compositing alpha over black.
fn to_rgb_over_black(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }

    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = RgbImage::new(width, height);
    for (out, pixel) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(pixel[3]);
        for channel in 0..3 {
            // Rounded `colour * alpha / 255`, which is at most 255.
            out[channel] = ((u16::from(pixel[channel]) * alpha + 127) / 255) as u8;
        }
    }
    rgb
}

/// Size of the image after torchvision's `Resize(size)`: the shorter side
/// becomes `size` and the longer side `size * long / short`, truncated.
fn resized_dimensions(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let scaled_long = u64::from(size) * u64::from(long) / u64::from(short).max(1);
    let scaled_long = u32::try_from(scaled_long.max(u64::from(size))).unwrap_or(u32::MAX);

    if width <= height {
        (size, scaled_long)
    } else {
        (scaled_long, size)
    }
}

/// Resizes so the shorter side is `size`, then crops the centre `size` x
/// `size` square. Only the pixels inside the crop are computed, so a very
/// long and thin image does not allocate its whole resized version.
fn resize_and_centre_crop(image: RgbImage, size: u32) -> RgbImage {
    let (width, height) = resized_dimensions(image.width(), image.height(), size);
    let window = resample::Window {
        left: centre_offset(width, size),
        top: centre_offset(height, size),
        width: size,
        height: size,
    };
    resample::resize_window(image, width, height, window)
}

/// Offset of a centred span of `inner` inside `outer`:
/// `round((outer - inner) / 2)` with halves rounded to even, as Python's
/// `round` does in torchvision's `center_crop`.
fn centre_offset(outer: u32, inner: u32) -> u32 {
    let margin = outer.saturating_sub(inner);
    let half = margin / 2;
    let is_tie = margin % 2 == 1;
    if is_tie && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Antialiased bilinear resampling that reproduces Pillow's
/// `Image.resize(size, Image.BILINEAR)` for 8-bit RGB, the call torchvision's
/// `Resize` makes for PIL images. It follows `precompute_coeffs`, the 8-bit
/// passes and the pass order of `src/libImaging/Resample.c` in Pillow
/// 13.0.0: a triangle filter widened by the downscale factor, weights in
/// 22-bit fixed point, and one pass per axis, each rounded to bytes.
///
/// Each output pixel depends only on its own weights, so computing just a
/// window of the output gives the same bytes as resizing fully and cropping.
///
/// `image::imageops::resize` with `FilterType::Triangle` computes a similar
/// filter in f32, but is slower and does not match Pillow's rounding.
mod resample {
    use std::ops::Range;

    use image::RgbImage;

    /// Fractional bits of the fixed-point weights: 32 bits minus 8 for the
    /// pixel value minus 2 spare bits for overflow, as in Pillow.
    const PRECISION_BITS: u32 = 32 - 8 - 2;

    /// A rectangle of the resized image: `width` x `height` pixels from
    /// (`left`, `top`).
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Window {
        pub(super) left: u32,
        pub(super) top: u32,
        pub(super) width: u32,
        pub(super) height: u32,
    }

    /// Filter weights of one pass, for a range of output indices.
    struct Coefficients {
        /// First input index and number of taps of each output index.
        bounds: Vec<(usize, usize)>,
        /// Fixed-point weights, `taps_max` per output index.
        weights: Vec<i32>,
        taps_max: usize,
    }

    /// Resizes `image` to `width` x `height` and returns the pixels inside
    /// `window`, which must lie within `width` x `height`.
    ///
    /// A pass whose size does not change is an exact copy (its only weight
    /// is 1), so both passes always run.
    pub(super) fn resize_window(
        image: RgbImage,
        width: u32,
        height: u32,
        window: Window,
    ) -> RgbImage {
        let (in_width, in_height) = image.dimensions();
        let columns = window.left as usize..(window.left + window.width) as usize;
        let rows = window.top as usize..(window.top + window.height) as usize;
        let horizontal = Coefficients::bilinear(in_width as usize, width as usize, columns);
        let mut vertical = Coefficients::bilinear(in_height as usize, height as usize, rows);
        let pixels = image.into_raw();

        // Rounding to bytes between the passes makes their order matter.
        // Pillow runs the vertical pass first when the height shrinks by more
        // than twice as many pixels as the width does.
        let height_loss = i64::from(in_height) - i64::from(height);
        let width_loss = i64::from(in_width) - i64::from(width);
        let vertical_first = height_loss > 0 && height_loss > 2 * width_loss;

        let pixels = if vertical_first {
            let columns_done = resample_columns(&pixels, in_width as usize, &vertical);
            resample_rows(&columns_done, in_width as usize, &horizontal)
        } else {
            // Only the input rows that the vertical pass reads are resampled.
            let row_len = in_width as usize * 3;
            let needed = vertical.input_range();
            let needed_pixels = &pixels[needed.start * row_len..needed.end * row_len];
            let rows_done = resample_rows(needed_pixels, in_width as usize, &horizontal);
            vertical.shift(needed.start);
            resample_columns(&rows_done, window.width as usize, &vertical)
        };

        // The passes produce exactly one byte per channel of the window.
        RgbImage::from_raw(window.width, window.height, pixels)
            .unwrap_or_else(|| RgbImage::new(window.width, window.height))
    }

    impl Coefficients {
        /// Weights of output indices `outputs` when resizing `in_size`
        /// samples to `out_size`.
        fn bilinear(in_size: usize, out_size: usize, outputs: Range<usize>) -> Self {
            let scale = in_size as f64 / out_size as f64;
            let filter_scale = scale.max(1.0);
            let support = filter_scale;
            let taps_max = support.ceil() as usize * 2 + 1;

            let mut bounds = Vec::with_capacity(outputs.len());
            let mut weights = vec![0; outputs.len() * taps_max];
            let mut taps = vec![0.0; taps_max];
            for (index, row) in outputs.zip(weights.chunks_exact_mut(taps_max)) {
                let centre = (index as f64 + 0.5) * scale;
                // `as` truncates towards zero like the C `(int)` cast.
                let first = ((centre - support + 0.5) as i64).max(0) as usize;
                let end = ((centre + support + 0.5) as i64).min(in_size as i64) as usize;
                let count = end.saturating_sub(first);

                let mut total = 0.0;
                for (tap, weight) in taps.iter_mut().enumerate().take(count) {
                    *weight =
                        triangle(((tap + first) as f64 - centre + 0.5) * (1.0 / filter_scale));
                    total += *weight;
                }
                for (fixed, weight) in row.iter_mut().zip(&taps).take(count) {
                    let normalised = if total == 0.0 {
                        *weight
                    } else {
                        weight / total
                    };
                    *fixed = (0.5 + normalised * f64::from(1u32 << PRECISION_BITS)) as i32;
                }
                bounds.push((first, count));
            }
            Self {
                bounds,
                weights,
                taps_max,
            }
        }

        /// Input indices that any output index reads.
        fn input_range(&self) -> Range<usize> {
            let start = self
                .bounds
                .iter()
                .map(|&(first, _)| first)
                .min()
                .unwrap_or(0);
            let end = self
                .bounds
                .iter()
                .map(|&(first, count)| first + count)
                .max()
                .unwrap_or(0);
            start..end.max(start)
        }

        /// Makes the weights read input index `offset` as index 0.
        fn shift(&mut self, offset: usize) {
            for (first, _) in &mut self.bounds {
                *first -= offset;
            }
        }

        fn taps(&self, index: usize) -> (usize, &[i32]) {
            let (first, count) = self.bounds[index];
            (first, &self.weights[index * self.taps_max..][..count])
        }
    }

    fn triangle(x: f64) -> f64 {
        (1.0 - x.abs()).max(0.0)
    }

    /// Rounds a fixed-point sum (which starts at one half) to a byte.
    fn to_byte(sum: i32) -> u8 {
        (sum >> PRECISION_BITS).clamp(0, 255) as u8
    }

    /// Horizontal pass over every interleaved RGB row of `in_width` pixels.
    fn resample_rows(pixels: &[u8], in_width: usize, coefficients: &Coefficients) -> Vec<u8> {
        let out_width = coefficients.bounds.len();
        let rows = pixels.len() / (in_width * 3).max(1);
        let mut out = Vec::with_capacity(out_width * rows * 3);
        for row in pixels.chunks_exact(in_width * 3) {
            for index in 0..out_width {
                let (first, taps) = coefficients.taps(index);
                let mut sums = [1i32 << (PRECISION_BITS - 1); 3];
                for (tap, &weight) in taps.iter().enumerate() {
                    let pixel = &row[(first + tap) * 3..][..3];
                    for channel in 0..3 {
                        sums[channel] += i32::from(pixel[channel]) * weight;
                    }
                }
                out.extend(sums.map(to_byte));
            }
        }
        out
    }

    /// Vertical pass over interleaved RGB rows of `width` pixels.
    fn resample_columns(pixels: &[u8], width: usize, coefficients: &Coefficients) -> Vec<u8> {
        let row_len = width * 3;
        let out_height = coefficients.bounds.len();
        let mut out = Vec::with_capacity(row_len * out_height);
        let mut sums = vec![0i32; row_len];
        for index in 0..out_height {
            let (first, taps) = coefficients.taps(index);
            sums.fill(1 << (PRECISION_BITS - 1));
            for (tap, &weight) in taps.iter().enumerate() {
                let row = &pixels[(first + tap) * row_len..][..row_len];
                for (sum, &value) in sums.iter_mut().zip(row) {
                    *sum += i32::from(value) * weight;
                }
            }
            out.extend(sums.iter().map(|&sum| to_byte(sum)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_offset_rounds_half_to_even() {
        assert_eq!(centre_offset(78, 64), 7);
        assert_eq!(centre_offset(77, 64), 6);
        assert_eq!(centre_offset(79, 64), 8);
        assert_eq!(centre_offset(64, 64), 0);
    }

    #[test]
    fn resize_matches_torchvision_sizes() {
        assert_eq!(resized_dimensions(178, 218, 64), (64, 78));
        assert_eq!(resized_dimensions(218, 178, 64), (78, 64));
        assert_eq!(resized_dimensions(10, 20, 64), (64, 128));
        assert_eq!(resized_dimensions(64, 64, 64), (64, 64));
    }

    #[test]
    fn thin_image_crops_without_full_resize() {
        let thin = RgbImage::from_pixel(1, 200_000, image::Rgb([10, 20, 30]));

        let square = preprocess(DynamicImage::ImageRgb8(thin), 64);

        assert_eq!(square.dimensions(), (64, 64));
        assert!(square.pixels().all(|pixel| pixel.0 == [10, 20, 30]));
    }

    #[test]
    fn preprocess_zero_size_is_empty() {
        let image = DynamicImage::ImageRgb8(pattern());

        assert_eq!(preprocess(image, 0).dimensions(), (0, 0));
    }

    /// Builds a 13x9 RGB test pattern.
    fn pattern() -> RgbImage {
        RgbImage::from_fn(13, 9, |x, y| {
            image::Rgb(
                [
                    (x * 37 + y * 11) % 256,
                    (x * x * 5 + y * 23) % 256,
                    (x * y * 7 + 90) % 256,
                ]
                .map(|value| value as u8),
            )
        })
    }

    /// Resizes of [`pattern`] by Pillow 13.0.0, as
    /// `image.resize((width, height), Image.BILINEAR).tobytes()`.
    #[rustfmt::skip]
    const PILLOW_RESIZES: [(u32, u32, &[u8]); 4] = [
        (5, 4, &[48, 29, 96, 133, 81, 110, 151, 146, 125, 73, 119, 140, 158, 148, 138, 70, 76, 111, 155, 128, 156, 150, 147, 156, 95, 132, 110, 180, 122, 119, 96, 128, 128, 178, 167, 155, 101, 111, 83, 121, 122, 134, 200, 136, 161, 118, 175, 137, 172, 159, 111, 78, 109, 127, 143, 145, 126, 166, 140, 142]),
        (20, 7, &[3, 6, 90, 21, 8, 91, 45, 13, 92, 69, 23, 94, 93, 37, 95, 117, 54, 96, 141, 76, 97, 165, 103, 99, 189, 132, 100, 213, 168, 101, 154, 184, 102, 11, 181, 103, 29, 112, 104, 53, 93, 106, 77, 149, 107, 101, 169, 108, 125, 162, 109, 149, 109, 111, 173, 159, 112, 191, 214, 113, 16, 33, 90, 34, 35, 95, 58, 40, 101, 82, 50, 108, 106, 64, 115, 130, 81, 122, 154, 103, 128, 178, 130, 135, 202, 159, 141, 226, 195, 148, 167, 151, 154, 24, 27, 161, 42, 69, 167, 66, 120, 174, 90, 176, 181, 114, 89, 188, 138, 45, 194, 162, 113, 201, 186, 186, 146, 204, 241, 96, 29, 61, 90, 47, 63, 99, 71, 68, 110, 95, 78, 123, 119, 92, 135, 143, 109, 146, 167, 131, 159, 191, 158, 171, 215, 187, 182, 239, 223, 195, 180, 179, 207, 37, 55, 219, 55, 97, 129, 79, 148, 80, 103, 204, 92, 127, 117, 104, 151, 73, 116, 175, 141, 128, 199, 129, 91, 217, 106, 55, 44, 92, 90, 62, 94, 103, 86, 99, 122, 110, 109, 140, 134, 123, 158, 158, 140, 176, 182, 162, 194, 206, 189, 198, 224, 213, 187, 108, 108, 90, 48, 63, 50, 47, 80, 68, 70, 128, 62, 94, 169, 66, 118, 199, 84, 142, 132, 102, 166, 104, 120, 190, 172, 139, 214, 111, 157, 232, 44, 170, 59, 123, 90, 77, 125, 108, 101, 130, 133, 125, 140, 157, 149, 154, 181, 173, 171, 199, 197, 193, 162, 221, 185, 100, 239, 152, 23, 96, 82, 47, 37, 68, 71, 61, 110, 96, 85, 159, 120, 109, 140, 144, 133, 29, 169, 157, 71, 193, 181, 135, 197, 205, 203, 161, 229, 142, 173, 247, 75, 191, 72, 151, 90, 90, 153, 112, 114, 158, 142, 138, 168, 172, 162, 182, 201, 186, 199, 211, 210, 221, 75, 181, 152, 34, 115, 21, 64, 64, 57, 94, 50, 96, 124, 74, 138, 154, 98, 187, 184, 122, 168, 175, 146, 57, 114, 170, 99, 133, 194, 163, 137, 218, 231, 91, 169, 170, 106, 120, 103, 128, 85, 178, 90, 103, 180, 116, 127, 185, 151, 151, 195, 186, 175, 209, 142, 199, 212, 65, 223, 114, 54, 151, 63, 70, 15, 48, 105, 39, 84, 141, 63, 123, 177, 87, 165, 212, 111, 214, 131, 135, 195, 77, 159, 84, 66, 183, 126, 96, 207, 148, 131, 231, 95, 166, 121, 109, 201, 17, 130, 227]),
        (13, 3, &[14, 29, 90, 51, 34, 99, 88, 49, 108, 125, 74, 116, 162, 109, 125, 199, 154, 134, 236, 209, 143, 17, 82, 151, 54, 93, 128, 91, 178, 137, 128, 81, 146, 165, 122, 154, 202, 205, 99, 44, 92, 90, 81, 97, 118, 118, 112, 146, 155, 137, 174, 192, 172, 174, 229, 189, 145, 95, 101, 87, 47, 81, 115, 84, 156, 86, 121, 156, 114, 158, 80, 142, 195, 185, 142, 232, 72, 142, 74, 155, 90, 111, 160, 137, 148, 175, 185, 185, 200, 168, 222, 171, 55, 99, 56, 70, 40, 79, 118, 77, 144, 165, 114, 219, 148, 151, 48, 99, 188, 143, 147, 225, 184, 130, 102, 107, 177]),
        (4, 9, &[53, 17, 90, 147, 105, 90, 80, 161, 90, 135, 164, 90, 64, 40, 100, 158, 113, 121, 91, 99, 143, 146, 123, 164, 75, 63, 110, 169, 136, 151, 102, 122, 196, 157, 146, 180, 86, 86, 120, 180, 159, 182, 113, 145, 113, 168, 110, 56, 97, 109, 130, 152, 142, 158, 85, 128, 62, 179, 133, 130, 108, 132, 140, 163, 165, 125, 96, 105, 100, 190, 119, 204, 119, 155, 140, 174, 124, 86, 107, 113, 153, 201, 142, 134, 130, 178, 150, 121, 147, 116, 102, 136, 140, 154, 165, 106, 141, 190, 123, 132, 100, 101, 113, 159, 123, 165, 103, 169]),
    ];

    #[test]
    fn resize_matches_pillow_bilinear() {
        let image = pattern();

        for (width, height, expected) in PILLOW_RESIZES {
            let window = resample::Window {
                left: 0,
                top: 0,
                width,
                height,
            };
            let resized = resample::resize_window(image.clone(), width, height, window);
            assert_eq!(resized.as_raw().as_slice(), expected, "{width}x{height}");
        }
    }

    #[test]
    fn resize_window_matches_full_resize() {
        for (width, height, expected) in PILLOW_RESIZES {
            let full = RgbImage::from_raw(width, height, expected.to_vec()).unwrap();
            let window = resample::Window {
                left: 1,
                top: 1,
                width: width - 2,
                height: height - 2,
            };

            let resized = resample::resize_window(pattern(), width, height, window);

            let cropped = image::imageops::crop_imm(&full, 1, 1, width - 2, height - 2).to_image();
            assert_eq!(resized, cropped, "{width}x{height}");
        }
    }

    #[test]
    fn jpeg_completeness_check() {
        let app0 = [0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB];
        let thumbnail = [0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        let scan = [
            0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56,
        ];
        let start = [0xFF, 0xD8];
        let end = [0xFF, 0xD9];

        let complete = [&start[..], &app0, &thumbnail, &scan, &end].concat();
        let two_scans = [&start[..], &scan, &app0, &scan, &end].concat();
        let truncated_scan = [&start[..], &app0, &thumbnail, &scan].concat();
        let truncated_segment = [&start[..], &app0[..4]].concat();

        assert!(check_jpeg_complete(&complete).is_ok());
        assert!(check_jpeg_complete(&two_scans).is_ok());
        assert!(matches!(
            check_jpeg_complete(&truncated_scan),
            Err(DecodeError::TruncatedJpeg)
        ));
        assert!(matches!(
            check_jpeg_complete(&truncated_segment),
            Err(DecodeError::TruncatedJpeg)
        ));
        assert!(matches!(
            check_jpeg_complete(&start),
            Err(DecodeError::TruncatedJpeg)
        ));
    }

    #[test]
    fn alpha_composites_over_black() {
        let mut rgba = image::RgbaImage::new(3, 1);
        rgba.put_pixel(0, 0, image::Rgba([255, 0, 255, 0]));
        rgba.put_pixel(1, 0, image::Rgba([200, 100, 50, 255]));
        rgba.put_pixel(2, 0, image::Rgba([200, 100, 50, 128]));

        let rgb = to_rgb_over_black(DynamicImage::ImageRgba8(rgba));

        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [200, 100, 50]);
        assert_eq!(rgb.get_pixel(2, 0).0, [100, 50, 25]);
    }

    #[test]
    fn decode_rejects_misnamed_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.jpg");
        fs::write(&path, "hello, world\n").unwrap();

        let err = decode_oriented(&path).unwrap_err();
        assert!(matches!(&err, DecodeError::NotAnImage { start } if start == "\"hello, w\""), "{err:?}");
        assert!(err.to_string().contains("not a JPEG, PNG, GIF, BMP or WebP"), "{err}");

        fs::write(&path, [0x00, 0x01, 0xFE]).unwrap();
        let err = decode_oriented(&path).unwrap_err();
        assert!(matches!(&err, DecodeError::NotAnImage { start } if start == "00 01 FE"), "{err:?}");
    }
}
