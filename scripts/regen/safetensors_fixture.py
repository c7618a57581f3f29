#!/usr/bin/env python3
"""Writes tests/fixtures/io/mixed.safetensors with the reference safetensors library and
tests/fixtures/io/mixed.expected.json with every tensor's values, for tests/unit/io/safetensors_test.cpp.

Run from the repo root: .venv-ref/bin/python scripts/regen/safetensors_fixture.py
(safetensors==0.4.5, numpy; `pip install safetensors==0.4.5 numpy` into .venv-ref).
numpy has no bfloat16, so BF16 data is made by rounding float32 bit patterns (round to nearest
even) and handed to the library's raw serialize_file API, which the numpy front end also uses.
"""
import json
import os

import numpy as np
import safetensors
from safetensors import serialize_file

OUT_DIR = "tests/fixtures/io"
FILE = os.path.join(OUT_DIR, "mixed.safetensors")
EXPECTED = os.path.join(OUT_DIR, "mixed.expected.json")
# One entry only: the library writes several in Rust hash-map order, which is not reproducible.
METADATA = {"format": "pt"}


def bf16_bits(values):
    f = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (f + 0x7FFF + ((f >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def main():
    rng = np.random.default_rng(20240611)
    arrays = {
        "encoder.layer.0.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "encoder.layer.0.bias": np.array([0.5, -1.25, 3.0e-39, 1.0e30], dtype=np.float32),  # incl. a subnormal
        "half.values": np.array([1.0, -0.0, 65504.0, 6.0e-8, 0.333251953125, -2.5], dtype=np.float16).reshape(2, 3),
        "half.vector": rng.standard_normal(5).astype(np.float16),
        "scalar": np.array(2.718281828, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "ids": np.array([1, -2, 1 << 40], dtype=np.int64),
    }
    bf16_values = rng.standard_normal((2, 2, 2)).astype(np.float32)
    bf16 = bf16_bits(bf16_values)

    # The raw API takes numpy-style dtype names; the file stores F32/F16/BF16/I64.
    tensors = {name: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tobytes()} for name, a in arrays.items()}
    tensors["bf16.weight"] = {"dtype": "bfloat16", "shape": list(bf16.shape), "data": bf16.tobytes()}
    file_dtype = {"float32": "F32", "float16": "F16", "int64": "I64", "bfloat16": "BF16"}
    serialize_file(tensors, FILE, metadata=METADATA)

    # Read back through the library (numpy has no BF16, so that one is checked by the C++ test).
    with safetensors.safe_open(FILE, framework="np") as f:
        assert f.metadata() == METADATA
        for name in arrays:
            assert np.array_equal(f.get_tensor(name), arrays[name]), name

    expected = {
        "generated_by": f"scripts/regen/safetensors_fixture.py (safetensors=={safetensors.__version__}, numpy=={np.__version__})",
        "metadata": METADATA,
        "tensors": {},
    }
    for name, a in arrays.items():
        values = a.reshape(-1).tolist() if a.dtype == np.int64 else a.astype(np.float32).reshape(-1).tolist()
        expected["tensors"][name] = {"dtype": file_dtype[tensors[name]["dtype"]], "shape": list(a.shape), "values": values}
    expected["tensors"]["bf16.weight"] = {"dtype": "BF16", "shape": list(bf16.shape),
                                          "values": bf16_to_f32(bf16).reshape(-1).tolist()}
    with open(EXPECTED, "w") as f:
        json.dump(expected, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print(f"wrote {FILE} ({os.path.getsize(FILE)} bytes) and {EXPECTED}")


if __name__ == "__main__":
    main()
