// BaselineMixer: the baseline linear attentions (elu, relu, performer, cosformer, transnormer, yoso, hedgehog,
// window) as layer mixers, and ConvMixer, which adds the seed's causal depthwise conv on V to any of them.
#include "core/autograd.h"
#include "core/ops.h"
#include "attention/linear_mixers.h"

namespace linspec {
namespace {

class BaselineMixerState : public AttentionState {
 public:
  explicit BaselineMixerState(BaselineAttentionState s) : s_(std::move(s)) {}
  int64_t position() const override { return s_.pos; }
  int64_t bytes() const override { return s_.bytes(); }
  std::unique_ptr<AttentionState> clone() const override { return std::make_unique<BaselineMixerState>(s_.clone()); }
  BaselineAttentionState& get() { return s_; }
  const BaselineAttentionState& get() const { return s_; }

 private:
  BaselineAttentionState s_;
};

template <typename S, typename From>
auto& state_as(From& s, const char* who) {
  auto* p = dynamic_cast<S*>(&s);
  LINSPEC_CHECK(p != nullptr, who, " used with a state it did not create");
  return p->get();
}

// The +conv state: the baseline's own state next to the conv's ring of the last C−1 values of v.
class ConvMixerState : public AttentionState {
 public:
  ConvMixerState(std::unique_ptr<AttentionState> base, AugState conv) : base_(std::move(base)), conv_(std::move(conv)) {}
  int64_t position() const override { return base_->position(); }
  int64_t bytes() const override { return base_->bytes() + conv_.bytes(); }
  std::unique_ptr<AttentionState> clone() const override {
    return std::make_unique<ConvMixerState>(base_->clone(), conv_.clone());
  }
  AttentionState& base() { return *base_; }
  const AttentionState& base() const { return *base_; }
  AugState& conv() { return conv_; }
  const AugState& conv() const { return conv_; }

 private:
  std::unique_ptr<AttentionState> base_;
  AugState conv_;
};

ConvMixerState& conv_state(AttentionState& s) {
  auto* p = dynamic_cast<ConvMixerState*>(&s);
  LINSPEC_CHECK(p != nullptr, "+conv attention used with a state it did not create");
  return *p;
}

const ConvMixerState& conv_state(const AttentionState& s) {
  const auto* p = dynamic_cast<const ConvMixerState*>(&s);
  LINSPEC_CHECK(p != nullptr, "+conv attention used with a state it did not create");
  return *p;
}

}  // namespace

// ---- BaselineMixer ----

BaselineMixer::BaselineMixer(const BaselineAttentionConfig& cfg, const AttentionShape& shape, const MixerInit& init)
    : LinearMixer(shape), cfg_(cfg) {
  cfg_.validate();
  params_ = init_baseline_attention_params(cfg_, shape.q_heads, shape.head_dim, init.dtype);
  if (!init.requires_grad)  // requires_grad lives on each handle: reset the ones this mixer keeps
    for (Tensor* t : {&params_.feature_w, &params_.feature_b, &params_.mix_logit, &params_.norm_weight})
      if (t->defined()) t->set_requires_grad(false);
  for (Tensor* t : {&params_.omega, &params_.feature_w, &params_.feature_b, &params_.mix_logit, &params_.norm_weight})
    *t = t->leaf_on(init.device);
}

Tensor BaselineMixer::forward(const Tensor& q, const Tensor& k, const Tensor& v) const {
  Tensor out = baseline_attention(cfg_, params_, q, k, v);
  if (recorder_) recorder_->add("output", out.detach());
  return out;
}

std::unique_ptr<AttentionState> BaselineMixer::new_state(int64_t batch, int64_t, DType dtype, Device device) const {
  return std::make_unique<BaselineMixerState>(
      baseline_attention_state(cfg_, batch, shape_.q_heads, shape_.kv_heads, shape_.head_dim, dtype, device));
}

Tensor BaselineMixer::step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const {
  NoGradGuard no_grad;
  BaselineAttentionState& s = state_as<BaselineMixerState>(state, "kernel attention");
  if (q.size(2) > 1 && s.pos == 0) {
    // A prefill from the start: the parallel form gives the same rows; then fold the block into the state.
    Tensor out = baseline_attention(cfg_, params_, q, k, v);
    baseline_attention_absorb(cfg_, params_, s, k.contiguous(), v.contiguous());
    return out;
  }
  return step_tokens(q, k, v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
    return baseline_attention_decode(cfg_, params_, s, qt, kt, vt);
  });
}

