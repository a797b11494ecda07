#!/usr/bin/env python3
"""PyTorch 2.x peer of `linspec bench train`: the SmolLM2-135M shape (30 layers, d 576, 9 query / 3 kv heads of 64,
MLP 1536, vocabulary 49152, tied embeddings, RMSNorm, RoPE θ 1e5), random init, and the same step — forward +
next-token cross-entropy + backward + AdamW — on the CPU, written in plain torch (no transformers) as a user
would: attention through F.scaled_dot_product_attention (causal, grouped-query), optionally torch.compile'd.

    python bench/train/torch_peer.py [--layers 30] [--batch 4] [--seq 256] [--steps 3] [--warmup 1]
                                     [--precision fp32|bf16] [--compile] [--threads 2] [--json OUT]

bf16 is torch.autocast("cpu", dtype=torch.bfloat16): bf16 matmuls, fp32 master weights and optimizer — the
counterpart of linspec's --precision bf16. bench/train/compare.sh makes the venv with torch from PyPI and runs
this beside linspec.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate(x, cos, sin):  # x [B, H, T, hd]; the half-split convention of LLaMA checkpoints
    a, b = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-b, a), dim=-1) * sin


class Layer(nn.Module):
    def __init__(self, d, heads, kv_heads, ff, eps):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.q = nn.Linear(d, heads * self.hd, bias=False)
        self.k = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o = nn.Linear(heads * self.hd, d, bias=False)
        self.gate, self.up = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)
        self.norm1, self.norm2 = RMSNorm(d, eps), RMSNorm(d, eps)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.norm1(x)
        q = self.q(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, -1))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, layers, vocab=49152, d=576, heads=9, kv_heads=3, ff=1536, eps=1e-5, theta=1e5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(Layer(d, heads, kv_heads, ff, eps) for _ in range(layers))
        self.norm = RMSNorm(d, eps)
        hd = d // heads
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, targets):
        T = ids.shape[1]
        ang = torch.outer(torch.arange(T, dtype=torch.float32), self.inv_freq)
        ang = torch.cat((ang, ang), dim=-1)
        cos, sin = ang.cos(), ang.sin()
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        logits = F.linear(self.norm(x), self.embed.weight)  # tied LM head
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor, CPU)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Model(a.layers).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    step_fn = torch.compile(model) if a.compile else model
    ids = torch.randint(0, 49152, (a.batch, a.seq + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    fwd = bwd = optim = 0.0
    losses, warmup_s = [], 0.0
    for step in range(a.warmup + a.steps):
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = step_fn(inputs, targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if step >= a.warmup:
            fwd, bwd, optim = fwd + t1 - t0, bwd + t2 - t1, optim + t3 - t2
        else:
            warmup_s += t3 - t0
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses), losses
    n = max(a.steps, 1)
    step_s = (fwd + bwd + optim) / n
    mode = "compile" if a.compile else "eager"
    out = {"bench": "torch_train", "torch": torch.__version__, "mode": mode, "layers": a.layers, "batch": a.batch,
           "seq": a.seq, "steps": a.steps, "precision": a.precision, "threads": a.threads,
           "params": sum(p.numel() for p in model.parameters()),
           "tokens_per_s": a.batch * a.seq / step_s, "step_s": step_s, "forward_s": fwd / n, "backward_s": bwd / n,
           "optimizer_s": optim / n, "warmup_s": warmup_s,
           "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "losses": losses}
    print("torch %s %s %s: step %.3f s (forward %.3f, backward %.3f, optimizer %.3f)  %.1f tokens/s  max RSS %.2f GiB" % (
        torch.__version__, mode, a.precision, step_s, fwd / n, bwd / n, optim / n, out["tokens_per_s"],
        out["max_rss_bytes"] / 2**30))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
