#!/bin/bash
# The 19:26 sitting of bench/results/decode-study: the linearization study paused, SCHED_FIFO.
# Usage (repository root, with out/eagle-study/serve.h5 and serve2.h5): bash bench/results/decode-study/sitting-2/run.sh
set -x
cd "$(dirname "$0")/../../../.."
B=${LINSPEC:-build-cpu/bin/linspec}  # pause other jobs first (the study was SIGSTOPped)
D=out/quickstart/corpus_tokens.h5
# New draft vs old draft, same binary, alternating, greedy, 8 prompts, f32 and int8
for r in 1 2; do
  for ck in serve serve2; do
    for w in f32 int8; do
      chrt -f 50 $B eval --checkpoint out/eagle-study/$ck.h5 --weights $w --decode --speculative eagle --tree auto \
        --data $D --prompts 8 --new-tokens 64 --json bench/results/decode-study/sitting-2/ab_${ck}_${w}_$r.json 2>&1 | grep -E "eval:"
    done
  done
done
# T = 0.7 (lossless speculative sampling), new draft, int8 and f32
for w in int8 f32; do
  chrt -f 50 $B eval --checkpoint out/eagle-study/serve2.h5 --weights $w --decode --speculative eagle --tree auto \
    --data $D --prompts 8 --new-tokens 64 --temperature 0.7 --json bench/results/decode-study/sitting-2/t07_$w.json 2>&1 | grep -E "eval:"
done
# Per-op profile, int8 and f32
for w in int8 f32; do
  chrt -f 50 $B eval --checkpoint out/eagle-study/serve2.h5 --weights $w --decode --speculative eagle --tree auto \
    --data $D --prompts 4 --new-tokens 64 --profile --json bench/results/decode-study/sitting-2/profile_$w.json > bench/results/decode-study/sitting-2/profile_$w.txt 2>&1
done
# The committed table
LINSPEC=$B MODES="eagle:auto" LLAMA_BENCH=${LLAMA_BENCH:-} GGUF_DIR=${GGUF_DIR:-} \
  chrt -f 50 bash bench/decode/table.sh out/eagle-study/serve2.h5 bench/results/decode-study
