//! Loss plot: the generator and discriminator losses per iteration, drawn
//! like the PyTorch DCGAN tutorial's "Generator and Discriminator Loss During
//! Training" figure, as a PNG.
//!
//! Drawing uses embedded-graphics primitives and its built-in mono fonts, so
//! no system font or plotting library is needed.

use std::convert::Infallible;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_7X13, FONT_9X15_BOLD};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, ImageError, RgbImage};
use thiserror::Error;

/// Width of the plot image, in pixels.
pub const PLOT_WIDTH: u32 = 800;
/// Height of the plot image, in pixels.
pub const PLOT_HEIGHT: u32 = 450;

/// Margins between the image border and the axes box, in pixels.
const MARGIN_LEFT: i32 = 78;
const MARGIN_RIGHT: i32 = 24;
const MARGIN_TOP: i32 = 40;
const MARGIN_BOTTOM: i32 = 52;

/// Matplotlib's first two default colours, which the tutorial's plot uses
/// for G and D.
const GENERATOR_COLOUR: Rgb888 = Rgb888::new(0x1f, 0x77, 0xb4);
const DISCRIMINATOR_COLOUR: Rgb888 = Rgb888::new(0xff, 0x7f, 0x0e);
const TEXT_COLOUR: Rgb888 = Rgb888::new(0x20, 0x20, 0x20);
const GRID_COLOUR: Rgb888 = Rgb888::new(0xe6, 0xe6, 0xe6);
const BACKGROUND: Rgb888 = Rgb888::WHITE;

/// Approximate number of ticks per axis.
const TICK_TARGET: f64 = 6.0;

/// Errors of [`plot_losses`].
#[derive(Debug, Error)]
pub enum PlotError {
    /// The output path names no file.
    #[error("invalid loss plot path {}: expected a file path such as losses.png", path.display())]
    InvalidPath {
        /// The rejected path.
        path: PathBuf,
    },
    /// Creating, writing or renaming the file failed.
    #[error("failed to write loss plot {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// PNG encoding failed.
    #[error("failed to encode loss plot {} as PNG: {source}", path.display())]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder error.
        #[source]
        source: ImageError,
    },
}

/// Draws `loss_d` and `loss_g` against the iteration index and writes the
/// plot to `path` as a [`PLOT_WIDTH`] x [`PLOT_HEIGHT`] PNG.
///
/// The file is written to a temporary file next to `path` and renamed over
/// it, so a reader never sees half a PNG. See [`render_losses`] for how the
/// data is drawn.
///
/// # Errors
/// [`PlotError`] when `path` names no file, or writing or encoding fails.
pub fn plot_losses(loss_d: &[f32], loss_g: &[f32], path: &Path) -> Result<(), PlotError> {
    let image = render_losses(loss_d, loss_g);
    write_png_atomically(&image, path)
}

/// Draws the loss plot into an image of [`PLOT_WIDTH`] x [`PLOT_HEIGHT`].
///
/// Both series share the x axis (iteration index) and the y axis. NaN and
/// infinite values are left out and break the line. When a series has more
/// points than the axes have pixel columns, each column shows the minimum
/// to maximum of the points that fall in it, so spikes stay visible. Empty
/// input draws empty axes with a "no data" note.
pub fn render_losses(loss_d: &[f32], loss_g: &[f32]) -> RgbImage {
    let mut canvas = Canvas(RgbImage::new(PLOT_WIDTH, PLOT_HEIGHT));
    let _ = canvas.clear(BACKGROUND);

    let area = plot_area();
    let axes = Axes::fit(area, &[loss_g, loss_d]);
    draw_grid_and_ticks(&mut canvas, &axes);
    draw_series(&mut canvas, &axes, loss_g, GENERATOR_COLOUR);
    draw_series(&mut canvas, &axes, loss_d, DISCRIMINATOR_COLOUR);
    draw_frame_and_labels(&mut canvas, area);
    draw_legend(&mut canvas, area, &[GENERATOR_COLOUR, DISCRIMINATOR_COLOUR]);

    if !axes.has_data {
        let centre = area.center();
        draw_text(
            &mut canvas,
            "no data",
            centre,
            &FONT_9X15_BOLD,
            Alignment::Center,
            TEXT_COLOUR,
        );
    }
    canvas.0
}

/// An [`RgbImage`] that embedded-graphics draws into. Pixels outside it are
/// clipped.
struct Canvas(RgbImage);

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, colour) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if x < self.0.width() && y < self.0.height() {
                self.0
                    .put_pixel(x, y, image::Rgb([colour.r(), colour.g(), colour.b()]));
            }
        }
        Ok(())
    }
}

