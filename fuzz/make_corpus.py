#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): for each parser a few valid inputs from a
minimal random LLaMA (1 layer, hidden 8, the byte-level BPE of tests/integration/tiny_hf_model.py) and a few broken
ones (truncated, a length field or a key changed). Standard library only; deterministic (fixed seed).

Usage: make_corpus.py OUT_CORPUS_DIR [--hf-dir DIR]
  --hf-dir DIR also writes the minimal model as an HF directory (config.json, tokenizer.json, model.safetensors,
  tokenizer_config.json) plus DIR/corpus.txt, from which make_corpus.sh builds the HDF5 seeds with linspec.
The HDF5 targets (checkpoint, token_shards) are filled by make_corpus.sh, which needs the linspec binary.
"""
import argparse, json, os, random, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from tiny_hf_model import bytes_to_unicode  # noqa: E402

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS = 8, 2, 1, 4, 16, 1


def tokenizer():
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    for pair in ["t h", "h e", "th e", "Ġ t", "Ġt he", "i n"]:
        left, right = pair.split(" ")
        merges.append(pair)
        vocab[left + right] = len(vocab)
    eos = "<|endoftext|>"
    eos_id = len(vocab)
    tj = {"version": "1.0",
          "added_tokens": [{"id": eos_id, "content": eos, "special": True, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": False}],
          "normalizer": None,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                    "merges": merges}}
    return tj, vocab, merges, eos, eos_id


def model(rng, vocab_size):
    shapes = {"model.embed_tokens.weight": (vocab_size, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (HIDDEN,), p + "post_attention_layernorm.weight": (HIDDEN,),
                       p + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
                       p + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
                       p + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
                       p + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
                       p + "mlp.gate_proj.weight": (FFN, HIDDEN), p + "mlp.up_proj.weight": (FFN, HIDDEN),
                       p + "mlp.down_proj.weight": (HIDDEN, FFN)})
    out = {}
    for name in sorted(shapes):
        n = 1
        for s in shapes[name]:
            n *= s
        out[name] = (shapes[name], [round(rng.gauss(0, 0.1), 4) for _ in range(n)])
    return out


def hf_config(vocab_size, eos_id):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab_size,
            "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 128,
            "tie_word_embeddings": True, "bos_token_id": eos_id, "eos_token_id": eos_id, "hidden_act": "silu"}


def safetensors(tensors, dtype="F32", metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (shape, values) in tensors.items():
        if dtype == "F32":
            blob = struct.pack("<%df" % len(values), *values)
        else:  # BF16: the high half of each f32
            blob = b"".join(struct.pack("<f", v)[2:] for v in values)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


# ---- GGUF (v3, little-endian) -------------------------------------------------------------------------------
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, payload):
    return gguf_str(key) + struct.pack("<I", vtype) + payload


def gguf_u32(key, v): return gguf_kv(key, 4, struct.pack("<I", v))
def gguf_f32(key, v): return gguf_kv(key, 6, struct.pack("<f", v))
def gguf_string(key, v): return gguf_kv(key, 8, gguf_str(v))
def gguf_str_array(key, items): return gguf_kv(key, 9, struct.pack("<IQ", 8, len(items)) + b"".join(map(gguf_str, items)))
def gguf_i32_array(key, items): return gguf_kv(key, 9, struct.pack("<IQ", 5, len(items)) + struct.pack("<%di" % len(items), *items))


def gguf(kvs, tensors, alignment=32):
    """tensors: list of (name, ne list, ggml type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    offset, infos, datas = 0, b"", []
    for name, ne, ttype, data in tensors:
        infos += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        infos += struct.pack("<IQ", ttype, offset)
        pad = -len(data) % alignment
        datas.append(data + b"\0" * pad)
        offset += len(data) + pad
    out += infos
    out += b"\0" * (-len(out) % alignment)
    return out + b"".join(datas)


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
LAYER_NAMES = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
               "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
               "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
               "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
               "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_model(tensors, vocab, merges, eos_id, f16=False):
    kvs = [gguf_string("general.architecture", "llama"), gguf_u32("llama.block_count", LAYERS),
           gguf_u32("llama.embedding_length", HIDDEN), gguf_u32("llama.feed_forward_length", FFN),
           gguf_u32("llama.attention.head_count", HEADS), gguf_u32("llama.attention.head_count_kv", KV_HEADS),
           gguf_f32("llama.attention.layer_norm_rms_epsilon", 1e-5), gguf_u32("llama.context_length", 128),
           gguf_string("tokenizer.ggml.model", "gpt2"), gguf_string("tokenizer.ggml.pre", "smollm"),
           gguf_str_array("tokenizer.ggml.tokens", vocab),
           gguf_i32_array("tokenizer.ggml.token_type", [1] * (len(vocab) - 1) + [3]),
           gguf_str_array("tokenizer.ggml.merges", merges),
           gguf_u32("tokenizer.ggml.bos_token_id", eos_id), gguf_u32("tokenizer.ggml.eos_token_id", eos_id)]
    ts = []
    for name, (shape, values) in tensors.items():
        if name in GGUF_NAMES:
            gname = GGUF_NAMES[name]
        else:
            _, _, layer, rest = name.split(".", 3)
            gname = f"blk.{layer}.{LAYER_NAMES[rest]}"
        ne = list(reversed(shape))
        if f16 and len(shape) == 2:
            ts.append((gname, ne, 1, struct.pack("<%de" % len(values), *values)))
        else:
            ts.append((gname, ne, 0, struct.pack("<%df" % len(values), *values)))
    return gguf(kvs, ts)


def write(corpus, target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def h5_seeds(corpus, target, files):
    """Valid HDF5 files as they are, plus broken copies of the first: truncated (the end of the file, then half of
    it), the superblock's end-of-file address and a root-group byte changed, and one byte flipped in the data."""
    for f in files:
        with open(f, "rb") as fh:
            write(corpus, target, "valid_" + os.path.basename(f), fh.read())
    with open(files[0], "rb") as fh:
        d = fh.read()
    base = os.path.splitext(os.path.basename(files[0]))[0]
    write(corpus, target, f"broken_{base}_tail.h5", d[: len(d) - 64])
    write(corpus, target, f"broken_{base}_half.h5", d[: len(d) // 2])
    eof = bytearray(d)
    eof[40:48] = struct.pack("<Q", len(d) * 4)  # superblock v0/v2: end-of-file address
    write(corpus, target, f"broken_{base}_eof.h5", bytes(eof))
    root = bytearray(d)
    root[100] ^= 0xFF
    write(corpus, target, f"broken_{base}_header.h5", bytes(root))
    mid = bytearray(d)
    mid[len(d) * 3 // 4] ^= 0x10
    write(corpus, target, f"broken_{base}_data.h5", bytes(mid))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--hf-dir")
    ap.add_argument("--h5", nargs="+", metavar="TARGET FILE",
                    help="only write HDF5 seeds for TARGET: each FILE as it is, and broken copies of the first")
    a = ap.parse_args()
    if a.h5:
        return h5_seeds(a.corpus, a.h5[0], a.h5[1:])
    rng = random.Random(15)
    tj, vocab_map, merges, eos, eos_id = tokenizer()
    vocab_size = eos_id + 1
    tensors = model(rng, vocab_size)
    vocab = [None] * vocab_size
    for tok, i in vocab_map.items():
        vocab[i] = tok
    vocab[eos_id] = eos
    config = hf_config(vocab_size, eos_id)
    C = a.corpus

    # GGUF: f32 and f16 models, the dequantisation golden (every quant type), and broken headers.
    g = gguf_model(tensors, vocab, merges, eos_id)
    write(C, "gguf", "valid_f32.gguf", g)
    write(C, "gguf", "valid_f16.gguf", gguf_model(tensors, vocab, merges, eos_id, f16=True))
    with open(os.path.join(HERE, "..", "tests", "reference", "golden", "gguf_dequant.gguf"), "rb") as f:
        write(C, "gguf", "valid_dequant_golden.gguf", f.read())
    write(C, "gguf", "broken_truncated.gguf", g[: len(g) // 2])
    write(C, "gguf", "broken_kv_count.gguf", g[:16] + struct.pack("<Q", 1 << 40) + g[24:])
    write(C, "gguf", "broken_version.gguf", g[:4] + struct.pack("<I", 7) + g[8:])
    write(C, "gguf", "broken_block_count.gguf", g.replace(gguf_u32("llama.block_count", LAYERS),
                                                           gguf_u32("llama.block_count", 1 << 30)))

    # safetensors: the model in F32 and BF16, with metadata, and broken headers.
    st = safetensors(tensors)
    write(C, "safetensors", "valid_f32.safetensors", st)
    write(C, "safetensors", "valid_bf16_meta.safetensors", safetensors(tensors, "BF16", {"format": "pt"}))
    write(C, "safetensors", "broken_truncated.safetensors", st[: len(st) - 100])
    write(C, "safetensors", "broken_header_len.safetensors", struct.pack("<Q", 1 << 62) + st[8:])
    write(C, "safetensors", "broken_offsets.safetensors", st.replace(b'"data_offsets": [0, ', b'"data_offsets": [9, ', 1))
    write(C, "safetensors", "broken_json.safetensors", st[:8] + b"{" + st[9:])

    # HF config.json: the model's, variants that are valid, and broken ones.
    cj = json.dumps(config, indent=1)
    write(C, "hf_config", "valid.json", cj)
    write(C, "hf_config", "valid_rope_scaling.json", json.dumps(dict(config, rope_scaling={"type": "linear", "factor": 2.0})))
    write(C, "hf_config", "valid_llama3_rope.json", json.dumps(dict(config, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64})))
    write(C, "hf_config", "broken_truncated.json", cj[: len(cj) // 2])
    write(C, "hf_config", "broken_heads.json", json.dumps(dict(config, num_attention_heads=3)))
    write(C, "hf_config", "broken_layers.json", json.dumps(dict(config, num_hidden_layers=-1)))
    write(C, "hf_config", "broken_type.json", json.dumps(dict(config, hidden_size="8")))

    # tokenizer.json
    tjs = json.dumps(tj)
    write(C, "tokenizer_json", "valid.json", tjs)
    write(C, "tokenizer_json", "valid_split_pre.json", json.dumps(dict(tj, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]})))
    write(C, "tokenizer_json", "broken_truncated.json", tjs[: len(tjs) // 2])
    write(C, "tokenizer_json", "broken_merge.json", json.dumps(dict(tj, model=dict(tj["model"], merges=["t h", "zz qq"]))))
    write(C, "tokenizer_json", "broken_added_id.json", json.dumps(dict(tj, added_tokens=[dict(tj["added_tokens"][0], id=1 << 40)])))
    write(C, "tokenizer_json", "broken_regex.json", json.dumps(dict(tj, pre_tokenizer={"type": "Split", "pattern": {"Regex": "(?<"}})))

    # SentencePiece model proto: the test model and broken copies.
    with open(os.path.join(HERE, "..", "tests", "reference", "spm_tiny.model"), "rb") as f:
        spm = f.read()
    write(C, "spm_model", "valid_spm_tiny.model", spm)
    write(C, "spm_model", "broken_truncated.model", spm[: len(spm) // 2])
    write(C, "spm_model", "broken_varint.model", spm[:1] + b"\xff" * 11 + spm[12:])
    write(C, "spm_model", "broken_length.model", spm[:1] + b"\xff\xff\xff\xff\x0f" + spm[2:])
    write(C, "spm_model", "broken_empty_pieces.model", b"\x12\x00")

    # Experiment YAML: the committed configs (valid), and broken ones.
    cfg_dir = os.path.join(HERE, "..", "configs")
    for name in sorted(os.listdir(cfg_dir)):
        if name.endswith(".yaml"):
            with open(os.path.join(cfg_dir, name)) as f:
                write(C, "yaml_config", "valid_" + name, f.read())
    write(C, "yaml_config", "broken_duplicate.yaml", "model: {init: a.h5}\ndata: {path: d.h5}\ntrain: {steps: 3}\ntrain: {lr: 1}\n")
    write(C, "yaml_config", "broken_octal_bool.yaml", "model: {init: a.h5}\ndata: {path: d.h5}\ntrain: {steps: 010, recompute: yes}\n")
    write(C, "yaml_config", "broken_syntax.yaml", "model: {init: a.h5\ndata: [\n")
    write(C, "yaml_config", "broken_stage.yaml", "model: {init: a.h5}\ndata: {path: d.h5}\nstages:\n  - name: x\n    model: {init: b.h5}\n  - {name: x}\n")
    write(C, "yaml_config", "broken_anchor.yaml", "a: &x [*x]\nmodel: {init: a.h5}\n")

    # --set overrides, one per line.
    write(C, "set_override", "valid_simple.txt", "train.steps=3\ntrain.lr=1e-4\n")
    write(C, "set_override", "valid_stage.txt", "stages.finetune.train.lr=2e-4\nstages.transfer.skip=true\nmodel.attention.preset=hedgehog\n")
    write(C, "set_override", "valid_list.txt", "trainable=[lora, norms]\nlora.targets=[q, v]\nobjectives.kd.weight=0.5\n")
    write(C, "set_override", "broken_noeq.txt", "train.steps\n")
    write(C, "set_override", "broken_unknown.txt", "train.stepz=3\n")
    write(C, "set_override", "broken_value.txt", "train.steps={a: [\ntrain.lr=.nan\n")
    write(C, "set_override", "broken_stage.txt", "stages.nosuch.train.lr=1\nstages.finetune.name=x\n")

    if a.hf_dir:
        os.makedirs(a.hf_dir, exist_ok=True)
        with open(os.path.join(a.hf_dir, "config.json"), "w") as f:
            f.write(cj)
        with open(os.path.join(a.hf_dir, "tokenizer.json"), "w") as f:
            f.write(tjs)
        with open(os.path.join(a.hf_dir, "tokenizer_config.json"), "w") as f:
            json.dump({"eos_token": eos, "bos_token": eos, "add_bos_token": False}, f)
        with open(os.path.join(a.hf_dir, "model.safetensors"), "wb") as f:
            f.write(st)
        with open(os.path.join(a.hf_dir, "corpus.txt"), "w") as f:
            for doc in range(6):
                f.write(" ".join(rng.choice(["the", "then", "in", "a", "token", "text", "is", "here"])
                                 for _ in range(40)) + "\n")


if __name__ == "__main__":
    main()
