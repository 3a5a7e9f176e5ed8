//! A `DrawTarget` over a packed-pixel framebuffer in memory, and the parsing
//! of Linux's `fb_var_screeninfo` and `fb_fix_screeninfo` structures.
//!
//! The target draws into a back buffer laid out exactly like the device
//! memory: `height` lines of `line_length` bytes, each pixel `bits_per_pixel /
//! 8` bytes holding the red, green and blue fields at the offsets and lengths
//! the kernel reports. Pixel values are stored little-endian, which is the
//! byte order of the framebuffers of Raspberry Pi and x86 machines.

use core::convert::Infallible;

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::Pixel;

/// Size in bytes of Linux's `struct fb_var_screeninfo`.
pub const VAR_SCREENINFO_LEN: usize = 160;

/// `fb_fix_screeninfo.type` of a packed-pixel framebuffer.
const FB_TYPE_PACKED_PIXELS: u32 = 0;
/// `fb_fix_screeninfo.visual` of a true-colour framebuffer.
const FB_VISUAL_TRUECOLOR: u32 = 2;
/// `fb_fix_screeninfo.visual` of a direct-colour framebuffer.
const FB_VISUAL_DIRECTCOLOR: u32 = 4;

/// A framebuffer geometry the kiosk cannot draw into, or bytes that are not a
/// screen information structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramebufferError {
    /// A screen information structure is shorter than the kernel's.
    #[error("{structure} is {found} bytes long, expected at least {expected}")]
    Truncated {
        /// `fb_var_screeninfo` or `fb_fix_screeninfo`.
        structure: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The pixel depth is not 16, 24 or 32 bits.
    #[error("{bits_per_pixel} bits per pixel is not supported: set the framebuffer to 16, 24 or 32 bits (for example with `fbset -depth 32`)")]
    UnsupportedDepth {
        /// The reported depth.
        bits_per_pixel: u32,
    },
    /// A colour channel lies outside the pixel or is longer than 8 bits.
    #[error("the {channel} channel at bit offset {offset} with {length} bits does not fit a {bits_per_pixel}-bit pixel with at most 8 bits per channel")]
    InvalidChannel {
        /// `red`, `green` or `blue`.
        channel: &'static str,
        /// Bit offset of the channel.
        offset: u32,
        /// Bits of the channel.
        length: u32,
        /// Bits of a whole pixel.
        bits_per_pixel: u32,
    },
    /// The screen has no pixels.
    #[error("the screen is {width}x{height} pixels: both sides must be at least 1")]
    EmptyScreen {
        /// Visible width in pixels.
        width: u32,
        /// Visible height in pixels.
        height: u32,
    },
    /// A line is shorter than the visible width.
    #[error("a line of {line_length} bytes cannot hold {width} pixels of {bytes_per_pixel} bytes")]
    LineTooShort {
        /// Bytes per line.
        line_length: u32,
        /// Visible width in pixels.
        width: u32,
        /// Bytes per pixel.
        bytes_per_pixel: u32,
    },
    /// The framebuffer is not a packed-pixel true-colour one (for example a
    /// palette or planar framebuffer).
    #[error("framebuffer type {fb_type} with visual {visual} is not supported: only packed-pixel true-colour framebuffers are")]
    UnsupportedVisual {
        /// `fb_fix_screeninfo.type`.
        fb_type: u32,
        /// `fb_fix_screeninfo.visual`.
        visual: u32,
    },
    /// A buffer does not have the geometry's size.
    #[error("the buffer has {found} bytes, expected {expected} ({height} lines of {line_length} bytes)")]
    BufferLength {
        /// `line_length * height`.
        expected: usize,
        /// Bytes given.
        found: usize,
        /// Lines.
        height: u32,
        /// Bytes per line.
        line_length: u32,
    },
}

/// Position and length in bits of one colour channel within a pixel value,
/// as Linux's `struct fb_bitfield` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bitfield {
    /// Bit offset of the channel's least significant bit.
    pub offset: u32,
    /// Number of bits of the channel.
    pub length: u32,
}

impl Bitfield {
    /// Creates a channel of `length` bits starting at bit `offset`.
    pub const fn new(offset: u32, length: u32) -> Self {
        Bitfield { offset, length }
    }
}

