#!/usr/bin/env python3
"""Writes malformed inputs of every kind linspec reads, each with the command that reads it, for
test_malformed_inputs.sh: model files (GGUF, safetensors, HF config.json, tokenizer.json, SentencePiece
tokenizer.model), checkpoints (.h5), token shards (.h5), experiment YAML files and --set values.

Every case is malformed by construction (a cut, a forged size or offset, a missing or mistyped key, a value out of
range, a corrupted byte inside checksummed data), and each kind has a valid baseline made the same way that must
succeed, so a case that is accepted is a finding, not a badly built case.

Usage: make_malformed_inputs.py WORK_DIR SOURCE_DIR
  WORK_DIR holds tiny.h5 and data.h5 (tiny_model_common.sh). Writes WORK_DIR/malformed/<kind>/... and prints the
  cases as lines: id TAB text-the-error-must-contain TAB file-whose-size-bounds-RSS TAB argv joined by \\x1f.
  Baselines (exit 0 expected) have ids starting with "valid/".
"""
import json, os, random, struct, sys

WORK, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "fuzz"))
import make_corpus as mc  # noqa: E402  (the minimal model and the GGUF / safetensors writers)
from proto_fields import proto_fields  # noqa: E402  (this script's folder is on sys.path)

OUT = os.path.join(WORK, "malformed")
CASES = []
SEP = "\x1f"


def case(cid, expect, size_file, *argv):
    CASES.append((cid, expect, size_file, list(argv)))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def cuts(data, n):
    """n distinct truncation points spread over the file (0 bytes included)."""
    return sorted({int(len(data) * i / n) for i in range(n)})


rng = random.Random(15)
tj, vocab_map, merges, eos, eos_id = mc.tokenizer()
VOCAB = eos_id + 1
tensors = mc.model(rng, VOCAB)
vocab = [None] * VOCAB
for tok, i in vocab_map.items():
    vocab[i] = tok
vocab[eos_id] = eos
config = mc.hf_config(VOCAB, eos_id)
out_h5 = os.path.join(OUT, "out.h5")  # convert/export outputs: never written, every case fails first

# ---- GGUF: `linspec convert --from FILE` --------------------------------------------------------------------------
KV = {  # the metadata of the baseline, in order; values are encoded GGUF key/value pairs
    "general.architecture": mc.gguf_string("general.architecture", "llama"),
    "llama.block_count": mc.gguf_u32("llama.block_count", mc.LAYERS),
    "llama.embedding_length": mc.gguf_u32("llama.embedding_length", mc.HIDDEN),
    "llama.feed_forward_length": mc.gguf_u32("llama.feed_forward_length", mc.FFN),
    "llama.attention.head_count": mc.gguf_u32("llama.attention.head_count", mc.HEADS),
    "llama.attention.head_count_kv": mc.gguf_u32("llama.attention.head_count_kv", mc.KV_HEADS),
    "llama.attention.layer_norm_rms_epsilon": mc.gguf_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    "llama.context_length": mc.gguf_u32("llama.context_length", 128),
    "tokenizer.ggml.model": mc.gguf_string("tokenizer.ggml.model", "gpt2"),
    "tokenizer.ggml.pre": mc.gguf_string("tokenizer.ggml.pre", "smollm"),
    "tokenizer.ggml.tokens": mc.gguf_str_array("tokenizer.ggml.tokens", vocab),
    "tokenizer.ggml.token_type": mc.gguf_i32_array("tokenizer.ggml.token_type", [1] * (VOCAB - 1) + [3]),
    "tokenizer.ggml.merges": mc.gguf_str_array("tokenizer.ggml.merges", merges),
    "tokenizer.ggml.bos_token_id": mc.gguf_u32("tokenizer.ggml.bos_token_id", eos_id),
    "tokenizer.ggml.eos_token_id": mc.gguf_u32("tokenizer.ggml.eos_token_id", eos_id),
}


def gguf_tensors():
    ts = []
    for name, (shape, values) in tensors.items():
        if name in mc.GGUF_NAMES:
            gname = mc.GGUF_NAMES[name]
        else:
            _, _, layer, rest = name.split(".", 3)
            gname = f"blk.{layer}.{mc.LAYER_NAMES[rest]}"
        ts.append([gname, list(reversed(shape)), 0, struct.pack("<%df" % len(values), *values)])
    return ts


