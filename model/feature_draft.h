// The EAGLE-style feature draft (docs/method.md §5): one decoder layer that predicts the target's next hidden state
// from its current one and the next token, so drafting several tokens ahead costs one small layer per depth instead
// of the target's whole stack.
//
// Notation: f_t is the target's final hidden state (after the last norm) at token x_t; it gives p_target(x_{t+1}).
// The draft reads the pair (f_t, x_{t+1}) at position t and predicts f̂_{t+1}:
//   u_t = fc([f_t ; embed(x_{t+1})])          fc [D, 2D], initialised to [I | I]
//   f̂_{t+1} = rmsnorm(decoder_layer(u)_t)     the layer and norm initialised as copies of the target's last layer and
//                                              final norm (same token mixer: linear attention keeps its state O(1))
//   q(x_{t+2}) = softmax(lm_head(f̂_{t+1}))    the target's LM head, frozen, or its rows for a reduced vocabulary
// Drafting one step ahead of the target's committed tokens: the pairs whose both halves the target produced are
// absorbed into the draft's state; from there each depth feeds f̂ back in place of f (serve/speculative.h).
//
// Reduced vocabulary (FR-Spec style): with `vocab_ids` (the N most frequent tokens of the training data) the draft's
// LM head is those N rows of the target's, so a depth costs N·D instead of V·D multiply-adds; the draft never
// proposes a token outside the list. Verification still uses the target's full vocabulary.
//
// Stored in checkpoints under /draft/eagle: "fc.weight", the layer's tensors ("layers.0.self_attn.q_proj.weight",
// mixer tensors "layers.0.self_attn.la.*"), "norm.weight", "vocab_ids" (i32 [N], only when reduced) and a group
// attribute "config": {"vocab": N (0 = full), "model": the draft layer's one-layer ModelConfig}.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/checkpoint.h"
#include "model/llama.h"

namespace linspec {

class FeatureDraft {
 public:
  // A fresh draft for `target` (which must outlive it). `vocab_ids`: empty for the full vocabulary, else distinct
  // ids in [0, V). `requires_grad` marks fc, the layer and the norm trainable (they are copies, never the target's).
  static FeatureDraft init_from(const LlamaModel& target, std::vector<int32_t> vocab_ids, bool requires_grad = true);
  // From the tensors and config JSON under /draft/eagle; InputError naming `where` and the tensor or key at fault.
  static FeatureDraft from_tensors(const LlamaModel& target, const nlohmann::json& config,
                                   const std::map<std::string, Tensor>& tensors, const std::string& where,
                                   bool requires_grad = false);

  FeatureDraft(FeatureDraft&&) = default;

  // ---- parallel form (training) ----
  // features [B, T, D] (f_0 .. f_{T−1}) and next_ids i32 [B, T] (x_1 .. x_T) -> predicted features [B, T, D]
  // (f̂_1 .. f̂_T), causal over t. Differentiable in the draft's tensors and in `features`.
  Tensor forward(const Tensor& features, const Tensor& next_ids) const;
  // predicted [..., D] -> the target's full-vocabulary logits of them [..., V] (frozen head; for training and
  // held-out acceptance).
  Tensor full_logits(const Tensor& predicted) const;

  // ---- decoding ----
  DecodeState new_state(int64_t max_len) const;  // batch 1, the draft layer's state
  // Appends to each of several states its own new pairs in one packed pass: states[j] gets counts[j] >= 1 pairs,
  // taken in order from features [Σ counts, D] and next_ids. Returns the predicted features [Σ counts, D]; each row
  // equals what forward() gives at that position of that sequence. The states must be distinct.
  Tensor absorb(const std::vector<DecodeState*>& states, const Tensor& features, const std::vector<int32_t>& next_ids,
                const std::vector<int64_t>& counts) const;
  // predicted [N, D] -> logits over the draft's vocabulary [N, vocab()] (in the inference weight format).
  Tensor logits(const Tensor& predicted) const;
  int64_t vocab() const;                     // proposal vocabulary: V, or N when reduced
  int32_t token(int64_t index) const {       // logits column -> token id
    return vocab_ids_.empty() ? static_cast<int32_t>(index) : vocab_ids_[index];
  }
  const std::vector<int32_t>& vocab_ids() const { return vocab_ids_; }

  // The layer's projections and the reduced head in `format` (F32, BF16 or Q8), for a draft that does not train.
  void set_inference_weights(DType format);
  DType inference_weights() const { return body_->inference_weights(); }
  // Trainable tensors ("fc.weight", "layers.0...", "norm.weight") and what a checkpoint stores under /draft/eagle.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::map<std::string, Tensor> tensors() const;
  nlohmann::json config_json() const;
  int64_t bytes() const;
  const LlamaModel& layer_model() const { return *body_; }

 private:
  FeatureDraft(const LlamaModel& target, std::unique_ptr<LlamaModel> body, Tensor fc, std::vector<int32_t> vocab_ids);
  Tensor inputs(const Tensor& features, const Tensor& next_ids) const;  // u = fc([f ; embed(x)])

  const LlamaModel* target_;
  std::unique_ptr<LlamaModel> body_;  // one layer + final norm; its embedding and LM head alias the target's
  Tensor fc_;                         // [D, 2D]
  std::vector<int32_t> vocab_ids_;    // empty: full vocabulary
  Tensor vocab_proj_, vocab_proj_inference_;  // [N, D] rows of the target's LM head (reduced only)
};

// The N most frequent ids of `tokens` (ties: lower id first), for a reduced draft vocabulary. N <= vocab_size.
std::vector<int32_t> most_frequent_tokens(const std::vector<uint32_t>& tokens, int64_t vocab_size, int64_t n);

void write_feature_draft(H5Handle file, const FeatureDraft& draft);
bool has_feature_draft(const std::string& path);
// /draft/eagle of `path` for `target`; InputError naming the file when absent or malformed.
FeatureDraft load_feature_draft(const std::string& path, const LlamaModel& target, bool requires_grad = false);

}  // namespace linspec
