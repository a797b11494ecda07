// The model being trained: a LlamaModel's weights and token mixers, seen through the trainer's own parameter
// handles, plus LoRA adapters on the named projections.
//
// Why a separate object: LlamaModel marks either all or none of its tensors as trainable. The Student keeps a handle
// per tensor — trainable ones carry autograd state, frozen ones do not (so they get no gradient and no optimizer
// state, and the weight-gradient GEMMs of frozen projections are never run) — and runs the very layer function of
// LlamaModel (model/decoder_layer.h) with its adapters, the attention-transfer tap, and tape markers that tell the
// gradient sync when a layer's gradients are complete. Storage is shared with the LlamaModel, so optimizer updates
// are visible to it, and with LoRA's B = 0 the output equals LlamaModel::forward bit for bit
// (tests/unit/test_lora.cpp checks both).
#pragma once
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "model/llama.h"
#include "model/lora.h"

namespace linspec::trainer {

struct StudentOptions {
  ops::MatmulPrecision precision = ops::MatmulPrecision::F32;
  bool recompute = false;  // per-layer activation checkpointing
};

// MixerTap (model/decoder_layer.h): under recomputation its term is an output of the checkpointed block, so it stays
// differentiable.
using linspec::MixerTap;
// Runs during backward once every gradient of parameter stage `stage` is final (see Student::parameter_stage).
using StageDone = std::function<void(int64_t stage)>;

struct StudentOutput {
  Tensor hidden;                   // after the final norm, [B, T, D]
  std::vector<Tensor> layer_terms; // what the tap returned, per layer (undefined where it returned nothing)
};

class Student {
 public:
  // `trainable`: HF names (as in named_parameters()) of the base-model tensors to train; every LoRA tensor trains.
  // The Student takes its own handles on the LlamaModel's tensors (whether the model marked them trainable does not
  // matter); a mixer parameter that is listed must already require grad (mixers own their handles). `lora` may be null; both must outlive the Student.
  Student(const LlamaModel& base, const LoraSet* lora, const std::set<std::string>& trainable,
          const StudentOptions& options);

  // Every tensor that trains (LoRA included), in forward order: embeddings, layer by layer, final norm, head.
  const std::vector<std::pair<std::string, Tensor>>& trainable_parameters() const { return trainable_; }
  // Mixer tensors that require grad but are frozen: their gradients are dropped after each backward.
  void drop_frozen_mixer_grads() const;

  // Stage of a parameter name: −1 embeddings (and a tied head), i for layer i's tensors (LoRA and mixer ones too),
  // num_layers for the final norm and an untied head.
  int64_t parameter_stage(const std::string& name) const;
  int64_t num_stages() const { return base_.num_layers() + 2; }
  // parameter_stage() of each trainable_parameters() entry, in that order (what GradSync takes).
  std::vector<int64_t> trainable_stages() const;

  StudentOutput forward_hidden(const Tensor& ids, const LoraContext& ctx, const MixerTap* tap = nullptr,
                               const StageDone* stage_done = nullptr) const;
  Tensor lm_head(const Tensor& hidden) const;
  // cross_entropy(lm_head(hidden), targets) in row chunks, never materialising the [N, V] logits
  // (ops::linear_cross_entropy): for steps whose only use of the logits is cross-entropy.
  Tensor lm_head_cross_entropy(const Tensor& hidden, const Tensor& targets) const;

  const LlamaModel& base() const { return base_; }
  const StudentOptions& options() const { return options_; }

 private:
  LayerOutput layer(int64_t i, const Tensor& x, const LoraContext& ctx, const MixerTap* tap) const;
  Tensor handle(const std::string& name, const Tensor& t, const std::set<std::string>& trainable);

  const LlamaModel& base_;
  StudentOptions options_;
  Tensor embed_, final_norm_, head_;
  std::vector<DecoderLayerWeights> layers_;
  std::vector<std::pair<std::string, Tensor>> trainable_;
  std::vector<Tensor> frozen_mixer_params_;
};

}  // namespace linspec::trainer
