#!/usr/bin/env bash
# CLI test of what a hostile or careless input gets (issue 17): each probe below reproduced a
# defect (exit 0 on a lost output, a hang, unbounded memory, a raw libtorch trace, a clobbered
# input) and must now end quickly with the documented exit status (2 usage, 3 input data, 4 model
# file, 1 other), a message naming what was wrong, and nothing half-written. Hostile configs also
# run under `ulimit -v` to show they are refused before any large allocation.
# Usage: failure_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR SOURCE_DIR
set -uo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"; SRC="$4"
VECTORS="$CACHE/models/glove-100d"
MINILM="$CACHE/assets/all-MiniLM-L6-v2"
for need in "$VECTORS/embeddings.safetensors" "$MINILM/tokenizer.json" /usr/share/wordnet/index.noun; do
  [ -e "$need" ] || { echo "FAIL: $need missing (bash scripts/prepare.sh provides it)"; exit 1; }
done
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
failures=0
# expect STATUS NEEDLE -- command...: runs it (20 s at most), checks the status and that stderr names NEEDLE.
expect() {
  local want="$1" needle="$2"; shift 3
  timeout 20 "$@" > "$TMP/out" 2> "$TMP/err"; local got=$?
  if [ "$got" != "$want" ] || ! grep -qF -- "$needle" "$TMP/err"; then
    echo "FAIL: $* -> status $got (want $want), stderr: $(tail -c 300 "$TMP/err")"; failures=$((failures + 1))
  fi
}
GEN=("$BIN" -q generate --backend lexical --vectors "$VECTORS")
LIMITED=(bash -c 'ulimit -v 2000000; exec "$@"' _)  # under 2 GB of address space
head -n 3 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
cp "$TMP/seeds.txt" "$TMP/seeds.orig"

# 1. A lost standard output is an error.
expect 1 "writing standard output" -- bash -c "'$BIN' tokenize -t '$MINILM' '$TMP/seeds.txt' > /dev/full"
# 2. A runaway seed line is refused up front, naming the line (no memory blow-up, no output).
python3 -c "print('word ' * 200000)" > "$TMP/long.txt"
expect 3 "long.txt:1" -- "${GEN[@]}" --seeds "$TMP/long.txt" --steps 2 -o "$TMP/long.jsonl"
[ ! -e "$TMP/long.jsonl" ] || { echo "FAIL: a refused run left $TMP/long.jsonl"; failures=$((failures + 1)); }
# 4, 7. Bounded and finite generation options.
expect 2 "batch" -- "${GEN[@]}" --seeds "$TMP/seeds.txt" --batch -1 -o "$TMP/b.jsonl"
expect 2 "batch" -- "${GEN[@]}" --seeds "$TMP/seeds.txt" --batch 1000000 -o "$TMP/b.jsonl"
expect 2 "guidance" -- "${GEN[@]}" --seeds "$TMP/seeds.txt" --guidance inf -o "$TMP/g.jsonl"
# 6. --threads has a cap.
expect 2 "threads" -- "$BIN" --threads 100000 info "$MINILM"
# --threads 0 is every usable core (Debian's libtorch alone starts with one thread on 2 cores),
# unless OMP_NUM_THREADS says otherwise.
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
env -u OMP_NUM_THREADS -u MKL_NUM_THREADS "$BIN" -vv --threads 0 info "$MINILM" > /dev/null 2> "$TMP/err"
grep -q "intra-op threads: $cores\$" "$TMP/err" || {
  echo "FAIL: --threads 0 did not use all $cores cores: $(grep -i threads "$TMP/err")"; failures=$((failures + 1)); }
OMP_NUM_THREADS=1 "$BIN" -vv info "$MINILM" > /dev/null 2> "$TMP/err"
grep -q "intra-op threads: 1\$" "$TMP/err" || {
  echo "FAIL: OMP_NUM_THREADS=1 was not respected: $(grep -i threads "$TMP/err")"; failures=$((failures + 1)); }
