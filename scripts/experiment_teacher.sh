#!/usr/bin/env bash
# Issue 14's experiment: refine all-MiniLM-L6-v2 against the all-mpnet-base-v2 teacher on the
# demo's lexical chains, with the controls that would expose a false gain. Every row of the
# README's teacher table is one run here; each run directory keeps its command (results.json /
# command.txt), training metrics and evaluation JSON. Selection is on dev only (the trainer keeps
# the best dev checkpoint); test STS is read once per run, at the end.
#
#   bash scripts/experiment_teacher.sh [ROW...]     (default: every row, in the order below)
#
# Rows: base (the untrained student), mpnet (demo defaults with the MPNet teacher; also writes the chains the others reuse),
# self (same chains, teacher = frozen student, the old default), omega0 (plain teacher
# distillation), shuffled (chain order destroyed within each chain, same teacher and loss),
# lr3e5, omega2, tau2-0.1, seed2, seed3 (training seeds for the spread), g1 (chains at g = 1),
# c1000, c2000, c5000 (1,000 / 2,000 / 5,000 chains). The teacher's own scores: bash scripts/eval_baselines.sh mpnet. A finished
# row is skipped, so a killed script picks up at the row it was on.
# Environment: RANKEMB (binary, default build/bin/rankemb), OUT (default runs/exp14), THREADS,
# DTYPE (training dtype, default bfloat16: the rows of 2026-12-04 ran on a CPU with bfloat16
# units; float32 elsewhere), TASKS (what a trained row is evaluated on, default sts), CHAINS (the
# chains of the training rows, default $OUT/mpnet/chains.jsonl, the mpnet row's).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
B="${RANKEMB:-build/bin/rankemb}"
OUT="${OUT:-runs/exp14}"
T=(--threads "${THREADS:-2}")
MINI=.cache/assets/all-MiniLM-L6-v2
MPNET=.cache/assets/all-mpnet-base-v2
CHAINS="${CHAINS:-$OUT/mpnet/chains.jsonl}"
# The demo's training settings, spelled out for `rankemb train` (a row overrides some by name:
# LR=, OMEGA=, SEED=, TAU2=).
train_flags() {
  echo --lr "${LR:-1e-5}" --omega "${OMEGA:-0.5}" --seed "${SEED:-2024}" --tau2 "${TAU2:-0.05}" --dtype "${DTYPE:-bfloat16}" --eval-steps 25
}
mkdir -p "$OUT"

log() { echo "[experiment] $*" >&2; }

# [LR=.. OMEGA=.. SEED=.. TAU2=..] train_row NAME CHAINS TEACHER: train, then evaluate STS
# (SentEval text).
train_row() {
  local name="$1" chains="$2" teacher="$3"
  local dir="$OUT/$name"
  [ -f "$dir/eval.json" ] && { log "$name: done"; return; }
  mkdir -p "$dir"
  local cmd=("$B" "${T[@]}" train --student "$MINI" --teacher "$teacher" --chains "$chains" -o "$dir/train"
             $(train_flags))
  echo "${cmd[*]}" > "$dir/command.txt"
  log "$name: ${cmd[*]}"
  # --resume continues a killed row from its checkpoint (and starts at step 0 when it has none);
  # each part's time is appended, experiment_table.py sums them.
  /usr/bin/time -a -f "%e s" -o "$dir/train.time" "${cmd[@]}" --resume
  "$B" "${T[@]}" eval -m "$dir/train/best" --tasks "${TASKS:-sts}" --json "$dir/eval.json.tmp" > "$dir/eval.txt"
  mv "$dir/eval.json.tmp" "$dir/eval.json"
}

# demo_row NAME [demo flags...]: the whole pipeline (its chains, its training, its evaluation).
demo_row() {
  local name="$1"; shift
  local dir="$OUT/$name"
  [ -f "$dir/results.json" ] && { log "$name: done"; return; }
  local cmd=("$B" "${T[@]}" demo -o "$dir" --teacher "$MPNET" "$@")
  log "$name: ${cmd[*]}"
  /usr/bin/time -f "%e s" -o "$OUT/$name.time" "${cmd[@]}"
}

row() {
  case "$1" in
    base) [ -f "$OUT/base/eval.json" ] || { mkdir -p "$OUT/base"
            "$B" "${T[@]}" eval -m "$MINI" --tasks sts --json "$OUT/base/eval.json" > "$OUT/base/eval.txt"; } ;;
    mpnet) demo_row mpnet ;;
    self) train_row self "$CHAINS" "$MINI" ;;
    omega0) OMEGA=0 train_row omega0 "$CHAINS" "$MPNET" ;;
    shuffled) [ -f "$OUT/shuffled.jsonl" ] || "$B" chains shuffle "$CHAINS" -o "$OUT/shuffled.jsonl" --seed 1
              train_row shuffled "$OUT/shuffled.jsonl" "$MPNET" ;;
    lr3e5) LR=3e-5 train_row lr3e5 "$CHAINS" "$MPNET" ;;
    omega2) OMEGA=2 train_row omega2 "$CHAINS" "$MPNET" ;;
    tau2-0.1) TAU2=0.1 train_row tau2-0.1 "$CHAINS" "$MPNET" ;;
    seed2) SEED=2 train_row seed2 "$CHAINS" "$MPNET" ;;
    seed3) SEED=3 train_row seed3 "$CHAINS" "$MPNET" ;;
    g1) demo_row g1 --guidance 1 --judge-chains 0 ;;
    c1000) demo_row c1000 --chains 1000 --judge-chains 0 ;;
    c2000) demo_row c2000 --chains 2000 --judge-chains 0 ;;
    # Dev every 50 steps instead of 25: ~3,900 steps would spend ~35 min on dev evaluations alone.
    c5000) demo_row c5000 --chains 5000 --judge-chains 0 --eval-steps 50 ;;
    *) echo "unknown row $1" >&2; exit 2 ;;
  esac
}

ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(base mpnet shuffled omega0 seed2 seed3 lr3e5 tau2-0.1 omega2 self c1000 g1 c2000)
for r in "${ROWS[@]}"; do row "$r"; done
log "all rows done: python3 scripts/experiment_table.py $OUT"
