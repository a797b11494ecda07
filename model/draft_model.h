// The draft model of chain speculation (docs/method.md §5, DistillSpec-style): a small LlamaModel sharing the target's
// tokenizer. The default draft is the target's first L layers plus its embedding, final norm and LM head, with the
// same token mixers (linearized the same way), then distilled from the target (trainer/draft_objectives.h).
//
// Stored in checkpoints under /draft/model: one dataset per tensor (linspec names, as checkpoint_tensors() gives
// them) and a group attribute "config" (the draft's ModelConfig JSON).
#pragma once
#include <cstdint>
#include <string>

#include "model/checkpoint.h"
#include "model/llama.h"

namespace linspec {

// The target's config cut to its first `layers` layers (softmax layers kept beyond the cut are dropped from the
// attention spec). InputError unless 1 <= layers <= target layers.
ModelConfig draft_model_config(const ModelConfig& target, int64_t layers);

// The first-layers draft of `target`. Its tensors are copies (training the draft leaves the target untouched)
// unless `share_weights`, which aliases the target's storage (inference only, no extra memory).
LlamaModel make_draft_model(const LlamaModel& target, int64_t layers, const LlamaOptions& options,
                            bool share_weights = false);

// Writes `draft` under /draft/model of an open checkpoint file (inside write_hdf5_atomically's fill).
void write_draft_model(H5Handle file, const LlamaModel& draft);
bool has_draft_model(const std::string& path);
// The draft stored in `path`: its /draft/model group when present, else the file's own model (a standalone
// checkpoint used as a draft). InputError naming the file otherwise. Serving passes requires_grad = false.
LlamaModel load_draft_model(const std::string& path, const LlamaOptions& options = {});

}  // namespace linspec