# --int8 where it cannot run is a usage error naming why, not a silent float32 run.
expect 2 "float32 model on the CPU" -- "$BIN" encode -m "$MINILM" "$TMP/seeds.txt" -o "$TMP/q.npy" --int8 --dtype bfloat16
[ ! -e "$TMP/q.npy" ] || { echo "FAIL: a refused --int8 run left $TMP/q.npy"; failures=$((failures + 1)); }
# 9. An output path equal to an input is refused, and the input survives.
expect 2 "is also the input" -- "${GEN[@]}" --seeds "$TMP/seeds.txt" -o "$TMP/seeds.txt" --overwrite
cmp -s "$TMP/seeds.txt" "$TMP/seeds.orig" || { echo "FAIL: the seeds were overwritten"; failures=$((failures + 1)); }
"${GEN[@]}" --seeds "$TMP/seeds.txt" --steps 2 -o "$TMP/c.jsonl" || { echo "FAIL: a plain generate run"; failures=$((failures + 1)); }
cp "$TMP/c.jsonl" "$TMP/c.orig"
expect 2 "is also the input" -- "$BIN" chains stats "$TMP/c.jsonl" --json "$TMP/c.jsonl"
cmp -s "$TMP/c.jsonl" "$TMP/c.orig" || { echo "FAIL: chains stats overwrote its input"; failures=$((failures + 1)); }
# 5. A directory is not a chain file.
expect 3 "is a directory" -- "$BIN" chains stats "$TMP"
expect 3 "is a directory" -- "$BIN" chains merge "$TMP" -o "$TMP/m.jsonl"
# 10. train stops at a malformed chain record instead of training on less.
{ cat "$TMP/c.jsonl"; echo '{"seed": 1}'; } > "$TMP/bad.jsonl"
expect 3 "bad.jsonl:4" -- "$BIN" train --student "$SRC/tests/fixtures/models/tiny-bert-a" --chains "$TMP/bad.jsonl" -o "$TMP/run" --no-eval
# 3, 11. Hostile model directories: exit 4 naming the field, before allocating (under 2 GB of
# address space), and no hang on a FIFO.
hostile() {
  rm -rf "$TMP/m"; cp -r "$SRC/tests/fixtures/models/tiny-bert-a" "$TMP/m"
  python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c[sys.argv[2]]=json.loads(sys.argv[3]); json.dump(c, open(p,'w'))" \
    "$TMP/m/config.json" "$1" "$2"
}
hostile num_hidden_layers 100000
expect 4 "num_hidden_layers" -- "${LIMITED[@]}" "$BIN" encode -m "$TMP/m" "$TMP/seeds.txt" -o "$TMP/e.jsonl"
hostile max_position_embeddings 1000000000000
expect 4 "max_position_embeddings" -- "${LIMITED[@]}" "$BIN" encode -m "$TMP/m" "$TMP/seeds.txt" -o "$TMP/e.jsonl"
hostile num_hidden_layers 3
expect 4 "encoder.layer.2" -- "${LIMITED[@]}" "$BIN" encode -m "$TMP/m" "$TMP/seeds.txt" -o "$TMP/e.jsonl"
[ ! -e "$TMP/e.jsonl" ] || { echo "FAIL: a refused encode left $TMP/e.jsonl"; failures=$((failures + 1)); }
hostile num_hidden_layers 2
rm "$TMP/m/model.safetensors"; mkfifo "$TMP/m/model.safetensors"
expect 3 "not a regular file" -- "$BIN" encode -m "$TMP/m" "$TMP/seeds.txt" -o "$TMP/e.jsonl"
hostile num_hidden_layers 2
rm "$TMP/m/config.json"; ln -s config.json "$TMP/m/config.json"  # a symlink loop
expect 3 "config.json" -- "$BIN" encode -m "$TMP/m" "$TMP/seeds.txt" -o "$TMP/e.jsonl"

# 12. Smaller defects.
# Number options: plain messages, not CLI11's 300-digit double range or "not in range" for a word.
expect 2 "'abc' is not a number" -- "$BIN" train --batch abc --student x --chains x -o "$TMP/r"
expect 2 "must be positive, got -1" -- "$BIN" train --batch -1 --student x --chains x -o "$TMP/r"
expect 2 "'abc' is not a number" -- "${GEN[@]}" --seeds "$TMP/seeds.txt" --batch abc -o "$TMP/b.jsonl"
if grep -q "179769313" "$TMP/err"; then echo "FAIL: a range error printed the double range"; failures=$((failures + 1)); fi
# A limit the special tokens alone exceed is an error, not a longer output than asked for.
expect 2 "special tokens" -- "$BIN" tokenize -t "$MINILM" --max-length 1 "$TMP/seeds.txt"
# info loads what it describes: a broken tokenizer, or a config the weights do not match, fail.
hostile num_hidden_layers 2
echo '{"model": {"type": "WordPiece", "vocab": 7}}' > "$TMP/m/tokenizer.json"
expect 4 "tokenizer.json" -- "$BIN" info "$TMP/m"
hostile num_hidden_layers 3
expect 4 "encoder.layer.2" -- "$BIN" info "$TMP/m"
# A truncated or corrupted GGUF model is a model-format error naming the file, wherever a decoder is read.
head -c 5000000 "$CACHE/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf" > "$TMP/cut.gguf"
expect 4 "cut.gguf" -- "$BIN" info "$TMP/cut.gguf"
expect 4 "runs past the end of the file" -- "${GEN[@]/lexical/llm}" -m "$TMP/cut.gguf" --seeds "$TMP/seeds.txt" -o "$TMP/g.jsonl"
[ ! -e "$TMP/g.jsonl" ] || { echo "FAIL: a refused GGUF run left $TMP/g.jsonl"; failures=$((failures + 1)); }
# train and eval outputs never replace an input; a run directory that cannot be created is an
# output failure (exit 1) named as such.
expect 2 "is also the input" -- "$BIN" train --student "$SRC/tests/fixtures/models/tiny-bert-a" --chains "$TMP/c.jsonl" -o "$TMP/c.jsonl" --no-eval
cmp -s "$TMP/c.jsonl" "$TMP/c.orig" || { echo "FAIL: train replaced its chains"; failures=$((failures + 1)); }
hostile num_hidden_layers 2
cp "$TMP/m/config.json" "$TMP/config.orig"
expect 2 "is also the input" -- "$BIN" eval -m "$TMP/m" --tasks sts12 --json "$TMP/m/config.json"
cmp -s "$TMP/m/config.json" "$TMP/config.orig" || { echo "FAIL: eval replaced the model's config"; failures=$((failures + 1)); }
expect 1 "cannot create directory" -- "$BIN" train --student "$SRC/tests/fixtures/models/tiny-bert-a" --chains "$TMP/c.jsonl" -o "$TMP/c.jsonl/run" --no-eval
# A train run killed before its first checkpoint resumes (from step 0) instead of "no checkpoint".
mkdir -p "$TMP/early" && : > "$TMP/early/metrics.jsonl"
expect 0 "" -- "$BIN" train --student "$SRC/tests/fixtures/models/tiny-bert-a" --chains "$TMP/c.jsonl" -o "$TMP/early" --no-eval --max-steps 1 --resume
[ -f "$TMP/early/best/model.safetensors" ] || { echo "FAIL: the early-killed run did not resume to an export"; failures=$((failures + 1)); }

if [ "$failures" -gt 0 ]; then echo "FAIL: $failures probe(s)"; exit 1; fi
echo "PASS: every hostile input ended with its documented status"
