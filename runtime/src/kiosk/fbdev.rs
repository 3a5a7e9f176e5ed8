//! The Linux framebuffer device (`/dev/fbN`).
//!
//! The geometry comes from the `FBIOGET_VSCREENINFO` and
//! `FBIOGET_FSCREENINFO` ioctls. Frames are drawn into a
//! [`FramebufferTarget`] back buffer and copied to the device whole with one
//! positioned write, so the screen never shows a half-drawn face.
//!
//! NOTE: the copy is not synchronised with the display's vertical blanking,
//! so a fast change can still show the old frame's lower part for one
//! refresh. This code has been tested on in-memory buffers only, not on a
//! real framebuffer device.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::display::{Display, DisplayError};
use super::framebuffer::{FixScreenInfo, FramebufferGeometry, FramebufferTarget, VarScreenInfo, VAR_SCREENINFO_LEN};

/// `FBIOGET_VSCREENINFO` from `<linux/fb.h>`.
const FBIOGET_VSCREENINFO: u64 = 0x4600;
/// `FBIOGET_FSCREENINFO` from `<linux/fb.h>`.
const FBIOGET_FSCREENINFO: u64 = 0x4602;
/// Bytes reserved for `fb_fix_screeninfo`: 68 on 32-bit and 80 on 64-bit
/// Linux, rounded up.
const FIX_SCREENINFO_CAPACITY: usize = 96;

/// A Linux framebuffer device with a back buffer of the same layout.
#[derive(Debug)]
pub struct FbDevice {
    path: PathBuf,
    file: File,
    offset: u64,
    target: FramebufferTarget,
}

impl FbDevice {
    /// Opens `path` for writing and reads its geometry.
    ///
    /// # Errors
    ///
    /// [`DisplayError::Device`] when the device cannot be opened or its
    /// geometry read, and [`DisplayError::Framebuffer`] for a geometry the
    /// kiosk cannot draw into.
    pub fn open(path: &Path) -> Result<Self, DisplayError> {
        let device_error = |action: &str, source: io::Error| DisplayError::Device {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        };
        let file =
            OpenOptions::new().read(true).write(true).open(path).map_err(|source| device_error("open", source))?;

        let var = read_var_screeninfo(&file).map_err(|source| device_error("read FBIOGET_VSCREENINFO of", source))?;
        let fix = read_fix_screeninfo(&file).map_err(|source| device_error("read FBIOGET_FSCREENINFO of", source))?;
        let framebuffer_error = |source| DisplayError::Framebuffer { path: path.to_path_buf(), source };
        let geometry = FramebufferGeometry::from_screeninfo(&var, &fix).map_err(framebuffer_error)?;
        let target = FramebufferTarget::new(geometry).map_err(framebuffer_error)?;

        // The visible area starts `yoffset` lines into the virtual screen.
        let offset = u64::from(var.yoffset) * u64::from(geometry.line_length);
        log::info!(
            "opened {}: {}x{} at {} bits per pixel, {} bytes per line, red {:?}, green {:?}, blue {:?}",
            path.display(),
            geometry.width,
            geometry.height,
            geometry.bits_per_pixel,
            geometry.line_length,
            geometry.red,
            geometry.green,
            geometry.blue
        );
        Ok(FbDevice { path: path.to_path_buf(), file, offset, target })
    }
}

impl Display for FbDevice {
    type Target = FramebufferTarget;

    fn target(&mut self) -> &mut Self::Target {
        &mut self.target
    }

    fn present(&mut self) -> Result<(), DisplayError> {
        self.file.write_all_at(self.target.buffer(), self.offset).map_err(|source| DisplayError::Device {
            path: self.path.clone(),
            action: "write a frame to".to_string(),
            source,
        })
    }
}

fn read_var_screeninfo(file: &File) -> io::Result<VarScreenInfo> {
    // u64 words give the buffer the alignment of the C structure.
    let mut words = [0u64; VAR_SCREENINFO_LEN / 8];
    ioctl_into(file, FBIOGET_VSCREENINFO, words.as_mut_ptr().cast())?;
    VarScreenInfo::parse(&words_to_bytes(&words)).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

fn read_fix_screeninfo(file: &File) -> io::Result<FixScreenInfo> {
    let mut words = [0u64; FIX_SCREENINFO_CAPACITY / 8];
    ioctl_into(file, FBIOGET_FSCREENINFO, words.as_mut_ptr().cast())?;
    FixScreenInfo::parse(&words_to_bytes(&words), std::mem::size_of::<libc::c_ulong>())
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

/// Runs a read ioctl that fills the structure at `out`.
fn ioctl_into(file: &File, request: u64, out: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: `out` points to a buffer at least as large and as aligned as the
    // structure that `request` writes (160 bytes for the variable and at most
    // 80 bytes for the fixed screen information), and the descriptor stays
    // open for the duration of the call. The request type differs between C
    // libraries (`c_ulong` in glibc, `c_int` in musl), hence `as _`.
    let result = unsafe { libc::ioctl(file.as_raw_fd(), request as _, out) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn words_to_bytes<const N: usize>(words: &[u64; N]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_ne_bytes()).collect()
}
