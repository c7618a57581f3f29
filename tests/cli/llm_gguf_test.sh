#!/usr/bin/env bash
# CLI test of the embedded LLM (issue 13): `rankemb generate` with no -m runs SmolLM2-135M-Instruct
# from its GGUF with the small-model loop, writes chains that drift (not copies of the seed), with
# the copy guard's retries recorded; a run cut mid-file and resumed ends byte-identical (the
# retries' sampling is seeded per chain, step and attempt), and `rankemb info` describes the file.
# Usage: llm_gguf_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
GGUF="$CACHE/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$GGUF" ] || { echo "FAIL: $GGUF missing (bash scripts/fetch-assets.sh fetches it)"; exit 1; }
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
export RANKEMB_CACHE_DIR="$CACHE"
head -n 4 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
gen() { "$BIN" -q --threads 2 generate --seeds "$TMP/seeds.txt" --steps 4 --dtype bfloat16 "$@"; }

gen -o "$TMP/full.jsonl"
python3 - "$TMP/full.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, len(rows)
assert all(r["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and r["guidance"] == 2.0 for r in rows), rows[0]
kept = [r for r in rows if r["kept"]]
assert len(kept) >= 2, [r["drop_reason"] for r in rows]
for r in kept:
    assert len(r["sentences"]) == 4 and r["sentences"][0].lower() != r["seed"].lower(), r
for r in rows:
    for t in r.get("retries", []):
        assert t["reason"] in ("copy", "newline", "empty", "token_limit") and 1 <= t["step"] <= 4, t
print("ok:", len(kept), "of 4 kept,", sum(len(r.get("retries", [])) for r in rows), "retries")
PY
# Cut the file inside its third line and resume: the same bytes as the uninterrupted run.
head -c "$(( $(head -n 2 "$TMP/full.jsonl" | wc -c) + 40 ))" "$TMP/full.jsonl" > "$TMP/cut.jsonl"
cp "$TMP/full.jsonl.meta.json" "$TMP/cut.jsonl.meta.json"
gen -o "$TMP/cut.jsonl" --resume
cmp "$TMP/full.jsonl" "$TMP/cut.jsonl" || { echo "FAIL: the resumed run differs from the uninterrupted one"; exit 1; }
"$BIN" info "$GGUF" > "$TMP/info.json"
grep -q '"model_type": "llama"' "$TMP/info.json" || { echo "FAIL: info did not describe the GGUF"; exit 1; }
echo "PASS: embedded SmolLM2 chains, resume byte-identical, info"
