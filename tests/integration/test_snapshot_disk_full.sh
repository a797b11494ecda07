#!/usr/bin/env bash
# Disk full while a snapshot is written: a run resumed into a 300 KB tmpfs (in a private mount namespace made by
# `unshare`, so no privileges are needed) fails to write its next snapshot. The job must exit 2 with a message naming
# the snapshot (not crash in HDF5's exit handler), and the previous snapshot must stay intact: `latest` still points
# at it, its checksums verify, and no temporary file is left behind.
# Usage: test_snapshot_disk_full.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"
cat > exp.yaml <<'YAML'
model: {init: tiny.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 4, micro_batch: 2, lr: 1.0e-2, warmup_steps: 0, threads: 1}
lora: {rank: 4, alpha: 8}
trainable: [lora, norms, attention_new]
checkpoint: {dir: run, every: 2, keep_last: 3}
eval: {every: 100, batches: 0}
log: {every: 1}
YAML
"$LINSPEC" train exp.yaml --set train.steps=2 2> first.log || fail "first run: $(grep -i error first.log)"
size=$(stat -c %s run/snapshot-2.h5)
# Room for the copy of snapshot-2 and the metrics, not for a second snapshot.
room=$(( (size * 3 / 2) / 1024 + 4 ))
export LINSPEC SIZE_KB=$room
unshare --map-root-user --mount bash -euo pipefail <<'INNER' || fail "the disk-full checks failed (see above)"
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p small
mount -t tmpfs -o size=${SIZE_KB}k tmpfs small
cp run/* small/
rc=0
"$LINSPEC" train exp.yaml --resume auto --set checkpoint.dir=small 2> full.log || rc=$?
[[ $rc -eq 2 ]] || fail "disk full: exit $rc, expected 2: $(tail -3 full.log)"
grep -q "error: small/snapshot-4.h5: " full.log || fail "the message does not name the snapshot: $(grep -i error full.log)"
[[ $(cat small/latest) == snapshot-2.h5 ]] || fail "latest moved to $(cat small/latest)"
ls small | grep -q tmp && fail "a temporary file was left: $(ls small)"
"$LINSPEC" export --checkpoint small/snapshot-2.h5 --out verified.h5 2> export.log || fail "the previous snapshot no longer verifies: $(cat export.log)"
cmp -s run/snapshot-2.h5 small/snapshot-2.h5 || fail "the previous snapshot changed"
INNER
echo "disk full during a snapshot: exit 2, previous snapshot intact"
