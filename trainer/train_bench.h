// `linspec bench train`: times TrainStep (trainer/train_step.h), the step `linspec train` runs, per phase and per op
// kind. Given an experiment config it builds exactly what `train` builds (model, attention, LoRA, drafts,
// objectives, trainable set, precision, data); without one it uses the SmolLM2-shaped synthetic default below.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/op_profile.h"
#include "trainer/comm.h"
#include "trainer/config.h"
#include "trainer/step_profile.h"
#include "trainer/train_setup.h"

namespace linspec::trainer {

// SmolLM2-135M's shape (hidden 576, 9/3 heads of 64, FFN 1536, vocab 49152, tied embeddings) with `layers` layers.
ModelConfig smollm2_shaped_config(int64_t layers);

struct SyntheticTrainShape {
  int64_t layers = 30, batch = 4, seq = 256;
  std::string precision = "fp32";  // fp32 | bf16
  bool recompute = false;
  uint64_t seed = 1;
};
// The default benchmark as an experiment: next-token cross-entropy, every tensor trains, AdamW at lr 1e-4,
// gradient clipping at train's default.
ExperimentConfig synthetic_train_config(const SyntheticTrainShape& shape);
// A random softmax model of that shape on `device` (every tensor trainable) and random tokens as its training split.
TrainSetup synthetic_training_setup(const SyntheticTrainShape& shape, Device device = Device::CPU);

struct TrainBenchResult {
  int64_t steps = 0, warmup = 0, tokens_per_step = 0, params = 0, trainable = 0, threads = 0;
  int64_t peak_bytes = 0, start_bytes = 0;
  std::string precision;
  double step_s = 0, forward_s = 0, backward_s = 0, optimizer_s = 0, tokens_per_s = 0, cpu_s = 0;
  std::vector<double> losses;
  OpProfile profile;           // regions and GEMMs, per measured step
  StepFlops flops;             // one micro-batch (trainer/flop_count.h)
  int64_t micro_batches = 1;   // per step and rank
  std::vector<GemmRate> gemm_rates;  // measured in the same run (filled by the caller: `bench train`)
  double ceiling_gflops = 0;

  StepProfileInput profile_input() const;
};

// `warmup` unmeasured steps, then `steps` measured ones, on the config's training data (communicators as for
// TrainStep).
TrainBenchResult run_train_bench(const ExperimentConfig& cfg, TrainSetup& setup, Communicator& comm,
                                 Communicator& grad_comm, int64_t steps, int64_t warmup);

nlohmann::json train_bench_json(const TrainBenchResult& r, const ModelConfig& model, const std::string& source);

}  // namespace linspec::trainer
