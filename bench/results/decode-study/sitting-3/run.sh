#!/bin/bash
# The third sitting of bench/results/decode-study: the third-stage draft (draft-eagle-3.yaml -> serve3.h5) against
# the second (serve2.h5), both with calibrated trees; speculative decoding after 8K and 32K-token prompts; per-op
# profiles; the decode table; the vector units' instruction peaks. Run with nothing else on the machine (the
# linearization study paused), under SCHED_FIFO.
# Usage (repository root): LINSPEC=build-cpu/bin/linspec bash bench/results/decode-study/sitting-3/run.sh
set -x
cd "$(dirname "$0")/../../../.."
B=${LINSPEC:-build/bin/linspec}
D=out/quickstart/corpus_tokens.h5
O=bench/results/decode-study/sitting-3
E=out/eagle-study
spec() { chrt -f 50 $B eval --decode --speculative eagle --tree auto "$@" 2>&1 | grep -E "eval:|error"; }
# Stage 2 against stage 3, same binary, alternating, 8 held-out prompts x 64 greedy tokens.
for r in 1 2; do
  for ck in serve2 serve3; do
    for w in f32 bf16 int8; do
      spec --data $D --checkpoint $E/$ck.h5 --weights $w --prompts 8 --new-tokens 64 --json $O/ab_${ck}_${w}_$r.json
    done
  done
done
# Long contexts: the same decode after prompts of 8K and 32K tokens (linear attention: a step costs the same). The
# held-out split has 28.6K tokens, so the 32K prompts are windows of the corpus text (training text).
for w in f32 int8; do
  spec --data $D --checkpoint $E/serve3.h5 --weights $w --prompts 2 --prompt-len 8192 --new-tokens 64 --json $O/ctx8k_$w.json
  spec --data out/quickstart/corpus.txt --checkpoint $E/serve3.h5 --weights $w --prompts 1 --prompt-len 32768 \
    --new-tokens 64 --json $O/ctx32k_$w.json
done
# T = 0.7 (lossless speculative sampling): calibrated trees learn sampled acceptance as well.
for w in f32 int8; do
  spec --data $D --checkpoint $E/serve3.h5 --weights $w --prompts 8 --new-tokens 64 --temperature 0.7 --json $O/t07_$w.json
done
# Where a step goes.
for w in f32 int8; do
  chrt -f 50 $B eval --checkpoint $E/serve3.h5 --weights $w --decode --speculative eagle --tree auto --data $D \
    --prompts 4 --new-tokens 64 --profile --json $O/profile_$w.json > $O/profile_$w.txt 2>&1
done
# The committed table (AR, eagle, llama.cpp at F32 / BF16 / Q8_0).
LINSPEC=$B MODES="eagle:auto" LLAMA_BENCH=${LLAMA_BENCH:-/work/llama/build/bin/llama-bench} \
  GGUF_DIR=${GGUF_DIR:-/work/gguf} chrt -f 50 bash bench/decode/table.sh $E/serve3.h5 bench/results/decode-study
# The arithmetic limits of this CPU beside its GEMMs.
chrt -f 50 $B bench gemm --json $O/gemm_peaks.json > $O/gemm_peaks.txt 2>&1
