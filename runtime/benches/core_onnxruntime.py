"""Time onnxruntime on one thread on the generator ONNX that the core bench
keeps with `--onnx PATH`, batch 1, as runtime/benches/core.rs times the core.

Usage: python core_onnxruntime.py MODEL.onnx [RUNS]

With DCGAN_BENCH_CLOCK=thread-cpu it measures the CPU time of the process
(all its threads) instead of wall time, as the core bench does with that
setting, so runs on a machine shared with other work compare better.
"""

import os
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

    clock_name = os.environ.get("DCGAN_BENCH_CLOCK", "wall")
    clocks = {"wall": time.perf_counter, "thread-cpu": time.process_time}
    if clock_name not in clocks:
        sys.exit(f"DCGAN_BENCH_CLOCK must be `wall` or `thread-cpu`, not {clock_name!r}")
    clock = clocks[clock_name]

    for _ in range(10):
        session.run(None, {feed.name: latent})
    times = []
    for _ in range(runs):
        start = clock()
        session.run(None, {feed.name: latent})
        times.append(clock() - start)

    times.sort()
    pick = lambda fraction: times[round((len(times) - 1) * fraction)] * 1e3
    print(f"| onnxruntime {ort.__version__} ({clock_name}) | {pick(0.5):.3f} ms | {pick(0.1):.3f} ms | {pick(0.9):.3f} ms |")


if __name__ == "__main__":
    main()