/// The fields of `struct fb_var_screeninfo` the kiosk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarScreenInfo {
    /// Visible width in pixels.
    pub xres: u32,
    /// Visible height in pixels.
    pub yres: u32,
    /// Virtual width in pixels.
    pub xres_virtual: u32,
    /// Virtual height in pixels.
    pub yres_virtual: u32,
    /// Horizontal offset of the visible area in the virtual one.
    pub xoffset: u32,
    /// Vertical offset of the visible area in the virtual one.
    pub yoffset: u32,
    /// Bits per pixel.
    pub bits_per_pixel: u32,
    /// Non-zero for a greyscale framebuffer.
    pub grayscale: u32,
    /// Red channel.
    pub red: Bitfield,
    /// Green channel.
    pub green: Bitfield,
    /// Blue channel.
    pub blue: Bitfield,
    /// Alpha channel (unused by the kiosk).
    pub transp: Bitfield,
}

impl VarScreenInfo {
    /// Parses the leading fields of a `struct fb_var_screeninfo` in the byte
    /// order of this machine, as `FBIOGET_VSCREENINFO` fills it.
    ///
    /// The structure is 40 `u32` values on every architecture: eight
    /// resolution and depth fields, four `fb_bitfield`s of three `u32`s, and
    /// timing fields the kiosk ignores.
    ///
    /// # Errors
    ///
    /// [`FramebufferError::Truncated`] for fewer than
    /// [`VAR_SCREENINFO_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FramebufferError> {
        check_len("fb_var_screeninfo", bytes, VAR_SCREENINFO_LEN)?;
        let word = |index: usize| read_u32(bytes, 4 * index);
        let bitfield = |index: usize| Bitfield::new(word(index), word(index + 1));

        Ok(VarScreenInfo {
            xres: word(0),
            yres: word(1),
            xres_virtual: word(2),
            yres_virtual: word(3),
            xoffset: word(4),
            yoffset: word(5),
            bits_per_pixel: word(6),
            grayscale: word(7),
            red: bitfield(8),
            green: bitfield(11),
            blue: bitfield(14),
            transp: bitfield(17),
        })
    }
}

/// The fields of `struct fb_fix_screeninfo` the kiosk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixScreenInfo {
    /// Size of the framebuffer memory in bytes.
    pub smem_len: u32,
    /// Framebuffer type (`FB_TYPE_*`).
    pub fb_type: u32,
    /// Colour model (`FB_VISUAL_*`).
    pub visual: u32,
    /// Bytes per line, including any padding after the visible pixels.
    pub line_length: u32,
}

impl FixScreenInfo {
    /// Parses a `struct fb_fix_screeninfo` in the byte order of this machine
    /// for a C `unsigned long` of `pointer_bytes` (4 or 8) bytes, as
    /// `FBIOGET_FSCREENINFO` fills it.
    ///
    /// The layout is `char id[16]`, `unsigned long smem_start`, then `u32`
    /// `smem_len`, `type`, `type_aux` and `visual`, three `u16` pan and wrap
    /// steps, and `u32 line_length` aligned to 4 bytes.
    ///
    /// # Errors
    ///
    /// [`FramebufferError::Truncated`] when the bytes end before
    /// `line_length`.
    pub fn parse(bytes: &[u8], pointer_bytes: usize) -> Result<Self, FramebufferError> {
        let smem_len_at = 16 + pointer_bytes;
        let line_length_at = smem_len_at + 16 + 6 + 2;
        check_len("fb_fix_screeninfo", bytes, line_length_at + 4)?;

        Ok(FixScreenInfo {
            smem_len: read_u32(bytes, smem_len_at),
            fb_type: read_u32(bytes, smem_len_at + 4),
            visual: read_u32(bytes, smem_len_at + 12),
            line_length: read_u32(bytes, line_length_at),
        })
    }
}

fn check_len(structure: &'static str, bytes: &[u8], expected: usize) -> Result<(), FramebufferError> {
    if bytes.len() < expected {
        return Err(FramebufferError::Truncated { structure, expected, found: bytes.len() });
    }
    Ok(())
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

/// Resolution, line length and pixel format of a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramebufferGeometry {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
    /// Bytes from the start of one line to the start of the next (the stride).
    pub line_length: u32,
    /// Bits per pixel: 16, 24 or 32.
    pub bits_per_pixel: u32,
    /// Red channel.
    pub red: Bitfield,
    /// Green channel.
    pub green: Bitfield,
    /// Blue channel.
    pub blue: Bitfield,
}

