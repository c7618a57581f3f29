#!/usr/bin/env bash
# The README's main command: set-up from nothing (scripts/prepare.sh: packages, assets, build),
# then the main job, `rankemb demo` on the embedded default (offline chains from SNLI seeds,
# refine all-MiniLM-L6-v2, STS before/after) into runs/demo. SKIP_DEMO=1 stops after set-up.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/prepare.sh"
if [ "${SKIP_DEMO:-0}" != "1" ]; then
  cd "$REPO"
  "${BUILD_DIR:-$REPO/build}/bin/rankemb" demo -o "${DEMO_DIR:-runs/demo}"
fi