def gguf_file(kv=None, ts=None):
    return mc.gguf(list((kv or KV).values()), ts if ts is not None else gguf_tensors())


def gguf_case(cid, data):
    p = write(os.path.join(OUT, "gguf", cid.replace("/", "_") + ".gguf"), data)
    case("gguf/" + cid, p, p, "convert", "--from", p, "--out", out_h5)


base = gguf_file()
p = write(os.path.join(OUT, "gguf", "valid.gguf"), base)
case("valid/gguf", "", p, "convert", "--from", p, "--out", os.path.join(OUT, "valid_gguf.h5"))
for at in cuts(base, 30):
    gguf_case(f"cut_{at}", base[:at])
gguf_case("magic", b"GGUX" + base[4:])
for v in (0, 1, 4, 0xFFFFFFFF):
    gguf_case(f"version_{v}", base[:4] + struct.pack("<I", v) + base[8:])
n_t, n_kv = len(gguf_tensors()), len(KV)
for n in (n_t + 1, 1 << 21, 1 << 63):
    gguf_case(f"tensor_count_{n}", base[:8] + struct.pack("<Q", n) + base[16:])
for n in (n_kv + 1, 1 << 21, 1 << 63):
    gguf_case(f"kv_count_{n}", base[:16] + struct.pack("<Q", n) + base[24:])
# One key/value pair at a time: its key length forged, its value type unknown.
for key, enc in KV.items():
    short = key.split(".")[-1]
    forged = dict(KV)
    forged[key] = struct.pack("<Q", 1 << 62) + enc[8:]
    gguf_case(f"key_length_{short}", gguf_file(forged))
    forged[key] = enc[: 8 + len(key)] + struct.pack("<I", 13) + enc[12 + len(key):]
    gguf_case(f"value_type_{short}", gguf_file(forged))
