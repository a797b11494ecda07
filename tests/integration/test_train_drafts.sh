#!/usr/bin/env bash
# `linspec train` with the drafts (objectives.draft_heads / draft_model / eagle) on a tiny random LLaMA, linearized
# to aug:
#  a. heads only on 2 ranks: the held-out heads KL (the trainer's val pass) goes down, every backbone tensor stays
#     bit-identical to the init (xxh64 from `info --json`), and listing the objective without `heads` in
#     `trainable` is refused with exit 2 naming the key;
#  b. 2 steps + --resume auto + 2 steps == 4 straight steps, bit for bit (backbone, /draft/heads, /draft/model):
#     heads trained jointly with LoRA on 2 ranks under ZeRO-1, an on-policy draft model (JSD) on 1 rank, and a
#     feature draft with a reduced vocabulary on 2 ranks (its held-out KL falls, per-depth acceptance is logged,
#     the backbone stays bit-identical; the objective without `eagle` in `trainable` is refused with exit 2);
#  c. the snapshots serve speculative decoding directly: `eval --speculative heads|draft|eagle` reports
#     identical_to_ar, and `generate --speculative heads|eagle` prints what plain greedy generation prints;
#     `--speculative eagle` on a checkpoint without /draft/eagle is exit 2 naming the file.
# Usage: test_train_drafts.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"
"$LINSPEC" linearize --in tiny.h5 --attention aug --set group_size=8 --set conv_taps=4 --out lin.h5 2>/dev/null