/// Returns the axes box, in image pixels.
fn plot_area() -> Rectangle {
    let top_left = Point::new(MARGIN_LEFT, MARGIN_TOP);
    let width = PLOT_WIDTH as i32 - MARGIN_LEFT - MARGIN_RIGHT;
    let height = PLOT_HEIGHT as i32 - MARGIN_TOP - MARGIN_BOTTOM;
    Rectangle::new(top_left, Size::new(width as u32, height as u32))
}

/// Data ranges of both axes and their mapping to the pixels of `area`.
struct Axes {
    area: Rectangle,
    /// Last iteration index (at least 1).
    x_max: f64,
    /// Iteration range shown, `0..=x_max` plus margins.
    x_low: f64,
    x_high: f64,
    /// Loss range shown, the finite values plus margins.
    y_min: f64,
    y_max: f64,
    /// Whether any series has a finite value.
    has_data: bool,
}

impl Axes {
    /// Fits the axes to the iterations and finite values of `series`, with
    /// a 5% margin on each side as matplotlib adds.
    fn fit(area: Rectangle, series: &[&[f32]]) -> Self {
        let longest = series.iter().map(|values| values.len()).max().unwrap_or(0);
        let finite = series
            .iter()
            .flat_map(|values| values.iter())
            .filter(|value| value.is_finite());
        let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &value| {
            (low.min(f64::from(value)), high.max(f64::from(value)))
        });
        let has_data = low <= high;

        let (y_min, y_max) = match (has_data, high - low) {
            (false, _) => (0.0, 1.0),
            (true, span) if span <= f64::EPSILON * high.abs().max(1.0) => (low - 1.0, high + 1.0),
            (true, span) => (low - 0.05 * span, high + 0.05 * span),
        };
        let x_max = (longest.saturating_sub(1) as f64).max(1.0);
        let (x_low, x_high) = (-0.05 * x_max, 1.05 * x_max);
        Self {
            area,
            x_max,
            x_low,
            x_high,
            y_min,
            y_max,
            has_data,
        }
    }

    fn pixel_x(&self, index: f64) -> f64 {
        let left = f64::from(self.area.top_left.x);
        left + (index - self.x_low) / (self.x_high - self.x_low)
            * f64::from(self.area.size.width - 1)
    }

    /// Inverse of [`Axes::pixel_x`].
    fn index_at(&self, pixel_x: f64) -> f64 {
        let left = f64::from(self.area.top_left.x);
        self.x_low
            + (pixel_x - left) / f64::from(self.area.size.width - 1) * (self.x_high - self.x_low)
    }

    fn pixel_y(&self, value: f64) -> f64 {
        let bottom = f64::from(self.area.top_left.y + self.area.size.height as i32 - 1);
        bottom
            - (value - self.y_min) / (self.y_max - self.y_min)
                * f64::from(self.area.size.height - 1)
    }

    fn point(&self, index: f64, value: f64) -> Point {
        Point::new(
            self.pixel_x(index).round() as i32,
            self.pixel_y(value).round() as i32,
        )
    }
}

fn draw_grid_and_ticks(canvas: &mut Canvas, axes: &Axes) {
    let area = axes.area;
    let bottom = area.top_left.y + area.size.height as i32 - 1;
    let right = area.top_left.x + area.size.width as i32 - 1;
    let grid = PrimitiveStyle::with_stroke(GRID_COLOUR, 1);
    let tick = PrimitiveStyle::with_stroke(TEXT_COLOUR, 1);

    // Iterations are whole numbers, so x ticks are at least 1 apart.
    let x_step = nice_step(axes.x_max / TICK_TARGET).max(1.0);
    for value in tick_values(0.0, axes.x_max, x_step) {
        let x = axes.pixel_x(value).round() as i32;
        let _ = Line::new(Point::new(x, area.top_left.y), Point::new(x, bottom))
            .into_styled(grid)
            .draw(canvas);
        let _ = Line::new(Point::new(x, bottom), Point::new(x, bottom + 4))
            .into_styled(tick)
            .draw(canvas);
        let label = format_tick(value, x_step);
        draw_text(
            canvas,
            &label,
            Point::new(x, bottom + 16),
            &FONT_6X10,
            Alignment::Center,
            TEXT_COLOUR,
        );
    }

    let y_step = nice_step((axes.y_max - axes.y_min) / TICK_TARGET);
    for value in tick_values(axes.y_min, axes.y_max, y_step) {
        let y = axes.pixel_y(value).round() as i32;
        let _ = Line::new(Point::new(area.top_left.x, y), Point::new(right, y))
            .into_styled(grid)
            .draw(canvas);
        let _ = Line::new(
            Point::new(area.top_left.x - 4, y),
            Point::new(area.top_left.x, y),
        )
        .into_styled(tick)
        .draw(canvas);
        let label = format_tick(value, y_step);
        let anchor = Point::new(area.top_left.x - 7, y + 3);
        draw_text(
            canvas,
            &label,
            anchor,
            &FONT_6X10,
            Alignment::Right,
            TEXT_COLOUR,
        );
    }
}

