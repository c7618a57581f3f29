#!/usr/bin/env bash
# CLI test of `rankemb serve --llm` (the generation routes), with real clients on loopback:
#   - /v1/completions through OpenAI's official Python client (pinned in $CACHE/venv-clients),
#     guidance in extra_body, on TinyStories-656K: the 12 two-step guided chains of
#     tests/fixtures/llm/tinystories_guided.expected.jsonl (transformers running the guided loop,
#     scripts/regen/llm_guided_tinystories.py) come back token for token: step 1 as a greedy raw
#     completion of the paper's prompt, step 2 with the previous sentence's prompt as
#     negative_prompt and the fixture's guidance_scale (text after stripping, completion_tokens,
#     finish_reason);
#   - /v1/chains returns, byte for byte, the line `rankemb generate` writes for the same seed and
#     id with the same options: greedy (paper preset), sampled, and the small-llm preset with its
#     copy guard; and on the embedded SmolLM2 GGUF with the auto preset on both sides;
#   - errors name the field (400/413), a full LLM queue answers 429 + Retry-After, /info names
#     the LLM, /metrics counts the routes, SIGTERM during a generation answers it and exits 0.
# Usage: serve_llm_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR SOURCE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"; SRC="$4"
ENC="$CACHE/assets/all-MiniLM-L6-v2"
TS="$DATA/../models/tinystories-656k"
GGUF="$CACHE/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
PY="$CACHE/venv-clients/bin/python"
export RANKEMB_CACHE_DIR="$CACHE"  # the embedded LLM, for generate without -m and serve's auto preset
for f in "$ENC/model.safetensors" "$TS/config.json" "$GGUF"; do
  [ -e "$f" ] || { echo "FAIL: $f missing (bash scripts/prepare.sh fetches it)"; exit 1; }
done
"$PY" -c "import openai" 2>/dev/null || { echo "FAIL: no openai client in $CACHE/venv-clients (bash scripts/install-deps.sh makes it)"; exit 1; }
TMP="$(mktemp -d)"
PID=""
cleanup() { [ -z "$PID" ] || kill -9 "$PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/serve.err" ] && tail -20 "$TMP/serve.err"; exit 1; }

