#!/usr/bin/env bash
# `linspec export` on a tiny random LLaMA (tiny_hf_model.py, as test_train_mpi.sh makes it):
#  1. a softmax model trained 3 steps with LoRA, exported with --out: the file has no optimizer/trainer group and no
#     LoRA tensor, the LoRA update is in the weights, and eval --ppl / greedy generate agree with the snapshot;
#  2. --hf-dir: config.json carries the source config.json's values; the safetensors of the untrained model equal
#     the source model.safetensors byte for byte (f32), and are its round-to-nearest-even (bf16); `convert --from`
#     the exported trained directory gives the --out export's tensors bit for bit;
#     `export --checkpoint run` and `run/latest` export the snapshot the pointer names;
#  3. refusals, exit 2 and nothing written: --hf-dir of a linearized model, a corrupt snapshot (file and tensor
#     named), no output flag, an existing --out, a `latest` pointer naming a missing snapshot.
# Usage: test_export.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"
export OMP_NUM_THREADS=1
cat > exp.yaml <<'YAML'
model: {init: tiny.h5, attention: {preset: softmax}}
data: {path: data.h5, seq_len: 32}
train: {steps: 3, micro_batch: 2, grad_accum: 1, lr: 2.0e-2, warmup_steps: 0, threads: 1}
lora: {rank: 4, alpha: 8, targets: [q, k, v, o, up]}
trainable: [lora, norms]
checkpoint: {dir: run, every: 3}
eval: {every: 3, batches: 0}
log: {every: 1}
YAML
"$LINSPEC" train exp.yaml 2> train.log || fail "train: $(tail -5 train.log)"
SNAP=run/snapshot-3.h5

# `info --json` as lines: "groups g1 g2 ..." then "name xxh64" per tensor.
describe() { "$LINSPEC" info --json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("groups", *d.get("groups", ["(none)"]))
for t in d["tensors"]: print(t["name"], t["xxh64"])'; }
ppl() { "$LINSPEC" eval --checkpoint "$1" --data data.h5 --ppl --ctx 64 --json "$2" 2>/dev/null; }
gen() { "$LINSPEC" generate --checkpoint "$1" --prompt "the model reads" --max-new 24 --ignore-eos 2>/dev/null; }

# ---- 1. serving checkpoint of a LoRA snapshot ----
"$LINSPEC" export --checkpoint $SNAP --out serve.h5 --hf-dir serve_hf 2> export.log || fail "export: $(cat export.log)"
describe $SNAP > snap.txt
describe serve.h5 > serve.txt
describe tiny.h5 > tiny.txt
grep -q "^groups.* optimizer .*trainer" snap.txt || fail "the snapshot should hold optimizer and trainer: $(head -1 snap.txt)"
grep -q "lora_A" snap.txt || fail "the snapshot holds no LoRA tensors: the test cannot see a merge"
[[ $(head -1 serve.txt) == "groups config model tokenizer" ]] || fail "export groups: $(head -1 serve.txt)"
grep -q "lora" serve.txt && fail "LoRA tensors in the export: $(grep lora serve.txt | head -3)"
# Adapted projections changed, frozen ones did not (LoRA is merged, not dropped).
hash_of() { grep "^model/$2 " "$1" | cut -d' ' -f2; }
q=layers.0.self_attn.q_proj.weight; g=layers.0.mlp.gate_proj.weight
[[ $(hash_of serve.txt $q) != "$(hash_of tiny.txt $q)" ]] || fail "$q equals the base weight: LoRA not merged"
[[ $(hash_of serve.txt $g) == "$(hash_of tiny.txt $g)" ]] || fail "$g (no adapter) changed"
ppl $SNAP snap_ppl.json; ppl serve.h5 serve_ppl.json; ppl tiny.h5 tiny_ppl.json
python3 - <<'PY'
import json, sys
s, e, b = (json.load(open(f))["ppl"] for f in ("snap_ppl.json", "serve_ppl.json", "tiny_ppl.json"))
print(f"ppl: snapshot {s:.6f}, export {e:.6f}, untrained base {b:.6f}")
if abs(s - e) > 1e-6 * abs(s): sys.exit("FAIL: export and snapshot perplexities differ")
if abs(s - b) < 1e-4 * abs(b): sys.exit("FAIL: training changed nothing: the comparison cannot fail")
PY
[[ "$(gen serve.h5)" == "$(gen $SNAP)" ]] || fail "greedy text differs: '$(gen serve.h5)' vs '$(gen $SNAP)'"
echo "ok: export of $SNAP: no optimizer/trainer/LoRA, LoRA merged, same ppl and greedy text"
# The training directory and its `latest` pointer stand for the snapshot the pointer names.
"$LINSPEC" export --checkpoint run --out serve_dir.h5 2>/dev/null || fail "export --checkpoint run"
"$LINSPEC" export --checkpoint run/latest --out serve_latest.h5 2>/dev/null || fail "export --checkpoint run/latest"
for f in serve_dir.h5 serve_latest.h5; do
  cmp -s <(describe $f | grep '^model/') <(grep '^model/' serve.txt) || fail "$f differs from the export of $SNAP"
done
echo "ok: export of run and run/latest equal the export of $SNAP"

# ---- 2. HF directory ----
python3 - hf/config.json serve_hf/config.json <<'PY'
import json, sys
src, out = (json.load(open(p)) for p in sys.argv[1:])
for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "max_position_embeddings",
          "tie_word_embeddings", "bos_token_id", "eos_token_id", "architectures", "model_type", "hidden_act"):
    if out.get(k) != src[k]: sys.exit(f"FAIL: config.json {k}: {out.get(k)!r}, source {src[k]!r}")
