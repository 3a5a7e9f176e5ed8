//! Counter-based random streams.
//!
//! Every random draw of a run comes from a ChaCha8 generator keyed by the
//! run's seed, a stream tag and a counter (the epoch for shuffling, the
//! global iteration for noise). No generator state carries over between
//! iterations, so the seed and the iteration reached are all a checkpoint
//! needs to continue with exactly the draws an uninterrupted run makes.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Version tag of this scheme, stored in checkpoints: a checkpoint written
/// with another scheme cannot resume exactly.
pub const RNG_SCHEME: &str = "chacha8(seed,stream,counter)/1";

/// What a random stream is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Initial generator weights (counter 0).
    GeneratorInit = 1,
    /// Initial discriminator weights (counter 0).
    DiscriminatorInit = 2,
    /// The permutation of the data set in an epoch (counter: epoch).
    Shuffle = 3,
    /// The generator's input noise in an iteration (counter: global iteration).
    Noise = 4,
}

/// The generator for `stream` at `counter` of run `seed`.
pub fn stream_rng(seed: u64, stream: Stream, counter: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&counter.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// The order in which epoch `epoch` visits `len` images.
pub fn epoch_permutation(seed: u64, epoch: u64, len: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut stream_rng(seed, Stream::Shuffle, epoch));
    order
}

/// `count` standard normal samples for global iteration `iteration`.
pub fn iteration_noise(seed: u64, iteration: u64, count: usize) -> Vec<f32> {
    let mut rng = stream_rng(seed, Stream::Noise, iteration);
    (0..count).map(|_| StandardNormal.sample(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_depends_on_seed_and_epoch_only() {
        let a = epoch_permutation(999, 3, 100);
        assert_eq!(a, epoch_permutation(999, 3, 100));
        assert_ne!(a, epoch_permutation(999, 4, 100));
        assert_ne!(a, epoch_permutation(998, 3, 100));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn noise_depends_on_seed_and_iteration_only() {
        let a = iteration_noise(999, 17, 64);
        assert_eq!(a, iteration_noise(999, 17, 64));
        assert_ne!(a, iteration_noise(999, 18, 64));
        assert_eq!(&a[..10], &iteration_noise(999, 17, 10)[..]);
    }
}
