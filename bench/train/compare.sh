#!/usr/bin/env bash
# linspec's training step beside PyTorch 2.x from PyPI, in one sitting: the SmolLM2-135M shape, B4 T256, forward +
# cross-entropy + backward + AdamW, fp32 and bf16; PyTorch eager (SDPA) and torch.compile. The venv with torch is made
# here once (idempotent; ~3 GB with the CUDA wheels torch's Linux build depends on, unused on the CPU).
# Usage (repository root): bench/train/compare.sh [build/bin/linspec] [out dir]
#   env: THREADS (2), STEPS (3), TORCH_SPEC (torch==2.15.0), LINSPEC_TORCH_VENV (~/.cache/linspec/torch-venv)
set -euo pipefail
LINSPEC=${1:-build/bin/linspec}
OUT=${2:-bench/results/train/torch2}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
VENV=${LINSPEC_TORCH_VENV:-$HOME/.cache/linspec/torch-venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.15.0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.') else 1)" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "$TORCH_SPEC" "setuptools>=77.0.3" numpy
fi

shape=(--batch 4 --seq 256 --steps "$STEPS" --warmup 1)
for prec in fp32 bf16; do
  OMP_NUM_THREADS=$THREADS "$LINSPEC" bench train --precision "$prec" "${shape[@]}" --json "$OUT/linspec_${prec}.json" |
    tee "$OUT/linspec_${prec}.txt"
  for mode in eager compile; do
    flag=(); [[ $mode == compile ]] && flag=(--compile)
    OMP_NUM_THREADS=$THREADS "$VENV/bin/python" "$HERE/torch_peer.py" --precision "$prec" --threads "$THREADS" \
      "${shape[@]}" "${flag[@]}" --json "$OUT/torch_${mode}_${prec}.json"
  done
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
rows = ["| precision | linspec tokens/s | torch eager | torch.compile | linspec / eager | linspec / compile |",
        "|---|---|---|---|---|---|"]
for prec in ("fp32", "bf16"):
    l, e, c = load(f"linspec_{prec}.json"), load(f"torch_eager_{prec}.json"), load(f"torch_compile_{prec}.json")
    lt = l["tokens_per_s"] if l else float("nan")
    et = e["tokens_per_s"] if e else float("nan")
    ct = c["tokens_per_s"] if c else float("nan")
    rows.append(f"| {prec} | {lt:.1f} | {et:.1f} | {ct:.1f} | {lt / et:.2f} | {lt / ct:.2f} |")
torch_version = (load("torch_eager_fp32.json") or {}).get("torch", "?")
text = f"PyTorch {torch_version}, SmolLM2-135M shape, B4 T256, full fine-tune step\n\n" + "\n".join(rows) + "\n"
open(os.path.join(out, "table.md"), "w").write(text)
print(text)
PY
