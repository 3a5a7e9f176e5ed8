#!/usr/bin/env bash
# Set up this machine and run the whole test suite. CI runs this script through
# .ci/run on a fresh clone, so every set-up step the tests need lives here.
#
# Stages: check the tools, install missing Debian packages (as root, with
# apt-get), create or refresh the Python environment in .venv, check the test
# images, then build and test the workspace. Each stage prints its duration.
#
# Environment variables:
#   CI=true              plain output and settings for a one-off build.
#   DCGAN_SKIP_CARGO=1   stop after the set-up stages (no build, no tests).
#   DCGAN_SKIP_DOCS=1    skip the `cargo doc` stage, which warns on broken
#                        doc links but checks every dependency once more.
#   DCGAN_BASE_PYTHON    interpreter that creates .venv (default: python3).
#
# The Raspberry Pi builds for glibc targets link with zig through
# cargo-zigbuild (both pinned in scripts/requirements.txt, so they live in
# .venv), which links against the glibc version named in the target.
#
# Exported for the tests:
#   DCGAN_PYTHON         the .venv interpreter, with numpy, onnx and onnxruntime.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUIREMENTS="$REPO_ROOT/scripts/requirements.txt"
VENV="$REPO_ROOT/.venv"
VENV_STAMP="$VENV/.requirements.sha256"
DATA_DIR="$(cd "$REPO_ROOT/.." && pwd)/shared/data"
BASE_PYTHON="${DCGAN_BASE_PYTHON:-python3}"
MIN_PYTHON="3.11"

# Debian packages the set-up or the tests need, as "PACKAGE|CHECK": CHECK is a
# shell command that succeeds when what the tests use from PACKAGE is present.
# Only missing ones are installed. Keep this list to what is used today.
# The checks are single-quoted because install_debian_packages evaluates them.
# shellcheck disable=SC2016
DEBIAN_REQUIREMENTS=(
    'python3|command -v "$BASE_PYTHON"'
    'python3-venv|"$BASE_PYTHON" -c "import ensurepip, venv"'
    # The aarch64 (Raspberry Pi) stages: the musl build's linker, the C
    # library that qemu-aarch64 loads the glibc build with, the emulators.
    'gcc-aarch64-linux-gnu|command -v aarch64-linux-gnu-gcc'
    'libc6-dev-arm64-cross|test -e /usr/aarch64-linux-gnu/lib/libc.so.6'
    'qemu-user|command -v qemu-aarch64 && command -v qemu-arm'
    # The armv7 stages: the C library that qemu-arm loads the binary with.
    'libc6-armhf-cross|test -e /usr/arm-linux-gnueabihf/lib/libc.so.6'
    # readelf lists the glibc versions a binary of any architecture needs.
    'binutils|command -v readelf'
)

# Rust targets of the cross-compilation stages.
RUST_TARGETS=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf thumbv7em-none-eabihf)
AARCH64=aarch64-unknown-linux-gnu
ARMV7=armv7-unknown-linux-gnueabihf
# Raspberry Pi OS Bullseye ships glibc 2.31; a binary that needs a newer
# symbol version does not start there. cargo-zigbuild links the glibc targets
# against this version when the target name ends in it.
MAX_GLIBC=2.31

STAGE_TIMES=()
CURRENT_STAGE=""
STAGE_START_MICROSECONDS=0

log() {
    printf 'test.sh: %s\n' "$*"
}

fail() {
    printf 'test.sh: error: %s\n' "$*" >&2
    exit 1
}

now_microseconds() {
    local now=${EPOCHREALTIME/[.,]/}
    echo "$now"
}

format_seconds() {
    local microseconds=$1
    printf '%d.%01d s' $((microseconds / 1000000)) $((microseconds % 1000000 / 100000))
}

