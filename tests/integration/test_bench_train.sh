#!/usr/bin/env bash
# `linspec bench train CONFIG.yaml` times the step `linspec train CONFIG.yaml` runs (trainer/train_step.h):
#  1. on an aug + LoRA + grad-accumulation + kd config, the benchmark's per-step losses equal the losses `train`
#     logs for the same steps (same model, objectives, data order and seeds);
#  2. it prints the workload's FLOPs against the GEMM ceiling, their GEMM part equal to the GEMMs counted in the
#     step; --profile prints the region and GEMM-shape tables; train's log.profile_every logs a profile;
#  3. --set reaches the config; shape flags with a config, and a missing config, exit 2 with a message.
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
# The FLOP model's GEMM FLOPs equal the GEMMs the profile counted in the step (trainer/flop_count.h).
prof = bench["profile"]
counted = sum(o["gemm_forward_flops"] + o["gemm_backward_flops"] for o in bench["ops_s_per_step"].values())
assert abs(counted - prof["gemm_flops_per_step"]) <= 1e-9 * counted, (counted, prof["gemm_flops_per_step"])
assert "teacher" in prof["model_flops_per_step"] and prof["model_flops_per_step"]["teacher"]["gemm_backward"] == 0
assert prof["ceiling_gflops"] > 0 and 0 < prof["fraction_of_ceiling"], prof
PY
grep -q "of the fp32 GEMM ceiling" bench.txt || { cat bench.txt >&2; fail "bench train printed no FLOP summary"; }

"$LINSPEC" bench train exp.yaml --steps 1 --warmup 0 --profile > profile.txt 2>&1 || fail "bench train --profile"
grep -q "GEMMs by shape" profile.txt && grep -q "teacher/gemm.mlp" profile.txt ||
  { cat profile.txt >&2; fail "bench train --profile printed no region / GEMM-shape tables"; }

# log.profile_every: a profile note on the progress output and a {"step", "profile"} line in metrics.jsonl.
"$LINSPEC" train exp.yaml --set log.profile_every=2 --set checkpoint.dir=prof 2> prof.log || { cat prof.log >&2; fail "train with log.profile_every"; }
grep -q "profile of step 2" prof.log || { cat prof.log >&2; fail "no profile note at step 2"; }
python3 - prof/metrics.jsonl <<'PY'
import json, sys
rows = [d for d in map(json.loads, open(sys.argv[1])) if "profile" in d]
assert [d["step"] for d in rows] == [2], rows
assert rows[0]["profile"]["gemms"] and rows[0]["profile"]["flops_per_step"] > 0
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
