#!/usr/bin/env bash
# Data-parallel `linspec train` on this machine: mpirun with N ranks, T OpenMP threads per rank, each rank
# bound to its own T cores.
#
# Usage: launch/train.sh [-n RANKS] [-t THREADS] [--dry-run] CONFIG.yaml [--set key=value]... [--resume auto|PATH]
#   -n, --ranks N      MPI ranks (env LINSPEC_RANKS; default 1)
#   -t, --threads T    threads per rank (env LINSPEC_THREADS; default: cores / N, at least 1)
#   --dry-run          print the mpirun command and exit
#   env LINSPEC_BIN        the linspec binary (default: <repo>/build/bin/linspec)
#   env LINSPEC_MPIRUN_ARGS extra mpirun arguments (word-split), e.g. "--hostfile hosts"
#
# Stopping: Ctrl-C or SIGTERM to this script asks every rank to finish its step, write a snapshot and exit 0
# (forwarded as SIGUSR1, because mpirun itself answers SIGTERM/SIGINT by killing the ranks a second later).
# A second Ctrl-C / SIGTERM stops the job at once. Resume with `--resume auto`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ranks="${LINSPEC_RANKS:-1}"
threads="${LINSPEC_THREADS:-}"
dry_run=0

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    -n|--ranks) ranks="${2:?$1 needs a value}"; shift 2 ;;
    -t|--threads) threads="${2:?$1 needs a value}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if (($# < 1)); then usage >&2; exit 2; fi

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_count "$ranks" || { echo "train.sh: ranks must be a positive integer, got '$ranks'" >&2; exit 2; }
cores="$(nproc)"
if [[ -z "$threads" ]]; then threads=$((cores / ranks)); ((threads >= 1)) || threads=1; fi
is_count "$threads" || { echo "train.sh: threads must be a positive integer, got '$threads'" >&2; exit 2; }

bin="${LINSPEC_BIN:-$ROOT/build/bin/linspec}"
if ((!dry_run)) && [[ ! -x "$bin" ]]; then
  echo "train.sh: $bin not found: build first (launch/build.sh) or set LINSPEC_BIN" >&2
  exit 2
fi

mpi=(mpirun -np "$ranks")
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
if ((ranks * threads <= cores)); then
  # Each rank gets `threads` cores of its own (slot:PE=T); with one thread that is plain core binding.
  if ((threads == 1)); then mpi+=(--map-by core --bind-to core)
  else mpi+=(--map-by "slot:PE=$threads" --bind-to core); fi
else
  # More threads than cores: binding would pile ranks onto the same cores; let the kernel schedule.
  ((ranks > cores)) && mpi+=(--oversubscribe)
  mpi+=(--bind-to none)
fi
mpi+=(-x "OMP_NUM_THREADS=$threads")
if [[ -n "${LINSPEC_MPIRUN_ARGS:-}" ]]; then
  read -r -a extra <<<"$LINSPEC_MPIRUN_ARGS"
  mpi+=("${extra[@]}")
fi
cmd=("${mpi[@]}" "$bin" train "$@")

if ((dry_run)); then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi

echo "[train.sh] $ranks rank(s) x $threads thread(s) on $cores core(s): ${cmd[*]}" >&2
# mpirun runs in a session of its own so a terminal's Ctrl-C reaches only this script, which turns it into
# the graceful stop below.
setsid "${cmd[@]}" &
job=$!
stops=0
stop() {
  stops=$((stops + 1))
  if ((stops == 1)); then
    echo "[train.sh] stop requested: ranks finish the step and write a snapshot (again to abort)" >&2
    kill -USR1 "$job" 2>/dev/null || true
  else
    echo "[train.sh] aborting" >&2
    kill -TERM "$job" 2>/dev/null || true
  fi
}
trap stop INT TERM
# `wait` returns early when a trapped signal arrives; keep waiting until mpirun itself has exited.
status=0
while true; do
  wait "$job" && status=0 || status=$?
  kill -0 "$job" 2>/dev/null || break
done
exit "$status"
