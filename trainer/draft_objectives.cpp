#include "trainer/draft_objectives.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace linspec::trainer {
namespace {

Tensor rows(const Tensor& x) { return ops::reshape(x, {x.numel() / x.size(-1), x.size(-1)}); }

// Row-wise softmax into double buffers.
template <typename T>
void softmax_row(const T* z, int64_t v, std::vector<double>& p) {
  double mx = -INFINITY, total = 0;
  for (int64_t i = 0; i < v; ++i) mx = std::max(mx, static_cast<double>(z[i]));
  for (int64_t i = 0; i < v; ++i) total += p[i] = std::exp(static_cast<double>(z[i]) - mx);
  for (int64_t i = 0; i < v; ++i) p[i] /= total;
}

// JSD or TVD of one row given p (target) and q (draft); fills g = dD/dq (the softmax backward follows).
double row_divergence(Divergence d, const std::vector<double>& p, const std::vector<double>& q, std::vector<double>& g) {
  const int64_t v = static_cast<int64_t>(p.size());
  double value = 0;
  for (int64_t i = 0; i < v; ++i) {
    if (d == Divergence::TVD) {
      value += 0.5 * std::abs(p[i] - q[i]);
      g[i] = p[i] > q[i] ? -0.5 : (p[i] < q[i] ? 0.5 : 0.0);
    } else {  // JSD
      const double m = 0.5 * (p[i] + q[i]);
      if (p[i] > 0) value += 0.5 * p[i] * std::log(p[i] / m);
      if (q[i] > 0) value += 0.5 * q[i] * std::log(q[i] / m);
      g[i] = q[i] > 0 ? 0.5 * std::log(q[i] / m) : 0.0;  // d/dq of the two terms (the ±½ constants cancel)
    }
  }
  return value;
}

// Mean over rows of JSD / TVD between softmax(target) and softmax(draft): a tape op differentiable in the draft.
Tensor bounded_divergence(const Tensor& draft_in, const Tensor& target_in, Divergence d) {
  const int64_t v = draft_in.size(-1), n = draft_in.numel() / v;
  Tensor draft = draft_in.contiguous(), target = target_in.detach().to(draft.dtype()).contiguous();
  Tensor grad_rows = Tensor::empty({n, v}, DType::F64);  // dD/dz per row, kept for the backward
  double total = 0;
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T* zs = draft.data<T>();
    const T* zt = target.data<T>();
    double* gz = grad_rows.data<double>();
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      std::vector<double> p(v), q(v), g(v);
      softmax_row(zt + r * v, v, p);
      softmax_row(zs + r * v, v, q);
      total += row_divergence(d, p, q, g);
      double qg = 0;
      for (int64_t i = 0; i < v; ++i) qg += q[i] * g[i];
      for (int64_t i = 0; i < v; ++i) gz[r * v + i] = q[i] * (g[i] - qg);  // softmax Jacobian applied to g
    }
  };
  if (draft.dtype() == DType::F64) run(double{});
  else if (draft.dtype() == DType::F32) run(float{});
  else LINSPEC_CHECK(false, "draft_divergence: logits must be f32 or f64, got ", dtype_name(draft.dtype()));
  Tensor loss = Tensor::scalar(n > 0 ? total / static_cast<double>(n) : 0.0, draft.dtype());
  if (any_requires_grad({&draft_in})) {
    record_op(loss, [draft_in, grad_rows, n](const Tensor& g) {
      const double coef = g.item() / static_cast<double>(std::max<int64_t>(n, 1));
      Tensor grad = Tensor::empty(draft_in.shape(), draft_in.dtype());
      const double* src = grad_rows.data<double>();
      const int64_t total_elems = grad_rows.numel();
      if (grad.dtype() == DType::F64) {
        double* dst = grad.data<double>();
        for (int64_t i = 0; i < total_elems; ++i) dst[i] = coef * src[i];
      } else {
        float* dst = grad.data<float>();
        for (int64_t i = 0; i < total_elems; ++i) dst[i] = static_cast<float>(coef * src[i]);
      }
      accumulate_grad(draft_in, grad);
    });
  }
  return loss;
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
  const int64_t T = ids.size(1), V = model.config().vocab_size;
  DraftHeadsEval ev;
  for (int64_t k = 1; k <= heads.count(); ++k) {
    if (T <= k) break;
    const Tensor q = rows(heads.logits(k, hidden.slice(1, 0, T - k).contiguous())).to(DType::F32).contiguous();
    const Tensor p = rows(logits.slice(1, k, T).contiguous()).to(DType::F32).contiguous();
    ev.kl.push_back(ops::kl_divergence(q, p).item());
    const int64_t n = q.size(0);
    int64_t same = 0;
    for (int64_t r = 0; r < n; ++r) {
      const float* qr = q.data<float>() + r * V;
      const float* pr = p.data<float>() + r * V;
      same += (std::max_element(qr, qr + V) - qr) == (std::max_element(pr, pr + V) - pr);
    }
    ev.top1.push_back(static_cast<double>(same) / static_cast<double>(n));
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
    case Divergence::TVD: return bounded_divergence(q, p, d);
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
