#!/usr/bin/env python3
"""Reference values for a few SmolLM2-135M-Instruct tensors as HF transformers would load them from the GGUF.

Independent of linspec: gguf-py (PyPI `gguf`) reads the file and dequantises (numpy ports of ggml's kernels),
gguf-py's TensorNameMap gives the GGUF name of each HF parameter, and transformers' own GGUF loader class
(transformers.modeling_gguf_pytorch_utils.LlamaTensorProcessor) undoes llama.cpp's Q/K row permutation:
    w.reshape(n_head, head_dim // 2, 2, in).swapaxes(1, 2).reshape(rows, in)
i.e. GGUF row h*head_dim + 2*i + j  ->  HF row h*head_dim + j*head_dim/2 + i, with n_head = num_key_value_heads
for K. For every tensor it records the shape, the xxh64 of the f32 bytes (row-major, little-endian; what
`linspec info --json` reports for model/<name> after `linspec convert`), the sum and a few samples.
Usage: python3 tests/reference/make_smollm2_tensor_goldens.py [path.gguf]
       (default $LINSPEC_SMOLLM2_GGUF or /root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf;
        writes tests/reference/golden/smollm2_tensors.json)
"""
import collections
import json
import os
import sys

import numpy as np
import xxhash
from gguf import GGUFReader, MODEL_ARCH, get_tensor_name_map
from gguf.quants import dequantize
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

DEFAULT = os.environ.get("LINSPEC_SMOLLM2_GGUF", "/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "smollm2_tensors.json")
HF_NAMES = [
    "model.embed_tokens.weight",                   # Q8_0
    "model.layers.0.self_attn.q_proj.weight",      # Q4_1, permuted (9 heads)
    "model.layers.0.self_attn.k_proj.weight",      # Q4_1, permuted (3 KV heads)
    "model.layers.0.self_attn.v_proj.weight",
    "model.layers.17.self_attn.k_proj.weight",
    "model.layers.29.mlp.down_proj.weight",
    "model.layers.29.post_attention_layernorm.weight",  # F32
    "model.norm.weight",
]


def field(reader, key):
    return reader.fields[key].contents()


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    r = GGUFReader(path)
    n_layers = int(field(r, "llama.block_count"))
    cfg = {"num_attention_heads": int(field(r, "llama.attention.head_count")),
           "num_key_value_heads": int(field(r, "llama.attention.head_count_kv"))}
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, n_layers)
    processor = LlamaTensorProcessor(config=cfg)
    by_name = {t.name: t for t in r.tensors}
    out = {"source": os.path.basename(path),
           "census": dict(collections.Counter(t.tensor_type.name for t in r.tensors)),
           "tensor_count": len(r.tensors),
           "tensors": {}}
    for hf in HF_NAMES:
        gname = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        t = by_name[gname]
        w = dequantize(t.data, t.tensor_type).astype(np.float32)  # row-major [rows, cols]
        w = processor.process(w, gname).weights
        w = np.ascontiguousarray(w, dtype="<f4")
        flat = w.reshape(-1)
        idx = [0, 1, 63, 64, flat.size // 2, flat.size - 1]
        linspec_name = "model/" + (hf[len("model."):] if hf.startswith("model.") else hf)
        out["tensors"][linspec_name] = {
            "gguf_name": gname, "ggml_type": t.tensor_type.name, "shape": list(w.shape),
            "xxh64": xxhash.xxh64(w.tobytes(), seed=0).hexdigest(),
            "sum": float(flat.astype(np.float64).sum()),
            "samples": {str(i): float(flat[i]) for i in idx},
        }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {OUT}: census {out['census']}")


if __name__ == "__main__":
    main()
