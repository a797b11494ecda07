#!/usr/bin/env bash
# Lossless greedy speculation at the size the issue asks for: 20 prompts x 128 new tokens, for the softmax SmolLM2 and
# its `aug` linearization (default G = 64, C = 32), speculative output token-identical to AR greedy on every prompt.
# The prompts are 24 tokens long (shorter than C - 1 = 31: the conv history is still partial when speculation starts)
# and 128 new tokens cross the group boundaries at 64 and 128. Heads are untrained (LM-head copies): the exactness of the
# tree machinery is under test here, not the acceptance rate.
# Usage: test_speculative_lossless_20x128.sh LINSPEC_BINARY SOURCE_DIR   (model path: $LINSPEC_SMOLLM2_GGUF)
set -euo pipefail
LINSPEC=${1:?linspec binary}
GGUF=${LINSPEC_SMOLLM2_GGUF:-/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=/usr/share/doc/python3.11/html/_sources/tutorial/controlflow.rst.txt
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $GGUF ]] || fail "SmolLM2 GGUF not found at $GGUF (run launch/setup.sh)"
[[ -f $TEXT ]] || fail "corpus file $TEXT missing (python3.11-doc, installed by launch/setup.sh)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$LINSPEC" convert --from "$GGUF" --out "$WORK/softmax.h5" 2>/dev/null
"$LINSPEC" linearize --in "$WORK/softmax.h5" --attention aug --out "$WORK/aug.h5" 2>/dev/null
# A small tree (root + 6 paths over 3 heads) keeps 20 x 128 tokens per model affordable.
echo '{"paths": [[0], [1], [0, 0], [0, 1], [0, 0, 0], [0, 0, 0, 0]]}' >"$WORK/tree.json"

for model in softmax aug; do
  "$LINSPEC" eval --checkpoint "$WORK/$model.h5" --data "$TEXT" --speculative heads --fresh-heads \
    --tree "$WORK/tree.json" --prompts 20 --prompt-len 24 --new-tokens 128 --batch 4 --json "$WORK/$model.json" 2>/dev/null
  python3 - "$WORK/$model.json" "$model" <<'PY'
import json, sys
path, model = sys.argv[1], sys.argv[2]
s = json.load(open(path))["speculative"]
assert s["new_tokens"] == 20 * 128, f"{model}: {s['new_tokens']} new tokens, expected 2560"
assert s["identical_to_ar"], f"{model}: speculative differs from AR on {s['prompts_differing_from_ar']} prompts"
print(f"{model}, 20 prompts of 24 tokens x 128: identical to AR ({s['mean_accepted_tokens_per_step']:.2f} tokens/step)")
PY
done
echo "PASS: test_speculative_lossless_20x128"
