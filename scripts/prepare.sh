#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before rankemb runs: Debian packages, pinned model
# assets, the build, converted assets. Shared by setup.sh (then runs the demo) and test.sh (then
# runs the tests).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/install-deps.sh"
bash "$REPO/scripts/fetch-assets.sh"
bash "$REPO/scripts/build.sh"
bash "$REPO/scripts/convert-assets.sh"
