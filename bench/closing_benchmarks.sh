#!/usr/bin/env bash
# The benchmark figures of the issues, measured by hand on this machine (never timed tests). Writes JSON/text under
# OUT (default out/bench) and prints a summary. Needs a build (launch/build.sh) and the SmolLM2 model (launch/setup.sh);
# the PyTorch comparison needs `launch/setup.sh --with-reference` plus transformers 4.44 in $LINSPEC_TF4 (see
# tests/reference/make_llama_goldens.py) and is skipped with a note otherwise.
# Usage: bench/closing_benchmarks.sh [gemm|train|torch|attention|presets|context]...   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${LINSPEC_BUILD_DIR:-$ROOT/build}"
LINSPEC="$BUILD/bin/linspec"
OUT="${OUT:-$ROOT/out/bench}"
GGUF="${LINSPEC_SMOLLM2_GGUF:-$HOME/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf}"
TEXT=/usr/share/doc/python3.11/html/_sources/tutorial/interpreter.rst.txt
mkdir -p "$OUT"
what=("$@"); ((${#what[@]})) || what=(gemm train torch attention presets context)
want() { [[ " ${what[*]} " == *" $1 "* ]]; }
mpi=(mpirun -np 2 --bind-to core -x OMP_NUM_THREADS=1); [[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)

model() {  # the converted SmolLM2, its token shards and its aug linearization, made once
  [[ -s "$OUT/smollm2.h5" ]] || "$LINSPEC" convert --from "$GGUF" --out "$OUT/smollm2.h5"
  if [[ ! -s "$OUT/corpus.h5" ]]; then
    find /usr/share/doc/python3.11/html/_sources -name '*.txt' | sort | xargs cat >"$OUT/corpus.txt"
    "$LINSPEC" prepare --tokenizer "$OUT/smollm2.h5" --input "$OUT/corpus.txt" --out "$OUT/corpus.h5" --val-fraction 0.01
  fi
}

if want gemm; then
  OMP_NUM_THREADS=2 "$LINSPEC" bench gemm --gemm-n 2048 --json "$OUT/gemm.json"
fi

if want train; then
  model
  # `linspec train` on SmolLM2 -> aug, every weight trainable (the work PyTorch does below), tokens/s of steps 2..N.
  batch=4  # sequences per step, both lengths (the issue's B=4)
  for prec in fp32 bf16; do
    for seq in 256 1024; do
      for layout in 1x2 2x1; do
        run="$OUT/train_${prec}_T${seq}_${layout}"; rm -rf "$run"
        set_args=(--set model.init="$OUT/smollm2.h5" --set data.path="$OUT/corpus.h5" --set data.seq_len=$seq
                  --set train.steps=4 --set train.warmup_steps=0 --set train.precision=$prec --set "trainable=[all]"
                  --set checkpoint.dir="$run" --set checkpoint.every=1000 --set eval.every=1000 --set eval.batches=0
                  --set log.every=1)
        if [[ $layout == 1x2 ]]; then
          OMP_NUM_THREADS=2 /usr/bin/time -f "%M" -o "$run.rss" "$LINSPEC" train "$ROOT/configs/finetune-1m.yaml" \
            "${set_args[@]}" --set train.micro_batch=$batch >"$run.log" 2>&1
        else
          /usr/bin/time -f "%M" -o "$run.rss" "${mpi[@]}" "$LINSPEC" train "$ROOT/configs/finetune-1m.yaml" \
            "${set_args[@]}" --set train.micro_batch=$((batch / 2)) >"$run.log" 2>&1
        fi
        python3 - "$run" "$prec" "$seq" "$batch" "$layout" <<'PY'
import json, sys
run, prec, seq, batch, layout = sys.argv[1:]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"tokens_per_s"' in l]
rate = sum(r["tokens_per_s"] for r in rows[1:]) / max(len(rows) - 1, 1)
rss = int(open(run + ".rss").read().split()[-1]) / 1024
print(f"train aug {prec} B={batch} T={seq} {layout}: {rate:.0f} tokens/s (steps 2-{len(rows)}), peak RSS {rss:.0f} MiB"
      + (" (mpirun: largest process)" if layout == "2x1" else ""))
PY
      done
    done
  done
fi

if want torch; then
  # PyTorch 2.x from PyPI in its own venv (made by the script), eager and torch.compile, fp32 and bf16.
  "$ROOT/bench/train/compare.sh" "$LINSPEC" "$OUT/torch2"
fi

if want attention; then
  OMP_NUM_THREADS=1 "$BUILD/bench/bench_aug_attention" --benchmark_filter='BM_aug_forward_backward|BM_aug_decode' \
    --benchmark_out="$OUT/aug_attention.json" --benchmark_out_format=json
  OMP_NUM_THREADS=1 "$BUILD/bench/bench_attention" --benchmark_filter='forward_backward' \
    --benchmark_out="$OUT/softmax_attention.json" --benchmark_out_format=json
fi

if want presets; then
  model
  for preset in softmax aug local global local+global local+conv elu relu performer cosformer transnormer yoso hedgehog window; do
    ck="$OUT/smollm2.h5"
    if [[ $preset != softmax ]]; then
      ck="$OUT/lin_${preset}.h5"
      "$LINSPEC" linearize --in "$OUT/smollm2.h5" --attention "$preset" --out "$ck" --force 2>/dev/null
    fi
    OMP_NUM_THREADS=2 "$LINSPEC" eval --checkpoint "$ck" --data "$TEXT" --ppl --ctx 512 --max-tokens 4096 \
      --json "$OUT/ppl_${preset}.json" 2>/dev/null
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(f'{sys.argv[2]:>13}: ppl {j[\"ppl\"]:.4g} over {j[\"scored_tokens\"]} tokens (no fine-tuning)')" \
      "$OUT/ppl_${preset}.json" "$preset"
    [[ $preset == softmax ]] || rm -f "$ck"
  done
fi

if want context; then
  model
  "$LINSPEC" linearize --in "$OUT/smollm2.h5" --attention aug --out "$OUT/lin_aug.h5" --force 2>/dev/null
  for ck in smollm2 lin_aug; do
    OMP_NUM_THREADS=2 "$LINSPEC" eval --checkpoint "$OUT/$ck.h5" --context-sweep 1024,8192,32768 --sweep-decode-tokens 8 \
      --json "$OUT/context_$ck.json" 2>/dev/null
    python3 - "$OUT/context_$ck.json" "$ck" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for p in j["context_sweep"]["points"]:
    print(f"{sys.argv[2]:>8} context {p['context']:>6}: state/KV {p['state_bytes'] / 2**20:8.1f} MiB, RSS "
          f"{p['rss_bytes'] / 2**20:7.0f} MiB, decode {p['decode_tokens_per_s']:.1f} tokens/s")
PY
  done
fi
