// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient statistics.
//
// Per parameter p with gradient g, at its t-th update, with lr_eff = lr · group.lr_scale:
//   p ← p · (1 − lr_eff · wd)
//   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
//   p ← p − lr_eff · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps)      (eps outside the sqrt)
// which is torch.optim.AdamW's update. Parameters are the fp32 master weights; m and v are fp32.
// A parameter without a gradient is skipped (its m, v and update count stay untouched), so the bias
// correction uses each parameter's own update count t.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace linspec {

struct AdamWConfig {
  double lr = 1e-3;  // used by step() without an explicit lr
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // default for groups that do not set their own
};

struct ParamGroup {
  std::vector<Tensor> params;  // contiguous f32 CPU tensors that require grad
  std::optional<double> weight_decay;  // unset: AdamWConfig::weight_decay
  double lr_scale = 1.0;
  // Names for the optimizer state of each parameter (e.g. the parameter paths); empty: "g<group>.<index>".
  std::vector<std::string> names;
};

// A named state tensor, e.g. {"m/layers.0.attn.q_proj.weight", tensor}.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWConfig& config);

  // One update of every parameter that has a gradient. Does not clear the gradients.
  // grad_scale multiplies every gradient as it is read (gradient clipping without a pass of its own).
  void step(double lr, double grad_scale = 1.0);
  void step() { step(config_.lr); }
  // Number of step() calls so far.
  int64_t step_count() const { return step_count_; }
  const AdamWConfig& config() const { return config_; }
  int64_t num_params() const { return static_cast<int64_t>(slots_.size()); }
  // Drops every parameter's accumulated gradient.
  void zero_grad();

  // ---- snapshots ----
  // "m/<name>" and "v/<name>" for every parameter updated at least once (copies), plus
  // "updates" (i64 [num_params]: each parameter's own update count, in construction order).
  std::vector<NamedTensor> state() const;
  // Restores what state() returned (with step_count() saved alongside). Throws InputError naming the
  // tensor when a name is unknown or missing, or a shape / dtype does not match.
  void load_state(int64_t step_count, const std::vector<NamedTensor>& state);

 private:
  struct Slot {
    Tensor param;
    std::string name;
    double weight_decay = 0, lr_scale = 1;
    Tensor m, v;  // allocated at the first update
    int64_t updates = 0;
  };
  AdamWConfig config_;
  std::vector<Slot> slots_;
  int64_t step_count_ = 0;
};

}  // namespace linspec
