#include "model/decoder_layer.h"

#include "model/op_profile.h"

namespace linspec {
namespace {

// The packed form's token mixer. Steps of one token per sequence (continuous batching) go to the mixer's step_many
// all at once; longer steps (batched prefill) and trees (verification) each through the mixer on the sequence's own
// slice, outputs side by side.
Tensor packed_mixer(const AttentionMixer& mixer, const PackedPass& p, const Tensor& q, const Tensor& k,
                    const Tensor& v) {
  const bool steps = !p.sequences.empty() && !p.sequences[0].parent;
  bool single_tokens = true;
  for (const PackedSequence& s : p.sequences) {
    LINSPEC_CHECK(s.state && s.end > s.begin && !s.parent == steps && (steps || s.kv),
                  "decoder_layer: a packed pass holds either steps or trees with a k / v sink, each sequence with its ",
                  "state and tokens");
    single_tokens = single_tokens && s.end == s.begin + 1;
  }
  if (steps && single_tokens) {
    std::vector<AttentionState*> states;
    for (const PackedSequence& s : p.sequences) states.push_back(s.state);
    return mixer.step_many(states, q, k, v);
  }
  const bool whole = p.sequences.size() == 1;
  std::vector<Tensor> outs;
  for (const PackedSequence& s : p.sequences) {
    // Tree slices are copied out: they also wait in the pending tree for advance().
    auto own = [&](const Tensor& t) { return whole ? t : ops::slice(t, 2, s.begin, s.end).contiguous(); };
    const Tensor qs = own(q), ks = own(k), vs = own(v);
    if (steps) {
      outs.push_back(mixer.step(*s.state, qs, ks, vs));
    } else {
      s.kv->emplace_back(ks, vs);
      outs.push_back(mixer.tree(*s.state, qs, ks, vs, *s.parent));
    }
  }
  return whole ? outs[0] : ops::concat(outs, 2);
}

}  // namespace

LayerOutput decoder_layer(const DecoderLayerWeights& w, const ModelConfig& c, ops::MatmulPrecision prec,
                          const Tensor& inv_freq, int64_t index, const Tensor& x, const LayerPass& pass) {
  LINSPEC_CHECK(w.mixer != nullptr, "decoder_layer: layer ", index, " has no token mixer");
  LINSPEC_CHECK(!pass.packed || (x.size(0) == 1 && !pass.lora && !pass.tap &&
                                  static_cast<int64_t>(pass.packed->positions.size()) == x.size(1)),
                "decoder_layer: the packed form takes [1, N, D] with N positions, no adapters and no tap");
  const int64_t B = x.size(0), T = x.size(1), d = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const double eps = c.rms_norm_eps;
  auto project = [&](const char* kind, const Tensor& in, const Tensor& weight, const Tensor& bias, LoraTarget t) {
    return profiled(kind, [&] {
      Tensor y = ops::linear(in, weight, bias, prec);
      const LoraAdapter* a = pass.lora ? w.lora[static_cast<int>(t)] : nullptr;
      return a ? a->apply(in, y, *pass.lora, prec) : y;
    });
  };
  auto to_heads = [&](const Tensor& y, int64_t heads) {  // [B, T, heads·d] -> [B, heads, T, d]
    return profiled("layout", [&] { return ops::transpose(ops::reshape(y, {B, T, heads, d}), 1, 2); });
  };
  auto rotate = [&](const Tensor& y) {
    return profiled("rope", [&] {
      return pass.packed ? ops::rope_with_rows(y, pass.packed->rope) : ops::rope(y, pass.pos0, inv_freq);
    });
  };

  // ---- attention block ----
  LINSPEC_CHECK(!pass.lora || (!w.qkv_proj.defined() && !w.gate_up_proj.defined()),
                "decoder_layer: fused inference projections with LoRA adapters");
  // Columns [from, to) of a fused projection's output.
  auto part = [&](const Tensor& y, int64_t from, int64_t to) { return ops::slice(y, -1, from, to); };
  const Tensor h = profiled("rmsnorm", [&] { return ops::rmsnorm(x, w.input_norm, eps); });
  Tensor q_lin, k_lin, v_lin;
  if (w.qkv_proj.defined()) {
    const Tensor qkv = profiled("gemm.qkv", [&] { return ops::linear(h, w.qkv_proj, {}, prec); });
    q_lin = part(qkv, 0, Hq * d), k_lin = part(qkv, Hq * d, (Hq + Hkv) * d);
    v_lin = part(qkv, (Hq + Hkv) * d, (Hq + 2 * Hkv) * d);
  } else {
    q_lin = project("gemm.qkv", h, w.q_proj, w.q_bias, LoraTarget::Q);
    k_lin = project("gemm.qkv", h, w.k_proj, w.k_bias, LoraTarget::K);
    v_lin = project("gemm.qkv", h, w.v_proj, w.v_bias, LoraTarget::V);
  }
  const Tensor q = rotate(to_heads(q_lin, Hq));
  const Tensor k = rotate(to_heads(k_lin, Hkv));
  const Tensor v = to_heads(v_lin, Hkv);
  const Tensor o = profiled("attention", [&] {
    if (pass.packed) return packed_mixer(*w.mixer, *pass.packed, q, k, v);
    return pass.state ? w.mixer->step(*pass.state, q, k, v) : w.mixer->forward(q, k, v);
  });
  LayerOutput out;
  if (pass.tap) out.term = (*pass.tap)(index, *w.mixer, q, k, v, o);
  const Tensor merged = profiled("layout", [&] { return ops::reshape(ops::transpose(o, 1, 2), {B, T, Hq * d}); });
  const Tensor attn_out = project("gemm.o", merged, w.o_proj, w.o_bias, LoraTarget::O);
  const Tensor x1 = profiled("residual", [&] { return ops::add(x, attn_out); });

  // ---- MLP block (SwiGLU) ----
  const Tensor h2 = profiled("rmsnorm", [&] { return ops::rmsnorm(x1, w.post_attention_norm, eps); });
  Tensor gate, up;
  if (w.gate_up_proj.defined()) {
    const Tensor gate_up = profiled("gemm.mlp", [&] { return ops::linear(h2, w.gate_up_proj, {}, prec); });
    const int64_t I = c.intermediate_size;
    gate = part(gate_up, 0, I), up = part(gate_up, I, 2 * I);
  } else {
    gate = project("gemm.mlp", h2, w.gate_proj, {}, LoraTarget::Gate);
    up = project("gemm.mlp", h2, w.up_proj, {}, LoraTarget::Up);
  }
  const Tensor act = profiled("swiglu", [&] { return ops::swiglu(gate, up); });
  const Tensor down = project("gemm.mlp", act, w.down_proj, {}, LoraTarget::Down);
  out.y = profiled("residual", [&] { return ops::add(x1, down); });
  return out;
}

}  // namespace linspec
