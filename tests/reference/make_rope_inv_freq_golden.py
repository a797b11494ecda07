#!/usr/bin/env python3
"""RoPE inverse frequencies from HF transformers' own rope init functions (modeling_rope_utils), in float32.

Needs torch: run with Debian's python3 (python3-torch) and the PyPI transformers on sys.path, e.g.
    /usr/bin/python3 tests/reference/make_rope_inv_freq_golden.py [path/to/site-packages/with/transformers]
transformers >= 5 disables its torch integration for torch < 2.6 and then leaves `torch` undefined inside
modeling_rope_utils; the functions themselves only need basic tensor ops, so the module is handed torch here.
"default" RoPE is computed through the "linear" function with factor 1.0 (an exact division).
Writes tests/reference/golden/rope_inv_freq.json.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
site = sys.argv[1] if len(sys.argv) > 1 else "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages"
sys.path.insert(0, site)
import torch  # noqa: E402
import transformers.modeling_rope_utils as rope_utils  # noqa: E402
from transformers import LlamaConfig  # noqa: E402

rope_utils.torch = torch
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "rope_inv_freq.json")

CASES = [
    # name, head_dim, theta, scaling (None = default)
    ("default_theta1e4_d64", 64, 10000.0, None),
    ("smollm2_theta1e5_d64", 64, 100000.0, None),
    ("linear_x4_d128", 128, 10000.0, {"rope_type": "linear", "factor": 4.0}),
    ("llama31_d128", 128, 500000.0, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ("llama32_d64", 64, 500000.0, {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ("tiny_llama3_d8", 8, 500.0, {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
]


def main():
    cases = []
    for name, head_dim, theta, scaling in CASES:
        params = dict(scaling) if scaling else {"rope_type": "linear", "factor": 1.0}
        cfg = LlamaConfig(hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim, rope_theta=theta,
                          rope_scaling=params, max_position_embeddings=131072)
        inv, _ = rope_utils.ROPE_INIT_FUNCTIONS[params["rope_type"]](cfg, "cpu")
        assert inv.dtype == torch.float32
        cases.append({"name": name, "head_dim": head_dim, "rope_theta": theta,
                      "rope_scaling": scaling or {"rope_type": "none"}, "inv_freq": inv.tolist()})
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