# Required keys missing.
for key in ("general.architecture", "llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
            "llama.attention.head_count", "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
            "tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
    gguf_case("missing_" + key.split(".")[-1], gguf_file({k: v for k, v in KV.items() if k != key}))
# Values out of range or of the wrong type.
bad_values = {
    "block_count_0": ("llama.block_count", mc.gguf_u32("llama.block_count", 0)),
    "block_count_2": ("llama.block_count", mc.gguf_u32("llama.block_count", 2)),
    "block_count_huge": ("llama.block_count", mc.gguf_u32("llama.block_count", 1 << 31)),
    "block_count_string": ("llama.block_count", mc.gguf_string("llama.block_count", "1")),
    "block_count_float": ("llama.block_count", mc.gguf_f32("llama.block_count", 1.5)),
    "embedding_0": ("llama.embedding_length", mc.gguf_u32("llama.embedding_length", 0)),
    "embedding_7": ("llama.embedding_length", mc.gguf_u32("llama.embedding_length", 7)),
    "embedding_huge": ("llama.embedding_length", mc.gguf_u32("llama.embedding_length", 1 << 31)),
    "ffn_0": ("llama.feed_forward_length", mc.gguf_u32("llama.feed_forward_length", 0)),
    "ffn_17": ("llama.feed_forward_length", mc.gguf_u32("llama.feed_forward_length", 17)),
    "heads_0": ("llama.attention.head_count", mc.gguf_u32("llama.attention.head_count", 0)),
    "heads_3": ("llama.attention.head_count", mc.gguf_u32("llama.attention.head_count", 3)),
    "heads_huge": ("llama.attention.head_count", mc.gguf_u32("llama.attention.head_count", 1 << 30)),
    "kv_heads_0": ("llama.attention.head_count_kv", mc.gguf_u32("llama.attention.head_count_kv", 0)),
    "kv_heads_3": ("llama.attention.head_count_kv", mc.gguf_u32("llama.attention.head_count_kv", 3)),
    "eps_string": ("llama.attention.layer_norm_rms_epsilon",
                   mc.gguf_string("llama.attention.layer_norm_rms_epsilon", "1e-5")),
    "context_0": ("llama.context_length", mc.gguf_u32("llama.context_length", 0)),
    "arch_gptneox": ("general.architecture", mc.gguf_string("general.architecture", "gptneox")),
    "tokenizer_bert": ("tokenizer.ggml.model", mc.gguf_string("tokenizer.ggml.model", "bert")),
    "tokens_empty": ("tokenizer.ggml.tokens", mc.gguf_str_array("tokenizer.ggml.tokens", [])),
    "tokens_short": ("tokenizer.ggml.tokens", mc.gguf_str_array("tokenizer.ggml.tokens", vocab[:-1])),
    "tokens_not_utf8": ("tokenizer.ggml.tokens", mc.gguf_kv("tokenizer.ggml.tokens", 9, struct.pack(
        "<IQ", 8, VOCAB) + b"".join(mc.gguf_str(t) for t in vocab[:-1]) + struct.pack("<Q", 2) + b"\xff\xfe")),
    "tokens_int_array": ("tokenizer.ggml.tokens", mc.gguf_i32_array("tokenizer.ggml.tokens", list(range(VOCAB)))),
    "token_type_short": ("tokenizer.ggml.token_type", mc.gguf_i32_array("tokenizer.ggml.token_type", [1] * 5)),
    "merges_unknown": ("tokenizer.ggml.merges", mc.gguf_str_array("tokenizer.ggml.merges", ["zz qq"])),
    "merges_no_space": ("tokenizer.ggml.merges", mc.gguf_str_array("tokenizer.ggml.merges", ["th"])),
    "bos_out_of_range": ("tokenizer.ggml.bos_token_id", mc.gguf_u32("tokenizer.ggml.bos_token_id", 1 << 20)),
    "eos_out_of_range": ("tokenizer.ggml.eos_token_id", mc.gguf_u32("tokenizer.ggml.eos_token_id", VOCAB)),
    "alignment_3": ("general.alignment", mc.gguf_u32("general.alignment", 3)),
    "alignment_0": ("general.alignment", mc.gguf_u32("general.alignment", 0)),
    "rope_scaling_yarn": ("llama.rope.scaling.type", mc.gguf_string("llama.rope.scaling.type", "yarn")),
    "rope_dims_2": ("llama.rope.dimension_count", mc.gguf_u32("llama.rope.dimension_count", 2)),
    "value_length_3": ("llama.attention.value_length", mc.gguf_u32("llama.attention.value_length", 3)),
    "bool_2": ("tokenizer.ggml.add_bos_token", mc.gguf_kv("tokenizer.ggml.add_bos_token", 7, b"\x02")),
    "nested_array": ("general.nested", mc.gguf_kv("general.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack(
        "<IQ", 9, 1) + struct.pack("<IQ", 4, 1) + b"\0\0\0\0")),
}
for cid, (key, enc) in bad_values.items():
    forged = dict(KV)
    forged[key] = enc
    gguf_case("value_" + cid, gguf_file(forged))
dup = list(KV.values()) + [KV["llama.block_count"]]
gguf_case("duplicate_key", mc.gguf(dup, gguf_tensors()))
# One tensor at a time: its shape, type, offset and name forged.
for i, t in enumerate(gguf_tensors()):
    short = t[0].replace("blk.0.", "")

    def forged_tensor(fn, tag):
        ts = gguf_tensors()
        fn(ts[i])
        gguf_case(f"tensor_{short}_{tag}", gguf_file(ts=ts))

    forged_tensor(lambda x: x.__setitem__(1, x[1] + [1, 1, 1, 1]), "dims_6")
    forged_tensor(lambda x: x.__setitem__(1, [x[1][0] + 1] + x[1][1:]), "shape_plus_1")
    forged_tensor(lambda x: x.__setitem__(1, [1 << 40] + x[1][1:]), "shape_huge")
    forged_tensor(lambda x: x.__setitem__(2, 99), "type_99")
    forged_tensor(lambda x: x.__setitem__(2, 2), "type_q4_0_rows")  # rows of 8 or 16: not whole 32-value blocks
    forged_tensor(lambda x: x.__setitem__(0, "blk.0.attn_q.weight" if "attn_q" not in x[0] else "output_norm.weight"),
                  "duplicate_name")
