//! Generator core benchmark (criterion): one tutorial-size face (batch 1)
//! from the f32 core, the int8 core and tract, each on one thread.
//!
//! ```sh
//! cargo bench -p dcgan-runtime --bench core                    # every group
//! cargo bench -p dcgan-runtime --bench core -- 'core f32'      # one group
//! DCGAN_CORE_BENCH_ONNX=$PWD/target/core-bench.onnx cargo bench -p dcgan-runtime --bench core -- tract
//! .venv/bin/python runtime/benches/core_onnxruntime.py target/core-bench.onnx
//! ```
//!
//! Groups `core f32` and `core int8` time both kernel families of the
//! stride-2 layers, `panels` (AVX-512, VNNI for int8) and `blocks` (AVX2 or
//! portable), so one run compares them on the same machine state. A CPU
//! without the panel kernels runs blocks under both names. Group `tract`
//! times tract 0.23 on the same weights exported to ONNX.
//!
//! `DCGAN_BENCH_CLOCK=thread-cpu` measures the CPU time of the benchmark
//! thread instead of wall time. Time spent waiting for a core then does not
//! count, so runs on a machine shared with other work compare better. The
//! other work still shares the caches and the memory bandwidth.
//!
//! `DCGAN_CORE_BENCH_ONNX=PATH` keeps that ONNX (random weights of seed 1),
//! so `core_onnxruntime.py` can time onnxruntime on the same model. Without
//! `--bench` (as `cargo test --all-targets` runs it) criterion runs each
//! routine once, on a tiny generator, as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;
use dcgan_runtime::engine::{Engine, EngineConfig, Kernels, PixelFormat};
use dcgan_runtime::latent::fill_latent;
use dcgan_runtime::quantized::{calibrate_activation_scales, fold_batch_norm, CALIBRATION_SEED};
use dcgan_runtime::{GeneratorSpec, QuantizedGenerator, TractGenerator};

/// The tutorial's generator: nz 100, ngf 64, 64x64 RGB.
const TUTORIAL: GeneratorSpec = GeneratorSpec { nz: 100, ngf: 64, nc: 3, image_size: 64 };

/// The tutorial-size generator under `cargo bench`, the tiny one otherwise.
fn spec() -> GeneratorSpec {
    if std::env::args().any(|arg| arg == "--bench") {
        TUTORIAL
    } else {
        common::SMALL
    }
}

/// Folded f32 and calibrated int8 forms of the random weights of seed 1.
fn generators(spec: GeneratorSpec) -> (QuantizedGenerator, QuantizedGenerator) {
    let folded = fold_batch_norm(&common::weights(spec, 1)).expect("random weights fold");
    let mut int8 = folded.quantize(|_| true);
    int8.activation_scales = calibrate_activation_scales(&int8, CALIBRATION_SEED, 4).expect("calibration runs");
    (folded, int8)
}

/// Times one face in RGB888 for each kernel family of `generator`.
fn bench_engine<M: Measurement>(c: &mut Criterion<M>, group: &str, generator: &QuantizedGenerator) {
    let mut group = c.benchmark_group(group);
    for (name, kernels) in [("panels", Kernels::Panels), ("blocks", Kernels::Blocks)] {
        let engine = Engine::with_kernels(generator, &EngineConfig::default(), kernels).expect("engine builds");
        let mut scratch = vec![0.0; engine.scratch_len()];
        let mut pixels = vec![0u8; engine.pixel_len(PixelFormat::Rgb888)];
        let mut index = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                index += 1;
                engine.generate_face(1, index, &mut scratch, PixelFormat::Rgb888, &mut pixels).expect("face");
                black_box(&pixels);
            })
        });
    }
    group.finish();
}

fn core_f32<M: Measurement>(c: &mut Criterion<M>) {
    let (folded, _) = generators(spec());
    bench_engine(c, "core f32", &folded);
}

fn core_int8<M: Measurement>(c: &mut Criterion<M>) {
    let (_, int8) = generators(spec());
    bench_engine(c, "core int8", &int8);
}

fn tract<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let spec = spec();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let onnx =
        std::env::var_os("DCGAN_CORE_BENCH_ONNX").map(PathBuf::from).unwrap_or_else(|| dir.path().join("g.onnx"));
    let name = onnx.file_name().expect("a file name").to_string_lossy().into_owned();
    let model = common::write_model(onnx.parent().expect("a folder"), &name, &common::weights(spec, 1));

    let mut tract = TractGenerator::load(&model).expect("tract loads the model");
    let mut latent = vec![0.0; spec.nz];
    let mut rgb = vec![0u8; 3 * spec.image_size * spec.image_size];
    let mut index = 0;
    c.bench_function("tract", |b| {
        b.iter(|| {
            index += 1;
            fill_latent(1, index, &mut latent);
            tract.generate_face_into(&latent, &mut rgb).expect("face");
            black_box(&rgb);
        })
    });
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
struct ThreadCpuTime;

/// Wall time, whose formatter prints durations.
static WALL_TIME: WallTime = WallTime;

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write to.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time() - start
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

fn run_groups<M: Measurement + 'static>(mut c: Criterion<M>) {
    core_f32(&mut c);
    core_int8(&mut c);
    tract(&mut c);
    c.final_summary();
}

fn main() {
    match std::env::var("DCGAN_BENCH_CLOCK").as_deref() {
        Ok("thread-cpu") => run_groups(Criterion::default().with_measurement(ThreadCpuTime).configure_from_args()),
        Ok("wall") | Err(_) => run_groups(Criterion::default().configure_from_args()),
        Ok(other) => panic!("DCGAN_BENCH_CLOCK must be `wall` or `thread-cpu`, not {other:?}"),
    }
}
