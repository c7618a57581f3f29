#!/usr/bin/env bash
# The README's evaluation baselines: every table row comes from one of these commands. Each run
# writes its table (.txt, with the per-group wall times on the last line), its full JSON and the
# command's own wall time (/usr/bin/time) under $OUT (default .cache/eval-baselines).
#   bash scripts/eval_baselines.sh [minilm|mpnet|use-lite|all] [groups...]
# groups: sts-senteval sts-raw rest (rest = TREC-QA + the 7 transfer tasks). Default: all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RANKEMB:-build/bin/rankemb}
OUT=${OUT:-.cache/eval-baselines}
mkdir -p "$OUT"
which=${1:-all}
shift || true
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(sts-senteval sts-raw rest)

declare -A MODEL=([minilm]=.cache/assets/all-MiniLM-L6-v2 [mpnet]=.cache/assets/all-mpnet-base-v2 [use-lite]=.cache/models/use-lite)
models=(minilm mpnet use-lite)
[ "$which" != all ] && models=("$which")

for m in "${models[@]}"; do
  for g in "${groups[@]}"; do
    case $g in
      sts-senteval) args=(--tasks sts,dev --text senteval) ;;
      sts-raw) args=(--tasks sts,dev --text raw) ;;
      rest) args=(--tasks trecqa,transfer) ;;
      *) echo "unknown group $g" >&2; exit 2 ;;
    esac
    echo "== $m $g: $BIN eval -m ${MODEL[$m]} ${args[*]}" >&2
    /usr/bin/time -f "%e s wall, %U s user, %M KiB max RSS" -o "$OUT/$m.$g.time" \
      "$BIN" eval -m "${MODEL[$m]}" "${args[@]}" --json "$OUT/$m.$g.json" > "$OUT/$m.$g.txt"
    cat "$OUT/$m.$g.txt" "$OUT/$m.$g.time"
  done
done
