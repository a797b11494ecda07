#!/usr/bin/env bash
# Runs libFuzzer targets one after another (ASan + UBSan build, -DLINSPEC_FUZZ=ON), each for SECONDS, starting from
# the committed seeds, and prints one summary line per target for fuzz/README.md. Fork mode with -ignore_crashes
# etc. keeps a run going after a finding, so one run collects every crash/leak/timeout; findings land in
# OUT/<target>/artifacts/ (copy each to fuzz/regressions/<target>/ once its bug is fixed).
# Usage: fuzz/run_fuzzers.sh BUILD_DIR OUT_DIR SECONDS [TARGET...]   (default: every fuzz_* in BUILD_DIR/fuzz)
set -euo pipefail
BUILD=$(realpath "${1:?build dir}")
OUT=$(realpath -m "${2:?output dir}")
SECS=${3:?seconds per target}
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
((${#targets[@]})) || targets=($(ls "$BUILD/fuzz" | sed -n 's/^fuzz_//p'))
for t in "${targets[@]}"; do
  mkdir -p "$OUT/$t/corpus" "$OUT/$t/artifacts"
  # -close_fd_mask=3: the library's progress and error output would swamp the log.
  cmd=("$BUILD/fuzz/fuzz_$t" "$OUT/$t/corpus" "$HERE/corpus/$t" -max_total_time="$SECS" -rss_limit_mb=2048
       -timeout=10 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -close_fd_mask=3
       -artifact_prefix="$OUT/$t/artifacts/")
  echo "[$t] ${cmd[*]}"
  start=$(date +%s)
  "${cmd[@]}" > "$OUT/$t/fuzz.log" 2>&1 || true
  secs=$(($(date +%s) - start))
  last=$(grep -E '^#[0-9]+: cov:' "$OUT/$t/fuzz.log" | tail -1)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$last")
  corpus=$(ls "$OUT/$t/corpus" | wc -l)
  findings=$(ls "$OUT/$t/artifacts" | wc -l)
  echo "[$t] ${secs}s, ${execs:-0} execs, $((${execs:-0} / (secs > 0 ? secs : 1))) exec/s, corpus ${corpus}," \
       "findings ${findings}: $(ls "$OUT/$t/artifacts" | tr '\n' ' ')" | tee -a "$OUT/summary.txt"
done