# start_server LLM ARGS...: `rankemb serve --llm LLM --port 0 ARGS` in the background; sets PID, URL.
start_server() {
  local llm="$1"; shift
  "$BIN" --threads 2 serve -m "$ENC" --llm "$llm" --port 0 "$@" 2> "$TMP/serve.err" &
  PID=$!
  for _ in $(seq 1 300); do
    URL="$(sed -n 's/^rankemb serve: listening on \(http:[^ ]*\)$/\1/p' "$TMP/serve.err")"
    [ -n "$URL" ] && return 0
    kill -0 "$PID" 2>/dev/null || fail "serve exited at start"
    sleep 0.2
  done
  fail "serve did not start in 60 s"
}
stop_server() {
  kill -TERM "$PID"
  local rc=0
  timeout 60 tail --pid="$PID" -f /dev/null || fail "serve did not exit within 60 s of SIGTERM"
  wait "$PID" || rc=$?
  PID=""
  [ "$rc" -eq 0 ] || fail "serve exited $rc after SIGTERM"
}
# status PATH BODY: POSTs, prints the HTTP status; the body lands in $TMP/body.
status() { curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$URL$1"; }
# expect_error PATH BODY STATUS PARAM: the status and OpenAI's error.param naming the field.
expect_error() {
  local got; got="$(status "$1" "$2")"
  [ "$got" = "$3" ] && grep -q "\"param\":\"$4\"" "$TMP/body" || fail "$1 $2: want $3 naming $4, got $got $(cat "$TMP/body")"
}
# chain_equals_generate SEEDS_FILE LINE REQUEST_JSON: the server's /v1/chains body for the seed on
# line LINE (0-based id) equals line LINE+1 of $TMP/gen.jsonl.
chain_equals_generate() {
  local seed body; seed="$(sed -n "$(( $2 + 1 ))p" "$1")"
  body="$(python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r.update(seed=sys.argv[1], id=int(sys.argv[2])); print(json.dumps(r))' "$seed" "$2" "$3")"
  [ "$(status /v1/chains "$body")" = 200 ] || fail "/v1/chains $body: $(cat "$TMP/body")"
  sed -n "$(( $2 + 1 ))p" "$TMP/gen.jsonl" | tr -d '\n' > "$TMP/want"
  cmp -s "$TMP/want" "$TMP/body" || fail "/v1/chains differs from rankemb generate for id $2:
  generate: $(cat "$TMP/want")
  serve:    $(cat "$TMP/body")"
}

start_server "$TS" --llm-queue 1 --max-tokens 64 --max-steps 8

# 1. Completions against transformers' guided chains, through the official client.
"$PY" - "$URL" "$SRC" "$DATA" <<'EOF' || fail "completions vs the transformers fixture"
import json, sys, openai
url, src, data = sys.argv[1:]
sys.path.insert(0, src + "/scripts/regen")
from corpus import load_corpus
texts = load_corpus(data)
INDENT = " " * 28  # the paper's prompt, as the fixture's script spells it
PROMPT = (INDENT + "Rewrite the following sentence or phrase using different words and sentence structure while "
          "preserving its original meaning. \n" + INDENT + "Directly answer with the rewritten sentence. Don't give "
          "any explanation or description other than the rewritten sentence.\n" + INDENT +
          "Write a sentence that is entailment with: ```{sentence}```. Result: ")
prompt = lambda s: PROMPT.replace("{sentence}", s.strip())
client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
rows = [json.loads(l) for l in open(src + "/tests/fixtures/llm/tinystories_guided.expected.jsonl") if not l.startswith("#")]
checked = 0
for row in rows:
    seed, x1 = texts[row["seed"]], row["step1"]["text"]
    for step, body in (("step1", dict(prompt=prompt(seed))),
                       ("step2", dict(prompt=prompt(x1), extra_body={"negative_prompt": prompt(seed), "guidance_scale": row["g"]}))):
        r = client.completions.create(model="ts", max_tokens=48, temperature=0, **body)
        want = row[step]
        c = r.choices[0]
        stopped = want["ids"][-1] == 2
        assert c.text.strip("` \t\n\r\f\v") == want["text"], (row["seed"], row["g"], step, c.text, want["text"])
        assert r.usage.completion_tokens == len(want["ids"]), (step, r.usage, len(want["ids"]))
        assert c.finish_reason == ("stop" if stopped else "length"), (step, c.finish_reason)
        assert r.object == "text_completion" and r.model == "ts" and r.usage.prompt_tokens > 80
        checked += 1
# A list of prompts: each choice equals that prompt completed alone; stop strings cut the text.
one = [client.completions.create(model="ts", prompt=p, max_tokens=20, temperature=0).choices[0].text for p in ("Once upon a time", "Tom had a dog")]
both = client.completions.create(model="ts", prompt=["Once upon a time", "Tom had a dog"], max_tokens=20, temperature=0)
assert [c.text for c in both.choices] == one and [c.index for c in both.choices] == [0, 1], (one, both)
word = one[0].split()[2]
cut = client.completions.create(model="ts", prompt="Once upon a time", max_tokens=20, temperature=0, stop=[word])
assert cut.choices[0].text == one[0][:one[0].index(word)] and cut.choices[0].finish_reason == "stop", (word, cut)
# Sampling is seeded: the same seed gives the same text.
a, b = (client.completions.create(model="ts", prompt="Once", max_tokens=20, temperature=1, seed=3).choices[0].text for _ in range(2))
assert a == b, (a, b)
try:
    client.completions.create(model="ts", prompt="x", max_tokens=65)
    raise SystemExit("max_tokens 65 accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "max_tokens", e.body
print(f"{checked} completions equal transformers' guided decoding token for token; lists, stop, seed: ok")
EOF

# 2. Errors name the field; /info and /metrics.
expect_error /v1/completions '{"prompt": ["a","b","c","d","e","f","g","h","i"]}' 413 prompt
expect_error /v1/completions '{"prompt": "a", "stream": true}' 400 stream
expect_error /v1/completions '{"prompt": "a", "guidance_scale": 2}' 400 negative_prompt
expect_error /v1/completions '{"prompt": "a", "chat": true}' 400 chat  # TinyStories has no chat template
expect_error /v1/completions "{\"prompt\": \"$(printf 'word %.0s' $(seq 1 600))\", \"max_tokens\": 10}" 413 prompt
expect_error /v1/chains '{"seed": "A dog runs.", "steps": 9}' 400 steps
expect_error /v1/chains '{"seed": "A dog\truns.", "steps": 2}' 400 seed
expect_error /v1/chains '{"seed": "A dog runs.", "steps": 2, "guidance": 2}' 400 guidance
[ "$(status /v1/chains '{"seed": ')" = 400 ] || fail "malformed JSON"
curl -s "$URL/info" > "$TMP/info"
grep -q '"llm":{[^}]*"model_id":"tinystories-656k"' "$TMP/info" && grep -q '"chain_preset":"paper"' "$TMP/info" || fail "/info: $(cat "$TMP/info")"

# 3. /v1/chains = rankemb generate, byte for byte: greedy with the paper preset, then sampled.
# generate runs one chain at a time (--batch 1), as the server does: with more chains in one
# forward call, float rounding of the bigger matrix products can move a sampled draw (the copy
# guard's retries) across a token boundary, so only greedy steps would still match.
head -n 4 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
gen() { "$BIN" -q --threads 2 generate -m "$TS" --seeds "$TMP/seeds.txt" -o "$TMP/gen.jsonl" --overwrite --batch 1 "$@" || fail "generate $*"; }
# (8 tokens a step: TinyStories, a base model, soon writes a newline, which ends a chain.)
gen --steps 3 --max-new-tokens 8
for id in 0 1 2 3; do chain_equals_generate "$TMP/seeds.txt" "$id" '{"steps": 3, "max_tokens": 8}'; done
gen --steps 3 --max-new-tokens 8 --temperature 0.9 --top-p 0.95 --seed 5 --guidance 2
for id in 1 2; do
  chain_equals_generate "$TMP/seeds.txt" "$id" '{"steps": 3, "max_tokens": 8, "temperature": 0.9, "top_p": 0.95, "random_seed": 5, "guidance_scale": 2}'
done
# A request is counted after its response is written, so the last one's count can land a moment
# after the client has its answer: read /metrics until the counts are in (5 s at most).
counted() {
  curl -s "$URL/metrics" > "$TMP/metrics"
  grep -q '^rankemb_requests_total{route="/v1/chains",status="200"} 6$' "$TMP/metrics" &&
    grep -q '^rankemb_requests_total{route="/v1/completions",status="200"} 30$' "$TMP/metrics" &&
    grep -q '^rankemb_requests_total{route="/v1/completions",status="413"} 2$' "$TMP/metrics"
}
for _ in $(seq 50); do counted && break; sleep 0.1; done
counted || fail "metrics: $(grep 'requests_total' "$TMP/metrics")"

# 4. A full queue (one running + one waiting) answers 429 with Retry-After; the rest are answered.
"$PY" - "$URL" <<'EOF' || fail "429"
import json, sys, threading, urllib.request, urllib.error
url = sys.argv[1]
codes = []
def client(i):
    body = json.dumps({"seed": f"A man number {i} plays a guitar.", "steps": 8, "max_tokens": 64}).encode()
    req = urllib.request.Request(url + "/v1/chains", body, {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=300); codes.append(200)
    except urllib.error.HTTPError as e:
        codes.append((e.code, e.headers.get("Retry-After"), json.load(e)["error"]["type"]))
threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
refused = [c for c in codes if c != 200]
assert codes.count(200) >= 2 and refused and all(c == (429, "1", "rate_limit_error") for c in refused), codes
print(f"8 concurrent chains: {codes.count(200)} answered, {len(refused)} refused with 429 + Retry-After")
EOF

# 5. SIGTERM during a generation: it is answered, then exit 0.
curl -s -o "$TMP/inflight" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary '{"seed": "A woman is slicing an onion.", "steps": 8, "max_tokens": 64}' "$URL/v1/chains" > "$TMP/inflight.status" &
CURL=$!
sleep 0.3
stop_server
wait "$CURL" || true
[ "$(cat "$TMP/inflight.status")" = 200 ] && grep -q '"steps":8' "$TMP/inflight" || fail "in-flight chain not answered on SIGTERM: $(cat "$TMP/inflight.status")"

# 6. The small-llm preset (short prompt, copy negative, copy guard with sampled retries).
start_server "$TS" --preset small-llm
gen --preset small-llm --steps 2
for id in 0 2; do chain_equals_generate "$TMP/seeds.txt" "$id" '{"steps": 2}'; done
stop_server

# 7. The embedded SmolLM2 GGUF: auto preset (small-llm) on both sides, and a chat completion.
start_server "$GGUF"
grep -q "chains with preset small-llm" "$TMP/serve.err" || fail "serve --llm on the embedded GGUF did not pick small-llm"
head -n 1 "$TMP/seeds.txt" > "$TMP/seed1.txt"
"$BIN" -q --threads 2 generate --seeds "$TMP/seed1.txt" --steps 2 -o "$TMP/gen.jsonl" --overwrite || fail "generate with the embedded LLM"
chain_equals_generate "$TMP/seed1.txt" 0 '{"steps": 2}'
[ "$(status /v1/completions '{"prompt": "What is the capital of France?", "chat": true, "max_tokens": 24, "temperature": 0}')" = 200 ] || fail "chat completion: $(cat "$TMP/body")"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["choices"][0]; assert "Paris" in c["text"], c' "$TMP/body" || fail "chat completion: $(cat "$TMP/body")"
stop_server
echo "PASS: completions equal transformers' guided decoding, /v1/chains equals rankemb generate byte for byte (paper, sampled, small-llm, embedded SmolLM2), errors name the field, 429 when full, SIGTERM drained"
