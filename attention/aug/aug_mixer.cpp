// AugMixer: the seed's augmented linear attention as a layer mixer. The parallel form is ops::aug_attention; the
// recurrent state is an AugState (S over complete groups, the current group's (k̂, v), the last C−1 values of v);
// trees and path commits go to aug_tree / aug_advance. Also the helpers every linear mixer shares.
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "attention/linear_mixers.h"
#include "core/tensor_rows.h"

namespace linspec {

void BranchStats::add(const std::string& branch, const Tensor& x) {
  double s = 0;
  for (double v : x.to_vector<double>()) s += v * v;
  sum_squares[branch] += s;
  count[branch] += x.numel();
}

double BranchStats::rms(const std::string& branch) const {
  auto it = count.find(branch);
  if (it == count.end() || it->second == 0) return 0.0;
  return std::sqrt(sum_squares.at(branch) / static_cast<double>(it->second));
}

Tensor step_tokens(const Tensor& q, const Tensor& k, const Tensor& v,
                   const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& step) {
  const int64_t T = q.size(2);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  for (int64_t t = 0; t < T; ++t) {
    Tensor o = step(q.slice(2, t, t + 1).contiguous(), k.slice(2, t, t + 1).contiguous(),
                    v.slice(2, t, t + 1).contiguous());
    write_rows(out, o.reshape(q.slice(2, t, t + 1).shape()), t);
  }
  return out;
}

namespace {

class AugMixerState : public AttentionState {
 public:
  explicit AugMixerState(AugState s) : s_(std::move(s)) {}
  int64_t position() const override { return s_.pos; }
  int64_t bytes() const override { return s_.bytes(); }
  std::unique_ptr<AttentionState> clone() const override { return std::make_unique<AugMixerState>(s_.clone()); }
  AugState& get() { return s_; }
  const AugState& get() const { return s_; }

 private:
  AugState s_;
};

AugState& aug_state(AttentionState& s) {
  auto* p = dynamic_cast<AugMixerState*>(&s);
  LINSPEC_CHECK(p != nullptr, "aug attention used with a state it did not create");
  return p->get();
}

const AugState& aug_state(const AttentionState& s) {
  const auto* p = dynamic_cast<const AugMixerState*>(&s);
  LINSPEC_CHECK(p != nullptr, "aug attention used with a state it did not create");
  return p->get();
}

Tensor scalar_param(double value, const MixerInit& init, bool learnable) {
  Tensor t = Tensor::full({1}, value, init.dtype, init.device);
  if (learnable && init.requires_grad) t.set_requires_grad(true);
  return t;
}

}  // namespace

AugMixer::AugMixer(const AugConfig& cfg, const AttentionShape& shape, bool ll_learnable, bool lg_learnable,
                   const MixerInit& init)
    : LinearMixer(shape), cfg_(cfg), ll_learnable_(ll_learnable), lg_learnable_(lg_learnable) {
  cfg_.validate();
  if (cfg_.use_conv) {
    conv_w_ = Tensor::zeros({shape.q_heads, cfg_.conv_taps}, init.dtype, init.device);  // zero-init: starts as "no conv"
    if (init.requires_grad) conv_w_.set_requires_grad(true);
  }
  if (cfg_.use_local) lambda_local_ = scalar_param(1.0, init, ll_learnable_);
  if (cfg_.use_global) lambda_global_ = scalar_param(0.0, init, lg_learnable_);
}

Tensor AugMixer::forward(const Tensor& q, const Tensor& k, const Tensor& v) const {
  Tensor out = ops::aug_attention(q, k, v, conv_w_, lambda_local_, lambda_global_, cfg_);
  if (recorder_) {
    NoGradGuard no_grad;
    auto br = ops::aug_attention_branches(q.detach(), k.detach(), v.detach(), conv_w_.defined() ? conv_w_.detach() : Tensor(), cfg_);
    auto lam = [](const Tensor& l) { return l.defined() ? l.item() : 1.0; };
    if (cfg_.use_local) recorder_->add("local", ops::scale(br.local, lam(lambda_local_)));
    if (cfg_.use_global) recorder_->add("global", ops::scale(br.global, lam(lambda_global_)));
    if (cfg_.use_conv) recorder_->add("conv", br.conv);
    recorder_->add("output", out.detach());
  }
  return out;
}

std::unique_ptr<AttentionState> AugMixer::new_state(int64_t batch, int64_t, DType dtype, Device device) const {
  return std::make_unique<AugMixerState>(
      AugState(cfg_, batch, shape_.q_heads, shape_.kv_heads, shape_.head_dim, dtype, device));
}

Tensor AugMixer::step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const {
  NoGradGuard no_grad;
  AugState& s = aug_state(state);
  if (q.size(2) > 1 && s.pos == 0) {
    // A prefill from the start: the parallel form gives the same rows; then fold the block into the state.
    Tensor out = ops::aug_attention(q, k, v, conv_w_, lambda_local_, lambda_global_, cfg_);
    aug_absorb(s, k.contiguous(), v.contiguous());
    return out;
  }
  return step_tokens(q, k, v, [&](const Tensor& qt, const Tensor& kt, const Tensor& vt) {
    return aug_step(s, qt, kt, vt, conv_w_, lambda_local_, lambda_global_);
  });
}

Tensor AugMixer::step_many(const std::vector<AttentionState*>& states, const Tensor& q, const Tensor& k,
                          const Tensor& v) const {
  NoGradGuard no_grad;
  const int64_t N = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(N >= 1 && q.dim() == 4 && q.size(0) == 1 && q.size(2) == N, "aug step_many: q must be [1, Hq, ", N,
                ", d] for ", N, " states, got ", shape_str(q.shape()));
  std::vector<AugState*> s;
  for (AttentionState* st : states) s.push_back(&aug_state(*st));
  // [1, H, N, d] -> [N, H, d]: the kernel's row n is sequence n's token.
  auto rows = [](const Tensor& x) { return ops::transpose(x.select(0, 0), 0, 1); };
  const Tensor out = aug_step_many(s, rows(q), rows(k), rows(v), conv_w_, lambda_local_, lambda_global_);  // [N, Hq, d]
  return ops::transpose(out, 0, 1).view({1, q.size(1), N, q.size(3)});
}

Tensor AugMixer::tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                      const std::vector<int32_t>& parent) const {
  NoGradGuard no_grad;
  tree_node_depths(parent, "aug tree");
  return aug_tree(aug_state(state), q.contiguous(), k.contiguous(), v.contiguous(), parent, conv_w_, lambda_local_,
                  lambda_global_);
}

void AugMixer::advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
                       const std::vector<int32_t>& accepted) const {
  NoGradGuard no_grad;
  tree_node_depths(parent, "aug advance");
  check_accepted_path(parent, accepted, "aug advance");
  aug_advance(aug_state(state), k, v, parent, accepted);
}

std::vector<std::pair<std::string, Tensor>> AugMixer::parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (conv_w_.defined()) out.emplace_back("la.conv_w", conv_w_);
  if (lambda_local_.defined() && ll_learnable_) out.emplace_back("la.lambda_local", lambda_local_);
  if (lambda_global_.defined() && lg_learnable_) out.emplace_back("la.lambda_global", lambda_global_);
  return out;
}

std::vector<std::pair<std::string, Tensor>> AugMixer::persistent_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (conv_w_.defined()) out.emplace_back("la.conv_w", conv_w_);
  if (lambda_local_.defined()) out.emplace_back("la.lambda_local", lambda_local_);
  if (lambda_global_.defined()) out.emplace_back("la.lambda_global", lambda_global_);
  return out;
}

}  // namespace linspec
