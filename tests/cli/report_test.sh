#!/usr/bin/env bash
# The HTML report in a real browser. Two toy demo runs (seeds 1 and 2) and a g = 1 chain file,
# `rankemb report` of all three, rendered by headless Chromium (Debian `chromium`): the DOM it
# builds must hold every section, and every number cell (data-key) must equal the value the test
# works out from the run's own JSON files (results.json, chain_stats.json, train/metrics.jsonl),
# which the browser never sees. The page must load nothing from anywhere. A screenshot is saved
# ($RANKEMB_REPORT_SCREENSHOT, default <build>/report-screenshot.png; the README's picture is one).
# Usage: report_test.sh RANKEMB_BIN DATA_DIR CACHE_DIR
set -euo pipefail
BIN="$1"; DATA="$2"; CACHE="$3"
MODEL="$CACHE/assets/all-MiniLM-L6-v2"
[ -f "$MODEL/model.safetensors" ] || { echo "FAIL: $MODEL missing (bash scripts/prepare.sh fetches it)"; exit 1; }
command -v chromium > /dev/null || { echo "FAIL: chromium missing (bash scripts/install-deps.sh installs it)"; exit 1; }
SHOT="${RANKEMB_REPORT_SCREENSHOT:-$(dirname "$(dirname "$BIN")")/report-screenshot.png}"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
export RANKEMB_DATA_DIR="$DATA" RANKEMB_CACHE_DIR="$CACHE"
demo() { "$BIN" -q --threads 2 demo --chains 8 --steps 6 --max-steps 8 --eval-steps 4 --judge-chains 8 --tasks stsb,sickr "$@"; }
demo -o "$TMP/seed1" --seed 1 > /dev/null
demo -o "$TMP/seed2" --seed 2 > /dev/null
[ -s "$TMP/seed1/report.html" ] || { echo "FAIL: the demo wrote no report.html"; exit 1; }
head -n 8 "$DATA/nli/snli_seed_sentences.txt" > "$TMP/seeds.txt"
"$BIN" -q generate --backend lexical --seeds "$TMP/seeds.txt" --steps 6 --guidance 1 -o "$TMP/g1.jsonl" > /dev/null
"$BIN" -q report "$TMP/seed1" "$TMP/seed2" --chains "$TMP/g1.jsonl" --judge "$MODEL" -o "$TMP/report.html" > "$TMP/out.txt"
grep -qx "$TMP/report.html" "$TMP/out.txt" || { echo "FAIL: report did not print its path"; cat "$TMP/out.txt"; exit 1; }

browser() { timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "$@" 2> "$TMP/chromium.err"; }
browser --dump-dom "file://$TMP/report.html" > "$TMP/dom.html" || { echo "FAIL: chromium"; tail "$TMP/chromium.err"; exit 1; }
browser --screenshot="$SHOT" --window-size=1200,2600 "file://$TMP/report.html" > /dev/null
browser --dump-dom "file://$TMP/seed1/report.html" > "$TMP/dom1.html"

python3 - "$TMP" "$SHOT" <<'PY'
import html.parser, json, math, sys
tmp, shot = sys.argv[1], sys.argv[2]

class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.ids, self.tags, self.key = {}, set(), {}, None
        self.bad_refs = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a: self.ids.add(a["id"])
        for name in ("src", "href"):
            if name in a and not a[name].startswith("#"): self.bad_refs.append((tag, name, a[name]))
        if tag == "link" or tag == "script": self.bad_refs.append((tag, "", ""))
        self.key = a.get("data-key")
        if self.key is not None: self.cells[self.key] = ""
    def handle_data(self, data):
        if self.key is not None: self.cells[self.key] += data
    def handle_endtag(self, tag):
        self.key = None

def parse(path):
    d = Dom(); d.feed(open(path, encoding="utf-8").read()); return d

dom, dom1 = parse(f"{tmp}/dom.html"), parse(f"{tmp}/dom1.html")
fails = []
for d, name in ((dom, "report.html"), (dom1, "seed1/report.html")):
    for section in ("chains", "training", "evaluation"):
        if section not in d.ids: fails.append(f"{name}: no section #{section}")
    if d.tags.get("svg", 0) < 3: fails.append(f"{name}: {d.tags.get('svg', 0)} svg pictures")
    if d.bad_refs: fails.append(f"{name}: loads something: {d.bad_refs[:3]}")

def want(key, value):
    got = dom.cells.get(key)
    if got != value: fails.append(f"{key}: page {got!r}, files {value!r}")

pct = lambda x: "-" if x is None else f"{x * 100:.2f}"
delta = lambda a, b: "-" if a is None or b is None else f"{(b - a) * 100:+.2f}"
runs = [json.load(open(f"{tmp}/seed{s}/results.json")) for s in (1, 2)]
checked = 0
for i, r in enumerate(runs):
    for group in ("sts",):
        for t, b in zip(r["refined"][group]["tasks"], r["base"][group]["tasks"]):
            k = f"run{i}.{group}.{t['name']}"
            want(k + ".base", pct(b["spearman"])); want(k + ".refined", pct(t["spearman"]))
            want(k + ".delta", delta(b["spearman"], t["spearman"])); checked += 3
        want(f"run{i}.{group}.mean.delta", delta(r["base"][group]["mean_spearman"], r["refined"][group]["mean_spearman"]))
    evals = [json.loads(l) for l in open(f"{tmp}/seed{i + 1}/train/metrics.jsonl") if '"eval"' in l]
    best = [e for e in evals if e["best"]][-1]
    want(f"run{i}.train.best_step", str(best["step"]))
    want(f"run{i}.train.best_dev", pct(best["score"]))
    want(f"run{i}.train.steps", str(sum(1 for l in open(f"{tmp}/seed{i + 1}/train/metrics.jsonl") if '"step"' in l and '"eval"' not in l)))
    checked += 3
ds = [(r["refined"]["sts"]["mean_spearman"] - r["base"]["sts"]["mean_spearman"]) * 100 for r in runs]
m = sum(ds) / 2
want("spread.delta_mean", f"{m:+.2f}")
want("spread.delta_sd", f"{math.sqrt(sum((d - m) ** 2 for d in ds)):.2f}")
# Chains: columns seed1, seed2 (their chain_stats.json), then g1.jsonl (counted here from the file).
for i, s in enumerate((1, 2)):
    st = json.load(open(f"{tmp}/seed{s}/chain_stats.json"))
    want(f"chains{i}.kept", str(st["kept"])); want(f"chains{i}.dropped", str(st["dropped"]))
    want(f"chains{i}.monotonicity", f"{st['drift']['monotonicity']:.4f}"); checked += 3
g1 = [json.loads(l) for l in open(f"{tmp}/g1.jsonl")]
want("chains2.chains", str(len(g1)))
want("chains2.kept", str(sum(c["kept"] for c in g1)))
checked += 4  # the two spread cells and the two g = 1 counts
if fails:
    print("FAIL:\n  " + "\n  ".join(fails)); sys.exit(1)
png = open(shot, "rb").read()
if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 20000: print(f"FAIL: screenshot {shot}: {len(png)} bytes"); sys.exit(1)
print(f"PASS: chromium rendered both reports; {checked} numbers equal the JSON files; screenshot {shot} ({len(png)} bytes)")
PY
