//! Output buffers that the thread pool builds chunk by chunk.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Builds a vector of `len` floats chunk by chunk. The thread that runs
/// `fill(chunk index, chunk)` on a chunk of `chunk` floats (the last may be
/// shorter) zeroes it first, so the chunk is in that thread's cache when
/// `fill` writes it. Chunks run on the rayon pool when `parallel` is set,
/// else in turn.
///
/// `vec![0.0; len]` would zero the whole buffer on the calling thread alone
/// while the rest of the pool waits.
pub(super) fn fill_in_chunks(
    len: usize,
    chunk: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut values: Vec<f32> = Vec::with_capacity(len);
    let run = |(index, piece): (usize, &mut [MaybeUninit<f32>])| {
        piece.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `piece` was initialised on the line above,
        // and `MaybeUninit<f32>` has the layout of `f32`.
        let piece = unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) };
        fill(index, piece);
    };

    let spare = &mut values.spare_capacity_mut()[..len];
    if parallel {
        spare.par_chunks_mut(chunk.max(1)).enumerate().for_each(run);
    } else {
        spare.chunks_mut(chunk.max(1)).enumerate().for_each(run);
    }

    // SAFETY: the chunks above cover all `len` elements, and each was
    // initialised before `fill` ran on it.
    unsafe { values.set_len(len) };
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_start_zeroed_and_cover_buffer() {
        for parallel in [false, true] {
            let values = fill_in_chunks(10, 4, parallel, |index, piece| {
                assert!(piece.iter().all(|&value| value == 0.0));
                assert_eq!(piece.len(), if index == 2 { 2 } else { 4 });
                piece[0] = index as f32 + 1.0;
            });
            assert_eq!(values, [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
        }
    }

    #[test]
    fn empty_buffer_runs_no_chunk() {
        let values = fill_in_chunks(0, 0, true, |_, _| panic!("no chunk expected"));
        assert!(values.is_empty());
    }
}
