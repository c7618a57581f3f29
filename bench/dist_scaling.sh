#!/usr/bin/env bash
# Data-parallel scaling of `rankemb train` (issue 16): the same global batch on 1 rank and on N
# Gloo ranks of this machine (`--nproc N`, loopback), on 33-sentence lexical chains from SNLI
# seeds (what the demo trains on), all-MiniLM-L6-v2 student and teacher, no dev evaluation.
# Prints one JSONL record per world size: median seconds per step after WARMUP steps, the
# gradient bytes each rank sends per step (comm_bytes from metrics.jsonl), and the threads per rank.
#   bash bench/dist_scaling.sh [BUILD_DIR] [OUT.jsonl]
# Environment: WORLDS ("1 2"), BATCH (global chains per step, 4), STEPS (12), WARMUP (2),
# DTYPE (float32), RANKEMB_DATA_DIR (../shared/data), RANKEMB_CACHE_DIR (.cache).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO/build}/bin/rankemb"
OUT="${2:-/dev/stdout}"
DATA="${RANKEMB_DATA_DIR:-$REPO/../shared/data}"
CACHE="${RANKEMB_CACHE_DIR:-$REPO/.cache}"
WORLDS="${WORLDS:-1 2}" BATCH="${BATCH:-4}" STEPS="${STEPS:-12}" WARMUP="${WARMUP:-2}" DTYPE="${DTYPE:-float32}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

head -n "$((BATCH * STEPS))" "$DATA/nli/snli_seed_sentences.txt" > "$work/seeds.txt"
"$BIN" -q generate --backend lexical --seeds "$work/seeds.txt" --steps 32 -o "$work/chains.jsonl"
for world in $WORLDS; do
  "$BIN" -q train --student "$CACHE/assets/all-MiniLM-L6-v2" --chains "$work/chains.jsonl" -o "$work/run$world" \
    --batch "$BATCH" --max-steps "$STEPS" --no-eval --dtype "$DTYPE" --nproc "$world"
  python3 - "$work/run$world/metrics.jsonl" "$world" "$BATCH" "$WARMUP" "$DTYPE" "$(nproc)" <<'PY' >> "$OUT"
import json, statistics, sys
path, world, batch, warmup, dtype, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
steps = [r for r in map(json.loads, open(path)) if r.get("type") == "step"]
timed = [r["seconds"] for r in steps[warmup:]]
print(json.dumps({"bench": "dist_scaling", "world": world, "global_batch": batch, "dtype": dtype,
                  "threads_per_rank": max(1, cores // world), "steps": len(steps),
                  "median_step_s": statistics.median(timed), "step_s": timed,
                  "comm_bytes_per_rank_step": steps[-1].get("comm_bytes", 0)}))
PY
done
