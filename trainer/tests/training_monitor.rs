//! Pictures and safeguards of a training run: the sample animation, the
//! real-versus-fake figure, the mode-collapse monitor in the loss log, and
//! the stop on a non-finite loss.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use dcgan_trainer::checkpoint::{checkpoint_path, load_checkpoint, read_checkpoint_info};
use dcgan_trainer::train::{
    read_loss_log, resume, train, TrainError, TrainObserver, LOSSES_FILE, LOSSES_HEADER_WITHOUT_DIVERSITY,
    PROGRESS_GIF_FILE, REAL_VS_FAKE_FILE,
};
use dcgan_trainer::TrainConfig;
use image::AnimationDecoder;

use common::{load_faces, small_config};

#[derive(Default)]
struct Warnings(Vec<String>);

impl TrainObserver for Warnings {
    fn on_warning(&mut self, message: &str) {
        self.0.push(message.to_owned());
    }
}

fn gif_frames(path: &Path) -> usize {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
    decoder.into_frames().count()
}

#[test]
fn run_writes_pictures_and_diversity() {
    let config = TrainConfig { sample_every: 1, ..small_config() };
    let data = load_faces(32, config.image_size);
    let dir = tempfile::tempdir().unwrap();

    let summary = train(&config, &data, dir.path(), "faces", &mut (), &AtomicBool::new(false)).unwrap();

    // Four iteration grids and the final grid.
    let gif = dir.path().join(PROGRESS_GIF_FILE);
    assert_eq!(summary.progress_gif.as_deref(), Some(gif.as_path()));
    assert_eq!(gif_frames(&gif), 5);

    // 32 real images in 4 rows of 8 beside the 8x8 sample grid, each tile
    // 32 pixels with 2 pixels of padding, under a title band.
    let pair = dir.path().join(REAL_VS_FAKE_FILE);
    assert_eq!(summary.real_vs_fake.as_deref(), Some(pair.as_path()));
    assert_eq!(image::image_dimensions(&pair).unwrap(), (3 * 12 + 274 + 274, 28 + 12 + 274));

    let rows = read_loss_log(&dir.path().join(LOSSES_FILE)).unwrap();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let diversity = row.sample_diversity.expect("every iteration rendered a grid");
        assert!(diversity > 0.0 && diversity < 2.0, "{row:?}");
    }
}

#[test]
fn old_loss_log_resumes_with_new_column() {
    let config = TrainConfig { epochs: 2, sample_every: 2, checkpoint_every: 2, stop_after: Some(2), ..small_config() };
    let data = load_faces(32, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    train(&config, &data, dir.path(), "faces", &mut (), &AtomicBool::new(false)).unwrap();

    // Rewrite the log as a 7-column log from before the diversity column.
    let path = dir.path().join(LOSSES_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut old = format!("{LOSSES_HEADER_WITHOUT_DIVERSITY}\n");
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        old.push_str(&fields[..7].join(","));
        old.push('\n');
    }
    std::fs::write(&path, old).unwrap();
    let rows = read_loss_log(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.sample_diversity.is_none()));

    resume(dir.path(), &data, &mut (), &AtomicBool::new(false)).unwrap();
    let rows = read_loss_log(&path).unwrap();
    assert_eq!(rows.iter().map(|row| row.iteration).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(rows[1].sample_diversity, None, "old rows stay empty");
    assert!(rows[3].sample_diversity.is_some(), "new rows have the column");
}

#[test]
fn non_finite_loss_stops_and_keeps_checkpoint() {
    // A huge learning rate makes the networks diverge within a few steps.
    // NOTE: 5e7 was found by trial on this seed: 1e7 never diverges in 8
    // iterations and 1e8 diverges at iteration 1, before any checkpoint, so
    // changes to the kernels' rounding may need a new value.
    let config = TrainConfig { lr: 5e7, epochs: 4, checkpoint_every: 1, sample_every: 0, ..small_config() };
    let data = load_faces(32, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    let mut warnings = Warnings::default();

    let err = train(&config, &data, dir.path(), "faces", &mut warnings, &AtomicBool::new(false)).unwrap_err();

    let (iteration, kept) = match &err {
        TrainError::NonFiniteLoss { iteration, checkpoint, .. } => (*iteration, checkpoint.clone()),
        TrainError::NonFiniteWeights { iteration, checkpoint, .. } => (*iteration, checkpoint.clone()),
        other => panic!("expected a non-finite stop, got {other}"),
    };
    let message = err.to_string();
    assert!(message.contains(&format!("iteration {iteration}")), "{message}");
    assert!(message.contains("--lr"), "{message}");

    let (kept_iteration, kept_path) = kept.expect("an earlier checkpoint is kept");
    assert!(kept_iteration < iteration);
    assert!(message.contains(&kept_path.display().to_string()), "{message}");
    let info = read_checkpoint_info(&checkpoint_path(dir.path())).unwrap();
    assert_eq!(info.progress.iteration, kept_iteration);

    let (state, _) = load_checkpoint(&checkpoint_path(dir.path()), &candle_core::Device::Cpu).unwrap();
    for named in state.named_tensors() {
        let values: Vec<f32> = named.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{} holds non-finite values", named.name);
    }
}
