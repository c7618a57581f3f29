#!/usr/bin/env bash
# CLI test of `rankemb serve`, `rankemb index build` and `rankemb search` on the real
# all-MiniLM-L6-v2, with real clients on loopback:
#   - OpenAI's official Python client (pinned in $CACHE/venv-clients by scripts/install-deps.sh)
#     against /v1/embeddings, float and base64; the vectors must equal `rankemb encode` of the same
#     texts (max |diff| <= 1e-5: the server batches differently, so float sums may differ in the
#     last bits);
#   - TEI-shaped bodies with curl: /embed, /rerank, /info, /health, /metrics, the error paths (and
#     the generation routes' 404 without --llm);
#   - 64 concurrent clients (one model worker, then two), each with its own random texts: every
#     answer equals its texts encoded alone (no lost, mixed or reordered rows), in bounded time;
#   - an index of the STS-B test sentences: a corpus sentence finds itself first; HNSW records its
#     recall@10; a different model is refused; `serve -i` answers POST /search;
#   - SIGTERM during a request: the request is answered, the server exits 0.
# Usage: serve_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
MODEL="$CACHE/assets/all-MiniLM-L6-v2"
PY="$CACHE/venv-clients/bin/python"
[ -f "$MODEL/model.safetensors" ] || { echo "FAIL: $MODEL missing (bash scripts/prepare.sh fetches it)"; exit 1; }
"$PY" -c "import openai" 2>/dev/null || { echo "FAIL: no openai client in $CACHE/venv-clients (bash scripts/install-deps.sh makes it)"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl missing"; exit 1; }
TMP="$(mktemp -d)"
PID=""
cleanup() { [ -z "$PID" ] || kill -9 "$PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/serve.err" ] && tail -20 "$TMP/serve.err"; exit 1; }

# The sentences: STS-B test, unique, first 400.
tail -n +2 "$DATA/stsb/stsb-test.tsv" | cut -f6,7 | tr '\t' '\n' > "$TMP/all.txt"
awk 'NF && !seen[$0]++ && n++ < 400' "$TMP/all.txt" > "$TMP/corpus.txt"
[ "$(wc -l < "$TMP/corpus.txt")" -eq 400 ] || fail "could not read 400 STS-B sentences from $DATA/stsb"
"$BIN" --threads 2 encode -m "$MODEL" "$TMP/corpus.txt" -o "$TMP/alone.jsonl" 2> "$TMP/encode.err" || fail "encode: $(cat "$TMP/encode.err")"

# start_server ARGS...: runs `rankemb serve --port 0 ARGS` in the background, sets PID and URL.
start_server() {
  "$BIN" --threads 2 serve -m "$MODEL" --port 0 "$@" 2> "$TMP/serve.err" &
  PID=$!
  for _ in $(seq 1 300); do
    URL="$(sed -n 's/^rankemb serve: listening on \(http:[^ ]*\)$/\1/p' "$TMP/serve.err")"
    [ -n "$URL" ] && return 0
    kill -0 "$PID" 2>/dev/null || fail "serve exited at start"
    sleep 0.2
  done
  fail "serve did not start in 60 s"
}
# stop_server: SIGTERM, then it must exit 0 within 30 s.
stop_server() {
  kill -TERM "$PID"
  local rc=0
  timeout 30 tail --pid="$PID" -f /dev/null || fail "serve did not exit within 30 s of SIGTERM"
  wait "$PID" || rc=$?
  PID=""
  [ "$rc" -eq 0 ] || fail "serve exited $rc after SIGTERM"
}
# status METHOD PATH [BODY]: prints the HTTP status; the body lands in $TMP/body.
status() {
  if [ "$1" = GET ]; then curl -s -o "$TMP/body" -w '%{http_code}' "$URL$2"
  else curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$3" "$URL$2"; fi
}

start_server --max-inputs 64
case "$URL" in http://127.0.0.1:*) ;; *) fail "serve did not bind loopback by default: $URL" ;; esac

# 1. OpenAI client, float and base64, against `rankemb encode`.
"$PY" - "$URL" "$TMP/corpus.txt" "$TMP/alone.jsonl" <<'EOF' || fail "openai client"
import base64, json, struct, sys, openai
url, corpus, alone = sys.argv[1:]
texts = open(corpus).read().splitlines()
want = [json.loads(l)["embedding"] for l in open(alone)]
client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
def decoded(e):  # asked for base64 explicitly, the client hands the string over as it came
    return list(struct.unpack(f"<{len(base64.b64decode(e))//4}f", base64.b64decode(e))) if isinstance(e, str) else e
