#!/usr/bin/env bash
# Installs every Debian package rankemb needs to build, test and benchmark.
# Idempotent; safe to re-run. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libtorch-dev libopenblas0-openmp libgloo-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libutf8proc-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-pip python3-venv python3-numpy
  nodejs
  wordnet-base
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[install-deps] all Debian packages present" >&2
fi