impl FramebufferGeometry {
    /// 16-bit RGB565: red in bits 11..16, green in 5..11, blue in 0..5.
    pub const fn rgb565(width: u32, height: u32, line_length: u32) -> Self {
        Self::with_channels(width, height, line_length, 16, [11, 5, 0], [5, 6, 5])
    }

    /// 16-bit BGR565: blue in bits 11..16, green in 5..11, red in 0..5.
    pub const fn bgr565(width: u32, height: u32, line_length: u32) -> Self {
        Self::with_channels(width, height, line_length, 16, [0, 5, 11], [5, 6, 5])
    }

    /// 32-bit XRGB8888: red in bits 16..24, green in 8..16, blue in 0..8.
    pub const fn xrgb8888(width: u32, height: u32, line_length: u32) -> Self {
        Self::with_channels(width, height, line_length, 32, [16, 8, 0], [8, 8, 8])
    }

    /// 32-bit XBGR8888: blue in bits 16..24, green in 8..16, red in 0..8.
    pub const fn xbgr8888(width: u32, height: u32, line_length: u32) -> Self {
        Self::with_channels(width, height, line_length, 32, [0, 8, 16], [8, 8, 8])
    }

    const fn with_channels(
        width: u32,
        height: u32,
        line_length: u32,
        bits_per_pixel: u32,
        offsets: [u32; 3],
        lengths: [u32; 3],
    ) -> Self {
        FramebufferGeometry {
            width,
            height,
            line_length,
            bits_per_pixel,
            red: Bitfield::new(offsets[0], lengths[0]),
            green: Bitfield::new(offsets[1], lengths[1]),
            blue: Bitfield::new(offsets[2], lengths[2]),
        }
    }

    /// Builds the geometry of the visible screen from the kernel's screen
    /// information, checked with [`FramebufferGeometry::validate`].
    ///
    /// # Errors
    ///
    /// [`FramebufferError::UnsupportedVisual`] for a framebuffer that is not
    /// packed-pixel true-colour, and the errors of
    /// [`FramebufferGeometry::validate`].
    pub fn from_screeninfo(var: &VarScreenInfo, fix: &FixScreenInfo) -> Result<Self, FramebufferError> {
        let true_colour = matches!(fix.visual, FB_VISUAL_TRUECOLOR | FB_VISUAL_DIRECTCOLOR);
        if fix.fb_type != FB_TYPE_PACKED_PIXELS || !true_colour {
            return Err(FramebufferError::UnsupportedVisual { fb_type: fix.fb_type, visual: fix.visual });
        }
        let geometry = FramebufferGeometry {
            width: var.xres,
            height: var.yres,
            line_length: fix.line_length,
            bits_per_pixel: var.bits_per_pixel,
            red: var.red,
            green: var.green,
            blue: var.blue,
        };
        geometry.validate()?;
        Ok(geometry)
    }

    /// Bytes of one pixel.
    pub const fn bytes_per_pixel(&self) -> u32 {
        self.bits_per_pixel / 8
    }

    /// Bytes of the whole visible screen: `line_length * height`.
    pub const fn buffer_len(&self) -> usize {
        self.line_length as usize * self.height as usize
    }

    /// Checks that the kiosk can draw into this geometry.
    ///
    /// # Errors
    ///
    /// [`FramebufferError::UnsupportedDepth`] unless the depth is 16, 24 or
    /// 32 bits, [`FramebufferError::InvalidChannel`] for a channel longer
    /// than 8 bits or outside the pixel, [`FramebufferError::EmptyScreen`]
    /// and [`FramebufferError::LineTooShort`].
    pub fn validate(&self) -> Result<(), FramebufferError> {
        if !matches!(self.bits_per_pixel, 16 | 24 | 32) {
            return Err(FramebufferError::UnsupportedDepth { bits_per_pixel: self.bits_per_pixel });
        }
        for (channel, field) in [("red", self.red), ("green", self.green), ("blue", self.blue)] {
            let fits = field.length >= 1 && field.length <= 8 && field.offset + field.length <= self.bits_per_pixel;
            if !fits {
                return Err(FramebufferError::InvalidChannel {
                    channel,
                    offset: field.offset,
                    length: field.length,
                    bits_per_pixel: self.bits_per_pixel,
                });
            }
        }
        if self.width == 0 || self.height == 0 {
            return Err(FramebufferError::EmptyScreen { width: self.width, height: self.height });
        }
        let needed = u64::from(self.width) * u64::from(self.bytes_per_pixel());
        if u64::from(self.line_length) < needed {
            return Err(FramebufferError::LineTooShort {
                line_length: self.line_length,
                width: self.width,
                bytes_per_pixel: self.bytes_per_pixel(),
            });
        }
        Ok(())
    }

