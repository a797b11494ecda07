#include "trainer/draft_objectives.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace linspec::trainer {
namespace {

Tensor rows(const Tensor& x) { return ops::reshape(x, {x.numel() / x.size(-1), x.size(-1)}); }

// Share of rows whose argmax agrees, q and p [N, V] on any device. Counted on host copies (host_logit_rows: an
// evaluation, not a training step).
double top1_agreement(const Tensor& q, const Tensor& p) {
  const int64_t n = q.size(0), V = q.size(1);
  const Tensor qh = host_logit_rows(q, V), ph = host_logit_rows(p, V);
  int64_t same = 0;
  for (int64_t r = 0; r < n; ++r) {
    const float* qr = qh.data<float>() + r * V;
    const float* pr = ph.data<float>() + r * V;
    same += (std::max_element(qr, qr + V) - qr) == (std::max_element(pr, pr + V) - pr);
  }
  return n > 0 ? static_cast<double>(same) / static_cast<double>(n) : 0.0;
}

}  // namespace

DraftHeadsLoss draft_heads_loss(const DraftHeads& heads, const Tensor& hidden, const Tensor& model_logits,
                                const Tensor& targets, const DraftHeadsObjective& objective) {
  LINSPEC_CHECK(hidden.dim() == 3, "draft_heads_loss: hidden must be [B, T, D], got ", shape_str(hidden.shape()));
  const bool self = objective.target == "self";
  if (!self && objective.target != "data")
    throw_input_error("objectives.draft_heads.target: '", objective.target, "' is not one of self, data");
  const int64_t B = hidden.size(0), T = hidden.size(1);
  if (self)
    LINSPEC_CHECK(model_logits.dim() == 3 && model_logits.size(0) == B && model_logits.size(1) == T,
                  "draft_heads_loss: model logits ", shape_str(model_logits.shape()), " for hidden ",
                  shape_str(hidden.shape()));
  else
    LINSPEC_CHECK(targets.dtype() == DType::I32 && targets.dim() == 2 && targets.size(0) == B && targets.size(1) == T,
                  "draft_heads_loss: targets must be i32 [B, T]");
  DraftHeadsLoss out;
  const Tensor teacher = self ? model_logits.detach() : Tensor();
  double weight = 1.0;
  for (int64_t k = 1; k <= heads.count(); ++k) {
    weight *= objective.decay;
    if (T <= k) {
      out.per_head.push_back(0.0);
      continue;
    }
    const Tensor q = rows(heads.logits(k, ops::slice(hidden, 1, 0, T - k)));  // q_k(·|h_t), t < T - k
    Tensor term;
    if (self) term = ops::kl_divergence(q, rows(teacher.slice(1, k, T).contiguous()).detach());
    else term = ops::cross_entropy(q, targets.slice(1, k, T).contiguous().view({B * (T - k)}));
    out.per_head.push_back(term.item());
    const Tensor weighted = ops::scale(term, weight);
    out.total = out.total.defined() ? ops::add(out.total, weighted) : weighted;
  }
  if (!out.total.defined()) out.total = Tensor::scalar(0.0, hidden.dtype(), hidden.device());
  return out;
}

DraftHeadsEval evaluate_draft_heads(const LlamaModel& model, const DraftHeads& heads, const Tensor& ids) {
  NoGradGuard no_grad;
  const Tensor hidden = model.forward_hidden(ids);
  const Tensor logits = model.lm_head(hidden);
  const int64_t T = ids.size(1);
  DraftHeadsEval ev;
  for (int64_t k = 1; k <= heads.count(); ++k) {
    if (T <= k) break;
    const Tensor q = rows(heads.logits(k, hidden.slice(1, 0, T - k).contiguous())).to(DType::F32).contiguous();
    const Tensor p = rows(logits.slice(1, k, T).contiguous()).to(DType::F32).contiguous();
    ev.kl.push_back(ops::kl_divergence(q, p).item());
    ev.top1.push_back(top1_agreement(q, p));
  }
  return ev;
}

FeatureDraftLoss feature_draft_loss(const FeatureDraft& draft, const Tensor& hidden, const Tensor& model_logits,
                                    const Tensor& ids, double regression_weight, int64_t unroll) {
  LINSPEC_CHECK(hidden.dim() == 3 && ids.dim() == 2 && model_logits.dim() == 3 && hidden.size(1) == ids.size(1) &&
                    model_logits.size(1) == ids.size(1),
                "feature_draft_loss: hidden ", shape_str(hidden.shape()), ", logits ", shape_str(model_logits.shape()),
                ", ids ", shape_str(ids.shape()));
  LINSPEC_CHECK(unroll >= 1, "feature_draft_loss: unroll must be >= 1, got ", unroll);
  const int64_t T = ids.size(1);
  FeatureDraftLoss out;
  const Tensor f = hidden.detach();
  Tensor features = f, predicted;
  for (int64_t d = 1; d <= unroll && T > d; ++d) {
    // Depth d reads the target's features (d = 1) or the draft's own depth d−1 predictions, as drafting does.
    features = d == 1 ? f.slice(1, 0, T - 1).contiguous() : ops::slice(predicted, 1, 0, T - d);
    predicted = draft.forward(features, ids.slice(1, d, T).contiguous());
    const Tensor kd = ops::kl_divergence(rows(draft.full_logits(predicted)),
                                         rows(model_logits.detach().slice(1, d, T).contiguous()));
    out.kd += kd.item() / static_cast<double>(unroll);
    out.total = out.total.defined() ? ops::add(out.total, kd) : kd;
    if (regression_weight > 0) {
      const Tensor reg = ops::mse(predicted, f.slice(1, d, T).contiguous());
      out.regression += reg.item() / static_cast<double>(unroll);
      out.total = ops::add(out.total, ops::scale(reg, regression_weight));
    }
  }
  if (!out.total.defined()) out.total = Tensor::scalar(0.0, hidden.dtype(), hidden.device());
  return out;
}

