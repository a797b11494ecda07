#!/usr/bin/env bash
# The real SmolLM2-135M: convert (or reuse $LINSPEC_SMOLLM2_H5), linearize to `aug`, and check with `verify` that the
# parallel, recurrent and tree forms agree (random linear-attention parameters so the global and conv branches
# carry signal; first layers only, to keep the test short); a fresh checkpoint's diagnostics show a silent global
# branch; the linear checkpoint loads for `eval`; bad input exits 2 and leaves no output behind.
# Usage: test_linearize_verify.sh LINSPEC_BINARY SOURCE_DIR   (model: $LINSPEC_SMOLLM2_GGUF)
set -euo pipefail
LINSPEC=${1:?linspec binary}
SRC=${2:?source dir}
GGUF=${LINSPEC_SMOLLM2_GGUF:-/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ -n ${LINSPEC_SMOLLM2_H5:-} && -f ${LINSPEC_SMOLLM2_H5} ]]; then
  BASE=$LINSPEC_SMOLLM2_H5
else
  [[ -f $GGUF ]] || fail "SmolLM2 GGUF not found at $GGUF (run launch/setup.sh or set LINSPEC_SMOLLM2_GGUF)"
  BASE=$WORK/smollm2.h5
  "$LINSPEC" convert --from "$GGUF" --out "$BASE"
fi

LIN=$WORK/aug.h5
"$LINSPEC" linearize --in "$BASE" --attention aug --keep-softmax 1 --out "$LIN"
[[ -f $LIN ]] || fail "linearize succeeded but $LIN is missing"

# Perturbed: every branch active, so the forms must agree on all of them. One thread: token-by-token decoding is
# latency-bound, and OpenMP barriers on a shared, busy machine cost more than they save.
"$LINSPEC" --threads 1 verify --checkpoint "$LIN" --len 200 --layers 3 --perturb --seed 5 --json "$WORK/verify.json" ||
  fail "verify reported a mismatch (exit $?)"
# Fresh: exactly what linearize wrote (zero conv, λ_global = 0).
"$LINSPEC" --threads 1 verify --checkpoint "$LIN" --len 72 --layers 2 --tree-nodes 8 --json "$WORK/fresh.json" ||
  fail "verify of the fresh checkpoint reported a mismatch"
# f64: the forms are the same algorithm, so they agree to rounding of f64, far below what fp32 can show.
"$LINSPEC" --threads 1 verify --checkpoint "$LIN" --len 136 --layers 3 --perturb --seed 7 --tree-nodes 8 --dtype f64 \
  --tolerance 1e-10 --json "$WORK/f64.json" || fail "verify --dtype f64 found a form differing by more than 1e-10"

python3 - "$WORK/verify.json" "$WORK/fresh.json" <<'PY'
import json, sys
v, fresh = (json.load(open(p)) for p in sys.argv[1:3])
errors = []
def check(cond, what):
    if not cond: errors.append(what)
for key in ["recurrent_vs_parallel_err", "prefill_vs_parallel_err", "tree_vs_sequential_err",
            "tree_vs_parallel_err", "advance_vs_parallel_err"]:
    check(key in v, f"missing {key}")
    check(key in v and v[key] <= 1e-4, f"{key} = {v.get(key)}")
check(v["passed"] is True and v["len"] == 200 and v["layers_checked"] == 3, "passed/len/layers")
check(v["attention"]["preset"] == "aug" and v["attention"]["keep_softmax_layers"] == [1], "attention section")
check(v["attention"]["options"]["group_size"] == 64 and v["attention"]["options"]["conv_taps"] == 32, "options")
ps = [t["P"] for t in v["trees"]]
for p in (0, 1, 30, 61, 62, 63, 64):  # P < C-1 and P mod G in {0, G-3, G-2, G-1}
    check(p in ps, f"tree at P={p} missing (got {ps})")
check(max(t["max_depth"] for t in v["trees"]) == 5, "tree depth 5")
L = v["layers"]
check([l["attention"] for l in L] == ["aug", "softmax", "aug"], f"layer kinds {[l['attention'] for l in L]}")
for l in (L[0], L[2]):
    b = l["branches"]
    check(all(b.get(k, 0) > 0 for k in ("local_rms", "global_rms", "conv_rms", "output_rms")), f"branches {b}")
    # S (64x64) + the group's k and v (64 x 64 each) + 31 values of v, per kv head, f32
    check(l["state_bytes"] == 3 * (64 * 64 + 2 * 64 * 64 + 31 * 64) * 4, f"aug state bytes {l['state_bytes']}")
