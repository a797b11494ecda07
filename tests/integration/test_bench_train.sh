#!/usr/bin/env bash
# `linspec bench train CONFIG.yaml` times the step `linspec train CONFIG.yaml` runs (trainer/train_step.h):
#  1. on an aug + LoRA + grad-accumulation + kd config, the benchmark's per-step losses equal the losses `train`
#     logs for the same steps (same model, objectives, data order and seeds);
#  2. --set reaches the config; shape flags with a config, and a missing config, exit 2 with a message.
# Usage: test_bench_train.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"

cat > exp.yaml <<'EOF2'
model: {init: tiny.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 3, micro_batch: 2, grad_accum: 2, lr: 1.0e-2, warmup_steps: 1, threads: 1, clip_grad_norm: 0.5}
objectives: {ce: 1.0, kd: {weight: 0.5}}
lora: {rank: 4, alpha: 8, targets: [q, v, up]}
trainable: [lora, norms, attention_new]
checkpoint: {dir: run, every: 100}
eval: {batches: 0}
log: {every: 1}
EOF2
"$LINSPEC" train exp.yaml 2> train.log || { cat train.log >&2; fail "train"; }
"$LINSPEC" bench train exp.yaml --steps 3 --warmup 0 --json bench.json > bench.txt 2> bench.log ||
  { cat bench.log >&2; fail "bench train exp.yaml"; }
python3 - run/metrics.jsonl bench.json <<'PY'
import json, sys
train = [d["loss"] for d in map(json.loads, open(sys.argv[1])) if "loss" in d]
bench = json.load(open(sys.argv[2]))
got = bench["losses"]
assert len(train) == 3 and len(got) == 3, (train, got)
worst = max(abs(a - b) / abs(a) for a, b in zip(train, got))
print(f"bench vs train losses: {got} vs {train}, max rel. difference {worst:.1e}")
if worst > 1e-6: sys.exit("FAIL: bench train does not run the step train runs")
assert bench["tokens_per_step"] == 2 * 2 * 32, bench["tokens_per_step"]
assert bench["tokens_per_s"] > 0 and bench["model"]["trainable"] < bench["model"]["params"]
PY

"$LINSPEC" bench train exp.yaml --steps 1 --warmup 0 --set train.micro_batch=1 --json one.json > /dev/null 2>&1
python3 -c "import json,sys; j=json.load(open('one.json')); sys.exit(j['tokens_per_step'] != 64)" ||
  fail "--set train.micro_batch=1 did not reach the benchmark"

expect_exit2() {  # expect_exit2 PATTERN ARGS...
  local pattern=$1; shift
  local rc=0; "$LINSPEC" "$@" > out.txt 2> err.txt || rc=$?
  [[ $rc -eq 2 ]] || fail "linspec $*: exit $rc, expected 2"
  grep -q -- "$pattern" err.txt || { cat err.txt >&2; fail "linspec $*: no message matching '$pattern'"; }
}
expect_exit2 "use --set\|with --set" bench train exp.yaml --batch 4
expect_exit2 "missing.yaml" bench train missing.yaml
expect_exit2 "train.micro_batch" bench train exp.yaml --set train.micro_batch=0
echo "ok: bench train times the step train runs"
