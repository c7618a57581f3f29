#!/usr/bin/env bash
# CLI test of the embedded LLM (issue 13): `rankemb generate` with no -m runs SmolLM2-135M-Instruct
# from its GGUF with the small-model loop, writes chains that drift (not copies of the seed), with
# the copy and drift guards' retries recorded (the drift guard with the embedded teacher); a run cut
# mid-file and resumed ends byte-identical in float32 (the retries' sampling is seeded per chain,
# step and attempt; the guard embeds each text alone), and in bfloat16 keeps every
# record once (its chains after the cut may differ: on a CPU with AMX, oneDNN's bfloat16 products
# round differently for different batch sizes, and the resumed run decodes fewer chains at once);
# bad drift-guard settings are refused; `rankemb info` describes the file.
# Usage: llm_gguf_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
GGUF="$CACHE/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$GGUF" ] || { echo "FAIL: $GGUF missing (bash scripts/fetch-assets.sh fetches it)"; exit 1; }
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
export RANKEMB_CACHE_DIR="$CACHE"
head -n 4 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
gen() { "$BIN" -q --threads 2 generate --seeds "$TMP/seeds.txt" --steps 4 "$@"; }

gen -o "$TMP/full.jsonl"
python3 - "$TMP/full.jsonl" <<'PY'
import json, sys
meta = json.load(open(sys.argv[1] + ".meta.json"))
guard = {"model": "all-mpnet-base-v2", "margin": 0.05, "max_drop": 0.2}
assert meta["drift_guard"] == guard, meta.get("drift_guard")
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, len(rows)
assert all(r["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and r["guidance"] == 2.0 for r in rows), rows[0]
kept = [r for r in rows if r["kept"]]
assert len(kept) >= 2, [r["drop_reason"] for r in rows]
for r in kept:
    assert len(r["sentences"]) == 4 and r["sentences"][0].lower() != r["seed"].lower(), r
for r in rows:
    for t in r.get("retries", []):
        assert t["reason"] in ("copy", "newline", "empty", "token_limit", "drift_back", "drift_jump"), t
        assert 1 <= t["step"] <= 4, t
print("ok:", len(kept), "of 4 kept,", sum(len(r.get("retries", [])) for r in rows), "retries")
PY
# cut_and_resume FULL CUT [gen flags]: FULL cut inside its third line into CUT, then resumed.
cut_and_resume() {
  local full="$1" cut="$2"; shift 2
  head -c "$(( $(head -n 2 "$full" | wc -c) + 40 ))" "$full" > "$cut"
  cp "$full.meta.json" "$cut.meta.json"
  gen -o "$cut" --resume "$@"
}
# float32: the same bytes as the uninterrupted run (the drift guard embeds each text alone).
cut_and_resume "$TMP/full.jsonl" "$TMP/cut.jsonl"
cmp "$TMP/full.jsonl" "$TMP/cut.jsonl" || { echo "FAIL: the resumed run differs from the uninterrupted one"; exit 1; }
# bfloat16: every chain once, in order, the two before the cut unchanged.
# (Without the drift guard here: the copy guard alone, and a shorter test.)
gen -o "$TMP/full16.jsonl" --dtype bfloat16 --drift-guard none
cut_and_resume "$TMP/full16.jsonl" "$TMP/cut16.jsonl" --dtype bfloat16 --drift-guard none
[ "$(head -n 2 "$TMP/full16.jsonl")" = "$(head -n 2 "$TMP/cut16.jsonl")" ] || { echo "FAIL: bfloat16 resume changed the chains before the cut"; exit 1; }
python3 -c 'import json, sys; ids = [json.loads(l)["id"] for l in open(sys.argv[1])]; assert ids == [0, 1, 2, 3], ids' "$TMP/cut16.jsonl" ||
  { echo "FAIL: bfloat16 resume lost or duplicated a chain"; exit 1; }
# A resume with another drift margin, and a drift guard without retries, are usage errors (exit 2).
rc=0; gen -o "$TMP/full.jsonl" --resume --drift-margin 0.1 2> "$TMP/err" || rc=$?
[ "$rc" = 2 ] && grep -q "other settings" "$TMP/err" || { echo "FAIL: resume with another margin: rc $rc"; cat "$TMP/err"; exit 1; }
rc=0; gen -o "$TMP/paper.jsonl" --preset paper --drift-guard "$CACHE/assets/all-MiniLM-L6-v2" 2> "$TMP/err" || rc=$?
[ "$rc" = 2 ] && grep -q "retries > 0" "$TMP/err" && [ ! -e "$TMP/paper.jsonl" ] ||
  { echo "FAIL: a drift guard without retries: rc $rc"; cat "$TMP/err"; exit 1; }
"$BIN" info "$GGUF" > "$TMP/info.json"
grep -q '"model_type": "llama"' "$TMP/info.json" || { echo "FAIL: info did not describe the GGUF"; exit 1; }
echo "PASS: embedded SmolLM2 chains with both guards, resume byte-identical (float32) and complete (bfloat16), info"
