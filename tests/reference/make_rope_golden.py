#!/usr/bin/env python3
"""Golden outputs for ops::rope from an independent PyTorch implementation of HF LLaMA's RoPE.

Follows transformers' LlamaRotaryEmbedding / rotate_half / apply_rotary_pos_emb in float32:
  inv_freq = 1 / theta ** (arange(0, d, 2) / d);  freqs = pos ⊗ inv_freq;  emb = cat(freqs, freqs)
  out = x * cos(emb) + rotate_half(x) * sin(emb),  rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2])
Usage: /usr/bin/python3 tests/reference/make_rope_golden.py   (Debian python3-torch; writes golden/rope_small.json)
"""
import json
import os

import torch


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def hf_rope(x, theta, pos0, inv_freq=None):
    d = x.shape[-1]
    if inv_freq is None:
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    positions = torch.arange(pos0, pos0 + x.shape[2], dtype=torch.int64).float()
    freqs = torch.outer(positions, inv_freq)  # [T, d/2], float32 like HF
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    return x * cos + rotate_half(x) * sin


def case(name, shape, theta, pos0, seed, inv_freq=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float32)
    freq_t = None if inv_freq is None else torch.tensor(inv_freq, dtype=torch.float32)
    out = hf_rope(x, theta, pos0, freq_t)
    entry = {"name": name, "shape": list(shape), "theta": theta, "pos0": pos0,
             "input": x.flatten().tolist(), "expected": out.flatten().tolist()}
    if inv_freq is not None:
        entry["inv_freq"] = [float(v) for v in freq_t.tolist()]
    return entry


def main():
    cases = [
        case("default_theta_pos0", (1, 2, 5, 8), 10000.0, 0, 1),
        case("smollm_theta_offset", (2, 3, 7, 16), 100000.0, 37, 2),
        case("custom_inv_freq", (1, 1, 3, 6), 10000.0, 5, 3, inv_freq=[1.0, 0.25, 0.01]),
    ]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "rope_small.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"generator": "tests/reference/make_rope_golden.py", "torch": torch.__version__,
                   "cases": cases}, f)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
