#!/usr/bin/env bash
# Builds rankemb against an upstream libtorch (the one inside a pip-installed `torch`, e.g. a
# CUDA 2.x wheel) instead of Debian's libtorch 1.13, then runs the test suite with it.
#   PYTHON=python3 bash scripts/check-upstream-libtorch.sh [BUILD_DIR] [LOG_DIR]
# Environment:
#   PYTHON     interpreter whose torch provides headers + CMake files (default python3)
#   DEPS_ROOT  optional: a folder holding the other build dependencies unpacked as a filesystem
#              tree (usr/include, usr/lib/x86_64-linux-gnu, ...), for machines where they cannot
#              be installed; pkg-config then resolves inside it (PKG_CONFIG_SYSROOT_DIR).
#   RANKEMB_DATA_DIR, RANKEMB_CACHE_DIR  where the tests find ../shared/data and .cache.
# The wheel's C++ ABI must match the other libraries': torch >= 2.7 wheels use the C++11 ABI like
# Debian; older wheels (pre-C++11 ABI) compile but cannot link against Debian's libfmt.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${1:-$REPO/build-upstream-torch}"
LOG_DIR="${2:-$BUILD_DIR}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$BUILD_DIR" "$LOG_DIR"

torch_prefix="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')" || {
  echo "error: $PYTHON cannot import torch" >&2; exit 2; }
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI, "gpu", torch.cuda.is_available())' | tee "$LOG_DIR/versions.txt"
(c++ --version | head -1; cmake --version | head -1) | tee -a "$LOG_DIR/versions.txt"

prefix_path="$torch_prefix"
cmake_args=()
if [ -n "${DEPS_ROOT:-}" ]; then
  DEPS_ROOT="$(cd "$DEPS_ROOT" && pwd)"
  libdir="$DEPS_ROOT/usr/lib/x86_64-linux-gnu"
  prefix_path="$DEPS_ROOT/usr;$prefix_path"
  export PKG_CONFIG_SYSROOT_DIR="$DEPS_ROOT"
  export PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$DEPS_ROOT/usr/share/pkgconfig"
  export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! command -v pkg-config >/dev/null && [ -x "$DEPS_ROOT/usr/bin/pkgconf" ]; then
    cmake_args+=(-DPKG_CONFIG_EXECUTABLE="$DEPS_ROOT/usr/bin/pkgconf")
  fi
fi
if [ -d /usr/local/cuda ] && ! command -v nvcc >/dev/null; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
[ -n "${RANKEMB_DATA_DIR:-}" ] && cmake_args+=(-DRANKEMB_TEST_DATA_DIR="$RANKEMB_DATA_DIR")
[ -n "${RANKEMB_CACHE_DIR:-}" ] && cmake_args+=(-DRANKEMB_TEST_CACHE_DIR="$RANKEMB_CACHE_DIR")

echo "[upstream-torch] configure" >&2
# No --int8 there: a torch wheel's include directory carries its own oneDNN 3.x headers, which
# would shadow Debian's 2.x ones that the library links (int8_linear.cpp refuses the mix anyway).
cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix_path" -DRANKEMB_BUILD_BENCH=OFF -DRANKEMB_WITH_ONEDNN=OFF "${cmake_args[@]}" \
  > "$LOG_DIR/configure.log" 2>&1 || { tail -40 "$LOG_DIR/configure.log"; exit 1; }

echo "[upstream-torch] build" >&2
start=$(date +%s)
ninja -C "$BUILD_DIR" -k 0 > "$LOG_DIR/build.log" 2>&1
build_rc=$?
echo "build rc $build_rc in $(( $(date +%s) - start )) s" | tee -a "$LOG_DIR/versions.txt"
grep -E "error|FAILED" "$LOG_DIR/build.log" | head -60
[ $build_rc -eq 0 ] || exit 1

echo "[upstream-torch] test" >&2
start=$(date +%s)
(cd "$BUILD_DIR" && OMP_NUM_THREADS=1 ctest -j "$(nproc)" --timeout 600 --output-on-failure) > "$LOG_DIR/ctest.log" 2>&1
test_rc=$?
echo "ctest rc $test_rc in $(( $(date +%s) - start )) s" | tee -a "$LOG_DIR/versions.txt"
grep -E "tests passed|\(Failed\)|\(Timeout\)|\(SEGFAULT\)|\(Subprocess" "$LOG_DIR/ctest.log" | head -80
exit $test_rc
