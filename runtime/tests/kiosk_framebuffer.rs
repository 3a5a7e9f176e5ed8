//! The kiosk's framebuffer target over in-memory buffers, and the parsing of
//! the kernel's screen information structures.

use dcgan_runtime::kiosk::framebuffer::{
    Bitfield, FixScreenInfo, FramebufferError, FramebufferGeometry, FramebufferTarget, VarScreenInfo,
};
use dcgan_runtime::kiosk::{Display, MemoryFramebuffer};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::{DrawTarget, Point, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::Pixel;

/// Initial value of every buffer byte, so that written bytes stand out.
const UNTOUCHED: u8 = 0xEE;
/// Padding bytes after each line's pixels.
const PADDING: u32 = 5;

const TEAL: Rgb888 = Rgb888::new(0x12, 0x34, 0x56);
const PINK: Rgb888 = Rgb888::new(0xFF, 0x00, 0x80);

/// Creates a 3x2 screen whose lines are `PADDING` bytes longer than its pixels.
fn target(make: fn(u32, u32, u32) -> FramebufferGeometry, bytes_per_pixel: u32) -> FramebufferTarget {
    let geometry = make(3, 2, 3 * bytes_per_pixel + PADDING);
    FramebufferTarget::with_buffer(geometry, vec![UNTOUCHED; geometry.buffer_len()]).unwrap()
}

fn rgb888(width: u32, height: u32, line_length: u32) -> FramebufferGeometry {
    FramebufferGeometry {
        width,
        height,
        line_length,
        bits_per_pixel: 24,
        red: Bitfield::new(16, 8),
        green: Bitfield::new(8, 8),
        blue: Bitfield::new(0, 8),
    }
}

/// Returns the buffer expected after drawing `teal` at (0, 0) and `pink` at (2, 1)
/// with every other byte untouched.
fn expected(bytes_per_pixel: usize, teal: &[u8], pink: &[u8]) -> Vec<u8> {
    let line = 3 * bytes_per_pixel + PADDING as usize;
    let mut buffer = vec![UNTOUCHED; 2 * line];
    buffer[..bytes_per_pixel].copy_from_slice(teal);
    let pink_at = line + 2 * bytes_per_pixel;
    buffer[pink_at..pink_at + bytes_per_pixel].copy_from_slice(pink);
    buffer
}

/// Draws the two pixels plus pixels just off every edge and far away.
fn draw_pixels(target: &mut FramebufferTarget) {
    let off_screen = [
        Point::new(-1, 0),
        Point::new(3, 0),
        Point::new(0, -1),
        Point::new(0, 2),
        Point::new(3, 1),
        Point::new(i32::MAX, i32::MAX),
        Point::new(i32::MIN, i32::MIN),
    ];
    let pixels = [Pixel(Point::new(0, 0), TEAL), Pixel(Point::new(2, 1), PINK)]
        .into_iter()
        .chain(off_screen.into_iter().map(|point| Pixel(point, PINK)));
    let Ok(()) = target.draw_iter(pixels);
}

#[test]
fn rgb565_bytes_with_stride() {
    let mut target = target(FramebufferGeometry::rgb565, 2);
    draw_pixels(&mut target);
    // 0x12 0x34 0x56 -> r 0b00010, g 0b001101, b 0b01010 -> 0x11AA.
    assert_eq!(target.buffer(), expected(2, &[0xAA, 0x11], &[0x10, 0xF8]));
}

#[test]
fn bgr565_bytes_with_stride() {
    let mut target = target(FramebufferGeometry::bgr565, 2);
    draw_pixels(&mut target);
    assert_eq!(target.buffer(), expected(2, &[0xA2, 0x51], &[0x1F, 0x80]));
}

#[test]
fn xrgb8888_bytes_with_stride() {
    let mut target = target(FramebufferGeometry::xrgb8888, 4);
    draw_pixels(&mut target);
    assert_eq!(target.buffer(), expected(4, &[0x56, 0x34, 0x12, 0x00], &[0x80, 0x00, 0xFF, 0x00]));
}

#[test]
fn xbgr8888_bytes_with_stride() {
    let mut target = target(FramebufferGeometry::xbgr8888, 4);
    draw_pixels(&mut target);
    assert_eq!(target.buffer(), expected(4, &[0x12, 0x34, 0x56, 0x00], &[0xFF, 0x00, 0x80, 0x00]));
}

#[test]
fn rgb888_bytes_with_stride() {
    let mut target = target(rgb888, 3);
    draw_pixels(&mut target);
    assert_eq!(target.buffer(), expected(3, &[0x56, 0x34, 0x12], &[0x80, 0x00, 0xFF]));
}

#[test]
fn fill_solid_clips_to_screen() {
    let mut target = target(FramebufferGeometry::xrgb8888, 4);
    let area = Rectangle::new(Point::new(2, -5), Size::new(100, 6));
    let Ok(()) = target.fill_solid(&area, TEAL);

    // Only (2, 0) is on screen.
    let mut buffer = vec![UNTOUCHED; 2 * 17];
    buffer[8..12].copy_from_slice(&[0x56, 0x34, 0x12, 0x00]);
    assert_eq!(target.buffer(), buffer);

    let far_away = Rectangle::new(Point::new(i32::MIN, i32::MIN), Size::new(u32::MAX, 3));
    let Ok(()) = target.fill_solid(&far_away, PINK);
    assert_eq!(target.buffer(), buffer);
}

#[test]
fn fill_contiguous_on_and_off_screen() {
    let mut target = target(FramebufferGeometry::rgb565, 2);
    let whole = Rectangle::new(Point::zero(), Size::new(3, 2));
    let Ok(()) = target.fill_contiguous(&whole, [TEAL, PINK, TEAL, PINK, TEAL, PINK]);
    let line = |first: [u8; 2], second: [u8; 2]| {
        let mut bytes = [first, second, first].concat();
        bytes.extend([UNTOUCHED; PADDING as usize]);
        bytes
    };
    let teal = [0xAA, 0x11];
    let pink = [0x10, 0xF8];
    assert_eq!(target.buffer(), [line(teal, pink), line(pink, teal)].concat());

    // A 2x2 area hanging off the bottom right: only its top-left pixel lands.
    let corner = Rectangle::new(Point::new(2, 1), Size::new(2, 2));
    let Ok(()) = target.fill_contiguous(&corner, [TEAL; 4]);
    assert_eq!(&target.buffer()[11 + 4..11 + 6], &teal);

    // Fewer colours than pixels stop early without a panic.
    let Ok(()) = target.fill_contiguous(&whole, [PINK]);
    assert_eq!(&target.buffer()[..2], &pink);
}

#[test]
fn present_copies_whole_frame() {
    let geometry = FramebufferGeometry::xrgb8888(4, 3, 20);
    let mut display = MemoryFramebuffer::new(geometry).unwrap();
    let Ok(()) = display.target().clear(TEAL);
    assert!(display.device().iter().all(|&byte| byte == 0), "nothing is shown before present");

    display.present().unwrap();
    let shown = display.device().to_vec();
    assert_eq!(shown, display.target().buffer());
    assert_eq!(display.frames(), 1);
    // Line padding is not drawn.
    assert_eq!(&display.device()[16..20], &[0, 0, 0, 0]);
}

/// `struct fb_bitfield` from `<linux/fb.h>`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
#[allow(dead_code)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

/// `struct fb_var_screeninfo` from `<linux/fb.h>`.
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo` from `<linux/fb.h>`, with `unsigned long` as
/// the C type of this machine. Only its layout is used.
#[repr(C)]
#[allow(dead_code)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: std::ffi::c_ulong,
    smem_len: u32,
    fb_type: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: std::ffi::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

/// Returns the structure's bytes, as the ioctl leaves them in memory.
fn bytes_of_var(value: &FbVarScreeninfo) -> Vec<u8> {
    // SAFETY: the struct is `repr(C)` and made of `u32`s only, so it has no
    // padding and every byte is initialised.
    let size = std::mem::size_of::<FbVarScreeninfo>();
    unsafe { std::slice::from_raw_parts((value as *const FbVarScreeninfo).cast::<u8>(), size).to_vec() }
}

/// Returns a Raspberry Pi's 1920x1080 RGB565 console with a double-height virtual screen.
fn pi_var() -> FbVarScreeninfo {
    FbVarScreeninfo {
        xres: 1920,
        yres: 1080,
        xres_virtual: 1920,
        yres_virtual: 2160,
        yoffset: 1080,
        bits_per_pixel: 16,
        red: FbBitfield { offset: 11, length: 5, msb_right: 0 },
        green: FbBitfield { offset: 5, length: 6, msb_right: 0 },
        blue: FbBitfield { offset: 0, length: 5, msb_right: 0 },
        pixclock: 12345,
        reserved: [7; 4],
        ..Default::default()
    }
}

/// Returns the Pi's `fb_fix_screeninfo` bytes, each field written at the offset the
/// compiler gives the C structure.
fn pi_fix_bytes() -> Vec<u8> {
    use std::mem::offset_of;

    let mut bytes = vec![0xFFu8; std::mem::size_of::<FbFixScreeninfo>()];
    let mut put = |offset: usize, value: &[u8]| bytes[offset..offset + value.len()].copy_from_slice(value);
    put(offset_of!(FbFixScreeninfo, id), b"BCM2708 FB\0\0\0\0\0\0");
    put(offset_of!(FbFixScreeninfo, smem_start), &(0x3E40_2000 as std::ffi::c_ulong).to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, smem_len), &(3840u32 * 2160).to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, fb_type), &0u32.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, type_aux), &0u32.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, visual), &2u32.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, xpanstep), &1u16.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, ypanstep), &1u16.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, ywrapstep), &0u16.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, line_length), &3840u32.to_ne_bytes());
    put(offset_of!(FbFixScreeninfo, mmio_len), &99u32.to_ne_bytes());
    bytes
}

fn pi_fix() -> FixScreenInfo {
    FixScreenInfo::parse(&pi_fix_bytes(), std::mem::size_of::<std::ffi::c_ulong>()).unwrap()
}

#[test]
fn var_screeninfo_parses_kernel_layout() {
    let bytes = bytes_of_var(&pi_var());
    assert_eq!(bytes.len(), 160);

    let var = VarScreenInfo::parse(&bytes).unwrap();
    assert_eq!((var.xres, var.yres), (1920, 1080));
    assert_eq!((var.xres_virtual, var.yres_virtual), (1920, 2160));
    assert_eq!((var.xoffset, var.yoffset), (0, 1080));
    assert_eq!(var.bits_per_pixel, 16);
    assert_eq!(var.red, Bitfield::new(11, 5));
    assert_eq!(var.green, Bitfield::new(5, 6));
    assert_eq!(var.blue, Bitfield::new(0, 5));
}

#[test]
fn fix_screeninfo_parses_kernel_layout() {
    let fix = pi_fix();
    assert_eq!(fix.line_length, 3840);
    assert_eq!(fix.smem_len, 3840 * 2160);
    assert_eq!(fix.fb_type, 0);
    assert_eq!(fix.visual, 2);
}

#[test]
fn fix_screeninfo_parses_32_bit_layout() {
    // On 32-bit ARM `unsigned long` is 4 bytes, which moves every later field.
    let mut bytes = vec![0u8; 68];
    bytes[20..24].copy_from_slice(&1_600_000u32.to_ne_bytes());
    bytes[32..36].copy_from_slice(&2u32.to_ne_bytes());
    bytes[44..48].copy_from_slice(&1600u32.to_ne_bytes());
    let fix = FixScreenInfo::parse(&bytes, 4).unwrap();
    assert_eq!(fix.smem_len, 1_600_000);
    assert_eq!(fix.visual, 2);
    assert_eq!(fix.line_length, 1600);
}

#[test]
fn geometry_from_screeninfo() {
    let var = VarScreenInfo::parse(&bytes_of_var(&pi_var())).unwrap();
    let geometry = FramebufferGeometry::from_screeninfo(&var, &pi_fix()).unwrap();
    assert_eq!(geometry, FramebufferGeometry::rgb565(1920, 1080, 3840));
}

#[test]
fn screeninfo_errors_name_the_problem() {
    let err = VarScreenInfo::parse(&[0; 100]).unwrap_err();
    assert_eq!(err.to_string(), "fb_var_screeninfo is 100 bytes long, expected at least 160");

    let var = VarScreenInfo::parse(&bytes_of_var(&pi_var())).unwrap();
    let mut fix = pi_fix();
    fix.visual = 3; // FB_VISUAL_PSEUDOCOLOR: a palette.
    let err = FramebufferGeometry::from_screeninfo(&var, &fix).unwrap_err();
    assert!(matches!(err, FramebufferError::UnsupportedVisual { visual: 3, .. }), "{err}");

    let mut eight_bit = var;
    eight_bit.bits_per_pixel = 8;
    let err = FramebufferGeometry::from_screeninfo(&eight_bit, &pi_fix()).unwrap_err();
    assert!(err.to_string().contains("fbset -depth 32"), "{err}");
}
