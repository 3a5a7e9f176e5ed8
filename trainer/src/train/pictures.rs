//! Pictures of a run: the animation of the sample grids and the real and
//! generated images side by side.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use dcgan_runtime::grid::make_grid;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage};

use super::samples::{SAMPLES_DIR, SAMPLE_COLUMNS, SAMPLE_COUNT, SAMPLE_PADDING};
use super::TrainError;
use crate::checkpoint::write_atomic;
use crate::data::ImageSet;

/// File name of the sample-grid animation inside a run directory.
pub const PROGRESS_GIF_FILE: &str = "progress.gif";

/// File name of the real and generated images side by side.
pub const REAL_VS_FAKE_FILE: &str = "real-vs-fake.png";

/// Frames at most in the animation; longer runs use evenly spaced grids
/// and always the last one.
pub const PROGRESS_GIF_MAX_FRAMES: usize = 100;

/// Time each frame of the animation is shown, in milliseconds.
pub const PROGRESS_GIF_FRAME_MS: u32 = 500;

/// NeuQuant speed of the GIF colour quantisation (1 best to 30 fastest).
const GIF_SPEED: i32 = 10;

/// Writes `RUN_DIR/progress.gif` from the sample grids `samples/iter_*.png`
/// in iteration order, including grids of earlier sessions of a resumed run,
/// then `final_grid` when given.
///
/// Returns `None` when there is no grid yet.
///
/// # Errors
/// [`TrainError::Io`] when the folder or the animation cannot be read or
/// written and [`TrainError::Picture`] when a grid does not decode or the
/// GIF does not encode.
pub(crate) fn write_progress_gif(run_dir: &Path, final_grid: Option<&Path>) -> Result<Option<PathBuf>, TrainError> {
    let mut grids = sample_grids(&run_dir.join(SAMPLES_DIR))?;
    grids.extend(final_grid.map(Path::to_path_buf));
    let grids = pick_frames(grids, PROGRESS_GIF_MAX_FRAMES);
    if grids.is_empty() {
        return Ok(None);
    }

    let path = run_dir.join(PROGRESS_GIF_FILE);
    let picture_error = |file: &Path, reason: String| TrainError::Picture { path: file.to_owned(), reason };
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(Cursor::new(&mut bytes), GIF_SPEED);
        encoder.set_repeat(Repeat::Infinite).map_err(|err| picture_error(&path, err.to_string()))?;
        for grid in &grids {
            let rgba = image::open(grid).map_err(|err| picture_error(grid, err.to_string()))?.to_rgba8();
            let frame = Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(PROGRESS_GIF_FRAME_MS, 1));
            encoder.encode_frame(frame).map_err(|err| picture_error(&path, err.to_string()))?;
        }
    }
    write_atomic(&path, &bytes).map_err(|source| TrainError::Io { path: path.clone(), source })?;
    Ok(Some(path))
}

/// The grids `iter_N.png` in `dir`, sorted by `N`.
fn sample_grids(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| TrainError::Io { path: dir.to_owned(), source })?;
    let mut grids: Vec<(u64, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| TrainError::Io { path: dir.to_owned(), source })?.path();
        let iteration = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("iter_")?.strip_suffix(".png")?.parse::<u64>().ok());
        if let Some(iteration) = iteration {
            grids.push((iteration, path));
        }
    }
    grids.sort();
    Ok(grids.into_iter().map(|(_, path)| path).collect())
}

/// At most `max` evenly spaced items of `items`, always with the last one.
fn pick_frames<T: Clone>(items: Vec<T>, max: usize) -> Vec<T> {
    if items.len() <= max || max < 2 {
        return items.into_iter().take(max.max(1)).collect();
    }
    let last = items.len() - 1;
    (0..max).map(|k| items[k * last / (max - 1)].clone()).collect()
}

/// Writes `RUN_DIR/real-vs-fake.png`: a grid of the first 64 training
/// images beside `fake_grid`, the last grid of the fixed-noise samples.
///
/// # Errors
/// [`TrainError::Plot`] when the PNG cannot be written.
pub(crate) fn write_real_vs_fake(data: &ImageSet, fake_grid: &RgbImage, run_dir: &Path) -> Result<PathBuf, TrainError> {
    let count = data.len().min(SAMPLE_COUNT);
    let tiles: Vec<&[u8]> = (0..count).map(|index| data.image(index)).collect();
    let real_grid = make_grid(&tiles, data.image_size(), SAMPLE_COLUMNS, SAMPLE_PADDING);

    let path = run_dir.join(REAL_VS_FAKE_FILE);
    crate::plot::save_side_by_side(&real_grid, "Real Images", fake_grid, "Fake Images", &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::pick_frames;

    #[test]
    fn pick_frames_keeps_short_lists() {
        assert_eq!(pick_frames(vec![1, 2, 3], 5), vec![1, 2, 3]);
    }

    #[test]
    fn pick_frames_spreads_and_keeps_last() {
        let picked = pick_frames((0..10).collect(), 4);
        assert_eq!(picked, vec![0, 3, 6, 9]);
    }
}