# Heads only: the backbone is frozen.
cat > heads.yaml <<'EOF'
model: {init: lin.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 6, micro_batch: 2, lr: 2.0e-2, warmup_steps: 0, threads: 1}
objectives: {ce: 0.0, draft_heads: {count: 3, weight: 1.0, decay: 0.8, target: self, shared_projection: false}}
trainable: [heads]
checkpoint: {dir: heads, every: 100, keep_last: 5}
eval: {every: 6, batches: 2}
log: {every: 1}
EOF
# Joint: LoRA + norms + the new attention parameters with CE, and the heads.
cat > joint.yaml <<'EOF'
model: {init: lin.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 4, micro_batch: 2, lr: 1.0e-2, warmup_steps: 1, threads: 1}
objectives: {ce: 1.0, draft_heads: {count: 2, weight: 0.5, target: data}}
lora: {rank: 4, alpha: 8}
trainable: [lora, norms, attention_new, heads]
distributed: {zero: 1}
checkpoint: {dir: joint, every: 100, keep_last: 5}
eval: {every: 100, batches: 0}
log: {every: 1}
EOF
# A one-layer draft model distilled on its own samples.
cat > draft.yaml <<'EOF'
model: {init: lin.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 4, micro_batch: 2, lr: 1.0e-2, warmup_steps: 0, threads: 1}
objectives: {ce: 0.0, draft_model: {layers: 1, init: first-layers, divergence: jsd, on_policy: true, weight: 1.0}}
trainable: [draft]
checkpoint: {dir: draft, every: 100, keep_last: 5}
eval: {every: 4, batches: 1}
log: {every: 1}
EOF
# An EAGLE-style feature draft over the 64 most frequent tokens.
cat > eagle.yaml <<'EOF'
model: {init: lin.h5, attention: {preset: aug, group_size: 8, conv_taps: 4}}
data: {path: data.h5, seq_len: 32}
train: {steps: 4, micro_batch: 2, lr: 1.0e-2, warmup_steps: 0, threads: 1}
objectives: {ce: 0.0, eagle: {weight: 1.0, regression: 0.5, vocab: 64}}
trainable: [eagle]
checkpoint: {dir: eagle, every: 100, keep_last: 5}
eval: {every: 4, batches: 2}
log: {every: 1}
EOF
# Tensors of a checkpoint as "name xxh64" lines (model/... and draft/...), optionally only those matching $2.
hashes() { "$LINSPEC" info --json "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]:
    if t["name"].startswith(sys.argv[1]): print(t["name"], t["xxh64"])' "${2:-}"; }
same() { cmp -s <(hashes "$1" "${4:-}") <(hashes "$2" "${4:-}") || { diff <(hashes "$1" "${4:-}") <(hashes "$2" "${4:-}") | head -5 >&2; fail "$3"; }; }

# ---- a. heads only, 2 ranks ----
"${MPIRUN[@]}" "$LINSPEC" train heads.yaml 2> heads.log || fail "heads-only run: $(grep -i error heads.log)"
python3 - heads/metrics.jsonl <<'PY'
import json, sys
val = [d for d in map(json.loads, open(sys.argv[1])) if "val_heads_kl" in d]
steps = [d for d in map(json.loads, open(sys.argv[1])) if "draft_heads" in d]
assert [d["step"] for d in val] == [0, 6], [d["step"] for d in val]
assert all(f"head{k}" in steps[0] for k in (1, 2, 3)) and "ce" not in steps[0], steps[0]
before, after = val[0]["val_heads_kl"], val[1]["val_heads_kl"]
print(f"heads only: held-out heads KL {before:.4f} -> {after:.4f} after 6 steps")
if not after < 0.9 * before: sys.exit("FAIL: the held-out heads KL did not go down by 10%")
PY
same lin.h5 heads/snapshot-6.h5 "heads-only training changed the backbone" model/
[[ $(hashes heads/snapshot-6.h5 draft/heads/ | wc -l) -eq 9 ]] || fail "snapshot lacks the 3 heads (residual block + own projection each): $(hashes heads/snapshot-6.h5 draft/)"
rc=0; "$LINSPEC" train heads.yaml --set 'trainable=[norms]' --set checkpoint.dir=bad 2> bad.log || rc=$?
[[ $rc -eq 2 ]] && grep -q "objectives.draft_heads.weight" bad.log || fail "heads without trainable heads: exit $rc, $(cat bad.log)"
[[ ! -e bad ]] || fail "a refused run wrote $(ls bad)"
echo "ok: heads-only training lowers the held-out KL and leaves the backbone bit-identical"

# ---- b. 2 + resume + 2 == 4 steps ----
"${MPIRUN[@]}" "$LINSPEC" train joint.yaml 2>> train.log
"${MPIRUN[@]}" "$LINSPEC" train joint.yaml --set checkpoint.dir=joint2 --set train.steps=2 2>> train.log
"${MPIRUN[@]}" "$LINSPEC" train joint.yaml --set checkpoint.dir=joint2 --resume auto 2>> train.log
same joint/snapshot-4.h5 joint2/snapshot-4.h5 "joint heads: 2 + resume 2 steps differs from 4 straight steps"
[[ $(hashes joint/snapshot-4.h5 draft/heads/ | wc -l) -eq 4 ]] || fail "joint snapshot lacks its 2 heads (a residual block each; they share the LM head)"
cmp -s <(hashes lin.h5 model/layers.0.self_attn.la) <(hashes joint/snapshot-4.h5 model/layers.0.self_attn.la) &&
  fail "joint training left the attention parameters unchanged"
"$LINSPEC" train draft.yaml 2>> train.log
"$LINSPEC" train draft.yaml --set checkpoint.dir=draft2 --set train.steps=2 2>> train.log
"$LINSPEC" train draft.yaml --set checkpoint.dir=draft2 --resume auto 2>> train.log
same draft/snapshot-4.h5 draft2/snapshot-4.h5 "draft model: 2 + resume 2 steps differs from 4 straight steps"
same lin.h5 draft/snapshot-4.h5 "draft-model training changed the backbone" model/
cmp -s <(hashes draft/snapshot-4.h5 draft/model/layers.0 | sed 's|draft/model/||') \
  <(hashes lin.h5 model/layers.0 | sed 's|model/||') && fail "the draft model did not train"
grep -q '"val_draft_model"' draft/metrics.jsonl || fail "no held-out draft divergence in draft/metrics.jsonl"
"${MPIRUN[@]}" "$LINSPEC" train eagle.yaml 2>> train.log
"${MPIRUN[@]}" "$LINSPEC" train eagle.yaml --set checkpoint.dir=eagle2 --set train.steps=2 2>> train.log
"${MPIRUN[@]}" "$LINSPEC" train eagle.yaml --set checkpoint.dir=eagle2 --resume auto 2>> train.log
same eagle/snapshot-4.h5 eagle2/snapshot-4.h5 "feature draft: 2 + resume 2 steps differs from 4 straight steps"
same lin.h5 eagle/snapshot-4.h5 "feature-draft training changed the backbone" model/
[[ $(hashes eagle/snapshot-4.h5 draft/eagle/vocab_ids | wc -l) -eq 1 ]] || fail "no /draft/eagle/vocab_ids in the snapshot"
python3 - eagle/metrics.jsonl <<'PY'
import json, sys
val = [d for d in map(json.loads, open(sys.argv[1])) if "val_eagle_kl" in d]
assert [d["step"] for d in val] == [0, 4], [d["step"] for d in val]
assert all(f"val_eagle_top1_depth{k}" in val[-1] for k in (1, 2, 3)), val[-1]
before, after = val[0]["val_eagle_kl"], val[1]["val_eagle_kl"]
print(f"eagle: held-out KL {before:.4f} -> {after:.4f} after 4 steps")
if not after < before: sys.exit("FAIL: the feature draft's held-out KL did not go down")
PY
rc=0; "$LINSPEC" train eagle.yaml --set 'trainable=[norms]' --set checkpoint.dir=bad 2> bad.log || rc=$?
[[ $rc -eq 2 ]] && grep -q "objectives.eagle.weight" bad.log || fail "eagle without trainable eagle: exit $rc, $(cat bad.log)"
[[ ! -e bad ]] || fail "a refused run wrote $(ls bad)"
echo "ok: 2 + 2 steps == 4 steps with heads (2 ranks, ZeRO-1), an on-policy draft model and a feature draft"

# ---- c. speculative decoding straight from the snapshots ----
# Every draft kind in each draft weight format (the default int8 and f32; the target in f32): the output is AR's.
for mode in heads draft eagle; do
  snap=heads/snapshot-6.h5; [[ $mode == draft ]] && snap=draft/snapshot-4.h5; [[ $mode == eagle ]] && snap=eagle/snapshot-4.h5
  for dw in int8 f32; do
    "$LINSPEC" eval --checkpoint $snap --speculative $mode --draft-weights $dw --prompts 2 --prompt-len 8 \
      --new-tokens 24 --json spec_${mode}_$dw.json 2>> eval.log || fail "eval --speculative $mode: $(tail -3 eval.log)"
    python3 - spec_${mode}_$dw.json $mode $dw <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["speculative"]
mode, dw = sys.argv[2:4]
assert s["identical_to_ar"], f"{mode}, draft weights {dw}: speculative output differs from AR"
# heads with a shared projection read the target's LM head; their own tensors still take the format
assert s["draft_weights"] == {"int8": "int8", "f32": "f32"}[dw], s["draft_weights"]
# Eagle trees are dynamic: the report holds what their calibrated chances promised (at least the bonus token); the
# static heads tree and the draft model's chain promise nothing.
if mode == "eagle":
    assert s["draft_expected_tokens_per_step"] >= 1.0, s
else:
    assert "draft_expected_tokens_per_step" not in s, s
print(f"{mode} (draft {dw}): {s['mean_accepted_tokens_per_step']:.2f} tokens per step, identical to AR")
PY
  done
done
rc=0; "$LINSPEC" eval --checkpoint eagle/snapshot-4.h5 --speculative eagle --draft-weights int4 2> baddw.log || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--draft-weights" baddw.log || fail "--draft-weights int4: exit $rc, $(cat baddw.log)"
# --profile: every phase's regions are there, and what they time fits in the measured decode time.
"$LINSPEC" eval --checkpoint eagle/snapshot-4.h5 --speculative eagle --profile --prompts 2 --prompt-len 8 \
  --new-tokens 24 --json profile.json > profile.txt 2>> eval.log || fail "eval --profile: $(tail -3 eval.log)"
python3 - profile.json profile.txt <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ar, sp = r["decode"], r["speculative"]
for run, phases in ((ar, ("prefill", "step")), (sp, ("prefill", "draft", "verify", "accept", "commit"))):
    for ph in phases:
        assert ph in run["profile_ms"], (ph, sorted(run["profile_ms"]))
    assert all(k.split("/")[0] in phases for k in run["profile_ms"]), sorted(run["profile_ms"])
assert "verify/gemm.mlp" in sp["profile_ms"] and "step/gemm.mlp" in ar["profile_ms"], sp["profile_ms"]
tokens = ar["new_tokens"] - ar["prompts"]  # the first token of each prompt comes from the prefill
step_ms = sum(v for k, v in ar["profile_ms"].items() if k == "step" or k.startswith("step/")) * tokens
assert 0.3 * 1e3 * ar["decode_s"] <= step_ms <= 1.01 * 1e3 * ar["decode_s"], (step_ms, ar["decode_s"])
spec_ms = sum(v for k, v in sp["profile_ms"].items() if k.split("/")[0] in ("draft", "verify", "accept", "commit"))
assert spec_ms * sp["steps"] <= 1.01 * 1e3 * sp["decode_s"], (spec_ms, sp["steps"], sp["decode_s"])
text = open(sys.argv[2]).read()
assert "gemm.mlp" in text and "verify" in text, text
print(f"profile: AR steps {step_ms:.1f} of {1e3 * ar['decode_s']:.1f} ms, speculative {spec_ms * sp['steps']:.1f} of "
      f"{1e3 * sp['decode_s']:.1f} ms")
PY
plain=$("$LINSPEC" generate --checkpoint heads/snapshot-6.h5 --prompt "the cat" --max-new 12 2>/dev/null)
spec=$("$LINSPEC" generate --checkpoint heads/snapshot-6.h5 --prompt "the cat" --max-new 12 --speculative heads 2>/dev/null)
[[ "$plain" == "$spec" ]] || fail "generate --speculative heads: '$spec' vs plain '$plain'"
plain=$("$LINSPEC" generate --checkpoint eagle/snapshot-4.h5 --prompt "the cat" --max-new 12 --weights int8 2>/dev/null)
spec=$("$LINSPEC" generate --checkpoint eagle/snapshot-4.h5 --prompt "the cat" --max-new 12 --weights int8 \
  --speculative eagle 2>/dev/null)
[[ "$plain" == "$spec" ]] || fail "generate --speculative eagle (int8): '$spec' vs plain '$plain'"
rc=0; "$LINSPEC" generate --checkpoint heads/snapshot-6.h5 --prompt "x" --speculative eagle 2> noeagle.log || rc=$?
[[ $rc -eq 2 ]] && grep -q "heads/snapshot-6.h5" noeagle.log && grep -q "/draft/eagle" noeagle.log ||
  fail "--speculative eagle without /draft/eagle: exit $rc, $(cat noeagle.log)"
echo "PASS: test_train_drafts"