ts = gguf_tensors()
gguf_case("tensor_missing_embd", gguf_file(ts=[t for t in ts if t[0] != "token_embd.weight"]))
gguf_case("tensor_missing_q", gguf_file(ts=[t for t in ts if "attn_q" not in t[0]]))
gguf_case("tensor_unknown_name", gguf_file(ts=ts + [["blk.0.attn_x.weight", [8], 0, b"\0" * 32]]))
gguf_case("tensor_rope_freqs", gguf_file(ts=ts + [["rope_freqs.weight", [2], 0, b"\0" * 8]]))
gguf_case("tensor_data_truncated", base[: len(base) - 4])

# ---- HF directories: `linspec convert --from DIR` --------------------------------------------------------------
tj_text, cj_text = json.dumps(tj), json.dumps(config, indent=1)
st_base = mc.safetensors(tensors)
tc_text = json.dumps({"eos_token": eos, "bos_token": eos, "add_bos_token": False})
with open(os.path.join(SRC, "tests", "reference", "spm_tiny.model"), "rb") as f:
    spm = f.read()


def hf_dir(cid, files):
    d = os.path.join(OUT, "hf", cid.replace("/", "_"))
    for name, data in files.items():
        write(os.path.join(d, name), data)
    return d


def hf_case(kind, cid, bad_name, bad_data, base_files):
    files = dict(base_files)
    files[bad_name] = bad_data
    d = hf_dir(f"{kind}_{cid}", files)
    p = os.path.join(d, bad_name)
    case(f"{kind}/{cid}", p, p, "convert", "--from", d, "--out", out_h5)


BPE = {"config.json": cj_text, "tokenizer.json": tj_text, "tokenizer_config.json": tc_text, "model.safetensors": st_base}
SPM_VOCAB = 600  # pieces in tests/reference/spm_tiny.model
spm_tensors = mc.model(random.Random(16), SPM_VOCAB)
SPM = {"config.json": json.dumps(dict(mc.hf_config(SPM_VOCAB, 2), bos_token_id=1)), "tokenizer.model": spm,
       "model.safetensors": mc.safetensors(spm_tensors)}
d = hf_dir("valid_bpe", BPE)
case("valid/hf_bpe", "", os.path.join(d, "model.safetensors"), "convert", "--from", d, "--out",
     os.path.join(OUT, "valid_bpe.h5"))
d = hf_dir("valid_spm", SPM)
case("valid/hf_spm", "", os.path.join(d, "model.safetensors"), "convert", "--from", d, "--out",
     os.path.join(OUT, "valid_spm.h5"))

# safetensors
for at in cuts(st_base, 12):
    hf_case("safetensors", f"cut_{at}", "model.safetensors", st_base[:at], BPE)
hlen = struct.unpack("<Q", st_base[:8])[0]
header = json.loads(st_base[8:8 + hlen])
data = st_base[8 + hlen:]
for n in (0, 7, hlen + 1, len(st_base), 1 << 62):
    hf_case("safetensors", f"header_length_{n}", "model.safetensors", struct.pack("<Q", n) + st_base[8:], BPE)


def st_with(h, blob=data):
    head = json.dumps(h).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + blob


hf_case("safetensors", "header_not_json", "model.safetensors", st_base[:8] + b"[" + st_base[9:], BPE)
hf_case("safetensors", "header_array", "model.safetensors", st_with([1, 2]), BPE)
hf_case("safetensors", "header_not_utf8", "model.safetensors", st_with(header)[:9] + b"\xff" + st_with(header)[10:], BPE)
first = sorted(header)[0]
for name in sorted(header):
    short = name.replace("model.", "").replace("layers.0.", "")
    for tag, change in (("dtype_F33", {"dtype": "F33"}), ("dtype_I64", {"dtype": "I64"}),
                        ("shape_1", {"shape": [1]}), ("shape_negative", {"shape": [-1, 8]}),
                        ("offsets_reversed", {"data_offsets": list(reversed(header[name]["data_offsets"]))}),
                        ("offsets_beyond", {"data_offsets": [header[name]["data_offsets"][0], len(data) + 8]})):
        h = json.loads(json.dumps(header))
        h[name].update(change)
        hf_case("safetensors", f"{short}_{tag}", "model.safetensors", st_with(h), BPE)
