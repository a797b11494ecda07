#include "trainer/objectives.h"

#include <optional>

#include "core/autograd.h"
#include "core/error.h"
#include "model/op_profile.h"

namespace linspec::trainer {
namespace {

Tensor flat_logits(const Tensor& logits) { return ops::reshape(logits, {logits.numel() / logits.size(-1), logits.size(-1)}); }

// The draft model's divergence from the student. Off-policy on the batch (`logits`: the student's, flat); on-policy
// on the batch's first halves continued by the draft itself (sampled at temperature 1, Philox(sample_seed)).
Tensor draft_model_term(const Drafts& d, const Student& student, const Tensor& inputs, const Tensor& logits,
                        uint64_t sample_seed) {
  const DraftSettings& s = d.settings;
  if (!s.on_policy) return draft_divergence(flat_logits(d.model->forward(inputs)), logits.detach(), s.divergence);
  const int64_t T = inputs.size(1), prompt = std::max<int64_t>(1, T / 2);
  SamplingConfig sampling;
  sampling.temperature = 1.0;
  const Tensor seqs = profiled("draft_sampling", [&] {
    return sample_on_policy(*d.model, inputs.slice(1, 0, prompt).contiguous(), T - prompt, sampling, Philox(sample_seed));
  });
  Tensor target;
  {
    NoGradGuard no_grad;
    target = flat_logits(student.lm_head(student.forward_hidden(seqs, LoraContext{}).hidden));
  }
  return draft_divergence(flat_logits(d.model->forward(seqs)), target, s.divergence);
}

}  // namespace

Tensor attention_transfer_term(const AttentionMixer& mixer, const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& o) {
  if (mixer.kind() == "softmax") return Tensor();
  Tensor target;
  {
    NoGradGuard no_grad;
    target = SoftmaxAttention(mixer.shape()).forward(q.detach(), k.detach(), v.detach());
  }
  return profiled("attention_transfer", [&] { return ops::mse(o, target); });
}

Objectives::Objectives(const ObjectiveWeights& weights, const LlamaModel* teacher, const Drafts* drafts)
    : w_(weights), teacher_(teacher), drafts_(drafts) {
  LINSPEC_CHECK(w_.kd <= 0 || teacher_ != nullptr, "Objectives: kd needs a teacher model");
}

LossParts Objectives::compute(const Student& student, const Tensor& inputs, const Tensor& targets,
                              const LoraContext& ctx, const StageDone* stage_done, uint64_t sample_seed) const {
  const MixerTap tap = [](int64_t, const AttentionMixer& mixer, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& o) { return attention_transfer_term(mixer, q, k, v, o); };
  const bool at = w_.attention_transfer > 0;
  const DraftHeads* heads = drafts_ ? drafts_->heads.get() : nullptr;
  const LlamaModel* draft = drafts_ ? drafts_->model.get() : nullptr;
  const FeatureDraft* eagle = drafts_ ? drafts_->eagle.get() : nullptr;
  std::optional<NoGradGuard> frozen;  // only drafts train: the student's forward needs no tape
  if (student.trainable_parameters().empty()) frozen.emplace();
  const StudentOutput fwd = student.forward_hidden(inputs, ctx, at ? &tap : nullptr, stage_done);
  frozen.reset();

  LossParts parts;
  auto add = [&](const std::string& name, double weight, const Tensor& value) {
    parts.values.emplace_back(name, value.item());
    const Tensor weighted = weight == 1.0 ? value : ops::scale(value, weight);
    parts.total = parts.total.defined() ? ops::add(parts.total, weighted) : weighted;
  };
  const bool heads_self = heads && drafts_->settings.heads.target == "self";
  Tensor logits;
  const bool logits_for_more_than_ce = w_.kd > 0 || heads_self || eagle || (draft && !drafts_->settings.on_policy);
  if (w_.ce > 0 && !logits_for_more_than_ce) {
    // Cross-entropy alone: the fused LM head + loss in row chunks (no [N, V] logits or gradient kept).
    add("ce", w_.ce, student.lm_head_cross_entropy(fwd.hidden, targets.reshape({targets.numel()})));
  } else if (logits_for_more_than_ce) {
    logits = flat_logits(student.lm_head(fwd.hidden));
    if (w_.ce > 0)
      add("ce", w_.ce, profiled("cross_entropy", [&] { return ops::cross_entropy(logits, targets.reshape({targets.numel()})); }));
    if (w_.kd > 0) {
      Tensor teacher_logits;
      {
        NoGradGuard no_grad;
        // Forward only, no tape (grad mode off); a region of its own in profiles.
        teacher_logits = flat_logits(profiled("teacher", [&] { return teacher_->forward(inputs); }));
      }
      add("kd", w_.kd, profiled("kd", [&] { return ops::kl_divergence(logits, teacher_logits, w_.kd_temperature); }));
    }
  }
  if (at) {
    Tensor sum;
    int64_t n = 0;
    for (const Tensor& t : fwd.layer_terms) {
      if (!t.defined()) continue;
      sum = sum.defined() ? ops::add(sum, t) : t;
      ++n;
    }
    if (n == 0) throw_input_error("objectives.attention_transfer: no layer uses linear attention (all are softmax)");
    add("attention_transfer", w_.attention_transfer, ops::scale(sum, 1.0 / static_cast<double>(n)));
  }
  if (heads) {
    const Tensor model_logits = heads_self ? ops::reshape(logits.detach(), {inputs.size(0), inputs.size(1), logits.size(-1)})
                                           : Tensor();
    const DraftHeadsLoss h = profiled("draft_heads", [&] {
      return draft_heads_loss(*heads, fwd.hidden, model_logits, targets, drafts_->settings.heads);
    });
    add("draft_heads", drafts_->settings.heads_weight, h.total);
    for (size_t k = 0; k < h.per_head.size(); ++k) parts.values.emplace_back("head" + std::to_string(k + 1), h.per_head[k]);
  }
  if (draft) add("draft_model", drafts_->settings.model_weight, draft_model_term(*drafts_, student, inputs, logits, sample_seed));
  if (eagle) {
    const Tensor model_logits = ops::reshape(logits.detach(), {inputs.size(0), inputs.size(1), logits.size(-1)});
    const FeatureDraftLoss e = profiled("eagle", [&] {
      return feature_draft_loss(*eagle, fwd.hidden, model_logits, inputs, drafts_->settings.eagle_regression,
                                drafts_->settings.eagle_unroll);
    });
    add("eagle", drafts_->settings.eagle_weight, e.total);
    parts.values.emplace_back("eagle_kd", e.kd);
    parts.values.emplace_back("eagle_regression", e.regression);
  }
  LINSPEC_CHECK(parts.total.defined(), "Objectives: every objective weight is 0");
  return parts;
}

std::vector<std::pair<std::string, double>> Objectives::evaluate(const Student& student, const Tensor& inputs,
                                                                 const Tensor& targets) const {
  NoGradGuard no_grad;
  const Tensor hidden = student.forward_hidden(inputs, LoraContext{}).hidden;
  const Tensor logits = student.lm_head(hidden);  // [B, T, V]
  std::vector<std::pair<std::string, double>> out;
  out.emplace_back("loss", ops::cross_entropy(flat_logits(logits), targets.reshape({targets.numel()})).item());
  if (drafts_ && drafts_->heads) {
    DraftHeadsObjective kl = drafts_->settings.heads;
    kl.target = "self";  // held-out quality is the heads' distance to the model, whatever they trained on
    const DraftHeadsLoss h = draft_heads_loss(*drafts_->heads, hidden, logits, targets, kl);
    double mean = 0;
    for (double v : h.per_head) mean += v / static_cast<double>(h.per_head.size());
    out.emplace_back("heads_kl", mean);
    for (size_t k = 0; k < h.per_head.size(); ++k) out.emplace_back("head" + std::to_string(k + 1) + "_kl", h.per_head[k]);
  }
  if (drafts_ && drafts_->model)
    out.emplace_back("draft_model", draft_divergence(flat_logits(drafts_->model->forward(inputs)), flat_logits(logits),
                                                     drafts_->settings.divergence).item());
  if (drafts_ && drafts_->eagle) {
    const FeatureDraftEval e = evaluate_feature_draft(*drafts_->eagle, hidden, logits, inputs);
    out.emplace_back("eagle_kl", e.kl);
    for (size_t d = 0; d < e.top1.size(); ++d) out.emplace_back("eagle_top1_depth" + std::to_string(d + 1), e.top1[d]);
  }
  return out;
}

}  // namespace linspec::trainer
