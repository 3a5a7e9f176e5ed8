//! What the kiosk draws: the layout of a screen, the face with its caption,
//! and the error screen.

use core::convert::Infallible;
use core::fmt::{self, Write as _};

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle, MonoTextStyleBuilder};
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use embedded_graphics::Drawable;

use super::scale::BilinearScaler;
use super::slerp::slerp;
use super::timeline::Scene;
use crate::backend::{BackendError, Generator};
use crate::latent::fill_latent;

/// Background of the error screen.
const ERROR_BACKGROUND: Rgb888 = Rgb888::new(96, 0, 0);
/// Space above and below the caption text, in pixels.
const CAPTION_MARGIN: u32 = 4;

/// Where the face and its caption go on a screen.
///
/// The caption takes a strip at the bottom; the face is the largest square
/// that fits above it, centred.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The screen.
    pub screen: Rectangle,
    /// The face's square.
    pub face: Rectangle,
    /// The caption strip.
    pub caption: Rectangle,
    font: &'static MonoFont<'static>,
}

impl Layout {
    /// The layout of a `size` screen: 10x20 text on screens at least 320x240
    /// and 6x10 text on smaller ones.
    pub fn new(size: Size) -> Self {
        let font = if size.width >= 320 && size.height >= 240 { &FONT_10X20 } else { &FONT_6X10 };
        let caption_height = (font.character_size.height + 2 * CAPTION_MARGIN).min(size.height / 4);
        let face_area = size.height - caption_height;
        let side = size.width.min(face_area);
        let face = Rectangle::new(
            Point::new(((size.width - side) / 2) as i32, ((face_area - side) / 2) as i32),
            Size::new(side, side),
        );
        let caption = Rectangle::new(Point::new(0, face_area as i32), Size::new(size.width, caption_height));

        Layout { screen: Rectangle::new(Point::zero(), size), face, caption, font }
    }

    fn text_style(&self, color: Rgb888, background: Rgb888) -> MonoTextStyle<'static, Rgb888> {
        MonoTextStyleBuilder::new().font(self.font).text_color(color).background_color(background).build()
    }

    /// Characters of the layout's font that fit across the screen.
    fn columns(&self) -> usize {
        let advance = self.font.character_size.width + self.font.character_spacing;
        (self.screen.size.width / advance.max(1)).max(1) as usize
    }
}

/// A short text formatted on the stack, so captions never allocate; text past
/// the capacity is cut off.
struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText { bytes: [0; 64], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are appended, so this never fails.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.len + text.len() > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text.as_bytes());
        self.len += text.len();
        Ok(())
    }
}

/// The caption of a face: `face 12  seed 7`.
fn caption_text(face: u64, seed: u64) -> StackText {
    let mut text = StackText::new();
    // Two u64 values and 12 characters fit in the 64 bytes.
    let _ = write!(text, "face {face}  seed {seed}");
    text
}

/// Draws the caption strip with `text` centred in it.
fn draw_caption<T>(target: &mut T, layout: &Layout, text: &str) -> Result<(), Infallible>
where
    T: DrawTarget<Color = Rgb888, Error = Infallible>,
{
    target.fill_solid(&layout.caption, Rgb888::BLACK)?;
    let centre = layout.caption.center();
    let style = TextStyleBuilder::new().alignment(Alignment::Center).baseline(Baseline::Middle).build();
    Text::with_text_style(text, centre, layout.text_style(Rgb888::WHITE, Rgb888::BLACK), style).draw(target)?;
    Ok(())
}

/// Draws the error screen: a title, the error wrapped to the screen's width,
/// and when the next load is tried.
pub fn draw_error_screen<T>(target: &mut T, error: &str, retry_seconds: f64, attempts: u64)
where
    T: DrawTarget<Color = Rgb888, Error = Infallible> + OriginDimensions,
{
    let layout = Layout::new(target.size());
    let style = layout.text_style(Rgb888::WHITE, ERROR_BACKGROUND);
    let line_height = layout.font.character_size.height as i32 + 2;
    let margin = layout.font.character_size.width as i32;
    let columns = layout.columns().saturating_sub(2).max(8);

    let mut lines = vec!["The face generator cannot start.".to_string(), String::new()];
    lines.extend(wrap(error, columns));
    lines.push(String::new());
    lines.extend(wrap(&format!("Retrying every {retry_seconds} s (failed attempts: {attempts})."), columns));

    let Ok(()) = target.clear(ERROR_BACKGROUND);
    for (row, line) in lines.iter().enumerate() {
        let position = Point::new(margin, margin + row as i32 * line_height);
        let Ok(_) = Text::with_baseline(line, position, style, Baseline::Top).draw(target);
    }
}

