#!/usr/bin/env bash
# launch/plot_metrics turns a metrics.jsonl (with a torn last line, as a crash leaves it) into three PNGs.
# Usage: test_plot_metrics.sh LINSPEC_BINARY SRC_DIR (the binary is not needed here)
set -euo pipefail
src="${2:-$(cd "$(dirname "$0")/../.." && pwd)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work/run/metrics.jsonl" <<'PY'
import json, math, os, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path))
with open(path, "w") as f:
    for step in range(10, 210, 10):
        ce, kd = 3 + math.exp(-step / 50), 0.2 * math.exp(-step / 30)
        f.write(json.dumps({"step": step, "loss": ce + kd, "ce": ce, "kd": kd, "lr": 1e-4 * min(1, step / 50),
                            "grad_norm": 0.5, "tokens_per_s": 900.0}) + "\n")
        if step % 50 == 0:
            f.write(json.dumps({"step": step, "val_loss": ce, "val_ppl": math.exp(ce)}) + "\n")
    f.write('{"step": 210, "loss": nul')
PY

out="$("$src/launch/plot_metrics" "$work/run")"
for name in loss lr val_ppl; do
  png="$work/run/$name.png"
  grep -qx "$png" <<<"$out" || { echo "FAIL: $png not reported in: $out"; exit 1; }
  [[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || { echo "FAIL: $png is not a PNG"; exit 1; }
  (($(stat -c %s "$png") > 2000)) || { echo "FAIL: $png is suspiciously small"; exit 1; }
done

# A log without validation entries gives no val_ppl.png; a missing file is an error.
grep -v val_loss "$work/run/metrics.jsonl" >"$work/train_only.jsonl"
"$src/launch/plot_metrics" "$work/train_only.jsonl" --out "$work/t" >/dev/null
[[ -f "$work/t/loss.png" && ! -e "$work/t/val_ppl.png" ]] || { echo "FAIL: val_ppl.png without val entries"; exit 1; }
if "$src/launch/plot_metrics" "$work/missing.jsonl" 2>/dev/null; then echo "FAIL: missing file accepted"; exit 1; fi
echo "plot_metrics: ok"
