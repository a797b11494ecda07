#!/usr/bin/env bash
# Converts the real SmolLM2-135M-Instruct Q4_1 GGUF and checks the checkpoint:
#  - `info --json`: 30 layers, hidden 576, 272 tensors named model/..., and selected tensors bit-identical
#    (xxh64 of the f32 bytes) to gguf-py's dequantisation + transformers' Q/K un-permutation
#    (tests/reference/golden/smollm2_tensors.json from tests/reference/make_smollm2_tensor_goldens.py);
#  - a second convert to the same --out exits 2 and leaves the file untouched;
#  - a truncated GGUF exits 2 with a message naming the file and leaves no output.
# Usage: test_convert_smollm2.sh LINSPEC_BINARY SOURCE_DIR   (model path: $LINSPEC_SMOLLM2_GGUF)
set -euo pipefail
LINSPEC=${1:?linspec binary}
SRC=${2:?source dir}
GGUF=${LINSPEC_SMOLLM2_GGUF:-/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}
GOLDEN=$SRC/tests/reference/golden/smollm2_tensors.json

if [[ ! -f $GGUF ]]; then
  echo "FAIL: SmolLM2 GGUF not found at $GGUF (run launch/setup.sh or set LINSPEC_SMOLLM2_GGUF)" >&2
  exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/smollm2.h5

"$LINSPEC" convert --from "$GGUF" --out "$OUT"
[[ -f $OUT ]] || { echo "FAIL: convert succeeded but $OUT is missing" >&2; exit 1; }
"$LINSPEC" info --json "$OUT" > "$WORK/info.json"
"$LINSPEC" info --json "$GGUF" > "$WORK/gguf_info.json"
"$LINSPEC" info "$OUT"

python3 - "$WORK/info.json" "$WORK/gguf_info.json" "$GOLDEN" <<'PY'
import json, sys
info, gguf, golden = (json.load(open(p)) for p in sys.argv[1:4])
errors = []
def check(cond, what):
    if not cond: errors.append(what)
c = info["config"]
check(info["format"] == "linspec", f"format {info['format']}")
check(c["num_layers"] == 30, f"num_layers {c['num_layers']}")
check(c["hidden_size"] == 576, f"hidden_size {c['hidden_size']}")
check((c["num_heads"], c["num_kv_heads"], c["head_dim"]) == (9, 3, 64), "heads")
check(c["intermediate_size"] == 1536 and c["vocab_size"] == 49152, "ffn/vocab")
check(c["rope_theta"] == 100000.0 and c["tie_word_embeddings"], "rope theta / tied embeddings")
check(len(info["tensors"]) == golden["tensor_count"] == 272, f"tensor count {len(info['tensors'])}")
check(all(t["name"].startswith("model/") and t["dtype"] == "f32" for t in info["tensors"]), "names/dtypes")
check(info["tokenizer"]["type"] == "bpe" and info["tokenizer"]["pre"] == "smollm", "tokenizer")
census = {}
for t in gguf["tensors"]:
    census[t["dtype"]] = census.get(t["dtype"], 0) + 1
check(census == golden["census"], f"GGUF census {census} vs {golden['census']}")
by_name = {t["name"]: t for t in info["tensors"]}
for name, ref in golden["tensors"].items():
    got = by_name.get(name)
    if got is None:
        errors.append(f"{name} missing"); continue
    check(got["shape"] == ref["shape"], f"{name} shape {got['shape']} vs {ref['shape']}")
    check(got["xxh64"] == ref["xxh64"], f"{name} xxh64 {got['xxh64']} vs gguf-py/transformers {ref['xxh64']}")
print("GGUF tensor census:", census)
if errors:
    print("FAIL:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(golden['tensors'])} tensors bit-identical to the gguf-py/transformers reference")
PY

# Refuses to overwrite: exit 2, file untouched.
before=$(stat -c '%Y %s' "$OUT"; cksum < "$OUT")
set +e
"$LINSPEC" convert --from "$GGUF" --out "$OUT" 2> "$WORK/err.txt"
rc=$?
set -e
after=$(stat -c '%Y %s' "$OUT"; cksum < "$OUT")
[[ $rc -eq 2 ]] || { echo "FAIL: second convert exited $rc, expected 2" >&2; exit 1; }
grep -q -- "--force" "$WORK/err.txt" || { echo "FAIL: message does not mention --force: $(cat "$WORK/err.txt")" >&2; exit 1; }
[[ $before == "$after" ]] || { echo "FAIL: existing --out was modified" >&2; exit 1; }

# A truncated GGUF: exit 2, the message names the file, nothing written.
head -c 40000000 "$GGUF" > "$WORK/truncated.gguf"
set +e
"$LINSPEC" convert --from "$WORK/truncated.gguf" --out "$WORK/bad.h5" 2> "$WORK/err2.txt"
rc=$?
set -e
[[ $rc -eq 2 ]] || { echo "FAIL: truncated GGUF: exit $rc, expected 2" >&2; exit 1; }
grep -q "truncated.gguf" "$WORK/err2.txt" || { echo "FAIL: message does not name the file: $(cat "$WORK/err2.txt")" >&2; exit 1; }
if ls "$WORK" | grep -q '^bad\.h5'; then echo "FAIL: output left behind after a failed convert" >&2; exit 1; fi
echo "PASS: test_convert_smollm2 ($(cat "$WORK/err2.txt"))"