/// Draws one series, clipped to the axes box.
fn draw_series(canvas: &mut Canvas, axes: &Axes, values: &[f32], colour: Rgb888) {
    let columns = axes.area.size.width as usize;
    let mut clipped = canvas.clipped(&axes.area);
    if values.len() <= columns {
        draw_polyline(&mut clipped, axes, values, colour);
    } else {
        draw_column_ranges(&mut clipped, axes, values, colour);
    }
}

/// Joins consecutive finite points with lines. A finite point between two
/// gaps gets a dot so it stays visible.
fn draw_polyline(
    target: &mut impl DrawTarget<Color = Rgb888>,
    axes: &Axes,
    values: &[f32],
    colour: Rgb888,
) {
    let line = PrimitiveStyle::with_stroke(colour, 2);
    let is_finite = |index: usize| values.get(index).is_some_and(|value| value.is_finite());

    for (index, value) in values.iter().enumerate() {
        if !value.is_finite() {
            continue;
        }
        let point = axes.point(index as f64, f64::from(*value));
        if is_finite(index + 1) {
            let next = axes.point((index + 1) as f64, f64::from(values[index + 1]));
            let _ = Line::new(point, next).into_styled(line).draw(target);
        } else if index == 0 || !is_finite(index - 1) {
            let dot = Rectangle::with_center(point, Size::new(3, 3));
            let _ = dot
                .into_styled(PrimitiveStyle::with_fill(colour))
                .draw(target);
        }
    }
}

/// Draws, for each pixel column, a vertical line from the minimum to the
/// maximum of the finite values whose index rounds to that column, joined to
/// the neighbouring columns.
fn draw_column_ranges(
    target: &mut impl DrawTarget<Color = Rgb888>,
    axes: &Axes,
    values: &[f32],
    colour: Rgb888,
) {
    let style = PrimitiveStyle::with_stroke(colour, 1);
    let left = axes.area.top_left.x;
    let mut previous_last: Option<Point> = None;

    for x in left..left + axes.area.size.width as i32 {
        let index_range =
            |edge: f64| (axes.index_at(edge).ceil().max(0.0) as usize).min(values.len());
        let start = index_range(f64::from(x) - 0.5);
        let end = index_range(f64::from(x) + 0.5);
        if start >= end {
            continue;
        }
        let Some(summary) = ColumnSummary::of(&values[start..end]) else {
            // A column with no finite value breaks the line.
            previous_last = None;
            continue;
        };

        let y = |value: f32| axes.pixel_y(f64::from(value)).round() as i32;
        let _ = Line::new(Point::new(x, y(summary.min)), Point::new(x, y(summary.max)))
            .into_styled(style)
            .draw(target);
        if let Some(previous) = previous_last {
            let _ = Line::new(previous, Point::new(x, y(summary.first)))
                .into_styled(style)
                .draw(target);
        }
        previous_last = Some(Point::new(x, y(summary.last)));
    }
}

/// Minimum, maximum, first and last finite values of one pixel column.
struct ColumnSummary {
    min: f32,
    max: f32,
    first: f32,
    last: f32,
}

impl ColumnSummary {
    fn of(values: &[f32]) -> Option<Self> {
        let mut finite = values.iter().copied().filter(|value| value.is_finite());
        let first = finite.next()?;
        let mut summary = Self {
            min: first,
            max: first,
            first,
            last: first,
        };
        for value in finite {
            summary.min = summary.min.min(value);
            summary.max = summary.max.max(value);
            summary.last = value;
        }
        Some(summary)
    }
}

