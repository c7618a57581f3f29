#!/usr/bin/env bash
# CLI test of `rankemb demo` at toy size: every stage runs, writes what it promises, and a second
# invocation resumes (reuses the chains and the finished training) instead of redoing work.
# Checks the numbers it can: chain count, the base STS-B score of all-MiniLM-L6-v2 on SentEval
# text (82.0 +- 1.5, the full-size number is in the README), a refined model that loads.
# Usage: demo_smoke_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
if [ ! -f "$CACHE/models/glove-100d/embeddings.safetensors" ] || [ ! -f "$CACHE/assets/all-MiniLM-L6-v2/model.safetensors" ]; then
  echo "FAIL: all-MiniLM-L6-v2 or GloVe missing under $CACHE (bash scripts/prepare.sh fetches and converts them)"; exit 1
fi
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
export RANKEMB_DATA_DIR="$DATA" RANKEMB_CACHE_DIR="$CACHE"
run() { "$BIN" --threads 2 demo -o "$TMP/demo" --chains 8 --steps 6 --max-steps 8 --eval-steps 4 --judge-chains 8 --tasks stsb "$@"; }
run > "$TMP/out1.txt" 2> "$TMP/err1.txt"
for f in chains.jsonl chain_stats.json train/best/config.json train/best/model.safetensors train/metrics.jsonl train/curve.svg results.json report.html; do
  [ -s "$TMP/demo/$f" ] || { echo "FAIL: $f missing"; cat "$TMP/err1.txt"; exit 1; }
done
[ "$(wc -l < "$TMP/demo/chains.jsonl")" -eq 8 ] || { echo "FAIL: want 8 chains"; exit 1; }
grep -q "STS-B" "$TMP/out1.txt" || { echo "FAIL: no STS-B row in the comparison"; cat "$TMP/out1.txt"; exit 1; }
base=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["base"]["sts"]["tasks"][0]["spearman"]*100)' "$TMP/demo/results.json")
python3 -c 'import sys; b=float(sys.argv[1]); sys.exit(0 if abs(b-82.0)<1.5 else 1)' "$base" || { echo "FAIL: base STS-B $base"; exit 1; }
# Second run: nothing regenerated, nothing retrained.
run > "$TMP/out2.txt" 2> "$TMP/err2.txt"
grep -q "resuming" "$TMP/err2.txt" && grep -q "finished earlier" "$TMP/err2.txt" || { echo "FAIL: second run did not resume"; cat "$TMP/err2.txt"; exit 1; }
echo "PASS: demo stages ran, base STS-B $base, second run resumed"
