#!/usr/bin/env bash
# A staged experiment (trainer/stages.h) on a tiny random LLaMA: attention transfer -> LoRA + KD from the softmax
# model -> draft heads on a frozen backbone, as configs/quickstart.yaml chains them.
#  a. one command trains every stage, each in <checkpoint.dir>/<name>; a stage's output is the next stage's input:
#     with lr 0 in stage 2 its attention tensors are stage 1's, and stage 3's frozen backbone is stage 2's model with
#     its LoRA merged (== `linspec export` of stage 2's snapshot);
#  b. resume mid-stage: with stage 2's last snapshot and all of stage 3 removed, --resume auto skips stage 1, continues
#     stage 2 from its step-2 snapshot and trains stage 3: every tensor equals the straight run's, bit for bit;
#  c. a bad stages: entry -> exit 2 naming the stage and the key, nothing written.
# Usage: test_train_stages.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"

cat > staged.yaml <<'EOF'
model: {init: tiny.h5, attention: {preset: aug, group_size: 8, conv_taps: 4, lambda_local_learnable: true}}
data: {path: data.h5, seq_len: 32}
train: {steps: 4, micro_batch: 2, lr: 1.0e-2, warmup_steps: 1, threads: 1}
lora: {rank: 4, alpha: 8}
checkpoint: {dir: run, every: 2, keep_last: 5}
eval: {every: 100, batches: 0}
log: {every: 1}
stages:
  - name: transfer
    objectives: {ce: 0.0, attention_transfer: 1.0}
    trainable: [attention_new]
  - name: finetune
    objectives: {ce: 1.0, kd: {weight: 1.0, temperature: 2.0}}
    trainable: [lora, norms, attention_new]
  - name: heads
    train: {steps: 3, warmup_steps: 0}
    objectives: {ce: 0.0, draft_heads: {count: 2, weight: 1.0}}
    trainable: [heads]
EOF
hashes() { "$LINSPEC" info --json "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]:
    if t["name"].startswith(sys.argv[1]) and (len(sys.argv) < 3 or sys.argv[2] in t["name"]): print(t["name"], t["xxh64"])' "$2" ${3:+"$3"}; }
same() { cmp -s <(hashes "$1" "$4" ${5:+"$5"}) <(hashes "$2" "$4" ${5:+"$5"}) ||
  { diff <(hashes "$1" "$4" ${5:+"$5"}) <(hashes "$2" "$4" ${5:+"$5"}) | head -5 >&2; fail "$3"; }; }

# ---- a. one command, three stages ----
"$LINSPEC" train staged.yaml 2> straight.log || fail "staged run: $(grep -i error straight.log)"
for f in run/transfer/snapshot-4.h5 run/finetune/snapshot-4.h5 run/heads/snapshot-3.h5; do
  [[ -s $f ]] || fail "missing $f"
done
[[ -n "$(hashes run/transfer/snapshot-4.h5 model/ conv)" ]] || fail "stage 1 snapshot holds no conv taps"
# Stage 1 trained the new attention tensors away from their fresh values.
"$LINSPEC" linearize --in tiny.h5 --attention aug --set group_size=8 --set conv_taps=4 --set lambda_local_learnable=true \
  --out fresh.h5 2>/dev/null
! cmp -s <(hashes fresh.h5 model/ conv) <(hashes run/transfer/snapshot-4.h5 model/ conv) || fail "stage 1 left the conv taps fresh"
# Stage 2 with lr 0 starts from, and so keeps, stage 1's attention tensors.
"$LINSPEC" train staged.yaml --set stages.finetune.train.lr=0 --set checkpoint.dir=lr0 2> lr0.log || fail "lr 0 run: $(grep -i error lr0.log)"
same run/transfer/snapshot-4.h5 lr0/finetune/snapshot-4.h5 "stage 2 did not start from stage 1's attention tensors" model/ conv
same run/transfer/snapshot-4.h5 lr0/finetune/snapshot-4.h5 "stage 2 did not start from stage 1's λ" model/ lambda
# Stage 3 trains heads only: its backbone is stage 2's model with the adapters merged.
"$LINSPEC" export --checkpoint run/finetune/snapshot-4.h5 --out merged2.h5 2>/dev/null
same merged2.h5 run/heads/snapshot-3.h5 "stage 3's backbone is not stage 2's merged model" model/
[[ -n "$(hashes run/heads/snapshot-3.h5 draft/heads)" ]] || fail "stage 3 wrote no draft heads"

# ---- b. resume in the middle of stage 2 ----
cp -r run resumed
rm resumed/finetune/snapshot-4.h5 resumed/finetune/latest
rm -r resumed/heads
stage1_before=$(stat -c %Y.%i resumed/transfer/snapshot-4.h5)
"$LINSPEC" train staged.yaml --set checkpoint.dir=resumed --resume auto 2> resumed.log || fail "resume: $(grep -i error resumed.log)"
[[ $(stat -c %Y.%i resumed/transfer/snapshot-4.h5) == "$stage1_before" ]] || fail "resume retrained the finished stage 1"
for pair in finetune/snapshot-4.h5 heads/snapshot-3.h5; do
  same "run/$pair" "resumed/$pair" "resumed $pair differs from the straight run's" ""
done

# ---- c. a bad stage entry ----
sed 's/    train: {steps: 3, warmup_steps: 0}/    train: {steps: 3, warmup_step: 0}/' staged.yaml > bad.yaml
set +e
"$LINSPEC" train bad.yaml --set checkpoint.dir=bad 2> bad.log
rc=$?
set -e
[[ $rc == 2 ]] || fail "bad stage entry: exit $rc, expected 2"
grep -q "stage 'heads'" bad.log && grep -q "train.warmup_step'" bad.log && grep -q "bad.yaml:16" bad.log ||
  fail "bad stage entry: message lacks the stage, key or line: $(cat bad.log)"
[[ ! -e bad ]] || fail "bad stage entry: something was written"
echo "staged training: OK"
