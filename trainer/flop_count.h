// The FLOPs one training micro-batch needs, derived from the model config and from what trains (docs/method.md
// §6): a GEMM y = x Wᵀ costs 2·N·in·out forward; its backward runs dX only when x requires grad and
// dW only when W trains (a frozen weight — LoRA's base, a frozen backbone — needs no weight-gradient GEMM), and
// neither when no loss is downstream of y. The kd teacher and the attention-transfer targets run forward only.
//
// Families are named after the profile regions they run in (model/op_profile.h), so `bench train --profile` can
// put the model's FLOPs next to each region's time and the GEMM FLOPs it measured. GEMM FLOPs are exact (a test
// counts the GEMMs of a real step against them); attention FLOPs are an analytic estimate of the parallel form
// (softmax, the aug family; other presets: a generic linear-attention estimate), not counted by any probe.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/train_setup.h"

namespace linspec::trainer {

struct FamilyFlops {
  double gemm_forward = 0, gemm_backward = 0;    // through ops::matmul (LoRA included, in its projection's family)
  double other_forward = 0, other_backward = 0;  // attention (estimate)
  double forward() const { return gemm_forward + other_forward; }
  double backward() const { return gemm_backward + other_backward; }
  double total() const { return forward() + backward(); }
};

struct StepFlops {
  int64_t tokens = 0;  // of the micro-batch
  // gemm.qkv, gemm.o, gemm.mlp, gemm.lm_head, attention, attention_transfer, teacher, draft_heads (those that occur)
  std::map<std::string, FamilyFlops> families;
  std::vector<std::string> not_counted;  // objectives the model does not cover (draft_model)
  double total() const;
  double gemm_total() const;
  double per_token() const { return tokens > 0 ? total() / static_cast<double>(tokens) : 0.0; }
};

// One micro-batch of `batch` sequences of `seq` tokens of the step TrainStep runs on `setup`.
StepFlops count_step_flops(const TrainSetup& setup, int64_t batch, int64_t seq);

// Forward FLOPs of one layer's token mixer on [batch, seq] (softmax exact for the causal parallel form, others an
// estimate), for the model above and for reports.
double attention_forward_flops(const AttentionMixer& mixer, int64_t batch, int64_t seq);

}  // namespace linspec::trainer