# No encoding_format: the client asks for base64 itself and decodes it (its default path).
for fmt in (openai.NOT_GIVEN, "float", "base64"):
    r = client.embeddings.create(model="minilm", input=texts[:20], encoding_format=fmt)
    assert [d.index for d in r.data] == list(range(20)), "rows out of order"
    diff = max(abs(a - b) for d, w in zip(r.data, want) for a, b in zip(decoded(d.embedding), w))
    assert diff <= 1e-5, f"{fmt}: max |diff| {diff} to rankemb encode"
    assert r.usage.prompt_tokens > 20 and r.model == "minilm"
    print(f"openai {fmt}: 20 rows, max |diff| to encode {diff:.2e}")
one = client.embeddings.create(model="m", input=texts[0], dimensions=64).data[0].embedding
assert len(one) == 64 and abs(sum(x * x for x in one) - 1) < 1e-4
try:
    client.embeddings.create(model="m", input=texts[0], dimensions=10000)
    raise SystemExit("dimensions 10000 accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "dimensions", e.body
print("openai client: ok")
EOF

# 2. TEI shapes and error paths with curl.
[ "$(status GET /health)" = 200 ] || fail "/health"
[ "$(status GET /info)" = 200 ] && grep -q '"max_input_length":256' "$TMP/body" && grep -q '"pooling":"mean"' "$TMP/body" || fail "/info: $(cat "$TMP/body")"
[ "$(status POST /embed '{"inputs": ["A man is playing a guitar."], "normalize": true}')" = 200 ] || fail "/embed"
"$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[0]; assert len(v)==384 and abs(sum(x*x for x in v)-1)<1e-4' "$TMP/body" || fail "/embed shape"
[ "$(status POST /rerank '{"query": "a man plays the guitar", "texts": ["A cat sleeps.", "A man is playing a guitar.", "Stocks fell."], "return_text": true}')" = 200 ] || fail "/rerank"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r[0]["index"]==1 and r[0]["text"]=="A man is playing a guitar." and r[0]["score"]>r[1]["score"]' "$TMP/body" || fail "/rerank order: $(cat "$TMP/body")"
[ "$(status POST /v1/embeddings '{"input": ')" = 400 ] && grep -q invalid_request_error "$TMP/body" || fail "malformed JSON"
[ "$(status POST /v1/embeddings '{"input": [1, 2]}')" = 400 ] && grep -q '"param":"input"' "$TMP/body" || fail "token ids: $(cat "$TMP/body")"
[ "$(status POST /embed '{"text": "x"}')" = 400 ] && grep -q 'inputs is required' "$TMP/body" || fail "missing field: $(cat "$TMP/body")"
[ "$(status POST /embed '{"inputs": "x", "normalize": "yes"}')" = 400 ] && grep -q 'normalize must be true or false' "$TMP/body" || fail "wrong type"
long="$(printf 'word %.0s' $(seq 1 700))"
[ "$(status POST /embed "{\"inputs\": \"$long\"}")" = 413 ] || fail "over-long input not 413"
[ "$(status POST /embed "{\"inputs\": \"$long\", \"truncate\": true}")" = 200 ] || fail "truncate: true refused"
many="$("$PY" -c 'import json; print(json.dumps({"inputs": ["x"] * 65}))')"
[ "$(status POST /embed "$many")" = 413 ] || fail "65 inputs over --max-inputs 64 not 413"
head -c 5000000 /dev/zero | tr '\0' 'a' > "$TMP/huge"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/huge" "$URL/embed")" = 413 ] || fail "5 MB body not 413"
# Without --llm the generation routes answer 404 in OpenAI's shape (serve_llm_test.sh tests them with one).
[ "$(status POST /v1/completions '{"prompt": "a"}')" = 404 ] && grep -q '"type":"invalid_request_error"' "$TMP/body" && grep -q -- '--llm' "$TMP/body" || fail "/v1/completions without --llm: $(cat "$TMP/body")"
code="$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$URL/../../etc/passwd")"
[ "$code" = 404 ] || [ "$code" = 400 ] || fail "a path outside the routes got $code"

# 3. 64 concurrent clients: each answer equals its texts encoded alone; with one model worker
# and again with two (--workers 2: two batches side by side, a thread each).
cat > "$TMP/concurrency.py" <<'EOF'
import json, random, sys, threading, time, urllib.request
url, corpus, alone = sys.argv[1:]
texts = open(corpus).read().splitlines()
want = [json.loads(l)["embedding"] for l in open(alone)]
worst, errors = [0.0], []
def client(seed):
    rng = random.Random(seed)
    for _ in range(3):
        picks = rng.sample(range(len(texts)), rng.randint(1, 8))
        body = json.dumps({"inputs": [texts[i] for i in picks], "normalize": False}).encode()
        req = urllib.request.Request(url + "/embed", body, {"Content-Type": "application/json"})
        try:
            rows = json.load(urllib.request.urlopen(req, timeout=120))
        except Exception as e:
            errors.append(repr(e)); return
        if len(rows) != len(picks): errors.append("row count"); return
        for i, row in zip(picks, rows):
            worst[0] = max(worst[0], max(abs(a - b) for a, b in zip(row, want[i])))
start = time.time()
threads = [threading.Thread(target=client, args=(s,)) for s in range(64)]
for t in threads: t.start()
for t in threads: t.join(180)
elapsed = time.time() - start
assert not any(t.is_alive() for t in threads), "clients still waiting after 180 s"
assert not errors, errors[:3]
assert worst[0] <= 1e-5, f"a row differs from its text encoded alone by {worst[0]}"
print(f"64 clients x 3 requests: all answered in {elapsed:.1f} s, max |diff| to alone {worst[0]:.2e}")
EOF
"$PY" "$TMP/concurrency.py" "$URL" "$TMP/corpus.txt" "$TMP/alone.jsonl" || fail "concurrency"
curl -s "$URL/metrics" > "$TMP/metrics"
grep -q '^rankemb_requests_total{route="/embed",status="200"} 19[2-9]' "$TMP/metrics" || fail "metrics: $(grep requests_total "$TMP/metrics")"
stop_server
start_server --workers 2
[ "$(status GET /info)" = 200 ] && grep -q '"model_workers":2' "$TMP/body" || fail "/info with --workers 2: $(cat "$TMP/body")"
"$PY" "$TMP/concurrency.py" "$URL" "$TMP/corpus.txt" "$TMP/alone.jsonl" || fail "concurrency, two model workers"
stop_server

# 4. Index and search.
"$BIN" --threads 2 index build -m "$MODEL" "$TMP/corpus.txt" -o "$TMP/index" 2> "$TMP/index.err" || fail "index build: $(cat "$TMP/index.err")"
[ -f "$TMP/index/index.faiss" ] && [ -f "$TMP/index/index.json" ] || fail "index files missing"
q="$(sed -n 37p "$TMP/corpus.txt")"
"$BIN" --threads 2 search -i "$TMP/index" -k 3 "$q" > "$TMP/hits.jsonl" 2> "$TMP/search.err" || fail "search: $(cat "$TMP/search.err")"
"$PY" -c '
import json, sys
hits = [json.loads(l) for l in open(sys.argv[1])]
assert len(hits) == 3 and hits[0]["id"] == 37 and hits[0]["score"] > 0.999 and hits[0]["rank"] == 1, hits[0]
assert hits[1]["score"] <= hits[0]["score"]' "$TMP/hits.jsonl" || fail "search: $(cat "$TMP/hits.jsonl")"
"$BIN" --threads 2 index build -m "$MODEL" "$TMP/corpus.txt" -o "$TMP/hnsw" --kind hnsw 2> "$TMP/hnsw.err" || fail "hnsw build"
grep -q "recall@10 against exact search" "$TMP/hnsw.err" && grep -q '"recall_at_10"' "$TMP/hnsw/index.json" || fail "hnsw recall not recorded"
rc=0; "$BIN" search -i "$TMP/index" -m "$(dirname "$0")/../fixtures/models/tiny-bert-a" "$q" > /dev/null 2> "$TMP/mismatch.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "built with" "$TMP/mismatch.err" || fail "a different model was not refused (exit $rc): $(cat "$TMP/mismatch.err")"
rc=0; "$BIN" index build -m "$MODEL" "$TMP/corpus.txt" -o "$TMP/corpus.txt" 2> "$TMP/clobber.err" || rc=$?
[ "$rc" -ne 0 ] && [ "$(wc -l < "$TMP/corpus.txt")" -eq 400 ] || fail "index build -o over its corpus"

start_server -i "$TMP/index"
[ "$(status POST /search "{\"query\": \"$q\", \"k\": 2}")" = 200 ] || fail "/search: $(cat "$TMP/body")"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]["hits"]; assert len(r)==2 and r[0]["id"]==37' "$TMP/body" || fail "/search hits: $(cat "$TMP/body")"

# 5. SIGTERM while a request is in flight: it is answered, then exit 0.
big="$("$PY" -c 'import json,sys; t=open(sys.argv[1]).read().splitlines(); print(json.dumps({"inputs": t[:64]}))' "$TMP/corpus.txt")"
curl -s -o "$TMP/inflight" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$big" "$URL/embed" > "$TMP/inflight.status" &
CURL=$!
sleep 0.3
stop_server
wait "$CURL" || true
[ "$(cat "$TMP/inflight.status")" = 200 ] || fail "in-flight request not answered on SIGTERM: $(cat "$TMP/inflight.status")"
grep -q "finishing the requests in flight" "$TMP/serve.err" || fail "no drain message"
echo "PASS: OpenAI client and TEI bodies answered, 64 concurrent clients got their own rows, search found its sentence, SIGTERM drained"
