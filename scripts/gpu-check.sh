#!/usr/bin/env bash
# Check the CUDA trainer on a GPU machine in one run: time the training step
# beside PyTorch on the same GPU, train a few hundred iterations on real
# images, and check that the samples are not a flat grey.
#
# Usage: scripts/gpu-check.sh DATA_DIR OUT_DIR [ITERATIONS]
#
#   DATA_DIR    folder of training images, for example ../shared/data/faces
#   OUT_DIR     where the run, the benchmark table and the final grid go
#   ITERATIONS  training iterations at batch 128 (default 300)
#
# Needs the binary that scripts/build-cuda.sh writes (target/cuda/release/dcgan,
# or DCGAN_BIN), an NVIDIA driver for CUDA 13.0 or newer, and the CUDA 13
# libraries: from the system, or from the nvidia-* wheels of the python3 that
# has torch, whose lib/ folders are put on LD_LIBRARY_PATH here.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DCGAN_BIN="${DCGAN_BIN:-$REPO_ROOT/target/cuda/release/dcgan}"
PYTHON="${PYTHON:-python3}"

fail() {
    printf 'gpu-check.sh: error: %s\n' "$*" >&2
    exit 1
}

[[ $# -ge 2 ]] || fail "usage: scripts/gpu-check.sh DATA_DIR OUT_DIR [ITERATIONS]"
DATA_DIR=$1
OUT_DIR=$2
ITERATIONS=${3:-300}
[[ -d $DATA_DIR ]] || fail "no image folder at $DATA_DIR"
[[ -x $DCGAN_BIN ]] || fail "no CUDA build at $DCGAN_BIN: run scripts/build-cuda.sh first"
mkdir -p "$OUT_DIR"

# The CUDA libraries of the nvidia-* wheels, where the Python with torch has them.
wheel_libs=$("$PYTHON" -c 'import glob, os, nvidia
print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/**/lib*.so*", recursive=True)})))' \
    2>/dev/null || true)
export LD_LIBRARY_PATH="${wheel_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi -L || fail "nvidia-smi found no GPU"

echo "== training step, candle on cuda:0 beside PyTorch on the same GPU"
"$DCGAN_BIN" bench-train --device cuda:0 --python "$PYTHON" --models 64:64,16:16 --batches 32,128 \
    --warmup 3 --iterations 10 | tee "$OUT_DIR/bench-train.txt"

echo "== $ITERATIONS training iterations on $DATA_DIR"
started=$(date +%s)
"$DCGAN_BIN" train --data "$DATA_DIR" --out "$OUT_DIR/run" --device cuda:0 --batch-size 128 \
    --epochs 1000 --stop-after "$ITERATIONS" --sample-every 100 --checkpoint-every 0 | tee "$OUT_DIR/train.txt"
echo "trained $ITERATIONS iterations in $(($(date +%s) - started)) s (image decoding included)"

echo "== samples"
grid=$(find "$OUT_DIR/run/samples" -name '*.png' | sort | tail -n 1)
[[ -n $grid ]] || fail "the run wrote no sample grid"
cp "$grid" "$OUT_DIR/final-grid.png"
"$PYTHON" - "$grid" <<'PYTHON'
import sys

import numpy as np
from PIL import Image

pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float64)
spread = pixels.std()
print(f"{sys.argv[1]}: pixel standard deviation {spread:.1f} (a flat grey grid is below 10)")
sys.exit(0 if spread >= 10 else 1)
PYTHON
