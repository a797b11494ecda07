// Linear-attention token mixers (docs/method.md §1–§3) behind the AttentionMixer interface of attention/mixer.h:
//   AugMixer     the seed's augmented linear attention and its ablations: aug, local, global, local+global,
//                local+conv (attention/aug/aug_attention.h)
//   BaselineMixer the baselines elu, relu, performer, cosformer, transnormer, yoso, hedgehog, window
//                (attention/baselines/baseline_attention.h)
//   ConvMixer    `<baseline>+conv`: any baseline plus the seed's causal depthwise conv on V (C causal taps per
//                head, zero-init; its decode state keeps the last C−1 values of v)
// Every mixer keeps an O(1) recurrent state (no KV cache), and its parallel, recurrent and tree forms compute the
// same function. Parameters are named "la.<name>" under the layer's "self_attn." prefix:
//   la.conv_w [Hq, C]  la.lambda_local [1]  la.lambda_global [1]            (aug family; conv of +conv)
//   la.feature_w [Hq, d, d]  la.feature_b [Hq, d]  la.mix_logit [Hq]  la.norm_weight [Hq, d]  (baselines)
//   la.omega [m, d]  performer's fixed random features (persistent, not learnable; layer i draws from seed + i)
// Inits (docs/method.md §4): conv taps 0, λ_local 1 (frozen unless lambda_local_learnable=true), λ_global 0
// (learnable), hedgehog/window feature maps identity, window mixing logit −2.197.
//
// Which options each preset takes, their defaults and ranges: attention/presets/ (`linspec linearize --help`).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "attention/baselines/baseline_attention.h"
#include "attention/aug/aug_attention.h"
#include "attention/mixer.h"
#include "attention/spec.h"

namespace linspec {

// Per-branch diagnostics: when a recorder is attached, each parallel forward adds the sum of squares and the
// element count of every branch's contribution (aug: "local", "global", "conv" scaled by their λ; +conv: "base",
// "conv"; all: "output"). Used by `verify` to show whether the global / conv paths carry any signal.
struct BranchStats {
  std::map<std::string, double> sum_squares;
  std::map<std::string, int64_t> count;
  void add(const std::string& branch, const Tensor& x);
  double rms(const std::string& branch) const;
};

class LinearMixer : public AttentionMixer {
 public:
  explicit LinearMixer(const AttentionShape& shape) : shape_(shape) {}
  const AttentionShape& shape() const override { return shape_; }
  void set_recorder(BranchStats* stats) const { recorder_ = stats; }  // nullptr: off

 protected:
  AttentionShape shape_;
  mutable BranchStats* recorder_ = nullptr;
};

class AugMixer : public LinearMixer {
 public:
  AugMixer(const AugConfig& cfg, const AttentionShape& shape, bool lambda_local_learnable,
           bool lambda_global_learnable, const MixerInit& init);
  std::string kind() const override { return cfg_.preset_name(); }
  const AugConfig& config() const { return cfg_; }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const override;
  Tensor step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const override;
  Tensor step_many(const std::vector<AttentionState*>& states, const Tensor& q, const Tensor& k,
                   const Tensor& v) const override;
  Tensor tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
              const std::vector<int32_t>& parent) const override;
  void advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const override;
  std::vector<std::pair<std::string, Tensor>> parameters() const override;
  std::vector<std::pair<std::string, Tensor>> persistent_tensors() const override;

 private:
  AugConfig cfg_;
  bool ll_learnable_, lg_learnable_;
  Tensor conv_w_, lambda_local_, lambda_global_;  // undefined for disabled branches
};

class BaselineMixer : public LinearMixer {
 public:
  BaselineMixer(const BaselineAttentionConfig& cfg, const AttentionShape& shape, const MixerInit& init);
  std::string kind() const override { return baseline_preset_name(cfg_.preset); }
  const BaselineAttentionConfig& config() const { return cfg_; }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const override;
  Tensor step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const override;
  Tensor tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
              const std::vector<int32_t>& parent) const override;
  void advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const override;
  std::vector<std::pair<std::string, Tensor>> parameters() const override;
  std::vector<std::pair<std::string, Tensor>> persistent_tensors() const override;

 private:
  BaselineAttentionConfig cfg_;
  BaselineAttentionParams params_;
};

// A baseline plus the seed's causal depthwise conv on V; the conv runs as the conv-only branch of the aug op.
class ConvMixer : public LinearMixer {
 public:
  ConvMixer(std::unique_ptr<AttentionMixer> base, int64_t conv_taps, const MixerInit& init);
  std::string kind() const override { return base_->kind() + "+conv"; }
  const AttentionMixer& base() const { return *base_; }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const override;
  Tensor step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const override;
  Tensor tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
              const std::vector<int32_t>& parent) const override;
  void advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const override;
  std::vector<std::pair<std::string, Tensor>> parameters() const override;
  std::vector<std::pair<std::string, Tensor>> persistent_tensors() const override;

 private:
  std::unique_ptr<AttentionMixer> base_;
  AugConfig conv_cfg_;  // conv branch only
  Tensor conv_w_;       // [Hq, C]
};

// Runs `step` over a block of T ≥ 1 tokens as T one-token steps and stacks the outputs along dim 2 (the
// recurrent form of a block that does not start at position 0).
Tensor step_tokens(const Tensor& q, const Tensor& k, const Tensor& v,
                   const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& step);

}  // namespace linspec
