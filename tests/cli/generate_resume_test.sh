#!/usr/bin/env bash
# CLI test of `rankemb generate` output integrity (issue 6/7): a run killed with SIGKILL while
# writing and continued with --resume, and a run split into 3 shards joined by `chains merge`,
# must both give a file byte-identical to one uninterrupted run. Uses the offline lexical backend
# (WordNet + the converted GloVe vectors), so it needs no LLM.
# Usage: generate_resume_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
VECTORS="$CACHE/models/glove-100d"
if [ ! -f "$VECTORS/embeddings.safetensors" ] || [ ! -d /usr/share/wordnet ]; then
  echo "FAIL: $VECTORS or /usr/share/wordnet missing (bash scripts/prepare.sh installs and converts them)"; exit 1
fi
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
head -n 400 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
gen() { "$BIN" -q --threads 1 generate --backend lexical --vectors "$VECTORS" --seeds "$TMP/seeds.txt" --steps 12 --guidance 1.5 "$@"; }
# exec: the background job is the rankemb process itself, so kill -9 hits the writer, not a shell.
gen_exec() { exec "$BIN" -q --threads 1 generate --backend lexical --vectors "$VECTORS" --seeds "$TMP/seeds.txt" --steps 12 --guidance 1.5 "$@"; }

gen -o "$TMP/full.jsonl"
lines=$(wc -l < "$TMP/full.jsonl")
[ "$lines" -eq 400 ] || { echo "FAIL: expected 400 chains, got $lines"; exit 1; }

# Kill at several points while the file grows, then resume until done.
gen_exec -o "$TMP/killed.jsonl" & pid=$!
for _ in $(seq 1 2000); do
  if [ -s "$TMP/killed.jsonl" ] && [ "$(wc -c < "$TMP/killed.jsonl")" -gt 20000 ]; then break; fi
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
partial=$(wc -l < "$TMP/killed.jsonl")
echo "killed after $partial complete line(s)"
gen -o "$TMP/killed.jsonl" --resume
cmp "$TMP/full.jsonl" "$TMP/killed.jsonl" || { echo "FAIL: resumed file differs from the uninterrupted run"; exit 1; }
# Resuming a finished file changes nothing.
gen -o "$TMP/killed.jsonl" --resume
cmp "$TMP/full.jsonl" "$TMP/killed.jsonl" || { echo "FAIL: resuming a finished run changed it"; exit 1; }

for i in 0 1 2; do gen --shard "$i/3" -o "$TMP/shard$i.jsonl"; done
"$BIN" -q chains merge "$TMP/shard0.jsonl" "$TMP/shard1.jsonl" "$TMP/shard2.jsonl" -o "$TMP/merged.jsonl"
cmp "$TMP/full.jsonl" "$TMP/merged.jsonl" || { echo "FAIL: merged shards differ from one run"; exit 1; }

# Without --resume an existing output is refused (exit 2) and left untouched.
set +e; gen -o "$TMP/full.jsonl" 2>/dev/null; rc=$?; set -e
[ "$rc" -eq 2 ] || { echo "FAIL: rewriting an existing output without --resume/--overwrite gave exit $rc, want 2"; exit 1; }
cmp "$TMP/full.jsonl" "$TMP/merged.jsonl"
echo "PASS: kill+resume and 3 shards+merge both byte-identical to one run ($lines chains)"
