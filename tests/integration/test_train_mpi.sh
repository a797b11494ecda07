#!/usr/bin/env bash
# `linspec train` end to end on a tiny random LLaMA (written by tiny_hf_model.py, converted and tokenized by linspec):
#  1. 2 ranks (mpirun) vs 1 rank with 2x gradient accumulation: per-step losses equal within 1e-5 relative;
#  2. 3 steps + --resume auto + 3 steps: model tensors bit-identical (xxh64 from `info --json`) to 6 straight steps;
#  3. SIGTERM mid-run: exit 0 after a snapshot; resuming to step S+2 equals a straight run of S+2 steps bit for bit;
#  4. kill -9 mid-run: --resume auto continues from the newest complete snapshot;
#  5. a flipped byte in the newest snapshot: detected, reported with the file and tensor, skipped; the rerun from the
#     previous snapshot reproduces the same weights;
#  6. ZeRO-1 on 2 ranks tracks the plain run, and a bad key is refused with exit 2 before any work;
#  7. every shipped config (configs/*.yaml, configs/baselines/*.yaml) runs one step on the tiny model;
#  8. a rank killed (-9) mid-run under mpirun: the job exits non-zero within 30 s (no rank hangs in a collective).
# Usage: test_train_mpi.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"

cat > exp.yaml <<'EOF'
model: {init: tiny.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 6, micro_batch: 2, grad_accum: 2, lr: 1.0e-2, warmup_steps: 2, threads: 1, clip_grad_norm: 0.5}
lora: {rank: 4, alpha: 8, targets: [q, k, v, o, up]}
trainable: [lora, norms, attention_new]
checkpoint: {dir: run, every: 3, keep_last: 5}
eval: {every: 3, batches: 2}
log: {every: 1}
EOF
train() { "$LINSPEC" train exp.yaml "$@" 2>> train.log; }
# Model tensors of a snapshot as "name xxh64" lines.
hashes() { "$LINSPEC" info --json "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]: print(t["name"], t["xxh64"])'; }
same_weights() {
  cmp -s <(hashes "$1") <(hashes "$2") || { diff <(hashes "$1") <(hashes "$2") | head -5 >&2; fail "$3"; }
}

# ---- 1. data parallel == accumulation ----
train --set checkpoint.dir=one
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=two --set train.grad_accum=1 2>> train.log
python3 - one/metrics.jsonl two/metrics.jsonl <<'PY'
import json, sys
def steps(p): return {d["step"]: d["loss"] for d in map(json.loads, open(p)) if "loss" in d}
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert sorted(a) == sorted(b) == list(range(1, 7)), (sorted(a), sorted(b))
worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
print(f"1 rank x 2 accum vs 2 ranks: max rel. loss difference {worst:.2e}")
if worst > 1e-5: sys.exit("FAIL: losses differ by more than 1e-5 relative")
assert a[6] < a[1], "the loss did not go down"
PY

# ---- 2. resume is exact ----
train --set checkpoint.dir=split --set train.steps=3
[[ -f split/snapshot-3.h5 && ! -f split/snapshot-6.h5 ]] || fail "3-step run left $(ls split)"
train --set checkpoint.dir=split --resume auto
same_weights one/snapshot-6.h5 split/snapshot-6.h5 "3 + resume 3 steps differs from 6 straight steps"
echo "ok: 3 + 3 steps bit-identical to 6 steps"

# ---- 3. SIGTERM: finish the step, snapshot, exit 0; the resumed run stays exact ----
"$LINSPEC" train exp.yaml --set checkpoint.dir=term --set train.steps=100000 --set checkpoint.every=100000 \
  --set eval.batches=0 2>> train.log &
pid=$!
for _ in $(seq 600); do [[ $(grep -c '"loss"' term/metrics.jsonl 2>/dev/null || true) -ge 3 ]] && break; sleep 0.05; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
[[ $rc -eq 0 ]] || fail "SIGTERM: exit code $rc, expected 0"
snap=$(ls term/snapshot-*.h5 | head -1)
S=$(basename "$snap" .h5); S=${S#snapshot-}
[[ $S -ge 3 ]] || fail "SIGTERM snapshot at step $S"
grep -q "stopped by signal" train.log || fail "no stop message"
train --set checkpoint.dir=term --set train.steps=$((S + 2)) --set checkpoint.every=100000 --set eval.batches=0 --resume auto
train --set checkpoint.dir=straight --set train.steps=$((S + 2)) --set checkpoint.every=100000 --set eval.batches=0
same_weights straight/snapshot-$((S + 2)).h5 term/snapshot-$((S + 2)).h5 "SIGTERM at $S + resume differs from a straight run"
echo "ok: SIGTERM after step $S, resumed exactly"

# ---- 4. kill -9 mid-run: resume from the newest complete snapshot ----
"$LINSPEC" train exp.yaml --set checkpoint.dir=crash --set train.steps=100000 --set checkpoint.every=1 \
  --set checkpoint.keep_last=2 --set eval.batches=0 2>> train.log &
pid=$!
for _ in $(seq 600); do [[ $(ls crash/snapshot-*.h5 2>/dev/null | wc -l) -ge 2 ]] && break; sleep 0.05; done
kill -KILL $pid
wait $pid 2>/dev/null || true
newest=$(ls crash/snapshot-*.h5 | sed 's/.*snapshot-\([0-9]*\).h5/\1/' | sort -n | tail -1)
last=$((newest + 2))
train --set checkpoint.dir=crash --set train.steps=$last --set checkpoint.every=1 --set eval.batches=0 --resume auto
[[ -f crash/snapshot-$last.h5 ]] || fail "kill -9 then resume did not reach step $last"
ls crash | grep -q '\.tmp\.' && fail "temporary files left in crash/: $(ls crash)"
echo "ok: kill -9 after step >= $newest, resumed to $last"

# ---- 5. a flipped byte in the newest snapshot ----
cp -r one flip
python3 - hf/model.safetensors flip/snapshot-6.h5 <<'PY'
import json, struct, sys
st = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", st[:8])[0]
info = json.loads(st[8:8 + n])["model.embed_tokens.weight"]
probe = st[8 + n + info["data_offsets"][0]:][:256]  # embeddings are frozen: the snapshot holds these bytes
data = bytearray(open(sys.argv[2], "rb").read())
at = data.find(probe)
assert at >= 0, "embedding bytes not found in the snapshot"
data[at + 100] ^= 0x40
open(sys.argv[2], "wb").write(bytes(data))
PY
"$LINSPEC" train exp.yaml --set checkpoint.dir=flip --resume auto 2> flip.log
grep -q "snapshot-6.h5" flip.log || fail "the corrupt snapshot is not named: $(head -c 2000 flip.log)"
grep -q "embed_tokens" flip.log || fail "the corrupt tensor is not named: $(grep -i snapshot-6 flip.log)"
grep -q "resuming from flip/snapshot-3.h5" flip.log || fail "did not fall back to snapshot-3"
same_weights one/snapshot-6.h5 flip/snapshot-6.h5 "rerun from snapshot-3 differs"
echo "ok: corrupt snapshot-6 detected and skipped"

# ---- 6. ZeRO-1 and config errors ----
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=zero --set train.grad_accum=1 \
  --set distributed.zero=1 2>> train.log
python3 - two/metrics.jsonl zero/metrics.jsonl <<'PY'
import json, sys
def steps(p): return {d["step"]: d["loss"] for d in map(json.loads, open(p)) if "loss" in d}
a, b = steps(sys.argv[1]), steps(sys.argv[2])
worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
if worst > 1e-5: sys.exit(f"FAIL: ZeRO-1 losses differ by {worst:.2e}")
PY
rc=0; "$LINSPEC" train exp.yaml --set train.stepz=3 2> bad.log || rc=$?
[[ $rc -eq 2 ]] && grep -q "train.stepz" bad.log || fail "unknown key: exit $rc, $(cat bad.log)"
rc=0; "${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set data.path=missing.h5 2> bad.log || rc=$?
[[ $rc -ne 0 ]] && grep -q "missing.h5" bad.log || fail "missing data file under mpirun: exit $rc, $(cat bad.log)"
[[ $(grep -c "error: .*missing.h5" bad.log) -eq 1 ]] || fail "the error is reported more than once: $(cat bad.log)"

# ---- 7. the shipped configs: one step each on the tiny model (their keys, presets and objectives all work) ----
small=(--set model.init=tiny.h5 --set data.path=data.h5 --set train.steps=1 --set data.seq_len=32
       --set train.micro_batch=1 --set train.grad_accum=1 --set train.warmup_steps=0 --set eval.batches=0
       --set train.threads=1)
# A staged config (stages:) runs every stage for one step, each in cfg/<name>/<stage>.
for f in "$SRC"/configs/*.yaml "$SRC"/configs/baselines/*.yaml; do
  n=$(basename "$f" .yaml)
  init=()
  [[ $n == draft-model ]] && init=(--set objectives.draft_model.layers=1)  # the tiny model has 2 layers
  [[ $n == draft-eagle* ]] && init=(--set objectives.eagle.vocab=64)      # its vocabulary is smaller than 8192
  if [[ $n == draft-eagle-self ]]; then  # stage 2 continues a stage-1 draft
    "$LINSPEC" train "$SRC/configs/draft-eagle.yaml" "${small[@]}" "${init[@]}" --set checkpoint.dir=eagle-init \
      2> cfg.log || fail "configs/draft-eagle.yaml (stage 1 for draft-eagle-self): $(grep error cfg.log)"
    init+=(--set objectives.eagle.init=eagle-init/snapshot-1.h5)
  fi
  "$LINSPEC" train "$f" "${small[@]}" "${init[@]}" --set checkpoint.dir=cfg/$n 2> cfg.log ||
    fail "configs/$n.yaml: $(grep error cfg.log)"
  stages=$(grep -c "^  - name:" "$f" || true)
  snaps=$(find cfg/$n -name snapshot-1.h5 | wc -l)
  [[ $snaps -eq $((stages > 0 ? stages : 1)) ]] || fail "configs/$n.yaml wrote $snaps snapshot(s) for $stages stage(s)"
done
echo "ok: every shipped config runs"

# ---- 8. a rank that dies takes the job down, non-zero, within 30 s ----
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=die --set train.steps=100000 \
  --set checkpoint.every=100000 --set eval.batches=0 --set train.grad_accum=1 2>> die.log &
job=$!
for _ in $(seq 1200); do [[ $(grep -c '"loss"' die/metrics.jsonl 2>/dev/null || true) -ge 2 ]] && break; sleep 0.05; done
[[ $(grep -c '"loss"' die/metrics.jsonl 2>/dev/null || true) -ge 2 ]] || { kill -KILL $job; fail "2-rank job made no steps"; }
victim=""
for p in $(pgrep -f "linspec train exp.yaml --set checkpoint.dir=die" || true); do
  [[ $p -ne $job ]] && tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[[ -n $victim ]] || { kill -KILL $job; fail "rank 1 of the running job not found"; }
kill -KILL "$victim"
t0=$(date +%s)
rc=0
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then pkill -KILL -f "checkpoint.dir=die" || true; fail "job still running 60 s after rank 1 died"; fi
wait $job || rc=$?
elapsed=$(( $(date +%s) - t0 ))
[[ $rc -ne 0 ]] || fail "job exited 0 after rank 1 was killed"
[[ $elapsed -le 30 ]] || fail "job took $elapsed s to exit after rank 1 died"
for _ in $(seq 50); do pgrep -f "checkpoint.dir=die" >/dev/null || break; sleep 0.1; done
pgrep -f "checkpoint.dir=die" >/dev/null && fail "a rank survived the job: $(pgrep -af 'checkpoint.dir=die')"
echo "ok: rank 1 killed, job exited $rc after ${elapsed} s"
echo "PASS: test_train_mpi"
