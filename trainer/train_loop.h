// `linspec train`: one data-parallel training job, followed top to bottom:
//   config → model (+ linearize) → LoRA → loader per rank → per step: micro-batches (forward → objectives →
//   backward, gradients accumulating in the sync buckets) → all-reduce → clip → AdamW at the scheduled lr →
//   metrics / progress on rank 0 → eval every eval.every steps → snapshot every checkpoint.every steps, at the end
//   and on SIGTERM/SIGINT/SIGUSR1 (the step is finished, a snapshot written, exit 0).
// Resume (--resume auto|PATH) restores parameters, optimizer state, step, token count, RNG counters and loader
// cursors, so 3 steps + resume + 3 steps equals 6 steps bit for bit on CPU.
// Every rank of the MPI job runs this function; collectives are issued at the same points on every rank.
#pragma once
#include <string>
#include <vector>

namespace linspec::trainer {

struct TrainRequest {
  std::string config_path;
  std::vector<std::string> overrides;  // --set key=value
  std::string resume;                  // "" (fresh), "auto" or a snapshot path
};

// Returns the process exit code: 0 when the run finished or stopped on a signal after its snapshot, 2 for bad input
// found before training started (reported once, by rank 0 when it saw the error). An error after training started
// is raised on the rank that met it; with more than one rank the job is then aborted with exit code 2 or 3.
int run_training(const TrainRequest& request);

}  // namespace linspec::trainer
