//! Spherical linear interpolation between latents.
//!
//! Gaussian latents of length `nz` lie near a sphere of radius `sqrt(nz)`,
//! but the straight line between two of them passes closer to the origin,
//! where latents are rare in training. Slerp follows the arc between them
//! instead.

/// Below this angle between the latents, in radians, slerp falls back to
/// linear interpolation, whose result is then the same to f32 precision.
const PARALLEL_ANGLE: f64 = 1e-4;

/// Writes `slerp(from, to, t)` into `out`:
/// `sin((1 - t) θ) / sin θ * from + sin(t θ) / sin θ * to`, where `θ` is the
/// angle between the two latents. For latents of equal length the result
/// keeps that length and its angle to `from` grows linearly with `t`.
///
/// `t = 0` gives `from` and `t = 1` gives `to`. Nearly parallel latents and
/// zero vectors are interpolated linearly. Never allocates.
///
/// # Shapes
///
/// - `from`, `to`, `out`: `[nz]`; extra values in a longer slice are ignored.
pub fn slerp(from: &[f32], to: &[f32], t: f32, out: &mut [f32]) {
    let (mut dot, mut from_norm, mut to_norm) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in from.iter().zip(to) {
        let (a, b) = (f64::from(a), f64::from(b));
        dot += a * b;
        from_norm += a * a;
        to_norm += b * b;
    }
    let (from_norm, to_norm) = (from_norm.sqrt(), to_norm.sqrt());
    let t = f64::from(t);

    let cosine = if from_norm > 0.0 && to_norm > 0.0 { (dot / (from_norm * to_norm)).clamp(-1.0, 1.0) } else { 1.0 };
    let angle = cosine.acos();
    let (from_weight, to_weight) = if angle < PARALLEL_ANGLE {
        (1.0 - t, t)
    } else {
        let sine = angle.sin();
        (((1.0 - t) * angle).sin() / sine, (t * angle).sin() / sine)
    };

    for ((out, &a), &b) in out.iter_mut().zip(from).zip(to) {
        *out = (from_weight * f64::from(a) + to_weight * f64::from(b)) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::fill_latent;

    fn norm(v: &[f32]) -> f64 {
        v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()
    }

    fn latents(nz: usize) -> (Vec<f32>, Vec<f32>) {
        let (mut a, mut b) = (vec![0.0; nz], vec![0.0; nz]);
        fill_latent(5, 0, &mut a);
        fill_latent(5, 1, &mut b);
        (a, b)
    }

    #[test]
    fn endpoints_are_the_latents() {
        let (a, b) = latents(100);
        let mut out = vec![0.0; 100];
        slerp(&a, &b, 0.0, &mut out);
        assert!(out.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-5));
        slerp(&a, &b, 1.0, &mut out);
        assert!(out.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
    }

    #[test]
    fn path_stays_on_the_sphere() {
        // Two unit vectors: every slerp point has length 1, while the linear
        // midpoint is shorter.
        let (mut a, mut b) = latents(100);
        let (na, nb) = (norm(&a) as f32, norm(&b) as f32);
        a.iter_mut().for_each(|x| *x /= na);
        b.iter_mut().for_each(|x| *x /= nb);

        let mut out = vec![0.0; 100];
        for step in 0..=10 {
            slerp(&a, &b, step as f32 / 10.0, &mut out);
            assert!((norm(&out) - 1.0).abs() < 1e-5, "t = {step}/10: length {}", norm(&out));
        }
        let midpoint: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
        assert!(norm(&midpoint) < 0.9);
    }

    #[test]
    fn angle_grows_linearly() {
        // The angle is linear in t for latents of equal length.
        let (a, mut b) = latents(100);
        let scale = (norm(&a) / norm(&b)) as f32;
        b.iter_mut().for_each(|x| *x *= scale);
        let angle = |u: &[f32], v: &[f32]| {
            let dot: f64 = u.iter().zip(v).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            (dot / (norm(u) * norm(v))).acos()
        };
        let total = angle(&a, &b);
        let mut out = vec![0.0; 100];
        slerp(&a, &b, 0.25, &mut out);
        assert!((angle(&a, &out) - 0.25 * total).abs() < 1e-4);
    }

    #[test]
    fn parallel_and_zero_vectors_interpolate_linearly() {
        let a = [1.0, 2.0, 3.0];
        let b = [2.0, 4.0, 6.0];
        let mut out = [0.0; 3];
        slerp(&a, &b, 0.5, &mut out);
        assert_eq!(out, [1.5, 3.0, 4.5]);

        slerp(&[0.0; 3], &b, 0.5, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
