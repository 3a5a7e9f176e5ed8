//! The evaluation metrics against reference values from numpy, scipy and
//! scikit-image (`eval_reference/make_reference.py`), plus properties that
//! need no reference.

use dcgan_trainer::eval::{
    frechet_distance, inception_score, kernel_inception_distance, mmd2_unbiased, psd_sqrt, psnr, resize_bilinear, ssim,
    trace_sqrt_product, FeatureMatrix, GaussianStats, KidOptions,
};
use image::RgbImage;
use serde_json::Value;

fn reference() -> Value {
    let text = include_str!("eval_reference/reference.json");
    serde_json::from_str(text).expect("reference.json parses")
}

/// `count` floats in [0, 1) from SplitMix64 started at `seed`, as
/// `uniform` in make_reference.py draws them.
fn uniform(seed: u64, count: usize) -> Vec<f64> {
    (1..=count as u64)
        .map(|k| {
            let mut z = seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-53)
        })
        .collect()
}

/// `features` of make_reference.py: uniform [rows, rank] times a mixing
/// matrix [rank, cols] in [-0.5, 0.5), plus offset and noise, times scale.
fn features(spec: &Value) -> FeatureMatrix {
    let seed = spec["seed"].as_u64().unwrap();
    let rows = spec["rows"].as_u64().unwrap() as usize;
    let cols = spec["cols"].as_u64().unwrap() as usize;
    let rank = spec["rank"].as_u64().unwrap() as usize;
    let scale = spec["scale"].as_f64().unwrap();
    let offset = spec["offset"].as_f64().unwrap();

    let base = uniform(seed, rows * rank);
    let mixing: Vec<f64> = uniform(seed + 1, rank * cols).into_iter().map(|v| v - 0.5).collect();
    let noise = uniform(seed + 2, rows * cols);
    let mut values = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            let mixed: f64 = (0..rank).map(|r| base[i * rank + r] * mixing[r * cols + j]).sum();
            values[i * cols + j] = scale * (mixed + offset + 0.05 * noise[i * cols + j]);
        }
    }
    FeatureMatrix::new(rows, cols, values).unwrap()
}

fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let tolerance = relative * expected.abs().max(1.0);
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} vs expected {expected} (tolerance {tolerance})");
}

#[test]
fn frechet_matches_scipy() {
    for case in reference()["frechet"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x = features(&case["x"]);
        let y = features(&case["y"]);
        let fid = frechet_distance(&x, &y).unwrap();
        assert_close(fid, case["fid"].as_f64().unwrap(), 1e-6, name);

        // The 2048-feature case runs the same eigendecompositions inside
        // `frechet_distance` above, so the separate trace check skips it.
        if x.cols() > 256 {
            continue;
        }
        let (sx, sy) = (GaussianStats::from_features(&x).unwrap(), GaussianStats::from_features(&y).unwrap());
        let trace = trace_sqrt_product(&sx.covariance, &sy.covariance);
        // The rank tolerance drops eigenvalues of sqrt(S1) S2 sqrt(S1) below
        // d * eps * max, which moves the trace by about 1e-6 relative on the
        // 2048-feature case; FID itself matches to 1e-6 above.
        assert_close(trace, case["trace_sqrt_eigen"].as_f64().unwrap(), 3e-6, name);
        assert_close(trace, case["trace_sqrt_sqrtm"].as_f64().unwrap(), 3e-6, name);
    }
}

#[test]
fn frechet_of_set_with_itself_is_zero() {
    for case in reference()["frechet"].as_array().unwrap().iter().take(2) {
        let x = features(&case["x"]);
        let fid = frechet_distance(&x, &x).unwrap();
        let scale = GaussianStats::from_features(&x).unwrap().covariance.trace();
        assert!(fid.abs() <= 1e-9 * scale.max(1.0), "{}: FID with itself {fid}", case["name"]);
    }
}

#[test]
fn psd_sqrt_squares_back() {
    let x = features(&serde_json::json!({"seed": 5, "rows": 30, "cols": 12, "rank": 12, "scale": 1.0, "offset": 0.0}));
    let covariance = GaussianStats::from_features(&x).unwrap().covariance;
    let root = psd_sqrt(&covariance);
    let squared = &root * &root;
    let error = (&squared - &covariance).abs().max();
    assert!(error < 1e-12, "max |sqrt(S)^2 - S| = {error}");
}

