// The drafts `linspec train` trains for speculative decoding (docs/method.md §5), beside or instead of the student:
//   draft heads  objectives.draft_heads (K = count): fresh heads on the student's base model (zero residual blocks,
//                projections copied from its LM head), trained with draft_heads_loss (target self | data, decay γ)
//   draft model  objectives.draft_model: the target's first `layers` layers (+ embedding, final norm, head, with the
//                same token mixers) or a checkpoint PATH, distilled from the student with draft_model_loss's
//                divergence, on the batch or (on_policy) on continuations the draft sampled itself
//   eagle        objectives.eagle: a feature draft (model/feature_draft.h) initialised from the student's last layer,
//                trained with feature_draft_loss (KD + `regression` × feature MSE, `unroll` depths); `vocab` N > 0 gives it the N
//                most frequent tokens of the training split (data.path) as its proposal vocabulary; `init` PATH
//                continues the feature draft stored in that checkpoint instead
// Each trains when `trainable` lists it (heads / draft); its weight must then be > 0, and the reverse (a weight > 0
// without the token is an InputError naming both keys). A resumed run takes them from the snapshot's /draft/heads and
// /draft/model and /draft/eagle. Their tensors train under prefixed names ("draft_heads.head1.res0.weight",
// "draft_model.model.layers.0...", "eagle.fc.weight") so optimizer state and gradient buckets never clash with the
// student's.
#pragma once
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"
#include "model/draft_heads.h"
#include "model/feature_draft.h"
#include "model/llama.h"
#include "trainer/draft_objectives.h"

namespace linspec::trainer {

struct ExperimentConfig;  // trainer/config.h

struct DraftSettings {
  double heads_weight = 0.0;
  DraftHeadsObjective heads;
  double model_weight = 0.0;
  Divergence divergence = Divergence::ForwardKL;
  bool on_policy = false;
  double eagle_weight = 0.0, eagle_regression = 1.0;
  int64_t eagle_unroll = 1;
};

struct Drafts {
  DraftSettings settings;
  std::unique_ptr<DraftHeads> heads;  // when objectives.draft_heads trains
  std::unique_ptr<LlamaModel> model;  // when objectives.draft_model trains
  std::unique_ptr<FeatureDraft> eagle;  // when objectives.eagle trains

  bool any() const { return heads || model || eagle; }
  // Every draft tensor that trains, under its prefixed name (heads first, then the draft model).
  std::vector<std::pair<std::string, Tensor>> trainable_parameters() const;
  // Writes /draft/heads, /draft/model and /draft/eagle (what exists) into an open snapshot file.
  void write(H5Handle file) const;
};

// Validates the draft keys against `trainable` and builds the drafts for `target` (the student's base model, already
// linearized). `options`: the student's precision / recompute; `resume_path`: the snapshot to restore them from, or
// "". InputError naming the config key or file at fault.
Drafts build_drafts(const ExperimentConfig& cfg, const LlamaModel& target, const LlamaOptions& options,
                    const std::string& resume_path, std::ostream& log);

}  // namespace linspec::trainer