fn draw_frame_and_labels(canvas: &mut Canvas, area: Rectangle) {
    let frame = PrimitiveStyleBuilder::new()
        .stroke_color(TEXT_COLOUR)
        .stroke_width(1)
        .build();
    let _ = area.into_styled(frame).draw(canvas);

    let title = "Generator and Discriminator Loss During Training";
    let title_anchor = Point::new(PLOT_WIDTH as i32 / 2, MARGIN_TOP - 14);
    draw_text(
        canvas,
        title,
        title_anchor,
        &FONT_9X15_BOLD,
        Alignment::Center,
        TEXT_COLOUR,
    );

    let bottom = area.top_left.y + area.size.height as i32;
    let x_label_anchor = Point::new(area.center().x, bottom + 36);
    draw_text(
        canvas,
        "iterations",
        x_label_anchor,
        &FONT_7X13,
        Alignment::Center,
        TEXT_COLOUR,
    );

    draw_vertical_label(canvas, "Loss", Point::new(12, area.center().y));
}

/// Draws `text` rotated 90 degrees counter-clockwise, centred on `centre`,
/// as matplotlib draws a y-axis label.
fn draw_vertical_label(canvas: &mut Canvas, text: &str, centre: Point) {
    let font = &FONT_7X13;
    let width = font.character_size.width * text.len() as u32;
    let height = font.character_size.height;
    let mut label = Canvas(RgbImage::from_pixel(
        width,
        height,
        image::Rgb([255, 255, 255]),
    ));
    let baseline = Point::new(0, font.baseline as i32);
    draw_text(
        &mut label,
        text,
        baseline,
        font,
        Alignment::Left,
        TEXT_COLOUR,
    );

    let rotated = image::imageops::rotate270(&label.0);
    let left = i64::from(centre.x) - i64::from(rotated.width() / 2);
    let top = i64::from(centre.y) - i64::from(rotated.height() / 2);
    image::imageops::replace(&mut canvas.0, &rotated, left, top);
}

/// Draws the legend in the corner of `area` that covers the fewest pixels of
/// `series_colours`, preferring the upper right.
fn draw_legend(canvas: &mut Canvas, area: Rectangle, series_colours: &[Rgb888]) {
    let entries = [("G", GENERATOR_COLOUR), ("D", DISCRIMINATOR_COLOUR)];
    let box_size = Size::new(58, 40);
    let left = area.top_left.x + 10;
    let right = area.top_left.x + area.size.width as i32 - box_size.width as i32 - 10;
    let top = area.top_left.y + 10;
    let bottom = area.top_left.y + area.size.height as i32 - box_size.height as i32 - 10;
    let corners = [
        Point::new(right, top),
        Point::new(left, top),
        Point::new(right, bottom),
        Point::new(left, bottom),
    ];
    let covered =
        |corner: &Point| count_pixels(&canvas.0, Rectangle::new(*corner, box_size), series_colours);
    let top_left = corners
        .iter()
        .copied()
        .min_by_key(covered)
        .unwrap_or(corners[0]);

    let frame = PrimitiveStyleBuilder::new()
        .fill_color(BACKGROUND)
        .stroke_color(Rgb888::new(0xcc, 0xcc, 0xcc))
        .stroke_width(1)
        .build();
    let _ = Rectangle::new(top_left, box_size)
        .into_styled(frame)
        .draw(canvas);

    for (row, (label, colour)) in entries.into_iter().enumerate() {
        let y = top_left.y + 12 + 16 * row as i32;
        let line = Line::new(
            Point::new(top_left.x + 8, y),
            Point::new(top_left.x + 32, y),
        );
        let _ = line
            .into_styled(PrimitiveStyle::with_stroke(colour, 2))
            .draw(canvas);
        draw_text(
            canvas,
            label,
            Point::new(top_left.x + 40, y + 4),
            &FONT_7X13,
            Alignment::Left,
            TEXT_COLOUR,
        );
    }
}

/// Number of pixels inside `region` whose colour is one of `colours`.
fn count_pixels(image: &RgbImage, region: Rectangle, colours: &[Rgb888]) -> usize {
    let colours: Vec<[u8; 3]> = colours
        .iter()
        .map(|colour| [colour.r(), colour.g(), colour.b()])
        .collect();
    region
        .points()
        .filter_map(|point| {
            image.get_pixel_checked(u32::try_from(point.x).ok()?, u32::try_from(point.y).ok()?)
        })
        .filter(|pixel| colours.contains(&pixel.0))
        .count()
}

/// Draws `text` with its alphabetic baseline at `anchor.y`.
fn draw_text(
    canvas: &mut Canvas,
    text: &str,
    anchor: Point,
    font: &MonoFont<'_>,
    alignment: Alignment,
    colour: Rgb888,
) {
    let character_style = MonoTextStyle::new(font, colour);
    let text_style = TextStyleBuilder::new()
        .alignment(alignment)
        .baseline(Baseline::Alphabetic)
        .build();
    let _ = Text::with_text_style(text, anchor, character_style, text_style).draw(canvas);
}

