"""Time onnxruntime on one thread on the generator ONNX that the core bench
keeps with `--onnx PATH`, batch 1, as runtime/benches/core.rs times the core.

Usage: python core_onnxruntime.py MODEL.onnx [RUNS]
"""

import sys
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    model = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    nz = feed.shape[1]
    latent = np.random.default_rng(1).standard_normal((1, nz, 1, 1)).astype(np.float32)

    for _ in range(10):
        session.run(None, {feed.name: latent})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {feed.name: latent})
        times.append(time.perf_counter() - start)

    times.sort()
    pick = lambda fraction: times[round((len(times) - 1) * fraction)] * 1e3
    print(f"| onnxruntime {ort.__version__} | {pick(0.5):.3f} ms | {pick(0.1):.3f} ms | {pick(0.9):.3f} ms |")


if __name__ == "__main__":
    main()