for k, v in (("torch_dtype", "float32"), ("attention_bias", False), ("rope_scaling", None)):
    if k not in out or out[k] != v: sys.exit(f"FAIL: config.json {k}: {out.get(k, 'missing')!r}, expected {v!r}")
PY
"$LINSPEC" export --checkpoint tiny.h5 --hf-dir base_hf 2>/dev/null
"$LINSPEC" export --checkpoint tiny.h5 --hf-dir base_hf_bf16 --dtype bf16 2>/dev/null
python3 - hf/model.safetensors base_hf/model.safetensors base_hf_bf16/model.safetensors <<'PY'
import json, struct, sys
def read(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
src, f32, bf = (read(p) for p in sys.argv[1:])
if f32 != src: sys.exit(f"FAIL: f32 export differs from the source safetensors: {sorted(set(f32) ^ set(src))[:4]}")
def to_bf16(x):  # round to nearest even on the f32 bit pattern
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return (u + 0x7FFF + ((u >> 16) & 1)) >> 16
for k, (dt, shape, data) in src.items():
    want = [to_bf16(x) for x in struct.unpack("<%df" % (len(data) // 4), data)]
    got = list(struct.unpack("<%dH" % (len(bf[k][2]) // 2), bf[k][2]))
    if bf[k][:2] != ("BF16", shape) or got != want: sys.exit(f"FAIL: bf16 export of {k} is not RNE of the source")
print(f"safetensors: {len(src)} tensors equal to the source (f32) and its RNE rounding (bf16)")
PY
# The directory carries its own tokenizer (transformers reads it: test_export_transformers.sh), so it converts back.
for f in tokenizer.json tokenizer_config.json special_tokens_map.json generation_config.json; do
  [[ -s serve_hf/$f ]] || fail "--hf-dir wrote no $f"
done
"$LINSPEC" convert --from serve_hf --out roundtrip.h5 2>/dev/null
describe roundtrip.h5 | grep '^model/' > rt.txt
cmp -s rt.txt <(grep '^model/' serve.txt) || { diff rt.txt <(grep '^model/' serve.txt) | head -5; fail "HF round trip differs"; }
tok_info() { "$LINSPEC" info --json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["tokenizer"])'; }
[[ $(tok_info roundtrip.h5) == "$(tok_info serve.h5)" ]] || fail "tokenizer round trip: $(tok_info roundtrip.h5)"
ids() { "$LINSPEC" generate --checkpoint "$1" --prompt "$(head -c 2000 corpus.txt) <|endoftext|> 12345" --max-new 8 \
          --json "$1.ids.json" >/dev/null 2>&1; cat "$1.ids.json"; }
[[ $(ids roundtrip.h5) == "$(ids serve.h5)" ]] || fail "round trip tokenizes or generates differently"
echo "ok: --hf-dir: config.json, f32/bf16 safetensors, tokenizer files, convert round trip bit-identical"

# ---- 3. refusals ----
expect_exit2() {  # expect_exit2 LOGFILE PATTERN... -- ARGS
  local log=$1; shift; local pats=(); while [[ $1 != -- ]]; do pats+=("$1"); shift; done; shift
  local rc=0; "$LINSPEC" export "$@" 2> "$log" || rc=$?
  [[ $rc -eq 2 ]] || fail "export $*: exit $rc, expected 2: $(cat "$log")"
  for p in "${pats[@]}"; do grep -q -- "$p" "$log" || fail "export $*: message lacks '$p': $(cat "$log")"; done
}
"$LINSPEC" linearize --in tiny.h5 --attention aug --set group_size=8 --out lin.h5 2>/dev/null
expect_exit2 lin.log lin.h5 linear -- --checkpoint lin.h5 --hf-dir lin_hf --out lin_serve.h5
[[ ! -e lin_hf && ! -e lin_serve.h5 ]] || fail "refused linear export left $(ls -d lin_hf* lin_serve* 2>/dev/null)"
"$LINSPEC" export --checkpoint lin.h5 --out lin_serve.h5 2>/dev/null
[[ "$(gen lin_serve.h5)" == "$(gen lin.h5)" ]] || fail "linear serving export generates differently"

cp $SNAP corrupt.h5
python3 - hf/model.safetensors corrupt.h5 <<'PY'
import json, struct, sys
st = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", st[:8])[0]
info = json.loads(st[8:8 + n])["model.embed_tokens.weight"]
probe = st[8 + n + info["data_offsets"][0]:][:256]  # embeddings are frozen: the snapshot holds these bytes
data = bytearray(open(sys.argv[2], "rb").read())
at = data.find(probe)
assert at >= 0, "embedding bytes not found in the snapshot"
data[at + 100] ^= 0x40
open(sys.argv[2], "wb").write(bytes(data))
PY
expect_exit2 corrupt.log corrupt.h5 embed_tokens -- --checkpoint corrupt.h5 --out bad.h5 --hf-dir bad_hf
[[ -z $(ls -d bad* 2>/dev/null) ]] || fail "corrupt input left $(ls -d bad*)"
expect_exit2 none.log "--out" -- --checkpoint $SNAP
cp serve.h5 keep.h5
expect_exit2 exists.log keep.h5 -- --checkpoint $SNAP --out keep.h5
cmp -s serve.h5 keep.h5 || fail "an existing --out was modified"
mkdir stale && echo snapshot-9.h5 > stale/latest
expect_exit2 stale.log stale/latest snapshot-9.h5 -- --checkpoint stale --out stale_serve.h5
[[ ! -e stale_serve.h5 ]] || fail "a stale latest pointer left stale_serve.h5"
echo "ok: linearized --hf-dir, corrupt snapshot, no output, existing --out, stale pointer: exit 2, nothing written"
echo "PASS: test_export"
