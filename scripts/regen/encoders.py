#!/usr/bin/env python3
"""Encoder parity fixtures from the real implementations (transformers, sentence-transformers).

  tests/fixtures/models/tiny-bert-a/        BertModel, 2 layers, hidden 32, 4 heads, type_vocab 2, pooler
  tests/fixtures/models/tiny-bert-b/        BertModel, 3 layers, hidden 48, 6 heads, intermediate 80,
                                            no pooler, weights saved with a SimCSE-style "bert." prefix
  tests/fixtures/models/tiny-roberta/       RobertaModel, 2 layers, hidden 32, 4 heads, pad id 1, pooler
  tests/fixtures/models/tiny-mpnet-a/       MPNetModel, 2 layers, hidden 32, 4 heads, 32 relative buckets, pooler
  tests/fixtures/models/tiny-mpnet-b/       MPNetModel, 3 layers, hidden 48, 6 heads, 40 buckets (transformers
                                            still buckets into 32), no pooler, weights under "mpnet."; one row
                                            is 140 tokens long, so offsets beyond 128 hit the last bucket
      config.json + model.safetensors (seeded random weights, widened so attention is not uniform)
      + vocab.txt for the BERT ones (so load_encoder() finds a tokenizer).
  tests/fixtures/models/tiny_encoders.expected.jsonl
      one line per model: padded input_ids/attention_mask and transformers' outputs for them
      (last_hidden_state, pooler_output or null, hidden_states), plus the SimCSE poolers
      (simcse/models.py formulas) over those outputs: {"pooled": {"cls", "cls_before_pooler",
      "avg", "avg_first_last", "avg_top2"}}. Values to 8 significant digits.
  tests/fixtures/models/minilm_500.expected.jsonl
      sentence-transformers embeddings (all-MiniLM-L6-v2, normalized by its Normalize module,
      batch 32) of sentence1 of the first 500 lines of ../shared/data/stsb/stsb-test.tsv:
      {"index", "text", "embedding"} with 7 significant digits. The header also records the
      cosine-similarity Spearman x 100 on all 1,379 STS-B test pairs.
  tests/fixtures/models/mpnet_500.expected.jsonl
      the same for all-mpnet-base-v2 (.cache/assets/all-mpnet-base-v2).

Reference venv (Debian's python3-torch 1.13 is used from the system site packages):
  /usr/bin/python3 -m venv --system-site-packages .venv-torch
  .venv-torch/bin/pip install transformers==4.44.2 sentence-transformers==3.0.1
(the newest releases that still run on torch 1.13). Run from the repo root:
  .venv-torch/bin/python scripts/regen/encoders.py [tiny] [minilm] [mpnet]
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import scipy
import scipy.stats
import torch

import sentence_transformers
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel, RobertaConfig, RobertaModel

torch.set_num_threads(2)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "models")
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
ASSETS = os.path.join(REPO, ".cache", "assets")

VERSIONS = f"transformers=={transformers.__version__}, sentence-transformers=={sentence_transformers.__version__}, torch=={torch.__version__}"


def sig(x, digits):
    """Rounds a nested list of floats to `digits` significant digits (as JSON numbers)."""
    if isinstance(x, list):
        return [sig(v, digits) for v in x]
    return float(f"{x:.{digits}g}")


def widen(model, seed):
    """Re-draws every parameter with wider spreads than HF's init (std 0.02), so that attention
    patterns, LayerNorm affine terms and the pooler all matter in the comparison."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or "LayerNorm" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(p.shape[1])))


TINY = [
    # name, family, config kwargs, pooler, weight-name prefix, input rows (before padding)
    ("tiny-bert-a", "bert",
     dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
          max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0),
     True, "", [[2, 17, 45, 99, 8, 3], [2, 5, 3], [2, 60, 61, 62, 63, 64, 65, 66, 67, 3], [2, 3]]),
    ("tiny-bert-b", "bert",
     dict(vocab_size=100, hidden_size=48, num_hidden_layers=3, num_attention_heads=6, intermediate_size=80,
          max_position_embeddings=32, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=0),
     False, "bert.", [[2, 11, 12, 13, 3], [2, 40, 41, 42, 43, 44, 45, 46, 3], [2, 70, 3]]),
    ("tiny-roberta", "roberta",
     dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
          max_position_embeddings=40, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
          eos_token_id=2),
     True, "", [[0, 30, 31, 32, 33, 2], [0, 100, 2], [0, 5, 6, 7, 8, 9, 10, 11, 119, 2]]),
    ("tiny-mpnet-a", "mpnet",
     dict(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
          max_position_embeddings=40, layer_norm_eps=1e-5, relative_attention_num_buckets=32),
     True, "", [[0, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 2], [0, 70, 2],
                [0, 5, 6, 7, 8, 9, 10, 2]]),
    ("tiny-mpnet-b", "mpnet",
     dict(vocab_size=90, hidden_size=48, num_hidden_layers=3, num_attention_heads=6, intermediate_size=64,
          max_position_embeddings=150, layer_norm_eps=1e-12, relative_attention_num_buckets=40, hidden_act="gelu_new"),
     False, "mpnet.", [[0] + [5 + (i * 7) % 80 for i in range(138)] + [2], [0, 11, 12, 2]]),
]


def write_vocab(path, size):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, size)]
    with open(path, "w") as f:
        f.write("\n".join(words) + "\n")


