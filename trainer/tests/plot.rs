//! Loss plot: PNG output, edge-case inputs, atomic write.

use std::path::Path;

use dcgan_trainer::plot::{plot_losses, render_losses, PlotError, PLOT_HEIGHT, PLOT_WIDTH};
use image::RgbImage;

const GENERATOR_BLUE: [u8; 3] = [0x1f, 0x77, 0xb4];
const DISCRIMINATOR_ORANGE: [u8; 3] = [0xff, 0x7f, 0x0e];

/// Losses shaped like a DCGAN run: G starts high and settles, D drops and
/// hovers, both noisy.
fn training_like_losses(count: usize) -> (Vec<f32>, Vec<f32>) {
    let mut state = 12345u32;
    let mut noise = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let loss_d = (0..count)
        .map(|i| 0.4 + 1.2 * (-(i as f32) / 80.0).exp() + 0.3 * noise())
        .collect();
    let loss_g = (0..count)
        .map(|i| 2.5 + 4.0 * (-(i as f32) / 40.0).exp() + 1.2 * noise())
        .collect();
    (loss_d, loss_g)
}

fn count_colour(image: &RgbImage, colour: [u8; 3]) -> usize {
    image.pixels().filter(|pixel| pixel.0 == colour).count()
}

fn read_png(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

#[test]
fn plot_writes_png_of_right_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.png");
    let (loss_d, loss_g) = training_like_losses(500);

    plot_losses(&loss_d, &loss_g, &path).unwrap();

    let image = read_png(&path);
    assert_eq!(image.dimensions(), (PLOT_WIDTH, PLOT_HEIGHT));
    assert!(count_colour(&image, GENERATOR_BLUE) > 300, "G line missing");
    assert!(
        count_colour(&image, DISCRIMINATOR_ORANGE) > 300,
        "D line missing"
    );

    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["losses.png"], "no temporary file is left behind");
}

#[test]
fn plot_overwrites_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.png");
    std::fs::write(&path, b"old contents").unwrap();

    plot_losses(&[1.0, 0.5], &[2.0, 3.0], &path).unwrap();

    assert_eq!(read_png(&path).dimensions(), (PLOT_WIDTH, PLOT_HEIGHT));
}

#[test]
fn plot_handles_empty_input() {
    let image = render_losses(&[], &[]);
    let legend_only = render_losses(&[], &[]);

    assert_eq!(image.dimensions(), (PLOT_WIDTH, PLOT_HEIGHT));
    let blue = count_colour(&image, GENERATOR_BLUE);
    assert!(
        blue > 0 && blue < 80,
        "only the legend swatch is blue, got {blue} pixels"
    );
    assert_eq!(image, legend_only, "rendering is deterministic");
}

#[test]
fn plot_handles_single_point() {
    let image = render_losses(&[0.7], &[2.0]);

    assert!(
        count_colour(&image, GENERATOR_BLUE) >= 9,
        "the single G point is drawn"
    );
    assert!(
        count_colour(&image, DISCRIMINATOR_ORANGE) >= 9,
        "the single D point is drawn"
    );
}

#[test]
fn plot_skips_non_finite_values() {
    let loss_d = [1.0, f32::NAN, 0.8, 0.7, f32::INFINITY, 0.6];
    let loss_g = [f32::NEG_INFINITY, 3.0, 2.5, f32::NAN, 2.0, 1.5];

    let image = render_losses(&loss_d, &loss_g);

    assert!(count_colour(&image, GENERATOR_BLUE) > 100);
    assert!(count_colour(&image, DISCRIMINATOR_ORANGE) > 100);

    let all_nan = render_losses(&[f32::NAN; 4], &[f32::INFINITY; 4]);
    assert_eq!(all_nan.dimensions(), (PLOT_WIDTH, PLOT_HEIGHT));
}

#[test]
fn plot_handles_long_runs() {
    let (mut loss_d, loss_g) = training_like_losses(200_000);
    loss_d[150_000] = 9.0;

    let image = render_losses(&loss_d, &loss_g);

    // The spike sets the top of the y axis, so some orange pixel is drawn
    // near the top of the axes box.
    let top_rows_with_orange = (40..60)
        .filter(|&y| (0..PLOT_WIDTH).any(|x| image.get_pixel(x, y).0 == DISCRIMINATOR_ORANGE));
    assert!(top_rows_with_orange.count() > 0, "the spike is drawn");
}

#[test]
fn plot_handles_unequal_lengths() {
    let image = render_losses(&[1.0; 10], &[2.0; 300]);

    assert!(count_colour(&image, GENERATOR_BLUE) > 500);
    assert!(count_colour(&image, DISCRIMINATOR_ORANGE) > 10);
}

#[test]
fn plot_rejects_path_without_file_name() {
    let error = plot_losses(&[1.0], &[1.0], Path::new("/")).unwrap_err();

    assert!(matches!(error, PlotError::InvalidPath { .. }), "{error:?}");
}

#[test]
fn plot_reports_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("losses.png");

    let error = plot_losses(&[1.0], &[1.0], &path).unwrap_err();

    assert!(matches!(error, PlotError::Write { .. }), "{error:?}");
    assert!(error.to_string().contains("losses.png"), "{error}");
}

#[test]
fn plot_for_review() {
    let (loss_d, loss_g) = training_like_losses(1500);
    let dir = std::env::temp_dir();

    plot_losses(&loss_d, &loss_g, &dir.join("dcgan-loss-plot.png")).unwrap();
    let (long_d, long_g) = training_like_losses(50_000);
    plot_losses(&long_d, &long_g, &dir.join("dcgan-loss-plot-long.png")).unwrap();
    plot_losses(&[0.7], &[f32::NAN], &dir.join("dcgan-loss-plot-single.png")).unwrap();
    plot_losses(&[], &[], &dir.join("dcgan-loss-plot-empty.png")).unwrap();
}
