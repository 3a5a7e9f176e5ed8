//! Links the generator core for a microcontroller without an operating
//! system: a panic handler, a static bump allocator, and one function that
//! decodes an embedded int8 weight file, builds an [`Engine`] and writes a
//! face as RGB565.
//!
//! Built as a static library for `thumbv7em-none-eabihf`, every function the
//! core calls is compiled and must resolve without std. A firmware would link
//! the library and call [`dcgan_check_face`].
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use dcgan_runtime::engine::{Engine, EngineConfig, PixelFormat};
use dcgan_runtime::weight_file;

/// The embedded weight file, written by `build.rs`.
static WEIGHTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/check.dcgw"));

/// Bytes the allocator hands out: the check model's engine and scratch fit
/// in a fraction of a Cortex-M4's RAM.
const HEAP_LEN: usize = 64 * 1024;

/// Pixels of one 16x16 RGB565 face.
pub const FACE_LEN: usize = 16 * 16 * 2;

/// A bump allocator over a static array that never frees.
struct BumpAllocator {
    heap: UnsafeCell<[u8; HEAP_LEN]>,
    next: AtomicUsize,
}

// SAFETY: `next` is only advanced atomically, so no two allocations overlap.
unsafe impl Sync for BumpAllocator {}

// SAFETY: every returned block lies inside `heap`, is aligned as asked, and
// is never handed out twice.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.heap.get() as usize;
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + current).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()).filter(|&end| end <= HEAP_LEN) else {
                return core::ptr::null_mut();
            };
            match self.next.compare_exchange_weak(current, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(seen) => current = seen,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator { heap: UnsafeCell::new([0; HEAP_LEN]), next: AtomicUsize::new(0) };

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Generates face `index` of `seed` from the embedded weight file into
/// `out` as little-endian RGB565.
///
/// Returns 0 on success, 1 for an invalid weight file, 2 when the engine
/// cannot be built and 3 when generating fails (for example a wrong `out`
/// length).
pub fn generate_face(seed: u64, index: u64, out: &mut [u8; FACE_LEN]) -> u32 {
    let Ok(generator) = weight_file::read(WEIGHTS) else { return 1 };
    let Ok(engine) = Engine::new(&generator, &EngineConfig { memory_limit: HEAP_LEN / 2 }) else { return 2 };

    let mut scratch = vec![0.0f32; engine.scratch_len()];
    match engine.generate_face(seed, index, &mut scratch, PixelFormat::Rgb565Le, out) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}

/// C entry point for firmware: [`generate_face`] into a static buffer, then
/// a checksum of its bytes (or `u32::MAX` on failure).
#[no_mangle]
pub extern "C" fn dcgan_check_face(seed: u64, index: u64) -> u32 {
    let mut face = [0u8; FACE_LEN];
    if generate_face(seed, index, &mut face) != 0 {
        return u32::MAX;
    }
    face.iter().fold(0u32, |sum, &byte| sum.rotate_left(5) ^ u32::from(byte))
}
