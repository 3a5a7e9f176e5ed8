//! Training reduced models on real face photos: outputs, checkpoints and
//! exact resumption.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use dcgan_trainer::checkpoint::{checkpoint_path, load_checkpoint, read_checkpoint_info};
use dcgan_trainer::config::CONFIG_FILE;
use dcgan_trainer::train::{
    final_sample_path, read_loss_log, resume, resume_with, sample_path, train, IterationStats, LossRecord,
    ResumeOverrides, StopReason, TrainError, TrainObserver, LOSSES_FILE, LOSSES_HEADER,
};
use dcgan_trainer::TrainConfig;

use common::{load_faces, small_config};

/// Counts events, and optionally raises the stop flag after an iteration.
#[derive(Default)]
struct Recorder<'a> {
    iterations: Vec<u64>,
    log_lines: Vec<String>,
    samples: Vec<String>,
    checkpoints: usize,
    stop_at: Option<(u64, Option<&'a AtomicBool>)>,
}

impl TrainObserver for Recorder<'_> {
    fn on_iteration(&mut self, stats: &IterationStats) {
        self.iterations.push(stats.iteration);
        if let Some((iteration, Some(flag))) = self.stop_at {
            if stats.iteration == iteration {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }

    fn on_log_line(&mut self, line: &str) {
        self.log_lines.push(line.to_owned());
    }

    fn on_sample(&mut self, path: &Path) {
        self.samples.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }

    fn on_checkpoint(&mut self, _path: &Path) {
        self.checkpoints += 1;
    }
}

fn losses(run_dir: &Path) -> Vec<LossRecord> {
    read_loss_log(&run_dir.join(LOSSES_FILE)).unwrap()
}

fn png_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn training_writes_run_outputs() {
    // 64x64 with ngf = ndf = 16: the tutorial's architecture at a quarter of its width.
    let config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        ngf: 16,
        ndf: 16,
        image_size: 64,
        sample_every: 8,
        checkpoint_every: 10,
        log_every: 2,
        ..TrainConfig::default()
    };
    let data = load_faces(128, 64);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut recorder = Recorder::default();

    let summary = train(&config, &data, &run_dir, "faces", &mut recorder, &AtomicBool::new(false)).unwrap();

    assert_eq!(summary.stop_reason, StopReason::Completed);
    assert_eq!((summary.iteration, summary.total_iterations), (24, 24));
    assert_eq!(summary.images, 3 * 128);
    assert_eq!(recorder.iterations, (1..=24).collect::<Vec<_>>());
    assert_eq!(recorder.log_lines.len(), 12, "batches 0, 2, 4 and 6 of each epoch");
    assert!(recorder.log_lines[0].starts_with("[0/3][0/8]\tLoss_D: "), "{}", recorder.log_lines[0]);
    assert!(recorder.log_lines[11].starts_with("[2/3][6/8]\t"), "{}", recorder.log_lines[11]);
    assert_eq!(recorder.samples, ["iter_000008.png", "iter_000016.png", "iter_000024.png", "final.png"]);
    assert_eq!(recorder.checkpoints, 3, "iterations 10, 20 and the end");

    let rows = losses(&run_dir);
    assert_eq!(rows.iter().map(|row| row.iteration).collect::<Vec<_>>(), (1..=24).collect::<Vec<_>>());
    assert_eq!(rows[8].epoch, 1);
    for row in &rows {
        let values = [row.loss_d, row.loss_g, row.d_x, row.d_g_z1, row.d_g_z2];
        assert!(values.iter().all(|v| v.is_finite()), "row {row:?}");
        assert!((0.0..=1.0).contains(&row.d_x), "row {row:?}");
        assert!((0.0..=1.0).contains(&row.d_g_z1), "row {row:?}");
    }
    let first = rows[0];
    let last = rows[23];
    assert!((first.d_x - last.d_x).abs() > 1e-3, "D(x) did not move: {first:?} {last:?}");
    assert!((first.d_g_z1 - last.d_g_z1).abs() > 1e-3, "D(G(z)) did not move: {first:?} {last:?}");
    assert!(rows.iter().all(|row| row.d_g_z2 <= row.d_g_z1 + 0.05), "the D step should lower D(G(z))");
    let header = std::fs::read_to_string(run_dir.join(LOSSES_FILE)).unwrap();
    assert_eq!(header.lines().next(), Some(LOSSES_HEADER));

    // 8 tiles of 64 pixels with 2 pixels of padding around each: 530x530.
    assert_eq!(png_size(&sample_path(&run_dir, 8)), (530, 530));
    assert_eq!(png_size(&final_sample_path(&run_dir)), (530, 530));
    assert_eq!(summary.sample, Some(final_sample_path(&run_dir)));

    let saved = TrainConfig::load(&run_dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(saved, config);
    let info = read_checkpoint_info(&checkpoint_path(&run_dir)).unwrap();
    assert_eq!((info.progress.iteration, info.progress.epoch, info.progress.dataset_len), (24, 3, 128));
    assert_eq!(info.trained_from, "faces");
    assert_eq!(info.config, config);
}

#[test]
fn checkpoint_restores_state_and_exports() {
    let config = TrainConfig { epochs: 1, ..small_config() };
    let data = load_faces(32, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    train(&config, &data, dir.path(), "faces", &mut (), &AtomicBool::new(false)).unwrap();

    let (state, info) = load_checkpoint(&checkpoint_path(dir.path()), &Device::Cpu).unwrap();
    assert_eq!(info.progress.iteration, 2);
    assert_eq!(state.generator_optimizer.step_count(), 2);
    assert_eq!(state.discriminator_optimizer.step_count(), 2);

    // The exporter reads the generator under the shared tensor names.
    let (exported, export_info) = dcgan_export::read_generator(dir.path()).unwrap();
    assert_eq!(exported, state.generator.to_weights().unwrap());
    assert_eq!(export_info.iteration, Some(2));
    assert_eq!(export_info.trained_from, "faces");

    // Training moved the running statistics and the Adam moments.
    let weights = state.generator.to_weights().unwrap();
    let bn = weights.layers[0].batch_norm.as_ref().unwrap();
    assert!(bn.running_mean.iter().any(|&m| m != 0.0));
    let moments = state.generator_optimizer.first_moments();
    assert_eq!(moments[0].name, "netG.main.0.weight");
    let m: Vec<f32> = moments[0].var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    assert!(m.iter().any(|&value| value != 0.0));

    let bytes = std::fs::read(checkpoint_path(dir.path())).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = tensors.names();
    for name in
        ["netD.main.8.weight", "netD.main.3.running_var", "adam.netG.m.main.0.weight", "adam.netD.v.main.3.bias"]
    {
        assert!(names.contains(&name), "{name} missing from the checkpoint");
    }
}

#[test]
fn resume_matches_uninterrupted_run() {
    // 40 images in batches of 16: three iterations per epoch, the last one partial.
    let config = small_config();
    let data = load_faces(40, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    let full_dir = dir.path().join("full");
    let split_dir = dir.path().join("split");
    let never = AtomicBool::new(false);

    let full = train(&config, &data, &full_dir, "faces", &mut (), &never).unwrap();
    assert_eq!(full.iteration, 6);

    let first_half = TrainConfig { stop_after: Some(4), ..config.clone() };
    let stopped = train(&first_half, &data, &split_dir, "faces", &mut (), &never).unwrap();
    assert_eq!(stopped.stop_reason, StopReason::StopAfter);
    assert_eq!(stopped.iteration, 4);
    assert_eq!(read_checkpoint_info(&checkpoint_path(&split_dir)).unwrap().progress.iteration, 4);

    // A row written after the checkpoint, as if the process had died before
    // the next checkpoint, must be dropped on resume.
    let log_path = split_dir.join(LOSSES_FILE);
    let mut text = std::fs::read_to_string(&log_path).unwrap();
    text.push_str("1,5,9,9,0.5,0.5,0.5,\n");
    std::fs::write(&log_path, text).unwrap();

    let resumed = resume(&split_dir, &data, &mut (), &never).unwrap();
    assert_eq!(resumed.stop_reason, StopReason::Completed);
    assert_eq!((resumed.start_iteration, resumed.iteration), (4, 6));

    let expected = losses(&full_dir);
    let actual = losses(&split_dir);
    assert_eq!(actual.len(), 6, "one row per iteration, without duplicates");
    for (row, expected_row) in actual.iter().zip(&expected) {
        assert_eq!(row, expected_row, "iteration {}", row.iteration);
    }

    let (full_state, _) = load_checkpoint(&checkpoint_path(&full_dir), &Device::Cpu).unwrap();
    let (split_state, _) = load_checkpoint(&checkpoint_path(&split_dir), &Device::Cpu).unwrap();
    assert_eq!(full_state.generator.to_weights().unwrap(), split_state.generator.to_weights().unwrap());
}

#[test]
fn stop_flag_checkpoints_and_resumes() {
    let config = TrainConfig { epochs: 1, sample_every: 0, checkpoint_every: 0, ..small_config() };
    let data = load_faces(48, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut recorder = Recorder { stop_at: Some((2, Some(&stop))), ..Recorder::default() };

    let summary = train(&config, &data, dir.path(), "faces", &mut recorder, &stop).unwrap();
    assert_eq!(summary.stop_reason, StopReason::Interrupted);
    assert_eq!(summary.iteration, 2);
    assert_eq!(recorder.checkpoints, 1);
    assert_eq!(recorder.samples, ["iter_000002.png"], "a stopped run leaves a sample of its last state");
    assert_eq!(read_checkpoint_info(&checkpoint_path(dir.path())).unwrap().progress.iteration, 2);

    let overrides = ResumeOverrides { device: Some("cpu".into()), stop_after: None };
    let resumed = resume_with(dir.path(), &data, &overrides, &mut (), &AtomicBool::new(false)).unwrap();
    assert_eq!((resumed.stop_reason, resumed.iteration), (StopReason::Completed, 3));
    assert_eq!(losses(dir.path()).len(), 3);
}

#[test]
fn invalid_runs_are_rejected() {
    let config = TrainConfig { epochs: 1, ..small_config() };
    let data = load_faces(16, config.image_size);
    let dir = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);

    let wrong_size = TrainConfig { image_size: 64, ..config.clone() };
    let err = train(&wrong_size, &data, dir.path(), "faces", &mut (), &never).unwrap_err();
    assert!(matches!(err, TrainError::ImageSize { expected: 64, found: 32 }), "{err}");

    let empty = dcgan_trainer::data::ImageSet::new(config.image_size);
    let err = train(&config, &empty, dir.path(), "faces", &mut (), &never).unwrap_err();
    assert!(matches!(err, TrainError::EmptyData), "{err}");

    let invalid = TrainConfig { lr: 0.0, ..config.clone() };
    let err = train(&invalid, &data, dir.path(), "faces", &mut (), &never).unwrap_err();
    assert!(err.to_string().contains("learning rate 0"), "{err}");

    train(&config, &data, dir.path(), "faces", &mut (), &never).unwrap();
    let err = train(&config, &data, dir.path(), "faces", &mut (), &never).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");

    let fewer = load_faces(8, config.image_size);
    let err = resume(dir.path(), &fewer, &mut (), &never).unwrap_err();
    assert!(matches!(err, TrainError::DatasetChanged { expected: 16, found: 8 }), "{err}");

    let missing = dir.path().join("missing");
    let err = resume(&missing, &data, &mut (), &never).unwrap_err();
    assert!(err.to_string().contains("checkpoint.safetensors"), "{err}");
}
