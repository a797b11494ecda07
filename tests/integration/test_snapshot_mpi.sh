#!/usr/bin/env bash
# The snapshot collectives with 2 real MPI ranks: gathered per-rank state, one agreed resume file, a damaged
# snapshot skipped on every rank, an error on rank 0 raised on all. Usage: test_snapshot_mpi.sh LINSPEC_BINARY SRC_DIR
set -euo pipefail
build_dir="$(cd "$(dirname "$1")/.." && pwd)"
test_bin="$build_dir/tests/test_snapshot"
[[ -x "$test_bin" ]] || { echo "missing $test_bin (build the test_snapshot target)"; exit 1; }
root_flag=(); [[ $(id -u) -eq 0 ]] && root_flag=(--allow-run-as-root)
exec mpirun "${root_flag[@]}" --oversubscribe -np 2 "$test_bin" --gtest_filter='SnapshotMpi.*'
