#!/usr/bin/env bash
# The standing defence against hostile input, run by scripts/test.sh after the main suite:
#   1. a clang build of the libtorch-free library (util, io, text, chains, generate, lexical,
#      search, serve: the HTTP server and its tests run under the sanitizers too) and
#      its unit tests with AddressSanitizer + UndefinedBehaviorSanitizer, and every libFuzzer
#      target of fuzz/;
#   2. those unit tests under the sanitizers (any report fails the run);
#   3. each fuzz target for FUZZ_SECONDS (default 20) from a seed corpus made of the repo's own
#      fixtures. A crash, sanitizer report, leak or timeout fails the run and leaves the input
#      that caused it under $BUILD/fuzz-findings/<target>/ (replay: $BUILD/fuzz/fuzz_<target> FILE).
# Environment: DEFENCE_BUILD_DIR (default ./build-defence), FUZZ_SECONDS, RANKEMB_CACHE_DIR
# (tokenizer assets for the tokenizer targets; default ./.cache), JOBS.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DEFENCE_BUILD_DIR:-$REPO/build-defence}"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
JOBS="${JOBS:-$(nproc)}"
FIX="$REPO/tests/fixtures"

echo "[defence] sanitizer + fuzz build in $BUILD" >&2
CC=clang CXX=clang++ cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRANKEMB_WITH_TORCH=OFF -DRANKEMB_BUILD_FUZZ=ON -DRANKEMB_BUILD_BENCH=OFF \
  -DRANKEMB_SANITIZE=address,undefined >/dev/null
ninja -C "$BUILD" -j "$JOBS"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
echo "[defence] libtorch-free unit tests under ASan+UBSan" >&2
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS" --timeout 900)

# seed DIR PREFIXES FILE...: one seed per (prefix byte, file) = the byte followed by the file's
# bytes; PREFIXES "" means the file alone.
seed() {
  local dir="$1" prefixes="$2" f p
  shift 2
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    if [ -z "$prefixes" ]; then
      cp "$f" "$dir/$(basename "$(dirname "$f")")_$(basename "$f")"
    else
      for p in $prefixes; do
        { printf "\\x$(printf %02x "$p")"; cat "$f"; } > "$dir/${p}_$(basename "$f")"
      done
    fi
  done
}

# Sentences for the tokenizer targets: the chain fixtures' sentences and seed files.
sentences="$BUILD/fuzz-sentences"
rm -rf "$sentences" && mkdir -p "$sentences"
i=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  printf '%s' "$line" > "$sentences/s$i.txt"
  i=$((i + 1))
  [ "$i" -lt 200 ] || break
done < <(cat "$FIX/lexical/golden_seeds.txt" "$FIX/chains/nasty.csv")

corpus="$BUILD/fuzz-corpus"
rm -rf "$corpus"
seed "$corpus/chain_inputs" "0 1 2 3 4 5 6 7 8" "$FIX"/chains/* "$FIX"/lexical/golden_*.jsonl "$FIX/lexical/golden_seeds.txt"
seed "$corpus/config_json" "" $(find "$FIX" -name config.json)
seed "$corpus/safetensors_header" "" $(find "$FIX" -name '*.safetensors' -size -64k)
seed "$corpus/gguf_file" "" "$FIX"/io/*.gguf
seed "$corpus/bpe_encode" "0 1 2 3 4 5 6 7" "$sentences"/s1*.txt
seed "$corpus/wordpiece_encode" "" "$sentences"/*.txt
seed "$corpus/use_unigram_encode" "" "$sentences"/*.txt
for f in "$REPO"/fuzz/seeds/*/*_*; do  # fuzz/seeds/TARGET/K_name: fed as byte K + the file
  k="$(basename "$f")"
  seed "$corpus/$(basename "$(dirname "$f")")" "${k%%_*}" "$f"
done

findings="$BUILD/fuzz-findings"
failed=()
for target in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name="$(basename "$target")"
  name="${name#fuzz_}"
  mkdir -p "$corpus/$name" "$findings/$name"
  echo "[defence] fuzz_$name for ${FUZZ_SECONDS}s ($(ls "$corpus/$name" | wc -l) seeds)" >&2
  if ! "$target" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$findings/$name/" "$corpus/$name" \
       > "$findings/$name.log" 2>&1; then
    tail -40 "$findings/$name.log" >&2
    failed+=("$name")
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$findings/$name.log" | tr '\n' ' ' >&2
    echo >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "[defence] FAILED fuzz targets: ${failed[*]} (inputs under $findings)" >&2
  exit 1
fi
echo "[defence] clean: sanitizers and $(ls "$BUILD"/fuzz/fuzz_* | wc -l) fuzz targets" >&2