Tensor BaselineMixer::tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                         const std::vector<int32_t>& parent) const {
  NoGradGuard no_grad;
  tree_node_depths(parent, "kernel attention tree");
  const auto& s = state_as<const BaselineMixerState>(state, "kernel attention");
  return baseline_attention_tree(cfg_, params_, s, parent, q.contiguous(), k.contiguous(), v.contiguous());
}

void BaselineMixer::advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
                          const std::vector<int32_t>& accepted) const {
  NoGradGuard no_grad;
  tree_node_depths(parent, "kernel attention advance");
  check_accepted_path(parent, accepted, "kernel attention advance");
  baseline_attention_advance(cfg_, params_, state_as<BaselineMixerState>(state, "kernel attention"), parent, accepted,
                           k.contiguous(), v.contiguous());
}

std::vector<std::pair<std::string, Tensor>> BaselineMixer::parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : params_.learnable()) out.emplace_back("la." + name, t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> BaselineMixer::persistent_tensors() const {
  auto out = parameters();
  if (params_.omega.defined()) out.emplace_back("la.omega", params_.omega);  // fixed random features
  return out;
}

// ---- ConvMixer ----

ConvMixer::ConvMixer(std::unique_ptr<AttentionMixer> base, int64_t conv_taps, const MixerInit& init)
    : LinearMixer(base->shape()), base_(std::move(base)) {
  conv_cfg_.use_local = conv_cfg_.use_global = false;
  conv_cfg_.use_conv = true;
  conv_cfg_.conv_taps = conv_taps;
  conv_cfg_.validate();
  conv_w_ = Tensor::zeros({shape_.q_heads, conv_taps}, init.dtype, init.device);  // zero-init: starts as the plain baseline
  if (init.requires_grad) conv_w_.set_requires_grad(true);
}

Tensor ConvMixer::forward(const Tensor& q, const Tensor& k, const Tensor& v) const {
  Tensor base = base_->forward(q, k, v);
  Tensor conv = ops::aug_attention(q, k, v, conv_w_, Tensor(), Tensor(), conv_cfg_);
  Tensor out = ops::add(base, conv);
  if (recorder_) {
    recorder_->add("base", base.detach());
    recorder_->add("conv", conv.detach());
    recorder_->add("output", out.detach());
  }
  return out;
}

std::unique_ptr<AttentionState> ConvMixer::new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const {
  return std::make_unique<ConvMixerState>(
      base_->new_state(batch, max_len, dtype, device),
      AugState(conv_cfg_, batch, shape_.q_heads, shape_.kv_heads, shape_.head_dim, dtype, device));
}

Tensor ConvMixer::step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const {
  NoGradGuard no_grad;
  ConvMixerState& s = conv_state(state);
  Tensor conv;
  if (q.size(2) > 1 && s.conv().pos == 0) {
    conv = ops::aug_attention(q, k, v, conv_w_, Tensor(), Tensor(), conv_cfg_);
    aug_absorb(s.conv(), k.contiguous(), v.contiguous());
  } else {
    conv = step_tokens(q, k, v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
      return aug_step(s.conv(), qt, kt, vt, conv_w_, Tensor(), Tensor());
    });
  }
  return ops::add(base_->step(s.base(), q, k, v), conv);
}

Tensor ConvMixer::tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                       const std::vector<int32_t>& parent) const {
  NoGradGuard no_grad;
  tree_node_depths(parent, "+conv tree");
  const ConvMixerState& s = conv_state(state);
  Tensor conv = aug_tree(s.conv(), q.contiguous(), k.contiguous(), v.contiguous(), parent, conv_w_, Tensor(), Tensor());
  return ops::add(base_->tree(s.base(), q, k, v, parent), conv);
}

void ConvMixer::advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
                        const std::vector<int32_t>& accepted) const {
  NoGradGuard no_grad;
  ConvMixerState& s = conv_state(state);
  base_->advance(s.base(), k, v, parent, accepted);  // validates the path before anything changes
  aug_advance(s.conv(), k, v, parent, accepted);
}

std::vector<std::pair<std::string, Tensor>> ConvMixer::parameters() const {
  auto out = base_->parameters();
  out.emplace_back("la.conv_w", conv_w_);
  return out;
}

std::vector<std::pair<std::string, Tensor>> ConvMixer::persistent_tensors() const {
  auto out = base_->persistent_tensors();
  out.emplace_back("la.conv_w", conv_w_);
  return out;
}

}  // namespace linspec
