// One optimizer step of `linspec train`, the very code `linspec bench train CONFIG.yaml` times:
//   per micro-batch (train.grad_accum of them): batch → the model's device → forward + objectives → backward
//   (gradients accumulate in the sync buckets; the last micro-batch reduces buckets from inside backward)
//   → finish the all-reduce → global norm → clip → AdamW at the given lr.
// The logged values are averaged over micro-batches and ranks (one small host all-reduce: the only host copy of
// the step besides the batch).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "trainer/batch_stager.h"
#include "trainer/comm.h"
#include "trainer/config.h"
#include "trainer/grad_sync.h"
#include "trainer/objectives.h"
#include "trainer/train_optimizer.h"
#include "trainer/train_setup.h"

namespace linspec::trainer {

struct StepPhases {
  double forward_s = 0;    // student forward and objectives, all micro-batches
  double backward_s = 0;   // backward and the gradient all-reduce
  double optimizer_s = 0;  // norm, clipping and AdamW (ZeRO: and the parameter all-gather)
};

struct StepResult {
  std::vector<std::pair<std::string, double>> values;  // "loss" (the weighted sum) first, then each objective
  double grad_norm = 0;  // before clipping
  StepPhases phases;
};

class TrainStep {
 public:
  // Everything the step needs lives in `setup` (which must outlive this object); cfg gives the batch shape, the
  // clipping threshold, the AdamW hyper-parameters and ZeRO. `comm` (MPI) averages the logged host scalars;
  // `grad_comm` reduces the gradient buckets in the model's memory (NCCL for a CUDA model; may be `comm`).
  TrainStep(const ExperimentConfig& cfg, Communicator& comm, Communicator& grad_comm, TrainSetup& setup);

  // next_batch(): i32 [micro_batch, seq_len + 1] windows (any device; moved to the model's). `rng` draws the LoRA
  // dropout keys and on-policy sampling seeds. `step` (0-based) only names the step in errors: a non-finite loss
  // throws before any parameter changes.
  StepResult run(const std::function<Tensor()>& next_batch, Philox& rng, double lr, int64_t step);

  // Tokens one step consumes on all ranks.
  int64_t tokens_per_step() const;
  GradSync& sync() { return sync_; }
  TrainOptimizer& optimizer() { return opt_; }
  const Objectives& objectives() const { return objectives_; }
  const BatchStager& stager() const { return stager_; }

 private:
  const ExperimentConfig& cfg_;
  Communicator& comm_;
  TrainSetup& setup_;
  GradSync sync_;
  TrainOptimizer opt_;
  Objectives objectives_;
  BatchStager stager_;  // micro-batches to the model's device (pinned, asynchronous where the backend can)
};

AdamWConfig adamw_config(const ExperimentConfig& cfg);

}  // namespace linspec::trainer
