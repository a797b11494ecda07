// Training objectives of the drafts (docs/method.md §5), as differentiable functions the training loop calls.
//
// Draft heads (Medusa-style, model/draft_heads.h), head k on the target's hidden state h_t predicts x_{t+k+1}:
//   self  Σ_k γ^k · mean_t KL(p_model(·|x≤t+k) ‖ q_k(·|h_t))   self-distillation: p_model = the target's own
//                                                              next-token distribution at t+k, a constant
//   data  Σ_k γ^k · mean_t CE(q_k(·|h_t), x_{t+k+1})          hard labels
// over the positions t with t + k inside the sequence. Heads-only training passes a detached hidden state; joint
// training (LM loss + heads) passes the live one so the heads' gradient reaches the backbone.
//
// Draft model (DistillSpec-style, model/draft_model.h): D(p_target ‖ q_draft) per position, mean over positions:
//   fkl  KL(p ‖ q)   rkl  KL(q ‖ p)   jsd  ½KL(p ‖ m) + ½KL(q ‖ m), m = ½(p + q)   tvd  ½ Σ_v |p_v − q_v|
// with p = softmax(target logits) a constant and q = softmax(draft logits); on-policy training runs it on
// sequences the draft sampled itself (sample_on_policy).
//
// Feature draft (EAGLE-style, model/feature_draft.h) on the target's features f_t and tokens x_t:
//   mean_t KL(p_model(·|x≤t+1) ‖ q(·|f̂_{t+1}))  +  regression · mean (f̂_{t+1} − f_{t+1})²
// with f̂_{t+1} = draft(f_≤t, x_≤t+1) (teacher-forced: the draft reads the target's features, as it does for every
// token the target has committed). With unroll U > 1 the same terms are added for depths 2..U, where the draft reads
// its own previous depth's predictions as features (what drafting several tokens ahead feeds it), gradients flowing
// through them (EAGLE-3's training-time test, in its parallel approximation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "model/draft_heads.h"
#include "model/feature_draft.h"
#include "model/generation.h"
#include "model/llama.h"

namespace linspec::trainer {

struct DraftHeadsObjective {
  double decay = 0.8;          // γ
  std::string target = "self"; // self | data
};

struct DraftHeadsLoss {
  Tensor total;                 // Σ_k γ^k · loss_k, differentiable
  std::vector<double> per_head; // loss_k (unweighted), k = 1..K
};

// hidden [B, T, D] (the target's final hidden state), model_logits [B, T, V] (the target's logits; used as a
// constant, needed for "self"), targets i32 [B, T] with targets[t] = x_{t+1} (needed for "data"; may carry
// ops::kIgnoreIndex). Heads whose offset k leaves no position (T <= k) are skipped.
DraftHeadsLoss draft_heads_loss(const DraftHeads& heads, const Tensor& hidden, const Tensor& model_logits,
                                const Tensor& targets, const DraftHeadsObjective& objective);

// Held-out quality of the heads on ids [B, T], without gradients: per head, mean KL(p_model ‖ q_k) and the share of
// positions where the head's argmax equals the model's own argmax at t+k (what greedy acceptance needs).
struct DraftHeadsEval {
  std::vector<double> kl, top1;
};
DraftHeadsEval evaluate_draft_heads(const LlamaModel& model, const DraftHeads& heads, const Tensor& ids);

struct FeatureDraftLoss {
  Tensor total;                   // KD + regression weight × MSE, differentiable in the draft's tensors
  double kd = 0, regression = 0;  // the two terms (unweighted, mean over the unrolled depths)
};
// hidden [B, T, D] and model_logits [B, T, V]: the target's (constants); ids i32 [B, T] the tokens they were
// computed on.
FeatureDraftLoss feature_draft_loss(const FeatureDraft& draft, const Tensor& hidden, const Tensor& model_logits,
                                    const Tensor& ids, double regression_weight, int64_t unroll = 1);

// Held-out quality without gradients: KL at depth 1 and, per depth d = 1..3, the share of positions where the
// draft's argmax equals the model's own, the draft reading its own depth d−1 predictions as features (a parallel
// approximation of drafting d tokens ahead: what greedy acceptance at depth d needs).
struct FeatureDraftEval {
  double kl = 0;
  std::vector<double> top1;
};
FeatureDraftEval evaluate_feature_draft(const FeatureDraft& draft, const Tensor& hidden, const Tensor& model_logits,
                                        const Tensor& ids);

enum class Divergence { ForwardKL, ReverseKL, JSD, TVD };
Divergence parse_divergence(const std::string& name, const std::string& where);  // fkl | rkl | jsd | tvd
const char* divergence_name(Divergence d);

// Mean over rows of D(softmax(target) ‖ softmax(draft)); logits [..., V], same shape and dtype. Differentiable in
// draft_logits; target_logits is treated as a constant.
Tensor draft_divergence(const Tensor& draft_logits, const Tensor& target_logits, Divergence d);

// The draft-model objective on ids [B, T]: the target's logits (no gradient) against the draft's forward.
Tensor draft_model_loss(const LlamaModel& draft, const LlamaModel& target, const Tensor& ids, Divergence d);

// On-policy data: continues every row of prompts i32 [B, T0] with `new_tokens` tokens sampled from the draft
// (no gradient; incremental decoding, one Philox stream per row forked from rng's seed) -> i32 [B, T0 + new_tokens].
Tensor sample_on_policy(const LlamaModel& draft, const Tensor& prompts, int64_t new_tokens,
                        const SamplingConfig& sampling, const Philox& rng);

}  // namespace linspec::trainer