FeatureDraftEval evaluate_feature_draft(const FeatureDraft& draft, const Tensor& hidden, const Tensor& model_logits,
                                        const Tensor& ids) {
  NoGradGuard no_grad;
  const int64_t T = ids.size(1);
  FeatureDraftEval ev;
  Tensor features = hidden;  // depth 1 reads the target's features, depth d its own depth d−1 predictions
  for (int64_t d = 1; d <= 3 && T > d; ++d) {
    const int64_t n = T - d;
    features = draft.forward(features.slice(1, 0, n).contiguous(), ids.slice(1, d, T).contiguous());
    const Tensor q = rows(draft.full_logits(features)).to(DType::F32).contiguous();
    const Tensor p = rows(model_logits.slice(1, d, T).contiguous()).to(DType::F32).contiguous();
    if (d == 1) ev.kl = ops::kl_divergence(q, p).item();
    ev.top1.push_back(top1_agreement(q, p));
  }
  return ev;
}

Divergence parse_divergence(const std::string& name, const std::string& where) {
  if (name == "fkl") return Divergence::ForwardKL;
  if (name == "rkl") return Divergence::ReverseKL;
  if (name == "jsd") return Divergence::JSD;
  if (name == "tvd") return Divergence::TVD;
  throw_input_error(where, ": divergence '", name, "' is not one of fkl, rkl, jsd, tvd");
}

const char* divergence_name(Divergence d) {
  switch (d) {
    case Divergence::ForwardKL: return "fkl";
    case Divergence::ReverseKL: return "rkl";
    case Divergence::JSD: return "jsd";
    case Divergence::TVD: return "tvd";
  }
  return "?";
}

Tensor draft_divergence(const Tensor& draft_logits, const Tensor& target_logits, Divergence d) {
  LINSPEC_CHECK(draft_logits.shape() == target_logits.shape(), "draft_divergence: draft ",
                shape_str(draft_logits.shape()), " and target ", shape_str(target_logits.shape()), " differ");
  const Tensor q = rows(draft_logits);
  const Tensor p = rows(target_logits.detach()).detach();
  switch (d) {
    case Divergence::ForwardKL: return ops::kl_divergence(q, p);  // KL(p ‖ q): teacher p
    case Divergence::ReverseKL: return ops::kl_divergence(p, q);  // KL(q ‖ p): the draft in the teacher slot
    case Divergence::JSD:
    case Divergence::TVD: return ops::bounded_divergence(q, p.to(q.dtype()), d == Divergence::TVD);
  }
  return Tensor();
}

Tensor draft_model_loss(const LlamaModel& draft, const LlamaModel& target, const Tensor& ids, Divergence d) {
  Tensor target_logits;
  {
    NoGradGuard no_grad;
    target_logits = target.forward(ids);
  }
  return draft_divergence(draft.forward(ids), target_logits, d);
}

Tensor sample_on_policy(const LlamaModel& draft, const Tensor& prompts, int64_t new_tokens,
                        const SamplingConfig& sampling, const Philox& rng) {
  NoGradGuard no_grad;
  sampling.validate();
  LINSPEC_CHECK(prompts.dim() == 2 && prompts.dtype() == DType::I32 && prompts.size(1) > 0,
                "sample_on_policy: prompts must be i32 [B, T0]");
  const int64_t B = prompts.size(0), T0 = prompts.size(1), T = T0 + new_tokens, V = draft.config().vocab_size;
  const std::vector<int32_t> given = prompts.contiguous().to_vector<int32_t>();
  std::vector<int32_t> seq(B * T);
  for (int64_t b = 0; b < B; ++b) std::copy_n(given.begin() + b * T0, T0, seq.begin() + b * T);
  std::vector<Philox> streams;
  for (int64_t b = 0; b < B; ++b) streams.push_back(rng.fork(b));
  DecodeState state = draft.new_decode_state(B, T);
  Tensor logits = new_tokens > 0 ? draft.decode(state, prompts.contiguous(), true) : Tensor();
  for (int64_t t = T0; t < T; ++t) {
    const Tensor rows_f32 = logits.to(DType::F32).contiguous();
    std::vector<int32_t> next(B);
    for (int64_t b = 0; b < B; ++b)
      seq[b * T + t] = next[b] = choose_token(rows_f32.data<float>() + b * V, V, sampling, streams[b]);
    if (t + 1 < T) logits = draft.decode(state, Tensor::from_vector(next, {B, 1}), true);
  }
  return Tensor::from_vector(seq, {B, T});
}

}  // namespace linspec::trainer
