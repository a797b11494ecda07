# Sourced by the integration tests that run on a tiny random LLaMA: `source tiny_model_common.sh LINSPEC SRC`.
# Sets LINSPEC, SRC, a scratch WORK dir (removed on exit, and the current dir), MPIRUN (2 ranks) and fail(), then
# writes the model (tiny_hf_model.py), converts it to tiny.h5 and tokenizes its corpus into data.h5.
set -euo pipefail
LINSPEC=$(realpath "${1:?linspec binary}")
SRC=$(realpath "${2:?source dir}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
root_flag=(); [[ $(id -u) -eq 0 ]] && root_flag=(--allow-run-as-root)
MPIRUN=(mpirun "${root_flag[@]}" --oversubscribe -np 2)
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$SRC/tests/integration/tiny_hf_model.py" hf corpus.txt
"$LINSPEC" convert --from hf --out tiny.h5 2>/dev/null
"$LINSPEC" prepare --tokenizer tiny.h5 --input corpus.txt --out data.h5 --val-fraction 0.1 2>/dev/null
