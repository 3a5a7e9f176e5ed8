#!/usr/bin/env bash
# Build the trainer with candle's CUDA backend on a machine that has no CUDA
# toolkit and no GPU driver, using only packages from PyPI.
#
# What it does:
#   1. Creates .venv-cuda with NVIDIA's CUDA 13 compiler wheels (nvcc, cicc,
#      ptxas, headers, CCCL, libcudart). They install into one tree,
#      .venv-cuda/lib/python3.*/site-packages/nvidia/cu13, laid out as a
#      toolkit (bin/, include/, lib/, nvvm/).
#   2. Writes link-time stubs for the libraries that candle's CUDA bindings
#      link against (libcuda, libcublas, libcublasLt, libcurand, libnvrtc)
#      into target/cuda-toolkit/lib/stubs. Each stub carries the real
#      library's soname and an empty function for every symbol the bindings
#      declare, as the stubs/ folder of a CUDA toolkit does. At run time the
#      dynamic loader finds the real libraries of the GPU machine instead.
#   3. Runs `cargo build --release -p dcgan-trainer --features cuda` into
#      target/cuda, so the CPU build in target/release is left alone.
#
# The binary it makes needs an NVIDIA driver for CUDA 13.0 or newer. It also
# needs the CUDA 13 libraries on the loader's path, for example from the
# nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc and nvidia-cuda-runtime
# wheels with LD_LIBRARY_PATH set to their lib/ folders.
#
# Environment variables:
#   CUDA_COMPUTE_CAP   GPU architecture to compile for (default 90: H100 and
#                      H200). 80 is A100, 89 is the RTX 40 series.
#   DCGAN_BASE_PYTHON  interpreter that creates .venv-cuda (default python3).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO_ROOT/.venv-cuda"
TOOLKIT="$REPO_ROOT/target/cuda-toolkit"
BASE_PYTHON="${DCGAN_BASE_PYTHON:-python3}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

# CUDA 13.0, so that the PTX loads on drivers of the 580 series (CUDA 13.0):
# PTX from a newer compiler needs a newer driver. candle's bindings (cudarc
# 0.19) know releases up to 13.4. The CUDA headers include CCCL's
# <nv/target>, which comes in its own wheel.
CUDA_WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.88
    nvidia-cuda-cccl==13.0.85
)

# Libraries the bindings link against, as "SONAME|binding source file".
STUB_LIBRARIES=(
    'libcuda.so.1|driver/sys/mod.rs'
    'libcublas.so.13|cublas/sys/mod.rs'
    'libcublasLt.so.13|cublaslt/sys/mod.rs'
    'libcurand.so.10|curand/sys/mod.rs'
    'libnvrtc.so.13|nvrtc/sys/mod.rs'
)

log() {
    printf 'build-cuda.sh: %s\n' "$*"
}

fail() {
    printf 'build-cuda.sh: error: %s\n' "$*" >&2
    exit 1
}

install_compiler() {
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating $VENV"
        "$BASE_PYTHON" -m venv "$VENV" || fail "could not create $VENV with $BASE_PYTHON (install python3-venv)"
    fi
    log "installing ${CUDA_WHEELS[*]}"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${CUDA_WHEELS[@]}" \
        || fail "pip could not install the CUDA compiler wheels from PyPI"
}

cuda_root() {
    local nvcc
    nvcc=$(find "$VENV/lib" -path '*/nvidia/cu13/bin/nvcc' -print -quit)
    [[ -n $nvcc ]] || fail "no nvcc under $VENV/lib after the install; check the pip output above"
    dirname "$(dirname "$nvcc")"
}

cudarc_source() {
    local manifest
    manifest=$(cargo metadata --format-version 1 --features dcgan-trainer/cuda --manifest-path "$REPO_ROOT/Cargo.toml" \
        | "$VENV/bin/python" -c 'import json, sys
print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"))')
    [[ -n $manifest ]] || fail "cargo metadata lists no cudarc package"
    dirname "$manifest"
}

write_stub() {
    local soname=$1 bindings=$2 stub_dir=$3
    local source="$stub_dir/${soname%%.so*}.c"

    grep -o 'pub unsafe fn [A-Za-z0-9_]*(' "$bindings" | sed 's/pub unsafe fn \(.*\)(/int \1(void) { return 999; }/' \
        | sort -u >"$source"
    [[ -s $source ]] || fail "no functions found in $bindings; the cudarc layout changed"

    cc -shared -fPIC -o "$stub_dir/$soname" -Wl,-soname,"$soname" "$source"
    ln -sf "$soname" "$stub_dir/${soname%%.so*}.so"
}

write_stubs() {
    local root=$1 cudarc=$2
    local stub_dir="$TOOLKIT/lib/stubs"
    local entry soname bindings

    rm -rf "$TOOLKIT"
    mkdir -p "$stub_dir"
    for entry in "${STUB_LIBRARIES[@]}"; do
        soname=${entry%%|*}
        bindings="$cudarc/src/${entry#*|}"
        write_stub "$soname" "$bindings" "$stub_dir"
    done

    # libcudart is real: the wheel ships it, only the unversioned name is missing.
    ln -sf "$root/lib/libcudart.so.13" "$TOOLKIT/lib/libcudart.so"
    log "wrote link stubs to $stub_dir"
}

build() {
    local root=$1
    log "building with nvcc $("$root/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') for sm_$CUDA_COMPUTE_CAP"
    PATH="$root/bin:$PATH" NVCC="$root/bin/nvcc" CUDA_ROOT="$TOOLKIT" \
        cargo build --release -p dcgan-trainer --features cuda --target-dir "$REPO_ROOT/target/cuda"
    log "built $REPO_ROOT/target/cuda/release/dcgan"
}

main() {
    local root cudarc
    install_compiler
    root=$(cuda_root)
    cudarc=$(cudarc_source)
    write_stubs "$root" "$cudarc"
    build "$root"
}

main "$@"
