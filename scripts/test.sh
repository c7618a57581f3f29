#!/usr/bin/env bash
# The whole test suite from nothing: set-up (scripts/prepare.sh: packages, assets, build), every
# GoogleTest and CLI test through ctest, then the standing defence against hostile input
# (scripts/defence.sh: sanitizer build + tests, a fixed fuzz budget per parser). Data comes from
# $RANKEMB_DATA_DIR (default ../shared/data next to the repo).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/prepare.sh"
(cd "${BUILD_DIR:-$REPO/build}" && ctest --output-on-failure -j "$(nproc)" --timeout 900)
bash "$REPO/scripts/defence.sh"
