#!/usr/bin/env python3
"""Writes tests/fixtures/text/corpus.jsonl: the sentences every tokenizer parity fixture covers.

Real sentences are stored as references into the data directory (never copied into the repo):
{"file": "stsb/stsb-test.tsv", "line": 2, "field": 5}  (line 1-based, field 0-based tab-split,
field -1 = whole line). Hand-picked hard cases are stored literally: {"text": "..."}.
The C++ tests resolve references with tests/common/corpus.h; regen scripts with load_corpus() here.

Usage: python3 scripts/regen/corpus.py [--data-dir ../shared/data]
"""
import argparse, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "text", "corpus.jsonl")
DEFAULT_DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))

# (file, first data line (1-based), number of lines, fields to take)
SELECTION = [
    ("stsb/stsb-test.tsv", 2, 400, [5, 6]),
    ("sick/SICK_test_annotated.txt", 2, 300, [1, 2]),
    ("nli/snli_seed_sentences.txt", 1, 300, [-1]),
    ("sts12/sts12.tsv", 2, 60, [2]),
    ("sts13/sts13.tsv", 2, 60, [2]),
    ("sts14/sts14.tsv", 2, 60, [2]),
    ("sts15/sts15.tsv", 2, 60, [2]),
    ("sts16/sts16.tsv", 2, 60, [2, 3]),
    ("senteval/STS/STS12-en-test/STS.input.MSRpar.txt", 1, 100, [0, 1]),
]

LONG = "The quick brown fox jumps over the lazy dog near the riverbank. " * 80

HARD_CASES = [
    "", " ", "   leading and trailing spaces   ", "a    b     c", "tab\tseparated\tvalues",
    "line one\nline two\n\nline four", "windows\r\nline\r\nendings", "\n\n\n", "trailing newline\n",
    "Crème brûlée à la carte, naïve café, façade, São Paulo, Ångström, Zürich.",
    "ÀÉÎÕÜ àéîõü ÇÑ çñ ß ẞ ø Ø œ Œ æ Æ ł Ł", "e\u0301 combining acute, a\u0308 combining diaeresis",
    "我爱北京天安门。", "日本語のテキストとカタカナ、ひらがな。", "한국어 문장입니다.", "混合 mixed 文本 text 123",
    "I love 🍕 and 🎉!", "family: 👨\u200d👩\u200d👧\u200d👦, flags: 🇫🇷🇯🇵, skin: 👍🏽", "😀😃😄😁😆😅🤣😂",
    "0 1 12 123 1234 12345 1234567890 3.14159 -42 +7 1,000,000 10^9 2nd 3rd 4th",
    "Phone: +1 (555) 123-4567, year 2024, 50% off, $19.99, €5, £3, ¥100",
    "Hello!!! What?!? Wait... really??? (yes) [no] {maybe} <tag> \"quoted\" 'single'",
    "don't can't won't I'm you're we've they'll she'd it's O'Neil rock'n'roll",
    "HeLLo WoRLD, UPPER CASE, lower case, Title Case, camelCaseWord, snake_case_word",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "Ελληνικά κείμενα, Русский текст, עברית, العربية, हिन्दी नमस्ते, ภาษาไทย",
    "math: ∑∫√∞≈≠≤≥ ±×÷ α+β=γ, arrows → ← ↑ ↓, bullets • ◦ ▪",
    "non\u00a0breaking\u00a0space, ideographic\u3000space, zero\u200bwidth, soft\u00adhyphen",
    "control\u0007bell and \u001bescape and\u0000null",
    "[CLS] [SEP] [PAD] [UNK] [MASK] <s> </s> <unk> <pad> <|endoftext|> <|begin_of_text|> <|im_start|> <|im_end|>",
    "   \t \n  mixed   whitespace\t\t\n  runs  ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "a", ".", "!?", "A.", "-", "--", "...", "''", "``quoted``",
    LONG,
]


def resolve(entry, data_dir):
    if "text" in entry:
        return entry["text"]
    path = os.path.join(data_dir, entry["file"])
    with open(path, encoding="utf-8", newline="") as f:
        for i, line in enumerate(f, 1):
            if i == entry["line"]:
                line = line.rstrip("\n").rstrip("\r")
                return line if entry["field"] < 0 else line.split("\t")[entry["field"]]
    raise SystemExit(f"{path}: has no line {entry['line']}")


def load_corpus(data_dir=DEFAULT_DATA):
    """The corpus texts in fixture order."""
    with open(OUT, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f if l.strip() and not l.startswith("#")]
    # Resolve file references with one pass per file.
    cache = {}
    texts = []
    for e in rows:
        if "text" in e:
            texts.append(e["text"])
            continue
        if e["file"] not in cache:
            with open(os.path.join(data_dir, e["file"]), encoding="utf-8", newline="") as f:
                cache[e["file"]] = [l.rstrip("\n").rstrip("\r") for l in f]
        line = cache[e["file"]][e["line"] - 1]
        texts.append(line if e["field"] < 0 else line.split("\t")[e["field"]])
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=DEFAULT_DATA)
    args = ap.parse_args()
    rows = []
    for file, first, count, fields in SELECTION:
        for line in range(first, first + count):
            for field in fields:
                e = {"file": file, "line": line, "field": field}
                resolve(e, args.data_dir)  # fail now if the data lacks the line
                rows.append(e)
    rows += [{"text": t} for t in HARD_CASES]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w", encoding="utf-8") as f:
        f.write("# generated by scripts/regen/corpus.py; real sentences are references into the data dir\n")
        for e in rows:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {len(rows)} entries to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
