"""Prints the USE-Lite TF.js graph (model.json) as one line per node, to study the graph when
porting it (src/rankemb/models/arch/use_lite.cpp). Names are shortened by stripping the common
module prefixes; weights from the manifest are marked with their shape and dtype; small constants
(int32 tensors and float scalars) are printed with their values, read from the shards.

usage: python3 scripts/regen/use_lite_graph.py [.cache/assets/use-lite/dist] > /tmp/use_lite_graph.txt
"""
import json
import os
import struct
import sys

DIST = sys.argv[1] if len(sys.argv) > 1 else ".cache/assets/use-lite/dist"
PREFIXES = ("module_apply_default/Encoder_en/KonaTransformer/", "module_apply_default/Encoder_en/",
            "module/Encoder_en/KonaTransformer/", "module/Encoder_en/", "module_apply_default/")


def short(name):
    name = name.lstrip("^")
    for p in PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def main():
    with open(os.path.join(DIST, "model.json")) as f:
        model = json.load(f)
    group = model["weightsManifest"][0]
    data = b"".join(open(os.path.join(DIST, p), "rb").read() for p in group["paths"])
    weights, offset = {}, 0
    for w in group["weights"]:
        n = 1
        for d in w["shape"]:
            n *= d
        size = 4 * n
        chunk = data[offset:offset + size]
        offset += size
        fmt = "<%d%s" % (n, "i" if w["dtype"] == "int32" else "f")
        values = struct.unpack(fmt, chunk) if n <= 16 else None
        weights[w["name"]] = (w["shape"], w["dtype"], values)
    print("# shard bytes", len(data), "manifest bytes", offset)
    for node in model["modelTopology"]["node"]:
        extra = ""
        if node["name"] in weights:
            shape, dtype, values = weights[node["name"]]
            extra = " %s %s%s" % (dtype, shape, "" if values is None else " = %s" % (list(values),))
        attrs = {k: v for k, v in node.get("attr", {}).items() if k not in ("T", "dtype", "Tidx", "Tshape", "Index", "Tparams", "Tindices", "Taxis", "_output_shapes", "value")}
        print("%-22s %s <- %s%s%s" % (node["op"], short(node["name"]), ", ".join(short(i) for i in node.get("input", [])),
                                      extra, " " + json.dumps(attrs) if attrs else ""))


if __name__ == "__main__":
    main()
