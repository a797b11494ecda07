// Medusa-style draft heads (docs/method.md §5): K heads on the target's final hidden state h_t (after the last norm).
// Head k (1-based) = `blocks` residual blocks  x ← x + silu(W x + b)  (W, b zero-initialised, so a fresh head is the
// identity) followed by a vocabulary projection initialised as a copy of the target's LM head. Head k predicts
// token t+k+1 from h_t (the LM head itself predicts t+1), so its training target is p_model(·|x≤t+k).
//
// Stored in checkpoints under /draft/heads: datasets "head<k>/res<j>.weight", "head<k>/res<j>.bias",
// "head<k>/proj.weight" and a group attribute "config" (JSON of DraftHeadsConfig). With a shared projection the
// heads reuse the target's LM head (frozen, not stored): K× less memory and one weight read per step.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "model/checkpoint.h"
#include "model/llama.h"

namespace linspec {

struct DraftHeadsConfig {
  int64_t count = 4;                // K
  int64_t blocks = 1;               // residual blocks per head
  bool shared_projection = false;   // true: every head projects with the target's LM head

  void validate(const std::string& where) const;  // InputError naming `where`
};
nlohmann::json draft_heads_config_to_json(const DraftHeadsConfig& c);
DraftHeadsConfig draft_heads_config_from_json(const nlohmann::json& j, const std::string& where);

class DraftHeads {
 public:
  // Fresh heads for `target` (blocks zero, projection copied from its LM head). The target must outlive the heads
  // (a shared projection calls target.lm_head). `requires_grad` marks the heads' own tensors trainable.
  static DraftHeads init_from(const LlamaModel& target, const DraftHeadsConfig& cfg, bool requires_grad = true);
  // Heads from stored tensors (names as tensors() gives them); InputError naming `where` and the tensor when one
  // is missing, unexpected or misshaped.
  static DraftHeads from_tensors(const LlamaModel& target, const DraftHeadsConfig& cfg,
                                 const std::map<std::string, Tensor>& tensors, const std::string& where,
                                 bool requires_grad = false);

  const DraftHeadsConfig& config() const { return cfg_; }
  int64_t count() const { return cfg_.count; }

  // hidden [..., D] -> head k's logits [..., V], k in 1..count(). Differentiable in the heads' tensors and hidden.
  Tensor logits(int64_t k, const Tensor& hidden) const;
  // Heads 1..n at once (n = 0: all): out[k-1] = logits(k, hidden). A shared projection runs as one GEMM over
  // every head's features, so the LM head's weights are read once per call instead of n times.
  std::vector<Tensor> all_logits(const Tensor& hidden, int64_t n = 0) const;

  // The vocabulary projections in `format` while decoding (F32, BF16 or Q8 as LlamaModel::set_inference_weights;
  // a shared projection follows the target's). For heads that do not train; tensors() keeps the f32 values.
  void set_inference_weights(DType format);
  DType inference_weights() const { return inference_weights_; }
  // Trainable tensors ("head1.res0.weight", ...) and everything a checkpoint stores ("head1/res0.weight", ...).
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::map<std::string, Tensor> tensors() const;
  int64_t bytes() const;

 private:
  struct Head {
    std::vector<std::pair<Tensor, Tensor>> blocks;  // W [D, D], b [D]
    Tensor proj;                                    // [V, D]; undefined when shared
    Tensor proj_inference;                          // proj in the inference format; undefined for f32
  };
  DraftHeads(const LlamaModel& target, const DraftHeadsConfig& cfg) : target_(&target), cfg_(cfg) {}
  Tensor features(int64_t k, const Tensor& hidden) const;  // after head k's residual blocks

  const LlamaModel* target_;
  DraftHeadsConfig cfg_;
  std::vector<Head> heads_;
  DType inference_weights_ = DType::F32;
};

// Writes the heads under /draft/heads of an open checkpoint file (inside write_hdf5_atomically's fill).
void write_draft_heads(H5Handle file, const DraftHeads& heads);
// True when the checkpoint at `path` carries /draft/heads.
bool has_draft_heads(const std::string& path);
// Reads /draft/heads of `path` for `target`; InputError naming the file when absent or malformed.
DraftHeads load_draft_heads(const std::string& path, const LlamaModel& target, bool requires_grad = false);

}  // namespace linspec