    /// Packs a colour into this geometry's pixel value, keeping the most
    /// significant bits of each 8-bit channel.
    ///
    /// Channels of a geometry that [`FramebufferGeometry::validate`] rejects
    /// give unspecified bits but never a panic.
    pub fn pack(&self, color: Rgb888) -> u32 {
        let channel = |value: u8, field: Bitfield| {
            let high_bits = u32::from(value).checked_shr(8u32.saturating_sub(field.length)).unwrap_or(0);
            high_bits.checked_shl(field.offset).unwrap_or(0)
        };
        channel(color.r(), self.red) | channel(color.g(), self.green) | channel(color.b(), self.blue)
    }
}

/// A `DrawTarget` that draws into a back buffer with a framebuffer's exact
/// memory layout; pixels outside the visible screen are skipped.
///
/// The back buffer is allocated once, in [`FramebufferTarget::new`]; drawing
/// never allocates.
#[derive(Debug, Clone)]
pub struct FramebufferTarget {
    geometry: FramebufferGeometry,
    bytes_per_pixel: usize,
    line_length: usize,
    buffer: Vec<u8>,
}

impl FramebufferTarget {
    /// Creates a target with a zeroed (black) back buffer.
    ///
    /// # Errors
    ///
    /// The errors of [`FramebufferGeometry::validate`].
    pub fn new(geometry: FramebufferGeometry) -> Result<Self, FramebufferError> {
        geometry.validate()?;
        Self::with_buffer(geometry, vec![0; geometry.buffer_len()])
    }

    /// Creates a target over an existing buffer of `line_length * height` bytes.
    ///
    /// # Errors
    ///
    /// [`FramebufferError::BufferLength`] for a buffer of another size and
    /// the errors of [`FramebufferGeometry::validate`].
    pub fn with_buffer(geometry: FramebufferGeometry, buffer: Vec<u8>) -> Result<Self, FramebufferError> {
        geometry.validate()?;
        if buffer.len() != geometry.buffer_len() {
            return Err(FramebufferError::BufferLength {
                expected: geometry.buffer_len(),
                found: buffer.len(),
                height: geometry.height,
                line_length: geometry.line_length,
            });
        }
        Ok(FramebufferTarget {
            geometry,
            bytes_per_pixel: geometry.bytes_per_pixel() as usize,
            line_length: geometry.line_length as usize,
            buffer,
        })
    }

    /// Returns the geometry this target draws in.
    pub fn geometry(&self) -> &FramebufferGeometry {
        &self.geometry
    }

    /// Returns the back buffer: `height` lines of `line_length` bytes.
    pub fn buffer(&self) -> &[u8] {
        &self.buffer
    }

    /// Consumes the target and returns its back buffer.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// Writes one packed pixel value at `(x, y)`, which must be on screen.
    #[inline]
    fn put(&mut self, x: usize, y: usize, value: u32) {
        let start = y * self.line_length + x * self.bytes_per_pixel;
        let bytes = value.to_le_bytes();
        self.buffer[start..start + self.bytes_per_pixel].copy_from_slice(&bytes[..self.bytes_per_pixel]);
    }

    /// `(x, y)` as buffer coordinates, or `None` off screen.
    #[inline]
    fn on_screen(&self, point: Point) -> Option<(usize, usize)> {
        let x = u32::try_from(point.x).ok().filter(|&x| x < self.geometry.width)?;
        let y = u32::try_from(point.y).ok().filter(|&y| y < self.geometry.height)?;
        Some((x as usize, y as usize))
    }

    /// Returns the on-screen part of `area` as `(left, top, right, bottom)` with
    /// exclusive ends, or `None` when none of it is on screen. The sums are
    /// done in `i64`, so no rectangle overflows.
    fn clip(&self, area: &Rectangle) -> Option<(usize, usize, usize, usize)> {
        let (left, top) = (i64::from(area.top_left.x), i64::from(area.top_left.y));
        let right = (left + i64::from(area.size.width)).min(i64::from(self.geometry.width));
        let bottom = (top + i64::from(area.size.height)).min(i64::from(self.geometry.height));
        let (left, top) = (left.max(0), top.max(0));
        (left < right && top < bottom).then_some((left as usize, top as usize, right as usize, bottom as usize))
    }
}

