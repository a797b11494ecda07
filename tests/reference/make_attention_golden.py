#!/usr/bin/python3
"""Goldens for causal_attention, cross_entropy, kl_divergence and mse from PyTorch (an independent
implementation). Inputs are float32 values (so the C++ test can feed them to both its f32 and f64
paths exactly); references are computed in float64. Each case also stores the gradients of
sum(output * weight) with respect to every differentiable input.

    /usr/bin/python3 tests/reference/make_attention_golden.py   # writes tests/reference/golden/attention_loss.json
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "attention_loss.json")


def f32_normal(gen, *shape, scale=1.0):
    """float32-rounded N(0, scale²) values, returned as float64 leaves."""
    x = (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float().double()
    return x.requires_grad_(True)


def flat(t, digits):
    return [float(f"{v:.{digits}g}") for v in t.detach().reshape(-1).tolist()]


def inputs(t):  # float32 values round-trip exactly with 9 significant digits
    return flat(t, 9)


def results(t):
    return flat(t, 12)


def attention(q, k, v, scale):
    """Causal attention with GQA; query row t sees keys s <= t + (S - T) (bottom-right aligned mask)."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    T, S = q.shape[2], k.shape[2]
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None and T == S and abs(scale - q.shape[-1] ** -0.5) < 1e-15:
        return sdpa(q, k, v, is_causal=True)  # its causal mask is top-left aligned: only equal when T == S
    scores = q @ k.transpose(-1, -2) * scale
    allowed = torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_case(gen, name, B, Hq, Hkv, T, S, d, scale=None):
    q, k, v = f32_normal(gen, B, Hq, T, d), f32_normal(gen, B, Hkv, S, d), f32_normal(gen, B, Hkv, S, d)
    s = scale if scale is not None else d ** -0.5
    out = attention(q, k, v, s)
    w = f32_normal(gen, *out.shape).detach()
    (out * w).sum().backward()
    return {"name": name, "q_shape": [B, Hq, T, d], "kv_shape": [B, Hkv, S, d], "scale": scale or 0.0,
            "q": inputs(q), "k": inputs(k), "v": inputs(v), "weight": inputs(w), "out": results(out),
            "grad_q": results(q.grad), "grad_k": results(k.grad), "grad_v": results(v.grad)}


def cross_entropy_case(gen, name, N, V, ignored_rows, ignore_index=-100):
    logits = f32_normal(gen, N, V, scale=2.0)
    targets = torch.randint(0, V, (N,), generator=gen)
    targets[list(ignored_rows)] = ignore_index
    loss = F.cross_entropy(logits, targets, ignore_index=ignore_index)
    loss.backward()
    return {"name": name, "shape": [N, V], "logits": inputs(logits), "targets": targets.tolist(),
            "ignore_index": ignore_index, "loss": loss.item(), "grad": results(logits.grad)}


def kl_case(gen, name, N, V, tau):
    s, t = f32_normal(gen, N, V, scale=2.0), f32_normal(gen, N, V, scale=2.0)
    loss = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), reduction="batchmean",
                    log_target=True) * tau * tau
    loss.backward()
    return {"name": name, "shape": [N, V], "temperature": tau, "student": inputs(s), "teacher": inputs(t),
            "loss": loss.item(), "grad_student": results(s.grad), "grad_teacher": results(t.grad)}


def mse_case(gen, name, shape):
    a, b = f32_normal(gen, *shape), f32_normal(gen, *shape)
    loss = F.mse_loss(a, b)
    loss.backward()
    return {"name": name, "shape": list(shape), "a": inputs(a), "b": inputs(b), "loss": loss.item(),
            "grad_a": results(a.grad), "grad_b": results(b.grad)}


def main():
    gen = torch.Generator().manual_seed(20240601)
    golden = {
        "generator": f"tests/reference/make_attention_golden.py, torch {torch.__version__}",
        "attention": [
            attention_case(gen, "gqa3_square", 1, 3, 1, 6, 6, 8),
            attention_case(gen, "mha_prefix", 2, 2, 2, 5, 9, 4),
            attention_case(gen, "gqa2_prefix_odd_d_scale", 1, 4, 2, 11, 14, 5, scale=0.4),
            attention_case(gen, "gqa3_long", 1, 3, 1, 24, 24, 8),
        ],
        "cross_entropy": [
            cross_entropy_case(gen, "some_ignored", 6, 11, ignored_rows=[1, 4]),
            cross_entropy_case(gen, "custom_ignore_index", 5, 7, ignored_rows=[0], ignore_index=3),
        ],
        "kl_divergence": [kl_case(gen, "tau1", 4, 9, 1.0), kl_case(gen, "tau2", 3, 13, 2.0)],
        "mse": [mse_case(gen, "matrix", (4, 7))],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