def write_mpnet_tokenizer(path, size):
    """A tokenizer.json shaped like all-mpnet-base-v2's (WordPiece, BertNormalizer lowercase,
    BertPreTokenizer, RobertaProcessing <s> .. </s>, pad <pad> = 1); returns texts and the ids the
    `tokenizers` library gives them."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "[UNK]", ",", "."] +
                                        [f"w{i}" for i in range(7, size - 2)] + ["##s", "<mask>"])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = decoders.WordPiece()
    from tokenizers import AddedToken
    tok.add_special_tokens(["<s>", "<pad>", "</s>", AddedToken("<mask>", lstrip=True, special=True)])
    tok.save(path)
    texts = ["W7 w8, w9.", "w10s w11", "zz w12 <mask>", ""]
    return {"texts": texts, "ids": [tok.encode(t).ids for t in texts]}


def tiny():
    lines = []
    for seed, (name, family, kwargs, with_pooler, prefix, rows) in enumerate(TINY):
        torch.manual_seed(1000 + seed)
        if family == "bert":
            config = BertConfig(**kwargs)
            model = BertModel(config, add_pooling_layer=with_pooler)
        elif family == "roberta":
            config = RobertaConfig(**kwargs)
            model = RobertaModel(config, add_pooling_layer=with_pooler)
        else:
            config = MPNetConfig(**kwargs)
            model = MPNetModel(config, add_pooling_layer=with_pooler)
        widen(model, 2000 + seed)
        model.eval()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        config.architectures = [type(model).__name__]
        config.save_pretrained(d)
        state = {prefix + k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")
                 and not k.endswith("token_type_ids")}
        save_file(state, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        if family == "bert":
            write_vocab(os.path.join(d, "vocab.txt"), kwargs["vocab_size"])
        tokenized = None
        if name == "tiny-mpnet-a":
            tokenized = write_mpnet_tokenizer(os.path.join(d, "tokenizer.json"), kwargs["vocab_size"])

        width = max(len(r) for r in rows)
        pad = config.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states
        last = out.last_hidden_state
        m = mask.unsqueeze(-1).float()

        def avg(h):
            return (h * m).sum(1) / mask.sum(-1).unsqueeze(-1)
        # SimCSE's poolers (simcse/models.py / evaluation.py).
        pooled = {
            "cls": (out.pooler_output if out.pooler_output is not None else last[:, 0]),
            "cls_before_pooler": last[:, 0],
            "avg": avg(last),
            "avg_first_last": avg((hs[1] + hs[-1]) / 2.0),
            "avg_top2": avg((hs[-2] + hs[-1]) / 2.0),
        }
        lines.append({
            "model": name,
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
            "last_hidden_state": sig(last.tolist(), 8),
            "pooler_output": sig(out.pooler_output.tolist(), 8) if out.pooler_output is not None else None,
            "hidden_states": [sig(h.tolist(), 8) for h in hs],
            "pooled": {k: sig(v.tolist(), 8) for k, v in pooled.items()},
        })
        if tokenized:
            lines[-1]["tokenized"] = tokenized
        print(f"{name}: {os.path.getsize(os.path.join(d, 'model.safetensors'))} bytes of weights", file=sys.stderr)
    path = os.path.join(OUT, "tiny_encoders.expected.jsonl")
    with open(path, "w") as f:
        f.write(f"# generated by scripts/regen/encoders.py ({VERSIONS}; seeded random weights)\n")
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


def read_stsb(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            fields = line.rstrip("\n").split("\t")
            pairs.append((fields[5], fields[6], float(fields[4])))
    return pairs


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def st_reference(asset, fixture):
    """sentence-transformers embeddings of 500 STS-B test sentences and the STS-B test Spearman."""
    from sentence_transformers import SentenceTransformer
    model_dir = os.path.join(ASSETS, asset)
    model = SentenceTransformer(model_dir, device="cpu")
    pairs = read_stsb(os.path.join(DATA, "stsb", "stsb-test.tsv"))
    first = [p[0] for p in pairs[:500]]
    emb = model.encode(first, batch_size=32, convert_to_numpy=True)

    e1 = model.encode([p[0] for p in pairs], batch_size=32, convert_to_numpy=True)
    e2 = model.encode([p[1] for p in pairs], batch_size=32, convert_to_numpy=True)
    cos = (e1 * e2).sum(1) / (np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1))
    rho = scipy.stats.spearmanr(cos, [p[2] for p in pairs]).correlation * 100
    print(f"{asset}: STS-B test ({len(pairs)} pairs) cosine Spearman x 100: {rho:.4f}", file=sys.stderr)

    weights = sha256(os.path.join(model_dir, "model.safetensors"))
    path = os.path.join(OUT, fixture)
    with open(path, "w") as f:
        f.write(f"# generated by scripts/regen/encoders.py ({VERSIONS}, scipy=={scipy.__version__}; "
                f"{asset} model.safetensors sha256 {weights}; stsb-test.tsv sentence1 of the first 500 pairs; "
                f"batch 32) stsb_test_spearman_cosine={rho:.4f}\n")
        for i, (text, v) in enumerate(zip(first, emb)):
            f.write(json.dumps({"index": i, "text": text, "embedding": sig(v.tolist(), 7)},
                               ensure_ascii=False, separators=(",", ":")) + "\n")


def main():
    what = sys.argv[1:] or ["tiny", "minilm", "mpnet"]
    if "tiny" in what:
        tiny()
    if "minilm" in what:
        st_reference("all-MiniLM-L6-v2", "minilm_500.expected.jsonl")
    if "mpnet" in what:
        st_reference("all-mpnet-base-v2", "mpnet_500.expected.jsonl")


if __name__ == "__main__":
    main()
