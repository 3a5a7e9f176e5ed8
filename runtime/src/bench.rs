//! The `dcgan-edge bench` measurement: latency percentiles, throughput and
//! peak resident memory of one generator on one backend.

use std::time::{Duration, Instant};

use crate::backend::{BackendError, Generator};
use crate::latent::fill_latent;

/// What [`run`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Timed faces (the warm-up face is not counted).
    pub iterations: usize,
    /// Median latency of one face.
    pub p50: Duration,
    /// 99th percentile latency of one face (nearest rank).
    pub p99: Duration,
    /// Timed faces divided by the total time of the timed runs.
    pub faces_per_second: f64,
    /// Peak resident memory of this process in bytes (`VmHWM`), where the
    /// system reports it.
    pub peak_resident_bytes: Option<u64>,
}

/// Generates one warm-up face, then `iterations` timed faces of seed
/// `seed`, one face per run.
///
/// Faces are generated one at a time, as the kiosk does, so the latency is
/// that of a batch of 1.
///
/// # Errors
///
/// The backend's errors; `iterations` of 0 measures the warm-up alone.
pub fn run(generator: &mut Generator, iterations: usize, seed: u64) -> Result<BenchReport, BackendError> {
    let size = generator.image_size();
    let mut latent = vec![0.0; generator.nz()];
    let mut rgb = vec![0u8; 3 * size * size];

    fill_latent(seed, 0, &mut latent);
    let warm_up = Instant::now();
    generator.generate_face_into(&latent, &mut rgb)?;
    let mut times = vec![warm_up.elapsed()];

    if iterations > 0 {
        times.clear();
        for index in 0..iterations as u64 {
            fill_latent(seed, index + 1, &mut latent);
            let started = Instant::now();
            generator.generate_face_into(&latent, &mut rgb)?;
            times.push(started.elapsed());
        }
    }

    let total: Duration = times.iter().sum();
    times.sort_unstable();
    Ok(BenchReport {
        iterations,
        p50: percentile(&times, 50),
        p99: percentile(&times, 99),
        faces_per_second: times.len() as f64 / total.as_secs_f64().max(f64::MIN_POSITIVE),
        peak_resident_bytes: peak_resident_bytes(),
    })
}

/// Returns the nearest-rank `percent` percentile of sorted, non-empty `times`.
pub fn percentile(times: &[Duration], percent: usize) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent * times.len()).div_ceil(100).clamp(1, times.len());
    times[rank - 1]
}

/// Peak resident memory of this process in bytes, from `VmHWM` in
/// `/proc/self/status`; `None` where that file does not exist (not Linux).
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// Parses the `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text into bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let times: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&times, 50), Duration::from_millis(50));
        assert_eq!(percentile(&times, 99), Duration::from_millis(99));
        assert_eq!(percentile(&times[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn vm_hwm_is_parsed_in_bytes() {
        let status = "Name:\tdcgan-edge\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }
}