/// Splits `text` into lines of at most `columns` characters at spaces,
/// cutting words longer than a line.
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while word.chars().count() > columns {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let cut = word.char_indices().nth(columns).map_or(word.len(), |(at, _)| at);
            lines.push(word[..cut].to_string());
            word = &word[cut..];
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Generates and draws faces with a loaded model, reusing buffers that are
/// allocated once in [`FaceRenderer::new`].
#[derive(Debug)]
pub struct FaceRenderer {
    generator: Generator,
    seed: u64,
    layout: Layout,
    scaler: BilinearScaler,
    latent_from: Vec<f32>,
    latent_to: Vec<f32>,
    latent: Vec<f32>,
    rgb: Vec<u8>,
    last_scene: Option<Scene>,
    background_drawn: bool,
}

impl FaceRenderer {
    /// A renderer for faces of `seed` on a `screen`-sized display, on
    /// either backend.
    pub fn new(generator: impl Into<Generator>, seed: u64, screen: Size) -> Self {
        let generator = generator.into();
        let layout = Layout::new(screen);
        let size = generator.image_size();
        let nz = generator.nz();
        FaceRenderer {
            scaler: BilinearScaler::new(size, layout.face.size.width as usize),
            latent_from: vec![0.0; nz],
            latent_to: vec![0.0; nz],
            latent: vec![0.0; nz],
            rgb: vec![0; 3 * size * size],
            generator,
            seed,
            layout,
            last_scene: None,
            background_drawn: false,
        }
    }

    /// The model.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// The screen layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The last generated face, `[image_size, image_size, 3]` RGB888 bytes.
    pub fn face_rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Makes the next [`FaceRenderer::draw`] repaint the whole screen, for
    /// example after an error screen covered it.
    pub fn invalidate(&mut self) {
        self.last_scene = None;
        self.background_drawn = false;
    }

    /// Draws `scene` into `target`, which must still show what this renderer
    /// drew last; a scene equal to the last one is not drawn again.
    ///
    /// Stages: the latent (fill or slerp), the generator into the RGB888
    /// buffer, then the bilinear scaling into the face square and the
    /// caption. Nothing here allocates; tract's run allocates and frees its
    /// own tensors.
    ///
    /// # Errors
    ///
    /// The errors of [`Generator::generate_face_into`].
    pub fn draw<T>(&mut self, scene: Scene, target: &mut T) -> Result<(), BackendError>
    where
        T: DrawTarget<Color = Rgb888, Error = Infallible>,
    {
        if self.background_drawn && self.last_scene == Some(scene) {
            return Ok(());
        }

        self.fill_scene_latent(scene);
        self.generator.generate_face_into(&self.latent, &mut self.rgb)?;

        if !self.background_drawn {
            let Ok(()) = target.clear(Rgb888::BLACK);
            self.background_drawn = true;
        }
        let Ok(()) = target.fill_contiguous(&self.layout.face, self.scaler.pixels(&self.rgb));
        let caption = caption_text(scene.caption_face(), self.seed);
        let Ok(()) = draw_caption(target, &self.layout, caption.as_str());

        self.last_scene = Some(scene);
        Ok(())
    }

    /// `[nz]` latent of the scene: face `k`'s latent for a held face, and the
    /// slerp between faces `k` and `k + 1` during a morph.
    fn fill_scene_latent(&mut self, scene: Scene) {
        match scene {
            Scene::Hold { face } => fill_latent(self.seed, face, &mut self.latent),
            Scene::Morph { from, .. } => {
                fill_latent(self.seed, from, &mut self.latent_from);
                fill_latent(self.seed, from.wrapping_add(1), &mut self.latent_to);
                slerp(&self.latent_from, &self.latent_to, scene.fraction(), &mut self.latent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_centres_largest_square_above_caption() {
        let layout = Layout::new(Size::new(800, 480));
        assert_eq!(layout.caption, Rectangle::new(Point::new(0, 452), Size::new(800, 28)));
        assert_eq!(layout.face, Rectangle::new(Point::new(174, 0), Size::new(452, 452)));
    }

    #[test]
    fn portrait_layout_centres_vertically() {
        let layout = Layout::new(Size::new(100, 200));
        // 6x10 font: an 18-pixel caption, a 182-pixel area for a 100-pixel face.
        assert_eq!(layout.face, Rectangle::new(Point::new(0, 41), Size::new(100, 100)));
    }

    #[test]
    fn tiny_screen_has_no_panic() {
        for (width, height) in [(1, 1), (1, 100), (100, 1), (3, 7)] {
            let layout = Layout::new(Size::new(width, height));
            assert!(layout.face.size.width <= width);
            assert!(layout.caption.size.height <= height);
        }
    }

    #[test]
    fn caption_names_face_and_seed() {
        assert_eq!(caption_text(12, 7).as_str(), "face 12  seed 7");
        let longest = caption_text(u64::MAX, u64::MAX);
        assert_eq!(longest.as_str(), format!("face {0}  seed {0}", u64::MAX));
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("model file x not found", 10), ["model file", "x not", "found"]);
        assert_eq!(wrap("/a/very/long/path ok", 6), ["/a/ver", "y/long", "/path", "ok"]);
        assert!(wrap("", 5).is_empty());
    }
}
