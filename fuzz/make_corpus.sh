#!/usr/bin/env bash
# Regenerates fuzz/corpus/: the seeds of every fuzz target (make_corpus.py), including the HDF5 ones, which need a
# linspec binary to convert the minimal model (checkpoint), linearize it, and tokenize its corpus (token shards).
# Usage: fuzz/make_corpus.sh LINSPEC_BINARY
set -euo pipefail
LINSPEC=$(realpath "${1:?linspec binary}")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$HERE/corpus"
python3 "$HERE/make_corpus.py" "$HERE/corpus" --hf-dir "$WORK/hf"
"$LINSPEC" convert --from "$WORK/hf" --out "$WORK/tiny.h5" 2>/dev/null
"$LINSPEC" linearize --in "$WORK/tiny.h5" --attention aug --out "$WORK/tiny_aug.h5" 2>/dev/null
"$LINSPEC" prepare --tokenizer "$WORK/tiny.h5" --input "$WORK/hf/corpus.txt" --out "$WORK/tokens.h5" \
  --val-fraction 0.2 2>/dev/null
python3 "$HERE/make_corpus.py" "$HERE/corpus" --h5 checkpoint "$WORK/tiny.h5" "$WORK/tiny_aug.h5"
python3 "$HERE/make_corpus.py" "$HERE/corpus" --h5 token_shards "$WORK/tokens.h5"
find "$HERE/corpus" -type f | sed "s|$HERE/||" | sort | awk -F/ '{n[$2]++} END {for (t in n) printf "%s: %d seeds\n", t, n[t]}'
