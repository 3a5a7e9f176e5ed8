//! Latent vectors from `(seed, index)`, identical on every platform.
//!
//! Face `k` of a run with seed `s` always gets the same latent, however many
//! faces are generated and in what batches. The stream is SplitMix64 keyed by
//! the seed and the index, turned into standard normal samples with the
//! Box-Muller transform. The maths comes from `libm`, a pure-Rust libm, so the
//! values are bit-identical with and without `std` and across CPUs.

/// Golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A SplitMix64 generator: tiny, fast, and good enough for latent sampling.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Creates a generator whose stream depends on both `seed` and `index`.
    pub fn for_index(seed: u64, index: u64) -> Self {
        let mut keyed = SplitMix64 { state: seed };
        let key = keyed.next_u64() ^ index.wrapping_mul(GAMMA).rotate_left(17);
        SplitMix64 { state: key }
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a uniform sample from `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Fills `out` with standard normal samples for face `index` of run `seed`.
///
/// Any length works; the tutorial's generator takes `nz = 100` values.
pub fn fill_latent(seed: u64, index: u64, out: &mut [f32]) {
    let mut rng = SplitMix64::for_index(seed, index);
    for pair in out.chunks_mut(2) {
        // Box-Muller: u1 in (0, 1] keeps the logarithm finite.
        let u1 = 1.0 - rng.next_f64();
        let u2 = rng.next_f64();
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        let angle = 2.0 * core::f64::consts::PI * u2;
        pair[0] = (radius * libm::cos(angle)) as f32;
        if let Some(second) = pair.get_mut(1) {
            *second = (radius * libm::sin(angle)) as f32;
        }
    }
}

/// Fills `out` with the latents of faces `first..first + count`, one after
/// another, each `nz` long. `out.len()` must be `count * nz`.
pub fn fill_latents(seed: u64, first: u64, nz: usize, out: &mut [f32]) {
    for (offset, latent) in out.chunks_exact_mut(nz).enumerate() {
        fill_latent(seed, first + offset as u64, latent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_depends_only_on_seed_and_index() {
        let mut batch = [0.0f32; 100 * 8];
        fill_latents(7, 0, 100, &mut batch);
        let mut single = [0.0f32; 100];
        fill_latent(7, 5, &mut single);
        assert_eq!(&batch[500..600], &single[..]);
    }

    #[test]
    fn different_seeds_and_indices_differ() {
        let mut a = [0.0f32; 16];
        let mut b = [0.0f32; 16];
        fill_latent(1, 0, &mut a);
        fill_latent(2, 0, &mut b);
        assert_ne!(a, b);
        fill_latent(1, 1, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn samples_look_standard_normal() {
        let mut values = [0.0f32; 100 * 200];
        fill_latents(999, 0, 100, &mut values);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn odd_length_is_filled() {
        let mut values = [f32::NAN; 3];
        fill_latent(3, 4, &mut values);
        assert!(values.iter().all(|v| v.is_finite()));
    }
}
