//! The kiosk's frames allocate nothing beyond the tensors tract allocates
//! for each generator run, and nothing at all with the core backend,
//! counted with a global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use common::{weights, write_model, SMALL};
use dcgan_runtime::kiosk::{Frame, FramebufferGeometry, Kiosk, KioskControl, KioskOptions, MemoryFramebuffer};
use dcgan_runtime::latent::fill_latent;
use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm};
use dcgan_runtime::{weight_file, TractGenerator};
use embedded_graphics::prelude::Size;

/// Counts allocations made on threads that switched counting on.
struct CountingAllocator;

// The counters are per thread as well, because the tests of this file run in
// parallel and each must see only its own thread's allocations.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn record(allocations: u64, bytes: i64) {
    // During thread teardown the thread-locals may be gone; nothing is counted then.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + allocations));
        let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + bytes));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, and the
// thread-local counters have const initialisers, so counting never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(1, layout.size() as i64);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(1, layout.size() as i64);
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(0, -(layout.size() as i64));
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(1, new_size as i64 - layout.size() as i64);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` with counting on and returns its result, the allocations it
/// made and the change in live bytes.
fn counted<T>(work: impl FnOnce() -> T) -> (T, u64, i64) {
    let (allocations, bytes) = (ALLOCATIONS.get(), LIVE_BYTES.get());
    COUNTING.set(true);
    let result = work();
    COUNTING.set(false);
    (result, ALLOCATIONS.get() - allocations, LIVE_BYTES.get() - bytes)
}

/// Frames in one kiosk cycle of [`warmed_up_kiosk`]: 3 held and 5 morph frames.
const CYCLE: usize = 8;

/// Builds a headless kiosk on a 160x120 RGB565 screen and steps it through
/// two cycles, so that every buffer it keeps is allocated before counting.
fn warmed_up_kiosk(model: &std::path::Path) -> (Kiosk, MemoryFramebuffer, KioskControl) {
    let options = KioskOptions {
        hold: Duration::from_millis(300),
        morph: Duration::from_millis(500),
        fps: 10.0,
        realtime: false,
        ..KioskOptions::new(model)
    };
    let mut display = MemoryFramebuffer::new(FramebufferGeometry::rgb565(160, 120, 336)).unwrap();
    let control = KioskControl::new();
    let mut kiosk = Kiosk::new(options, Size::new(160, 120)).unwrap();
    for _ in 0..2 * CYCLE {
        kiosk.step(&mut display, &control).unwrap();
    }
    (kiosk, display, control)
}

#[test]
fn core_frames_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folded = fold_batch_norm(&weights(SMALL, 8)).unwrap();
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, 1, 4).unwrap();
    let model = dir.path().join("generator.dcgw");
    std::fs::write(&model, weight_file::write(&int8).unwrap()).unwrap();
    let (mut kiosk, mut display, control) = warmed_up_kiosk(&model);

    let mut total_bytes = 0;
    for index in 0..2 * CYCLE {
        let (frame, allocations, bytes) = counted(|| kiosk.step(&mut display, &control));
        assert!(matches!(frame.unwrap(), Frame::Face(_)), "frame {index}: the model is loaded");
        assert_eq!(allocations, 0, "frame {index} allocated {allocations} times");
        total_bytes += bytes;
    }
    assert_eq!(total_bytes, 0, "live memory changed over two cycles");
}

#[test]
fn frames_allocate_only_inside_tract() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "generator.onnx", &weights(SMALL, 8));
    let (mut kiosk, mut display, control) = warmed_up_kiosk(&model);

    // What one bare generator run allocates, after a warm-up run.
    let mut generator = TractGenerator::load(&model).unwrap();
    let mut latent = vec![0.0; SMALL.nz];
    let mut rgb = vec![0; 3 * SMALL.image_size * SMALL.image_size];
    fill_latent(0, 0, &mut latent);
    generator.generate_face_into(&latent, &mut rgb).unwrap();
    let (result, per_run, run_bytes) = counted(|| generator.generate_face_into(&latent, &mut rgb));
    result.unwrap();
    assert_eq!(run_bytes, 0, "a generator run frees what it allocates");

    let mut previous = None;
    let mut total_bytes = 0;
    for index in 0..2 * CYCLE {
        let (frame, allocations, bytes) = counted(|| kiosk.step(&mut display, &control));
        let Frame::Face(scene) = frame.unwrap() else {
            panic!("frame {index}: the model is loaded, so every frame shows a face");
        };
        let generated = previous != Some(scene);
        let expected = if generated { per_run } else { 0 };
        assert_eq!(allocations, expected, "frame {index} ({scene:?}) allocated {allocations} times");
        total_bytes += bytes;
        previous = Some(scene);
    }
    assert_eq!(total_bytes, 0, "live memory changed over two cycles");
}
