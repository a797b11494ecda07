#!/usr/bin/env python3
"""PyTorch reference for `linspec bench train`: the same SmolLM2-shaped model (HF LlamaForCausalLM, random init,
tied embeddings) and the same step (forward + next-token cross-entropy + backward + AdamW) on CPU.

    /usr/bin/python3 bench/torch_train_bench.py [--layers 30] [--batch 4] [--seq 256] [--steps 3]
                                                [--precision fp32|bf16] [--threads 2] [--json OUT]

bf16 uses torch.autocast("cpu", dtype=torch.bfloat16) (matmuls in bf16, fp32 master weights), the counterpart of
linspec's --precision bf16. Needs Debian's torch 1.13 and transformers 4.44 (see tests/reference/make_llama_goldens.py
for the private install into /root/.cache/linspec/tf4).
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.environ.get("LINSPEC_TF4", "/root/.cache/linspec/tf4"))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=a.layers,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:].reshape(-1)
    fwd = bwd = optim = 0.0
    losses = []
    for step in range(a.warmup + a.steps):
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = model(input_ids=inputs, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if step >= a.warmup:
            fwd, bwd, optim = fwd + t1 - t0, bwd + t2 - t1, optim + t3 - t2
            losses.append(loss.item())
    n = max(a.steps, 1)
    step_s = (fwd + bwd + optim) / n
    out = {"bench": "torch_train", "torch": torch.__version__, "layers": a.layers, "batch": a.batch, "seq": a.seq,
           "steps": a.steps, "precision": a.precision, "threads": a.threads,
           "params": sum(p.numel() for p in model.parameters()),
           "tokens_per_s": a.batch * a.seq / step_s, "step_s": step_s, "forward_s": fwd / n, "backward_s": bwd / n,
           "optimizer_s": optim / n, "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "losses": losses}
    print("torch %s %s: step %.3f s (forward %.3f, backward %.3f, optimizer %.3f)  %.1f tokens/s  max RSS %.2f GiB" % (
        torch.__version__, a.precision, step_s, fwd / n, bwd / n, optim / n, out["tokens_per_s"],
        out["max_rss_bytes"] / 2**30))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
