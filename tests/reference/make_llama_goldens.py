#!/usr/bin/env python3
"""Goldens for linspec's LLaMA decoder from an independent implementation (HF transformers' LlamaForCausalLM).

(a) tiny_llama/: a random tiny LLaMA (GQA 4:2, q/k/v/o biases, untied head, llama3 RoPE scaling) saved as
    model.safetensors + config.json, and logits.json with the full logits of 3 fixed id sequences.
(b) smollm2_logits.json: the real SmolLM2-135M-Instruct Q4_1 GGUF, dequantised with gguf-py (ggml's own Python
    package) and run through LlamaForCausalLM; for 3 prompts (given as token ids) the last position's first 32
    logits, top-5 ids and values, and argmax.

Run with Debian's python3 (torch 1.13). transformers 5.x needs a newer torch, so install 4.44 privately first:
    /usr/bin/python3 -m pip install --no-deps --target /root/.cache/linspec/tf4 transformers==4.44.2 \
        tokenizers==0.19.1 huggingface-hub==0.24.6 safetensors==0.4.5 gguf==0.10.0 sentencepiece regex tqdm \
        filelock packaging pyyaml requests fsspec typing_extensions
    /usr/bin/python3 tests/reference/make_llama_goldens.py [--gguf PATH] [--skip-smollm2]
(transformers 4.44's own GGUF loader has no Q4_1 kernel, hence gguf-py's dequantize here.)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.environ.get("LINSPEC_TF4", "/root/.cache/linspec/tf4"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")

TINY_SEQUENCES = [
    [1, 5, 9, 2, 77, 31],
    [96, 0, 13, 13, 13, 40, 41, 42, 7, 88, 3],
    [50, 25, 12, 6, 3, 1, 0, 95, 94, 93, 60, 61, 62, 63, 64, 65, 2, 4, 8],
]


def make_tiny():
    torch.manual_seed(1234)
    cfg = LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=44,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=500.0,
        rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        attention_bias=True,
        tie_word_embeddings=False,
        initializer_range=0.15,  # large enough that the nonlinearities matter
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norm weights and biases
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    out_dir = os.path.join(GOLDEN, "tiny_llama")
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if "rotary_emb" not in k}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg.to_json_file(os.path.join(out_dir, "config.json"))
    logits = []
    with torch.no_grad():
        for seq in TINY_SEQUENCES:
            ids = torch.tensor([seq], dtype=torch.long)
            logits.append(model(input_ids=ids).logits[0].tolist())
    with open(os.path.join(out_dir, "logits.json"), "w") as f:
        json.dump({"source": "transformers %s LlamaForCausalLM, torch %s, float32" % (
            __import__("transformers").__version__, torch.__version__),
                   "sequences": TINY_SEQUENCES, "logits": logits}, f)
    print("tiny_llama written to", out_dir)


def reverse_permute(w, n_head):
    # llama.cpp's converter interleaves the rotary halves of each Q/K head; undo it (as transformers does).
    # Within each head, GGUF row 2i + j holds HF row j * head_dim/2 + i.
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return v.tobytes().decode() if f.types[0].name == "STRING" else v.tolist()[0]


def load_smollm2(path):
    import gguf
    from gguf import quants
    r = gguf.GGUFReader(path)
    arch = field(r, "general.architecture")
    assert arch == "llama", arch
    n_head, n_kv = field(r, "llama.attention.head_count"), field(r, "llama.attention.head_count_kv")
    hidden = field(r, "llama.embedding_length")
    cfg = LlamaConfig(
        vocab_size=int(r.get_tensor(0).shape[1]) if r.tensors[0].name == "token_embd.weight" else 49152,
        hidden_size=hidden,
        intermediate_size=field(r, "llama.feed_forward_length"),
        num_hidden_layers=field(r, "llama.block_count"),
        num_attention_heads=n_head,
        num_key_value_heads=n_kv,
        max_position_embeddings=field(r, "llama.context_length"),
        rms_norm_eps=field(r, "llama.attention.layer_norm_rms_epsilon"),
        rope_theta=field(r, "llama.rope.freq_base"),
        tie_word_embeddings=True,
    )
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                 "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
    state = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))  # GGUF lists ne[0] (innermost) first
        w = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if t.name in names:
            name = names[t.name]
        else:
            _, layer, kind, suffix = t.name.split(".")
            name = "model.layers.%s.%s.%s" % (layer, per_layer[kind], suffix)
            if kind == "attn_q":
                w = reverse_permute(w, n_head)
            elif kind == "attn_k":
                w = reverse_permute(w, n_kv)
        state[name] = torch.from_numpy(np.ascontiguousarray(w))
    model = LlamaForCausalLM(cfg).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]  # tied
    assert not missing and not unexpected, (missing, unexpected)
    model.tie_weights()
    return model


def make_smollm2(path):
    model = load_smollm2(path)
    # Prompts as token ids: whole-word pieces looked up in the GGUF vocabulary ("Ġ" marks a leading space), so
    # no tokenizer is involved in the comparison.
    import gguf
    r = gguf.GGUFReader(path)
    f = r.fields["tokenizer.ggml.tokens"]
    vocab = {bytes(f.parts[i]).decode("utf-8"): n for n, i in enumerate(f.data)}
    pieces = [["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"],
              ["def", "Ġfib", "onacci", "(", "n", "):", "Ċ"],
              ["<|im_start|>", "user", "Ċ", "What", "Ġis", "Ġthe", "Ġlargest", "Ġplanet", "?", "<|im_end|>", "Ċ",
               "<|im_start|>", "assistant", "Ċ"]]
    prompts = [[vocab[p] for p in ps if p in vocab] for ps in pieces]
    for ps, ids in zip(pieces, prompts):
        assert len(ids) >= len(ps) - 1, (ps, ids)
    rows = []
    with torch.no_grad():
        for ids in prompts:
            last = model(input_ids=torch.tensor([ids])).logits[0, -1]
            top = torch.topk(last, 5)
            rows.append({"ids": ids, "first32": last[:32].tolist(), "top5_ids": top.indices.tolist(),
                         "top5_values": top.values.tolist(), "argmax": int(last.argmax())})
    out = {"source": "SmolLM2-135M-Instruct.Q4_1.gguf dequantised by gguf-py, transformers %s LlamaForCausalLM "
                     "float32, torch %s" % (__import__("transformers").__version__, torch.__version__),
           "gguf": os.path.basename(path), "prompts": rows}
    with open(os.path.join(GOLDEN, "smollm2_logits.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("smollm2_logits.json written; argmax per prompt:", [r["argmax"] for r in rows])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default="/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--skip-smollm2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    make_tiny()
    if not args.skip_smollm2:
        make_smollm2(args.gguf)


if __name__ == "__main__":
    main()
