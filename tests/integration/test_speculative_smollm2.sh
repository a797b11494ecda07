#!/usr/bin/env bash
# Speculative decoding on the real SmolLM2: greedy speculative output equals AR greedy token for token, with draft
# heads over a tree (untrained heads: the tree machinery, not their quality, is under test) and with a first-layers
# draft model, for the softmax model (and heads for its aug linearization); the eval JSON carries the decode /
# speculative / context-sweep fields and the PNG is made; bad heads / tree input exits 2.
# Usage: test_speculative_smollm2.sh LINSPEC_BINARY SOURCE_DIR   (model path: $LINSPEC_SMOLLM2_GGUF)
set -euo pipefail
LINSPEC=${1:?linspec binary}
SRC=${2:?source dir}
GGUF=${LINSPEC_SMOLLM2_GGUF:-/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $GGUF ]] || fail "SmolLM2 GGUF not found at $GGUF (run launch/setup.sh)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$LINSPEC" convert --from "$GGUF" --out "$WORK/m.h5" 2>/dev/null
# A 16-node tree (root + 15 paths over 3 heads) keeps the untrained-heads run short.
cat >"$WORK/tree.json" <<'JSON'
{"paths": [[0], [1], [2], [3], [0, 0], [0, 1], [1, 0], [2, 0], [0, 2], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0],
           [0, 0, 0, 0], [0, 0, 0, 1]]}
JSON

# Heads: 2 prompts x 128 new tokens, AR and speculative on the same prompts in one process
# (test_speculative_lossless_20x128.sh runs 20 prompts).
"$LINSPEC" eval --checkpoint "$WORK/m.h5" --decode --speculative heads --fresh-heads --tree "$WORK/tree.json" \
  --prompts 2 --new-tokens 128 --context-sweep 64,256 --sweep-decode-tokens 4 --json "$WORK/heads.json"
# Draft model: the first 10 layers, 2 prompts x 128 new tokens.
"$LINSPEC" eval --checkpoint "$WORK/m.h5" --speculative draft --draft first-layers:10 --gamma 4 \
  --prompts 2 --new-tokens 128 --json "$WORK/draft.json"

python3 - "$WORK/heads.json" "$WORK/draft.json" <<'PY'
import json, os, sys
h, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for r in (h, d):
    for key in ("hardware", "threads", "dtype", "attention", "decode", "speculative"):
        assert key in r, f"eval JSON lacks '{key}'"
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "new_tokens"):
        assert key in r["decode"], f"decode lacks '{key}'"
    s = r["speculative"]
    for key in ("mode", "decode_tokens_per_s", "mean_accepted_tokens_per_step", "bonus_token_counted",
                "mean_accepted_candidates_per_step", "speedup_vs_ar", "identical_to_ar", "steps"):
        assert key in s, f"speculative lacks '{key}'"
    assert s["identical_to_ar"], f"{s['mode']}: greedy speculative output differs from AR on {s['prompts_differing_from_ar']} prompts"
    assert s["new_tokens"] == r["decode"]["new_tokens"]
    print(f"{s['mode']}: identical to AR over {s['new_tokens']} tokens, {s['mean_accepted_tokens_per_step']:.2f} "
          f"tokens/step (bonus counted), speedup {s['speedup_vs_ar']:.2f}x")
assert h["speculative"]["tree"]["nodes"] == 16
assert d["speculative"]["gamma"] == 4 and d["speculative"]["draft_layers"] == 10
sweep = h["context_sweep"]
assert [p["context"] for p in sweep["points"]] == [64, 256]
for p in sweep["points"]:
    for key in ("state_bytes", "rss_bytes", "decode_tokens_per_s", "prefill_tokens_per_s"):
        assert key in p, f"context sweep point lacks '{key}'"
assert sweep["points"][1]["state_bytes"] > sweep["points"][0]["state_bytes"], "softmax KV cache must grow with context"
assert sweep["plot"] and os.path.getsize(sweep["plot"]) > 1000, "no PNG written"
PY

# aug (freshly linearized, G = 16 so 128 tokens cross 8+ groups): the tree form over the recurrent state.
"$LINSPEC" linearize --in "$WORK/m.h5" --attention aug --set group_size=16 --out "$WORK/aug.h5" 2>/dev/null
"$LINSPEC" eval --checkpoint "$WORK/aug.h5" --speculative heads --fresh-heads --tree "$WORK/tree.json" \
  --prompts 2 --new-tokens 128 --json "$WORK/aug.json"
python3 - "$WORK/aug.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["speculative"]
assert s["identical_to_ar"], f"aug: greedy speculative output differs from AR on {s['prompts_differing_from_ar']} prompts"
print(f"aug heads: identical to AR over {s['new_tokens']} tokens, {s['mean_accepted_tokens_per_step']:.2f} tokens/step")
PY

# The CLI path: generate --speculative heads prints the same text as plain greedy generation.
P="The capital of France is"
A=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "$P" --max-new 32 --ignore-eos 2>/dev/null)
B=$("$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "$P" --max-new 32 --ignore-eos --speculative heads \
  --fresh-heads --tree "$WORK/tree.json" 2>/dev/null)
[[ "$A" == "$B" ]] || fail "generate --speculative heads differs from greedy: '$B' vs '$A'"

# Bad input: a checkpoint without heads, a malformed tree file -> exit 2 naming the culprit.
set +e
"$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "$P" --speculative heads >/dev/null 2>"$WORK/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "draft/heads" "$WORK/err.txt" || fail "missing heads: exit $rc, $(cat "$WORK/err.txt")"
echo '{"paths": [[0], [1, 0]]}' >"$WORK/bad.json"
set +e
"$LINSPEC" generate --checkpoint "$WORK/m.h5" --prompt "$P" --speculative heads --fresh-heads --tree "$WORK/bad.json" \
  >/dev/null 2>"$WORK/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "bad.json" "$WORK/err.txt" || fail "bad tree: exit $rc, $(cat "$WORK/err.txt")"
echo "speculative SmolLM2: OK"
