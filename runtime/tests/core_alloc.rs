//! Generating with the core allocates nothing once the engine is built,
//! counted with a global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{weights, SMALL};
use dcgan_runtime::engine::{Engine, EngineConfig, PixelFormat, Precision};
use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm};

/// Counts allocations while counting is switched on.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are atomics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Both precisions in one test, so no other test thread counts in between.
#[test]
fn generating_allocates_nothing() {
    let folded = fold_batch_norm(&weights(SMALL, 4)).unwrap();
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, 1, 4).unwrap();

    for generator in [&folded, &int8] {
        let engine = Engine::new(generator, &EngineConfig::default()).unwrap();
        let mut scratch = vec![0.0; engine.scratch_len()];
        let mut pixels = vec![0u8; engine.pixel_len(PixelFormat::Rgb565Le)];
        let latent = vec![0.5; SMALL.nz];
        let mut image = vec![0.0; engine.output_len()];

        COUNTING.store(true, Ordering::Relaxed);
        for index in 0..3 {
            engine.generate_face(1, index, &mut scratch, PixelFormat::Rgb565Le, &mut pixels).unwrap();
            engine.generate_into(&latent, &mut scratch, &mut image).unwrap();
        }
        COUNTING.store(false, Ordering::Relaxed);

        let precision: Precision = engine.precision();
        assert_eq!(ALLOCATIONS.swap(0, Ordering::Relaxed), 0, "{precision:?} engine allocated");
    }
}
