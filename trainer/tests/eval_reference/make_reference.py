"""Writes reference.json: FID, KID, Inception Score, SSIM and PSNR values that
trainer/tests/eval_metrics.rs compares the Rust evaluation module against.

Run by hand, from the repository root, with numpy, scipy and scikit-image
installed (tested with numpy 2.4.6, scipy 1.17.1, scikit-image 0.26.0):

    python trainer/tests/eval_reference/make_reference.py

Inputs are not stored: both this script and the Rust test draw them from
SplitMix64 (`uniform` below), so the JSON holds only seeds, shapes and results.
"""

import json
import pathlib

import numpy as np
import scipy
import scipy.linalg
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

MASK = (1 << 64) - 1


def uniform(seed, count):
    """`count` floats in [0, 1) from SplitMix64 started at `seed`: the value of
    step k (from 1) is mix(seed + k * 0x9E3779B97F4A7C15) >> 11, times 2^-53."""
    k = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def features(seed, rows, cols, rank, scale, offset):
    """Correlated features: `uniform` [rows, rank] times a mixing matrix
    [rank, cols] with entries in [-0.5, 0.5), plus `offset`, plus noise
    of amplitude 0.05, all times `scale`."""
    base = uniform(seed, rows * rank).reshape(rows, rank)
    mixing = uniform(seed + 1, rank * cols).reshape(rank, cols) - 0.5
    noise = 0.05 * uniform(seed + 2, rows * cols).reshape(rows, cols)
    return scale * (base @ mixing + offset + noise)


def frechet_distance(x, y):
    """pytorch-fid's calculate_frechet_distance on the statistics of x and y,
    with scipy.linalg.sqrtm and its eps-offset fallback."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    sigma1, sigma2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def trace_sqrt_eigen(x, y):
    """tr(sqrtm(S1 S2)) as the sum of square roots of the eigenvalues of
    sqrt(S1) S2 sqrt(S1), a cross-check of the sqrtm value."""
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 with the KID kernel k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = x.shape[0], y.shape[0]
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2 * kxy.sum() / (m * n))


def inception_score(logits, splits):
    """torch-fidelity's Inception Score without shuffling: softmax, `splits`
    chunks [i*N//splits, (i+1)*N//splits), mean and population std."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    n = p.shape[0]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]
        q = chunk.mean(axis=0, keepdims=True)
        kl = (chunk * (np.log(chunk) - np.log(q))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def image_pair(seed, height, width, noise):
    """An RGB uint8 image and a copy with uniform noise of +-noise added,
    clipped to [0, 255]."""
    first = np.floor(uniform(seed, height * width * 3) * 256).astype(np.int64)
    delta = np.floor(uniform(seed + 1, height * width * 3) * (2 * noise + 1)).astype(np.int64) - noise
    second = np.clip(first + delta, 0, 255)
    shape = (height, width, 3)
    return first.reshape(shape).astype(np.uint8), second.reshape(shape).astype(np.uint8)


def smooth_pair(seed, height, width):
    """A smooth gradient image and a brightened, noisy copy: SSIM well
    inside (0, 1)."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / (width - 1), yy * 255 / (height - 1), (xx + yy) * 127 / (width + height)], axis=-1)
    noise = (uniform(seed, height * width * 3).reshape(height, width, 3) - 0.5) * 40
    first = np.round(base).astype(np.uint8)
    second = np.clip(np.round(base * 0.9 + 20 + noise), 0, 255).astype(np.uint8)
    return first, second


def ssim(first, second):
    return float(
        structural_similarity(
            first,
            second,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
    )


def main():
    out = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__},
        "frechet": [],
        "kid": [],
        "inception_score": [],
        "images": [],
    }

    frechet_cases = [
        # name, (seed, rows, cols, rank, scale, offset) for x and y
        ("small", (1, 60, 8, 8, 1.0, 0.0), (11, 50, 8, 8, 1.3, 0.2)),
        ("rank_deficient", (2, 40, 64, 6, 2.0, 0.0), (12, 45, 64, 6, 2.0, 0.1)),
        ("inception_size", (3, 2100, 2048, 64, 1.0, 0.0), (13, 2100, 2048, 64, 1.1, 0.05)),
    ]
    for name, xs, ys in frechet_cases:
        x, y = features(*xs), features(*ys)
        entry = {
            "name": name,
            "x": dict(zip(["seed", "rows", "cols", "rank", "scale", "offset"], xs)),
            "y": dict(zip(["seed", "rows", "cols", "rank", "scale", "offset"], ys)),
            "fid": frechet_distance(x, y),
            "fid_self": frechet_distance(x, x),
            "trace_sqrt_sqrtm": float(np.trace(scipy.linalg.sqrtm(np.cov(x, rowvar=False) @ np.cov(y, rowvar=False)).real)),
            "trace_sqrt_eigen": trace_sqrt_eigen(x, y),
        }
        out["frechet"].append(entry)
        print(name, entry["fid"], entry["trace_sqrt_sqrtm"], entry["trace_sqrt_eigen"])

    for name, xs, ys in [
        ("different", (21, 80, 32, 8, 1.0, 0.0), (31, 70, 32, 8, 1.2, 0.1)),
        ("same_distribution", (22, 100, 16, 16, 1.0, 0.0), (32, 100, 16, 16, 1.0, 0.0)),
    ]:
        x, y = features(*xs), features(*ys)
        out["kid"].append(
            {
                "name": name,
                "x": dict(zip(["seed", "rows", "cols", "rank", "scale", "offset"], xs)),
                "y": dict(zip(["seed", "rows", "cols", "rank", "scale", "offset"], ys)),
                "mmd2_unbiased": mmd2_unbiased(x, y),
            }
        )

    for name, seed, rows, classes, scale, splits in [
        ("sharp", 41, 200, 1008, 20.0, 10),
        ("flat", 42, 103, 1000, 0.5, 4),
    ]:
        logits = (uniform(seed, rows * classes).reshape(rows, classes) - 0.5) * scale
        mean, std = inception_score(logits, splits)
        out["inception_score"].append(
            {"name": name, "seed": seed, "rows": rows, "classes": classes, "scale": scale, "splits": splits,
             "mean": mean, "std": std}
        )

    pairs = [
        ("noise_small", "random", 51, 32, 40, 8),
        ("noise_large", "random", 52, 17, 23, 90),
        ("smooth", "smooth", 53, 48, 64, 0),
    ]
    for name, kind, seed, height, width, noise in pairs:
        if kind == "random":
            first, second = image_pair(seed, height, width, noise)
        else:
            first, second = smooth_pair(seed, height, width)
        out["images"].append(
            {
                "name": name, "kind": kind, "seed": seed, "height": height, "width": width, "noise": noise,
                "first_checksum": int(first.astype(np.int64).sum()),
                "second_checksum": int(second.astype(np.int64).sum()),
                "ssim": ssim(first, second),
                "psnr": float(peak_signal_noise_ratio(first, second, data_range=255)),
            }
        )

    path = pathlib.Path(__file__).with_name("reference.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