#[test]
fn frechet_rejects_mismatched_features() {
    let a = FeatureMatrix::new(3, 2, vec![0.0; 6]).unwrap();
    let b = FeatureMatrix::new(3, 4, vec![0.0; 12]).unwrap();
    let err = frechet_distance(&a, &b).unwrap_err().to_string();
    assert!(err.contains("2 features per row"), "{err}");
    let single = FeatureMatrix::new(1, 2, vec![0.0; 2]).unwrap();
    let err = frechet_distance(&single, &a).unwrap_err().to_string();
    assert!(err.contains("at least 2"), "{err}");
}

#[test]
fn kid_matches_numpy() {
    for case in reference()["kid"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x = features(&case["x"]);
        let y = features(&case["y"]);
        let expected = case["mmd2_unbiased"].as_f64().unwrap();
        assert_close(mmd2_unbiased(&x, &y).unwrap(), expected, 1e-9, name);

        // One subset of every row is a permutation of the sets, which the
        // estimate does not depend on.
        let whole = KidOptions { subsets: 1, subset_size: x.rows().max(y.rows()), seed: 3 };
        if x.rows() == y.rows() {
            let score = kernel_inception_distance(&x, &y, &whole).unwrap();
            assert_close(score.mean, expected, 1e-9, name);
            assert_eq!(score.std, 0.0);
        }
    }
}

#[test]
fn kid_subsets_average_and_spread() {
    let case = &reference()["kid"][0];
    let x = features(&case["x"]);
    let y = features(&case["y"]);
    let options = KidOptions { subsets: 20, subset_size: 30, seed: 1 };
    let score = kernel_inception_distance(&x, &y, &options).unwrap();
    assert_eq!((score.subsets, score.subset_size), (20, 30));
    assert!(score.std > 0.0);
    let full = case["mmd2_unbiased"].as_f64().unwrap();
    assert!((score.mean - full).abs() < 4.0 * score.std + 1e-9, "{score:?} vs {full}");
    assert_eq!(kernel_inception_distance(&x, &y, &options).unwrap(), score, "same seed, same draws");
}

#[test]
fn inception_score_matches_numpy() {
    for case in reference()["inception_score"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rows = case["rows"].as_u64().unwrap() as usize;
        let classes = case["classes"].as_u64().unwrap() as usize;
        let scale = case["scale"].as_f64().unwrap();
        let logits: Vec<f64> =
            uniform(case["seed"].as_u64().unwrap(), rows * classes).into_iter().map(|v| (v - 0.5) * scale).collect();
        let logits = FeatureMatrix::new(rows, classes, logits).unwrap();
        let score = inception_score(&logits, case["splits"].as_u64().unwrap() as usize).unwrap();
        assert_close(score.mean, case["mean"].as_f64().unwrap(), 1e-10, name);
        assert_close(score.std, case["std"].as_f64().unwrap(), 1e-8, name);
    }
}

#[test]
fn inception_score_of_one_class_is_one() {
    let logits = FeatureMatrix::new(4, 3, vec![10.0, 0.0, 0.0].repeat(4)).unwrap();
    let score = inception_score(&logits, 2).unwrap();
    assert!((score.mean - 1.0).abs() < 1e-12, "{score:?}");
}

/// The image pairs of make_reference.py.
fn image_pair(case: &Value) -> (RgbImage, RgbImage) {
    let seed = case["seed"].as_u64().unwrap();
    let height = case["height"].as_u64().unwrap() as u32;
    let width = case["width"].as_u64().unwrap() as u32;
    let len = (height * width * 3) as usize;
    let (first, second): (Vec<u8>, Vec<u8>) = match case["kind"].as_str().unwrap() {
        "random" => {
            let noise = case["noise"].as_i64().unwrap();
            let first: Vec<i64> = uniform(seed, len).into_iter().map(|v| (v * 256.0).floor() as i64).collect();
            let delta = uniform(seed + 1, len).into_iter().map(|v| (v * (2 * noise + 1) as f64).floor() as i64 - noise);
            let second = first.iter().zip(delta).map(|(a, d)| (a + d).clamp(0, 255) as u8).collect();
            (first.into_iter().map(|v| v as u8).collect(), second)
        }
        _ => {
            let noise = uniform(seed, len);
            let mut first = Vec::with_capacity(len);
            let mut second = Vec::with_capacity(len);
            for y in 0..height as usize {
                for x in 0..width as usize {
                    let base = [
                        x as f64 * 255.0 / (width - 1) as f64,
                        y as f64 * 255.0 / (height - 1) as f64,
                        (x + y) as f64 * 127.0 / (width + height) as f64,
                    ];
                    for (c, value) in base.into_iter().enumerate() {
                        let n = (noise[(y * width as usize + x) * 3 + c] - 0.5) * 40.0;
                        first.push(round_half_even(value) as u8);
                        second.push(round_half_even(value * 0.9 + 20.0 + n).clamp(0.0, 255.0) as u8);
                    }
                }
            }
            (first, second)
        }
    };
    (RgbImage::from_raw(width, height, first).unwrap(), RgbImage::from_raw(width, height, second).unwrap())
}

