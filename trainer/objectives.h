// Training objectives (docs/method.md §4), each logged on its own; the minimised loss is their weighted sum.
//   ce                  next-token cross-entropy on the data (mean over tokens)
//   attention_transfer  mean over linear-attention layers of MSE(o_linear, o_softmax), both computed from the same
//                       (q, k, v) of the student's forward; the softmax output is the frozen teacher (no gradient)
//   kd                  τ² · KL(softmax(z_teacher/τ) ‖ softmax(z_student/τ)), mean over tokens, with the original
//                       softmax model as teacher (loaded beside the student, run without gradients)
//   draft_heads         draft_heads_loss of the heads on the student's hidden state (trainer/draft_objectives.h),
//                       also logged per head (head1 .. headK)
//   draft_model         draft_divergence of the draft model against the student's logits (detached), on the batch
//                       or, on-policy, on continuations the draft sampled from the batch's first halves
//   eagle               feature_draft_loss of the feature draft on the student's (detached) hidden states and logits,
//                       also logged as eagle_kd and eagle_regression
// Objectives with weight 0 are not computed (no teacher forward, no logits when only attention transfer trains).
// When the student has no trainable tensor (only drafts train) its forward runs without gradients: the heads then
// see a detached hidden state and the backbone gets no gradient.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/llama.h"
#include "trainer/drafts.h"
#include "trainer/student.h"

namespace linspec::trainer {

struct ObjectiveWeights {
  double ce = 1.0, attention_transfer = 0.0, kd = 0.0;
  double kd_temperature = 1.0;
};

// MSE between a linear mixer's output `o` and softmax attention on the same q, k, v (computed without gradient).
// Undefined for a softmax mixer (a layer kept softmax has nothing to transfer).
Tensor attention_transfer_term(const AttentionMixer& mixer, const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& o);

struct LossParts {
  Tensor total;  // Σ weight · objective, differentiable
  std::vector<std::pair<std::string, double>> values;  // unweighted value of each computed objective
};

class Objectives {
 public:
  // `teacher`: the softmax model for kd (may be null when kd = 0); `drafts`: what trains beside the student (may be
  // null). Both must outlive this object.
  Objectives(const ObjectiveWeights& weights, const LlamaModel* teacher, const Drafts* drafts = nullptr);

  // One micro-batch: inputs / targets i32 [B, T]. `stage_done` is passed to the student's forward; `sample_seed`
  // seeds the draft model's on-policy sampling.
  LossParts compute(const Student& student, const Tensor& inputs, const Tensor& targets, const LoraContext& ctx,
                    const StageDone* stage_done = nullptr, uint64_t sample_seed = 0) const;

  // Validation without gradients: "loss" (the student's cross-entropy), and with drafts "heads_kl" (mean over heads
  // of KL(p_model ‖ q_k)), "head<k>_kl", "draft_model" (the divergence on the batch), "eagle_kl" and
  // "eagle_top1_depth<d>" (evaluate_feature_draft).
  std::vector<std::pair<std::string, double>> evaluate(const Student& student, const Tensor& inputs,
                                                       const Tensor& targets) const;

  const ObjectiveWeights& weights() const { return w_; }

 private:
  ObjectiveWeights w_;
  const LlamaModel* teacher_;
  const Drafts* drafts_;
};

}  // namespace linspec::trainer
