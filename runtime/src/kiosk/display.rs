//! Destinations of the kiosk's frames: the [`Display`] trait and its
//! headless backends.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::Pixel;
use image::RgbImage;

use super::framebuffer::{FramebufferError, FramebufferGeometry, FramebufferTarget};
use crate::grid::{save_png_atomic, GridError};

/// A failure to open a display or show a frame on it.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// A device or file operation failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Device {
        /// The device or file.
        path: PathBuf,
        /// The failed operation, as a verb phrase before the path.
        action: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A framebuffer reports a geometry the kiosk cannot draw into.
    #[error("framebuffer {}: {source}", path.display())]
    Framebuffer {
        /// The framebuffer device.
        path: PathBuf,
        /// The problem with its geometry.
        #[source]
        source: FramebufferError,
    },
    /// A PNG frame could not be written.
    #[error(transparent)]
    Png(#[from] GridError),
    /// The requested backend is not available in this build or on this
    /// platform.
    #[error("{0}")]
    Unavailable(String),
}

/// A user action reported by a display's own input, such as a window's
/// keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayEvent {
    /// Skip to the next face.
    Skip,
    /// Stop the kiosk (for example, the window was closed).
    Quit,
}

/// A screen the kiosk draws whole frames on.
///
/// The kiosk draws each frame into [`Display::target`] and then calls
/// [`Display::present`] once, which shows the finished frame.
pub trait Display {
    /// The `DrawTarget` frames are drawn into.
    type Target: DrawTarget<Color = Rgb888, Error = Infallible> + OriginDimensions;

    /// Returns the back buffer that the next frame is drawn into.
    fn target(&mut self) -> &mut Self::Target;

    /// Shows the frame drawn since the last call.
    ///
    /// # Errors
    ///
    /// A [`DisplayError`] when the frame cannot be shown or written.
    fn present(&mut self) -> Result<(), DisplayError>;

    /// Returns the next pending input event, if the display has an input of
    /// its own.
    fn poll_event(&mut self) -> Option<DisplayEvent> {
        None
    }
}

/// A framebuffer target whose frames are copied into a second in-memory
/// buffer that stands for the device memory.
///
/// Benchmarks and tests use it where a real `/dev/fbN` would be; presenting
/// copies the whole back buffer, as [`FbDevice`](super::FbDevice) does.
#[derive(Debug, Clone)]
pub struct MemoryFramebuffer {
    target: FramebufferTarget,
    device: Vec<u8>,
    frames: u64,
}

impl MemoryFramebuffer {
    /// Creates a memory framebuffer with `geometry`, all black.
    ///
    /// # Errors
    ///
    /// The errors of [`FramebufferGeometry::validate`].
    pub fn new(geometry: FramebufferGeometry) -> Result<Self, FramebufferError> {
        let target = FramebufferTarget::new(geometry)?;
        let device = vec![0; geometry.buffer_len()];
        Ok(MemoryFramebuffer { target, device, frames: 0 })
    }

    /// Returns the framebuffer's geometry.
    pub fn geometry(&self) -> &FramebufferGeometry {
        self.target.geometry()
    }

    /// Returns the "device" memory, which contains the last presented frame.
    pub fn device(&self) -> &[u8] {
        &self.device
    }

    /// Frames presented so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl Display for MemoryFramebuffer {
    type Target = FramebufferTarget;

    fn target(&mut self) -> &mut Self::Target {
        &mut self.target
    }

    fn present(&mut self) -> Result<(), DisplayError> {
        self.device.copy_from_slice(self.target.buffer());
        self.frames += 1;
        Ok(())
    }
}

/// A `DrawTarget` over an RGB888 image; pixels off the image are skipped.
#[derive(Debug, Clone)]
pub struct RgbCanvas {
    image: RgbImage,
}

impl RgbCanvas {
    /// Creates a black canvas of `size`.
    pub fn new(size: Size) -> Self {
        RgbCanvas { image: RgbImage::new(size.width, size.height) }
    }

    /// Returns the canvas as an image.
    pub fn image(&self) -> &RgbImage {
        &self.image
    }
}

impl OriginDimensions for RgbCanvas {
    fn size(&self) -> Size {
        Size::new(self.image.width(), self.image.height())
    }
}

impl DrawTarget for RgbCanvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (width, height) = self.image.dimensions();
        for Pixel(Point { x, y }, color) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y)) else {
                continue;
            };
            if x < width && y < height {
                self.image.put_pixel(x, y, image::Rgb([color.r(), color.g(), color.b()]));
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        // Clipped in i64, so no rectangle overflows.
        let (width, height) = self.image.dimensions();
        let (left, top) = (i64::from(area.top_left.x), i64::from(area.top_left.y));
        let right = (left + i64::from(area.size.width)).min(i64::from(width));
        let bottom = (top + i64::from(area.size.height)).min(i64::from(height));
        let pixel = image::Rgb([color.r(), color.g(), color.b()]);
        for y in top.max(0)..bottom {
            for x in left.max(0)..right {
                self.image.put_pixel(x as u32, y as u32, pixel);
            }
        }
        Ok(())
    }
}

/// Writes every frame as `frame_NNNNNN.png` into a folder, for headless runs
/// and for turning a kiosk session into an animation.
#[derive(Debug)]
pub struct PngFrames {
    dir: PathBuf,
    canvas: RgbCanvas,
    next_frame: u64,
}

impl PngFrames {
    /// Creates `dir` if needed; frames are `size` pixels.
    ///
    /// # Errors
    ///
    /// [`DisplayError::Device`] when the folder cannot be created.
    pub fn new(dir: &Path, size: Size) -> Result<Self, DisplayError> {
        std::fs::create_dir_all(dir).map_err(|source| DisplayError::Device {
            path: dir.to_path_buf(),
            action: "create the frame folder".to_string(),
            source,
        })?;
        Ok(PngFrames { dir: dir.to_path_buf(), canvas: RgbCanvas::new(size), next_frame: 0 })
    }

    /// Returns the file that frame `index` is written to.
    pub fn frame_path(dir: &Path, index: u64) -> PathBuf {
        dir.join(format!("frame_{index:06}.png"))
    }
}

impl Display for PngFrames {
    type Target = RgbCanvas;

    fn target(&mut self) -> &mut Self::Target {
        &mut self.canvas
    }

    fn present(&mut self) -> Result<(), DisplayError> {
        let path = Self::frame_path(&self.dir, self.next_frame);
        save_png_atomic(self.canvas.image(), &path)?;
        self.next_frame += 1;
        Ok(())
    }
}