/// Rounds `raw` up to 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&nice| fraction <= nice)
        .unwrap_or(10.0);
    nice * magnitude
}

/// Multiples of `step` within `[low, high]`.
fn tick_values(low: f64, high: f64, step: f64) -> Vec<f64> {
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last)
        .map(|multiple| multiple as f64 * step)
        .collect()
}

/// Formats a tick value with as many decimals as the step needs, or in
/// scientific notation for very large or small magnitudes.
fn format_tick(value: f64, step: f64) -> String {
    let value = if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    };
    if value != 0.0 && (value.abs() >= 1e6 || value.abs() < 1e-4) {
        return format!("{value:.1e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let decimals = if (step * 10f64.powi(decimals as i32)).fract().abs() > 1e-9 {
        decimals + 1
    } else {
        decimals
    };
    format!("{value:.decimals$}")
}

/// Writes `image` as PNG to a temporary file in the same folder, then
/// renames it to `path`.
fn write_png_atomically(image: &RgbImage, path: &Path) -> Result<(), PlotError> {
    let Some(file_name) = path.file_name() else {
        return Err(PlotError::InvalidPath {
            path: path.to_path_buf(),
        });
    };
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);

    let result = write_png(image, &temporary, path).and_then(|()| {
        fs::rename(&temporary, path).map_err(|source| PlotError::Write {
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn write_png(image: &RgbImage, temporary: &Path, path: &Path) -> Result<(), PlotError> {
    let write_error = |source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(temporary).map_err(write_error)?;
    let mut writer = BufWriter::new(file);

    PngEncoder::new(&mut writer)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|source| PlotError::Encode {
            path: path.to_path_buf(),
            source,
        })?;

    writer.flush().map_err(write_error)?;
    let file = writer
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?;
    file.sync_all().map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.37), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(700.0), 1000.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(format_tick(2.0, 0.5), "2.0");
        assert_eq!(format_tick(2.5, 2.5), "2.5");
        assert_eq!(format_tick(0.25, 0.25), "0.25");
        assert_eq!(format_tick(1000.0, 500.0), "1000");
        assert_eq!(format_tick(-1e-17, 0.5), "0.0");
        assert_eq!(format_tick(2e7, 1e7), "2.0e7");
    }

    #[test]
    fn ticks_cover_range() {
        assert_eq!(tick_values(0.0, 10.0, 2.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(tick_values(-0.3, 0.7, 0.5), [0.0, 0.5]);
    }
}

/// Height of the title band above each image of [`render_side_by_side`].
const PAIR_TITLE_HEIGHT: u32 = 28;
/// Margin around and between the images of [`render_side_by_side`].
const PAIR_MARGIN: u32 = 12;

/// Places `left` and `right` side by side on a white background, each under
/// its title, like the tutorial's "Real Images" / "Fake Images" figure.
///
/// Images of different heights are top-aligned.
pub fn render_side_by_side(left: &RgbImage, left_title: &str, right: &RgbImage, right_title: &str) -> RgbImage {
    let width = 3 * PAIR_MARGIN + left.width() + right.width();
    let height = PAIR_TITLE_HEIGHT + PAIR_MARGIN + left.height().max(right.height());
    let mut canvas = Canvas(RgbImage::new(width, height));
    let _ = canvas.clear(BACKGROUND);

    let panels = [(left, left_title, PAIR_MARGIN), (right, right_title, 2 * PAIR_MARGIN + left.width())];
    for (image, title, x) in panels {
        let centre = Point::new((x + image.width() / 2) as i32, PAIR_TITLE_HEIGHT as i32 - 8);
        draw_text(&mut canvas, title, centre, &FONT_9X15_BOLD, Alignment::Center, TEXT_COLOUR);
        image::imageops::replace(&mut canvas.0, image, i64::from(x), i64::from(PAIR_TITLE_HEIGHT));
    }
    canvas.0
}

/// Writes [`render_side_by_side`] of the two images to `path` as a PNG,
/// through a temporary file.
///
/// # Errors
/// [`PlotError`] when `path` names no file, or writing or encoding fails.
pub fn save_side_by_side(
    left: &RgbImage,
    left_title: &str,
    right: &RgbImage,
    right_title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    write_png_atomically(&render_side_by_side(left, left_title, right, right_title), path)
}
