#!/usr/bin/env bash
# Checks that PyPI's torchrun starts rankemb ranks as the README documents: a 2-rank training
# under torchrun must end with a checkpoint byte-identical to `rankemb train --nproc 2` (same
# ranks, same one thread each). Not part of the test suite: it downloads torch (~2 GB with its
# CUDA libraries) into .venv-dist. torchrun must be the release Debian's libtorch is (1.13.1):
# the store protocol changed in torch 2.x (README "Data-parallel training").
#   bash scripts/check-torchrun.sh [BUILD_DIR]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO/build}/bin/rankemb"
VENV="$REPO/.venv-dist"
TORCH_VERSION=1.13.1
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
args=(train --student "${RANKEMB_CACHE_DIR:-$REPO/.cache}/assets/all-MiniLM-L6-v2"
      --chains "$REPO/tests/fixtures/train/tiny_chains.jsonl" --data-dir "$REPO/tests/fixtures/eval/data"
      --batch 3 --max-steps 8 --eval-steps 4 --lr 1e-5)
"$BIN" -q "${args[@]}" -o "$work/nproc" --nproc 2
# --redirects/--tee: torch 1.13's torchrun crashes on Python 3.11 with its default ("0").
OMP_NUM_THREADS=1 "$VENV/bin/torchrun" --nproc_per_node 2 --redirects 2 --tee 2 --log_dir "$work/logs" \
  --no_python "$BIN" -q "${args[@]}" -o "$work/torchrun"
for f in checkpoint/model.safetensors best/model.safetensors; do
  cmp "$work/nproc/$f" "$work/torchrun/$f"
done
echo "torchrun $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'): 2 ranks, checkpoint and best/ byte-identical to --nproc 2"
