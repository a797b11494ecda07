#!/usr/bin/env bash
# Malformed inputs of every kind linspec reads (make_malformed_inputs.py: GGUF, safetensors, HF config.json,
# tokenizer.json, SentencePiece tokenizer.model, checkpoints, token shards, experiment YAML, --set values), each run
# through the command that reads it. Each must exit 2 with a message naming the file (or the --set argument), within
# a peak RSS of 2x the file's size + 256 MB (/usr/bin/time -f %M). The baselines of each kind, made the same way
# but valid, must exit 0. Prints how many were tried and handled; any case not handled fails the test.
# Usage: test_malformed_inputs.sh LINSPEC_BINARY SOURCE_DIR
source "$(dirname "$0")/tiny_model_common.sh" "$@"
[[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (Debian package 'time', installed by launch/setup.sh)"

python3 "$SRC/tests/integration/make_malformed_inputs.py" "$WORK" "$SRC" > cases.tsv
export OMP_NUM_THREADS=1
tried=0 handled=0 baselines=0
failures=()
while IFS=$'\t' read -r id expect size_file args; do
  IFS=$'\x1f' read -ra argv <<< "$args"
  rc=0
  /usr/bin/time -f %M -o rss.txt "$LINSPEC" --threads 1 "${argv[@]}" > out.txt 2> err.txt < /dev/null || rc=$?
  rss_kb=$(tail -1 rss.txt)
  size=$(stat -c %s "$size_file")
  limit_kb=$(((2 * size + 256 * 1024 * 1024) / 1024))
  problem=""
  if [[ $id == valid/* ]]; then
    [[ $rc -eq 0 ]] || problem="baseline exit $rc: $(tail -c 400 err.txt)"
    baselines=$((baselines + 1))
  else
    tried=$((tried + 1))
    if [[ $rc -ne 2 ]]; then
      problem="exit $rc (expected 2): $(tail -c 400 err.txt)"
    elif ! grep -qF -- "$expect" err.txt; then
      problem="message does not name '$expect': $(tail -c 400 err.txt)"
    elif [[ $rss_kb -ge $limit_kb ]]; then
      problem="peak RSS ${rss_kb} KB >= limit ${limit_kb} KB"
    else
      handled=$((handled + 1))
    fi
  fi
  [[ -z $problem ]] || failures+=("$id: $problem")
  rm -f malformed/out.h5  # the output of a case that wrongly succeeded must not make the next one fail
done < cases.tsv

echo "malformed inputs: $tried tried, $handled handled (exit 2, file named, RSS bounded); $baselines baselines"
for k in gguf safetensors hf_config tokenizer_json spm checkpoint shards yaml set; do
  printf '  %-15s %d\n' "$k" "$(grep -c "^$k/" cases.tsv)"
done
if ((${#failures[@]})); then
  printf 'FAIL: %s\n' "${failures[@]}" >&2
  fail "${#failures[@]} case(s) not handled"
fi
[[ $tried -ge 250 ]] || fail "only $tried malformed inputs generated (want >= 250)"
echo "PASS: test_malformed_inputs"