/// numpy's `round`: halves go to the even neighbour.
fn round_half_even(value: f64) -> f64 {
    let rounded = value.round();
    if (value - value.trunc()).abs() == 0.5 && rounded % 2.0 != 0.0 {
        rounded - value.signum()
    } else {
        rounded
    }
}

fn checksum(image: &RgbImage) -> u64 {
    image.as_raw().iter().map(|&v| u64::from(v)).sum()
}

#[test]
fn ssim_and_psnr_match_scikit_image() {
    for case in reference()["images"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (first, second) = image_pair(case);
        assert_eq!(checksum(&first), case["first_checksum"].as_u64().unwrap(), "{name}: first image differs");
        assert_eq!(checksum(&second), case["second_checksum"].as_u64().unwrap(), "{name}: second image differs");
        assert_close(ssim(&first, &second).unwrap(), case["ssim"].as_f64().unwrap(), 1e-10, name);
        assert_close(psnr(&first, &second).unwrap(), case["psnr"].as_f64().unwrap(), 1e-10, name);
    }
}

#[test]
fn identical_images_score_perfectly() {
    let (first, _) = image_pair(&reference()["images"][0]);
    assert!((ssim(&first, &first).unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(psnr(&first, &first).unwrap(), f64::INFINITY);
}

#[test]
fn ssim_rejects_small_and_mismatched_images() {
    let small = RgbImage::new(10, 20);
    assert!(ssim(&small, &small).unwrap_err().to_string().contains("11x11"));
    let other = RgbImage::new(20, 20);
    assert!(ssim(&small, &other).unwrap_err().to_string().contains("10x20"));
    assert!(psnr(&small, &other).is_err());
}

#[test]
fn bilinear_matches_pytorch_rule() {
    // F.interpolate([[0, 1]], size=4, mode="bilinear", align_corners=False)
    // samples at x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (past the end).
    let row = resize_bilinear(&[0.0, 1.0], 1, 2, 1, 4);
    assert_eq!(row, vec![0.0, 0.25, 0.75, 1.0]);

    // Downsampling 4 -> 2 averages neighbours: sources 0.5 and 2.5.
    let row = resize_bilinear(&[0.0, 1.0, 2.0, 3.0], 1, 4, 1, 2);
    assert_eq!(row, vec![0.5, 2.5]);
}

#[test]
fn bilinear_matches_naive_reference() {
    let (in_h, in_w, out_h, out_w) = (7, 5, 13, 9);
    let plane: Vec<f32> = uniform(77, in_h * in_w).into_iter().map(|v| v as f32).collect();
    let fast = resize_bilinear(&plane, in_h, in_w, out_h, out_w);

    // Naive: evaluate the 2-D interpolation formula for every output pixel.
    let source = |o: usize, input: usize, output: usize| ((o as f64 + 0.5) * input as f64 / output as f64 - 0.5).max(0.0);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let (sy, sx) = (source(oy, in_h, out_h), source(ox, in_w, out_w));
            let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(in_h - 1), (x0 + 1).min(in_w - 1));
            let (fy, fx) = (sy - y0 as f64, sx - x0 as f64);
            let at = |y: usize, x: usize| f64::from(plane[y * in_w + x]);
            let expected = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x1))
                + fy * ((1.0 - fx) * at(y1, x0) + fx * at(y1, x1));
            let actual = f64::from(fast[oy * out_w + ox]);
            assert!((actual - expected).abs() < 1e-5, "({oy}, {ox}): {actual} vs {expected}");
        }
    }
}
