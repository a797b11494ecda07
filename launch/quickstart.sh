#!/usr/bin/env bash
# One command: install, build, and run the main job on the embedded default (SmolLM2-135M-Instruct + the Python 3.11
# documentation sources from Debian's python3.11-doc as the corpus):
#   convert -> prepare -> linearize to `aug` -> mpirun -np 2 fine-tune (CE + LoRA + draft heads) -> export ->
#   eval report (perplexity before/after, AR vs speculative decoding) -> speculative generation -> summary.
# Environment: LINSPEC_RANKS (2), LINSPEC_STEPS (configs/quickstart.yaml), LINSPEC_WORK (out/quickstart).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${LINSPEC_BUILD_DIR:-$ROOT/build}"
CACHE_DIR="${LINSPEC_CACHE:-$HOME/.cache/linspec}"
WORK="${LINSPEC_WORK:-$ROOT/out/quickstart}"
RANKS="${LINSPEC_RANKS:-2}"
bash "$ROOT/launch/setup.sh"
bash "$ROOT/launch/build.sh"
LINSPEC="$BUILD/bin/linspec"
mkdir -p "$WORK"
cd "$ROOT"  # configs/quickstart.yaml names its paths relative to the repository root
started=$SECONDS
step() { echo; echo "== [$((SECONDS - started))s] $* =="; }

step "self-check: GEMM throughput"
"$LINSPEC" bench gemm --json "$WORK/bench_gemm.json"

step "convert SmolLM2-135M-Instruct (GGUF Q4_1) -> $WORK/smollm2.h5"
[[ -s "$WORK/smollm2.h5" ]] || "$LINSPEC" convert --from "$CACHE_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" --out "$WORK/smollm2.h5"
"$LINSPEC" info "$WORK/smollm2.h5" | head -12

step "prepare the corpus (Python 3.11 documentation sources) -> token shards"
if [[ ! -s "$WORK/corpus_tokens.h5" ]]; then
  find /usr/share/doc/python3.11/html/_sources -name '*.txt' | sort | xargs cat >"$WORK/corpus.txt"
  "$LINSPEC" prepare --tokenizer "$WORK/smollm2.h5" --input "$WORK/corpus.txt" --out "$WORK/corpus_tokens.h5" \
    --val-fraction 0.01
fi

PPL_ARGS=(--data "$WORK/corpus_tokens.h5" --ppl --ctx 256 --max-tokens 8192)
step "perplexity of the softmax model (validation split)"
"$LINSPEC" eval --checkpoint "$WORK/smollm2.h5" "${PPL_ARGS[@]}" --json "$WORK/eval_softmax.json"

step "linearize to aug (local + global + conv; fresh: conv 0, lambda_global 0)"
"$LINSPEC" linearize --in "$WORK/smollm2.h5" --attention aug --out "$WORK/aug_init.h5" --force
"$LINSPEC" eval --checkpoint "$WORK/aug_init.h5" "${PPL_ARGS[@]}" --json "$WORK/eval_aug_before.json"

step "fine-tune under mpirun: $RANKS rank(s), CE + LoRA + draft heads (configs/quickstart.yaml)"
rm -rf "$WORK/run"
TRAIN_SET=()
[[ -n "${LINSPEC_STEPS:-}" ]] && TRAIN_SET+=(--set "train.steps=$LINSPEC_STEPS")
LINSPEC_BIN="$LINSPEC" bash "$ROOT/launch/train.sh" -n "$RANKS" configs/quickstart.yaml "${TRAIN_SET[@]}"
SNAP="$WORK/run/$(cat "$WORK/run/latest")"
python3 "$ROOT/launch/plot_metrics" "$WORK/run"

step "export the last snapshot -> $WORK/serve.h5 (LoRA merged; heads kept; optimizer state dropped)"
"$LINSPEC" export --checkpoint "$SNAP" --out "$WORK/serve.h5"

step "check that the parallel, recurrent and tree forms of the fine-tuned model agree (fp32, tolerance 1e-4)"
# Exit 1 means an error above the tolerance; the summary shows it (re-run with --dtype f64 to separate rounding).
"$LINSPEC" verify --checkpoint "$WORK/serve.h5" --len 136 --json "$WORK/verify.json" || true

step "evaluation report: perplexity after fine-tuning, AR vs speculative (heads) decoding"
# A 9-node tree (configs/trees/cpu-9.json): on 2 CPU cores verifying the 64-node default costs ~5 AR steps.
"$LINSPEC" eval --checkpoint "$WORK/serve.h5" "${PPL_ARGS[@]}" --decode --speculative heads --tree configs/trees/cpu-9.json --prompts 4 \
  --prompt-len 48 --new-tokens 64 --json "$WORK/eval_aug_after.json"

step "speculative generation (greedy; identical to plain greedy by construction)"
"$LINSPEC" generate --checkpoint "$WORK/serve.h5" --speculative heads --tree configs/trees/cpu-9.json --max-new 48 \
  --prompt "Python's for statement iterates over"
echo

step "summary"
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
load = lambda n: json.load(open(os.path.join(w, n)))
soft, before, after, ver = load("eval_softmax.json"), load("eval_aug_before.json"), load("eval_aug_after.json"), load("verify.json")
s, d = after["speculative"], after["decode"]
errs = {k: v for k, v in ver.items() if k.endswith("_err")}
print(f"perplexity (validation, ctx {soft['ctx']}): softmax {soft['ppl']:.2f} | aug before fine-tuning {before['ppl']:.1f}"
      f" | aug after {after['ppl']:.2f}")
print(f"forms (verify, fp32): max relative logit error {max(errs.values()):.2e} -> {'PASS' if ver['passed'] else 'FAIL'}"
      f" (tolerance {ver['tolerance']:g})")
print(f"decode, batch 1, {after['threads']} thread(s): AR {d['decode_tokens_per_s']:.1f} tokens/s, speculative (heads, "
      f"{s['tree']['nodes']}-node tree) {s['decode_tokens_per_s']:.1f} tokens/s -> speedup {s['speedup_vs_ar']:.2f}x")
print(f"mean accepted tokens per step {s['mean_accepted_tokens_per_step']:.2f} (bonus token counted: "
      f"{s['bonus_token_counted']}); speculative output identical to AR greedy: {s['identical_to_ar']}")
print(f"outputs: {w} (eval_*.json, run/metrics.jsonl, run/loss.png, run/val_ppl.png, serve.h5)")
PY
echo "quickstart finished in $((SECONDS - started))s (after setup and build)"