check(L[1]["state_bytes"] >= 2 * 3 * 200 * 64 * 4, "softmax layer keeps a KV cache")
fb = fresh["layers"][0]["branches"]
check(fb["global_rms"] == 0 and fb["conv_rms"] == 0 and fb["local_rms"] > 0, f"fresh branches {fb}")
check(fresh["layers"][0]["lambda_global"] == 0 and fresh["layers"][0]["lambda_local"] == 1, "fresh lambdas")
if errors:
    print("FAIL:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
print("ok: forms agree:", {k: v[k] for k in v if k.endswith("_err")})
PY

# The linear checkpoint loads through the common model loader (eval).
head -c 4000 "$SRC/README.md" > "$WORK/text.txt"
"$LINSPEC" eval --checkpoint "$LIN" --data "$WORK/text.txt" --ppl --ctx 64 --max-tokens 128 --json "$WORK/eval.json"
python3 -c "import json,sys,math; r=json.load(open(sys.argv[1])); assert math.isfinite(r['ppl']) and r['ppl']>1, r" "$WORK/eval.json"

# Re-linearizing to another preset works with --force and replaces the attention section.
"$LINSPEC" linearize --in "$LIN" --attention elu+conv --set conv_taps=4 --out "$WORK/elu.h5" --force
"$LINSPEC" info --json "$WORK/elu.h5" > "$WORK/elu_info.json"
python3 - "$WORK/elu_info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
att = info["config"]["attention"]
names = {t["name"] for t in info["tensors"]}
assert att["preset"] == "elu+conv" and att["options"]["conv_taps"] == 4 and att["keep_softmax_layers"] == [], att
assert "model/layers.0.self_attn.la.conv_w" in names and "model/layers.0.self_attn.la.lambda_global" not in names
print("ok: re-linearized to elu+conv")
PY

expect_exit2() {
  local what=$1; shift
  set +e
  "$@" 2> "$WORK/err.txt"
  local rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "$what: exit $rc, expected 2 ($(cat "$WORK/err.txt"))"
  [[ -s $WORK/err.txt ]] || fail "$what: no message"
  echo "ok ($what): $(tail -n1 "$WORK/err.txt")"
}
expect_exit2 "unknown preset" "$LINSPEC" linearize --in "$BASE" --attention nope --out "$WORK/bad1.h5"
expect_exit2 "group_size=0" "$LINSPEC" linearize --in "$BASE" --attention aug --set group_size=0 --out "$WORK/bad2.h5"
expect_exit2 "unknown option" "$LINSPEC" linearize --in "$BASE" --attention aug --set bogus=1 --out "$WORK/bad3.h5"
expect_exit2 "conv_taps=0" "$LINSPEC" linearize --in "$BASE" --attention local+conv --set conv_taps=0 --out "$WORK/bad4.h5"
expect_exit2 "kept layer out of range" "$LINSPEC" linearize --in "$BASE" --attention aug --keep-softmax 30 --out "$WORK/bad5.h5"
expect_exit2 "re-linearize without --force" "$LINSPEC" linearize --in "$LIN" --attention elu --out "$WORK/bad6.h5"
expect_exit2 "re-linearize to the same preset without --force" "$LINSPEC" linearize --in "$LIN" --attention aug --out "$WORK/bad7.h5"
before=$(sha256sum "$LIN")
expect_exit2 "existing --out" "$LINSPEC" linearize --in "$BASE" --attention aug --out "$LIN"
[[ $(sha256sum "$LIN") == "$before" ]] || fail "an existing --out was modified"
echo '[0, 5]' > "$WORK/badtree.json"
expect_exit2 "malformed tree file" "$LINSPEC" verify --checkpoint "$LIN" --len 8 --tree "$WORK/badtree.json" --json "$WORK/bad.json"
for f in bad1 bad2 bad3 bad4 bad5 bad6 bad7; do [[ ! -e $WORK/$f.h5 ]] || fail "$f.h5 was written"; done
[[ ! -e $WORK/bad.json ]] || fail "a report was written for bad input"
ls "$WORK" | grep -q '\.tmp\.' && fail "temporary files left behind"
echo "ok: linearize + verify on SmolLM2"
