#include "trainer/train_step.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/device.h"

namespace linspec::trainer {
namespace {

// Wall time since t0, after the model's device finished its queued work (asynchronous backends).
double phase_seconds(std::chrono::steady_clock::time_point& t0, Device device) {
  device_synchronize(device);
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - t0).count();
  t0 = now;
  return s;
}

}  // namespace

AdamWConfig adamw_config(const ExperimentConfig& cfg) {
  AdamWConfig c;
  c.lr = cfg.train.lr;
  c.weight_decay = cfg.train.weight_decay;
  return c;
}

TrainStep::TrainStep(const ExperimentConfig& cfg, Communicator& comm, Communicator& grad_comm, TrainSetup& setup)
    : cfg_(cfg),
      comm_(comm),
      setup_(setup),
      sync_(grad_comm, setup.trainable_parameters(), setup.trainable_stages(), cfg.distributed.zero == 1),
      opt_(sync_, adamw_config(cfg)),
      objectives_(setup.objectives, setup.teacher.get(), &setup.drafts),
      stager_(setup.model->rope_inv_freq().device()) {}

int64_t TrainStep::tokens_per_step() const {
  return static_cast<int64_t>(cfg_.train.grad_accum) * cfg_.train.micro_batch * cfg_.data.seq_len * comm_.world();
}

StepResult TrainStep::run(const std::function<Tensor()>& next_batch, Philox& rng, double lr, int64_t step) {
  const int M = cfg_.train.grad_accum, T = cfg_.data.seq_len;
  const Student& student = *setup_.student;
  const Device device = setup_.model->rope_inv_freq().device();
  StepResult r;
  auto t0 = std::chrono::steady_clock::now();
  sync_.begin_step();
  std::vector<double> sums;  // parallel to r.values
  for (int micro = 0; micro < M; ++micro) {
    const Tensor batch = stager_.upload(next_batch());
    const Tensor inputs = batch.slice(1, 0, T).contiguous(), targets = batch.slice(1, 1, T + 1).contiguous();
    const LoraContext ctx{true, rng.next_u64()};
    const uint64_t sample_seed = setup_.drafts.model && setup_.drafts.settings.on_policy ? rng.next_u64() : 0;
    sync_.set_reduce_in_backward(micro == M - 1);
    const LossParts parts = objectives_.compute(student, inputs, targets, ctx, &sync_.stage_done(), sample_seed);
    if (r.values.empty()) {
      r.values.emplace_back("loss", 0.0);
      for (const auto& [name, v] : parts.values) r.values.emplace_back(name, 0.0);
      sums.assign(r.values.size(), 0.0);
    }
    sums[0] += parts.total.item();
    for (size_t i = 0; i < parts.values.size(); ++i) sums[i + 1] += parts.values[i].second;
    r.phases.forward_s += phase_seconds(t0, device);
    // Mean over micro-batches: each backward adds 1/M of its gradient into the buckets.
    backward(M == 1 ? parts.total : ops::scale(parts.total, 1.0 / M));
    student.drop_frozen_mixer_grads();
    if (micro < M - 1) r.phases.backward_s += phase_seconds(t0, device);
  }
  sync_.finish();
  r.phases.backward_s += phase_seconds(t0, device);

  for (double& v : sums) v /= M;
  comm_.allreduce_sum(sums.data(), sums.size());
  for (size_t i = 0; i < sums.size(); ++i) r.values[i].second = sums[i] / comm_.world();
  if (!std::isfinite(sums[0]))
    throw std::runtime_error("train: the loss is " + std::to_string(r.values[0].second) + " at step " +
                             std::to_string(step + 1) + " (lower train.lr, or check the data)");

  r.grad_norm = sync_.global_norm();
  const bool clip = cfg_.train.clip_grad_norm > 0 && r.grad_norm > cfg_.train.clip_grad_norm;
  opt_.step(lr, clip ? cfg_.train.clip_grad_norm / (r.grad_norm + 1e-6) : 1.0);
  r.phases.optimizer_s = phase_seconds(t0, device);
  return r;
}

}  // namespace linspec::trainer
