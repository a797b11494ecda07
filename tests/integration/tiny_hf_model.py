#!/usr/bin/env python3
"""Writes a tiny random LLaMA model as an HF directory (config.json, model.safetensors, tokenizer.json with a
byte-level BPE over the 256 byte symbols plus a few merges) and a small English-like corpus, using only the Python
standard library, so integration tests can run `linspec convert` / `prepare` / `train` in seconds.

With --spm MODEL the tokenizer is that SentencePiece model instead (tokenizer.model; <unk> <s> </s> are ids 0 1 2,
as in tests/reference/spm_tiny.model), with BOS added, LLaMA-2 style.

Usage: tiny_hf_model.py OUT_DIR CORPUS_TXT [--layers N] [--seed S] [--spm MODEL]
"""
import argparse, json, os, random, shutil, struct

from proto_fields import proto_fields  # this script's folder is on sys.path


def bytes_to_unicode():
    # GPT-2's reversible byte -> printable character map.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("corpus")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--spm", help="SentencePiece model to use as the tokenizer")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)

    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    for pair in ["t h", "h e", "th e", "Ġ t", "Ġt he", "i n", "a n", "e r", "o n"]:
        left, right = pair.split(" ")
        merges.append(pair)
        vocab[left + right] = len(vocab)
    eos = "<|endoftext|>"
    eos_id = len(vocab)
    tokenizer = {
        "version": "1.0",
        "added_tokens": [{"id": eos_id, "content": eos, "special": True, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
    vocab_size = eos_id + 4  # a few unused rows, as real models pad their vocabulary
    bos_id = eos_id
    if a.spm:
        pieces = sum(f == 1 for f, _ in proto_fields(open(a.spm, "rb").read()))  # ModelProto.pieces
        vocab_size, bos_id, eos_id = pieces + 4, 1, 2
    hidden, heads, kv_heads, head_dim, ffn = 32, 4, 2, 8, 64
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab_size,
              "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": a.layers,
              "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 512,
              "tie_word_embeddings": True, "bos_token_id": bos_id, "eos_token_id": eos_id, "hidden_act": "silu"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    if a.spm:
        shutil.copy(a.spm, os.path.join(a.out, "tokenizer.model"))
        with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}, f)
    else:
        with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
            json.dump(tokenizer, f)
        with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
            json.dump({"eos_token": eos, "bos_token": eos, "add_bos_token": False}, f)

    shapes = {"model.embed_tokens.weight": (vocab_size, hidden), "model.norm.weight": (hidden,)}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                       p + "self_attn.q_proj.weight": (heads * head_dim, hidden),
                       p + "self_attn.k_proj.weight": (kv_heads * head_dim, hidden),
                       p + "self_attn.v_proj.weight": (kv_heads * head_dim, hidden),
                       p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
                       p + "mlp.gate_proj.weight": (ffn, hidden), p + "mlp.up_proj.weight": (ffn, hidden),
                       p + "mlp.down_proj.weight": (hidden, ffn)})
    header, blobs, offset = {}, [], 0
    for name in sorted(shapes):
        shape = shapes[name]
        n = 1
        for s in shape:
            n *= s
        if name.endswith("norm.weight"):
            values = [1.0 + 0.1 * rng.gauss(0, 1) for _ in range(n)]
        else:
            values = [rng.gauss(0, 0.08) for _ in range(n)]
        blob = struct.pack("<%df" % n, *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)

    words = ("the model reads a line of text and the next word follows the one before it in order so that "
             "training can learn which token comes after which in this small corpus of plain english words").split()
    with open(a.corpus, "w") as f:
        for doc in range(40):
            sentences = []
            for s in range(12):
                start = rng.randrange(len(words))
                length = rng.randrange(6, 14)
                sentences.append(" ".join(words[(start + j) % len(words)] for j in range(length)).capitalize() + ".")
            f.write(" ".join(sentences) + "\n")


if __name__ == "__main__":
    main()
