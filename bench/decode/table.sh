#!/usr/bin/env bash
# The decode table of bench/results/decode/: AR and every speculative mode at every weight format, on one
# checkpoint, prompts from held-out text, batch 1, greedy, and held-out perplexity per weight format; llama.cpp's
# llama-bench on the same machine in the same sitting when LLAMA_BENCH and GGUF_DIR are given (GGUF_DIR holding
# smollm2-{F32,BF16,Q8_0}.gguf).
#   bench/decode/table.sh CHECKPOINT OUT_DIR
# Env: LINSPEC (binary), DATA (token shards; default out/quickstart/corpus_tokens.h5), NEW_TOKENS (64), PROMPTS (4).
set -euo pipefail
CKPT=${1:?checkpoint}; OUT=${2:?output dir}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LINSPEC=${LINSPEC:-$ROOT/build/bin/linspec}
DATA=${DATA:-$ROOT/out/quickstart/corpus_tokens.h5}
NEW=${NEW_TOKENS:-64}; PROMPTS=${PROMPTS:-4}
mkdir -p "$OUT"
# The speculative modes the checkpoint can run: heads (static and dynamic trees) with /draft/heads, eagle with
# /draft/eagle, and always a first-layers draft model (MODES overrides, e.g. "eagle:auto heads:auto").
if [[ -z "${MODES:-}" ]]; then
  groups=$("$LINSPEC" info --json "$CKPT" 2>/dev/null | python3 -c '
import json, sys
names = [t["name"] for t in json.load(sys.stdin)["tensors"]]
print(" ".join(g for g in ("heads", "eagle") if any(n.startswith(f"draft/{g}/") for n in names)))')
  MODES=""
  [[ " $groups " == *" heads "* ]] && MODES+="heads:default heads:auto "
  [[ " $groups " == *" eagle "* ]] && MODES+="eagle:auto "
  MODES+="draft:first-layers:4"
fi
for w in f32 bf16 int8; do
  "$LINSPEC" eval --checkpoint "$CKPT" --weights $w --ppl --ctx 256 --max-tokens 8192 --data "$DATA" \
    --json "$OUT/ppl_$w.json" >/dev/null
  "$LINSPEC" bench decode --checkpoint "$CKPT" --weights $w --steps 7 --json "$OUT/cost_$w.json" >/dev/null
  for mode in $MODES; do
    kind=${mode%%:*}; arg=${mode#*:}
    if [[ $kind == draft ]]; then extra=(--speculative draft --draft "$arg"); else extra=(--speculative $kind --tree "$arg"); fi
    "$LINSPEC" eval --checkpoint "$CKPT" --weights $w --decode "${extra[@]}" --data "$DATA" --prompts "$PROMPTS" \
      --new-tokens "$NEW" --json "$OUT/spec_${w}_${kind}_${arg//[:\/.]/_}.json" >/dev/null
  done
done
# Linear attention: decode speed and state size independent of the context (int8 weights).
"$LINSPEC" eval --checkpoint "$CKPT" --weights int8 --context-sweep 1024,8192,32768 --data "$DATA" \
  --json "$OUT/context_int8.json" --plot "$OUT/context_int8.png" >/dev/null
if [[ -n "${LLAMA_BENCH:-}" && -n "${GGUF_DIR:-}" ]]; then
  for t in F32 BF16 Q8_0; do
    "$LLAMA_BENCH" -m "$GGUF_DIR/smollm2-$t.gguf" -t "$(nproc)" -p 0 -n 128 -r 3 -o json >"$OUT/llama_$t.json" 2>/dev/null
  done
fi
python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
rows = ["| weights | held-out ppl | mode | tokens/s | × AR | tokens/step | nodes/step | identical to AR | draft / verify / accept / commit ms per step |",
        "|---|---|---|---|---|---|---|---|---|"]
for w in ("f32", "bf16", "int8"):
    ppl = json.load(open(f"{out}/ppl_{w}.json"))["ppl"]
    files = sorted(glob.glob(f"{out}/spec_{w}_*.json"))
    # Every eval run measures AR too: the median of those runs (the first run of a sitting is often the slowest).
    ars = sorted(json.load(open(f))["decode"]["decode_tokens_per_s"] for f in files)
    ar = ars[len(ars) // 2]
    # How much the greedy text loops (a loop is easy to draft): the AR report's share of repeated 4-grams.
    rep = json.load(open(files[0]))["decode"].get("repeated_4gram_fraction") if files else None
    rows.append(f"| {w} | {ppl:.3f} | AR (median of {len(ars)} runs: " + " / ".join("%.1f" % a for a in ars) +
                (f"; {100 * rep:.0f}% of 4-grams repeat" if rep is not None else "") +
                f") | {ar:.1f} | 1.00 | 1.00 | 1 | — | |")
    for f in files:
        d = json.load(open(f)); s = d["speculative"]
        tree = s.get("tree", {}).get("name", "chain γ=%s" % s.get("gamma", "?"))
        ph = s["phase_ms_per_step"]
        rows.append(f"| {w} | | {s['mode']} ({tree}) | {s['decode_tokens_per_s']:.1f} | {s['speedup_vs_ar']:.2f} | "
                    f"{s['mean_accepted_tokens_per_step']:.2f} | {s['verified_nodes'] / max(s['steps'], 1):.1f} | "
                    f"{s['identical_to_ar']} | {ph['draft']:.1f} / {ph['verify']:.1f} / {ph['accept']:.2f} / {ph['commit']:.2f} |")
for t in ("F32", "BF16", "Q8_0"):
    f = f"{out}/llama_{t}.json"
    if os.path.exists(f):
        d = json.load(open(f))[0]
        rows.append(f"| llama.cpp {t} | | AR (llama-bench tg128) | {d['avg_ts']:.1f} | | | | | |")
sweep = json.load(open(f"{out}/context_int8.json"))["context_sweep"]["points"]
rows += ["", "| context (int8, AR) | " + " | ".join(str(p.get("context")) for p in sweep) + " |",
         "|---|" + "---|" * len(sweep),
         "| tokens/s | " + " | ".join("%.1f" % p.get("decode_tokens_per_s", float("nan")) for p in sweep) + " |"]
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
