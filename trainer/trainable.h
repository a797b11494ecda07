// Which tensors train (the config's `trainable` list) and how AdamW treats them.
//
// Categories: lora (the adapters; only they exist when listed), norms (every *norm.weight), embeddings
// (model.embed_tokens.weight, which is also the head when tied), lm_head (an untied head), attention_new (the
// parameters a linear-attention preset adds: conv taps, λ, feature maps, mixing logits), all (every tensor of the
// model). Everything else is frozen: no gradient, no optimizer state. Two more categories name the drafts rather than
// model tensors (trainer/drafts.h): heads (objectives.draft_heads), draft (objectives.draft_model) and eagle
// (objectives.eagle); with nothing else listed the student is frozen and only the drafts train.
// AdamW groups: weight decay on matrices; none on norms, biases, λ, conv taps and any other tensor of rank ≤ 1.
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/llama.h"
#include "trainer/adamw.h"

namespace linspec::trainer {

// True when the list asks for LoRA adapters / draft heads / the draft model.
bool trains_lora(const std::vector<std::string>& categories);
bool trains_heads(const std::vector<std::string>& categories);
bool trains_draft_model(const std::vector<std::string>& categories);
bool trains_feature_draft(const std::vector<std::string>& categories);

// HF names of the model's own tensors (including mixer parameters) selected by `categories` (heads and draft select
// none of them).
std::set<std::string> select_trainable(const LlamaModel& model, const std::vector<std::string>& categories);

// False for norms, biases, λ, conv taps and every tensor of rank ≤ 1.
bool takes_weight_decay(const std::string& name, const Tensor& t);

// Two groups: {decayed (weight_decay), not decayed (0)}; names kept for the optimizer state.
std::vector<ParamGroup> make_param_groups(const std::vector<std::pair<std::string, Tensor>>& trainable,
                                          double weight_decay);

}  // namespace linspec::trainer