impl OriginDimensions for FramebufferTarget {
    fn size(&self) -> Size {
        Size::new(self.geometry.width, self.geometry.height)
    }
}

impl DrawTarget for FramebufferTarget {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if let Some((x, y)) = self.on_screen(point) {
                let value = self.geometry.pack(color);
                self.put(x, y, value);
            }
        }
        Ok(())
    }

    /// Writes rows without per-pixel bounds checks when `area` is wholly on
    /// screen, and clips pixel by pixel otherwise.
    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Self::Color>,
    {
        let Some((left, top, right, bottom)) = self.clip(area) else {
            return Ok(());
        };
        let (area_left, area_top) = (i64::from(area.top_left.x), i64::from(area.top_left.y));
        let area_width = i64::from(area.size.width);
        let whole = left as i64 == area_left
            && top as i64 == area_top
            && (right - left) as i64 == area_width
            && (bottom - top) as u32 == area.size.height;

        let mut colors = colors.into_iter();
        if whole {
            for y in top..bottom {
                for x in left..right {
                    let Some(color) = colors.next() else {
                        return Ok(());
                    };
                    let value = self.geometry.pack(color);
                    self.put(x, y, value);
                }
            }
            return Ok(());
        }

        // Colours come row by row over the whole area, so off-screen ones are
        // read and dropped; rows below the screen are not read at all.
        for y in area_top..bottom as i64 {
            for x in area_left..area_left + area_width {
                let Some(color) = colors.next() else {
                    return Ok(());
                };
                let on_screen = y >= top as i64 && x >= left as i64 && x < right as i64;
                if on_screen {
                    let value = self.geometry.pack(color);
                    self.put(x as usize, y as usize, value);
                }
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let Some((left, top, right, bottom)) = self.clip(area) else {
            return Ok(());
        };

        let value = self.geometry.pack(color).to_le_bytes();
        let pixel = &value[..self.bytes_per_pixel];
        for y in top..bottom {
            let start = y * self.line_length + left * self.bytes_per_pixel;
            let row = &mut self.buffer[start..start + (right - left) * self.bytes_per_pixel];
            for out in row.chunks_exact_mut(self.bytes_per_pixel) {
                out.copy_from_slice(pixel);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_keeps_high_bits() {
        let color = Rgb888::new(0xFF, 0x80, 0x08);
        assert_eq!(FramebufferGeometry::rgb565(1, 1, 2).pack(color), 0xF800 | (0x20 << 5) | 0x01);
        assert_eq!(FramebufferGeometry::bgr565(1, 1, 2).pack(color), (0x01 << 11) | (0x20 << 5) | 0x1F);
        assert_eq!(FramebufferGeometry::xrgb8888(1, 1, 4).pack(color), 0x00FF_8008);
        assert_eq!(FramebufferGeometry::xbgr8888(1, 1, 4).pack(color), 0x0008_80FF);
    }

    #[test]
    fn validate_rejects_bad_geometry() {
        let mut geometry = FramebufferGeometry::rgb565(10, 10, 20);
        assert_eq!(geometry.validate(), Ok(()));

        geometry.line_length = 19;
        assert!(matches!(geometry.validate(), Err(FramebufferError::LineTooShort { .. })));

        geometry = FramebufferGeometry::rgb565(10, 10, 20);
        geometry.bits_per_pixel = 8;
        assert!(matches!(geometry.validate(), Err(FramebufferError::UnsupportedDepth { .. })));

        geometry = FramebufferGeometry::rgb565(10, 10, 20);
        geometry.red = Bitfield::new(12, 5);
        assert!(matches!(geometry.validate(), Err(FramebufferError::InvalidChannel { channel: "red", .. })));

        geometry = FramebufferGeometry::rgb565(0, 10, 20);
        assert!(matches!(geometry.validate(), Err(FramebufferError::EmptyScreen { .. })));
    }

    #[test]
    fn wrong_buffer_length_is_rejected() {
        let geometry = FramebufferGeometry::xrgb8888(2, 2, 8);
        let err = FramebufferTarget::with_buffer(geometry, vec![0; 15]).unwrap_err();
        assert!(err.to_string().contains("15 bytes, expected 16"), "{err}");
    }
}
