#!/usr/bin/env bash
# Every arm of the linearization study (bench/linearization/arms.yaml over recipe.yaml) runs: one step per stage on a
# tiny random LLaMA, with the arm's own --set overrides, so the study (hours, run by hand) cannot rot unnoticed.
# Checks per arm: exit 0, and one final snapshot per stage the arm keeps (a skipped stage writes nothing); and the
# speed pass's `linspec linearize` options for the arm (study.linearize_args) build its architecture.
# Usage: test_study_arms.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"

python3 - "$SRC/bench/linearization" > arms.txt <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import study
for name, sets in study.read_arms(sys.argv[1] + "/arms.yaml").items():
    print("\t".join([name, *sets]))
PY
[[ $(wc -l < arms.txt) -ge 10 ]] || fail "arms.yaml lists $(wc -l < arms.txt) arms"
tiny=(--set model.init=tiny.h5 --set data.path=data.h5 --set data.seq_len=32 --set train.micro_batch=1
      --set train.warmup_steps=0 --set eval.batches=0 --set train.threads=2)
while IFS=$'\t' read -r -a fields; do
  arm=${fields[0]}
  args=()
  for kv in "${fields[@]:1}"; do args+=(--set "$kv"); done
  [[ $arm == aug-softmax-first-last ]] && args+=(--set "model.keep_softmax_layers=[0]")  # the tiny model has 2 layers
  for stage in transfer finetune heads; do args+=(--set "stages.$stage.train.steps=1"); done
  "$LINSPEC" train "$SRC/bench/linearization/recipe.yaml" "${tiny[@]}" "${args[@]}" --set checkpoint.dir="study/$arm" \
    2> "$arm.log" || fail "arm $arm: $(grep -i error "$arm.log")"
  want=3
  [[ " ${fields[*]:1} " == *" stages.transfer.skip=true "* ]] && want=2
  got=$(find "study/$arm" -name snapshot-1.h5 | wc -l)
  [[ $got -eq $want ]] || fail "arm $arm: $got stage snapshot(s), expected $want"
done < arms.txt
python3 - "$SRC/bench/linearization" > linearize.txt <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import study
for name, sets in study.read_arms(sys.argv[1] + "/arms.yaml").items():
    if not study.is_softmax(sets):
        print("\t".join([name, *study.linearize_args(sets)]))
PY
while IFS=$'\t' read -r -a fields; do
  args=("${fields[@]:1}")
  [[ ${fields[0]} == aug-softmax-first-last ]] && args=("${args[@]/#0,29/0}")  # the tiny model has 2 layers
  "$LINSPEC" linearize --in tiny.h5 --out "lin-${fields[0]}.h5" "${args[@]}" 2> lin.log ||
    fail "arm ${fields[0]}: linearize ${args[*]}: $(cat lin.log)"
  grep -q "attention '" lin.log || fail "arm ${fields[0]}: linearize said: $(cat lin.log)"
done < linearize.txt
[[ $(wc -l < linearize.txt) -ge 10 ]] || fail "only $(wc -l < linearize.txt) linear arms to linearize"
# The speed pass end to end at short contexts: every arm gets a row; a linear arm's state does not grow with the
# context (window keeps its last 64 keys), softmax's does; arms of one architecture are timed once.
# (aug-softmax-first-last keeps layer 29: not in the tiny model.)
python3 "$SRC/bench/linearization/study.py" --speed --sweep 64,256 --model "$PWD/tiny.h5" --data "$PWD/data.h5" \
  --work "$PWD/speed-work" --out "$PWD/results" --linspec "$LINSPEC" \
  --arms "$(cut -f1 arms.txt | grep -vx aug-softmax-first-last | paste -sd,)" > speed.log 2>&1 ||
  fail "speed pass: $(tail -5 speed.log)"
python3 - "$PWD/results/speed.json" $(($(wc -l < arms.txt) - 1)) <<'PY' || fail "speed.json"
import json, sys
rows = json.load(open(sys.argv[1]))["arms"]
assert len(rows) == int(sys.argv[2]), sorted(rows)
for name, r in rows.items():
    assert r["tokens_per_s_64"] > 0 and r["tokens_per_s_256"] > 0, (name, r)
    grows = r["state_bytes_256"] > r["state_bytes_64"]
    assert grows == (name == "softmax"), (name, r)  # window keeps only its last 64 keys
assert rows["aug-no-kd"]["same_architecture_as"] == "aug", rows["aug-no-kd"]
PY
# --table from recorded arms (possibly from other sittings): rows in arms.yaml order, ratios to softmax, speed joined,
# the arms not yet trained named.
python3 - "$PWD/results/arms" <<'PY'
import json, os, sys
os.makedirs(sys.argv[1], exist_ok=True)
# aug's verify report: 3 layers whose local / global / conv RMS shares are 0.5/0.25/0.25, 0.2/0.2/0.6, 0/0/1
branches = [{"layer": i, "local_rms": a, "global_rms": b, "conv_rms": c, "output_rms": 9.0}
            for i, (a, b, c) in enumerate(((2.0, 1.0, 1.0), (1.0, 1.0, 3.0), (0.0, 0.0, 0.5)))]
for arm, ppl in (("aug", 15.0), ("softmax", 12.0)):
    row = {"arm": arm, "sets": [], "training_tokens": 1024000, "curve": [[0, 40.0], [1024000, ppl]], "ppl": ppl,
           "tokens_per_step": 1.5}
    if arm == "aug":
        row["branches"], row["ppl_ctx1024"] = branches, 324.3  # softmax's was recorded before that column existed
    json.dump(row, open(os.path.join(sys.argv[1], arm + ".json"), "w"))
PY
python3 "$SRC/bench/linearization/study.py" --table --out "$PWD/results" > table.log 2>&1 || fail "--table: $(tail -3 table.log)"
python3 - "$PWD/results" <<'PY' || fail "table from recorded arms"
import json, sys
r = json.load(open(sys.argv[1] + "/results.json"))
assert [a["arm"] for a in r["arms"]] == ["softmax", "aug"], r["arms"]
assert abs(r["arms"][1]["ppl_ratio_to_softmax"] - 1.25) < 1e-12 and r["arms"][1]["tokens_per_s_64"] > 0
table = open(sys.argv[1] + "/table.md").read()
assert "| aug | 15.00 | 1.250 | 324.3 |" in table and "| softmax | 12.00 | 1.000 | - |" in table, table
assert "Not yet trained: window" in table, table
# the branch section: one row per branch of aug (softmax has none), its share in each third of the layers
for line in ("| aug | conv | 0.25 | 0.60 | 1.00 |", "| aug | global | 0.25 | 0.20 | 0.00 |",
             "| aug | local | 0.50 | 0.20 | 0.00 |"):
    assert line in table, (line, table)
assert "| softmax | " not in table.split("What each branch carries")[1], table
PY
echo "study arms: $(wc -l < arms.txt) arms run, $(wc -l < linearize.txt) linearized, speed pass and table done"