report_exit() {
    local status=$?
    if [[ $status -ne 0 && -n $CURRENT_STAGE ]]; then
        local elapsed=$(($(now_microseconds) - STAGE_START_MICROSECONDS))
        printf 'test.sh: stage "%s" failed with exit status %d after %s\n' \
            "$CURRENT_STAGE" "$status" "$(format_seconds "$elapsed")" >&2
    fi
}
trap report_exit EXIT

# Run one stage: a shell function and its arguments, timed.
run_stage() {
    local name=$1
    shift

    CURRENT_STAGE=$name
    STAGE_START_MICROSECONDS=$(now_microseconds)
    printf '\n==> %s\n' "$name"

    "$@"

    local elapsed
    elapsed=$(format_seconds $(($(now_microseconds) - STAGE_START_MICROSECONDS)))
    STAGE_TIMES+=("$(printf '%-32s %s' "$name" "$elapsed")")
    printf '<== %s: done in %s\n' "$name" "$elapsed"
    CURRENT_STAGE=""
}

print_stage_times() {
    printf '\nStage times:\n'
    printf '  %s\n' "${STAGE_TIMES[@]}"
}

# --- set-up stages ---------------------------------------------------------

check_tools() {
    command -v cargo >/dev/null \
        || fail "cargo not found on PATH: install the Rust toolchain with rustup (https://rustup.rs), then rerun"
    command -v rustc >/dev/null \
        || fail "rustc not found on PATH: install the Rust toolchain with rustup (https://rustup.rs), then rerun"

    if [[ -n ${DCGAN_BASE_PYTHON:-} ]] && ! command -v "$DCGAN_BASE_PYTHON" >/dev/null; then
        fail "DCGAN_BASE_PYTHON=$DCGAN_BASE_PYTHON is not an executable: point it at a Python $MIN_PYTHON interpreter or unset it"
    fi

    cargo --version
    rustc --version
    if command -v rustup >/dev/null; then
        rustup --version 2>/dev/null
        rustup show active-toolchain
    else
        log "rustup not found: using the toolchain on PATH as it is"
    fi
}

install_debian_packages() {
    local missing=()
    local entry package check
    for entry in "${DEBIAN_REQUIREMENTS[@]}"; do
        package=${entry%%|*}
        check=${entry#*|}
        if ! (eval "$check") >/dev/null 2>&1; then
            missing+=("$package")
        fi
    done

    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all needed Debian packages are present"
        return
    fi

    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        fail "missing packages: ${missing[*]}. Install them (on Debian: apt-get install ${missing[*]}) and rerun"
    fi

    log "installing missing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

    for entry in "${DEBIAN_REQUIREMENTS[@]}"; do
        package=${entry%%|*}
        check=${entry#*|}
        (eval "$check") >/dev/null 2>&1 \
            || fail "Debian package $package is installed but the check '$check' still fails"
    done
}

install_rust_targets() {
    local target missing=()
    for target in "${RUST_TARGETS[@]}"; do
        if [[ ! -d $(rustc --print sysroot)/lib/rustlib/$target ]]; then
            missing+=("$target")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "Rust targets present: ${RUST_TARGETS[*]}"
        return
    fi
    command -v rustup >/dev/null \
        || fail "missing Rust targets ${missing[*]} and no rustup to add them: install them for $(rustc --version), then rerun"
    rustup target add "${missing[@]}"
}

check_python_version() {
    local version
    version=$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if ! "$BASE_PYTHON" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))"; then
        fail "$BASE_PYTHON is Python $version, but the pinned packages in scripts/requirements.txt need Python $MIN_PYTHON or newer: set DCGAN_BASE_PYTHON to a newer interpreter"
    fi
    log "$("$BASE_PYTHON" --version) at $(command -v "$BASE_PYTHON")"
}

# The stamp changes with the requirements and with the base interpreter, so a
# rerun with neither changed skips pip entirely.
requirements_stamp() {
    {
        cat "$REQUIREMENTS"
        "$BASE_PYTHON" -c 'import sys; print(sys.version); print(sys.base_prefix)'
    } | sha256sum | cut -d' ' -f1
}

