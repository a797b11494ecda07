#!/usr/bin/env bash
# The measurements of bench/results/train/README.md: the synthetic full fine-tune and the quickstart stages (LoRA + kd,
# attention transfer, heads only), each with --profile, 1 rank x 2 threads. Usage (repository root, after the
# quickstart so out/quickstart/ exists): bench/results/train/run.sh [build/bin/linspec] [out dir]
set -euo pipefail
LINSPEC=${1:-build/bin/linspec}
OUT=${2:-bench/results/train}
Q=out/quickstart
INIT=${INIT:-$Q/smollm2.h5}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$LINSPEC" bench gemm --json "$OUT/gemm.json" | tee "$OUT/gemm.txt"
"$LINSPEC" bench train --profile --steps 3 --warmup 1 --json "$OUT/full_finetune_fp32.json" | tee "$OUT/full_finetune_fp32.txt"
common=(--set model.init="$INIT" --set data.path="$Q/corpus_tokens.h5" --set train.threads=0 --steps 3 --warmup 1 --profile)
# Each stage on the init model (earlier stages skipped, so it does not need their snapshots).
"$LINSPEC" bench train configs/quickstart.yaml --stage finetune "${common[@]}" --set stages.transfer.skip=true \
  --set stages.finetune.objectives.kd.weight=1 \
  --json "$OUT/lora_kd.json" | tee "$OUT/lora_kd.txt"
"$LINSPEC" bench train configs/quickstart.yaml --stage transfer "${common[@]}" --json "$OUT/attention_transfer.json" |
  tee "$OUT/attention_transfer.txt"
"$LINSPEC" bench train configs/quickstart.yaml --stage heads "${common[@]}" --set stages.transfer.skip=true \
  --set stages.finetune.skip=true --json "$OUT/heads_only.json" |
  tee "$OUT/heads_only.txt"
