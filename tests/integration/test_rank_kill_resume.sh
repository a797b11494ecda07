#!/usr/bin/env bash
# A training rank killed with SIGKILL mid-run under mpirun (2 ranks, tiny random LLaMA):
#  1. the job exits non-zero within 30 s (no surviving rank waits forever in a collective), and no rank survives;
#  2. `--resume auto` continues from the newest complete snapshot, and the final weights equal
#     those of an uninterrupted run of the same config bit for bit (xxh64 of every model tensor, LoRA adapters
#     included, via `info --json`).
# The schedule is constant after warmup, so the run started with train.steps=100000 and the runs of S+3 steps take the
# same steps; test_train_mpi.sh checks the same resume with one process and SIGTERM.
# Usage: test_rank_kill_resume.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"

cat > exp.yaml <<'YAML'
model: {init: tiny.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 100000, micro_batch: 2, grad_accum: 1, lr: 1.0e-2, warmup_steps: 2, threads: 1, seed: 3}
lora: {rank: 4, alpha: 8, targets: [q, k, v, o]}
trainable: [lora, norms, attention_new]
checkpoint: {dir: killed, every: 2, keep_last: 3}
eval: {every: 100000, batches: 0}
log: {every: 1}
YAML
# The model tensors of a snapshot (base weights, LoRA adapters, new attention tensors) as "name xxh64" lines.
hashes() { "$LINSPEC" info --json "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]: print(t["name"], t["xxh64"])'; }
ranks_alive() { pgrep -f "linspec train exp.yaml --set checkpoint.dir=killed" || true; }

# ---- 1. kill rank 1 once two snapshots exist ----
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=killed 2> killed.log &
job=$!
for _ in $(seq 1200); do [[ $(ls killed/snapshot-*.h5 2>/dev/null | wc -l) -ge 2 ]] && break; sleep 0.05; done
[[ $(ls killed/snapshot-*.h5 2>/dev/null | wc -l) -ge 2 ]] || { kill -KILL $job; fail "no snapshots: $(tail -5 killed.log)"; }
victim=""
for p in $(ranks_alive); do
  [[ $p -ne $job ]] && tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[[ -n $victim ]] || { kill -KILL $job; fail "rank 1 of the running job not found"; }
kill -KILL "$victim"
t0=$(date +%s)
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then
  for p in $(ranks_alive); do kill -KILL "$p"; done
  fail "job still running 60 s after rank 1 died"
fi
rc=0; wait $job || rc=$?
elapsed=$(($(date +%s) - t0))
[[ $rc -ne 0 ]] || fail "job exited 0 after rank 1 was killed"
[[ $elapsed -le 30 ]] || fail "job took $elapsed s to exit after rank 1 died"
for _ in $(seq 50); do [[ -z $(ranks_alive) ]] && break; sleep 0.1; done
[[ -z $(ranks_alive) ]] || fail "a rank survived the job: $(ranks_alive)"
echo "ok: rank 1 killed, job exited $rc after ${elapsed} s"

# ---- 2. resume and compare with an uninterrupted run ----
newest=$(ls killed/snapshot-*.h5 | sed 's/.*snapshot-\([0-9]*\).h5/\1/' | sort -n | tail -1)
last=$((newest + 3))
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=killed --set train.steps=$last --resume auto \
  2> resumed.log || fail "resume failed: $(tail -5 resumed.log)"
grep -q "resuming from killed/snapshot-" resumed.log || fail "the resumed run did not say where it resumed"
"${MPIRUN[@]}" "$LINSPEC" train exp.yaml --set checkpoint.dir=straight --set train.steps=$last 2> straight.log ||
  fail "uninterrupted run failed: $(tail -5 straight.log)"
[[ -f killed/snapshot-$last.h5 && -f straight/snapshot-$last.h5 ]] || fail "missing final snapshots"
hashes killed/snapshot-$last.h5 > resumed.txt
hashes straight/snapshot-$last.h5 > straight.txt
[[ $(wc -l < straight.txt) -gt 10 ]] || fail "too few tensors listed: $(cat straight.txt)"
diff straight.txt resumed.txt > /dev/null || { diff straight.txt resumed.txt | head -5 >&2;
  fail "killed at step >= $newest + resume differs from $last straight steps"; }
ls killed | grep -q '\.tmp\.' && fail "temporary files left in killed/: $(ls killed)"
echo "ok: resumed from step $newest to $last, $(wc -l < straight.txt) tensors bit-identical to a straight run"
echo "PASS: test_rank_kill_resume"
