#!/usr/bin/env bash
# End to end on the real SmolLM2: convert → eval --ppl equals HF transformers' perplexity under the same protocol
# (tests/reference/golden/smollm2_ppl.json, from tests/reference/make_ppl_golden.py) → generate → prepare; bad inputs
# exit 2 and leave nothing behind.
# Usage: test_eval_generate.sh LINSPEC_BINARY SOURCE_DIR   (model path: $LINSPEC_SMOLLM2_GGUF)
set -euo pipefail
LINSPEC=${1:?linspec binary}
SRC=${2:?source dir}
GGUF=${LINSPEC_SMOLLM2_GGUF:-/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}
GOLDEN=$SRC/tests/reference/golden/smollm2_ppl.json
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $GGUF ]] || fail "SmolLM2 GGUF not found at $GGUF (run launch/setup.sh)"
TEXT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['text'])" "$GOLDEN")
[[ -f $TEXT ]] || fail "corpus file $TEXT missing (run launch/setup.sh: it installs python3.11-doc)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$LINSPEC" convert --from "$GGUF" --out "$WORK/m.h5" 2>/dev/null

# Perplexity against the independent implementation.
read -r CTX MAXT < <(python3 -c "import json,sys; g=json.load(open(sys.argv[1])); print(g['ctx'], g['max_tokens'])" "$GOLDEN")
"$LINSPEC" eval --checkpoint "$WORK/m.h5" --data "$TEXT" --ppl --ctx "$CTX" --max-tokens "$MAXT" --json "$WORK/ppl.json"
python3 - "$WORK/ppl.json" "$GOLDEN" <<'PY'
import json, sys
r, g = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for key in ("ppl", "tokens", "scored_tokens", "ctx", "hardware"):
    assert key in r, f"eval JSON lacks '{key}'"
assert r["scored_tokens"] == g["scored_tokens"], (r["scored_tokens"], g["scored_tokens"])
rel = abs(r["ppl"] - g["ppl"]) / g["ppl"]
print(f"ppl linspec {r['ppl']:.6f} vs transformers {g['ppl']:.6f} (rel err {rel:.2e})")
assert rel < 1e-4, f"perplexity differs from the golden by {rel:.2e}"
PY

# Greedy generation: deterministic, stdout holds only the text.
OUT1=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "The capital of France is" --max-new 8 2>/dev/null)
OUT2=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "The capital of France is" --max-new 8 2>/dev/null)
[[ -n $OUT1 ]] || fail "generate printed nothing"
[[ $OUT1 == "$OUT2" ]] || fail "greedy generation is not deterministic: '$OUT1' vs '$OUT2'"
echo "generated: $OUT1"
S1=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "Once upon a time" --max-new 8 --temperature 0.8 --seed 3 2>/dev/null)
S2=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "Once upon a time" --max-new 8 --temperature 0.8 --seed 3 2>/dev/null)
[[ $S1 == "$S2" ]] || fail "seeded sampling is not reproducible"

# prepare: token shards with a validation split; eval reads the val split.
"$LINSPEC" prepare --tokenizer "$WORK/m.h5" --input "$TEXT" --out "$WORK/data.h5" --val-fraction 0.2
"$LINSPEC" eval --checkpoint "$WORK/m.h5" --data "$WORK/data.h5" --ppl --ctx 64 --max-tokens 128 --json "$WORK/v.json"

# Bad input: exit 2, message names the culprit, nothing written.
expect_exit2() {
  local what=$1; shift
  set +e; "$@" >"$WORK/out.txt" 2>"$WORK/err.txt"; local rc=$?; set -e
  [[ $rc == 2 ]] || fail "$what: exit $rc, expected 2 ($(cat "$WORK/err.txt"))"
}
expect_exit2 "missing checkpoint" "$LINSPEC" eval --checkpoint "$WORK/nope.h5" --data "$TEXT" --ppl --json "$WORK/x.json"
grep -q "nope.h5" "$WORK/err.txt" || fail "missing checkpoint not named: $(cat "$WORK/err.txt")"
[[ ! -e $WORK/x.json ]] || fail "a report was written for a failed eval"
expect_exit2 "missing data" "$LINSPEC" eval --checkpoint "$WORK/m.h5" --data "$WORK/none.txt" --ppl
grep -q "none.txt" "$WORK/err.txt" || fail "missing data file not named"
expect_exit2 "negative temperature" "$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt hi --temperature -1
expect_exit2 "prepare onto existing" "$LINSPEC" prepare --tokenizer "$WORK/m.h5" --input "$TEXT" --out "$WORK/data.h5"
expect_exit2 "unknown flag" "$LINSPEC" eval --checkpoint "$WORK/m.h5" --bogus
expect_exit2 "not a checkpoint" "$LINSPEC" generate --checkpoint "$TEXT" --prompt hi
echo "PASS"
