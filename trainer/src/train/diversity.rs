//! Mode-collapse monitor: how different the fixed-noise samples are from
//! each other.
//!
//! A generator that collapses maps many latents to nearly the same image, so
//! the mean distance between its samples for the fixed latents falls. The
//! run logs that distance in `losses.csv` whenever it renders the sample
//! grid, and warns when it drops below [`COLLAPSE_RATIO`] times its first
//! value.

/// Fraction of the first measured sample diversity below which the run
/// warns about mode collapse.
pub const COLLAPSE_RATIO: f32 = 0.25;

/// Computes the mean pairwise distance between images: the root mean square
/// difference per value, averaged over every unordered pair.
///
/// For pixels in `[-1, 1]` the result is in `[0, 2]`; identical images give
/// 0 and independent uniform noise about 0.82.
///
/// # Shapes
/// `images`: `[count, image_len]` row-major; fewer than two images give 0.
pub fn mean_pairwise_distance(images: &[f32], image_len: usize) -> f32 {
    if image_len == 0 {
        return 0.0;
    }
    let rows: Vec<&[f32]> = images.chunks_exact(image_len).collect();
    if rows.len() < 2 {
        return 0.0;
    }

    let mut sum = 0.0f64;
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            let squared: f64 = a.iter().zip(*b).map(|(p, q)| f64::from(p - q).powi(2)).sum();
            sum += (squared / image_len as f64).sqrt();
        }
    }
    let pairs = rows.len() * (rows.len() - 1) / 2;
    (sum / pairs as f64) as f32
}

/// Tracks the sample diversity over a run and decides when to warn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiversityMonitor {
    reference: Option<f32>,
    warned: bool,
}

impl DiversityMonitor {
    /// A monitor whose reference is `reference`, the first value of the run
    /// (read back from the loss log when a run resumes), or none yet.
    pub fn new(reference: Option<f32>) -> Self {
        Self { reference, warned: false }
    }

    /// The first measured value of the run.
    pub fn reference(&self) -> Option<f32> {
        self.reference
    }

    /// Records a measurement and returns a warning message the first time
    /// it falls below [`COLLAPSE_RATIO`] times the reference. After a
    /// warning, the monitor warns again only once the value has recovered
    /// above that threshold and fallen again.
    pub fn observe(&mut self, iteration: u64, value: f32) -> Option<String> {
        let Some(reference) = self.reference.filter(|r| r.is_finite() && *r > 0.0) else {
            self.reference = Some(value);
            return None;
        };

        let threshold = COLLAPSE_RATIO * reference;
        if value >= threshold {
            self.warned = false;
            return None;
        }
        if self.warned {
            return None;
        }
        self.warned = true;
        Some(format!(
            "possible mode collapse at iteration {iteration}: the fixed-noise samples differ by {value:.4} on average, \
             below {COLLAPSE_RATIO} x their first value {reference:.4}; check the sample grids"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_have_zero_distance() {
        let images = vec![0.5f32; 4 * 12];
        assert_eq!(mean_pairwise_distance(&images, 12), 0.0);
    }

    #[test]
    fn distance_matches_naive_pairs() {
        // Three images of two values: pairs (0,1) differ by 2 everywhere,
        // (0,2) by 1, (1,2) by 1, so the mean RMS distance is 4 / 3.
        let images = [-1.0, -1.0, 1.0, 1.0, 0.0, 0.0];
        let distance = mean_pairwise_distance(&images, 2);
        assert!((distance - 4.0 / 3.0).abs() < 1e-6, "{distance}");
    }

    #[test]
    fn monitor_warns_once_per_drop() {
        let mut monitor = DiversityMonitor::new(None);
        assert_eq!(monitor.observe(10, 0.8), None);
        assert_eq!(monitor.reference(), Some(0.8));
        assert_eq!(monitor.observe(20, 0.5), None);
        assert!(monitor.observe(30, 0.1).is_some_and(|m| m.contains("iteration 30")));
        assert_eq!(monitor.observe(40, 0.05), None, "no repeated warning");
        assert_eq!(monitor.observe(50, 0.6), None);
        assert!(monitor.observe(60, 0.1).is_some(), "warns again after recovering");
    }
}
