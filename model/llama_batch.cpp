#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "model/batched_decode.h"

namespace linspec {

Tensor decode_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                      const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(B >= 1 && static_cast<int64_t>(ids.size()) == B, "decode_batched: ", B, " states for ", ids.size(),
                " ids");
  LINSPEC_CHECK(std::set<DecodeState*>(states.begin(), states.end()).size() == states.size(),
                "decode_batched: a state appears twice");
  for (const DecodeState* s : states)
    LINSPEC_CHECK(s && s->batch == 1 && static_cast<int64_t>(s->layers.size()) == model.num_layers(),
                  "decode_batched: every state must be a batch-1 state of this model");
  const ModelConfig& c = model.config();
  const int64_t d = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const double eps = c.rms_norm_eps;
  const ops::MatmulPrecision prec = model.options().precision;
  const Tensor& table = model.parameters().get("model.embed_tokens.weight");
  // Positions before this step: the RoPE offset of each sequence's new token.
  std::vector<int64_t> pos(B);
  for (int64_t b = 0; b < B; ++b) pos[b] = states[b]->position();

  Tensor x = ops::embedding(table, Tensor::from_vector(ids, {B, 1}).to(table.device()));  // [B, 1, D]
  for (int64_t i = 0; i < model.num_layers(); ++i) {
    const LlamaLayer& w = model.layer(i);
    const Tensor h = ops::rmsnorm(x, w.input_norm, eps);
    const Tensor q = ops::linear(h, w.q_proj, w.q_bias, prec);  // [B, 1, Hq·d]
    const Tensor k = ops::linear(h, w.k_proj, w.k_bias, prec);
    const Tensor v = ops::linear(h, w.v_proj, w.v_bias, prec);
    // Per sequence: [1, 1, H·d] -> [1, H, 1, d], rotated at its own position, through its own state.
    auto heads = [&](const Tensor& y, int64_t b, int64_t n) {
      return ops::transpose(ops::reshape(ops::slice(y, 0, b, b + 1), {1, 1, n, d}), 1, 2);
    };
    std::vector<Tensor> outs(B);
    for (int64_t b = 0; b < B; ++b) {
      const Tensor qb = ops::rope(heads(q, b, Hq), pos[b], model.rope_inv_freq());
      const Tensor kb = ops::rope(heads(k, b, Hkv), pos[b], model.rope_inv_freq());
      const Tensor o = w.mixer->step(*states[b]->layers[i], qb, kb, heads(v, b, Hkv));
      outs[b] = ops::reshape(ops::transpose(o, 1, 2), {1, 1, Hq * d});
    }
    const Tensor merged = B == 1 ? outs[0] : ops::concat(outs, 0);
    const Tensor x1 = ops::add(x, ops::linear(merged, w.o_proj, w.o_bias, prec));
    const Tensor h2 = ops::rmsnorm(x1, w.post_attention_norm, eps);
    const Tensor act = ops::swiglu(ops::linear(h2, w.gate_proj, {}, prec), ops::linear(h2, w.up_proj, {}, prec));
    x = ops::add(x1, ops::linear(act, w.down_proj, {}, prec));
  }
  const Tensor hidden = ops::rmsnorm(x, model.parameters().get("model.norm.weight"), eps);
  return ops::reshape(model.lm_head(hidden), {B, c.vocab_size});
}

}  // namespace linspec