setup_python_env() {
    check_python_version

    local stamp
    stamp=$(requirements_stamp)
    if [[ -x $VENV/bin/python && -f $VENV_STAMP && $(cat "$VENV_STAMP") == "$stamp" ]]; then
        log ".venv is up to date with scripts/requirements.txt"
    else
        log "creating .venv from scripts/requirements.txt"
        rm -f "$VENV_STAMP"
        "$BASE_PYTHON" -m venv --clear "$VENV"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
            --progress-bar off --quiet --requirement "$REQUIREMENTS" \
            || fail "pip could not install scripts/requirements.txt into .venv (see pip's output above)"
        echo "$stamp" >"$VENV_STAMP"
    fi

    "$VENV/bin/python" -c 'import numpy, onnx, onnxruntime
print(f"numpy {numpy.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}")' \
        || fail ".venv cannot import numpy, onnx and onnxruntime: delete .venv and rerun"

    local zig_version zigbuild_version
    zig_version=$("$VENV/bin/python" -m ziglang version) \
        || fail ".venv has no working zig (package ziglang): delete .venv and rerun"
    zigbuild_version=$("$VENV/bin/cargo-zigbuild" --version) \
        || fail ".venv has no working cargo-zigbuild: delete .venv and rerun"
    log "zig $zig_version, $zigbuild_version"
}

check_test_data() {
    local faces="$DATA_DIR/faces"
    local awkward="$DATA_DIR/awkward-images"

    [[ -d $faces ]] || fail "test images not found: $faces must be a directory of JPEG faces"
    [[ -d $awkward ]] || fail "test images not found: $awkward must be a directory of unusual images"

    local count
    count=$(find "$faces" -maxdepth 1 -type f -iname '*.jp*g' | wc -l)
    [[ $count -gt 0 ]] || fail "no JPEG files found in $faces"
    log "$count face images in $(cd "$faces" && pwd)"
    log "$(find "$awkward" -type f | wc -l) files in $(cd "$awkward" && pwd)"
}

# --- cargo stages ----------------------------------------------------------

build_runtime_no_std() {
    # The runtime's core is no_std + alloc, and this build catches std items
    # that the crate uses without its `std` feature.
    # NOTE: a host build cannot catch a dependency that needs std. That needs a
    # build for a target without std, such as thumbv7em-none-eabihf.
    cargo build "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features
}

run_workspace_tests() {
    cargo test "${CARGO_LOCKED[@]}" --workspace --all-targets
}

run_doc_tests() {
    cargo test "${CARGO_LOCKED[@]}" --workspace --doc
}

check_docs() {
    RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc "${CARGO_LOCKED[@]}" --workspace --no-deps
}

# --- cross-compilation stages ----------------------------------------------
#
# CI cannot run containers, so instead of `cross` these stages link the glibc
# targets with zig (cargo-zigbuild, against glibc 2.31), the static musl
# target with the Debian cross linker, and run the binaries under qemu's
# user-mode emulator. Only the core-only binary (`--no-default-features
# --features std`) is built for the boards: tract's aarch64 build would take
# longer than all the checks together.

# cargo-zigbuild and the zig it runs (`python -m ziglang`) come from .venv.
zig_env() {
    export PATH="$VENV/bin:$PATH"
}

# The Debian cross linker for the musl build and the optional test stage.
# cargo-zigbuild sets the linker of the glibc build itself.
aarch64_env() {
    # Rust's musl targets bring their own C library, so the glibc cross
    # compiler links them statically.
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
}

# The int8 weight file and the host's PNGs that the board binaries must match.
CROSS_DIR="$REPO_ROOT/target/cross-check"

build_aarch64_core() {
    aarch64_env
    zig_env
    cargo zigbuild "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features --features std \
        --bin dcgan-edge --target "$AARCH64.$MAX_GLIBC"
    cargo build "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features --features std \
        --bin dcgan-edge --target aarch64-unknown-linux-musl
    cargo build "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features --features std --bin dcgan-edge
}

