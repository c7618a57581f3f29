#!/usr/bin/env bash
# Configures and builds rankemb (CLI, library, tests, benchmarks) in ./build (BUILD_DIR overrides).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build}"
JOBS="${JOBS:-$(nproc)}"
cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
ninja -C "$BUILD_DIR" -j "$JOBS"
echo "[build] rankemb built: $BUILD_DIR/bin/rankemb" >&2