h = json.loads(json.dumps(header))
del h["model.norm.weight"]
hf_case("safetensors", "missing_norm", "model.safetensors", st_with(h), BPE)
h = json.loads(json.dumps(header))
h["model.norm.weight"]["data_offsets"] = h[first]["data_offsets"]
hf_case("safetensors", "overlapping", "model.safetensors", st_with(h), BPE)
hf_case("safetensors", "metadata_not_strings", "model.safetensors", st_with(dict(header, __metadata__={"a": 1})), BPE)

# config.json
for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
    hf_case("hf_config", "missing_" + key, "config.json", json.dumps({k: v for k, v in config.items() if k != key}), BPE)
for cid, change in {"heads_3": {"num_attention_heads": 3}, "hidden_0": {"hidden_size": 0},
                    "hidden_negative": {"hidden_size": -8}, "hidden_huge": {"hidden_size": 1 << 40},
                    "hidden_string": {"hidden_size": "8"}, "hidden_float": {"hidden_size": 8.5},
                    "layers_0": {"num_hidden_layers": 0}, "layers_2": {"num_hidden_layers": 2},
                    "layers_huge": {"num_hidden_layers": 1 << 20}, "vocab_0": {"vocab_size": 0},
                    "vocab_small": {"vocab_size": 100}, "kv_heads_3": {"num_key_value_heads": 3},
                    "head_dim_3": {"head_dim": 3}, "eps_negative": {"rms_norm_eps": -1.0},
                    "theta_negative": {"rope_theta": -10.0}, "rope_yarn": {"rope_scaling": {"type": "yarn", "factor": 2}},
                    "rope_factor_0": {"rope_scaling": {"type": "linear", "factor": 0}},
                    "arch_gpt2": {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"},
                    "act_gelu": {"hidden_act": "gelu"}, "ffn_17": {"intermediate_size": 17},
                    "positions_0": {"max_position_embeddings": 0}}.items():
    hf_case("hf_config", cid, "config.json", json.dumps(dict(config, **change)), BPE)
    if cid in ("heads_3", "layers_2", "ffn_17"):  # a consistent config that the weights contradict
        CASES[-1] = (CASES[-1][0], os.path.dirname(CASES[-1][1])) + CASES[-1][2:]
for cid, text in {"empty": "", "truncated": cj_text[: len(cj_text) // 2], "array": "[1, 2]", "null": "null",
                  "not_utf8": b'{"hidden_size": "\xff"}', "trailing": cj_text + "}"}.items():
    hf_case("hf_config", cid, "config.json", text, BPE)

# tokenizer.json
model = tj["model"]
for cid, t in {"wordpiece": dict(tj, model=dict(model, type="WordPiece")),
               "vocab_list": dict(tj, model=dict(model, vocab=list(model["vocab"]))),
               "vocab_empty": dict(tj, model=dict(model, vocab={}, merges=[])),
               "vocab_id_gap": dict(tj, model=dict(model, vocab=dict(model["vocab"], zzz=100000))),
               "vocab_id_negative": dict(tj, model=dict(model, vocab=dict(model["vocab"], zzz=-1))),
               "vocab_id_duplicate": dict(tj, model=dict(model, vocab=dict(model["vocab"], zzz=5))),
               "vocab_id_string": dict(tj, model=dict(model, vocab=dict(model["vocab"], zzz="7"))),
               "merge_unknown": dict(tj, model=dict(model, merges=["zz qq"])),
               "merge_one_part": dict(tj, model=dict(model, merges=["th"])),
               "merge_not_string": dict(tj, model=dict(model, merges=[1])),
               "added_id_huge": dict(tj, added_tokens=[dict(tj["added_tokens"][0], id=1 << 40)]),
               "added_id_negative": dict(tj, added_tokens=[dict(tj["added_tokens"][0], id=-3)]),
               "added_content_number": dict(tj, added_tokens=[dict(tj["added_tokens"][0], content=5)]),
               "model_not_object": dict(tj, model=[]),
               "model_missing": {k: v for k, v in tj.items() if k != "model"}}.items():
    hf_case("tokenizer_json", cid, "tokenizer.json", json.dumps(t), BPE)
for cid, text in {"empty": "", "truncated": tj_text[: len(tj_text) // 2], "not_utf8": tj_text[:100].encode() + b"\xff",
                  "array": "[]"}.items():
    hf_case("tokenizer_json", cid, "tokenizer.json", text, BPE)

# SentencePiece tokenizer.model (an HF directory without tokenizer.json)
def last_piece_end(b):
    return max(end for f, end in proto_fields(b) if f == 1)


def specs_end(b, field):
    return max(end for f, end in proto_fields(b) if f == field)


def spm_piece_type_99(b):
    """The first piece's type (field 3, a varint) set to 99."""
    end = proto_fields(b)[0][1]
    at = b.index(b"\x18", 2, end)  # inside the first piece: tag of field 3, varint
    return b[:at + 1] + b"\x63" + b[at + 2:]


for at in cuts(spm, 10)[1:] + [len(spm) - 1]:
    hf_case("spm", f"cut_{at}", "tokenizer.model", spm[:at], SPM)
for cid, b in {"empty": b"", "varint_overflow": b"\x0a" + b"\xff" * 11, "length_huge": b"\x0a\xff\xff\xff\xff\x0f",
               "wire_type_7": b"\x0f" + spm[1:], "no_pieces": b"\x12\x00", "piece_no_text": b"\x0a\x02\x15\x00",
               "text": b"this is not a protobuf\n" * 4,
               "piece_type_99": spm_piece_type_99(spm), "before_specs": spm[:last_piece_end(spm)],
               "before_normalizer_spec": spm[:specs_end(spm, 2)]}.items():
    hf_case("spm", cid, "tokenizer.model", b, SPM)

# ---- checkpoints: `linspec export --checkpoint FILE --out ...` (checksums verified) ------------------------------
with open(os.path.join(WORK, "tiny.h5"), "rb") as f:
    ck = f.read()


def ck_case(cid, data, cmd="export"):
    p = write(os.path.join(OUT, "checkpoint", cid + ".h5"), data)
    if cmd == "export":
        case("checkpoint/" + cid, p, p, "export", "--checkpoint", p, "--out", out_h5)
    elif cmd == "linearize":
        case("checkpoint/" + cid, p, p, "linearize", "--in", p, "--attention", "aug", "--out", out_h5)
    else:
        case("checkpoint/" + cid, p, p, "info", p)


p = write(os.path.join(OUT, "checkpoint", "valid.h5"), ck)
case("valid/checkpoint", "", p, "export", "--checkpoint", p, "--out", os.path.join(OUT, "valid_export.h5"))
for i, at in enumerate(cuts(ck, 16)):
    ck_case(f"cut_{at}", ck[:at], ("export", "linearize", "info")[i % 3])
ck_case("signature", b"\x89HDF\r\n\x1a\x0b" + ck[8:], "info")
# A byte flipped inside each tensor's data (checksummed): found by the first bytes of the tensor in the HF directory
# tiny.h5 was converted from (f32 both), as test_train_mpi.sh does.
with open(os.path.join(WORK, "hf", "model.safetensors"), "rb") as f:
    hf_st = f.read()
hf_len = struct.unpack("<Q", hf_st[:8])[0]
for i, (name, info) in enumerate(sorted(json.loads(hf_st[8:8 + hf_len]).items())):
    if name == "__metadata__":
        continue
    start = 8 + hf_len + info["data_offsets"][0]
    at = ck.find(hf_st[start:start + 32])
    assert at >= 0, f"{name}: its bytes are not in tiny.h5"
    bad = bytearray(ck)
    bad[at + 5] ^= 0x40
    ck_case("flip_" + name.replace("model.", "").replace("layers.", "l"), bytes(bad), ("export", "linearize")[i % 2])
# The /config model attribute (JSON text with a checksum beside it).
at = ck.find(b'"hidden_size":')
if at >= 0:
    for cid, (off, rep) in {"config_key": (1, b"H"), "config_value": (len('"hidden_size":'), b"9")}.items():
        bad = bytearray(ck)
        bad[at + off:at + off + 1] = rep
        ck_case(cid, bytes(bad), "linearize")
at = ck.find(b"linspec")
if at >= 0:
    bad = bytearray(ck)
    bad[at:at + 7] = b"linspex"
    ck_case("format_attr", bytes(bad), "info")

# ---- token shards: `linspec eval --checkpoint tiny.h5 --data FILE --ppl` -----------------------------------------
with open(os.path.join(WORK, "data.h5"), "rb") as f:
    sh = f.read()
tiny = os.path.join(WORK, "tiny.h5")


def shard_case(cid, data):
    p = write(os.path.join(OUT, "shards", cid + ".h5"), data)
    case("shards/" + cid, p, p, "eval", "--checkpoint", tiny, "--data", p, "--ppl", "--ctx", "16", "--max-tokens", "64")


p = write(os.path.join(OUT, "shards", "valid.h5"), sh)
case("valid/shards", "", p, "eval", "--checkpoint", tiny, "--data", p, "--ppl", "--ctx", "16", "--max-tokens", "64",
     "--json", os.path.join(OUT, "valid_eval.json"))
for at in cuts(sh, 16)[1:]:
    shard_case(f"cut_{at}", sh[:at])
for attr, rep in ((b"linspec-tokens", b"linspec-tokenz"),):
    at = sh.find(attr)
    if at >= 0:
        bad = bytearray(sh)
        bad[at:at + len(rep)] = rep
        shard_case("format_attr", bytes(bad))
shard_case("empty", b"")
shard_case("text", b"not an hdf5 file\n" * 10)
shard_case("signature", b"\x89HDF\r\n\x1a\x0b" + sh[8:])

# ---- experiment YAML: `linspec train FILE` ---------------------------------------------------------------------
GOOD = ("model: {init: %s, attention: {preset: aug, group_size: 8}}\ndata: {path: %s, seq_len: 32}\n"
        "train: {steps: 1, warmup_steps: 0, threads: 1}\neval: {batches: 0}\ncheckpoint: {dir: %s}\n"
        % (tiny, os.path.join(WORK, "data.h5"), os.path.join(OUT, "run")))


def yaml_case(cid, text):
    p = write(os.path.join(OUT, "yaml", cid + ".yaml"), text)
    case("yaml/" + cid, p, p, "train", p)


p = write(os.path.join(OUT, "yaml", "valid.yaml"), GOOD.replace("/run}", "/valid_run}"))
case("valid/yaml", "", p, "train", p)
yaml_bad = {
    "syntax_brace": GOOD + "train: {steps: 1\n", "syntax_tab": GOOD + "\tlog: {every: 1}\n",
    "syntax_indent": GOOD + "lora:\n  rank: 4\n    alpha: 8\n", "syntax_quote": GOOD + "log: {every: \"1}\n",
    "syntax_bracket": GOOD + "trainable: [lora, norms\n", "not_mapping": "- a\n- b\n", "scalar_top": "hello\n",
    "duplicate_top": GOOD + "train: {lr: 1.0}\n", "duplicate_inner": GOOD + "lora: {rank: 4, rank: 8}\n",
    "complex_key": GOOD + "? [a, b]\n: 1\n", "unknown_top": GOOD + "trianing: {steps: 1}\n",
    "unknown_inner": GOOD + "lora: {rnak: 4}\n", "unknown_deep": GOOD + "objectives: {kd: {wieght: 1}}\n",
    "missing_init": GOOD.replace("init: %s, " % tiny, ""), "missing_data": GOOD.replace("path: %s, " % os.path.join(WORK, "data.h5"), ""),
    "steps_string": GOOD + "log: {every: one}\n", "steps_octal_like": GOOD.replace("steps: 1,", "steps: 0o,"),
    "steps_float": GOOD.replace("steps: 1,", "steps: 1.5,"), "steps_negative": GOOD.replace("steps: 1,", "steps: -1,"),
    "steps_huge": GOOD.replace("steps: 1,", "steps: 99999999999999999999,"), "steps_quoted": GOOD.replace("steps: 1,", "steps: \"1\","),
    "steps_list": GOOD.replace("steps: 1,", "steps: [1],"), "steps_map": GOOD.replace("steps: 1,", "steps: {a: 1},"),
    "lr_nan": GOOD + "lora: {dropout: .nan}\n", "lr_inf": GOOD.replace("threads: 1}", "threads: 1, lr: .inf}"),
    "lr_negative": GOOD.replace("threads: 1}", "threads: 1, lr: -1.0}"), "lr_hex_float": GOOD.replace("threads: 1}", "threads: 1, lr: 0x1p-7}"),
    "bool_yes": GOOD.replace("threads: 1}", "threads: 1, recompute: yes}"), "bool_int": GOOD.replace("threads: 1}", "threads: 1, recompute: 1}"),
    "schedule_unknown": GOOD.replace("threads: 1}", "threads: 1, schedule: cosine_wobble}"),
    "precision_unknown": GOOD.replace("threads: 1}", "threads: 1, precision: fp7}"),
    "device_unknown": GOOD.replace("threads: 1}", "threads: 1, device: tpu}"),
    "preset_unknown": GOOD.replace("preset: aug", "preset: nosuch"), "preset_option_unknown": GOOD.replace("group_size: 8", "group_sise: 8"),
    "preset_option_range": GOOD.replace("group_size: 8", "group_size: -8"), "warmup_exceeds": GOOD.replace("warmup_steps: 0", "warmup_steps: 5"),
    "seq_len_0": GOOD.replace("seq_len: 32", "seq_len: 0"), "lora_rank_0": GOOD + "lora: {rank: 0}\n",
    "lora_target_unknown": GOOD + "lora: {targets: [q, zz]}\n", "trainable_unknown": GOOD + "trainable: [lora, wings]\n",
    "trainable_string": GOOD + "trainable: lora\n", "heads_without_weight": GOOD + "trainable: [heads]\n",
    "zero_2": GOOD + "distributed: {zero: 7}\n", "keep_last_0": GOOD.replace("checkpoint: {dir:", "checkpoint: {keep_last: 0, dir:"),
    "stages_not_list": GOOD + "stages: {a: 1}\n", "stage_no_name": GOOD + "stages:\n  - train: {steps: 1}\n",
    "stage_duplicate": GOOD + "stages:\n  - {name: a}\n  - {name: a}\n", "stage_sets_init": GOOD + "stages:\n  - {name: a, model: {init: x.h5}}\n",
    "stage_unknown_key": GOOD + "stages:\n  - {name: a, trian: {steps: 1}}\n", "stage_skip_string": GOOD + "stages:\n  - {name: a, skip: maybe}\n",
    "anchor_alias_loop": GOOD + "log: &x {every: *x}\n", "empty_file": "", "only_comment": "# nothing\n",
    "not_utf8": GOOD + "log: {every: \xff}\n", "null_byte": GOOD + "log: {every: 1}\x00\n",
    "init_missing_file": GOOD.replace(tiny, tiny + ".missing"),
}
for cid, text in yaml_bad.items():
    yaml_case(cid, text.encode("latin-1") if "\xff" in text else text)
# A valid file naming a model that does not exist: the message names the model, not the YAML.
CASES[-1] = (CASES[-1][0], tiny + ".missing") + CASES[-1][2:]

# ---- --set values: `linspec train GOOD.yaml --set ARG` (the message names the argument) ---------------------------
good = write(os.path.join(OUT, "yaml", "base.yaml"), GOOD)
sets = ["train.steps", "=3", "train.steps=", "train.stepz=3", "trian.steps=3", "train.steps=one", "train.steps=1.5",
        "train.steps=-2", "train.steps=[1]", "train.steps={a: 1}", "train.steps=\"1\"", "train.steps=010x",
        "train.lr=.nan", "train.lr=abc", "train.lr=0x1p-7", "train.recompute=yes", "train.schedule=wobble",
        "train.warmup_steps=9", "model.attention.preset=nosuch", "model.attention.group_size=-1",
        "model.attention.nosuch=1", "lora.targets=[q, zz]", "trainable=[wings]", "train.steps={",
        "train.steps=[", "stages.nosuch.train.lr=1", "train=3", "train.steps.x=3", "data.seq_len=0",
        "objectives.kd.weight=-1", "checkpoint.keep_last=0", "distributed.zero=9", ".=1", "train..steps=1"]
for i, s in enumerate(sets):
    case(f"set/{i}_{s[:24]}", s, good, "train", good, "--set", s)

for cid, expect, size_file, argv in CASES:
    for field in (cid, expect, size_file) + tuple(argv):
        assert "\t" not in field and "\n" not in field and SEP not in field, cid
    print("\t".join([cid, expect or "-", size_file, SEP.join(argv)]))  # "-": no message expected (baselines)