build_armv7_core() {
    zig_env
    cargo zigbuild "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features --features std \
        --bin dcgan-edge --target "$ARMV7.$MAX_GLIBC"
}

# Runs the runtime's unit tests for aarch64 under qemu-aarch64, with the
# same features as the board build. `--cfg dcgan_unit_tests_only` leaves out
# the dev-dependencies that only the integration tests use (see
# runtime/Cargo.toml), so tract and candle are not compiled for aarch64.
run_aarch64_core_tests() {
    aarch64_env
    # NOTE: this links with the Debian cross compiler (glibc 2.36), not zig;
    # qemu finds that glibc under /usr/aarch64-linux-gnu.
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="--cfg dcgan_unit_tests_only" \
        cargo test "${CARGO_LOCKED[@]}" -p dcgan-runtime --no-default-features --features std --lib \
        --target "$AARCH64"
}

# Generates the same faces with the host's and one board's core-only binary
# and fails unless every PNG is byte-identical. Arguments: the Rust target and
# the qemu command line that runs its binary.
compare_board_png() {
    local target=$1
    shift
    local name=${target%%-*}
    local host="target/debug/dcgan-edge" board="target/$target/debug/dcgan-edge"

    rm -rf "${CROSS_DIR:?}/x86_64" "${CROSS_DIR:?}/$name"
    # The output is captured first: `grep -q` stops reading at the first
    # match, which would end the writer with SIGPIPE and fail the pipeline.
    local info
    info=$("$host" info --model "$CROSS_DIR/check.dcgw")
    grep -q "core_precision = int8 weights and activations" <<<"$info" \
        || fail "$CROSS_DIR/check.dcgw does not run on the core's integer path, so this check would not cover it"
    "$host" generate --model "$CROSS_DIR/check.dcgw" --count 4 --seed 3 --out "$CROSS_DIR/x86_64" \
        --grid "$CROSS_DIR/x86_64.png"
    "$@" "$board" generate --model "$CROSS_DIR/check.dcgw" --count 4 --seed 3 \
        --out "$CROSS_DIR/$name" --grid "$CROSS_DIR/$name.png"

    cmp "$CROSS_DIR/x86_64.png" "$CROSS_DIR/$name.png" \
        || fail "the $name dcgan-edge wrote a different grid PNG than the x86_64 one for the same int8 weight file"
    local face
    for face in "$CROSS_DIR"/x86_64/*.png; do
        cmp "$face" "$CROSS_DIR/$name/$(basename "$face")" \
            || fail "$name and x86_64 differ on $(basename "$face")"
    done
    log "$name (qemu) and x86_64 wrote byte-identical PNGs"
}

compare_aarch64_png() {
    compare_board_png "$AARCH64" qemu-aarch64 -L /usr/aarch64-linux-gnu
}

compare_armv7_png() {
    compare_board_png "$ARMV7" qemu-arm -L /usr/arm-linux-gnueabihf
}

# Prints the newest GLIBC_ version that a binary needs: the highest entry of
# its version needs (.gnu.version_r), which the dynamic loader checks at start.
newest_glibc_needed() {
    local binary=$1
    readelf --version-info --wide "$binary" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' \
        | sort -V -u | tail -n 1
}

# Fails when a board binary needs a glibc newer than Raspberry Pi OS
# Bullseye's, and when the musl build is not static.
check_board_glibc() {
    local target binary newest
    for target in "$AARCH64" "$ARMV7"; do
        binary="target/$target/debug/dcgan-edge"
        newest=$(newest_glibc_needed "$binary")
        [[ -n $newest ]] || fail "readelf found no glibc symbol versions in $binary"
        if [[ $(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -n 1) != "$MAX_GLIBC" ]]; then
            readelf --dyn-syms --wide "$binary" | grep "GLIBC_$newest" >&2 || true
            fail "$binary needs GLIBC_$newest, newer than $MAX_GLIBC (Raspberry Pi OS Bullseye): link it with cargo zigbuild --target $target.$MAX_GLIBC"
        fi
        log "newest glibc symbol version in $binary: $newest (at most $MAX_GLIBC)"
    done

    local musl="target/aarch64-unknown-linux-musl/debug/dcgan-edge"
    local dynamic
    dynamic=$(readelf --dynamic "$musl")
    if grep -q 'NEEDED' <<<"$dynamic"; then
        fail "$musl links shared libraries, but a musl build must be static: $(readelf --dynamic "$musl" | grep NEEDED)"
    fi
    log "$musl is statically linked (no shared libraries, no glibc)"
}

# Builds the no_std check crate; its build script writes the small int8
# weight file that the aarch64 comparison generates from.
build_thumbv7em_check() {
    local messages out_dir
    messages=$(cargo build "${CARGO_LOCKED[@]}" --manifest-path cross/thumbv7em-check/Cargo.toml \
        --target thumbv7em-none-eabihf --target-dir target/thumbv7em-check --message-format=json-render-diagnostics)
    out_dir=$(grep '"reason":"build-script-executed"' <<<"$messages" | grep '"package_id":"[^"]*thumbv7em-check' \
        | grep -o '"out_dir":"[^"]*"' | cut -d'"' -f4 | tail -n 1)
    [[ -f $out_dir/check.dcgw ]] || fail "the thumbv7em check crate's build script wrote no check.dcgw (out_dir: '$out_dir')"
    mkdir -p "$CROSS_DIR"
    cp "$out_dir/check.dcgw" "$CROSS_DIR/check.dcgw"
    log "built cross/thumbv7em-check for thumbv7em-none-eabihf; weight file $CROSS_DIR/check.dcgw"
}

# --- main ------------------------------------------------------------------

main() {
    if [[ $# -gt 0 ]]; then
        echo "usage: scripts/test.sh (no arguments; see the header of this script for the environment variables)" >&2
        exit 2
    fi
    cd "$REPO_ROOT"

    CARGO_LOCKED=()
    if [[ ${CI:-} == true ]]; then
        export CARGO_TERM_COLOR=never
        # A fresh clone builds once, so incremental compilation only costs time.
        export CARGO_INCREMENTAL=0
        # CI must test the committed Cargo.lock, not one it resolves anew.
        CARGO_LOCKED=(--locked)
    fi
    export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

    run_stage "tools" check_tools
    run_stage "Debian packages" install_debian_packages
    run_stage "Rust targets" install_rust_targets
    run_stage "Python environment (.venv)" setup_python_env
    run_stage "test images" check_test_data
    export DCGAN_PYTHON="$VENV/bin/python"

    if [[ ${DCGAN_SKIP_CARGO:-} == 1 ]]; then
        log "DCGAN_SKIP_CARGO=1: skipping the build and the tests"
    else
        run_stage "no_std runtime build" build_runtime_no_std
        run_stage "thumbv7em-none-eabihf core build" build_thumbv7em_check
        run_stage "aarch64 core-only builds (gnu, musl)" build_aarch64_core
        run_stage "armv7 core-only build (gnu)" build_armv7_core
        run_stage "glibc symbol versions <= $MAX_GLIBC" check_board_glibc
        run_stage "aarch64 PNG matches x86_64 (qemu)" compare_aarch64_png
        run_stage "armv7 PNG matches x86_64 (qemu)" compare_armv7_png
        run_stage "aarch64 runtime tests (qemu)" run_aarch64_core_tests
        run_stage "cargo test (all targets)" run_workspace_tests
        run_stage "cargo test (doc tests)" run_doc_tests
        if [[ ${DCGAN_SKIP_DOCS:-} == 1 ]]; then
            log "DCGAN_SKIP_DOCS=1: skipping cargo doc"
        else
            run_stage "cargo doc" check_docs
        fi
    fi

    print_stage_times
}

main "$@"
