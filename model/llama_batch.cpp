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
  // One GEMM per weight for the whole batch. Every row still equals single-sequence decoding bit for bit: f32 weights
  // go through oneDNN's f32 GEMM, bf16 and int8 inference weights through linspec's own kernels
  // (kernels/cpu/matmul_bf16_weight.cpp, matmul_q8.cpp, and their CUDA twins), which compute each output with the
  // same operations whatever the number of rows.
  auto linear = [&](const Tensor& in, const Tensor& weight, const Tensor& bias) {
    return ops::linear(in, weight, bias, prec);
  };
  // Positions before this step: the RoPE offset of each sequence's new token.
  std::vector<int64_t> pos(B);
  for (int64_t b = 0; b < B; ++b) pos[b] = states[b]->position();

  Tensor x = ops::embedding(table, Tensor::from_vector(ids, {B, 1}).to(table.device()));  // [B, 1, D]
  for (int64_t i = 0; i < model.num_layers(); ++i) {
    const LlamaLayer& w = model.layer(i);
    const Tensor h = ops::rmsnorm(x, w.input_norm, eps);
    // bf16 / int8 inference weights come fused ([q; k; v], [gate; up]): the same GEMM decoder_layer runs, split by
    // columns afterwards.
    auto part = [](const Tensor& y, int64_t from, int64_t to) { return ops::slice(y, -1, from, to); };
    Tensor q, k, v;  // [B, 1, H·d]
    if (w.qkv_proj.defined()) {
      const Tensor qkv = linear(h, w.qkv_proj, {});
      q = part(qkv, 0, Hq * d), k = part(qkv, Hq * d, (Hq + Hkv) * d);
      v = part(qkv, (Hq + Hkv) * d, (Hq + 2 * Hkv) * d);
    } else {
      q = linear(h, w.q_proj, w.q_bias);
      k = linear(h, w.k_proj, w.k_bias);
      v = linear(h, w.v_proj, w.v_bias);
    }
    // Layout and RoPE once per layer for the whole batch, not per sequence (on a small model these small ops cost as
    // much as the GEMMs): [B, 1, H·d] -> [1, H, B, d], the sequences side by side as the "tokens" of one row, each
    // rotated to its own position (bit for bit as ops::rope at that position). Then per sequence, through its own
    // state, as [1, H, 1, d].
    auto to_heads = [&](const Tensor& y, int64_t n) { return ops::transpose(ops::reshape(y, {1, B, n, d}), 1, 2); };
    const Tensor qh = ops::rope_at_positions(to_heads(q, Hq), pos, model.rope_inv_freq());
    const Tensor kh = ops::rope_at_positions(to_heads(k, Hkv), pos, model.rope_inv_freq());
    const Tensor vh = to_heads(v, Hkv);
    std::vector<Tensor> outs(B);
    for (int64_t b = 0; b < B; ++b)
      outs[b] = w.mixer->step(*states[b]->layers[i], ops::slice(qh, 2, b, b + 1), ops::slice(kh, 2, b, b + 1),
                              ops::slice(vh, 2, b, b + 1));  // [1, Hq, 1, d]
    const Tensor o = B == 1 ? outs[0] : ops::concat(outs, 0);
    const Tensor merged = ops::reshape(ops::transpose(o, 1, 2), {B, 1, Hq * d});
    const Tensor x1 = ops::add(x, linear(merged, w.o_proj, w.o_bias));
    const Tensor h2 = ops::rmsnorm(x1, w.post_attention_norm, eps);
    Tensor act;
    if (w.gate_up_proj.defined()) {
      const Tensor gate_up = linear(h2, w.gate_up_proj, {});
      const int64_t I = c.intermediate_size;
      act = ops::swiglu(part(gate_up, 0, I), part(gate_up, I, 2 * I));
    } else {
      act = ops::swiglu(linear(h2, w.gate_proj, {}), linear(h2, w.up_proj, {}));
    }
    x = ops::add(x1, linear(act, w.down_proj, {}));
  }
  const Tensor hidden = ops::rmsnorm(x, model.parameters().get("model.norm.weight"), eps);
  return ops::reshape(model.lm_head(hidden), {B, c.vocab_size});
}

}  // namespace linspec
