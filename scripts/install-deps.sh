#!/usr/bin/env bash
# Installs every Debian package rankemb needs to build, test and benchmark.
# Idempotent; safe to re-run. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libtorch-dev libopenblas0-openmp libgloo-dev libdnnl-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libutf8proc-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfaiss-dev libcpp-httplib-dev
  clang libclang-rt-14-dev libomp-14-dev
  python3 python3-pip python3-venv python3-numpy
  nodejs
  wordnet-base
  chromium fonts-dejavu-core
)
# chromium: tests/cli/report_test.sh renders the HTML report in a real browser (headless) and checks its DOM.
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

# The real HTTP clients tests/cli/serve_test.sh drives `rankemb serve` with (OpenAI's official
# Python package, pinned), in a venv of their own under the cache: the product needs no Python.
CLIENTS="${RANKEMB_CACHE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache}/venv-clients"
OPENAI_VERSION=3.57.0
if ! "$CLIENTS/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  echo "[install-deps] openai==$OPENAI_VERSION client venv in $CLIENTS" >&2
  python3 -m venv "$CLIENTS"
  "$CLIENTS/bin/pip" install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
fi
